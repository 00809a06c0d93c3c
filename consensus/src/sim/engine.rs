//! The discrete-event engine, generic over any [`Protocol`]: a virtual clock, one
//! queue of scheduled events ordered by (time, insertion), replicas that crash and
//! restart, applications that execute deliveries, clients, and the network model.
//!
//! With a [`DiskModel`], each replica has a [`Disk`]: `Persist` records are written and
//! fsynced in groups, messages sent after a record are held back until an fsync covers
//! it, a crash keeps what was fsynced (minus what a [`StorageFault`] destroys), and a
//! restart replays the disk through `Protocol::recover`. Every message a correct
//! replica sends passes the [`VoteLedger`]: it never contradicts a vote it cast before,
//! in this incarnation or an earlier one.
//!
//! Everything random comes from one seeded ChaCha RNG and every collection is ordered,
//! so a seed replays the same run event for event.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::application::Application;
use crate::client::{ClientAction, ClientCore, Destination};
use crate::client_auth::request_digest;
use crate::protocol::{Action, CommonCounters, Delivery, Event, Executed, Protocol};
use crate::request::{Reply, Request};
use crate::sim::checker::{Checker, Violation};
use crate::sim::disk::{Disk, DiskModel, Recovered, StorageFault};
use crate::sim::faults::FaultEvent;
use crate::sim::network::{Endpoint, LinkFaults, NetworkModel};
use crate::sim::schedule::{NetRule, NetRuleKind, ScheduledStep, SimTarget, StepAction};
use crate::sim::votes::VoteLedger;
use crate::state_chunks::{
    DEFAULT_STATE_CHUNK_BYTES, RestoreOutcome, chunk_list_of, restore_from_chunk_list,
};
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time};

/// Something scheduled to happen.
enum Scheduled<M, T> {
    ToReplica {
        to: usize,
        from: usize,
        msg: M,
    },
    RequestToReplica {
        to: usize,
        request: Request,
    },
    MarksQueryToReplica {
        to: usize,
        client: ClientId,
    },
    ReplyToClient {
        client: usize,
        reply: Reply,
    },
    Timer {
        replica: usize,
        incarnation: u32,
        timer: T,
        generation: u64,
    },
    Executed {
        replica: usize,
        incarnation: u32,
        executed: Executed,
    },
    Snapshot {
        replica: usize,
        incarnation: u32,
        seq: Seq,
        snapshot: Bytes,
    },
    Restored {
        replica: usize,
        incarnation: u32,
        outcome: RestoreOutcome,
    },
    ClientWake {
        client: usize,
    },
    Fsync {
        replica: usize,
        incarnation: u32,
    },
    Fault(FaultEvent),
}

impl<M, T> Scheduled<M, T> {
    /// The replica the event is for, if it is for one (held while it is paused).
    fn replica(&self) -> Option<usize> {
        match self {
            Scheduled::ToReplica { to, .. }
            | Scheduled::RequestToReplica { to, .. }
            | Scheduled::MarksQueryToReplica { to, .. } => Some(*to),
            Scheduled::Timer { replica, .. }
            | Scheduled::Executed { replica, .. }
            | Scheduled::Snapshot { replica, .. }
            | Scheduled::Restored { replica, .. }
            | Scheduled::Fsync { replica, .. } => Some(*replica),
            Scheduled::ReplyToClient { .. }
            | Scheduled::ClientWake { .. }
            | Scheduled::Fault(_) => None,
        }
    }

    fn tag(&self) -> (u8, u64) {
        match self {
            Scheduled::ToReplica { to, from, .. } => (1, (*to as u64) << 16 | *from as u64),
            Scheduled::RequestToReplica { to, request } => (2, (*to as u64) << 32 ^ request.number),
            Scheduled::ReplyToClient { client, .. } => (3, *client as u64),
            Scheduled::Timer { replica, .. } => (4, *replica as u64),
            Scheduled::Executed {
                replica, executed, ..
            } => (5, (*replica as u64) << 32 ^ executed.seq.0),
            Scheduled::Restored { replica, .. } => (6, *replica as u64),
            Scheduled::Snapshot { replica, seq, .. } => (9, (*replica as u64) << 32 ^ seq.0),
            Scheduled::ClientWake { client } => (7, *client as u64),
            Scheduled::Fault(_) => (8, 0),
            Scheduled::Fsync { replica, .. } => (10, *replica as u64),
            Scheduled::MarksQueryToReplica { to, client } => {
                (11, (*to as u64) << 32 ^ u64::from(client.0))
            }
        }
    }
}

/// A message held back until an fsync covers the records before it.
type Held<P> = (
    u64,
    Action<<P as Protocol>::Message, <P as Protocol>::Timer, <P as Protocol>::Record>,
);

/// A replica slot: the protocol instance (none while crashed), its application, and
/// its disk.
struct Node<P: Protocol> {
    proto: Option<P>,
    app: Box<dyn Application>,
    incarnation: u32,
    exec_free_at: Time,
    correct: bool,
    disk: Disk<P::Record>,
    /// Messages waiting for an fsync: (records they depend on, the send).
    held: VecDeque<Held<P>>,
}

/// A simulated client with a plan of submission times and a window of outstanding
/// requests.
pub struct SimClient {
    core: ClientCore,
    plan: VecDeque<Time>,
    due: usize,
    window: usize,
    next_wake: Option<Time>,
    /// Requests earlier runs of the client submitted and did not forget, and those
    /// they completed ([`FaultEvent::ClientRestart`]).
    earlier_submitted: u64,
    earlier_completed: u64,
    /// Whether a restarted run asks for its marks before numbering (as `tandem
    /// client` does); off only to show what happens without the query (tests).
    asks_marks: bool,
    /// Whether it submits only within its congestion window (always, but in a test
    /// that shows the `overload` mix's refusal rule catches clients that do not).
    respects_congestion_window: bool,
}

impl SimClient {
    /// A client that submits one request at each of `plan`'s times (later if its window
    /// is full).
    pub fn new(core: ClientCore, plan: Vec<Time>, window: usize) -> SimClient {
        SimClient {
            core,
            plan: plan.into(),
            due: 0,
            window: window.max(1),
            next_wake: None,
            earlier_submitted: 0,
            earlier_completed: 0,
            asks_marks: true,
            respects_congestion_window: true,
        }
    }

    /// This client without the marks query at a restart (tests: the liveness gap the
    /// query closes).
    #[cfg(test)]
    pub(crate) fn without_marks_query(mut self) -> SimClient {
        self.asks_marks = false;
        self
    }

    /// Test-only: submit past the congestion window (a client that keeps offering:
    /// simulated clients never hold new requests during a back-off).
    #[cfg(test)]
    pub fn ignore_congestion_window(mut self) -> SimClient {
        self.respects_congestion_window = false;
        self
    }

    fn finished(&self) -> bool {
        self.plan.is_empty() && self.due == 0 && self.core.outstanding() == 0
    }

    /// Requests completed, over all its runs.
    fn completed(&self) -> u64 {
        self.earlier_completed + self.core.counters().completed
    }

    /// Requests planned: submitted and kept, and still to submit.
    fn planned(&self) -> u64 {
        self.earlier_submitted
            + self.core.counters().submitted
            + self.plan.len() as u64
            + self.due as u64
    }

    /// Starts the client again with `core` (a fresh run under the same key): the
    /// requests the old run still had outstanding are forgotten and due again as new
    /// ones.
    fn restart(&mut self, core: ClientCore) {
        let old = std::mem::replace(&mut self.core, core);
        let forgotten = old.outstanding() as u64;
        self.earlier_submitted += old.counters().submitted - forgotten;
        self.earlier_completed += old.counters().completed;
        self.due += forgotten as usize;
    }
}

/// A replica's final status and its protocol's own counters.
pub type FinalState = (crate::protocol::ReplicaStatus, Vec<(&'static str, u64)>);

/// How a run ended.
pub struct Outcome {
    /// What the checker found.
    pub violations: Vec<Violation>,
    /// Requests completed by clients.
    pub completed: u64,
    /// Requests planned.
    pub planned: u64,
    /// Virtual time at the end.
    pub end: Time,
    /// Events processed.
    pub events: u64,
    /// Restarts from disk that restored a compaction point's snapshot.
    pub restarts_from_snapshot: u64,
    /// Digest over the processed event sequence and final states.
    pub trace_hash: Digest,
    /// The trace as text, when recording was asked for.
    pub trace: Vec<String>,
    /// Per replica: its final status and counters (None if crashed at the end).
    pub replicas: Vec<Option<FinalState>>,
    /// Per replica: its common counters at the end (None if crashed at the end).
    pub common: Vec<Option<CommonCounters>>,
    /// Highest sequence number delivered by a correct replica.
    pub highest_delivered: Seq,
    /// Busy refusals the clients received from their requests' routes.
    pub client_busy_refusals: u64,
    /// Requests the clients sent again after a busy refusal's back-off.
    pub client_busy_retries: u64,
    /// Requests the clients numbered again, their numbers witnessed spent (in their
    /// current runs).
    pub client_renumbered: u64,
    /// Per replica: whether it still counted as correct at the end (a scheduled
    /// `byzantine` step makes it faulty).
    pub correct_at_end: Vec<bool>,
}

/// Engine parameters beyond the protocol.
pub struct EngineSetup<P: Protocol> {
    /// Builds replica `i` (at start and at every restart, with an empty state).
    pub factory: Box<dyn FnMut(ReplicaId) -> P>,
    /// Builds an application in its genesis state.
    pub app_factory: Box<dyn FnMut() -> Box<dyn Application>>,
    /// Which replicas count as correct for the checks.
    pub correct: Vec<bool>,
    /// The clients.
    pub clients: Vec<SimClient>,
    /// The network.
    pub net: NetworkModel,
    /// Timed faults.
    pub faults: Vec<(Time, FaultEvent)>,
    /// How long executing one batch takes.
    pub exec_delay: Duration,
    /// How long executing one request of a batch takes, beyond `exec_delay` (zero
    /// but in the `overload` mix, whose clients offer more than execution carries).
    pub exec_per_request: Duration,
    /// The seeded RNG.
    pub rng: ChaCha8Rng,
    /// Record a textual trace.
    pub record_trace: bool,
    /// The disks (none: replicas restart empty).
    pub disk: Option<DiskModel>,
    /// Storage faults at crashes, by (crash time, replica).
    pub storage_faults: BTreeMap<(Time, usize), StorageFault>,
}

/// The engine.
pub struct Engine<P: Protocol> {
    now: Time,
    queue: BTreeMap<(Time, u64), Scheduled<P::Message, P::Timer>>,
    next_id: u64,
    nodes: Vec<Node<P>>,
    clients: Vec<SimClient>,
    net: NetworkModel,
    rng: ChaCha8Rng,
    checker: Checker,
    factory: Box<dyn FnMut(ReplicaId) -> P>,
    app_factory: Box<dyn FnMut() -> Box<dyn Application>>,
    timers: BTreeMap<(usize, P::Timer), u64>,
    exec_delay: Duration,
    exec_per_request: Duration,
    events: u64,
    restarts_from_snapshot: u64,
    trace_ctx: ring::digest::Context,
    trace: Option<Vec<String>>,
    disk: Option<DiskModel>,
    storage_faults: BTreeMap<(Time, usize), StorageFault>,
    votes: VoteLedger,
    /// Scheduled plans: events held for paused replicas, in arrival order.
    paused: BTreeMap<usize, PausedEvents<P>>,
    /// Scheduled plans: builds a replica in a Byzantine mode (or honest).
    mode_factory: Option<ModeFactory<P>>,
    /// Scheduled plans: the replicas each fault's start hit.
    hit: BTreeMap<usize, Vec<usize>>,
}

/// Events held for a paused replica.
type PausedEvents<P> = Vec<Scheduled<<P as Protocol>::Message, <P as Protocol>::Timer>>;

/// Builds replica `id` in a Byzantine mode of its protocol, or honest with `None`.
pub type ModeFactory<P> = Box<dyn FnMut(ReplicaId, Option<&'static str>) -> P>;

impl<P: Protocol> Engine<P> {
    /// Builds the cluster.
    pub fn new(mut setup: EngineSetup<P>) -> Engine<P> {
        let nodes = setup
            .correct
            .iter()
            .enumerate()
            .map(|(i, correct)| Node {
                proto: Some((setup.factory)(ReplicaId(i as u32))),
                app: (setup.app_factory)(),
                incarnation: 0,
                exec_free_at: Time::ZERO,
                correct: *correct,
                disk: Disk::default(),
                held: VecDeque::new(),
            })
            .collect();
        let mut engine = Engine {
            now: Time::ZERO,
            queue: BTreeMap::new(),
            next_id: 0,
            nodes,
            clients: setup.clients,
            net: setup.net,
            rng: setup.rng,
            checker: Checker::default(),
            factory: setup.factory,
            app_factory: setup.app_factory,
            timers: BTreeMap::new(),
            exec_delay: setup.exec_delay,
            exec_per_request: setup.exec_per_request,
            events: 0,
            restarts_from_snapshot: 0,
            trace_ctx: ring::digest::Context::new(&ring::digest::SHA256),
            trace: setup.record_trace.then(Vec::new),
            disk: setup.disk,
            storage_faults: setup.storage_faults,
            votes: VoteLedger::default(),
            paused: BTreeMap::new(),
            mode_factory: None,
            hit: BTreeMap::new(),
        };
        for (at, fault) in setup.faults {
            engine.schedule(at, Scheduled::Fault(fault));
        }
        for c in 0..engine.clients.len() {
            engine.schedule(Time::ZERO, Scheduled::ClientWake { client: c });
        }
        for r in 0..engine.nodes.len() {
            engine.start_replica(r);
        }
        engine
    }

    fn schedule(&mut self, at: Time, ev: Scheduled<P::Message, P::Timer>) {
        let at = at.max(self.now);
        self.queue.insert((at, self.next_id), ev);
        self.next_id += 1;
    }

    fn start_replica(&mut self, r: usize) {
        let mut out = Vec::new();
        if let Some(p) = self.nodes[r].proto.as_mut() {
            p.start(self.now, &mut out);
        }
        self.apply(r, out);
    }

    /// Runs until every client finished and `settle` more time passed after
    /// `heal_at`, or until `deadline`.
    pub fn run(mut self, heal_at: Time, deadline: Time, settle: Duration) -> Outcome {
        let mut finish_at: Option<Time> = None;
        while let Some(((t, _), ev)) = self.queue.pop_first() {
            if t > deadline || finish_at.is_some_and(|f| t > f) {
                break;
            }
            self.now = t;
            self.events += 1;
            self.trace_event(&ev);
            self.process(ev);
            if finish_at.is_none() && t >= heal_at && self.clients.iter().all(SimClient::finished) {
                finish_at = Some(t + settle);
            }
        }
        let planned: u64 = self.clients.iter().map(SimClient::planned).sum();
        let completed: u64 = self.clients.iter().map(SimClient::completed).sum();
        if finish_at.is_none() {
            self.checker.report(Violation::Liveness(format!(
                "{} of {planned} requests completed by {deadline} (faults healed at {heal_at})",
                completed
            )));
            let per_client: Vec<(ClientId, u64, u64)> = self
                .clients
                .iter()
                .enumerate()
                .map(|(c, client)| (ClientId(c as u32), client.completed(), client.planned()))
                .collect();
            self.checker.client_liveness(&per_client);
        }
        self.check_counters();
        self.finish(planned, completed)
    }

    /// Reports every correct replica that saw two digests commit at one position.
    fn check_counters(&mut self) {
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(p) = &node.proto else { continue };
            if !node.correct {
                continue;
            }
            let conflicts = p.common_counters().conflicting_commits;
            if conflicts > 0 {
                self.checker.report(Violation::Safety(format!(
                    "r{i} saw {conflicts} conflicting commits"
                )));
            }
        }
    }

    fn finish(mut self, planned: u64, completed: u64) -> Outcome {
        let replicas: Vec<_> = self
            .nodes
            .iter()
            .map(|n| n.proto.as_ref().map(|p| (p.status(), p.counters())))
            .collect();
        let common = self
            .nodes
            .iter()
            .map(|n| n.proto.as_ref().map(P::common_counters))
            .collect();
        for r in replicas.iter().flatten() {
            self.trace_ctx.update(format!("{:?}", r).as_bytes());
        }
        self.trace_ctx.update(&self.checker.delivered_digest().0);
        Outcome {
            violations: self.checker.violations().to_vec(),
            completed,
            planned,
            end: self.now,
            events: self.events,
            restarts_from_snapshot: self.restarts_from_snapshot,
            trace_hash: Digest::from_ring(self.trace_ctx.finish()),
            trace: self.trace.unwrap_or_default(),
            replicas,
            common,
            highest_delivered: self.checker.highest_delivered(),
            client_busy_refusals: self
                .clients
                .iter()
                .map(|c| c.core.counters().busy_refusals)
                .sum(),
            client_busy_retries: self
                .clients
                .iter()
                .map(|c| c.core.counters().busy_retries)
                .sum(),
            client_renumbered: self
                .clients
                .iter()
                .map(|c| c.core.counters().renumbered)
                .sum(),
            correct_at_end: self.nodes.iter().map(|n| n.correct).collect(),
        }
    }

    fn trace_event(&mut self, ev: &Scheduled<P::Message, P::Timer>) {
        let (tag, detail) = ev.tag();
        self.trace_ctx.update(&self.now.0.to_le_bytes());
        self.trace_ctx.update(&[tag]);
        self.trace_ctx.update(&detail.to_le_bytes());
        if let Some(lines) = &mut self.trace {
            let line = match ev {
                Scheduled::ToReplica { to, from, msg } => {
                    format!("{} r{from} -> r{to}: {msg:?}", self.now)
                }
                Scheduled::RequestToReplica { to, request } => {
                    format!(
                        "{} {} -> r{to}: request {}",
                        self.now, request.client, request.number
                    )
                }
                Scheduled::MarksQueryToReplica { to, client } => {
                    format!("{} {client} -> r{to}: marks query", self.now)
                }
                Scheduled::ReplyToClient { client, reply } => {
                    format!(
                        "{} {} -> c{client}: reply {:?}",
                        self.now,
                        reply.replica,
                        reply.results.iter().map(|r| r.number).collect::<Vec<_>>()
                    )
                }
                Scheduled::Timer { replica, timer, .. } => {
                    format!("{} r{replica}: timer {timer:?}", self.now)
                }
                Scheduled::Executed {
                    replica, executed, ..
                } => {
                    format!("{} r{replica}: executed {}", self.now, executed.seq)
                }
                Scheduled::Restored {
                    replica, outcome, ..
                } => {
                    format!("{} r{replica}: restored {outcome:?}", self.now)
                }
                Scheduled::Snapshot { replica, seq, .. } => {
                    format!("{} r{replica}: snapshot {seq}", self.now)
                }
                Scheduled::ClientWake { client } => format!("{} c{client}: wake", self.now),
                Scheduled::Fsync { replica, .. } => format!("{} r{replica}: fsync", self.now),
                Scheduled::Fault(f) => format!("{} fault: {f:?}", self.now),
            };
            lines.push(line);
        }
    }

    fn process(&mut self, ev: Scheduled<P::Message, P::Timer>) {
        if let Some(r) = ev.replica()
            && let Some(held) = self.paused.get_mut(&r)
        {
            held.push(ev);
            return;
        }
        match ev {
            Scheduled::ToReplica { to, from, msg } => {
                let event = Event::Message {
                    from: ReplicaId(from as u32),
                    msg,
                };
                self.feed(to, event);
            }
            Scheduled::RequestToReplica { to, request } => {
                self.feed(to, Event::ClientRequest(request))
            }
            Scheduled::MarksQueryToReplica { to, client } => {
                self.feed(to, Event::MarksQuery(client))
            }
            Scheduled::ReplyToClient { client, reply } => self.on_reply(client, reply),
            Scheduled::Timer {
                replica,
                incarnation,
                timer,
                generation,
            } => {
                let current = self.timers.get(&(replica, timer)) == Some(&generation);
                if current && self.nodes[replica].incarnation == incarnation {
                    self.timers.remove(&(replica, timer));
                    self.feed(replica, Event::Timer(timer));
                }
            }
            Scheduled::Executed {
                replica,
                incarnation,
                executed,
            } => {
                if self.nodes[replica].incarnation == incarnation {
                    self.feed(replica, Event::Executed(executed));
                }
            }
            Scheduled::Restored {
                replica,
                incarnation,
                outcome,
            } => {
                if self.nodes[replica].incarnation == incarnation {
                    self.feed(replica, Event::Restored(outcome));
                }
            }
            Scheduled::Snapshot {
                replica,
                incarnation,
                seq,
                snapshot,
            } => {
                if self.nodes[replica].incarnation == incarnation {
                    self.feed(replica, Event::Snapshot { seq, snapshot });
                }
            }
            Scheduled::ClientWake { client } => self.wake_client(client),
            Scheduled::Fault(f) => self.apply_fault(f),
            Scheduled::Fsync {
                replica,
                incarnation,
            } => {
                if self.nodes[replica].incarnation == incarnation {
                    self.fsync_done(replica);
                }
            }
        }
    }

    /// Replica `r`'s fsync completed: release what it covered, start the next one if
    /// records wait, and compact an idle log.
    fn fsync_done(&mut self, r: usize) {
        let more = self.nodes[r].disk.fsync_done();
        if more {
            self.start_fsync(r);
        }
        let synced = self.nodes[r].disk.synced();
        while self.nodes[r]
            .held
            .front()
            .is_some_and(|(needs, _)| *needs <= synced)
        {
            let (_, action) = self.nodes[r].held.pop_front().expect("front exists");
            self.emit(r, action);
        }
        let node = &mut self.nodes[r];
        if node.disk.wants_compaction()
            && let Some(cp) = node.proto.as_ref().and_then(P::durable_checkpoint)
        {
            node.disk.compact(cp);
        }
    }

    fn start_fsync(&mut self, r: usize) {
        let Some(model) = self.disk else { return };
        self.nodes[r].disk.start_fsync();
        let incarnation = self.nodes[r].incarnation;
        self.schedule(
            self.now + model.fsync_delay,
            Scheduled::Fsync {
                replica: r,
                incarnation,
            },
        );
    }

    fn feed(&mut self, r: usize, event: Event<P::Message, P::Timer>) {
        let Some(p) = self.nodes[r].proto.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        p.handle(self.now, event, &mut out);
        self.apply(r, out);
    }

    fn apply(&mut self, r: usize, actions: Vec<Action<P::Message, P::Timer, P::Record>>) {
        for action in actions {
            match action {
                Action::Send { .. } | Action::Broadcast { .. } | Action::Reply { .. } => {
                    let node = &mut self.nodes[r];
                    let written = node.disk.written();
                    if written > node.disk.synced() {
                        node.held.push_back((written, action));
                    } else {
                        self.emit(r, action);
                    }
                }
                Action::Persist(record) => {
                    if self.disk.is_some() && self.nodes[r].disk.write(record) {
                        self.start_fsync(r);
                    }
                }
                other => self.act(r, other),
            }
        }
    }

    /// A message leaves replica `r` (after the records it depends on are durable).
    fn emit(&mut self, r: usize, action: Action<P::Message, P::Timer, P::Record>) {
        let n = self.nodes.len();
        if let Action::Send { msg, .. } | Action::Broadcast { msg } = &action
            && self.nodes[r].correct
            && let Some(vote) = P::vote_of(msg)
            && let Some(problem) = self.votes.cast(r, vote)
        {
            self.checker.report(Violation::Safety(problem));
        }
        match action {
            Action::Send { to, msg } => self.route(r, to.index(), msg),
            Action::Broadcast { msg } => {
                for to in (0..n).filter(|to| *to != r) {
                    self.route(r, to, msg.clone());
                }
            }
            other => self.act(r, other),
        }
    }

    /// Carries out an action that is not a replica-to-replica message.
    fn act(&mut self, r: usize, action: Action<P::Message, P::Timer, P::Record>) {
        {
            match action {
                Action::Send { .. } | Action::Broadcast { .. } | Action::Persist(_) => {
                    unreachable!("messages and records are handled by apply and emit")
                }
                Action::Deliver(d) => self.execute(r, d),
                Action::Reply { client, reply } => {
                    let c = client.0 as usize;
                    if c < self.clients.len() {
                        self.transmit(Endpoint::Replica(r), Endpoint::Client(c), || {
                            Scheduled::ReplyToClient {
                                client: c,
                                reply: reply.clone(),
                            }
                        });
                    }
                }
                Action::SetTimer { timer, at } => {
                    let generation = self.next_id;
                    self.timers.insert((r, timer), generation);
                    let incarnation = self.nodes[r].incarnation;
                    self.schedule(
                        at,
                        Scheduled::Timer {
                            replica: r,
                            incarnation,
                            timer,
                            generation,
                        },
                    );
                }
                Action::CancelTimer { timer } => {
                    self.timers.remove(&(r, timer));
                }
                Action::Restore(step) => {
                    let Some(outcome) = step.apply(self.nodes[r].app.as_mut()) else {
                        return;
                    };
                    let at = self.exec_slot(r, 0);
                    let incarnation = self.nodes[r].incarnation;
                    self.schedule(
                        at,
                        Scheduled::Restored {
                            replica: r,
                            incarnation,
                            outcome,
                        },
                    );
                    if let RestoreOutcome::Installed { seq, ok: true } = outcome {
                        // The installed state, reported once the install is, to serve
                        // it in turn.
                        let snapshot = self.snapshot_of(r);
                        self.schedule(
                            at + self.exec_delay,
                            Scheduled::Snapshot {
                                replica: r,
                                incarnation,
                                seq,
                                snapshot,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Rebuilds replica `r` from its disk: the snapshot into a fresh application, the
    /// records through `Protocol::recover`. A refused log, or one the protocol cannot
    /// replay, leaves it empty (it catches up by state transfer); the latter is a
    /// violation unless its disk lied. Returns the snapshot restored, if any.
    fn restart_from_disk(&mut self, r: usize) -> Option<(Seq, Bytes)> {
        let id = ReplicaId(r as u32);
        let mut proto = (self.factory)(id);
        let mut app = (self.app_factory)();
        let recovered = self.nodes[r].disk.recover();
        let mut restored = None;
        let problem = match recovered {
            Recovered::Refused(problem) => Some(problem),
            Recovered::Log(snapshot, records) => {
                let mut problem = None;
                if let Some(s) = snapshot {
                    if restore_from_chunk_list(app.as_mut(), &s.bytes, &s.app_digest) {
                        restored = Some((s.seq, s.bytes));
                    } else {
                        problem = Some(format!("snapshot at {} does not restore", s.seq));
                    }
                }
                for (i, record) in records.into_iter().enumerate() {
                    if problem.is_some() {
                        break;
                    }
                    if let Err(e) = proto.recover(i as u64, record) {
                        problem = Some(e.to_string());
                    }
                }
                if let Some(p) = &problem {
                    self.checker.report(Violation::Safety(format!(
                        "r{r} could not replay its own log: {p}"
                    )));
                }
                problem
            }
        };
        if let Some(problem) = problem {
            if let Some(lines) = &mut self.trace {
                lines.push(format!(
                    "{} r{r}: log refused ({problem}), restarting empty",
                    self.now
                ));
            }
            proto = (self.factory)(id);
            app = (self.app_factory)();
            self.nodes[r].disk.wipe();
            self.votes.forget(r);
            restored = None;
        }
        let node = &mut self.nodes[r];
        node.proto = Some(proto);
        node.app = app;
        restored
    }

    fn route(&mut self, from: usize, to: usize, msg: P::Message) {
        if to >= self.nodes.len() || to == from {
            return;
        }
        if self.nodes[from].correct && !self.nodes[to].correct {
            let mut size = bincode::enc::write::SizeWriter::default();
            let bytes =
                bincode::serde::encode_into_writer(&msg, &mut size, bincode::config::standard())
                    .map_or(u64::MAX, |()| size.bytes_written as u64);
            let now = self.now;
            self.checker
                .sent_to_faulty(ReplicaId(from as u32), ReplicaId(to as u32), bytes, now);
        }
        self.transmit(Endpoint::Replica(from), Endpoint::Replica(to), || {
            Scheduled::ToReplica {
                to,
                from,
                msg: msg.clone(),
            }
        });
    }

    /// The time replica `r`'s executor finishes one more batch (batches run one after
    /// another, in order).
    /// Replica `r`'s application state as a chunk list.
    fn snapshot_of(&self, r: usize) -> Bytes {
        chunk_list_of(
            self.nodes[r].app.freeze().as_ref(),
            DEFAULT_STATE_CHUNK_BYTES,
        )
    }

    /// When replica `r`'s execution finishes a batch of `requests` delivered now
    /// (batches execute one after another).
    fn exec_slot(&mut self, r: usize, requests: usize) -> Time {
        let cost = self.exec_delay
            + self
                .exec_per_request
                .saturating_mul(u32::try_from(requests).unwrap_or(u32::MAX));
        let node = &mut self.nodes[r];
        node.exec_free_at = node.exec_free_at.max(self.now) + cost;
        node.exec_free_at
    }

    fn execute(&mut self, r: usize, d: Delivery) {
        let results = self.nodes[r].app.execute(d.seq, &d.batch);
        // The checker compares every position's digest; the protocol gets it at
        // checkpoints only, as from a node's execution thread.
        let app_digest = self.nodes[r].app.digest();
        if self.nodes[r].correct {
            let incarnation = self.nodes[r].incarnation;
            self.checker.delivery(ReplicaId(r as u32), incarnation, &d);
            self.checker
                .execution(ReplicaId(r as u32), &d, &results, app_digest);
        }
        let snapshot = d.checkpoint.then(|| self.snapshot_of(r));
        let at = self.exec_slot(r, d.batch.len());
        let incarnation = self.nodes[r].incarnation;
        let executed = Executed {
            seq: d.seq,
            app_digest: d.checkpoint.then_some(app_digest),
            results,
        };
        self.schedule(
            at,
            Scheduled::Executed {
                replica: r,
                incarnation,
                executed,
            },
        );
        if let Some(snapshot) = snapshot {
            let seq = d.seq;
            let later = at + self.exec_delay;
            self.schedule(
                later,
                Scheduled::Snapshot {
                    replica: r,
                    incarnation,
                    seq,
                    snapshot,
                },
            );
        }
    }

    fn on_reply(&mut self, c: usize, reply: Reply) {
        let mut done = Vec::new();
        self.clients[c].core.on_reply(self.now, &reply, &mut done);
        let client = ClientId(c as u32);
        for d in &done {
            self.checker.accepted(client, d.number, &d.result, self.now);
        }
        let renumber_due = self.clients[c]
            .core
            .next_deadline()
            .is_some_and(|t| t <= self.now);
        if !done.is_empty() || renumber_due {
            self.wake_client(c);
        }
    }

    fn wake_client(&mut self, c: usize) {
        let now = self.now;
        let mut actions = Vec::new();
        {
            let client = &mut self.clients[c];
            if client.next_wake.is_some_and(|t| t <= now) {
                client.next_wake = None;
            }
            while client.plan.front().is_some_and(|t| *t <= now) {
                client.plan.pop_front();
                client.due += 1;
            }
            while client.due > 0
                && client.core.outstanding() < client.window
                && (client.core.congestion_room() > 0 || !client.respects_congestion_window)
                && client.core.can_submit()
            {
                client.due -= 1;
                let payload: [u8; 16] = self.rng.random();
                let payload = Bytes::copy_from_slice(&payload);
                let id = client.core.id();
                if let Some(number) = client.core.submit(now, payload.clone(), &mut actions) {
                    let digest = request_digest(id, number, &payload);
                    self.checker.submitted(id, number, digest);
                }
            }
            client.core.on_tick(now, &mut actions);
        }
        let id = ClientId(c as u32);
        for action in &actions {
            // Requests numbered again are submissions too (the same payload under a
            // new number).
            if let ClientAction::Send { request, .. } | ClientAction::Broadcast { request } = action
            {
                self.checker.submitted(id, request.number, request.digest());
            }
        }
        for action in actions {
            match action {
                ClientAction::Send { to, request } => self.send_request(c, to.index(), request),
                ClientAction::Broadcast { request } => {
                    for to in 0..self.nodes.len() {
                        self.send_request(c, to, request.clone());
                    }
                }
                ClientAction::QueryMarks => {
                    for to in 0..self.nodes.len() {
                        self.send_marks_query(c, to);
                    }
                }
            }
        }
        let client = &mut self.clients[c];
        let wanted = [client.plan.front().copied(), client.core.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = wanted
            && client.next_wake.is_none_or(|t| at < t)
        {
            client.next_wake = Some(at);
            self.schedule(at, Scheduled::ClientWake { client: c });
        }
    }

    fn send_marks_query(&mut self, c: usize, to: usize) {
        self.transmit(Endpoint::Client(c), Endpoint::Replica(to), || {
            Scheduled::MarksQueryToReplica {
                to,
                client: ClientId(c as u32),
            }
        });
    }

    fn send_request(&mut self, c: usize, to: usize, request: Request) {
        self.transmit(Endpoint::Client(c), Endpoint::Replica(to), || {
            Scheduled::RequestToReplica {
                to,
                request: request.clone(),
            }
        });
    }

    /// Schedules the event `make` builds at each time the network model delivers a
    /// message from `from` to `to` (none if it is lost, two if duplicated).
    fn transmit(
        &mut self,
        from: Endpoint,
        to: Endpoint,
        make: impl Fn() -> Scheduled<P::Message, P::Timer>,
    ) {
        for at in self.net.arrivals(&mut self.rng, self.now, from, to) {
            self.schedule(at, make());
        }
    }

    fn apply_fault(&mut self, fault: FaultEvent) {
        match fault {
            FaultEvent::Crash(r) => {
                let fault = self.storage_faults.get(&(self.now, r)).copied();
                let node = &mut self.nodes[r];
                node.proto = None;
                node.incarnation += 1;
                node.held.clear();
                let lied = node.disk.crash(fault, &mut self.rng);
                if lied || self.disk.is_none() {
                    self.votes.forget(r);
                }
                if let (Some(fault), Some(lines)) = (fault, &mut self.trace) {
                    lines.push(format!("{} r{r}: storage fault {}", self.now, fault.name()));
                }
                self.timers.retain(|(i, _), _| *i != r);
            }
            FaultEvent::Restart(r) => {
                let node = &mut self.nodes[r];
                node.incarnation += 1;
                node.held.clear();
                node.exec_free_at = self.now;
                let restored = self.restart_from_disk(r);
                self.start_replica(r);
                // The snapshot the application was restored to is the replica's own
                // checkpoint state: handed back so it serves state transfer at once.
                if let Some((seq, snapshot)) = restored {
                    self.restarts_from_snapshot += 1;
                    let incarnation = self.nodes[r].incarnation;
                    self.schedule(
                        self.now,
                        Scheduled::Snapshot {
                            replica: r,
                            incarnation,
                            seq,
                            snapshot,
                        },
                    );
                }
            }
            FaultEvent::Partition(groups) => self.net.partition = Some(groups),
            FaultEvent::Heal => self.net.partition = None,
            FaultEvent::Links(faults) => self.net.faults = faults,
            FaultEvent::CleanLinks => self.net.faults = LinkFaults::default(),
            FaultEvent::Step(step) => self.apply_step(step),
            FaultEvent::ClusterRestart => {
                for r in 0..self.nodes.len() {
                    if self.nodes[r].proto.is_some() {
                        self.apply_fault(FaultEvent::Crash(r));
                    }
                    self.apply_fault(FaultEvent::Restart(r));
                }
            }
            FaultEvent::ClientRestart(c) => {
                let routing = P::client_routing(self.nodes.len());
                let fresh = self.clients[c].core.restarted(routing);
                self.clients[c].restart(fresh);
                // A new run asks for its marks first, as `tandem client` does.
                let mut actions = Vec::new();
                let now = self.now;
                if self.clients[c].asks_marks {
                    self.clients[c].core.query_marks(now, &mut actions);
                }
                for action in actions {
                    if let ClientAction::QueryMarks = action {
                        for to in 0..self.nodes.len() {
                            self.send_marks_query(c, to);
                        }
                    }
                }
                self.wake_client(c);
            }
        }
    }
}

/// Scheduled plans (`sim/schedule.rs`): steps in the scenario vocabulary, targets
/// resolved when they fire.
impl<P: Protocol> Engine<P> {
    /// Lets `byzantine` steps rebuild replicas in a mode (without it they are ignored).
    pub fn with_mode_factory(mut self, factory: ModeFactory<P>) -> Self {
        self.mode_factory = Some(factory);
        self
    }

    /// The primary now: where the protocol's client routing sends a new request when
    /// every running correct replica reported its view.
    fn primary(&self) -> usize {
        let mut routing = P::client_routing(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            if let (Some(p), true) = (&node.proto, node.correct) {
                routing.on_reply(ReplicaId(i as u32), p.status().view);
            }
        }
        match routing.destination() {
            Destination::One(r) => r.index(),
            Destination::Several(rs) => rs.first().map_or(0, |r| r.index()),
            Destination::All => 0,
        }
    }

    /// Rebuilds replica `r` (empty state) in `mode`, or honest.
    fn rebuild(&mut self, r: usize, mode: Option<&'static str>) {
        let Some(factory) = self.mode_factory.as_mut() else {
            return;
        };
        let proto = factory(ReplicaId(r as u32), mode);
        self.paused.remove(&r);
        self.timers.retain(|(i, _), _| *i != r);
        let node = &mut self.nodes[r];
        node.incarnation += 1;
        node.proto = Some(proto);
        node.app = (self.app_factory)();
        node.exec_free_at = self.now;
        self.start_replica(r);
    }

    fn apply_step(&mut self, step: ScheduledStep) {
        let n = self.nodes.len();
        let targets = step.target.resolve(n, self.primary(), &self.hit);
        if !matches!(step.target, SimTarget::SameAs(_)) {
            self.hit.insert(step.fault, targets.clone());
        }
        let resolve = |t: &SimTarget, engine: &Self| t.resolve(n, engine.primary(), &engine.hit);
        let since = self.now;
        match step.action {
            StepAction::Crash => {
                for r in targets {
                    self.paused.remove(&r);
                    self.apply_fault(FaultEvent::Crash(r));
                }
            }
            StepAction::Restart => {
                let down: Vec<usize> = targets
                    .into_iter()
                    .filter(|r| self.nodes[*r].proto.is_none())
                    .collect();
                for r in down {
                    self.apply_fault(FaultEvent::Restart(r));
                }
            }
            StepAction::Pause => {
                let up: Vec<usize> = targets
                    .into_iter()
                    .filter(|r| self.nodes[*r].proto.is_some())
                    .collect();
                for r in up {
                    self.paused.entry(r).or_default();
                }
            }
            StepAction::Resume => {
                for r in targets {
                    for ev in self.paused.remove(&r).unwrap_or_default() {
                        self.schedule(self.now, ev);
                    }
                }
            }
            StepAction::Byzantine(mode) => {
                for r in targets {
                    self.nodes[r].correct = false;
                    self.rebuild(r, Some(mode));
                }
            }
            StepAction::Honest => {
                let faulty: Vec<usize> = targets
                    .into_iter()
                    .filter(|r| !self.nodes[*r].correct)
                    .collect();
                for r in faulty {
                    self.rebuild(r, None);
                }
            }
            StepAction::Partition { id, groups } => {
                let mut of = vec![0u8; n];
                for (g, group) in groups.iter().enumerate() {
                    for r in resolve(group, self) {
                        of[r] = u8::try_from(g + 1).unwrap_or(u8::MAX);
                    }
                }
                let kind = NetRuleKind::Partition(of);
                self.net.rules.push(NetRule { id, since, kind });
            }
            StepAction::Isolate { id } => {
                let kind = NetRuleKind::Isolated(targets);
                self.net.rules.push(NetRule { id, since, kind });
            }
            StepAction::OneWayCut { id, to } => {
                let kind = NetRuleKind::OneWay {
                    to: resolve(&to, self),
                    from: targets,
                };
                self.net.rules.push(NetRule { id, since, kind });
            }
            StepAction::Heal => {
                self.net.partition = None;
                self.net.rules.retain(|r| !r.healed_by_heal());
            }
            StepAction::Link {
                id,
                to,
                clients,
                effect,
            } => {
                let kind = NetRuleKind::Link {
                    b: resolve(&to, self),
                    a: targets,
                    clients,
                    effect,
                };
                self.net.rules.push(NetRule { id, since, kind });
            }
            StepAction::EndRule { id } => self.net.rules.retain(|r| r.id != id),
        }
    }
}
