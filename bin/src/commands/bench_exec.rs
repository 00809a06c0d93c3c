//! `tandem bench-exec`: executors × thread counts × workloads on identical
//! pre-generated batches; prints tx/s, speedup over sequential, Block-STM's
//! aborts (failed validations: a whole execution wasted), waits (executions
//! suspended at an ESTIMATE read, before doing their work) and re-executions
//! (both) per transaction, and what `auto` picked (or, for Block-STM, `in-order×N`:
//! batches whose rest ran in order after a conflict-heavy segment, or all of it on a
//! declared chain), as a table and
//! optionally as CSV. Every run's final digest is checked against sequential's.
//!
//! `--vm evm` runs the EVM workloads instead (erc20, uniswap, staking, lending,
//! evm-transfer; `NAME@N` runs N independent contract instances — tokens, pairs,
//! markets, staking pools — instead of `--instances`): real revm execution with gas
//! as the cost, so `--work` does not apply; the table adds Mgas/s, and the baseline
//! is sequential revm itself (`execute_batch`, the `revm` row), not the sequential
//! executor behind the VM seam. Every transaction carries an EIP-2930 access list
//! (made by running each batch once, as `eth_createAccessList` does) so that the
//! access-list executor can schedule it. `--auth secp256k1` signs every EVM
//! transaction Ethereum-style (after its access list), so each executor recovers
//! the senders on its threads before each batch and sequential revm one by one,
//! inside the timed section; `--auth channel,secp256k1` measures both ways.
//!
//! `--work auto` (the default) first calibrates how many SHA-256 rounds make one
//! transfer cost `--target-us` (20 µs) sequentially, and prints the calibration.
//! Runs are interleaved over `--rounds` rounds (the order rotating every round)
//! and the median is reported, so that drift on a shared machine hits every
//! configuration alike.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tandem_executor::evm::{
    EvmAuth, EvmConfig, EvmState, EvmTx, EvmVm, EvmWorkloadKind, EvmWorkloadSpec, HOME_INSTANCES,
    attach_access_lists, execute_batch,
};
use tandem_executor::{
    ExecutionLimits, Executor, ExecutorOptions, State, Transaction, Vm, WorkloadKind, WorkloadSpec,
    executor_by_name, executor_for, to_hex,
};

#[derive(Args, Debug)]
pub struct BenchExecArgs {
    /// Executors to compare (sequential always runs: it is the baseline).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sequential,block-stm,access-list,auto"
    )]
    executors: Vec<String>,
    /// Thread counts for the parallel executors.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// The VM: `ledger` (the native DeFi ledger) or `evm` (revm).
    #[arg(long, default_value = "ledger")]
    vm: String,
    /// Workloads: transfer, dex, lending, smallbank, mixed (ledger; default
    /// transfer,dex); evm-transfer, erc20, uniswap, lending, staking, evm-mixed (evm, each
    /// optionally `NAME@N` for N independent instances; default erc20,uniswap,staking).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// EVM: contract instances (tokens, pairs, markets, staking pools) of a
    /// workload named without `@N`.
    #[arg(long, default_value_t = 1)]
    instances: u32,
    /// Transactions per batch.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Batches per run (consecutive, on one state).
    #[arg(long, default_value_t = 5)]
    batches: usize,
    /// Runs per configuration; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// SHA-256 rounds per transaction, or `auto` to calibrate to --target-us.
    #[arg(long, default_value = "auto")]
    work: String,
    /// Sequential cost of one transfer that `--work auto` aims for, in µs.
    #[arg(long, default_value_t = 20.0)]
    target_us: f64,
    /// Accounts of every workload.
    #[arg(long, default_value_t = 100_000)]
    accounts: u64,
    /// AMM pools (dex, mixed).
    #[arg(long, default_value_t = 2)]
    pools: u32,
    /// Lending markets (lending, mixed).
    #[arg(long, default_value_t = 2)]
    markets: u32,
    /// Zipf skew of sender/receiver choice (0 = uniform).
    #[arg(long, default_value_t = 0.5)]
    zipf: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sign every transaction (verification runs on the executor's pool).
    #[arg(long)]
    signed: bool,
    /// EVM: how transactions authenticate their sender: `channel` (`from` trusted,
    /// as a replica does with an authenticated client channel) or `secp256k1`
    /// (Ethereum signatures, senders recovered on the executor's threads before
    /// each batch, inside the timed section); `channel,secp256k1` measures both
    /// (rows `WORKLOAD/secp256k1`).
    #[arg(long, value_delimiter = ',', default_value = "channel")]
    auth: Vec<EvmAuth>,
    /// Ask for the state digest (the Merkle root) after every N-th batch and after
    /// the last; the time counts. 1 (the default) digests every batch; a replica
    /// digests only at checkpoints, so `--digest-every 128` with batches of a
    /// replica's size models the default checkpoint interval.
    #[arg(long, default_value_t = 1)]
    digest_every: usize,
    /// Run Block-STM's speculative machinery even with one thread (by default one
    /// thread runs the batch in order), to measure what speculation costs.
    #[arg(long)]
    speculate_alone: bool,
    /// Also write the rows as CSV to this file.
    #[arg(long)]
    csv: Option<PathBuf>,
}

struct Row {
    workload: String,
    executor: String,
    threads: usize,
    tx_per_s: f64,
    /// EVM: millions of gas executed per second.
    mgas_per_s: Option<f64>,
    /// Ledger: SHA-256 rounds per transaction (empty for the EVM).
    work: String,
    us_per_tx: f64,
    speedup: f64,
    aborts_per_tx: Option<f64>,
    waits_per_tx: Option<f64>,
    reexec_per_tx: Option<f64>,
    picked: String,
}

/// The `picked` column's name for a Block-STM batch that fell back to running its
/// rest, or all of it, in order (`BatchStats::fallbacks`).
const IN_ORDER: &str = "in-order";

struct Run {
    seconds: f64,
    digest: [u8; 32],
    executions: u64,
    aborts: u64,
    waits: u64,
    transactions: u64,
    picked: Vec<String>,
}

/// Executor options without cost limits: the benchmark measures the executors on
/// whatever `--work` asks for, not the cluster's budget.
fn unlimited(args: &BenchExecArgs) -> ExecutorOptions {
    ExecutorOptions {
        limits: ExecutionLimits::UNLIMITED,
        block_stm_speculate_alone: args.speculate_alone,
        ..ExecutorOptions::default()
    }
}

fn spec(args: &BenchExecArgs, kind: WorkloadKind, work: u32) -> WorkloadSpec {
    WorkloadSpec {
        kind,
        accounts: args.accounts,
        pools: args.pools,
        markets: args.markets,
        zipf: args.zipf,
        seed: args.seed,
        work,
        signed: args.signed,
        ..WorkloadSpec::default()
    }
}

/// Runs `batches` in order on a copy of `genesis`, asking for the digest after every
/// `digest_every`-th batch and after the last.
fn run_batches<V: Vm>(
    exec: &mut dyn Executor<V>,
    genesis: &V::State,
    batches: &[Vec<V::Tx>],
    digest_every: usize,
) -> Run {
    let mut state = genesis.clone();
    let mut run = Run {
        seconds: 0.0,
        digest: [0; 32],
        executions: 0,
        aborts: 0,
        waits: 0,
        transactions: 0,
        picked: Vec::new(),
    };
    for (i, batch) in batches.iter().enumerate() {
        let start = Instant::now();
        let outcome = exec.execute(&mut state, batch);
        if (i + 1) % digest_every.max(1) == 0 || i + 1 == batches.len() {
            run.digest = exec.digest(&mut state);
        }
        run.seconds += start.elapsed().as_secs_f64();
        run.executions += outcome.stats.executions;
        run.aborts += outcome.stats.validation_aborts;
        run.waits += outcome.stats.dependency_waits;
        run.transactions += outcome.stats.transactions;
        if let Some(p) = outcome.stats.picked {
            run.picked.push(p);
        }
        // Block-STM batches whose rest ran in order after a conflict-heavy segment
        // (or all of it, on a declared chain).
        for _ in 0..outcome.stats.fallbacks {
            run.picked.push(IN_ORDER.to_string());
        }
    }
    run
}

/// Sequential µs per transaction of `txs` (best of three).
fn sequential_us(genesis: &State, txs: &[Transaction]) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let mut exec = tandem_executor::SequentialExecutor::new();
        let run = run_batches::<tandem_executor::LedgerVm>(
            &mut exec,
            genesis,
            std::slice::from_ref(&txs.to_vec()),
            1,
        );
        best = best.min(run.seconds);
    }
    best * 1e6 / txs.len().max(1) as f64
}

/// Rounds of SHA-256 that make a transfer cost `target_us` sequentially.
fn calibrate(args: &BenchExecArgs) -> Result<(u32, String)> {
    const N: usize = 4000;
    const PROBE: u32 = 200;
    let base = spec(args, WorkloadKind::Transfer, 0);
    let genesis = base.genesis()?;
    let txs = base.generator(0, 1)?.batch(N);
    let t0 = sequential_us(&genesis, &txs);
    let heavy: Vec<Transaction> = txs.iter().cloned().map(|t| t.with_work(PROBE)).collect();
    let t1 = sequential_us(&genesis, &heavy);
    let per_round = ((t1 - t0) / f64::from(PROBE)).max(1e-3);
    let rounds = ((args.target_us - t0) / per_round).round().max(0.0) as u32;
    let check: Vec<Transaction> = txs.iter().cloned().map(|t| t.with_work(rounds)).collect();
    let t = sequential_us(&genesis, &check);
    Ok((
        rounds,
        format!(
            "work: {rounds} rounds of SHA-256 per transaction (calibrated: a native transfer \
             costs {t0:.2} µs, one round {:.0} ns; with the work a transfer costs {t:.1} µs \
             sequentially, target {:.0} µs)",
            per_round * 1000.0,
            args.target_us
        ),
    ))
}

fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn summarize_picks(runs: &[Run]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for p in runs.iter().flat_map(|r| &r.picked) {
        *counts.entry(p.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs every configuration `args.rounds` times, interleaved, rotating the order
/// every round so that drift on a shared machine hits every configuration alike.
fn interleave(rounds: usize, count: usize, mut one: impl FnMut(usize) -> Run) -> Vec<Vec<Run>> {
    let mut runs: Vec<Vec<Run>> = (0..count).map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..count {
            let i = (round + k) % count;
            runs[i].push(one(i));
        }
    }
    runs
}

/// The configurations: sequential once, then every other executor × thread count.
fn configurations(args: &BenchExecArgs) -> Vec<(String, usize)> {
    let mut configs: Vec<(String, usize)> = vec![("sequential".into(), 1)];
    for name in args.executors.iter().filter(|n| *n != "sequential") {
        for &t in &args.threads {
            configs.push((name.clone(), t));
        }
    }
    configs
}

fn machine_line() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = load_average();
    println!(
        "machine: {cores} cores, load average {} ({})",
        load.map_or("unknown".into(), |l| format!("{l:.2}")),
        match load {
            Some(l) if l < 1.0 => "quiet",
            Some(_) => "busy: compare ratios within this run, not absolute figures",
            None => "unknown",
        }
    );
}

/// One row per configuration of `runs`, speedup against `base_seconds`.
fn rows_of(
    workload: &str,
    configs: &[(String, usize)],
    runs: &[Vec<Run>],
    base_seconds: f64,
    gas: Option<u64>,
    work: &str,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for ((name, t), rs) in configs.iter().zip(runs) {
        let seconds = median(rs.iter().map(|r| r.seconds).collect());
        let txs = rs[0].transactions as f64;
        let is_bstm = name == "block-stm";
        rows.push(Row {
            workload: workload.to_string(),
            executor: name.clone(),
            threads: *t,
            tx_per_s: txs / seconds,
            mgas_per_s: gas.map(|g| g as f64 / seconds / 1e6),
            work: work.to_string(),
            us_per_tx: seconds * 1e6 / txs,
            speedup: base_seconds / seconds,
            aborts_per_tx: is_bstm.then(|| rs[0].aborts as f64 / txs),
            waits_per_tx: is_bstm.then(|| rs[0].waits as f64 / txs),
            reexec_per_tx: is_bstm
                .then(|| rs[0].executions.saturating_sub(rs[0].transactions) as f64 / txs),
            picked: summarize_picks(rs),
        });
    }
    rows
}

/// Checks every run ended at the expected digest.
fn check_digests(
    workload: &str,
    configs: &[(String, usize)],
    runs: &[Vec<Run>],
    expected: [u8; 32],
) -> Result<()> {
    for ((name, t), rs) in configs.iter().zip(runs) {
        if let Some(bad) = rs.iter().find(|r| r.digest != expected) {
            bail!(
                "{workload}: {name} with {t} threads ended at digest {} but sequential at {}",
                to_hex(&bad.digest),
                to_hex(&expected)
            );
        }
    }
    Ok(())
}

/// An EVM workload argument: `KIND` (`--instances` instances) or `KIND@N`.
fn evm_workload(arg: &str, instances: u32) -> Result<(EvmWorkloadKind, u32)> {
    let (name, n) = match arg.split_once('@') {
        Some((name, n)) => (
            name,
            n.parse()
                .with_context(|| format!("--workloads: `{arg}`: expected NAME@INSTANCES"))?,
        ),
        None => (arg, instances),
    };
    Ok((name.parse()?, n))
}

/// Most (account, home instance) pairs an EVM genesis may seed (each a few
/// transactions: mints and approvals; an account is seeded in
/// `HOME_INSTANCES` instances at most).
const MAX_EVM_SEEDED: u64 = 1_000_000;

/// `--vm evm`: the EVM workloads through every executor, against sequential revm.
fn run_evm(args: &BenchExecArgs) -> Result<Vec<Row>> {
    let names = if args.workloads.is_empty() {
        vec!["erc20".to_string(), "uniswap".into(), "staking".into()]
    } else {
        args.workloads.clone()
    };
    let workloads: Vec<(EvmWorkloadKind, u32)> = names
        .iter()
        .map(|w| evm_workload(w, args.instances))
        .collect::<Result<_>>()?;
    // Genesis seeds every account in each of its home instances through
    // transactions: refuse what would take minutes before measuring anything.
    for (name, (_, instances)) in names.iter().zip(&workloads) {
        let homes = (*instances).clamp(1, HOME_INSTANCES);
        let seeded = args.accounts.saturating_mul(u64::from(homes));
        if seeded > MAX_EVM_SEEDED {
            bail!(
                "--vm evm: `{name}` with {} accounts seeds {seeded} (account, home instance) pairs at genesis, above {MAX_EVM_SEEDED}; use fewer --accounts",
                args.accounts
            );
        }
    }
    let config = EvmConfig::unbounded();
    let options = unlimited(args);
    for name in &args.executors {
        executor_for(EvmVm::new(config), name, 1, &options)
            .with_context(|| format!("--executors: `{name}`"))?;
    }
    machine_line();
    let auths: Vec<&str> = args.auth.iter().map(|a| a.as_str()).collect();
    println!(
        "runs: {} batches × {} transactions, digest every {} batches, median of {} interleaved runs; accounts {}, zipf {}; EIP-2930 access lists on every transaction; sender authentication {}; speedup over sequential revm (execute_batch)",
        args.batches,
        args.batch,
        args.digest_every,
        args.rounds,
        args.accounts,
        args.zipf,
        auths.join(", ")
    );
    let mut rows = Vec::new();
    for ((name, (kind, instances)), auth) in names
        .iter()
        .zip(workloads)
        .flat_map(|w| args.auth.iter().map(move |a| (w, *a)))
    {
        let spec = EvmWorkloadSpec {
            kind,
            accounts: args.accounts,
            instances,
            zipf: args.zipf,
            seed: args.seed,
        };
        let accounts = spec.accounts_for(auth);
        let (genesis, deployment) = spec.genesis_with(&accounts)?;
        let mut generator = spec.generator_with(&genesis, &deployment, &accounts)?;
        // The batches with their access lists (signed after them, under
        // secp256k1), made on a running reference state, and the gas they use.
        let mut reference = genesis.clone();
        let mut gas = 0u64;
        let mut failed = 0usize;
        let batches: Vec<Vec<EvmTx>> = (0..args.batches)
            .map(|_| -> Result<Vec<EvmTx>> {
                let txs = attach_access_lists(&reference, &generator.batch(args.batch), &config)
                    .into_iter()
                    .map(|t| accounts.sign(t, config.chain_id))
                    .collect::<Result<Vec<_>, _>>()?;
                for r in execute_batch(&mut reference, &txs, &config) {
                    gas = gas.saturating_add(r.gas_used);
                    failed += usize::from(!r.status.is_success());
                }
                Ok(txs)
            })
            .collect::<Result<_>>()?;
        let expected = reference.digest();
        let mut configs = vec![("revm".to_string(), 1)];
        configs.extend(configurations(args));
        let mut execs: Vec<Option<Box<dyn Executor<EvmVm>>>> = vec![None];
        for (name, t) in &configs[1..] {
            execs.push(Some(executor_for(EvmVm::new(config), name, *t, &options)?));
        }
        // Every run gets fresh copies (untimed): a signed transaction memoises its
        // recovered sender, and each run must recover them all itself.
        let runs = interleave(args.rounds, configs.len(), |i| {
            let fresh = batches.clone();
            match &mut execs[i] {
                Some(exec) => run_batches(exec.as_mut(), &genesis, &fresh, args.digest_every),
                None => run_revm(&genesis, &fresh, &config, args.digest_every),
            }
        });
        let mut label = if instances == 1 || name.contains('@') {
            name.clone()
        } else {
            format!("{name}@{instances}")
        };
        if auth != EvmAuth::Channel {
            label = format!("{label}/{auth}");
        }
        check_digests(&label, &configs, &runs, expected)?;
        if failed > 0 {
            println!("{label}: {failed} transactions did not succeed (same on every executor)");
        }
        let base = median(runs[0].iter().map(|r| r.seconds).collect());
        rows.extend(rows_of(&label, &configs, &runs, base, Some(gas), ""));
    }
    Ok(rows)
}

/// Sequential revm without the VM seam: `execute_batch`, one revm instance per
/// batch over the state itself.
fn run_revm(
    genesis: &EvmState,
    batches: &[Vec<EvmTx>],
    config: &EvmConfig,
    digest_every: usize,
) -> Run {
    let mut state = genesis.clone();
    let mut run = Run {
        seconds: 0.0,
        digest: [0; 32],
        executions: 0,
        aborts: 0,
        waits: 0,
        transactions: 0,
        picked: Vec::new(),
    };
    for (i, batch) in batches.iter().enumerate() {
        let start = Instant::now();
        execute_batch(&mut state, batch, config);
        if (i + 1) % digest_every.max(1) == 0 || i + 1 == batches.len() {
            run.digest = state.digest();
        }
        run.seconds += start.elapsed().as_secs_f64();
        run.executions += batch.len() as u64;
        run.transactions += batch.len() as u64;
    }
    run
}

pub fn run(args: BenchExecArgs) -> Result<ExitCode> {
    if args.batch == 0 || args.batches == 0 || args.rounds == 0 || args.digest_every == 0 {
        bail!("--batch, --batches, --rounds and --digest-every must be at least 1");
    }
    if args.vm != "evm" && args.auth != [EvmAuth::Channel] {
        bail!("--auth is for --vm evm (the ledger's transactions sign with --signed)");
    }
    let rows = match args.vm.as_str() {
        "ledger" => run_ledger(&args)?,
        "evm" => run_evm(&args)?,
        other => bail!("--vm: expected `ledger` or `evm`, got `{other}`"),
    };
    print_rows(&args, &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// The native ledger's workloads (calibrated `--work`).
fn run_ledger(args: &BenchExecArgs) -> Result<Vec<Row>> {
    let names = if args.workloads.is_empty() {
        vec!["transfer".to_string(), "dex".into()]
    } else {
        args.workloads.clone()
    };
    let kinds: Vec<WorkloadKind> = names.iter().map(|w| w.parse()).collect::<Result<_, _>>()?;
    for name in &args.executors {
        executor_by_name(name, 1, &unlimited(args))
            .with_context(|| format!("--executors: `{name}`"))?;
    }
    machine_line();
    let (work, note) = if args.work == "auto" {
        calibrate(args)?
    } else {
        let w: u32 = args
            .work
            .parse()
            .with_context(|| format!("--work: expected `auto` or a number, got `{}`", args.work))?;
        (w, format!("work: {w} rounds of SHA-256 per transaction"))
    };
    println!("{note}");
    println!(
        "runs: {} batches × {} transactions, digest every {} batches, median of {} interleaved runs; accounts {}, pools {}, markets {}, zipf {}",
        args.batches,
        args.batch,
        args.digest_every,
        args.rounds,
        args.accounts,
        args.pools,
        args.markets,
        args.zipf
    );

    let mut rows: Vec<Row> = Vec::new();
    for kind in kinds {
        let spec = spec(args, kind, work);
        let genesis = spec.genesis()?;
        let mut generator = spec.generator(0, 1)?;
        let batches: Vec<Vec<Transaction>> = (0..args.batches)
            .map(|_| generator.batch(args.batch))
            .collect();
        let configs = configurations(args);
        let mut execs: Vec<Box<dyn Executor>> = configs
            .iter()
            .map(|(name, t)| executor_by_name(name, *t, &unlimited(args)))
            .collect::<Result<_, _>>()?;
        let runs = interleave(args.rounds, configs.len(), |i| {
            run_batches(execs[i].as_mut(), &genesis, &batches, args.digest_every)
        });
        let label = kind.to_string();
        check_digests(&label, &configs, &runs, runs[0][0].digest)?;
        let base = median(runs[0].iter().map(|r| r.seconds).collect());
        rows.extend(rows_of(
            &label,
            &configs,
            &runs,
            base,
            None,
            &work.to_string(),
        ));
    }
    Ok(rows)
}

/// Prints the table (with Mgas/s when the rows have it) and writes the CSV.
fn print_rows(args: &BenchExecArgs, rows: &[Row]) -> Result<()> {
    let gas = rows.iter().any(|r| r.mgas_per_s.is_some());
    let width = rows
        .iter()
        .map(|r| r.workload.len())
        .max()
        .unwrap_or(0)
        .max(10);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n{:<width$} {:<12} {:>7} {:>10}{} {:>8} {:>8} {:>9} {:>9} {:>9}  picked",
        "workload",
        "executor",
        "threads",
        "tx/s",
        if gas {
            format!(" {:>8}", "Mgas/s")
        } else {
            String::new()
        },
        "µs/tx",
        "speedup",
        "aborts/tx",
        "waits/tx",
        "reexec/tx"
    );
    let opt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
    for r in rows {
        let _ = writeln!(
            table,
            "{:<width$} {:<12} {:>7} {:>10.0}{} {:>8.2} {:>7.2}x {:>9} {:>9} {:>9}  {}",
            r.workload,
            r.executor,
            r.threads,
            r.tx_per_s,
            match r.mgas_per_s {
                Some(m) => format!(" {m:>8.1}"),
                None if gas => format!(" {:>8}", "-"),
                None => String::new(),
            },
            r.us_per_tx,
            r.speedup,
            opt(r.aborts_per_tx),
            opt(r.waits_per_tx),
            opt(r.reexec_per_tx),
            if r.picked.is_empty() { "-" } else { &r.picked }
        );
    }
    print!("{table}");

    if let Some(path) = &args.csv {
        let mut csv = String::from(
            "vm,workload,accounts,pools,zipf,work,batch,executor,threads,tx_per_s,mgas_per_s,us_per_tx,speedup,aborts_per_tx,waits_per_tx,reexecutions_per_tx,picked\n",
        );
        let field = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
        for r in rows {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{:.1},{},{:.3},{:.3},{},{},{},{}",
                args.vm,
                r.workload,
                args.accounts,
                args.pools,
                args.zipf,
                r.work,
                args.batch,
                r.executor,
                r.threads,
                r.tx_per_s,
                field(r.mgas_per_s),
                r.us_per_tx,
                r.speedup,
                field(r.aborts_per_tx),
                field(r.waits_per_tx),
                field(r.reexec_per_tx),
                r.picked
            );
        }
        std::fs::write(path, csv).with_context(|| format!("{}: cannot write", path.display()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}
