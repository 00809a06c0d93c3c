//! Scenario files: an experiment as data. A scenario names a cluster (`[cluster]`), a
//! workload (`[workload]`, or `[evm_workload]` when `[cluster] vm = "evm"`), a load shape (`[load]`, with rate changes at given times),
//! a timed schedule of faults (`[[fault]]`), what must hold (`[expect]`) and a `seed`.
//! `tandem run FILE` runs one on a real cluster; `tandem local` builds a one-line
//! scenario from its flags and runs it the same way. `experiments/README.md`
//! documents every field; `experiments/scenarios/` holds the checked-in ones.
//!
//! This module is the one place scenario semantics live: [`parse`] reads and checks a
//! file (every error names the file, the line and the field — [`error`]), [`action`]
//! is the fault vocabulary shared with the simulator and the network fault layer,
//! [`target`] resolves who a fault hits, [`schedule`] orders the starts and ends of
//! faults, and [`expect`] states what a run must show and checks it.

pub mod action;
pub mod error;
pub mod expect;
mod parse;
pub mod render;
pub mod schedule;
pub mod target;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_executor::WorkloadSpec;

pub use action::{Action, ActionKind, LinkFault};
pub use error::{Located, ScenarioError};
pub use expect::{AckExpect, Expectations, Liveness};
pub use schedule::{Step, StepKind};
pub use target::{ClusterView, KnownPrimary, Target};

use crate::cpu_budget::CpuBudget;
use crate::protocol_section::ProtocolSection;

/// A parsed and checked scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name: the results folder's prefix (default: the file's stem).
    pub name: String,
    /// What it shows, in a sentence or two.
    pub description: String,
    /// Seeds everything drawn at random: `random-minority` targets, the fault layer's
    /// losses and delays, and the workload when `[workload]` gives no seed.
    pub seed: u64,
    /// The cluster.
    pub cluster: ClusterSpec,
    /// The workload (the cluster file's `[workload]`).
    pub workload: WorkloadSpec,
    /// The EVM when the replicas run it (`[cluster] vm = "evm"` with `[evm_workload]`,
    /// or `tandem local --vm evm`); `None` for the native ledger (`workload`).
    pub evm: Option<EvmSpec>,
    /// The offered load.
    pub load: LoadSpec,
    /// The faults, in file order.
    pub faults: Vec<Fault>,
    /// What must hold.
    pub expect: Expectations,
    /// The text it was read from.
    pub source: ScenarioSource,
}

/// Where a scenario came from, recorded in `summary.json` so a run can be repeated.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioSource {
    /// The file, if it was read from one.
    pub path: Option<PathBuf>,
    /// Its text (for `tandem local`, the scenario its flags stand for).
    pub text: String,
}

impl ScenarioSource {
    /// SHA-256 of the text, hex.
    pub fn sha256(&self) -> String {
        hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            self.text.as_bytes(),
        ))
    }
}

/// How replicas are run (`[cluster] backend`, `tandem run --backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// One process per replica on this machine.
    #[default]
    Process,
    /// One container per replica from the tandem image, on a private Docker network
    /// created for the run.
    Docker,
}

impl BackendKind {
    /// Every backend's name.
    pub const NAMES: [&'static str; 2] = ["process", "docker"];

    /// Its name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Process => "process",
            BackendKind::Docker => "docker",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "process" => Ok(BackendKind::Process),
            "docker" => Ok(BackendKind::Docker),
            _ => Err(format!(
                "unknown backend `{s}`; available: {}",
                BackendKind::NAMES.join(", ")
            )),
        }
    }
}

/// What replicas keep across a restart: the cluster file's `[storage] durability`
/// (`none` or `wal`), one type for both.
pub use crate::cluster::Durability;

/// The EVM side of a scenario: the workload (`[evm_workload]`, the cluster file's
/// section of that name) and the gas bounds (`[cluster] max_tx_gas`, `max_batch_gas`,
/// the cluster file's `[execution]` fields of those names).
#[derive(Clone, Debug, PartialEq)]
pub struct EvmSpec {
    /// What the genesis deploys and the load clients send.
    pub workload: tandem_executor::evm::EvmWorkloadSpec,
    /// The largest gas limit a transaction may declare; above it a transaction is
    /// refused.
    pub max_tx_gas: u64,
    /// Gas one batch may reserve (the sum of its admitted transactions' limits).
    pub max_batch_gas: u64,
    /// How senders are authenticated (`[cluster] evm_auth`, the cluster file's
    /// `[execution]` field of that name).
    pub auth: tandem_executor::evm::EvmAuth,
    /// The block's base fee, wei per gas (`[cluster] evm_base_fee`, the cluster
    /// file's `[execution]` field of that name; default 0).
    pub base_fee: u64,
    /// The block beneficiary (`[cluster] evm_beneficiary`; default
    /// `tandem_executor::evm::DEFAULT_BENEFICIARY`).
    pub beneficiary: tandem_executor::evm::Address,
}

impl EvmSpec {
    /// `workload` under the cluster file's default gas bounds.
    pub fn with_default_gas(workload: tandem_executor::evm::EvmWorkloadSpec) -> EvmSpec {
        let defaults = crate::cluster::ExecutionConfig::default();
        EvmSpec {
            workload,
            max_tx_gas: defaults.max_tx_gas,
            max_batch_gas: defaults.max_batch_gas,
            auth: defaults.evm_auth,
            base_fee: defaults.evm_base_fee,
            beneficiary: defaults.evm_beneficiary,
        }
    }

    /// A short description, e.g. `evm uniswap (1000 accounts, 1 instances, zipf 0.8)`.
    pub fn label(&self) -> String {
        let w = &self.workload;
        format!(
            "evm {} ({} accounts, {} instances, zipf {})",
            w.kind, w.accounts, w.instances, w.zipf
        )
    }
}

/// `[cluster]`: the replicas and how they run.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    /// Number of replicas, n = 3f+1 ≥ 4.
    pub replicas: usize,
    /// The protocol and its parameters (`[cluster.protocol]`, the cluster file's
    /// `[protocol]`: `name`, the common parameters, `[cluster.protocol.<name>]`);
    /// its `replicas` is set from the field above.
    pub protocol: ProtocolSection,
    /// `sequential`, `block-stm`, `access-list`, `auto` or `none`.
    pub executor: String,
    /// Executor threads per replica (default: the CPU budget rounded up, or without one
    /// the replica's share of this machine, `cpu_budget::machine_share_threads`).
    pub threads: usize,
    /// How replicas run.
    pub backend: BackendKind,
    /// What survives a restart.
    pub durability: Durability,
    /// Each replica's CPU budget (`cpus_per_replica`, `cpu_sets`); checked against
    /// the machine and the backend when the run starts ([`CpuBudget::resolve`]).
    pub cpu: CpuBudget,
}

/// `[load]`: clients and what they offer.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadSpec {
    /// Load clients (each its own key and connection).
    pub clients: usize,
    /// Open or closed loop.
    pub shape: LoadShape,
    /// How long clients submit.
    pub duration: Duration,
    /// Left out of the statistics at the start.
    pub warmup: Duration,
    /// Pad each transaction to this many bytes.
    pub payload_bytes: usize,
    /// Client retransmission time-out.
    pub retransmit_after: Duration,
}

/// Open loop (a rate, possibly changing) or closed loop (a window).
#[derive(Clone, Debug, PartialEq)]
pub enum LoadShape {
    /// Total transactions per second over all clients, from the start.
    Open {
        /// The rate at the start.
        rate: f64,
        /// Later rates, in time order.
        changes: Vec<RateChange>,
    },
    /// Requests each client keeps outstanding.
    Closed {
        /// The window per client.
        window: usize,
    },
}

/// From `at` on, the clients offer `rate` transactions per second in total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateChange {
    /// Since the run started.
    pub at: Duration,
    /// Total transactions per second.
    pub rate: f64,
}

impl LoadShape {
    /// The total rate offered at time `t` since the start (open loop).
    pub fn rate_at(&self, t: Duration) -> Option<f64> {
        match self {
            LoadShape::Open { rate, changes } => Some(
                changes
                    .iter()
                    .take_while(|c| c.at <= t)
                    .last()
                    .map_or(*rate, |c| c.rate),
            ),
            LoadShape::Closed { .. } => None,
        }
    }
}

/// One `[[fault]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// 1-based position among the file's faults.
    pub number: usize,
    /// When it starts, since the run started.
    pub at: Duration,
    /// When it ends (from `until`, or `at + duration`), if it does by itself.
    pub until: Option<Duration>,
    /// Who it hits (the first end of the links for link actions).
    pub target: Target,
    /// What it does.
    pub action: Action,
}

impl Fault {
    /// A short label for tables and plots, e.g. `crash primary`, `delay all`.
    pub fn label(&self) -> String {
        match &self.action {
            Action::Heal => "heal".to_string(),
            Action::Partition { groups } => {
                let g: Vec<String> = groups.iter().map(|t| t.to_string()).collect();
                format!("partition {}", g.join(" | "))
            }
            Action::Byzantine { mode } => format!("byzantine {} {mode}", self.target),
            action => format!("{} {}", action.kind(), self.target),
        }
    }
}

impl Scenario {
    /// Reads and checks the scenario file at `path`.
    ///
    /// # Errors
    /// [`ScenarioError`]: the file cannot be read, or a field is unknown, missing or
    /// wrong (naming the file, line and field).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        parse::parse(path, &text)
    }

    /// Parses scenario text; `path` names it in errors and gives the default name.
    ///
    /// # Errors
    /// As [`Scenario::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        parse::parse(path, text)
    }

    /// The VM the replicas run: `evm` with [`Scenario::evm`], else `ledger`.
    pub fn vm(&self) -> &'static str {
        if self.evm.is_some() { "evm" } else { "ledger" }
    }

    /// f, the number of faulty replicas the cluster tolerates.
    pub fn max_faulty(&self) -> usize {
        tandem_consensus::types::max_faulty(self.cluster.replicas)
    }

    /// Every start and end of a fault, in time order ([`schedule::steps`]).
    pub fn steps(&self) -> Vec<Step> {
        schedule::steps(&self.faults)
    }
}
