//! One module per `tandem` subcommand.

pub mod bench_exec;
pub mod client;
pub mod cluster_args;
pub mod compare;
pub mod deploy;
pub mod exec;
pub mod health;
pub mod image;
pub mod keygen;
pub mod local;
pub mod plot;
pub mod replica;
pub mod run;
pub mod sim;
