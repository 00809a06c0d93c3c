//! `tandem exec`: apply a transaction file to a genesis with a chosen executor and
//! print the receipts and the state digest as JSON (for checking executors from
//! outside). `--emit-txs N` instead writes N transactions generated from a
//! workload genesis, in the transaction file format.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value as Json, json};
use tandem_executor::{ExecutorOptions, WorkloadSpec, executor_by_name, to_hex};

use super::exec_format::{
    entry_json, parse_genesis, parse_transactions, receipt_json, transaction_json,
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
    /// Threads of the executor's pool.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Split the file into batches of this many transactions (default: one batch).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Also print every state entry after the last batch.
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
    let genesis_text = read(&args.genesis)?;
    if let Some(n) = args.emit_txs {
        let json: Json = serde_json::from_str(&genesis_text)
            .with_context(|| format!("{genesis_name}: not valid JSON"))?;
        let Some(spec) = json.get("workload") else {
            bail!("{genesis_name}: --emit-txs needs a genesis with a `workload` section");
        };
        let spec: WorkloadSpec = serde_json::from_value(spec.clone())
            .with_context(|| format!("{genesis_name}: field `workload`"))?;
        let txs = spec.generator(0, 1)?.batch(n);
        let out = Json::Array(txs.iter().map(transaction_json).collect());
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut executor = executor_by_name(&args.executor, args.threads, &ExecutorOptions::default())?;
    let mut state = parse_genesis(&genesis_name, &genesis_text)?;
    let Some(txs_path) = &args.txs else {
        bail!("--txs is required");
    };
    let txs_name = txs_path.display().to_string();
    let txs = parse_transactions(&txs_name, &read(txs_path)?)?;
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
        let base = b * batch_size;
        receipts.extend(
            outcome
                .receipts
                .iter()
                .enumerate()
                .map(|(i, r)| receipt_json(base + i, r)),
        );
        batches.push(json!({
            "first": base,
            "transactions": chunk.len(),
            "digest": to_hex(&outcome.digest),
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
        out["state"] = Json::Array(
            state
                .entries()
                .iter()
                .map(|(k, v)| entry_json(k, v))
                .collect(),
        );
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
