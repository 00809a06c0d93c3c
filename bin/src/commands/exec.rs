//! `tandem exec`: apply a transaction file to a genesis with a chosen executor and
//! print the receipts and the state digest as JSON (for checking executors from
//! outside). `--emit-txs N` instead writes N transactions generated from a
//! workload genesis, in the transaction file format. The file formats are the
//! executor types' serde forms (`tandem_executor::Genesis`, `read_transactions`).
//! `--vm evm` does the same for the EVM: an EVM workload genesis (its contracts
//! deployed, `Deployment`), a file of `EvmTx` (`read_evm_transactions`), receipts
//! with status, gas used and logs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use tandem_executor::evm::{EvmAuth, EvmConfig, EvmVm};
use tandem_executor::{
    ExecutionLimits, ExecutorOptions, Genesis, evm_receipt_json, evm_tx_json, executor_by_name,
    executor_for, read_evm_genesis_auth, read_evm_transactions, read_transactions, to_hex,
};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The VM: `ledger` (the native DeFi ledger) or `evm` (revm; genesis and
    /// transaction files in the EVM forms, see the README).
    #[arg(long, default_value = "ledger")]
    vm: String,
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
    /// `[execution] max_tx_cost`); above it a transaction aborts with `cost_limit`
    /// (ledger, default 1000000) or is refused (evm: its gas limit, default 2^24).
    #[arg(long)]
    max_tx_cost: Option<u64>,
    /// Most gas one batch may spend (`[execution] max_batch_cost`; evm: the gas
    /// limits admitted, default 200000000).
    #[arg(long)]
    max_batch_cost: Option<u64>,
    /// evm: the block's base fee in wei per gas (default 0). A transaction whose
    /// max fee (EIP-1559) or gas price (legacy, EIP-2930) is below it is refused
    /// with `max fee below the block's base fee`; one that runs pays gas used ×
    /// its effective gas price, the base fee part burned, the rest credited to
    /// the block beneficiary.
    #[arg(long)]
    base_fee: Option<u64>,
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
    match args.vm.as_str() {
        "ledger" => {
            if args.base_fee.is_some() {
                bail!("--base-fee: only with --vm evm (the ledger has no gas price)");
            }
        }
        "evm" => return run_evm(&args),
        other => bail!("--vm: expected `ledger` or `evm`, got `{other}`"),
    }
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
            max_tx_cost: args
                .max_tx_cost
                .unwrap_or(ExecutionLimits::default().max_tx_cost),
            max_batch_cost: args
                .max_batch_cost
                .unwrap_or(ExecutionLimits::default().max_batch_cost),
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

/// `--vm evm`: the same as the ledger path over the EVM's files and receipts.
fn run_evm(args: &ExecArgs) -> Result<ExitCode> {
    let genesis_name = args.genesis.display().to_string();
    let (spec, auth) = read_evm_genesis_auth(&genesis_name, &read(&args.genesis)?)?;
    let accounts = spec.accounts_for(auth);
    let (mut state, deployment) = spec
        .genesis_with(&accounts)
        .with_context(|| format!("{genesis_name}: invalid EVM genesis"))?;
    let defaults = EvmConfig::default();
    if let Some(n) = args.emit_txs {
        let txs = spec
            .generator_with(&state, &deployment, &accounts)?
            .batch(n)
            .into_iter()
            .map(|t| accounts.sign(t, defaults.chain_id))
            .collect::<Result<Vec<_>, _>>()?;
        let entries: Vec<serde_json::Value> =
            txs.iter().map(|t| evm_tx_json(t, &deployment)).collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.dump_state {
        bail!("--dump-state: not available with --vm evm (no explicit EVM genesis form yet)");
    }
    let config = EvmConfig {
        max_tx_gas: args.max_tx_cost.unwrap_or(defaults.max_tx_gas),
        max_batch_gas: args.max_batch_cost.unwrap_or(defaults.max_batch_gas),
        base_fee: args.base_fee.unwrap_or(defaults.base_fee),
        ..defaults
    };
    let mut executor = executor_for(
        EvmVm::new(config),
        &args.executor,
        args.threads,
        &ExecutorOptions::default(),
    )?;
    let Some(txs_path) = &args.txs else {
        bail!("--txs is required");
    };
    let txs = read_evm_transactions(
        &txs_path.display().to_string(),
        &read(txs_path)?,
        &deployment,
    )?;
    if auth == EvmAuth::Secp256k1
        && let Some(i) = txs.iter().position(|t| t.signature.is_none())
    {
        bail!(
            "{}: entry {i}: unsigned, and the genesis says \"auth\": \"secp256k1\" (give it as {{\"raw\": …}})",
            txs_path.display()
        );
    }
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
            let mut entry = evm_receipt_json(receipt);
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
    let out = json!({
        "vm": "evm",
        "executor": executor.name(),
        "threads": args.threads,
        "transactions": txs.len(),
        "genesis_digest": to_hex(&genesis_digest),
        "digest": to_hex(&state.digest()),
        "receipts": receipts,
        "batches": batches,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
