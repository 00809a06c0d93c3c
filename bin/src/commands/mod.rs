//! The `tandem` subcommands, one module each.

pub mod bench_exec;
pub mod exec;
mod exec_format;
