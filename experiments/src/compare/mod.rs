//! `tandem compare`: a matrix of cluster settings (protocols × executors × workloads ×
//! Zipf skews × replica counts × batch sizes × signed-all), each cell a `tandem local`
//! run through the same runner, `repeat` times per cell in an interleaved order
//! (round-robin over the cells, so slow drift of a shared machine spreads over every
//! cell instead of biasing the ones that ran last), then a table of median and
//! min–max per cell ([`stats`]), `compare.csv`, `runs.csv` and grouped bar charts with
//! error bars ([`chart`]), all in one results folder that also holds each run's folder.
//!
//! The matrix comes from flags or from a TOML file ([`CompareSpec`], the same field
//! names; a flag given replaces the file's value). Every cell runs on one VM
//! (`vm`: the native ledger, or the EVM with its own workloads — `uniswap`, `erc20`,
//! … — and gas bounds), which the labels of EVM cells, the header, the CSVs and the
//! charts name.

pub mod chart;
pub mod stats;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cluster_params::{ClusterParams, DEFAULT_EVM_WORKLOAD};
use crate::cpu_budget::CpuBudget;
use crate::report;
use crate::runner::{LocalOptions, RunOutcome, RunPlan};

pub use stats::{CellStats, Spread};

/// The table of cells a comparison writes (one line per cell).
pub const COMPARE_CSV: &str = "compare.csv";
/// Every run of a comparison, in the order they ran.
pub const RUNS_CSV: &str = "runs.csv";
/// Grouped bars: end-to-end tx/s per cell, median with min–max error bars.
pub const THROUGHPUT_SVG: &str = "compare-throughput.svg";
/// Grouped bars: p99 latency per cell, median with min–max error bars.
pub const P99_SVG: &str = "compare-p99.svg";

/// The axes of the matrix; an axis left out has the single default value
/// ([`ClusterParams::default`]). Each is a list, in the order cells are laid out.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Protocols (`pbft`, `hotstuff`), each optionally with its own parameters as
    /// `NAME:KEY=VALUE[:KEY=VALUE]...` (`hotstuff:leader_election=reputation`), so two
    /// variants of one protocol are two cells.
    pub protocols: Option<Vec<String>>,
    /// Executor names (`sequential`, `block-stm`, `access-list`, `auto`, `none`).
    pub executors: Option<Vec<String>>,
    /// Workload names: the ledger's (`transfer`, `dex`, `lending`, `smallbank`,
    /// `mixed`; default `dex`) or, with `vm = "evm"`, the EVM's (`evm-transfer`,
    /// `erc20`, `uniswap`, `lending`, `staking`, `evm-mixed`; default `uniswap`).
    pub workloads: Option<Vec<String>>,
    /// Zipf skews of account choice (0 = uniform).
    pub zipf: Option<Vec<f64>>,
    /// Replica counts (n = 3f+1 ≥ 4).
    pub replicas: Option<Vec<usize>>,
    /// Maximum requests per batch.
    pub batch_size: Option<Vec<usize>>,
    /// Sign every protocol message or not.
    pub signed_all: Option<Vec<bool>>,
}

/// What every cell shares: the load and the fixed cluster settings (the `tandem local`
/// flags of the same names; a field left out keeps `tandem local`'s default).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The VM every cell runs: `ledger` (default) or `evm`.
    pub vm: Option<String>,
    /// EVM: the largest gas limit a transaction may declare.
    pub max_tx_gas: Option<u64>,
    /// EVM: the gas one batch may reserve.
    pub max_batch_gas: Option<u64>,
    /// Seconds of load per run.
    pub duration: Option<f64>,
    /// Seconds left out of the statistics at the start of each run.
    pub warmup: Option<f64>,
    /// Load clients.
    pub clients: Option<usize>,
    /// Open loop: total offered transactions per second.
    pub rate: Option<f64>,
    /// Closed loop: requests each client keeps outstanding.
    pub window: Option<usize>,
    /// Pad each transaction to this many bytes.
    pub payload: Option<usize>,
    /// Executor threads per replica.
    pub threads: Option<usize>,
    /// Accounts in the genesis state.
    pub accounts: Option<u64>,
    /// AMM pools (dex, mixed).
    pub pools: Option<u32>,
    /// Extra SHA-256 rounds per transaction.
    pub work: Option<u32>,
    /// Batch timeout, milliseconds.
    pub batch_timeout_ms: Option<u64>,
    /// Checkpoint interval (sequence numbers).
    pub checkpoint_interval: Option<u64>,
    /// Initial leader time-out, milliseconds.
    pub view_timeout_ms: Option<u64>,
    /// CPUs per replica process (`--cpus-per-replica`).
    pub cpus_per_replica: Option<f64>,
    /// One CPU list per replica, `;`-separated (`--cpu-sets`, e.g. `"0;1;0;1"`).
    pub cpu_sets: Option<String>,
}

/// A comparison as a file (TOML) or flags describe it: `repeat`, the fixed settings
/// at the top level and the `[matrix]` of axes. Unknown fields are errors.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CompareSpec {
    /// Runs per cell (at least 1; default 1).
    pub repeat: Option<usize>,
    /// Fixed settings.
    #[serde(flatten)]
    pub settings: Settings,
    /// The axes.
    #[serde(default)]
    pub matrix: Matrix,
}

impl CompareSpec {
    /// Reads a comparison file; the error names the file (and the field and line).
    pub fn read(path: &Path) -> Result<CompareSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }

    /// This spec with every value `over` sets taken from `over` (flags over a file).
    pub fn overridden_by(self, over: CompareSpec) -> CompareSpec {
        let (s, o) = (self.settings, over.settings);
        let (m, om) = (self.matrix, over.matrix);
        CompareSpec {
            repeat: over.repeat.or(self.repeat),
            settings: Settings {
                vm: o.vm.or(s.vm),
                max_tx_gas: o.max_tx_gas.or(s.max_tx_gas),
                max_batch_gas: o.max_batch_gas.or(s.max_batch_gas),
                duration: o.duration.or(s.duration),
                warmup: o.warmup.or(s.warmup),
                clients: o.clients.or(s.clients),
                rate: o.rate.or(s.rate),
                window: o.window.or(s.window),
                payload: o.payload.or(s.payload),
                threads: o.threads.or(s.threads),
                accounts: o.accounts.or(s.accounts),
                pools: o.pools.or(s.pools),
                work: o.work.or(s.work),
                batch_timeout_ms: o.batch_timeout_ms.or(s.batch_timeout_ms),
                checkpoint_interval: o.checkpoint_interval.or(s.checkpoint_interval),
                view_timeout_ms: o.view_timeout_ms.or(s.view_timeout_ms),
                cpus_per_replica: o.cpus_per_replica.or(s.cpus_per_replica),
                cpu_sets: o.cpu_sets.or(s.cpu_sets),
            },
            matrix: Matrix {
                protocols: om.protocols.or(m.protocols),
                executors: om.executors.or(m.executors),
                workloads: om.workloads.or(m.workloads),
                zipf: om.zipf.or(m.zipf),
                replicas: om.replicas.or(m.replicas),
                batch_size: om.batch_size.or(m.batch_size),
                signed_all: om.signed_all.or(m.signed_all),
            },
        }
    }

    /// The cells of the matrix, each a checked run plan: the first axis varies
    /// slowest (protocols, executors, workloads, zipf, replicas, batch size,
    /// signed-all). Runs go to `results`, named after the cell. An empty axis, a
    /// duplicate value or a bad setting is an error naming the flag or field. On the
    /// EVM a label starts with `evm` (`evm` alone when nothing varies).
    pub fn cells(&self, replica_program: &Path, results: &Path) -> Result<Vec<Cell>> {
        let d = ClusterParams::default();
        let m = &self.matrix;
        let vm = self.vm()?;
        let default_workload = if vm == "evm" {
            DEFAULT_EVM_WORKLOAD.to_string()
        } else {
            d.workload.clone()
        };
        let axes: Vec<(&'static str, Vec<String>)> = vec![
            (
                "protocol",
                axis("protocols", &normalised_variants(&m.protocols)?, || {
                    vec![d.protocol.to_string()]
                })?,
            ),
            (
                "executor",
                axis("executors", &m.executors, || vec![d.executor.clone()])?,
            ),
            (
                "workload",
                axis("workloads", &m.workloads, || vec![default_workload])?,
            ),
            ("zipf", axis("zipf", &m.zipf, || vec![d.zipf])?),
            (
                "replicas",
                axis("replicas", &m.replicas, || vec![d.replicas])?,
            ),
            (
                "batch_size",
                axis("batch-size", &m.batch_size, || vec![d.batch_size])?,
            ),
            (
                "signed_all",
                axis("signed-all", &m.signed_all, || vec![d.signed_all])?,
            ),
        ];
        let mut cells = Vec::new();
        for values in cartesian(&axes) {
            let label = values
                .iter()
                .zip(&axes)
                .filter(|(_, (_, all))| all.len() > 1)
                .map(|(v, (name, _))| short_value(name, v))
                .collect::<Vec<_>>()
                .join(" ");
            let label = match (vm, label.is_empty()) {
                ("evm", true) => "evm".to_string(),
                ("evm", false) => format!("evm {label}"),
                (_, true) => "all".to_string(),
                (_, false) => label,
            };
            let options = self.options(&axes, &values, replica_program, results, &label)?;
            let cluster = options.cluster.clone();
            let plan = options.plan().with_context(|| format!("cell {label}"))?;
            let varying = values
                .iter()
                .zip(&axes)
                .filter(|(_, (_, all))| all.len() > 1)
                .map(|(v, (name, _))| (name.to_string(), v.clone()))
                .collect();
            cells.push(Cell {
                label,
                varying,
                cluster,
                plan,
            });
        }
        Ok(cells)
    }

    /// The `tandem local` options of one cell.
    fn options(
        &self,
        axes: &[(&'static str, Vec<String>)],
        values: &[String],
        replica_program: &Path,
        results: &Path,
        label: &str,
    ) -> Result<LocalOptions> {
        let d = ClusterParams::default();
        let s = &self.settings;
        let value = |name: &str| -> &str {
            let i = axes.iter().position(|(n, _)| *n == name).unwrap_or(0);
            &values[i]
        };
        let replicas: usize = value("replicas").parse().context("--replicas")?;
        let cpu_budget =
            CpuBudget::from_flags(s.cpus_per_replica, s.cpu_sets.as_deref(), replicas)?;
        let mut cluster = ClusterParams {
            vm: self.vm()?.to_string(),
            max_tx_gas: s.max_tx_gas,
            max_batch_gas: s.max_batch_gas,
            executor: value("executor").to_string(),
            workload: value("workload").to_string(),
            zipf: value("zipf").parse().context("--zipf")?,
            replicas,
            batch_size: value("batch_size").parse().context("--batch-size")?,
            signed_all: value("signed_all").parse().context("--signed-all")?,
            threads: cpu_budget.threads(s.threads, replicas),
            accounts: s.accounts.unwrap_or(d.accounts),
            pools: s.pools.unwrap_or(d.pools),
            work: s.work.unwrap_or(d.work),
            batch_timeout_ms: s.batch_timeout_ms.unwrap_or(d.batch_timeout_ms),
            checkpoint_interval: s.checkpoint_interval.unwrap_or(d.checkpoint_interval),
            view_timeout_ms: s.view_timeout_ms.unwrap_or(d.view_timeout_ms),
            ..d
        };
        cluster
            .set_protocol_variant(value("protocol"))
            .context("--protocols")?;
        Ok(LocalOptions {
            cluster,
            cpu_budget,
            replica_program: replica_program.to_path_buf(),
            clients: s.clients.unwrap_or(2),
            rate: s.rate,
            window: s.window,
            duration_secs: s.duration.unwrap_or(20.0),
            warmup_secs: s.warmup.unwrap_or(3.0),
            payload: s.payload.unwrap_or(0),
            retransmit_ms: 1000,
            kill: Vec::new(),
            restart: Vec::new(),
            byzantine: Vec::new(),
            name: label.replace(' ', "-"),
            results: results.to_path_buf(),
        })
    }

    /// The comparison's header: what runs, on which VM and under which CPU budget —
    /// every cell runs on the same ones —, e.g. `4 cells × 3 runs; VM ledger; CPU
    /// budget per replica: sets 0;1;0;1 (sched_setaffinity); executor threads per
    /// replica: 1`.
    pub fn header(&self, cells: &[Cell], repeat: usize) -> String {
        let budget = cells
            .first()
            .map(|c| &c.plan.scenario.cluster.cpu)
            .cloned()
            .unwrap_or_default();
        let mut threads: Vec<usize> = cells.iter().map(|c| c.cluster.threads).collect();
        threads.dedup();
        let threads: Vec<String> = threads.iter().map(usize::to_string).collect();
        let budget = if budget.is_none() {
            budget.label()
        } else {
            format!(
                "{} ({})",
                budget.label(),
                budget.enforced_by(crate::scenario::BackendKind::Process)
            )
        };
        let vm = cells.first().map_or("ledger", |c| c.plan.scenario.vm());
        format!(
            "{} cells × {repeat} runs; VM {vm}; CPU budget per replica: {budget}; executor \
             threads per replica: {}",
            cells.len(),
            threads.join(", ")
        )
    }

    /// The VM every cell runs: `ledger` (the default) or `evm`.
    pub fn vm(&self) -> Result<&'static str> {
        match self.settings.vm.as_deref() {
            None | Some("ledger") => Ok("ledger"),
            Some("evm") => Ok("evm"),
            Some(other) => bail!("--vm: expected ledger or evm, got `{other}`"),
        }
    }

    /// Runs per cell (at least 1).
    pub fn repeat(&self) -> Result<usize> {
        match self.repeat.unwrap_or(1) {
            0 => bail!("--repeat must be at least 1"),
            k => Ok(k),
        }
    }
}

/// The protocols axis with each variant in its one spelling
/// ([`ClusterParams::protocol_variant`]: no spaces), so labels, folder names and
/// `compare.csv` agree and `hotstuff: chain_length=3` equals `hotstuff:chain_length=3`.
fn normalised_variants(given: &Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    let Some(given) = given else {
        return Ok(None);
    };
    given
        .iter()
        .map(|v| {
            let mut c = ClusterParams::default();
            c.set_protocol_variant(v.trim())
                .with_context(|| format!("--protocols {v}"))?;
            Ok(c.protocol_variant())
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// One axis as strings, checked: not empty, no value twice.
fn axis<T: ToString>(
    flag: &str,
    given: &Option<Vec<T>>,
    default: impl FnOnce() -> Vec<T>,
) -> Result<Vec<String>> {
    let values: Vec<String> = match given {
        Some(v) => v.iter().map(T::to_string).collect(),
        None => default().iter().map(T::to_string).collect(),
    };
    if values.is_empty() {
        bail!("--{flag} needs at least one value");
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            bail!("--{flag} lists {v} twice");
        }
    }
    Ok(values)
}

/// Every combination of the axes' values, the first axis varying slowest.
fn cartesian(axes: &[(&'static str, Vec<String>)]) -> Vec<Vec<String>> {
    let mut combos = vec![Vec::new()];
    for (_, values) in axes {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push(v.clone());
                    c
                })
            })
            .collect();
    }
    combos
}

/// How a value shows in a cell label: names as they are, numbers with their axis.
fn short_value(axis: &str, value: &str) -> String {
    match axis {
        "protocol" | "executor" | "workload" => value.to_string(),
        "zipf" => format!("zipf={value}"),
        "replicas" => format!("n={value}"),
        "batch_size" => format!("batch={value}"),
        "signed_all" if value == "true" => "signed-all".to_string(),
        "signed_all" => "channel-auth".to_string(),
        _ => format!("{axis}={value}"),
    }
}

/// One cell of the matrix.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The values of the axes with more than one value, e.g. `sequential transfer`
    /// (`all` when nothing varies).
    pub label: String,
    /// (axis, value) of the axes with more than one value, in axis order.
    pub varying: Vec<(String, String)>,
    /// This cell's cluster settings (the axes' values), as `compare.csv` lists them.
    pub cluster: ClusterParams,
    /// The run plan (`tandem local`'s, with this cell's settings).
    pub plan: RunPlan,
}

/// The order runs happen in: `repeat` rounds, each round every cell once in order
/// (cell index, round index). Interleaving spreads a shared machine's drift over all
/// cells.
pub fn run_order(cells: usize, repeat: usize) -> Vec<(usize, usize)> {
    (0..repeat)
        .flat_map(|round| (0..cells).map(move |cell| (cell, round)))
        .collect()
}

/// One finished run.
#[derive(Clone, Debug)]
pub struct RunRow {
    /// Which cell.
    pub cell: usize,
    /// Which round (0-based).
    pub round: usize,
    /// The run's summary.
    pub summary: report::RunSummary,
    /// The run's results folder.
    pub dir: PathBuf,
}

/// What a comparison produced.
pub struct Comparison {
    /// The cells, in matrix order.
    pub cells: Vec<Cell>,
    /// Per cell, the statistics over its runs.
    pub stats: Vec<CellStats>,
    /// Every run, in the order they ran.
    pub runs: Vec<RunRow>,
    /// The comparison's results folder.
    pub dir: PathBuf,
}

impl Comparison {
    /// Whether every run held: the replicas agreed and nothing acknowledged was lost
    /// ([`crate::report::RunSummary::held`]).
    pub fn all_held(&self) -> bool {
        self.runs.iter().all(|r| r.summary.held())
    }
}

/// Runs every cell `repeat` times in [`run_order`] through `run_one` (the runner of
/// `tandem local`: [`crate::runner::run`]), each run's folder inside a fresh
/// `<results>/<name>-<time>/`, then writes `compare.csv`, `runs.csv` and the charts
/// there. Progress goes to stderr. `cells` must come from [`CompareSpec::cells`] with
/// `results` set to [`compare_dir`]'s folder.
pub fn run_matrix(
    name: &str,
    cells: Vec<Cell>,
    repeat: usize,
    dir: PathBuf,
    mut run_one: impl FnMut(&RunPlan) -> Result<RunOutcome>,
) -> Result<Comparison> {
    let order = run_order(cells.len(), repeat);
    let mut runs = Vec::new();
    for (i, &(cell, round)) in order.iter().enumerate() {
        eprintln!(
            "[{}/{}] {} (run {} of {})",
            i + 1,
            order.len(),
            cells[cell].label,
            round + 1,
            repeat
        );
        let outcome = run_one(&cells[cell].plan)
            .with_context(|| format!("cell {}, run {}", cells[cell].label, round + 1))?;
        runs.push(RunRow {
            cell,
            round,
            summary: outcome.summary,
            dir: outcome.dir,
        });
    }
    let stats: Vec<CellStats> = (0..cells.len())
        .map(|c| CellStats::of(runs.iter().filter(|r| r.cell == c).map(|r| &r.summary)))
        .collect();
    let comparison = Comparison {
        cells,
        stats,
        runs,
        dir,
    };
    write_comparison(name, &comparison)?;
    Ok(comparison)
}

/// A fresh folder for a comparison: `<results>/<name>-<time>/` (see
/// [`report::results_dir`]), created.
pub fn compare_dir(results: &Path, name: &str) -> Result<PathBuf> {
    let dir = report::results_dir(results, name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Writes `compare.csv`, `runs.csv` and the two charts into the comparison's folder.
fn write_comparison(name: &str, c: &Comparison) -> Result<()> {
    let write = |file: &str, text: String| {
        let path = c.dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write(COMPARE_CSV, stats::render_csv(&c.cells, &c.stats))?;
    write(RUNS_CSV, stats::render_runs_csv(&c.cells, &c.runs))?;
    let subtitle = chart_subtitle(c);
    write(
        THROUGHPUT_SVG,
        chart::bar_chart(
            &format!("{name}: throughput"),
            &subtitle,
            "end-to-end throughput (tx/s)",
            &c.cells,
            &c.stats.iter().map(|s| s.tps).collect::<Vec<_>>(),
        )?,
    )?;
    write(
        P99_SVG,
        chart::bar_chart(
            &format!("{name}: p99 latency"),
            &subtitle,
            "p99 latency (ms)",
            &c.cells,
            &c.stats.iter().map(|s| s.p99_ms).collect::<Vec<_>>(),
        )?,
    )
}

/// "VM ledger, median of 3 runs per cell, bars min–max, rev 3f2a9c1".
fn chart_subtitle(c: &Comparison) -> String {
    let repeat = c.runs.iter().map(|r| r.round + 1).max().unwrap_or(0);
    let vm = c.cells.first().map_or("ledger", |c| c.plan.scenario.vm());
    let mut parts = vec![format!(
        "VM {vm}, median of {repeat} run{} per cell, error bars min–max",
        if repeat == 1 { "" } else { "s" }
    )];
    if let Some(rev) = c.runs.first().and_then(|r| r.summary.git_revision.clone()) {
        parts.push(format!("rev {rev}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_run::sample_summary;

    fn spec(toml_text: &str) -> CompareSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn the_matrix_expands_first_axis_slowest_with_labels_of_varying_axes() {
        let s = spec(
            r#"
            duration = 2
            [matrix]
            executors = ["sequential", "block-stm"]
            workloads = ["transfer", "dex", "lending"]
            signed_all = [false]
            "#,
        );
        let cells = s.cells(Path::new("tandem"), Path::new("out")).unwrap();
        let labels: Vec<&str> = cells.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "sequential transfer",
                "sequential dex",
                "sequential lending",
                "block-stm transfer",
                "block-stm dex",
                "block-stm lending"
            ]
        );
        assert_eq!(cells[4].cluster.executor, "block-stm");
        assert_eq!(cells[4].cluster.workload, "dex");
        assert_eq!(cells[4].plan.scenario.name, "block-stm-dex");
        assert_eq!(cells[4].plan.results, Path::new("out"));
        assert_eq!(cells[4].plan.scenario.load.duration.as_secs(), 2);
        assert_eq!(
            cells[4].varying,
            [
                ("executor".to_string(), "block-stm".to_string()),
                ("workload".to_string(), "dex".to_string())
            ]
        );
        let all =
            spec("[matrix]\nzipf = [0.0, 1.2]\nreplicas = [4, 7]\nsigned_all = [false, true]")
                .cells(Path::new("tandem"), Path::new("out"))
                .unwrap();
        assert_eq!(all.len(), 8);
        assert_eq!(all[7].label, "zipf=1.2 n=7 signed-all");
        assert_eq!(all[7].cluster.replicas, 7);
        assert!(all[7].cluster.signed_all);
        assert_eq!(all[7].cluster.zipf, 1.2);
        assert_eq!(all[0].label, "zipf=0 n=4 channel-auth");
    }

    #[test]
    fn nothing_varying_is_one_cell() {
        let cells = CompareSpec::default()
            .cells(Path::new("tandem"), Path::new("out"))
            .unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].label, "all");
        let d = ClusterParams::default();
        let share = crate::cpu_budget::machine_share_threads(
            crate::cpu_budget::usable_cpu_count(),
            d.replicas,
        );
        assert_eq!(
            cells[0].cluster,
            ClusterParams {
                threads: share,
                ..d
            },
            "the defaults, with the replicas' share of the machine as executor threads"
        );
    }

    /// Two variants of one protocol are two cells; each cell's cluster section holds
    /// its own parameters, and the label and `compare.csv` name the variant.
    #[test]
    fn protocol_variants_are_cells_with_their_own_parameters() {
        use tandem_consensus::hotstuff::HotStuffReplica;
        let s = spec(
            "[matrix]\nprotocols = [\"hotstuff\", \"hotstuff:leader_election=reputation:chain_length=3\"]",
        );
        let cells = s.cells(Path::new("t"), Path::new("o")).unwrap();
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[0].label, "hotstuff");
        assert_eq!(
            cells[1].label,
            "hotstuff:leader_election=reputation:chain_length=3"
        );
        assert_eq!(cells[1].cluster.protocol_variant(), cells[1].label);
        let own = |c: &Cell| {
            c.plan
                .scenario
                .cluster
                .protocol
                .own_params::<HotStuffReplica>()
                .unwrap()
        };
        assert_eq!(own(&cells[0]).chain_length, 2);
        assert_eq!(own(&cells[1]).chain_length, 3);
        assert_eq!(
            own(&cells[1]).leader_election.name(),
            "reputation",
            "the variant's parameters reach the cluster the runner starts"
        );
    }

    /// `vm = "evm"`: every cell runs the EVM (its plan's scenario carries the EVM
    /// workload and the gas bounds), labels start with `evm`, the workload defaults to
    /// `uniswap`, and ledger workloads or an unknown VM are refused.
    #[test]
    fn an_evm_matrix_runs_every_cell_on_the_evm() {
        let s = spec(
            "vm = \"evm\"\nmax_tx_gas = 300000\npools = 2\n[matrix]\nexecutors = [\"sequential\", \"block-stm\"]\nworkloads = [\"uniswap\", \"staking\"]",
        );
        let cells = s.cells(Path::new("t"), Path::new("o")).unwrap();
        let labels: Vec<&str> = cells.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "evm sequential uniswap",
                "evm sequential staking",
                "evm block-stm uniswap",
                "evm block-stm staking"
            ]
        );
        let evm = cells[3].plan.scenario.evm.as_ref().unwrap();
        assert_eq!(evm.workload.kind.as_str(), "staking");
        assert_eq!((evm.workload.instances, evm.max_tx_gas), (2, 300_000));
        assert_eq!(cells[3].cluster.vm, "evm");
        assert_eq!(cells[3].plan.scenario.name, "evm-block-stm-staking");
        assert!(s.header(&cells, 1).contains("; VM evm; "));

        let one = spec("vm = \"evm\"")
            .cells(Path::new("t"), Path::new("o"))
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].label, "evm");
        assert_eq!(one[0].cluster.workload, DEFAULT_EVM_WORKLOAD);
        let ledger = CompareSpec::default()
            .cells(Path::new("t"), Path::new("o"))
            .unwrap();
        assert!(ledger[0].plan.scenario.evm.is_none());

        for (text, want) in [
            (
                "vm = \"evm\"\n[matrix]\nworkloads = [\"dex\"]",
                "unknown EVM workload `dex`",
            ),
            ("vm = \"wasm\"", "--vm: expected ledger or evm"),
        ] {
            let err = spec(text)
                .cells(Path::new("t"), Path::new("o"))
                .unwrap_err();
            assert!(format!("{err:#}").contains(want), "{want}: {err:#}");
        }
    }

    #[test]
    fn bad_matrices_name_the_axis() {
        let cases = [
            ("[matrix]\nexecutors = []", "--executors"),
            ("[matrix]\nworkloads = [\"dex\", \"dex\"]", "--workloads"),
            ("[matrix]\nworkloads = [\"nope\"]", "workload"),
            ("[matrix]\nprotocols = [\"raft\"]", "--protocols"),
            ("[matrix]\nprotocols = [\"hotstuff:window=3\"]", "window"),
            (
                "[matrix]\nprotocols = [\"hotstuff:chain_length\"]",
                "KEY=VALUE",
            ),
            (
                "[matrix]\nprotocols = [\"hotstuff:chain_length=9\"]",
                "chain_length",
            ),
            ("duration = 0.5", "--duration"),
        ];
        for (text, flag) in cases {
            let err = spec(text)
                .cells(Path::new("t"), Path::new("o"))
                .expect_err("refused");
            assert!(format!("{err:#}").contains(flag), "{flag}: {err:#}");
        }
        assert!(spec("repeat = 0").repeat().is_err());
        let unknown = toml::from_str::<CompareSpec>("[matrix]\nexecutor = [\"x\"]").unwrap_err();
        assert!(unknown.to_string().contains("executor"), "{unknown}");
        assert!(toml::from_str::<CompareSpec>("durashun = 3").is_err());
    }

    #[test]
    fn flags_override_the_file_axis_by_axis() {
        let file = spec(
            "repeat = 3\nduration = 5\n[matrix]\nexecutors = [\"sequential\"]\nworkloads = [\"dex\"]",
        );
        let flags = CompareSpec {
            matrix: Matrix {
                workloads: Some(vec!["transfer".into()]),
                ..Matrix::default()
            },
            ..CompareSpec::default()
        };
        let merged = file.overridden_by(flags);
        assert_eq!(merged.repeat, Some(3));
        assert_eq!(merged.settings.duration, Some(5.0));
        assert_eq!(merged.matrix.executors, Some(vec!["sequential".into()]));
        assert_eq!(merged.matrix.workloads, Some(vec!["transfer".into()]));
    }

    #[test]
    fn runs_interleave_round_robin_over_cells() {
        assert_eq!(
            run_order(3, 2),
            [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
        );
        assert_eq!(run_order(1, 3), [(0, 0), (0, 1), (0, 2)]);
        assert!(run_order(2, 0).is_empty());
    }

    #[test]
    fn a_matrix_runs_in_interleaved_order_and_writes_its_tables_and_charts() {
        let out = tempfile::tempdir().unwrap();
        let s = spec("[matrix]\nexecutors = [\"sequential\", \"block-stm\"]");
        let cells = s.cells(Path::new("tandem"), out.path()).unwrap();
        let mut ran = Vec::new();
        let comparison = run_matrix("cmp", cells, 3, out.path().to_path_buf(), |plan| {
            ran.push(plan.scenario.name.clone());
            let mut summary = sample_summary();
            summary.throughput.end_to_end_tps = 1000.0 * ran.len() as f64;
            Ok(RunOutcome {
                summary,
                dir: out.path().join(format!("run-{}", ran.len())),
            })
        })
        .unwrap();
        assert_eq!(
            ran,
            [
                "sequential",
                "block-stm",
                "sequential",
                "block-stm",
                "sequential",
                "block-stm"
            ]
        );
        // sequential ran 1st, 3rd, 5th: 1000, 3000, 5000.
        let seq = &comparison.stats[0].tps;
        assert_eq!((seq.median, seq.min, seq.max), (3000.0, 1000.0, 5000.0));
        assert!(comparison.all_held());
        let csv = std::fs::read_to_string(out.path().join(COMPARE_CSV)).unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        let runs = std::fs::read_to_string(out.path().join(RUNS_CSV)).unwrap();
        assert_eq!(runs.lines().count(), 7, "{runs}");
        for svg in [THROUGHPUT_SVG, P99_SVG] {
            let text = std::fs::read_to_string(out.path().join(svg)).unwrap();
            assert!(text.starts_with("<svg"), "{svg}");
            assert!(text.contains("block-stm"), "{svg}: legend names the series");
        }
    }
}
