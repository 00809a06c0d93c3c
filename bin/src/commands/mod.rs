//! One module per `tandem` subcommand.

pub mod client;
pub mod cluster_args;
pub mod keygen;
pub mod local;
pub mod replica;
pub mod sim;
