//! A scenario written back as scenario-file TOML: what `tandem local` records as the
//! scenario its flags stand for (so a run started from flags can be repeated, or
//! copied into a file and edited). Parsing the text gives the same scenario back.

use std::time::Duration;

use toml::{Table, Value};

use crate::scenario::action::{Action, LinkFault};
use crate::scenario::expect::Liveness;
use crate::scenario::target::Target;
use crate::scenario::{Fault, LoadShape, Scenario};

/// The scenario as the text of a scenario file.
pub fn to_toml(s: &Scenario) -> String {
    let mut top = Table::new();
    top.insert("name".into(), s.name.clone().into());
    if !s.description.is_empty() {
        top.insert("description".into(), s.description.clone().into());
    }
    top.insert("seed".into(), int(s.seed));

    let mut cluster = Table::new();
    cluster.insert("replicas".into(), int(s.cluster.replicas as u64));
    cluster.insert("executor".into(), s.cluster.executor.clone().into());
    cluster.insert("threads".into(), int(s.cluster.threads as u64));
    cluster.insert("backend".into(), s.cluster.backend.name().into());
    cluster.insert("durability".into(), s.cluster.durability.name().into());
    if let Some(share) = s.cluster.cpu.cpus_per_replica {
        cluster.insert("cpus_per_replica".into(), share.into());
    }
    if let Some(sets) = &s.cluster.cpu.cpu_sets {
        let list = sets
            .iter()
            .map(|set| Value::from(set.to_string()))
            .collect();
        cluster.insert("cpu_sets".into(), Value::Array(list));
    }
    if let Some(evm) = &s.evm {
        cluster.insert("vm".into(), "evm".into());
        cluster.insert("max_tx_gas".into(), int(evm.max_tx_gas));
        cluster.insert("max_batch_gas".into(), int(evm.max_batch_gas));
        if !evm.auth.is_channel() {
            cluster.insert("evm_auth".into(), evm.auth.as_str().into());
        }
        if evm.base_fee != 0 {
            cluster.insert("evm_base_fee".into(), int(evm.base_fee));
        }
        if evm.beneficiary != tandem_executor::evm::DEFAULT_BENEFICIARY {
            cluster.insert(
                "evm_beneficiary".into(),
                format!("0x{}", hex::encode(evm.beneficiary.as_slice())).into(),
            );
        }
    }
    if let Ok(Value::Table(mut protocol)) = Value::try_from(&s.cluster.protocol) {
        protocol.remove("replicas");
        cluster.insert("protocol".into(), Value::Table(protocol));
    }
    top.insert("cluster".into(), Value::Table(cluster));
    match &s.evm {
        None => {
            if let Ok(workload) = Value::try_from(&s.workload) {
                top.insert("workload".into(), workload);
            }
        }
        Some(evm) => {
            let w = &evm.workload;
            let mut t = Table::new();
            t.insert("kind".into(), w.kind.as_str().into());
            t.insert("accounts".into(), int(w.accounts));
            t.insert("instances".into(), int(u64::from(w.instances)));
            t.insert("zipf".into(), w.zipf.into());
            t.insert("seed".into(), int(w.seed));
            top.insert("evm_workload".into(), Value::Table(t));
        }
    }

    let l = &s.load;
    let mut load = Table::new();
    load.insert("clients".into(), int(l.clients as u64));
    match &l.shape {
        LoadShape::Open { rate, changes } => {
            load.insert("rate".into(), (*rate).into());
            if !changes.is_empty() {
                let list = changes
                    .iter()
                    .map(|c| {
                        let mut t = Table::new();
                        t.insert("at".into(), secs(c.at));
                        t.insert("rate".into(), c.rate.into());
                        Value::Table(t)
                    })
                    .collect();
                load.insert("rate_change".into(), Value::Array(list));
            }
        }
        LoadShape::Closed { window } => {
            load.insert("window".into(), int(*window as u64));
        }
    }
    load.insert("duration".into(), secs(l.duration));
    load.insert("warmup".into(), secs(l.warmup));
    load.insert("payload_bytes".into(), int(l.payload_bytes as u64));
    load.insert(
        "retransmit_ms".into(),
        int(l.retransmit_after.as_millis() as u64),
    );
    top.insert("load".into(), Value::Table(load));

    if !s.faults.is_empty() {
        let faults = s.faults.iter().map(|f| Value::Table(fault(f))).collect();
        top.insert("fault".into(), Value::Array(faults));
    }

    let e = &s.expect;
    let mut expect = Table::new();
    let mut put = |name: &str, v: Option<f64>| {
        if let Some(v) = v {
            expect.insert(name.into(), v.into());
        }
    };
    put("min_tps", e.min_tps);
    put("min_tps_before", e.min_tps_before);
    put("min_tps_during", e.min_tps_during);
    put("min_tps_after", e.min_tps_after);
    put("max_p99_ms", e.max_p99_ms);
    put("max_recovery_s", e.max_recovery_s);
    expect.insert("safety".into(), e.safety.into());
    expect.insert("liveness".into(), e.liveness.name().into());
    expect.insert("acknowledged".into(), e.acknowledged.name().into());
    top.insert("expect".into(), Value::Table(expect));
    toml::to_string(&top).unwrap_or_default()
}

fn int(v: u64) -> Value {
    Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

fn secs(d: Duration) -> Value {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        int(d.as_secs())
    } else {
        s.into()
    }
}

fn millis(d: Duration) -> Value {
    let ms = d.as_secs_f64() * 1000.0;
    if ms.fract() == 0.0 {
        int(ms as u64)
    } else {
        ms.into()
    }
}

fn target(t: &Target) -> Value {
    match t {
        Target::Replicas(ids) if ids.len() > 1 => {
            Value::Array(ids.iter().map(|r| format!("r{r}").into()).collect())
        }
        other => other.to_string().into(),
    }
}

fn fault(f: &Fault) -> Table {
    let mut t = Table::new();
    t.insert("at".into(), secs(f.at));
    if let Some(until) = f.until {
        t.insert("until".into(), secs(until));
    }
    t.insert("action".into(), f.action.kind().name().into());
    match &f.action {
        Action::Heal => {}
        Action::Partition { groups } => {
            t.insert(
                "groups".into(),
                Value::Array(
                    groups
                        .iter()
                        .map(|g| match g {
                            Target::Replicas(ids) => {
                                Value::Array(ids.iter().map(|r| format!("r{r}").into()).collect())
                            }
                            other => other.to_string().into(),
                        })
                        .collect(),
                ),
            );
        }
        Action::Byzantine { mode } => {
            t.insert("target".into(), target(&f.target));
            t.insert("mode".into(), mode.clone().into());
        }
        Action::OneWayCut { to } => {
            t.insert("target".into(), target(&f.target));
            t.insert("to".into(), target(to));
        }
        Action::Link { to, clients, fault } => {
            t.insert("target".into(), target(&f.target));
            t.insert("to".into(), target(to));
            if *clients {
                t.insert("clients".into(), true.into());
            }
            match *fault {
                LinkFault::Delay { delay, jitter } => {
                    t.insert("delay_ms".into(), millis(delay));
                    t.insert("jitter_ms".into(), millis(jitter));
                }
                LinkFault::Loss(p) | LinkFault::Duplicate(p) | LinkFault::Reorder(p) => {
                    t.insert("probability".into(), p.into());
                }
                // `over` is the fault's duration, written as its `until`.
                LinkFault::DelayRamp {
                    from, to, jitter, ..
                } => {
                    t.insert("from_ms".into(), millis(from));
                    t.insert("to_ms".into(), millis(to));
                    t.insert("jitter_ms".into(), millis(jitter));
                }
                LinkFault::Flap { period, down } => {
                    t.insert("period_ms".into(), millis(period));
                    t.insert("down_ms".into(), millis(down));
                }
            }
        }
        _ => {
            t.insert("target".into(), target(&f.target));
        }
    }
    t
}

/// `liveness = "any"` and safety only: what `tandem local` expects.
pub fn local_expectations() -> crate::scenario::Expectations {
    crate::scenario::Expectations {
        liveness: Liveness::Any,
        ..crate::scenario::Expectations::default()
    }
}
