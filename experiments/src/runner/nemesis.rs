//! The nemesis of a real cluster: carries out a scenario's schedule ([`Step`]s in time
//! order) against the replicas' [`Backend`] (processes or containers) and, through the
//! launcher's control channel, the replicas' fault layers. It resolves each fault's target when the fault fires
//! (`primary` is asked of the replicas then), keeps what is active, decides what ends
//! a fault (its `until`, a later `restart`, `resume` or `heal`) and records every fault
//! as a [`FaultSpan`] and every start and end as a timeline event.
//!
//! | action | processes | containers |
//! |---|---|---|
//! | `crash` / `stop` | SIGKILL / SIGTERM | `docker kill` / `docker stop` |
//! | its end, or `restart` | a new process (empty, or from its log with `wal`) | `docker start` (from its data folder with `wal`) |
//! | `pause` / `resume` (or its end) | SIGSTOP / SIGCONT | `docker pause` / `docker unpause` |
//! | `byzantine` | at time 0 the replica starts in the mode; later it restarts in the mode (PBFT cannot switch a running replica); its end restarts it honest | the same, a new container in the mode |
//! | `isolate`, its end or `heal` | fault layer | `docker network disconnect` / `connect` |
//! | other network actions | the active set becomes [`FaultRules`] ([`link_rules`]), installed on every replica (control channel, re-sent periodically for restarted replicas) and on the load clients | the same |

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tandem_network::{FaultHandle, FaultRules};

use crate::report::FaultSpan;
use crate::runner::backend::Backend;
use crate::runner::launcher::Launcher;
use crate::runner::link_rules::{ActiveNetworkFault, rules_for};
use crate::scenario::{
    Action, ActionKind, ClusterView, Fault, KnownPrimary, Scenario, Step, StepKind, Target,
};

/// How long a status query waits for answers when a target needs the primary.
const STATUS_WAIT: Duration = Duration::from_millis(500);
/// How long a graceful stop waits before it kills.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The state of the schedule while it runs.
pub struct Nemesis {
    faults: Vec<Fault>,
    replicas: u32,
    clients: u32,
    rng: ChaCha8Rng,
    /// Per fault (by index): its span once it started.
    spans: Vec<Option<FaultSpan>>,
    /// Active network faults, by fault index.
    network: BTreeMap<usize, ActiveNetworkFault>,
    /// Per replica: the open fault that keeps it down (crash or stop).
    down: BTreeMap<u32, usize>,
    /// Per replica: the open pause.
    paused: BTreeMap<u32, usize>,
    /// Per replica: the open Byzantine fault.
    byzantine: BTreeMap<u32, usize>,
    /// Per replica: the open isolation the backend carried out (Docker: disconnected).
    disconnected: BTreeMap<u32, usize>,
    /// Every replica ever made Byzantine (left out of the safety verdict).
    ever_byzantine: Vec<bool>,
    /// Fault events for the timeline: (time since the start, label).
    pub events: Vec<(Duration, String)>,
    /// The rules installed now.
    rules: FaultRules,
}

impl Nemesis {
    /// A nemesis for `scenario`, seeded by its seed.
    pub fn new(scenario: &Scenario) -> Nemesis {
        let n = scenario.cluster.replicas;
        Nemesis {
            faults: scenario.faults.clone(),
            replicas: n as u32,
            clients: scenario.load.clients as u32,
            rng: ChaCha8Rng::seed_from_u64(scenario.seed),
            spans: vec![None; scenario.faults.len()],
            network: BTreeMap::new(),
            down: BTreeMap::new(),
            paused: BTreeMap::new(),
            byzantine: BTreeMap::new(),
            disconnected: BTreeMap::new(),
            ever_byzantine: vec![false; n],
            events: Vec::new(),
            rules: FaultRules::default(),
        }
    }

    /// The Byzantine mode each replica starts in: faults `byzantine` at time 0 with a
    /// replica target (resolved now; `primary` at time 0 is r0).
    pub fn initial_modes(&mut self) -> Vec<Option<String>> {
        let mut modes = vec![None; self.replicas as usize];
        let view = KnownPrimary {
            replicas: self.replicas as usize,
            primary: 0,
        };
        for (i, f) in self.faults.iter().enumerate() {
            if let (Action::Byzantine { mode }, true) = (&f.action, f.at.is_zero()) {
                let hit = f.target.resolve(&view, &mut self.rng);
                for r in &hit {
                    modes[*r as usize] = Some(mode.clone());
                    self.byzantine.insert(*r, i);
                    self.ever_byzantine[*r as usize] = true;
                }
                self.spans[i] = Some(FaultSpan {
                    fault: f.number,
                    label: f.label(),
                    start_s: 0.0,
                    end_s: None,
                    replicas: hit,
                });
                self.events.push((Duration::ZERO, f.label()));
            }
        }
        modes
    }

    /// Whether a step is one [`Nemesis::initial_modes`] already carried out.
    fn done_at_start(&self, step: &Step) -> bool {
        let f = &self.faults[step.fault];
        step.kind == StepKind::Start
            && f.at.is_zero()
            && matches!(f.action, Action::Byzantine { .. })
    }

    /// Replicas that were Byzantine at some point of the run.
    pub fn byzantine_replicas(&self) -> &[bool] {
        &self.ever_byzantine
    }

    /// Whether replica `r` is paused (SIGSTOP) now.
    pub fn is_paused(&self, r: u32) -> bool {
        self.paused.contains_key(&r)
    }

    /// The fault layer's rules now.
    pub fn rules(&self) -> &FaultRules {
        &self.rules
    }

    /// Every fault that started, as it happened (open ones end at `end_s = None`).
    pub fn spans(&self) -> Vec<FaultSpan> {
        self.spans.iter().flatten().cloned().collect()
    }

    /// Carries out `step` at `t` since the start.
    pub async fn apply(
        &mut self,
        step: &Step,
        t: Duration,
        backend: &mut Backend,
        launcher: &mut Launcher,
        clients: &FaultHandle,
    ) -> Result<()> {
        if self.done_at_start(step) {
            return Ok(());
        }
        let fault = self.faults[step.fault].clone();
        match step.kind {
            StepKind::Start => self.start(step.fault, &fault, t, backend, launcher).await?,
            StepKind::End => {
                if self.spans[step.fault]
                    .as_ref()
                    .is_none_or(|s| s.end_s.is_some())
                {
                    return Ok(());
                }
                self.end(step.fault, t, backend).await?;
            }
        }
        let rules = rules_for(
            &self.network.values().cloned().collect::<Vec<_>>(),
            self.replicas,
            self.clients,
        );
        if rules != self.rules {
            self.rules = rules;
            clients.replace(self.rules.clone());
            launcher.install(&self.rules)?;
        }
        Ok(())
    }

    async fn resolve(&mut self, target: &Target, launcher: &mut Launcher) -> Result<Vec<u32>> {
        let needs_primary = matches!(target, Target::Primary | Target::Backups);
        let primary = if needs_primary {
            launcher.primary(STATUS_WAIT).await?.unwrap_or(0)
        } else {
            0
        };
        let view = KnownPrimary {
            replicas: self.replicas as usize,
            primary,
        };
        Ok(target.resolve(&view as &dyn ClusterView, &mut self.rng))
    }

    async fn start(
        &mut self,
        index: usize,
        fault: &Fault,
        t: Duration,
        backend: &mut Backend,
        launcher: &mut Launcher,
    ) -> Result<()> {
        let hit = match &fault.action {
            Action::Heal | Action::Partition { .. } => Vec::new(),
            _ => self.resolve(&fault.target, launcher).await?,
        };
        let mut label = fault.label();
        if matches!(
            fault.target,
            Target::Primary | Target::Backups | Target::RandomMinority
        ) && !hit.is_empty()
        {
            let names: Vec<String> = hit.iter().map(|r| format!("r{r}")).collect();
            label = format!("{label} ({})", names.join(","));
        }
        let instant = fault.action.kind().is_instant();
        let mut span = FaultSpan {
            fault: fault.number,
            label: label.clone(),
            start_s: t.as_secs_f64(),
            end_s: instant.then_some(t.as_secs_f64()),
            replicas: hit.clone(),
        };
        match &fault.action {
            Action::Crash => {
                for &r in &hit {
                    backend.kill(r as usize).await?;
                    self.down.insert(r, index);
                }
            }
            Action::Stop => {
                for &r in &hit {
                    backend.stop(r as usize, STOP_GRACE).await?;
                    self.down.insert(r, index);
                }
            }
            Action::Restart => {
                for &r in &hit {
                    if let Some(open) = self.down.remove(&r) {
                        self.close(open, t);
                    }
                    let mode = self.byzantine_mode(r);
                    backend.restart_as(r as usize, mode).await?;
                }
            }
            Action::Pause => {
                for &r in &hit {
                    backend.pause(r as usize).await?;
                    self.paused.insert(r, index);
                }
            }
            Action::Resume => {
                for &r in &hit {
                    backend.resume(r as usize).await?;
                    if let Some(open) = self.paused.remove(&r) {
                        self.close(open, t);
                    }
                }
            }
            Action::Byzantine { mode } => {
                for &r in &hit {
                    self.byzantine.insert(r, index);
                    self.ever_byzantine[r as usize] = true;
                    self.down.remove(&r);
                    backend.restart_as(r as usize, Some(mode.clone())).await?;
                }
            }
            Action::Heal => {
                let healed: Vec<usize> = self
                    .network
                    .keys()
                    .copied()
                    .filter(|i| self.faults[*i].action.kind().ended_by_heal())
                    .collect();
                for i in healed {
                    self.network.remove(&i);
                    self.close(i, t);
                }
                let isolated: Vec<(u32, usize)> =
                    std::mem::take(&mut self.disconnected).into_iter().collect();
                for (r, i) in isolated {
                    backend.reconnect(r as usize).await?;
                    self.close(i, t);
                }
            }
            Action::Partition { groups } => {
                let mut resolved = Vec::new();
                for g in groups {
                    resolved.push(self.resolve(g, launcher).await?);
                }
                span.replicas = resolved.iter().flatten().copied().collect();
                let names: Vec<String> = resolved
                    .iter()
                    .map(|g| {
                        let ids: Vec<String> = g.iter().map(|r| format!("r{r}")).collect();
                        format!("{{{}}}", ids.join(","))
                    })
                    .collect();
                span.label = format!("partition {}", names.join(" | "));
                self.network
                    .insert(index, ActiveNetworkFault::Partition { groups: resolved });
            }
            Action::Isolate if backend.isolates_replicas() => {
                for &r in &hit {
                    backend.isolate(r as usize).await?;
                    self.disconnected.insert(r, index);
                }
            }
            Action::Isolate => {
                self.network
                    .insert(index, ActiveNetworkFault::Isolate { replicas: hit });
            }
            Action::OneWayCut { to } => {
                let to = self.resolve(to, launcher).await?;
                self.network
                    .insert(index, ActiveNetworkFault::OneWayCut { from: hit, to });
            }
            Action::Link {
                to,
                clients,
                fault: link,
            } => {
                let b = self.resolve(to, launcher).await?;
                self.network.insert(
                    index,
                    ActiveNetworkFault::Link {
                        a: hit,
                        b,
                        clients: *clients,
                        fault: *link,
                    },
                );
            }
        }
        self.events.push((t, span.label.clone()));
        self.spans[index] = Some(span);
        Ok(())
    }

    /// The Byzantine mode replica `r` is in now.
    fn byzantine_mode(&self, r: u32) -> Option<String> {
        self.byzantine
            .get(&r)
            .and_then(|i| match &self.faults[*i].action {
                Action::Byzantine { mode } => Some(mode.clone()),
                _ => None,
            })
    }

    /// Fault `index` reached its `until`: undo what it did.
    async fn end(&mut self, index: usize, t: Duration, backend: &mut Backend) -> Result<()> {
        let hit = self.spans[index]
            .as_ref()
            .map(|s| s.replicas.clone())
            .unwrap_or_default();
        match self.faults[index].action.kind() {
            ActionKind::Crash | ActionKind::Stop => {
                for r in hit {
                    if self.down.get(&r) == Some(&index) {
                        self.down.remove(&r);
                        let mode = self.byzantine_mode(r);
                        backend.restart_as(r as usize, mode).await?;
                    }
                }
            }
            ActionKind::Pause => {
                for r in hit {
                    if self.paused.get(&r) == Some(&index) {
                        self.paused.remove(&r);
                        backend.resume(r as usize).await?;
                    }
                }
            }
            ActionKind::Byzantine => {
                for r in hit {
                    if self.byzantine.get(&r) == Some(&index) {
                        self.byzantine.remove(&r);
                        if !self.down.contains_key(&r) {
                            backend.restart_as(r as usize, None).await?;
                        }
                    }
                }
            }
            ActionKind::Isolate if backend.isolates_replicas() => {
                for r in hit {
                    if self.disconnected.get(&r) == Some(&index) {
                        self.disconnected.remove(&r);
                        backend.reconnect(r as usize).await?;
                    }
                }
            }
            _ => {
                self.network.remove(&index);
            }
        }
        self.close(index, t);
        Ok(())
    }

    /// Marks fault `index` ended at `t` and records the event.
    fn close(&mut self, index: usize, t: Duration) {
        if let Some(span) = self.spans[index].as_mut()
            && span.end_s.is_none()
        {
            span.end_s = Some(t.as_secs_f64());
            self.events.push((t, format!("end {}", span.label)));
        }
    }
}
