//! The fault vocabulary: what a `[[fault]]` does. A scenario's faults carry over to
//! the simulator's scheduled plans (`tandem_consensus::sim::schedule`, translated in
//! `scenario_sim`) and to the rules of the network fault layer
//! (`tandem_network::fault_injection`, translated in `runner::link_rules`) under the
//! same words (`network_words_match` below checks that they stay the same). Link
//! faults are not redefined here: [`LinkFault`] is the simulator's enum, re-exported,
//! which the parser fills, the simulator applies and the runner translates.
//!
//! | action | parameters | lasts | real cluster | simulator |
//! |---|---|---|---|---|
//! | `crash` | — | until `restart` or its end (then restarted) | SIGKILL | `StepAction::Crash` |
//! | `restart` | — | instant | start again (empty state without `wal`) | `StepAction::Restart` |
//! | `pause` | — | until `resume` or its end | SIGSTOP | `StepAction::Pause` |
//! | `resume` | — | instant | SIGCONT | `StepAction::Resume` |
//! | `stop` | — | until `restart` or its end (then restarted) | SIGTERM (graceful) | `StepAction::Crash` |
//! | `byzantine` | `mode` | until its end (then honest) | restart in the mode | `StepAction::Byzantine` |
//! | `partition` | `groups` | until `heal` or its end | one-way cuts between groups | `StepAction::Partition` |
//! | `isolate` | — | until `heal` or its end | one-way cuts, clients included | `StepAction::Isolate` |
//! | `one-way-cut` | `to` | until `heal` or its end | `FaultRules::one_way_cuts` | `StepAction::OneWayCut` |
//! | `heal` | — | instant | partitions, isolations, cuts, flaps removed | `StepAction::Heal` |
//! | `delay` | `delay_ms`, `jitter_ms` | until its end | `LinkFaults::delay` | `LinkFault::Delay` |
//! | `loss` | `probability` | until its end | `LinkFaults::loss` | `LinkFault::Loss` |
//! | `duplicate` | `probability` | until its end | `LinkFaults::duplicate` | `LinkFault::Duplicate` |
//! | `reorder` | `probability` | until its end | `LinkFaults::reorder` | `LinkFault::Reorder` |
//! | `delay-ramp` | `from_ms`, `to_ms`, `jitter_ms` | its duration (required) | `Delay::Ramp` | `LinkFault::DelayRamp` |
//! | `flap` | `period_ms`, `down_ms` | until `heal` or its end | `LinkFaults::flap` | `LinkFault::Flap` |
//!
//! Link actions (`delay` … `flap`) apply to the links between `target` (default all
//! replicas) and `to` (default all replicas), both directions, and with
//! `clients = true` also to the links between those replicas and the load clients.

use std::fmt;

pub use tandem_consensus::sim::schedule::LinkFault;

use crate::scenario::target::Target;

/// What a fault does, with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Kill the process (SIGKILL).
    Crash,
    /// Start a crashed or stopped replica again.
    Restart,
    /// Freeze the process (SIGSTOP).
    Pause,
    /// Let a paused process run again (SIGCONT).
    Resume,
    /// Ask the process to stop (SIGTERM): it closes its connections and exits.
    Stop,
    /// Misbehave in one of the protocol's Byzantine modes.
    Byzantine {
        /// The mode's name, as the protocol names it.
        mode: String,
    },
    /// Split the replicas into groups that cannot reach each other; replicas in no
    /// group form one more group. Clients reach every replica.
    Partition {
        /// The groups.
        groups: Vec<Target>,
    },
    /// Cut the target off from every other node, clients included.
    Isolate,
    /// The target's frames to `to` are lost; the reverse direction works.
    OneWayCut {
        /// The receivers cut off.
        to: Target,
    },
    /// End every partition, isolation, one-way cut and flapping link.
    Heal,
    /// A fault on links: the simulator's [`LinkFault`] itself, the one definition of
    /// the link-fault words (a `delay-ramp`'s `over` is the fault's duration).
    Link {
        /// The other end of the links (the target is one end).
        to: Target,
        /// Also the links between the target replicas and the load clients.
        clients: bool,
        /// What happens on the links.
        fault: LinkFault,
    },
}

/// The action names, without parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionKind {
    /// `crash`
    Crash,
    /// `restart`
    Restart,
    /// `pause`
    Pause,
    /// `resume`
    Resume,
    /// `stop`
    Stop,
    /// `byzantine`
    Byzantine,
    /// `partition`
    Partition,
    /// `isolate`
    Isolate,
    /// `one-way-cut`
    OneWayCut,
    /// `heal`
    Heal,
    /// `delay`
    Delay,
    /// `loss`
    Loss,
    /// `duplicate`
    Duplicate,
    /// `reorder`
    Reorder,
    /// `delay-ramp`
    DelayRamp,
    /// `flap`
    Flap,
}

impl ActionKind {
    /// Every action, in the order documentation lists them.
    pub const ALL: [ActionKind; 16] = [
        ActionKind::Crash,
        ActionKind::Restart,
        ActionKind::Pause,
        ActionKind::Resume,
        ActionKind::Stop,
        ActionKind::Byzantine,
        ActionKind::Partition,
        ActionKind::Isolate,
        ActionKind::OneWayCut,
        ActionKind::Heal,
        ActionKind::Delay,
        ActionKind::Loss,
        ActionKind::Duplicate,
        ActionKind::Reorder,
        ActionKind::DelayRamp,
        ActionKind::Flap,
    ];

    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Crash => "crash",
            ActionKind::Restart => "restart",
            ActionKind::Pause => "pause",
            ActionKind::Resume => "resume",
            ActionKind::Stop => "stop",
            ActionKind::Byzantine => "byzantine",
            ActionKind::Partition => "partition",
            ActionKind::Isolate => "isolate",
            ActionKind::OneWayCut => "one-way-cut",
            ActionKind::Heal => "heal",
            ActionKind::Delay => "delay",
            ActionKind::Loss => "loss",
            ActionKind::Duplicate => "duplicate",
            ActionKind::Reorder => "reorder",
            ActionKind::DelayRamp => "delay-ramp",
            ActionKind::Flap => "flap",
        }
    }

    /// The action called `name`.
    pub fn from_name(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every name, comma-separated, for error messages.
    pub fn names() -> String {
        ActionKind::ALL.map(ActionKind::name).join(", ")
    }

    /// Whether the action happens at one instant (it cannot have an end).
    pub fn is_instant(self) -> bool {
        matches!(
            self,
            ActionKind::Restart | ActionKind::Resume | ActionKind::Heal
        )
    }

    /// Whether the action needs an end (`until` or `duration`).
    pub fn needs_end(self) -> bool {
        matches!(self, ActionKind::DelayRamp)
    }

    /// Whether the action acts on the network (links) rather than on processes.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            ActionKind::Partition
                | ActionKind::Isolate
                | ActionKind::OneWayCut
                | ActionKind::Heal
                | ActionKind::Delay
                | ActionKind::Loss
                | ActionKind::Duplicate
                | ActionKind::Reorder
                | ActionKind::DelayRamp
                | ActionKind::Flap
        )
    }

    /// Whether `heal` ends it.
    pub fn ended_by_heal(self) -> bool {
        matches!(
            self,
            ActionKind::Partition | ActionKind::Isolate | ActionKind::OneWayCut | ActionKind::Flap
        )
    }
}

impl Action {
    /// The action's name.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Crash => ActionKind::Crash,
            Action::Restart => ActionKind::Restart,
            Action::Pause => ActionKind::Pause,
            Action::Resume => ActionKind::Resume,
            Action::Stop => ActionKind::Stop,
            Action::Byzantine { .. } => ActionKind::Byzantine,
            Action::Partition { .. } => ActionKind::Partition,
            Action::Isolate => ActionKind::Isolate,
            Action::OneWayCut { .. } => ActionKind::OneWayCut,
            Action::Heal => ActionKind::Heal,
            Action::Link { fault, .. } => match fault {
                LinkFault::Delay { .. } => ActionKind::Delay,
                LinkFault::Loss(_) => ActionKind::Loss,
                LinkFault::Duplicate(_) => ActionKind::Duplicate,
                LinkFault::Reorder(_) => ActionKind::Reorder,
                LinkFault::DelayRamp { .. } => ActionKind::DelayRamp,
                LinkFault::Flap { .. } => ActionKind::Flap,
            },
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn names_roundtrip() {
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ActionKind::from_name("kill"), None);
        assert!(ActionKind::names().starts_with("crash, restart, pause"));
    }

    /// One vocabulary: the network layer's rule fields are the link actions' names
    /// (snake_case there, kebab-case here) and `heal`/`partition`/`isolate`/
    /// `one-way-cut` are its methods; the simulator's fault events carry the process
    /// and partition words. Renaming one side without the other fails here.
    #[test]
    fn network_words_match() {
        let link = serde_json::to_value(tandem_network::LinkFaults::default()).unwrap();
        for kind in [
            ActionKind::Loss,
            ActionKind::Duplicate,
            ActionKind::Reorder,
            ActionKind::Delay,
            ActionKind::Flap,
        ] {
            assert!(
                link.get(kind.name()).is_some(),
                "LinkFaults has no `{kind}`"
            );
        }
        let rules = serde_json::to_value(tandem_network::FaultRules::default()).unwrap();
        for field in ["partition", "isolated", "one_way_cuts"] {
            assert!(rules.get(field).is_some(), "FaultRules has no `{field}`");
        }
        let handle = tandem_network::FaultHandle::new();
        let r = tandem_network::NodeId::Replica;
        handle.partition([vec![r(0)], vec![r(1)]]);
        handle.isolate(r(2));
        handle.one_way_cut(r(0), r(3));
        handle.heal();
        assert!(handle.rules().is_empty());
        let ramp = serde_json::to_value(tandem_network::Delay::Ramp {
            from: Duration::ZERO,
            to: Duration::ZERO,
            over: Duration::ZERO,
            jitter: Duration::ZERO,
        })
        .unwrap();
        assert!(ramp.get("Ramp").is_some(), "delay-ramp is Delay::Ramp");
        let sim = format!(
            "{:?} {:?} {:?} {:?}",
            tandem_consensus::sim::faults::FaultEvent::Crash(0),
            tandem_consensus::sim::faults::FaultEvent::Restart(0),
            tandem_consensus::sim::faults::FaultEvent::Partition(vec![]),
            tandem_consensus::sim::faults::FaultEvent::Heal,
        )
        .to_lowercase();
        for kind in [
            ActionKind::Crash,
            ActionKind::Restart,
            ActionKind::Partition,
            ActionKind::Heal,
        ] {
            assert!(sim.contains(kind.name()), "the simulator has no `{kind}`");
        }
        let sim_link = format!(
            "{:?}",
            tandem_consensus::sim::network::LinkFaults::default()
        );
        for word in ["loss", "duplicate"] {
            assert!(
                sim_link.contains(word),
                "the simulator's links have no `{word}`"
            );
        }
    }
}
