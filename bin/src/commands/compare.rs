//! `tandem compare`: a matrix of settings (from flags or a TOML file), each cell run
//! `--repeat` times through `tandem local`'s runner in an interleaved order; prints the
//! table of medians and ranges and writes `compare.csv`, `runs.csv` and bar charts
//! beside every run's folder (`tandem_experiments::compare`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use tandem_experiments::compare::{self, CompareSpec, Matrix, Settings, stats};
use tandem_experiments::runner;

/// Arguments of `tandem compare`. Each list flag is an axis of the matrix
/// (comma-separated); an axis not given has `tandem local`'s default as its one value.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// A comparison file (TOML: `repeat`, the settings below by their field names,
    /// `[matrix]` with the axes); flags given replace its values.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Protocols, e.g. pbft,hotstuff; a variant with its own parameters as
    /// NAME:KEY=VALUE[:KEY=VALUE]..., e.g. hotstuff,hotstuff:leader_election=reputation.
    #[arg(long, value_delimiter = ',')]
    protocols: Vec<String>,
    /// Executors, e.g. sequential,block-stm,access-list.
    #[arg(long, value_delimiter = ',')]
    executors: Vec<String>,
    /// Workloads, e.g. transfer,dex,lending,smallbank,mixed; with --vm evm
    /// evm-transfer,erc20,uniswap,lending,staking [default: dex; with --vm evm, uniswap].
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Zipf skews, e.g. 0,0.8,1.2.
    #[arg(long, value_delimiter = ',')]
    zipf: Vec<f64>,
    /// Replica counts, e.g. 4,7.
    #[arg(long, value_delimiter = ',')]
    replicas: Vec<usize>,
    /// Batch size limits, e.g. 256,1024.
    #[arg(long, value_delimiter = ',')]
    batch_size: Vec<usize>,
    /// Sign every protocol message: false,true compares it with channel authentication.
    #[arg(long, value_delimiter = ',')]
    signed_all: Vec<bool>,
    /// The VM every cell runs: ledger (the native DeFi ledger) or evm (revm, with the
    /// EVM workloads) [default: ledger].
    #[arg(long)]
    vm: Option<String>,
    /// With --vm evm: the largest gas limit a transaction may declare [default: the
    /// cluster file's, 16777216].
    #[arg(long)]
    max_tx_gas: Option<u64>,
    /// With --vm evm: the gas one batch may reserve [default: 400000000].
    #[arg(long)]
    max_batch_gas: Option<u64>,
    /// Runs per cell, interleaved (round-robin over the cells) [default: 1].
    #[arg(long)]
    repeat: Option<usize>,
    /// Seconds of load per run [default: 20].
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds at the start of each run left out of the statistics [default: 3].
    #[arg(long)]
    warmup: Option<f64>,
    /// Load clients [default: 2].
    #[arg(long)]
    clients: Option<usize>,
    /// Open loop: total offered transactions per second.
    #[arg(long, conflicts_with = "window")]
    rate: Option<f64>,
    /// Closed loop: requests each client keeps outstanding [default: 1024].
    #[arg(long)]
    window: Option<usize>,
    /// Pad each transaction to this many bytes [default: 0].
    #[arg(long)]
    payload: Option<usize>,
    /// Executor threads per replica.
    #[arg(long)]
    threads: Option<usize>,
    /// Accounts in the genesis state.
    #[arg(long)]
    accounts: Option<u64>,
    /// AMM pools (dex, mixed); with --vm evm, contract instances (tokens, pairs,
    /// markets, staking pools).
    #[arg(long)]
    pools: Option<u32>,
    /// Extra SHA-256 rounds per transaction.
    #[arg(long)]
    work: Option<u32>,
    /// Batch timeout, milliseconds.
    #[arg(long)]
    batch_timeout_ms: Option<u64>,
    /// Checkpoint interval (sequence numbers).
    #[arg(long)]
    checkpoint_interval: Option<u64>,
    /// Initial leader time-out, milliseconds.
    #[arg(long)]
    view_timeout_ms: Option<u64>,
    /// CPUs per replica process in every run, e.g. 1 (as `tandem local`; the process
    /// backend pins whole CPUs and refuses fractions: use --cpu-sets to share).
    #[arg(long)]
    cpus_per_replica: Option<f64>,
    /// One CPU list per replica in every run, separated by `;`, e.g. "0;1;0;1".
    #[arg(long)]
    cpu_sets: Option<String>,
    /// Print the cells and the run order, run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Name of the comparison (its folder is <results>/<name>-<time>).
    #[arg(long, default_value = "compare")]
    name: String,
    /// Folder that receives results folders.
    #[arg(long, default_value = "results")]
    results: PathBuf,
}

fn list<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

impl CompareArgs {
    /// The spec the flags give (values not given are `None`).
    fn spec(self) -> CompareSpec {
        CompareSpec {
            repeat: self.repeat,
            settings: Settings {
                vm: self.vm,
                max_tx_gas: self.max_tx_gas,
                max_batch_gas: self.max_batch_gas,
                duration: self.duration,
                warmup: self.warmup,
                clients: self.clients,
                rate: self.rate,
                window: self.window,
                payload: self.payload,
                threads: self.threads,
                accounts: self.accounts,
                pools: self.pools,
                work: self.work,
                batch_timeout_ms: self.batch_timeout_ms,
                checkpoint_interval: self.checkpoint_interval,
                view_timeout_ms: self.view_timeout_ms,
                cpus_per_replica: self.cpus_per_replica,
                cpu_sets: self.cpu_sets,
            },
            matrix: Matrix {
                protocols: list(self.protocols),
                executors: list(self.executors),
                workloads: list(self.workloads),
                zipf: list(self.zipf),
                replicas: list(self.replicas),
                batch_size: list(self.batch_size),
                signed_all: list(self.signed_all),
            },
        }
    }
}

/// Runs `tandem compare`.
pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let (name, results, dry_run) = (args.name.clone(), args.results.clone(), args.dry_run);
    let file = match &args.file {
        Some(path) => CompareSpec::read(path)?,
        None => CompareSpec::default(),
    };
    let spec = file.overridden_by(args.spec());
    let repeat = spec.repeat()?;
    let program = std::env::current_exe().context("cannot find the tandem executable")?;
    if dry_run {
        let cells = spec.cells(&program, &results)?;
        println!("{}", spec.header(&cells, repeat));
        for (i, (cell, round)) in compare::run_order(cells.len(), repeat)
            .into_iter()
            .enumerate()
        {
            println!("{:>3}. {} (run {})", i + 1, cells[cell].label, round + 1);
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Check every cell before creating anything.
    spec.cells(&program, &results)?;
    let dir = compare::compare_dir(&results, &name)?;
    let cells = spec.cells(&program, &dir)?;
    let header = spec.header(&cells, repeat);
    eprintln!("{header}");
    let comparison = compare::run_matrix(&name, cells, repeat, dir, runner::run)?;
    println!("{header}");
    println!(
        "{}",
        stats::render_table(&comparison.cells, &comparison.stats)
    );
    println!("results: {}", comparison.dir.display());
    Ok(if comparison.all_held() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
