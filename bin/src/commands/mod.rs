//! One module per `tandem` subcommand.

pub mod client;
pub mod cluster_args;
pub mod keygen;
pub mod local;
pub mod plot;
pub mod replica;
pub mod sim;
