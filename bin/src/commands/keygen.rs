//! `tandem keygen`: writes a cluster file and one private key file per member, so a
//! cluster can be started by hand (and span machines, after editing addresses).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use tandem_experiments::cluster::{ReplicaAddress, save_cluster_folder};

use crate::commands::cluster_args::ClusterArgs;

/// Arguments of `tandem keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Number of load clients to create keys for.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Folder to write `cluster.toml` and the `*.key` files into.
    #[arg(long)]
    out: PathBuf,
    /// Host the replicas listen on (edit the cluster file to spread them).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port of replica 0; replica i listens on base + i.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// Explicit replica addresses, comma-separated, in id order (overrides --host and
    /// --base-port): IPs or host names resolved when members start, e.g.
    /// 10.0.0.1:7100,10.0.0.2:7100,... or r0:7100,r1:7100,...
    #[arg(long, value_delimiter = ',')]
    addresses: Vec<ReplicaAddress>,
}

/// Runs `tandem keygen`.
pub fn run(args: KeygenArgs) -> Result<ExitCode> {
    let (cluster, keys) = if args.addresses.is_empty() {
        args.cluster
            .params()
            .generate(args.host, args.base_port, args.clients)?
    } else {
        if args.addresses.len() != args.cluster.replicas {
            anyhow::bail!(
                "--addresses lists {} addresses for --replicas {}",
                args.addresses.len(),
                args.cluster.replicas
            );
        }
        args.cluster
            .params()
            .generate_at_hosts(&args.addresses, args.clients)?
    };
    let (cluster_path, _) = save_cluster_folder(&args.out, &cluster, &keys)?;
    println!(
        "wrote {} and {} key files to {}",
        cluster_path.display(),
        keys.len(),
        args.out.display()
    );
    println!(
        "start replica i with: tandem replica --cluster {} --id i --key {}/ri.key",
        cluster_path.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
