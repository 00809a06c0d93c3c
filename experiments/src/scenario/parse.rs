//! Reading a scenario file: TOML through serde into raw structures that keep every
//! value's span (`toml::Spanned`), then checks that need several fields or the
//! cluster's size, each reported at the span of the value at fault.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tandem_executor::evm::{EvmWorkloadKind, EvmWorkloadSpec};
use tandem_executor::{EXECUTOR_NAMES, WorkloadSpec};
use toml::Spanned;

use crate::cluster::ExecutionConfig;
use crate::cpu_budget::{CpuBudget, CpuSet};
use crate::protocol_section::ProtocolSection;
use crate::scenario::action::{Action, ActionKind, LinkFault};
use crate::scenario::error::{ScenarioError, SourceText};
use crate::scenario::expect::{AckExpect, Expectations, Liveness};
use crate::scenario::target::Target;
use crate::scenario::{
    BackendKind, ClusterSpec, Durability, EvmSpec, Fault, LoadShape, LoadSpec, RateChange,
    Scenario, ScenarioSource,
};

/// Load clients when `[load]` gives no `clients`.
const DEFAULT_CLIENTS: usize = 2;
/// Warm-up when `[load]` gives none, seconds.
const DEFAULT_WARMUP_SECS: f64 = 3.0;
/// Retransmission time-out when `[load]` gives none, milliseconds.
const DEFAULT_RETRANSMIT_MS: u64 = 1000;
/// The seed when the file gives none.
const DEFAULT_SEED: u64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<Spanned<String>>,
    description: Option<String>,
    seed: Option<u64>,
    cluster: Option<Spanned<RawCluster>>,
    workload: Option<Spanned<WorkloadSpec>>,
    evm_workload: Option<Spanned<RawEvmWorkload>>,
    load: Option<Spanned<RawLoad>>,
    #[serde(default, rename = "fault")]
    faults: Vec<Spanned<RawFault>>,
    expect: Option<Spanned<RawExpect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    replicas: Option<Spanned<usize>>,
    backend: Option<Spanned<String>>,
    executor: Option<Spanned<String>>,
    threads: Option<Spanned<usize>>,
    durability: Option<Spanned<String>>,
    cpus_per_replica: Option<Spanned<f64>>,
    cpu_sets: Option<Spanned<Vec<Spanned<String>>>>,
    protocol: Option<Spanned<toml::Table>>,
    vm: Option<Spanned<String>>,
    max_tx_gas: Option<Spanned<u64>>,
    max_batch_gas: Option<Spanned<u64>>,
    evm_auth: Option<Spanned<String>>,
    evm_base_fee: Option<Spanned<u64>>,
    evm_beneficiary: Option<Spanned<String>>,
}

/// `[evm_workload]` as written: the cluster file's section of that name, every field
/// but `kind` optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvmWorkload {
    kind: Option<Spanned<String>>,
    accounts: Option<Spanned<u64>>,
    instances: Option<Spanned<u32>>,
    zipf: Option<Spanned<f64>>,
    seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    clients: Option<Spanned<usize>>,
    rate: Option<Spanned<f64>>,
    window: Option<Spanned<usize>>,
    duration: Option<Spanned<f64>>,
    warmup: Option<Spanned<f64>>,
    payload_bytes: Option<Spanned<usize>>,
    retransmit_ms: Option<Spanned<u64>>,
    #[serde(default)]
    rate_change: Vec<Spanned<RawRateChange>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateChange {
    at: Spanned<f64>,
    rate: Spanned<f64>,
}

/// A target as written: one word or id, or a list of ids.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTarget {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at: Option<Spanned<f64>>,
    until: Option<Spanned<f64>>,
    duration: Option<Spanned<f64>>,
    action: Option<Spanned<String>>,
    target: Option<Spanned<RawTarget>>,
    to: Option<Spanned<RawTarget>>,
    groups: Option<Spanned<Vec<Spanned<RawTarget>>>>,
    clients: Option<Spanned<bool>>,
    mode: Option<Spanned<String>>,
    delay_ms: Option<Spanned<f64>>,
    jitter_ms: Option<Spanned<f64>>,
    from_ms: Option<Spanned<f64>>,
    to_ms: Option<Spanned<f64>>,
    probability: Option<Spanned<f64>>,
    period_ms: Option<Spanned<f64>>,
    down_ms: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    min_tps: Option<Spanned<f64>>,
    min_tps_before: Option<Spanned<f64>>,
    min_tps_during: Option<Spanned<f64>>,
    min_tps_after: Option<Spanned<f64>>,
    max_p99_ms: Option<Spanned<f64>>,
    max_recovery_s: Option<Spanned<f64>>,
    safety: Option<bool>,
    liveness: Option<Spanned<String>>,
    acknowledged: Option<Spanned<String>>,
}

type Checked<T> = Result<T, ScenarioError>;

/// Parses and checks scenario `text` read from `path`.
pub(crate) fn parse(path: &Path, text: &str) -> Checked<Scenario> {
    let src = SourceText::new(path, text);
    let raw: RawScenario = toml::from_str(text).map_err(|e| src.from_toml(&e))?;
    let name = match raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return Err(src.error(n.span(), "the name must not be empty"));
        }
        Some(n) if n.get_ref().contains(['/', '\\']) => {
            return Err(src.error(n.span(), "the name becomes a folder name: no `/` or `\\`"));
        }
        Some(n) => n.into_inner(),
        None => path.file_stem().map_or_else(
            || "scenario".to_string(),
            |s| s.to_string_lossy().into_owned(),
        ),
    };
    let seed = raw.seed.unwrap_or(DEFAULT_SEED);
    let evm = evm(
        &src,
        raw.cluster.as_ref(),
        raw.evm_workload,
        raw.workload.as_ref().map(Spanned::span),
        seed,
    )?;
    let cluster = cluster(&src, raw.cluster)?;
    let workload = match raw.workload {
        None => WorkloadSpec::default(),
        Some(w) => {
            let span = w.span();
            let spec = w.into_inner();
            spec.validate()
                .map_err(|e| src.error_with_field(span, None, e.to_string()))?;
            spec
        }
    };
    let Some(raw_load) = raw.load else {
        return Err(src.error(0..0, "missing [load]: a scenario needs at least a duration"));
    };
    if evm.is_some()
        && let Some(payload) = &raw_load.get_ref().payload_bytes
        && *payload.get_ref() > crate::payload::MAX_EVM_PAYLOAD_BYTES
    {
        return Err(src.error(
            payload.span(),
            format!(
                "an EVM request is at most {} bytes, padding included",
                crate::payload::MAX_EVM_PAYLOAD_BYTES
            ),
        ));
    }
    let load = load(&src, raw_load)?;
    let mut faults = Vec::with_capacity(raw.faults.len());
    for (i, f) in raw.faults.into_iter().enumerate() {
        faults.push(fault(&src, i + 1, f, &cluster, &load)?);
    }
    let expect = expect(&src, raw.expect)?;
    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        seed,
        cluster,
        workload,
        evm,
        load,
        faults,
        expect,
        source: ScenarioSource {
            path: Some(path.to_path_buf()),
            text: text.to_string(),
        },
    })
}

fn cluster(src: &SourceText<'_>, raw: Option<Spanned<RawCluster>>) -> Checked<ClusterSpec> {
    let Some(raw) = raw else {
        let protocol = ProtocolSection::default();
        let cpu = CpuBudget::default();
        return Ok(ClusterSpec {
            replicas: protocol.common.replicas,
            threads: cpu.threads(None, protocol.common.replicas),
            protocol,
            executor: "block-stm".into(),
            backend: BackendKind::Process,
            durability: Durability::None,
            cpu,
        });
    };
    let cluster_span = raw.span();
    let raw = raw.into_inner();
    let protocol_span = raw.protocol.as_ref().map_or(cluster_span, Spanned::span);
    let mut protocol = match raw.protocol {
        None => ProtocolSection::default(),
        Some(table) => {
            let span = table.span();
            let table = table.into_inner();
            if table.contains_key("replicas") {
                let at = src.key_span(span.start, "replicas").unwrap_or(span);
                return Err(src.error(at, "set `replicas` in [cluster], not in [cluster.protocol]"));
            }
            ProtocolSection::deserialize(table)
                .map_err(|e| protocol_error(src, span.clone(), e.message()))?
        }
    };
    let replicas = match raw.replicas {
        None => protocol.common.replicas,
        Some(r) if *r.get_ref() < 4 => {
            return Err(src.error(r.span(), "at least 4 replicas (n = 3f+1, f ≥ 1)"));
        }
        Some(r) if *r.get_ref() > 64 => {
            return Err(src.error(r.span(), "at most 64 replicas on one machine"));
        }
        Some(r) => r.into_inner(),
    };
    protocol.common.replicas = replicas;
    if let Err(e) = protocol.validate() {
        return Err(protocol_error(src, protocol_span, &format!("{e:#}")));
    }
    let executor = match raw.executor {
        None => "block-stm".to_string(),
        Some(e) => {
            let name = e.get_ref().as_str();
            if name != "none" && !EXECUTOR_NAMES.contains(&name) {
                return Err(src.error(
                    e.span(),
                    format!(
                        "unknown executor `{name}`; choose one of none, {}",
                        EXECUTOR_NAMES.join(", ")
                    ),
                ));
            }
            e.into_inner()
        }
    };
    let cpu = cpu_budget(src, raw.cpus_per_replica, raw.cpu_sets, replicas)?;
    let threads = match raw.threads {
        None => cpu.threads(None, replicas),
        Some(t) if *t.get_ref() == 0 || *t.get_ref() > 256 => {
            return Err(src.error(t.span(), "threads must be between 1 and 256"));
        }
        Some(t) => t.into_inner(),
    };
    let backend = match raw.backend {
        None => BackendKind::Process,
        Some(b) => b
            .get_ref()
            .parse::<BackendKind>()
            .map_err(|e| src.error(b.span(), e))?,
    };
    let durability = match raw.durability {
        None => Durability::None,
        Some(d) => d
            .get_ref()
            .parse::<Durability>()
            .map_err(|e| src.error(d.span(), e))?,
    };
    Ok(ClusterSpec {
        replicas,
        protocol,
        executor,
        threads,
        backend,
        durability,
        cpu,
    })
}

/// Most (account, instance) pairs an EVM genesis may seed (each a few transactions:
/// mints and approvals, rebuilt by every replica and load client at start); as
/// `tandem bench-exec --vm evm`.
const MAX_EVM_GENESIS_PAIRS: u64 = 1_000_000;

/// `[cluster] vm`, `max_tx_gas`, `max_batch_gas` and `[evm_workload]`: the EVM when
/// `vm = "evm"`, `None` for the ledger. The ledger's `[workload]` (at `workload`)
/// is refused beside the EVM; `seed` is the workload's when it gives none.
fn evm(
    src: &SourceText<'_>,
    cluster: Option<&Spanned<RawCluster>>,
    raw: Option<Spanned<RawEvmWorkload>>,
    workload: Option<Range<usize>>,
    seed: u64,
) -> Checked<Option<EvmSpec>> {
    let c = cluster.map(Spanned::get_ref);
    let vm = c.and_then(|c| c.vm.as_ref());
    let is_evm = match vm {
        None => false,
        Some(v) if v.get_ref() == "ledger" => false,
        Some(v) if v.get_ref() == "evm" => true,
        Some(v) => {
            return Err(src.error(
                v.span(),
                format!(
                    "unknown vm `{}`; choose ledger (the native DeFi ledger, [workload]) or evm (revm, [evm_workload])",
                    v.get_ref()
                ),
            ));
        }
    };
    let max_tx_gas = c.and_then(|c| c.max_tx_gas.as_ref());
    let max_batch_gas = c.and_then(|c| c.max_batch_gas.as_ref());
    if !is_evm {
        if let Some(w) = &raw {
            return Err(src.error_with_field(
                w.span(),
                None,
                "[evm_workload] needs [cluster] vm = \"evm\"",
            ));
        }
        if let Some(g) = max_tx_gas.or(max_batch_gas) {
            return Err(src.error(g.span(), "gas limits are the EVM's: they need vm = \"evm\""));
        }
        if let Some(a) = c.and_then(|c| c.evm_auth.as_ref()) {
            return Err(src.error(a.span(), "evm_auth is the EVM's: it needs vm = \"evm\""));
        }
        if let Some(f) = c.and_then(|c| c.evm_base_fee.as_ref()) {
            return Err(src.error(f.span(), "evm_base_fee is the EVM's: it needs vm = \"evm\""));
        }
        if let Some(b) = c.and_then(|c| c.evm_beneficiary.as_ref()) {
            return Err(src.error(
                b.span(),
                "evm_beneficiary is the EVM's: it needs vm = \"evm\"",
            ));
        }
        return Ok(None);
    }
    let vm_span = vm.map(Spanned::span).unwrap_or(0..0);
    if let Some(span) = workload {
        return Err(src.error_with_field(
            span,
            None,
            "[workload] is the native ledger's; with vm = \"evm\" the workload is [evm_workload]",
        ));
    }
    if let Some(e) = c.and_then(|c| c.executor.as_ref())
        && e.get_ref() == "none"
    {
        return Err(src.error(
            e.span(),
            "vm = \"evm\" needs an executor (sequential, block-stm, access-list or auto), not none",
        ));
    }
    let Some(raw) = raw else {
        return Err(src.error_with_field(
            vm_span,
            Some("vm"),
            "vm = \"evm\" needs an [evm_workload] table (kind, accounts, instances, zipf, seed)",
        ));
    };
    let table = raw.span();
    let raw = raw.into_inner();
    let Some(kind) = &raw.kind else {
        return Err(src.error_with_field(
            table,
            Some("kind"),
            format!(
                "[evm_workload] needs a kind: one of {}",
                EvmWorkloadKind::ALL.map(EvmWorkloadKind::as_str).join(", ")
            ),
        ));
    };
    let kind: EvmWorkloadKind = kind
        .get_ref()
        .parse()
        .map_err(|e: tandem_executor::Error| src.error(kind.span(), e.to_string()))?;
    let defaults = EvmWorkloadSpec::new(kind);
    let accounts = match &raw.accounts {
        None => defaults.accounts,
        Some(a) if *a.get_ref() < 2 => {
            return Err(src.error(a.span(), "at least 2 accounts"));
        }
        Some(a) => *a.get_ref(),
    };
    let instances = match &raw.instances {
        None => defaults.instances,
        Some(i) if !(1..=1024).contains(i.get_ref()) => {
            return Err(src.error(
                i.span(),
                "instances (tokens, pairs, markets or staking pools) must be between 1 and 1024",
            ));
        }
        Some(i) => *i.get_ref(),
    };
    let pairs = accounts.saturating_mul(u64::from(instances));
    if pairs > MAX_EVM_GENESIS_PAIRS {
        let at = raw.accounts.as_ref().map_or(table.clone(), Spanned::span);
        return Err(src.error_with_field(
            at,
            Some("accounts"),
            format!(
                "{accounts} accounts × {instances} instances seeds {pairs} (account, instance) pairs at genesis, above {MAX_EVM_GENESIS_PAIRS}: use fewer accounts"
            ),
        ));
    }
    let zipf = match &raw.zipf {
        None => defaults.zipf,
        Some(z) if !z.get_ref().is_finite() || *z.get_ref() < 0.0 => {
            return Err(src.error(z.span(), "zipf must be a finite number ≥ 0 (0 is uniform)"));
        }
        Some(z) => *z.get_ref(),
    };
    let spec = EvmWorkloadSpec {
        kind,
        accounts,
        instances,
        zipf,
        seed: raw.seed.unwrap_or(seed),
    };
    spec.validate()
        .map_err(|e| src.error_with_field(table.clone(), None, e.to_string()))?;
    let gas_defaults = ExecutionConfig::default();
    let tx_gas = match max_tx_gas {
        None => gas_defaults.max_tx_gas,
        Some(g) if *g.get_ref() < kind.gas_limit() => {
            return Err(src.error(
                g.span(),
                format!(
                    "{kind} transactions declare up to {} gas, above max_tx_gas {}: every one would be refused",
                    kind.gas_limit(),
                    g.get_ref()
                ),
            ));
        }
        Some(g) => *g.get_ref(),
    };
    let batch_gas = match max_batch_gas {
        None if gas_defaults.max_batch_gas < tx_gas => {
            let at = max_tx_gas.map_or(vm_span, Spanned::span);
            return Err(src.error(
                at,
                format!(
                    "max_tx_gas {tx_gas} is above the default max_batch_gas {}: set max_batch_gas too",
                    gas_defaults.max_batch_gas
                ),
            ));
        }
        None => gas_defaults.max_batch_gas,
        Some(g) if *g.get_ref() < tx_gas => {
            return Err(src.error(
                g.span(),
                format!(
                    "max_batch_gas {} is below max_tx_gas {tx_gas}: one transaction must fit a batch",
                    g.get_ref()
                ),
            ));
        }
        Some(g) => *g.get_ref(),
    };
    let auth = match c.and_then(|c| c.evm_auth.as_ref()) {
        None => gas_defaults.evm_auth,
        Some(a) => a
            .get_ref()
            .parse::<tandem_executor::evm::EvmAuth>()
            .map_err(|e| src.error(a.span(), e.to_string()))?,
    };
    let base_fee = match c.and_then(|c| c.evm_base_fee.as_ref()) {
        None => gas_defaults.evm_base_fee,
        Some(f) if u128::from(*f.get_ref()) > tandem_executor::evm::WORKLOAD_GAS_PRICE => {
            return Err(src.error(
                f.span(),
                format!(
                    "evm_base_fee {} is above the workloads' gas price {} wei: every legacy transaction would be refused",
                    f.get_ref(),
                    tandem_executor::evm::WORKLOAD_GAS_PRICE
                ),
            ));
        }
        Some(f) => *f.get_ref(),
    };
    let beneficiary = match c.and_then(|c| c.evm_beneficiary.as_ref()) {
        None => gas_defaults.evm_beneficiary,
        Some(b) => {
            tandem_executor::evm::parse_address(b.get_ref()).map_err(|e| src.error(b.span(), e))?
        }
    };
    Ok(Some(EvmSpec {
        workload: spec,
        max_tx_gas: tx_gas,
        max_batch_gas: batch_gas,
        auth,
        base_fee,
        beneficiary,
    }))
}

/// `cpus_per_replica` and `cpu_sets` as written: a share ≥ 0.01, one non-empty CPU
/// list per replica. Whether this machine and the backend can meet them is checked
/// when the run starts.
fn cpu_budget(
    src: &SourceText<'_>,
    share: Option<Spanned<f64>>,
    sets: Option<Spanned<Vec<Spanned<String>>>>,
    replicas: usize,
) -> Checked<CpuBudget> {
    let cpus_per_replica = match share {
        None => None,
        Some(s) => Some(CpuBudget::check_share(*s.get_ref()).map_err(|e| src.error(s.span(), e))?),
    };
    let cpu_sets = match sets {
        None => None,
        Some(list) => {
            let span = list.span();
            let list = list.into_inner();
            if list.len() != replicas {
                return Err(src.error(
                    span,
                    format!(
                        "{} CPU sets for {replicas} replicas: give one set per replica, in \
                         replica order (sets may repeat, e.g. [\"0\", \"1\", \"0\", \"1\"])",
                        list.len()
                    ),
                ));
            }
            let mut parsed = Vec::with_capacity(list.len());
            for (i, set) in list.iter().enumerate() {
                parsed.push(
                    CpuSet::parse(set.get_ref())
                        .map_err(|e| src.error(set.span(), format!("replica r{i}: {e}")))?,
                );
            }
            Some(parsed)
        }
    };
    Ok(CpuBudget {
        cpus_per_replica,
        cpu_sets,
    })
}

/// Seconds as written (finite, ≥ 0) → a duration.
fn seconds(src: &SourceText<'_>, value: &Spanned<f64>) -> Checked<Duration> {
    let v = *value.get_ref();
    if !v.is_finite() || !(0.0..=1e7).contains(&v) {
        return Err(src.error(
            value.span(),
            format!("{v} is not a number of seconds (finite, ≥ 0)"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Milliseconds as written (finite, ≥ 0) → a duration.
fn millis(src: &SourceText<'_>, value: &Spanned<f64>) -> Checked<Duration> {
    let v = *value.get_ref();
    if !v.is_finite() || !(0.0..=3.6e6).contains(&v) {
        return Err(src.error(
            value.span(),
            format!("{v} is not a number of milliseconds (finite, between 0 and one hour)"),
        ));
    }
    Ok(Duration::from_secs_f64(v / 1000.0))
}

fn positive_rate(src: &SourceText<'_>, value: &Spanned<f64>) -> Checked<f64> {
    let v = *value.get_ref();
    if !v.is_finite() || v <= 0.0 || v > 1e8 {
        return Err(src.error(
            value.span(),
            format!("{v} is not a rate: transactions per second, > 0"),
        ));
    }
    Ok(v)
}

fn load(src: &SourceText<'_>, raw: Spanned<RawLoad>) -> Checked<LoadSpec> {
    let load_span = raw.span();
    let raw = raw.into_inner();
    let Some(duration) = &raw.duration else {
        return Err(src.error_with_field(
            load_span,
            Some("duration"),
            "[load] needs a duration (seconds of load)",
        ));
    };
    let duration_value = seconds(src, duration)?;
    if duration_value < Duration::from_secs(1) {
        return Err(src.error(duration.span(), "at least 1 second of load"));
    }
    let warmup = match &raw.warmup {
        None => Duration::from_secs_f64(DEFAULT_WARMUP_SECS).min(duration_value / 2),
        Some(w) => {
            let v = seconds(src, w)?;
            if v >= duration_value {
                return Err(src.error(w.span(), "the warm-up must end before the load does"));
            }
            v
        }
    };
    let clients = match &raw.clients {
        None => DEFAULT_CLIENTS,
        Some(c) if *c.get_ref() == 0 || *c.get_ref() > 64 => {
            return Err(src.error(c.span(), "clients must be between 1 and 64"));
        }
        Some(c) => *c.get_ref(),
    };
    let shape = match (&raw.rate, &raw.window) {
        (Some(_), Some(w)) => {
            return Err(src.error(
                w.span(),
                "give either rate (open loop) or window (closed loop), not both",
            ));
        }
        (Some(r), None) => {
            let rate = positive_rate(src, r)?;
            let mut changes = Vec::new();
            let mut last = Duration::ZERO;
            for c in &raw.rate_change {
                let change = c.get_ref();
                let at = seconds(src, &change.at)?;
                if at <= last && !changes.is_empty() || at.is_zero() {
                    return Err(src.error(
                        change.at.span(),
                        "rate changes must come after the start and in increasing time order",
                    ));
                }
                if at >= duration_value {
                    return Err(src.error(change.at.span(), "a rate change after the load ends"));
                }
                last = at;
                changes.push(RateChange {
                    at,
                    rate: positive_rate(src, &change.rate)?,
                });
            }
            LoadShape::Open { rate, changes }
        }
        (None, window) => {
            if let Some(c) = raw.rate_change.first() {
                return Err(src.error(
                    c.span(),
                    "[[load.rate_change]] needs an open loop: give [load] rate",
                ));
            }
            let window = match window {
                None => 1024,
                Some(w) if *w.get_ref() == 0 || *w.get_ref() > 1 << 20 => {
                    return Err(src.error(w.span(), "window must be between 1 and 1048576"));
                }
                Some(w) => *w.get_ref(),
            };
            LoadShape::Closed { window }
        }
    };
    let retransmit_after = match &raw.retransmit_ms {
        None => Duration::from_millis(DEFAULT_RETRANSMIT_MS),
        Some(r) if *r.get_ref() == 0 || *r.get_ref() > 600_000 => {
            return Err(src.error(r.span(), "retransmit_ms must be between 1 and 600000"));
        }
        Some(r) => Duration::from_millis(*r.get_ref()),
    };
    Ok(LoadSpec {
        clients,
        shape,
        duration: duration_value,
        warmup,
        payload_bytes: raw.payload_bytes.as_ref().map_or(0, |p| *p.get_ref()),
        retransmit_after,
    })
}

/// The parameters a fault may carry besides `at`, `until`, `duration` and `action`.
const PARAMETERS: [&str; 12] = [
    "target",
    "to",
    "groups",
    "clients",
    "mode",
    "delay_ms",
    "jitter_ms",
    "from_ms",
    "to_ms",
    "probability",
    "period_ms",
    "down_ms",
];

/// Which parameters each action takes.
fn allowed(kind: ActionKind) -> &'static [&'static str] {
    match kind {
        ActionKind::Crash
        | ActionKind::Restart
        | ActionKind::Pause
        | ActionKind::Resume
        | ActionKind::Stop
        | ActionKind::Isolate => &["target"],
        ActionKind::Byzantine => &["target", "mode"],
        ActionKind::Partition => &["groups"],
        ActionKind::OneWayCut => &["target", "to"],
        ActionKind::Heal => &[],
        ActionKind::Delay => &["target", "to", "clients", "delay_ms", "jitter_ms"],
        ActionKind::Loss | ActionKind::Duplicate | ActionKind::Reorder => {
            &["target", "to", "clients", "probability"]
        }
        ActionKind::DelayRamp => &["target", "to", "clients", "from_ms", "to_ms", "jitter_ms"],
        ActionKind::Flap => &["target", "to", "clients", "period_ms", "down_ms"],
    }
}

impl RawFault {
    /// The span of each parameter given.
    fn given(&self) -> Vec<(&'static str, Range<usize>)> {
        let spans: [Option<Range<usize>>; 12] = [
            self.target.as_ref().map(Spanned::span),
            self.to.as_ref().map(Spanned::span),
            self.groups.as_ref().map(Spanned::span),
            self.clients.as_ref().map(Spanned::span),
            self.mode.as_ref().map(Spanned::span),
            self.delay_ms.as_ref().map(Spanned::span),
            self.jitter_ms.as_ref().map(Spanned::span),
            self.from_ms.as_ref().map(Spanned::span),
            self.to_ms.as_ref().map(Spanned::span),
            self.probability.as_ref().map(Spanned::span),
            self.period_ms.as_ref().map(Spanned::span),
            self.down_ms.as_ref().map(Spanned::span),
        ];
        PARAMETERS
            .into_iter()
            .zip(spans)
            .filter_map(|(name, span)| span.map(|s| (name, s)))
            .collect()
    }
}

fn target(src: &SourceText<'_>, raw: &Spanned<RawTarget>, replicas: usize) -> Checked<Target> {
    let parsed = match raw.get_ref() {
        RawTarget::One(word) => Target::parse_word(word),
        RawTarget::Many(ids) => Target::parse_set(ids),
    }
    .map_err(|e| src.error(raw.span(), e))?;
    if let Some(r) = parsed.highest_replica()
        && r as usize >= replicas
    {
        return Err(src.error(
            raw.span(),
            format!(
                "replica r{r} does not exist (the cluster has {replicas} replicas: r0..r{})",
                replicas - 1
            ),
        ));
    }
    Ok(parsed)
}

fn probability(src: &SourceText<'_>, raw: &Spanned<f64>) -> Checked<f64> {
    let p = *raw.get_ref();
    if !(0.0..=1.0).contains(&p) {
        return Err(src.error(raw.span(), format!("{p} is not a probability in [0, 1]")));
    }
    Ok(p)
}

fn required<'a, T>(
    src: &SourceText<'_>,
    value: &'a Option<Spanned<T>>,
    fault_span: Range<usize>,
    field: &str,
    kind: ActionKind,
) -> Checked<&'a Spanned<T>> {
    value.as_ref().ok_or_else(|| {
        src.error_with_field(
            fault_span,
            Some(field),
            format!("action `{kind}` needs `{field}`"),
        )
    })
}

fn fault(
    src: &SourceText<'_>,
    number: usize,
    raw: Spanned<RawFault>,
    cluster: &ClusterSpec,
    load: &LoadSpec,
) -> Checked<Fault> {
    let span = raw.span();
    let raw = raw.into_inner();
    let Some(action_name) = &raw.action else {
        return Err(src.error_with_field(
            span,
            Some("action"),
            format!("a fault needs an action: one of {}", ActionKind::names()),
        ));
    };
    let Some(kind) = ActionKind::from_name(action_name.get_ref()) else {
        return Err(src.error(
            action_name.span(),
            format!(
                "unknown action `{}`; choose one of {}",
                action_name.get_ref(),
                ActionKind::names()
            ),
        ));
    };
    for (name, given) in raw.given() {
        if !allowed(kind).contains(&name) {
            return Err(src.error_with_field(
                given,
                Some(name),
                format!(
                    "action `{kind}` takes no `{name}` (it takes {})",
                    if allowed(kind).is_empty() {
                        "no parameters".to_string()
                    } else {
                        allowed(kind).join(", ")
                    }
                ),
            ));
        }
    }

    let Some(at_raw) = &raw.at else {
        return Err(src.error_with_field(
            span,
            Some("at"),
            "a fault needs `at` (seconds since the run started)",
        ));
    };
    let at = seconds(src, at_raw)?;
    if at >= load.duration {
        return Err(src.error(
            at_raw.span(),
            format!(
                "at = {} s is not before the load ends ({} s)",
                at.as_secs_f64(),
                load.duration.as_secs_f64()
            ),
        ));
    }
    let until = match (&raw.until, &raw.duration) {
        (Some(_), Some(d)) => {
            return Err(src.error(d.span(), "give `until` or `duration`, not both"));
        }
        (Some(u), None) => Some((seconds(src, u)?, u.span())),
        (None, Some(d)) => Some((at + seconds(src, d)?, d.span())),
        (None, None) => None,
    };
    let until = match until {
        Some((_, s)) if kind.is_instant() => {
            return Err(src.error(
                s,
                format!("`{kind}` happens at one instant: it takes no `until` or `duration`"),
            ));
        }
        Some((u, s)) if u <= at => {
            return Err(src.error(s, "the fault must end after it starts"));
        }
        Some((u, s)) if u > load.duration => {
            return Err(src.error(
                s,
                format!(
                    "the fault ends at {} s, after the load ends ({} s)",
                    u.as_secs_f64(),
                    load.duration.as_secs_f64()
                ),
            ));
        }
        Some((u, _)) => Some(u),
        None if kind.needs_end() => {
            return Err(src.error_with_field(
                span,
                Some("duration"),
                format!("`{kind}` needs `until` or `duration` (the ramp's length)"),
            ));
        }
        None => None,
    };

    let n = cluster.replicas;
    let needs_target = !matches!(kind, ActionKind::Partition | ActionKind::Heal)
        && !is_link(kind)
        && kind != ActionKind::OneWayCut;
    let target_value = match &raw.target {
        Some(t) => target(src, t, n)?,
        None if needs_target || kind == ActionKind::OneWayCut => {
            return Err(src.error_with_field(
                span,
                Some("target"),
                format!(
                    "action `{kind}` needs a target: a replica (r0…), a list, or one of {}",
                    crate::scenario::target::TARGET_WORDS.join(", ")
                ),
            ));
        }
        None => Target::All,
    };
    let to = match &raw.to {
        Some(t) => target(src, t, n)?,
        None => Target::All,
    };
    let clients = raw.clients.as_ref().is_some_and(|c| *c.get_ref());

    let action = match kind {
        ActionKind::Crash => Action::Crash,
        ActionKind::Restart => Action::Restart,
        ActionKind::Pause => Action::Pause,
        ActionKind::Resume => Action::Resume,
        ActionKind::Stop => Action::Stop,
        ActionKind::Isolate => Action::Isolate,
        ActionKind::Heal => Action::Heal,
        ActionKind::OneWayCut => Action::OneWayCut { to },
        ActionKind::Byzantine => {
            let mode = required(src, &raw.mode, span.clone(), "mode", kind)?;
            let modes = cluster.protocol.name.byzantine_modes();
            if !modes.contains(&mode.get_ref().as_str()) {
                return Err(src.error(
                    mode.span(),
                    format!(
                        "the protocol has no Byzantine mode `{}`; its modes: {}",
                        mode.get_ref(),
                        modes.join(", ")
                    ),
                ));
            }
            Action::Byzantine {
                mode: mode.get_ref().clone(),
            }
        }
        ActionKind::Partition => {
            let groups_raw = required(src, &raw.groups, span.clone(), "groups", kind)?;
            if groups_raw.get_ref().is_empty() {
                return Err(src.error(groups_raw.span(), "a partition needs at least one group"));
            }
            let mut groups = Vec::new();
            let mut named = std::collections::BTreeSet::new();
            for g in groups_raw.get_ref() {
                let group = target(src, g, n)?;
                if let Target::Replicas(ids) = &group {
                    for r in ids {
                        if !named.insert(*r) {
                            return Err(src.error(g.span(), format!("r{r} is in two groups")));
                        }
                    }
                }
                groups.push(group);
            }
            Action::Partition { groups }
        }
        ActionKind::Delay => {
            let delay = millis(
                src,
                required(src, &raw.delay_ms, span.clone(), "delay_ms", kind)?,
            )?;
            let jitter = match &raw.jitter_ms {
                Some(j) => millis(src, j)?,
                None => Duration::ZERO,
            };
            link(to, clients, LinkFault::Delay { delay, jitter })
        }
        ActionKind::Loss | ActionKind::Duplicate | ActionKind::Reorder => {
            let p = probability(
                src,
                required(src, &raw.probability, span.clone(), "probability", kind)?,
            )?;
            let fault = match kind {
                ActionKind::Loss => LinkFault::Loss(p),
                ActionKind::Duplicate => LinkFault::Duplicate(p),
                _ => LinkFault::Reorder(p),
            };
            link(to, clients, fault)
        }
        ActionKind::DelayRamp => {
            let from = match &raw.from_ms {
                Some(f) => millis(src, f)?,
                None => Duration::ZERO,
            };
            let to_delay = millis(src, required(src, &raw.to_ms, span.clone(), "to_ms", kind)?)?;
            let jitter = match &raw.jitter_ms {
                Some(j) => millis(src, j)?,
                None => Duration::ZERO,
            };
            // `needs_end` made the duration required above.
            let over = until.map_or(Duration::ZERO, |u| u.saturating_sub(at));
            link(
                to,
                clients,
                LinkFault::DelayRamp {
                    from,
                    to: to_delay,
                    over,
                    jitter,
                },
            )
        }
        ActionKind::Flap => {
            let period_raw = required(src, &raw.period_ms, span.clone(), "period_ms", kind)?;
            let period = millis(src, period_raw)?;
            if period < Duration::from_millis(10) {
                return Err(src.error(period_raw.span(), "a flap period of at least 10 ms"));
            }
            let down_raw = required(src, &raw.down_ms, span.clone(), "down_ms", kind)?;
            let down = millis(src, down_raw)?;
            if down.is_zero() || down >= period {
                return Err(src.error(
                    down_raw.span(),
                    "down_ms must be above 0 and below period_ms",
                ));
            }
            link(to, clients, LinkFault::Flap { period, down })
        }
    };
    Ok(Fault {
        number,
        at,
        until,
        target: target_value,
        action,
    })
}

/// An error of the protocol section (worded for a cluster file's `[protocol]`),
/// reworded for `[cluster.protocol]` and placed at the field it names, if found.
fn protocol_error(src: &SourceText<'_>, span: Range<usize>, message: &str) -> ScenarioError {
    let message = message.trim_end().replace("[protocol", "[cluster.protocol");
    let at = first_quoted(&message)
        .and_then(|key| src.key_span(span.start, key))
        .unwrap_or(span);
    src.error(at, message)
}

/// The first word between backticks in a message (the field it names).
fn first_quoted(message: &str) -> Option<&str> {
    message.split('`').nth(1).filter(|w| !w.is_empty())
}

fn is_link(kind: ActionKind) -> bool {
    matches!(
        kind,
        ActionKind::Delay
            | ActionKind::Loss
            | ActionKind::Duplicate
            | ActionKind::Reorder
            | ActionKind::DelayRamp
            | ActionKind::Flap
    )
}

fn link(to: Target, clients: bool, fault: LinkFault) -> Action {
    Action::Link { to, clients, fault }
}

fn expect(src: &SourceText<'_>, raw: Option<Spanned<RawExpect>>) -> Checked<Expectations> {
    let Some(raw) = raw else {
        return Ok(Expectations::default());
    };
    let raw = raw.into_inner();
    let non_negative = |v: &Option<Spanned<f64>>| -> Checked<Option<f64>> {
        match v {
            None => Ok(None),
            Some(s) if s.get_ref().is_finite() && *s.get_ref() >= 0.0 => Ok(Some(*s.get_ref())),
            Some(s) => Err(src.error(s.span(), "expected a finite number ≥ 0")),
        }
    };
    let liveness = match &raw.liveness {
        None => Liveness::Kept,
        Some(l) => Liveness::from_name(l.get_ref()).ok_or_else(|| {
            src.error(
                l.span(),
                format!(
                    "liveness is \"kept\" (commits resume after the last fault), \"lost\" (the cluster must stall) or \"any\"; not `{}`",
                    l.get_ref()
                ),
            )
        })?,
    };
    let acknowledged = match &raw.acknowledged {
        None => AckExpect::Kept,
        Some(a) => AckExpect::from_name(a.get_ref()).ok_or_else(|| {
            src.error(
                a.span(),
                format!(
                    "acknowledged is \"kept\" (no acknowledged request lost), \"lost\" (the run must lose some) or \"any\"; not `{}`",
                    a.get_ref()
                ),
            )
        })?,
    };
    Ok(Expectations {
        min_tps: non_negative(&raw.min_tps)?,
        min_tps_before: non_negative(&raw.min_tps_before)?,
        min_tps_during: non_negative(&raw.min_tps_during)?,
        min_tps_after: non_negative(&raw.min_tps_after)?,
        max_p99_ms: non_negative(&raw.max_p99_ms)?,
        max_recovery_s: non_negative(&raw.max_recovery_s)?,
        safety: raw.safety.unwrap_or(true),
        liveness,
        acknowledged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::error::Located;
    use crate::scenario::render::to_toml;

    const FULL: &str = r#"
name = "everything"
description = "every section"
seed = 42

[cluster]
replicas = 4
executor = "sequential"
threads = 1
backend = "docker"
durability = "none"

[cluster.protocol]
name = "pbft"
max_batch = 512

[cluster.protocol.pbft]
view_timeout_ms = 800

[workload]
kind = "transfer"
accounts = 1000

[load]
clients = 3
rate = 20000
duration = 60
warmup = 5
payload_bytes = 128

[[load.rate_change]]
at = 30
rate = 80000

[[fault]]
at = 10
duration = 5
action = "crash"
target = "primary"

[[fault]]
at = 20
until = 25
action = "partition"
groups = [["r0", "r1"], "random-minority"]

[[fault]]
at = 30
action = "delay"
target = "all"
delay_ms = 50
jitter_ms = 10
clients = true

[[fault]]
at = 31
action = "loss"
target = ["r1", "r2"]
to = "backups"
probability = 0.02

[[fault]]
at = 40
duration = 10
action = "delay-ramp"
to_ms = 400

[[fault]]
at = 45
action = "flap"
target = "r1"
to = "r2"
period_ms = 2000
down_ms = 500

[[fault]]
at = 50
action = "heal"

[[fault]]
at = 51
duration = 4
action = "byzantine"
target = "r3"
mode = "equivocate"

[[fault]]
at = 52
action = "one-way-cut"
target = "primary"
to = "backups"

[expect]
min_tps = 1000
min_tps_after = 5000
max_p99_ms = 500
max_recovery_s = 5
liveness = "kept"
acknowledged = "lost"
"#;

    fn parse_text(text: &str) -> Result<Scenario, ScenarioError> {
        parse(Path::new("dir/test.toml"), text)
    }

    fn located(text: &str) -> Located {
        match parse_text(text) {
            Err(ScenarioError::At(l)) => *l,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn a_full_scenario_parses() {
        let s = parse_text(FULL).unwrap();
        assert_eq!((s.name.as_str(), s.seed), ("everything", 42));
        assert_eq!(s.cluster.replicas, 4);
        assert_eq!(s.cluster.protocol.common.replicas, 4);
        assert_eq!(s.cluster.protocol.common.max_batch, 512);
        let own = s
            .cluster
            .protocol
            .own_params::<tandem_consensus::pbft::PbftReplica>()
            .unwrap();
        assert_eq!(own.view_timeout, Duration::from_millis(800));
        assert_eq!(s.cluster.executor, "sequential");
        assert_eq!(s.cluster.backend, BackendKind::Docker);
        assert_eq!(s.workload.accounts, 1000);
        assert_eq!(s.load.clients, 3);
        assert_eq!(
            s.load.shape.rate_at(Duration::from_secs(29)),
            Some(20_000.0)
        );
        assert_eq!(
            s.load.shape.rate_at(Duration::from_secs(30)),
            Some(80_000.0)
        );
        assert_eq!(s.faults.len(), 9);
        assert_eq!(s.faults[0].target, Target::Primary);
        assert_eq!(s.faults[0].until, Some(Duration::from_secs(15)));
        assert_eq!(
            s.faults[1].action,
            Action::Partition {
                groups: vec![Target::Replicas(vec![0, 1]), Target::RandomMinority]
            }
        );
        assert_eq!(
            s.faults[2].action,
            Action::Link {
                to: Target::All,
                clients: true,
                fault: LinkFault::Delay {
                    delay: Duration::from_millis(50),
                    jitter: Duration::from_millis(10)
                }
            }
        );
        assert_eq!(s.faults[3].target, Target::Replicas(vec![1, 2]));
        assert_eq!(
            s.faults[4].target,
            Target::All,
            "link faults default to all"
        );
        assert_eq!(s.faults[7].label(), "byzantine r3 equivocate");
        assert_eq!(s.expect.max_recovery_s, Some(5.0));
        assert_eq!(s.steps().len(), 9 + 4);
    }

    #[test]
    fn defaults_fill_a_minimal_scenario() {
        let s = parse_text("[load]\nduration = 10\n").unwrap();
        assert_eq!(s.name, "test", "the file stem");
        assert_eq!(s.seed, 1);
        assert_eq!(s.cluster.replicas, 4);
        assert_eq!(s.cluster.backend, BackendKind::Process);
        assert_eq!(s.load.clients, 2);
        assert_eq!(s.load.shape, LoadShape::Closed { window: 1024 });
        assert_eq!(s.load.warmup, Duration::from_secs(3));
        assert_eq!(s.expect, Expectations::default());
    }

    #[test]
    fn rendering_gives_the_same_scenario_back() {
        let s = parse_text(FULL).unwrap();
        let text = to_toml(&s);
        let mut back = parse_text(&text).unwrap();
        back.source = s.source.clone();
        assert_eq!(back, s, "{text}");
    }

    /// Each bad file names the file, the line, the table and the field.
    #[test]
    fn errors_name_the_file_line_and_field() {
        let cases: [(&str, usize, &str, &str, &str); 23] = [
            (
                "[cluster.protocol]\nname = \"pbft\"\nmax_batch = 8\nwrong = 1\n[load]\nduration = 5\n",
                4,
                "[cluster.protocol]",
                "wrong",
                "unknown field `wrong`",
            ),
            (
                "[cluster.protocol]\nname = \"pbft\"\n[cluster.protocol.pbft]\nwindow = 3\n[load]\nduration = 5\n",
                4,
                "[cluster.protocol.pbft]",
                "window",
                "[cluster.protocol.pbft]",
            ),
            (
                "[cluster]\nreplicas = 4\n[cluster.protocol]\nreplicas = 7\n[load]\nduration = 5\n",
                4,
                "[cluster.protocol]",
                "replicas",
                "set `replicas` in [cluster]",
            ),
            (
                "[load]\nduration = \"x\"\n",
                2,
                "[load]",
                "duration",
                "expected f64",
            ),
            (
                "[load]\nduration = 5\nbogus = 1\n",
                3,
                "[load]",
                "bogus",
                "unknown field",
            ),
            (
                "seed = 1\n[load]\nduration = 5\n[cluster]\nreplicas = 3\n",
                5,
                "[cluster]",
                "replicas",
                "at least 4",
            ),
            (
                "[cluster]\nexecutor = \"magic\"\n[load]\nduration = 5\n",
                2,
                "[cluster]",
                "executor",
                "unknown executor",
            ),
            (
                "[cluster]\nbackend = \"kubernetes\"\n[load]\nduration = 5\n",
                2,
                "[cluster]",
                "backend",
                "unknown backend",
            ),
            (
                "[cluster]\ncpus_per_replica = 0\n[load]\nduration = 5\n",
                2,
                "[cluster]",
                "cpus_per_replica",
                "0 is not a CPU share",
            ),
            (
                "[cluster]\ncpu_sets = [\"0\", \"1\"]\n[load]\nduration = 5\n",
                2,
                "[cluster]",
                "cpu_sets",
                "2 CPU sets for 4 replicas",
            ),
            (
                "[cluster]\ncpu_sets = [\"0\", \"1\", \"2-1\", \"\"]\n[load]\nduration = 5\n",
                2,
                "[cluster]",
                "cpu_sets",
                "replica r2: the range `2-1` in `2-1` is backwards",
            ),
            (
                "[load]\nduration = 5\nrate = 10\nwindow = 4\n",
                4,
                "[load]",
                "window",
                "not both",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"explode\"\ntarget = \"r1\"\n",
                5,
                "[[fault]] 1",
                "action",
                "unknown action",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"crash\"\ntarget = \"r4\"\n",
                6,
                "[[fault]] 1",
                "target",
                "r4 does not exist",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"crash\"\ntarget = \"leader\"\n",
                6,
                "[[fault]] 1",
                "target",
                "not a target",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"crash\"\ntarget = \"r1\"\ndelay_ms = 5\n",
                7,
                "[[fault]] 1",
                "delay_ms",
                "takes no `delay_ms`",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 9\naction = \"crash\"\ntarget = \"r1\"\n",
                4,
                "[[fault]] 1",
                "at",
                "not before the load ends",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 1\nduration = 1\naction = \"heal\"\n",
                5,
                "[[fault]] 1",
                "duration",
                "one instant",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"loss\"\nprobability = 1.5\n",
                6,
                "[[fault]] 1",
                "probability",
                "not a probability",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"byzantine\"\ntarget = \"r1\"\nmode = \"evil\"\n",
                7,
                "[[fault]] 1",
                "mode",
                "no Byzantine mode `evil`",
            ),
            (
                "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"partition\"\ngroups = [[\"r0\"], [\"r0\", \"r1\"]]\n",
                6,
                "[[fault]] 1",
                "groups",
                "two groups",
            ),
            (
                "[load]\nduration = 5\n[expect]\nliveness = \"maybe\"\n",
                4,
                "[expect]",
                "liveness",
                "kept",
            ),
            (
                "[load]\nduration = 5\n[expect]\nsafety = true\nacknowledged = \"mostly\"\n",
                5,
                "[expect]",
                "acknowledged",
                "not `mostly`",
            ),
        ];
        for (text, line, table, field, message) in cases {
            let l = located(text);
            assert_eq!(l.path, Path::new("dir/test.toml"), "{text}");
            assert_eq!(l.line, line, "{text}\n{l}");
            assert_eq!(l.table, table, "{text}\n{l}");
            if !field.is_empty() {
                assert_eq!(l.field.as_deref(), Some(field), "{text}\n{l}");
            }
            assert!(l.message.contains(message), "{text}\n{l}");
        }
    }

    const EVM: &str = r#"
[cluster]
vm = "evm"
executor = "access-list"
max_tx_gas = 500000
max_batch_gas = 20000000

[evm_workload]
kind = "staking"
accounts = 300
instances = 2
zipf = 0.8

[load]
duration = 5

[[fault]]
at = 2
action = "crash"
target = "primary"
"#;

    /// `[cluster] vm = "evm"` with `[evm_workload]` and the gas limits: the EVM side
    /// of the scenario, the workload's seed defaulting to the scenario's, and the text
    /// rendered back parses to the same scenario.
    #[test]
    fn an_evm_scenario_parses_and_renders_back() {
        use tandem_executor::evm::EvmWorkloadKind;
        let s = parse_text(&format!("seed = 9\n{EVM}")).unwrap();
        assert_eq!(s.vm(), "evm");
        let evm = s.evm.as_ref().unwrap();
        assert_eq!(evm.workload.kind, EvmWorkloadKind::Staking);
        assert_eq!(
            (
                evm.workload.accounts,
                evm.workload.instances,
                evm.workload.zipf
            ),
            (300, 2, 0.8)
        );
        assert_eq!(evm.workload.seed, 9, "the scenario's seed");
        assert_eq!((evm.max_tx_gas, evm.max_batch_gas), (500_000, 20_000_000));
        assert_eq!(s.cluster.executor, "access-list");
        let text = to_toml(&s);
        let mut back = parse_text(&text).unwrap();
        back.source = s.source.clone();
        assert_eq!(back, s, "{text}");

        let defaults = parse_text(
            "[cluster]\nvm = \"evm\"\n[evm_workload]\nkind = \"erc20\"\nseed = 3\n[load]\nduration = 5\n",
        )
        .unwrap();
        let evm = defaults.evm.unwrap();
        let d = crate::cluster::ExecutionConfig::default();
        assert_eq!(
            (evm.max_tx_gas, evm.max_batch_gas),
            (d.max_tx_gas, d.max_batch_gas)
        );
        assert_eq!(
            (
                evm.workload.accounts,
                evm.workload.instances,
                evm.workload.seed
            ),
            (1000, 1, 3)
        );
        let ledger = parse_text("[cluster]\nvm = \"ledger\"\n[load]\nduration = 5\n").unwrap();
        assert_eq!((ledger.vm(), ledger.evm), ("ledger", None));
        assert_eq!(evm.auth, tandem_executor::evm::EvmAuth::Channel);

        // Signed transactions: `evm_auth` parses and renders back.
        let signed = parse_text(
            "[cluster]\nvm = \"evm\"\nevm_auth = \"secp256k1\"\n[evm_workload]\nkind = \"erc20\"\n[load]\nduration = 5\n",
        )
        .unwrap();
        assert_eq!(
            signed.evm.as_ref().unwrap().auth,
            tandem_executor::evm::EvmAuth::Secp256k1
        );
        let text = to_toml(&signed);
        let mut back = parse_text(&text).unwrap();
        back.source = signed.source.clone();
        assert_eq!(back, signed, "{text}");

        // Fees: `evm_base_fee` and `evm_beneficiary` parse and render back.
        let fees = parse_text(&format!(
            "[cluster]\nvm = \"evm\"\nevm_base_fee = 1000000000\nevm_beneficiary = \"0x{}\"\n[evm_workload]\nkind = \"erc20\"\n[load]\nduration = 5\n",
            "be".repeat(20)
        ))
        .unwrap();
        let e = fees.evm.as_ref().unwrap();
        assert_eq!(
            (e.base_fee, e.beneficiary),
            (
                1_000_000_000,
                tandem_executor::evm::Address::new([0xbe; 20])
            )
        );
        let text = to_toml(&fees);
        let mut back = parse_text(&text).unwrap();
        back.source = fees.source.clone();
        assert_eq!(back, fees, "{text}");
        assert_eq!(
            (evm.base_fee, evm.beneficiary),
            (0, tandem_executor::evm::DEFAULT_BENEFICIARY)
        );
    }

    /// Each bad EVM field names the file, the line, the table and the field.
    #[test]
    fn evm_errors_name_the_file_line_and_field() {
        let evm = |cluster: &str, workload: &str| {
            format!(
                "[cluster]\nvm = \"evm\"\n{cluster}[evm_workload]\nkind = \"uniswap\"\n{workload}[load]\nduration = 5\n"
            )
        };
        let cases: Vec<(String, usize, &str, &str, &str)> =
            vec![
            (
                "[cluster]\nvm = \"wasm\"\n[load]\nduration = 5\n".into(),
                2,
                "[cluster]",
                "vm",
                "unknown vm `wasm`",
            ),
            (
                "[cluster]\nvm = \"evm\"\n[load]\nduration = 5\n".into(),
                2,
                "[cluster]",
                "vm",
                "needs an [evm_workload] table",
            ),
            (
                "[load]\nduration = 5\n[evm_workload]\nkind = \"erc20\"\n".into(),
                3,
                "[evm_workload]",
                "",
                "needs [cluster] vm = \"evm\"",
            ),
            (
                format!("[workload]\nkind = \"dex\"\n{}", evm("", "")),
                1,
                "[workload]",
                "",
                "with vm = \"evm\" the workload is [evm_workload]",
            ),
            (
                evm("executor = \"none\"\n", ""),
                3,
                "[cluster]",
                "executor",
                "not none",
            ),
            (
                "[cluster]\nvm = \"evm\"\n[evm_workload]\naccounts = 10\n[load]\nduration = 5\n"
                    .into(),
                3,
                "[evm_workload]",
                "kind",
                "needs a kind: one of evm-transfer, erc20",
            ),
            (
                "[cluster]\nvm = \"evm\"\n[evm_workload]\nkind = \"dex\"\n[load]\nduration = 5\n"
                    .into(),
                4,
                "[evm_workload]",
                "kind",
                "unknown EVM workload `dex`",
            ),
            (evm("", "accounts = 1\n"), 5, "[evm_workload]", "accounts", "at least 2"),
            (
                evm("", "instances = 0\n"),
                5,
                "[evm_workload]",
                "instances",
                "between 1 and 1024",
            ),
            (
                evm("", "accounts = 600000\ninstances = 2\n"),
                5,
                "[evm_workload]",
                "accounts",
                "1200000 (account, instance) pairs",
            ),
            (
                evm("", "zipf = -1.0\n"),
                5,
                "[evm_workload]",
                "zipf",
                "finite number ≥ 0",
            ),
            (
                evm("", "pools = 3\n"),
                5,
                "[evm_workload]",
                "pools",
                "unknown field `pools`",
            ),
            (
                "[cluster]\nmax_tx_gas = 100000\n[load]\nduration = 5\n".into(),
                2,
                "[cluster]",
                "max_tx_gas",
                "need vm = \"evm\"",
            ),
            (
                "[cluster]\nevm_auth = \"secp256k1\"\n[load]\nduration = 5\n".into(),
                2,
                "[cluster]",
                "evm_auth",
                "needs vm = \"evm\"",
            ),
            (
                evm("evm_auth = \"ed25519\"\n", ""),
                3,
                "[cluster]",
                "evm_auth",
                "expected channel or secp256k1",
            ),
            (
                "[cluster]\nevm_base_fee = 7\n[load]\nduration = 5\n".into(),
                2,
                "[cluster]",
                "evm_base_fee",
                "needs vm = \"evm\"",
            ),
            (
                evm("evm_base_fee = 3000000000\n", ""),
                3,
                "[cluster]",
                "evm_base_fee",
                "above the workloads' gas price",
            ),
            (
                evm("evm_base_fee = -1\n", ""),
                3,
                "[cluster]",
                "evm_base_fee",
                "",
            ),
            (
                evm("evm_beneficiary = \"0xbeef\"\n", ""),
                3,
                "[cluster]",
                "evm_beneficiary",
                "expected an address, 40 hex digits",
            ),
            (
                evm("max_tx_gas = 1000\n", ""),
                3,
                "[cluster]",
                "max_tx_gas",
                "uniswap transactions declare up to 200000 gas",
            ),
            (
                evm("max_tx_gas = 300000\nmax_batch_gas = 200000\n", ""),
                4,
                "[cluster]",
                "max_batch_gas",
                "below max_tx_gas 300000",
            ),
            (
                evm("max_tx_gas = 900000000\n", ""),
                3,
                "[cluster]",
                "max_tx_gas",
                "set max_batch_gas too",
            ),
            (
                format!("{}payload_bytes = 65537\n", evm("", "")),
                7,
                "[load]",
                "payload_bytes",
                "at most 65536 bytes, padding included",
            ),
        ];
        for (text, line, table, field, message) in cases {
            let l = located(&text);
            assert_eq!(l.path, Path::new("dir/test.toml"), "{text}");
            assert_eq!(l.line, line, "{text}\n{l}");
            assert_eq!(l.table, table, "{text}\n{l}");
            if !field.is_empty() {
                assert_eq!(l.field.as_deref(), Some(field), "{text}\n{l}");
            }
            assert!(l.message.contains(message), "{text}\n{l}");
        }
    }

    /// Every checked-in scenario (`experiments/scenarios/*.toml`) parses, and renders
    /// back to itself.
    #[test]
    fn every_checked_in_scenario_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        assert!(files.len() >= 20, "{files:?}");
        let mut evm = 0;
        for path in &files {
            let s = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
            let mut back = parse(path, &to_toml(&s)).unwrap_or_else(|e| panic!("{e}"));
            back.source = s.source.clone();
            assert_eq!(back, s, "{}", path.display());
            evm += usize::from(s.evm.is_some());
        }
        assert!(evm >= 1, "an EVM scenario is checked in");
    }

    /// Issue 13 item 3: `[cluster] cpus_per_replica` and `cpu_sets` parse, set the
    /// executor threads when `threads` is not given, and render back.
    #[test]
    fn a_cpu_budget_parses_sets_the_threads_and_renders_back() {
        let s = parse_text(
            "[cluster]\ncpus_per_replica = 1.5\ncpu_sets = [\"0-1\", \"2,3\", \"0-1\", \"3,2\"]\n\
             [load]\nduration = 5\n",
        )
        .unwrap();
        assert_eq!(s.cluster.cpu.cpus_per_replica, Some(1.5));
        let sets = s.cluster.cpu.cpu_sets.as_ref().unwrap();
        assert_eq!(sets[3], CpuSet::parse("2-3").unwrap());
        assert_eq!(s.cluster.threads, 2, "1.5 CPUs rounded up");
        let back = parse_text(&crate::scenario::render::to_toml(&s)).unwrap();
        assert_eq!(back.cluster, s.cluster);

        let given =
            parse_text("[cluster]\nthreads = 3\ncpus_per_replica = 0.5\n[load]\nduration = 5\n")
                .unwrap();
        assert_eq!(given.cluster.threads, 3, "`threads` wins over the budget");
        let share =
            crate::cpu_budget::machine_share_threads(crate::cpu_budget::usable_cpu_count(), 4);
        let none = parse_text("[cluster]\nreplicas = 4\n[load]\nduration = 5\n").unwrap();
        assert!(none.cluster.cpu.is_none());
        assert_eq!(
            none.cluster.threads, share,
            "no budget: the replica's share of the machine"
        );
        let no_cluster = parse_text("[load]\nduration = 5\n").unwrap();
        assert_eq!(
            no_cluster.cluster.threads, share,
            "no [cluster] at all: the same"
        );
    }

    #[test]
    fn an_error_reads_well() {
        let err = parse_text(
            "[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"crash\"\ntarget = \"r4\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "scenario dir/test.toml, line 6, column 10, [[fault]] 1, field `target`:\n  \
             replica r4 does not exist (the cluster has 4 replicas: r0..r3)\n     6 | target = \"r4\""
        );
    }

    #[test]
    fn a_missing_required_parameter_names_it() {
        let l = located("[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"delay\"\n");
        assert_eq!(l.field.as_deref(), Some("delay_ms"));
        assert!(l.message.contains("needs `delay_ms`"), "{l}");
        let l = located("[load]\nduration = 5\n[[fault]]\naction = \"crash\"\ntarget = \"r0\"\n");
        assert_eq!(l.field.as_deref(), Some("at"));
        let l = located("seed = 1\n");
        assert!(l.message.contains("missing [load]"), "{l}");
        let l = located("[load]\nduration = 5\n[[fault]]\nat = 1\naction = \"crash\"\n");
        assert_eq!(l.field.as_deref(), Some("target"));
    }

    #[test]
    fn an_unreadable_file_says_so() {
        let err = Scenario::load(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.toml"), "{err}");
    }
}
