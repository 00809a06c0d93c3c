//! `tandem deploy compose`: a deployment folder (Compose file, cluster file, keys,
//! results folder) for a cluster file and its keys, or for a fresh cluster whose
//! replicas are named `r0`, `r1`, … on a private network.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use tandem_experiments::cluster::{ClusterFile, KeyFile, ReplicaAddress};
use tandem_experiments::deploy::compose::{ClientLoad, ComposeOptions, Subnet24, write_deployment};
use tandem_experiments::deploy::docker::ComposeTool;
use tandem_experiments::deploy::image::DEFAULT_TAG;

use crate::commands::cluster_args::ClusterArgs;

/// Arguments of `tandem deploy`.
#[derive(Args, Debug)]
pub struct DeployArgs {
    #[command(subcommand)]
    target: DeployTarget,
}

#[derive(Subcommand, Debug)]
enum DeployTarget {
    /// Write a Compose file (also a Swarm stack file) for a cluster.
    Compose(ComposeArgs),
}

/// Arguments of `tandem deploy compose`.
#[derive(Args, Debug)]
struct ComposeArgs {
    /// An existing cluster file; its key files (`r0.key`, `c0.key`, …) are read from
    /// --keys or the cluster file's folder. Without it, a fresh cluster is generated
    /// from the cluster flags with replicas at host names r0, r1, …. The file decides
    /// everything the cluster flags would, so they are refused beside it (edit the
    /// file, or generate a fresh one with `tandem keygen`).
    #[arg(long, conflicts_with = "ClusterArgs")]
    cluster: Option<PathBuf>,
    /// Folder of the key files of --cluster (default: the cluster file's folder).
    #[arg(long, requires = "cluster")]
    keys: Option<PathBuf>,
    #[command(flatten)]
    params: ClusterArgs,
    /// Load-client services (generated clusters get this many client keys; with
    /// --cluster, the file must list at least this many clients).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Replicas' port in a generated cluster.
    #[arg(long, default_value_t = 7100)]
    port: u16,
    /// The deployment folder to write (compose.yaml, cluster.toml, keys/, results/).
    #[arg(long)]
    out: PathBuf,
    /// The image every service runs (`tandem image --tag`).
    #[arg(long, default_value = DEFAULT_TAG)]
    image: String,
    /// The private network (an IPv4 /24); replicas at .10 + id, clients at .210 + j.
    #[arg(long, default_value_t = Subnet24::DEFAULT)]
    subnet: Subnet24,
    /// Seconds each client submits for.
    #[arg(long, default_value_t = ClientLoad::default().duration)]
    duration: f64,
    /// Seconds at the start left out of the statistics.
    #[arg(long, default_value_t = ClientLoad::default().warmup)]
    warmup: f64,
    /// Open loop: offered transactions per second per client.
    #[arg(long, conflicts_with = "window")]
    rate: Option<f64>,
    /// Closed loop: requests kept outstanding per client.
    #[arg(long, default_value_t = ClientLoad::default().window)]
    window: usize,
}

/// Runs `tandem deploy`.
pub fn run(args: DeployArgs) -> Result<ExitCode> {
    let DeployTarget::Compose(args) = args.target;
    let (cluster, keys) = match &args.cluster {
        Some(path) => {
            let cluster = ClusterFile::load(path)?;
            let dir = match &args.keys {
                Some(dir) => dir.clone(),
                None => path
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(|| PathBuf::from(".")),
            };
            let members = cluster
                .replicas
                .iter()
                .map(|r| format!("r{}", r.id))
                .chain((0..args.clients).map(|j| format!("c{j}")));
            let mut keys = Vec::new();
            for member in members {
                let key_path = dir.join(format!("{member}.key"));
                keys.push(KeyFile::load(&key_path).with_context(|| {
                    format!("the key of {member} (looked for in {})", dir.display())
                })?);
            }
            (cluster, keys)
        }
        None => {
            if args.params.replicas == 0 {
                bail!("--replicas must be at least 1");
            }
            let addresses: Vec<ReplicaAddress> = (0..args.params.replicas)
                .map(|i| ReplicaAddress::Host {
                    name: format!("r{i}"),
                    port: args.port,
                })
                .collect();
            args.params
                .params()
                .generate_at_hosts(&addresses, args.clients)?
        }
    };
    let options = ComposeOptions {
        image: args.image.clone(),
        subnet: args.subnet,
        load: ClientLoad {
            duration: args.duration,
            warmup: args.warmup,
            rate: args.rate,
            window: args.window,
        },
        ..ComposeOptions::default()
    };
    let path = write_deployment(&args.out, &cluster, &keys, args.clients, &options)?;
    println!(
        "wrote {} ({} replicas, {} clients, image {})",
        path.display(),
        cluster.replicas.len(),
        args.clients,
        args.image
    );
    let tool = ComposeTool::find()
        .map(|t| t.display())
        .unwrap_or_else(|_| "docker compose".to_string());
    println!(
        "run it: tandem image --tag {} && cd {} && {tool} up -d; results land in {}/results",
        args.image,
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
