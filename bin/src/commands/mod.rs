//! One module per `tandem` subcommand.

pub mod bench_exec;
pub mod exec;
mod exec_format;
