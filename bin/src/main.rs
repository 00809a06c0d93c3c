//! The `tandem` command.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "A testbed for Byzantine-fault-tolerant replication"
)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
