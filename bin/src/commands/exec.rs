//! `tandem exec`: apply a transaction file to a genesis with a chosen executor and
//! print the receipts and the state digest as JSON (for checking executors from
//! outside). `--emit-txs N` instead writes N transactions generated from a
//! workload genesis, in the transaction file format. The file formats are the
//! executor types' serde forms (`tandem_executor::Genesis`, `read_transactions`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use tandem_executor::{
    ExecutionLimits, ExecutorOptions, Genesis, executor_by_name, read_transactions, to_hex,
};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Genesis file (JSON): `{"workload": {...}}` or explicit entries.
    #[arg(long)]
    genesis: PathBuf,
    /// Transaction file (JSON array).
    #[arg(long, required_unless_present = "emit_txs")]
    txs: Option<PathBuf>,
    /// sequential, block-stm, access-list or auto.
    #[arg(long, default_value = "sequential")]
    executor: String,
    /// Worker threads of the executor.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Most gas one transaction may cost (as the cluster file's
    /// `[execution] max_tx_cost`); above it a transaction aborts with `cost_limit`.
    #[arg(long, default_value_t = ExecutionLimits::default().max_tx_cost)]
    max_tx_cost: u64,
    /// Most gas one batch may spend (`[execution] max_batch_cost`).
    #[arg(long, default_value_t = ExecutionLimits::default().max_batch_cost)]
    max_batch_cost: u64,
    /// Split the file into batches of this many transactions (default: one batch).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Also print the final state, as an explicit genesis (usable as `--genesis`).
    #[arg(long)]
    dump_state: bool,
    /// Instead of executing: print N transactions of the genesis file's workload
    /// (client 0 of 1) in the transaction file format.
    #[arg(long, value_name = "N", conflicts_with = "txs")]
    emit_txs: Option<usize>,
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let genesis_name = args.genesis.display().to_string();
    let genesis = Genesis::read(&genesis_name, &read(&args.genesis)?)?;
    if let Some(n) = args.emit_txs {
        let Genesis::Workload(spec) = &genesis else {
            bail!("{genesis_name}: --emit-txs needs a genesis with a `workload` section");
        };
        let txs = spec.generator(0, 1)?.batch(n);
        println!("{}", serde_json::to_string_pretty(&txs)?);
        return Ok(ExitCode::SUCCESS);
    }
    let options = ExecutorOptions {
        limits: ExecutionLimits {
            max_tx_cost: args.max_tx_cost,
            max_batch_cost: args.max_batch_cost,
        },
        ..ExecutorOptions::default()
    };
    let mut executor = executor_by_name(&args.executor, args.threads, &options)?;
    let mut state = genesis
        .state()
        .with_context(|| format!("{genesis_name}: invalid genesis"))?;
    let Some(txs_path) = &args.txs else {
        bail!("--txs is required");
    };
    let txs = read_transactions(&txs_path.display().to_string(), &read(txs_path)?)?;
    let batch_size = match args.batch_size {
        Some(0) => bail!("--batch-size must be at least 1"),
        Some(n) => n,
        None => txs.len().max(1),
    };
    let genesis_digest = state.digest();
    let mut receipts = Vec::with_capacity(txs.len());
    let mut batches = Vec::new();
    for (b, chunk) in txs.chunks(batch_size).enumerate() {
        let outcome = executor.execute(&mut state, chunk);
        let digest = executor.digest(&mut state);
        let base = b * batch_size;
        for (i, receipt) in outcome.receipts.iter().enumerate() {
            let mut entry = serde_json::to_value(receipt)?;
            entry["index"] = json!(base + i);
            receipts.push(entry);
        }
        batches.push(json!({
            "first": base,
            "transactions": chunk.len(),
            "digest": to_hex(&digest),
            "stats": outcome.stats,
        }));
    }
    let mut out = json!({
        "executor": executor.name(),
        "threads": args.threads,
        "transactions": txs.len(),
        "genesis_digest": to_hex(&genesis_digest),
        "digest": to_hex(&state.digest()),
        "receipts": receipts,
        "batches": batches,
    });
    if args.dump_state {
        out["state"] = serde_json::to_value(Genesis::from_state(&state))?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
