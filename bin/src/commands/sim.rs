//! `tandem sim`: the deterministic simulator over many seeds of one protocol, in
//! parallel, with a progress bar and a summary per fault mix. Every violation is
//! printed with the command that replays it; the exit code is 1 if any was found.
//! With `--scenario FILE`, the seeds run that scenario's cluster, load shape and fault
//! schedule in virtual time instead of a fault mix
//! (`tandem_experiments::scenario_sim`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tandem_consensus::ProtocolKind;
use tandem_consensus::sim::faults::FaultMix;
use tandem_consensus::sim::{self, SimConfig, SimReport};
use tandem_experiments::scenario::{Durability, Scenario};
use tandem_experiments::scenario_sim::{self, SimTotals};

/// Arguments of `tandem sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// The protocol to simulate: pbft or hotstuff.
    #[arg(long, default_value = "pbft")]
    protocol: ProtocolKind,
    /// Number of seeds to run.
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// First seed of the range.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Run exactly this seed and print its details (replays a failure).
    #[arg(long, conflicts_with_all = ["seeds", "first_seed"])]
    seed: Option<u64>,
    /// Fault mix: none, crash, partition, lossy, overload, client-rerun, one per Byzantine mode of the
    /// protocol (pbft: silent, equivocate, slow-primary, bad-signatures, replay,
    /// corrupt-digests, view-change-storm, censor, censor-busy, censor-empty, flood, status-flood, forge-requests, corrupt-state, forge-stale), mixed — or `all`, which gives seed s the
    /// mix number s modulo the number of mixes.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Number of replicas (n ≥ 4; tolerates ⌊(n-1)/3⌋ faults).
    #[arg(long, default_value_t = 4)]
    replicas: usize,
    /// Worker threads (default: all cores).
    #[arg(long, visible_alias = "jobs")]
    threads: Option<usize>,
    /// Replicas' disks: `wal` (a restart replays what was fsynced, storage faults at
    /// crashes) or `none` (replicas restart empty). Fault mixes default to `none`,
    /// the cluster file's default (`client-rerun` always runs with disks); with `--scenario` the scenario's own `durability`
    /// is the default and this flag overrides it.
    #[arg(long, value_parser = ["wal", "none"])]
    durability: Option<String>,
    /// With disks: no storage faults (torn writes, corrupted records, lost fsyncs).
    #[arg(long)]
    no_storage_faults: bool,
    /// A field of the protocol's own section by its name there, over its simulator
    /// defaults (repeatable), e.g. HotStuff `leader_election=reputation` or
    /// `chain_length=3`, PBFT `window=512`.
    #[arg(long = "protocol-param", value_name = "KEY=VALUE", value_parser = tandem_experiments::cluster_params::parse_key_value)]
    protocol_params: Vec<(String, String)>,
    /// With --seed: print every simulated event.
    #[arg(long, requires = "seed")]
    trace: bool,
    /// Run a scenario file's cluster, load shape and fault schedule in virtual time
    /// (instead of a fault mix): safety on every seed, liveness after the last fault
    /// step when the scenario expects it kept.
    #[arg(long, conflicts_with_all = ["faults", "replicas", "protocol", "trace", "protocol_params"])]
    scenario: Option<PathBuf>,
}

impl SimArgs {
    /// Sets the disks and the protocol parameters of a run.
    fn configure(&self, cfg: &mut SimConfig) {
        cfg.disks = self.durability.as_deref() == Some("wal") || cfg.faults.needs_disks();
        cfg.storage_faults = !self.no_storage_faults;
        cfg.protocol_params = self.protocol_params.clone();
    }
}

/// `KEY=VALUE`.
/// Which mix a seed runs.
enum MixChoice {
    One(FaultMix),
    All(Vec<FaultMix>),
}

impl MixChoice {
    fn parse(protocol: ProtocolKind, name: &str) -> Result<MixChoice> {
        if name == "all" {
            return Ok(MixChoice::All(FaultMix::all(protocol)));
        }
        match FaultMix::from_name(protocol, name) {
            Some(mix) => Ok(MixChoice::One(mix)),
            None => bail!(
                "unknown fault mix `{name}` for {protocol}; choose one of: all, {}",
                FaultMix::names(protocol).join(", ")
            ),
        }
    }

    fn for_seed(&self, seed: u64) -> FaultMix {
        match self {
            MixChoice::One(mix) => *mix,
            MixChoice::All(all) => all[(seed % all.len() as u64) as usize],
        }
    }
}

/// Runs `tandem sim`.
pub fn run(args: SimArgs) -> Result<ExitCode> {
    if args.replicas < 4 {
        bail!("--replicas must be at least 4 (n = 3f+1 with f ≥ 1)");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    if let Some(path) = &args.scenario {
        let seeds = match args.seed {
            Some(seed) => seed..seed.saturating_add(1),
            None => args.first_seed..args.first_seed.saturating_add(args.seeds),
        };
        return run_scenario(&args, path, seeds, threads);
    }
    let mixes = MixChoice::parse(args.protocol, &args.faults)?;
    let mut probe = SimConfig::new(args.protocol, 0, mixes.for_seed(0), args.replicas);
    args.configure(&mut probe);
    probe.check_protocol_params()?;
    if let Some(seed) = args.seed {
        let mut cfg = SimConfig::new(args.protocol, seed, mixes.for_seed(seed), args.replicas);
        cfg.record_trace = args.trace;
        args.configure(&mut cfg);
        return Ok(run_one(&cfg));
    }
    let params: String = args
        .protocol_params
        .iter()
        .map(|(k, v)| format!(", {k} = {v}"))
        .collect();
    println!(
        "tandem sim: {}, {} seeds from {}, faults {}, {} replicas, {threads} threads{params}",
        args.protocol, args.seeds, args.first_seed, args.faults, args.replicas
    );
    let started = Instant::now();
    let reports = run_many(&args, &mixes, threads);
    print_summary(&reports, &FaultMix::all(args.protocol));
    let failures: Vec<&SimReport> = reports.iter().filter(|r| !r.ok()).collect();
    for r in &failures {
        println!(
            "\nseed {} ({}) FAILED:",
            r.config.seed,
            r.config.faults.name()
        );
        for v in &r.violations {
            println!("  {v}");
        }
        println!("  replay: {}", r.replay_command());
    }
    let elapsed = started.elapsed();
    if failures.is_empty() {
        println!(
            "\nno violations in {} runs ({:.1} s)",
            reports.len(),
            elapsed.as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "\n{} of {} runs found violations ({:.1} s)",
            failures.len(),
            reports.len(),
            elapsed.as_secs_f64()
        );
        Ok(ExitCode::from(1))
    }
}

fn run_many(args: &SimArgs, mixes: &MixChoice, threads: usize) -> Vec<SimReport> {
    let bar = ProgressBar::new(args.seeds);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {elapsed_precise}  eta {eta}  {msg}",
        )
        .expect("valid template"),
    );
    let next = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let reports = Mutex::new(Vec::with_capacity(args.seeds as usize));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.seeds {
                        break;
                    }
                    let seed = args.first_seed + i;
                    let mut cfg =
                        SimConfig::new(args.protocol, seed, mixes.for_seed(seed), args.replicas);
                    args.configure(&mut cfg);
                    let report = sim::run(&cfg);
                    if !report.ok() {
                        let n = failures.fetch_add(1, Ordering::Relaxed) + 1;
                        bar.set_message(format!("{n} failing"));
                    }
                    reports
                        .lock()
                        .expect("no worker panics holding the lock")
                        .push(report);
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut reports = reports.into_inner().expect("workers finished");
    reports.sort_by_key(|r| r.config.seed);
    reports
}

#[derive(Default)]
struct MixTotals {
    runs: u64,
    completed: u64,
    planned: u64,
    view_changes: u64,
    state_transfers: u64,
    failures: u64,
}

/// One row per mix that ran, in the order of `order` (the protocol's mix list).
fn print_summary(reports: &[SimReport], order: &[FaultMix]) {
    let position = |mix: &FaultMix| order.iter().position(|m| m == mix);
    let mut by_mix: BTreeMap<(Option<usize>, FaultMix), MixTotals> = BTreeMap::new();
    for r in reports {
        let mix = r.config.faults;
        let t = by_mix.entry((position(&mix), mix)).or_default();
        t.runs += 1;
        t.completed += r.requests_completed;
        t.planned += r.requests_planned;
        t.view_changes += r.view_changes;
        t.state_transfers += r.state_transfers;
        t.failures += u64::from(!r.ok());
    }
    println!(
        "\n{:<18} {:>6} {:>19} {:>13} {:>16} {:>11}",
        "fault mix", "runs", "requests committed", "view changes", "state transfers", "violations"
    );
    let mut total = MixTotals::default();
    for ((_, mix), t) in &by_mix {
        print_row(mix.name(), t);
        total.runs += t.runs;
        total.completed += t.completed;
        total.planned += t.planned;
        total.view_changes += t.view_changes;
        total.state_transfers += t.state_transfers;
        total.failures += t.failures;
    }
    print_row("total", &total);
}

fn print_row(name: &str, t: &MixTotals) {
    println!(
        "{:<18} {:>6} {:>19} {:>13} {:>16} {:>11}",
        name,
        t.runs,
        format!("{}/{}", t.completed, t.planned),
        t.view_changes,
        t.state_transfers,
        t.failures
    );
}

fn run_one(cfg: &SimConfig) -> ExitCode {
    let r = sim::run(cfg);
    for line in &r.trace {
        println!("{line}");
    }
    println!(
        "{}, seed {}, faults {}, {} replicas",
        cfg.protocol,
        cfg.seed,
        cfg.faults.name(),
        cfg.replicas
    );
    if !r.byzantine.is_empty() {
        let modes: Vec<String> = r
            .byzantine
            .iter()
            .map(|(id, m)| format!("{id} {m}"))
            .collect();
        println!("byzantine: {}", modes.join(", "));
    }
    println!(
        "requests committed {}/{}, highest sequence {}, view changes {}, state transfers {}",
        r.requests_completed,
        r.requests_planned,
        r.highest_delivered,
        r.view_changes,
        r.state_transfers
    );
    println!(
        "{} events, {} of virtual time, trace {}",
        r.events,
        r.end,
        r.trace_hash.to_hex()
    );
    if r.ok() {
        println!("no violations");
        ExitCode::SUCCESS
    } else {
        for v in &r.violations {
            println!("violation: {v}");
        }
        println!("replay: {}", r.replay_command());
        ExitCode::from(1)
    }
}

/// `tandem sim --scenario FILE`: the scenario over `seeds`, a table of totals, every
/// failing seed with the command that replays it.
fn run_scenario(
    args: &SimArgs,
    path: &Path,
    seeds: std::ops::Range<u64>,
    threads: usize,
) -> Result<ExitCode> {
    let mut scenario = Scenario::load(path)?;
    match args.durability.as_deref() {
        Some("wal") => scenario.cluster.durability = Durability::Wal,
        Some(_) => scenario.cluster.durability = Durability::None,
        None => {}
    }
    let storage_faults = !args.no_storage_faults;
    let disks = match scenario.cluster.durability {
        Durability::Wal if storage_faults => "wal (with storage faults)",
        Durability::Wal => "wal",
        Durability::None => "none",
    };
    println!(
        "tandem sim: scenario {} ({}), {} seeds from {}, {} replicas, durability {disks}, {threads} threads",
        scenario.name,
        path.display(),
        seeds.end - seeds.start,
        seeds.start,
        scenario.cluster.replicas
    );
    println!("{}", scenario_sim::application_note(&scenario));
    let started = Instant::now();
    let bar = ProgressBar::new(seeds.end - seeds.start);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {elapsed_precise}  eta {eta}")
            .expect("valid template"),
    );
    let reports =
        scenario_sim::run_seeds(&scenario, seeds, threads, storage_faults, &|_| bar.inc(1))?;
    bar.finish_and_clear();
    let totals = SimTotals::of(&reports);
    println!("\n{}", totals.render(scenario.expect.liveness));
    for r in reports.iter().filter(|r| !r.ok()) {
        println!("\nseed {} FAILED:", r.seed);
        for v in &r.violations {
            println!("  {v}");
        }
        let mut flags = String::new();
        if let Some(d) = &args.durability {
            flags.push_str(&format!(" --durability {d}"));
        }
        if args.no_storage_faults {
            flags.push_str(" --no-storage-faults");
        }
        println!(
            "  replay: tandem sim --scenario {} --seed {}{flags}",
            path.display(),
            r.seed
        );
    }
    let secs = started.elapsed().as_secs_f64();
    if totals.failed == 0 {
        println!("\nno violations in {} runs ({secs:.1} s)", totals.runs);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "\n{} of {} runs found violations ({secs:.1} s)",
            totals.failed, totals.runs
        );
        Ok(ExitCode::from(1))
    }
}
