//! What `tandem local` asks for, as plain values ([`LocalOptions`]: its flags, parsed),
//! and how that becomes a [`RunPlan`]: a one-line scenario (the cluster, the load, the
//! fault flags as `[[fault]]`s, safety expected and liveness not checked), run by the
//! same runner as `tandem run`, and the parameters recorded for `summary.json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use crate::cluster_params::ClusterParams;
use crate::cpu_budget::{self, CpuBudget, CpuSet};
use crate::load::LoadMode;
use crate::payload::MAX_EVM_PAYLOAD_BYTES;
use crate::runner::{RunPlan, faults};
use crate::scenario::{
    BackendKind, ClusterSpec, EvmSpec, LoadShape, LoadSpec, Scenario, ScenarioSource, render,
};

/// Closed-loop window per client when neither a rate nor a window is given.
const DEFAULT_WINDOW: usize = 1024;

/// The options of `tandem local` (each field is the flag of the same name).
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// The cluster (its `threads` already resolved: see [`CpuBudget::threads`]).
    pub cluster: ClusterParams,
    /// Each replica's CPU budget (`--cpus-per-replica`, `--cpu-sets`).
    pub cpu_budget: CpuBudget,
    /// The `tandem` executable that runs the replicas.
    pub replica_program: PathBuf,
    /// Load clients (at least 1).
    pub clients: usize,
    /// Open loop: total offered transactions per second.
    pub rate: Option<f64>,
    /// Closed loop: requests each client keeps outstanding.
    pub window: Option<usize>,
    /// Seconds of load (at least 1).
    pub duration_secs: f64,
    /// Seconds left out of the statistics at the start (at most half the duration).
    pub warmup_secs: f64,
    /// Pad each transaction to this many bytes.
    pub payload: usize,
    /// Client retransmission time-out, milliseconds.
    pub retransmit_ms: u64,
    /// `r<id>@<seconds>` replicas to kill.
    pub kill: Vec<String>,
    /// `r<id>@<seconds>` replicas to restart with an empty state.
    pub restart: Vec<String>,
    /// `r<id>=<mode>` Byzantine replicas.
    pub byzantine: Vec<String>,
    /// Name of the run.
    pub name: String,
    /// Folder that receives results folders.
    pub results: PathBuf,
}

impl LocalOptions {
    /// The one-line scenario these options stand for (its text, rendered as a scenario
    /// file, goes into `summary.json`), and the plan that runs it; the error names the
    /// flag at fault.
    pub fn plan(self) -> Result<RunPlan> {
        if self.clients == 0 {
            bail!("--clients must be at least 1");
        }
        if !(self.duration_secs.is_finite() && self.duration_secs >= 1.0) {
            bail!("--duration must be at least 1 second");
        }
        let warmup = self.warmup_secs.clamp(0.0, self.duration_secs / 2.0);
        let mode = LoadMode::from_flags(self.rate, self.window, DEFAULT_WINDOW)?;
        let replicas = self.cluster.replicas;
        let byzantine = faults::byzantine_modes(&self.byzantine, self.cluster.protocol, replicas)?;
        let scenario_faults =
            faults::scenario_faults(&self.kill, &self.restart, &byzantine, replicas)?;
        if !self.cpu_budget.is_none() {
            // The machine's and the backend's checks, before anything starts; the
            // runner resolves the budget again when it starts the replicas.
            self.cpu_budget.resolve(
                replicas,
                BackendKind::Process,
                &CpuSet::this_process()?,
                cpu_budget::FLAGS,
            )?;
        }
        let c = &self.cluster;
        c.check_vm_flags()?;
        if c.vm == "evm" && self.payload > MAX_EVM_PAYLOAD_BYTES {
            bail!(
                "--payload {}: an EVM request is at most {MAX_EVM_PAYLOAD_BYTES} bytes, padding included",
                self.payload
            );
        }
        let mut protocol = c.protocol_section()?;
        protocol.common.replicas = replicas;
        let mut scenario = Scenario {
            name: self.name.clone(),
            description: "the scenario `tandem local`'s flags stand for".into(),
            seed: 1,
            cluster: ClusterSpec {
                replicas,
                protocol,
                executor: c.executor.clone(),
                threads: c.threads,
                backend: BackendKind::Process,
                durability: c.durability,
                cpu: self.cpu_budget.clone(),
            },
            workload: c.workload_spec()?,
            evm: c.evm_workload_spec()?.map(|workload| {
                let d = EvmSpec::with_default_gas(workload);
                EvmSpec {
                    max_tx_gas: c.max_tx_gas.unwrap_or(d.max_tx_gas),
                    max_batch_gas: c.max_batch_gas.unwrap_or(d.max_batch_gas),
                    auth: c.evm_auth,
                    base_fee: c.base_fee.unwrap_or(d.base_fee),
                    beneficiary: c.beneficiary.unwrap_or(d.beneficiary),
                    ..d
                }
            }),
            load: LoadSpec {
                clients: self.clients,
                shape: match mode {
                    LoadMode::Rate(rate) => LoadShape::Open {
                        rate,
                        changes: Vec::new(),
                    },
                    LoadMode::Window(window) => LoadShape::Closed { window },
                },
                duration: Duration::from_secs_f64(self.duration_secs),
                warmup: Duration::from_secs_f64(warmup),
                payload_bytes: self.payload,
                retransmit_after: Duration::from_millis(self.retransmit_ms),
            },
            faults: scenario_faults,
            expect: render::local_expectations(),
            source: ScenarioSource {
                path: None,
                text: String::new(),
            },
        };
        scenario.source.text = render::to_toml(&scenario);
        let parameters = json!({
            "protocol": c.protocol.name(),
            "replicas": c.replicas,
            "executor": c.executor,
            "threads": c.threads,
            "cpu_budget": self.cpu_budget.label(),
            "vm": c.vm,
            "evm_auth": (c.vm == "evm").then(|| c.evm_auth.as_str()),
            "evm_base_fee": (c.vm == "evm").then(|| c.base_fee.unwrap_or(0)),
            "workload": workload_label(c),
            "workload_spec": match c.evm_workload_spec()? {
                Some(evm) => json!(evm),
                None => json!(c.workload_spec()?),
            },
            "clients": self.clients,
            "rate": self.rate,
            "window": match mode { LoadMode::Window(w) => Some(w), LoadMode::Rate(_) => None },
            "duration_secs": self.duration_secs,
            "warmup_secs": warmup,
            "payload_bytes": self.payload,
            "batch_size": c.batch_size,
            "batch_timeout_ms": c.batch_timeout_ms,
            "checkpoint_interval": c.checkpoint_interval,
            "view_timeout_ms": c.view_timeout_ms,
            "signed_all": c.signed_all,
            "kill": self.kill,
            "restart": self.restart,
            "byzantine": self.byzantine,
        });
        Ok(RunPlan {
            scenario,
            replica_program: self.replica_program,
            results: self.results,
            parameters,
        })
    }
}

/// A short description of the workload, e.g. `dex (10000 accounts, 4 pools, zipf 0)`.
fn workload_label(c: &ClusterParams) -> String {
    let mut parts = vec![format!("{} accounts", c.accounts)];
    if c.vm == "evm" {
        parts.push(format!("{} instances", c.pools));
    } else if matches!(c.workload.as_str(), "dex" | "mixed") {
        parts.push(format!("{} pools", c.pools));
    }
    parts.push(format!("zipf {}", c.zipf));
    if c.work > 0 {
        parts.push(format!("work {}", c.work));
    }
    if c.signed_txs {
        parts.push("signed".to_string());
    }
    let vm = if c.vm == "evm" { "evm " } else { "" };
    format!("{vm}{} ({})", c.workload, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Action, Target};

    fn options() -> LocalOptions {
        LocalOptions {
            cluster: ClusterParams::default(),
            cpu_budget: CpuBudget::default(),
            replica_program: PathBuf::from("tandem"),
            clients: 2,
            rate: None,
            window: None,
            duration_secs: 20.0,
            warmup_secs: 3.0,
            payload: 0,
            retransmit_ms: 1000,
            kill: Vec::new(),
            restart: Vec::new(),
            byzantine: Vec::new(),
            name: "local".into(),
            results: PathBuf::from("results"),
        }
    }

    #[test]
    fn the_default_plan_is_a_closed_loop_over_four_replicas() {
        let plan = options().plan().unwrap();
        let s = &plan.scenario;
        assert_eq!(
            s.load.shape,
            LoadShape::Closed {
                window: DEFAULT_WINDOW
            }
        );
        assert_eq!(s.load.warmup, Duration::from_secs(3));
        assert!(s.faults.is_empty());
        let back = Scenario::parse(std::path::Path::new("local.toml"), &s.source.text).unwrap();
        assert_eq!(back.load, s.load, "the recorded scenario text parses back");
        assert_eq!(back.cluster, s.cluster);
        assert_eq!(
            plan.parameters["workload"],
            "dex (10000 accounts, 4 pools, zipf 0)"
        );
        assert_eq!(plan.parameters["window"], 1024);
        assert_eq!(plan.parameters["rate"], serde_json::Value::Null);
    }

    #[test]
    fn rates_are_split_faults_scheduled_and_warmup_clamped() {
        let plan = LocalOptions {
            rate: Some(10_000.0),
            duration_secs: 4.0,
            warmup_secs: 3.0,
            kill: vec!["r0@2".into()],
            byzantine: vec!["r1=silent".into()],
            ..options()
        }
        .plan()
        .unwrap();
        let s = &plan.scenario;
        assert_eq!(s.load.shape.rate_at(Duration::ZERO), Some(10_000.0));
        assert_eq!(s.load.warmup, Duration::from_secs(2));
        assert_eq!(s.faults[0].action, Action::Crash);
        assert_eq!(s.faults[0].target, Target::Replicas(vec![0]));
        assert_eq!(
            s.faults[1].action,
            Action::Byzantine {
                mode: "silent".into()
            }
        );
        assert!(s.faults[1].at.is_zero());
        assert_eq!(plan.parameters["rate"], 10_000.0);
        assert_eq!(plan.parameters["window"], serde_json::Value::Null);
    }

    #[test]
    fn bad_options_name_the_flag() {
        let cases = [
            (
                LocalOptions {
                    clients: 0,
                    ..options()
                },
                "--clients",
            ),
            (
                LocalOptions {
                    duration_secs: 0.5,
                    ..options()
                },
                "--duration",
            ),
            (
                LocalOptions {
                    rate: Some(-1.0),
                    ..options()
                },
                "--rate",
            ),
            (
                LocalOptions {
                    window: Some(0),
                    ..options()
                },
                "--window",
            ),
            (
                LocalOptions {
                    kill: vec!["r7@1".into()],
                    ..options()
                },
                "--kill",
            ),
            (
                LocalOptions {
                    cluster: ClusterParams {
                        workload: "nope".into(),
                        ..ClusterParams::default()
                    },
                    ..options()
                },
                "workload",
            ),
            (
                LocalOptions {
                    cpu_budget: CpuBudget {
                        cpus_per_replica: Some(0.5),
                        cpu_sets: None,
                    },
                    ..options()
                },
                "--cpus-per-replica: 0.5 CPU per replica cannot be enforced on the process backend",
            ),
            (
                LocalOptions {
                    cpu_budget: CpuBudget {
                        cpus_per_replica: None,
                        cpu_sets: Some(vec![CpuSet::parse("1023").unwrap(); 4]),
                    },
                    ..options()
                },
                "--cpu-sets: replica r0's set `1023` names CPU 1023",
            ),
            (
                LocalOptions {
                    cluster: ClusterParams {
                        vm: "evm".into(),
                        workload: "erc20".into(),
                        ..ClusterParams::default()
                    },
                    payload: 65_537,
                    ..options()
                },
                "--payload 65537: an EVM request is at most 65536 bytes",
            ),
            (
                LocalOptions {
                    cluster: ClusterParams {
                        max_batch_gas: Some(1 << 30),
                        ..ClusterParams::default()
                    },
                    ..options()
                },
                "--max-batch-gas bounds EVM gas: it needs --vm evm",
            ),
            (
                LocalOptions {
                    cluster: ClusterParams {
                        vm: "evm".into(),
                        workload: "staking".into(),
                        max_tx_gas: Some(100_000),
                        ..ClusterParams::default()
                    },
                    ..options()
                },
                "--max-tx-gas 100000 is below the 250000 gas staking transactions declare",
            ),
            (
                LocalOptions {
                    cluster: ClusterParams {
                        base_fee: Some(1),
                        ..ClusterParams::default()
                    },
                    ..options()
                },
                "--base-fee sets EVM fees: it needs --vm evm",
            ),
            (
                LocalOptions {
                    cluster: ClusterParams {
                        vm: "evm".into(),
                        workload: "erc20".into(),
                        base_fee: Some(2_000_000_001),
                        ..ClusterParams::default()
                    },
                    ..options()
                },
                "--base-fee 2000000001 is above the workloads' gas price",
            ),
        ];
        for (opts, flag) in cases {
            let err = format!("{:#}", opts.plan().unwrap_err());
            assert!(err.contains(flag), "{flag}: {err}");
        }
    }

    /// `--vm evm`: the plan's scenario carries the EVM workload and gas bounds, and its
    /// recorded text (a scenario file with `[cluster] vm = "evm"`) parses back to it.
    #[test]
    fn an_evm_plan_records_an_evm_scenario() {
        let plan = LocalOptions {
            cluster: ClusterParams {
                vm: "evm".into(),
                workload: "uniswap".into(),
                accounts: 200,
                pools: 1,
                max_tx_gas: Some(300_000),
                base_fee: Some(1_000_000_000),
                beneficiary: Some(tandem_executor::evm::Address::new([0xbe; 20])),
                ..ClusterParams::default()
            },
            ..options()
        }
        .plan()
        .unwrap();
        let s = &plan.scenario;
        let evm = s.evm.as_ref().unwrap();
        assert_eq!((evm.workload.accounts, evm.workload.instances), (200, 1));
        assert_eq!(evm.max_tx_gas, 300_000);
        assert_eq!(
            (evm.base_fee, evm.beneficiary),
            (
                1_000_000_000,
                tandem_executor::evm::Address::new([0xbe; 20])
            )
        );
        assert_eq!(
            evm.max_batch_gas,
            crate::cluster::ExecutionConfig::default().max_batch_gas
        );
        let back = Scenario::parse(std::path::Path::new("local.toml"), &s.source.text).unwrap();
        assert_eq!(back.evm, s.evm, "{}", s.source.text);
        assert_eq!(plan.parameters["vm"], "evm");
    }

    /// Issue 13 item 3: the budget goes into the scenario (and its recorded text) and
    /// into the parameters `summary.json` and the printed summary show.
    #[test]
    fn a_cpu_budget_is_part_of_the_plan_and_its_parameters() {
        let budget = CpuBudget {
            cpus_per_replica: None,
            cpu_sets: Some(vec![CpuSet::parse("0").unwrap(); 4]),
        };
        let plan = LocalOptions {
            cpu_budget: budget.clone(),
            ..options()
        }
        .plan()
        .unwrap();
        assert_eq!(plan.scenario.cluster.cpu, budget);
        assert_eq!(plan.parameters["cpu_budget"], "sets 0;0;0;0");
        let back = Scenario::parse(
            std::path::Path::new("local.toml"),
            &plan.scenario.source.text,
        )
        .unwrap();
        assert_eq!(back.cluster.cpu, budget);
        let plain = options().plan().unwrap();
        assert_eq!(
            plain.parameters["cpu_budget"],
            "none (replicas share every CPU)"
        );
    }
}
