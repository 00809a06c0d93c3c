//! One module per `tandem` subcommand.

pub mod sim;
