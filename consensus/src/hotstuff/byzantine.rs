//! Byzantine behaviours for experiments, as modes of a replica: the honest core runs,
//! and the mode rewrites what it sends (or, for twins, runs a second core under the
//! same identity). Correct replicas must stay safe against each (the simulator checks)
//! and live once at most f replicas misbehave.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::client_auth::{Authenticator, MAC_LEN};
use crate::crypto::{Signed, SignedBody};
use crate::hotstuff::block::Block;
use crate::hotstuff::message::{Envelope, HotStuffTimer, Message, Proposal};
use crate::hotstuff::qc::{TimeoutBody, TimeoutMsg};
use crate::hotstuff::replica::{HotStuff, HotStuffAction, HotStuffEvent};
use crate::protocol::{Action, Event, Executed};
use crate::request::{Batch, Request};
use crate::types::{ReplicaId, Seq, Time, View};

/// A way for a HotStuff replica to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ByzantineMode {
    /// Sends nothing at all.
    Silent,
    /// As leader, proposes two different blocks in its round, each to half the peers.
    Equivocate,
    /// As leader, holds every proposal until just under the round time-out.
    SlowLeader,
    /// Corrupts every signature it produces (votes, timeouts, checkpoints, envelopes)
    /// and those of the QCs inside the blocks it serves to fetches.
    BadSignatures,
    /// Keeps resending old messages it sent.
    Replay,
    /// Votes for wrong digests (validly signed), signs checkpoints of a wrong state,
    /// proposes blocks whose QC names a wrong block, sends wrong results to clients.
    CorruptDigests,
    /// Keeps broadcasting validly signed timeouts for the next rounds.
    TimeoutStorm,
    /// Twins (Bano et al., 2020): two honest instances under its one identity, each
    /// talking to half of the other replicas, so it votes and proposes twice per round
    /// without any hand-written attack. The second instance executes nothing itself:
    /// it takes the first one's execution reports, with no execution back-pressure of
    /// its own, so it stays an honest instance.
    Twins,
    /// Forges requests in honest clients' names (issue 10 item 1): on each status tick
    /// it forwards requests with its own payload and a garbage authenticator — each
    /// known client's next two numbers and one a million ahead — to the current and
    /// next leaders, and as leader it puts them first in every block it proposes.
    ForgeRequests,
    /// Orders and votes honestly, but answers every client request it receives with a
    /// forged stale-number notice witnessing its number spent, and every marks query
    /// with forged marks claiming numbers far above the truth done (as PBFT's mode of
    /// the name): a client must renumber or skip only on f+1 such answers.
    ForgeStale,
}

impl ByzantineMode {
    /// Every mode, in a fixed order.
    pub const ALL: [ByzantineMode; 10] = [
        ByzantineMode::Silent,
        ByzantineMode::Equivocate,
        ByzantineMode::SlowLeader,
        ByzantineMode::BadSignatures,
        ByzantineMode::Replay,
        ByzantineMode::CorruptDigests,
        ByzantineMode::TimeoutStorm,
        ByzantineMode::Twins,
        ByzantineMode::ForgeRequests,
        ByzantineMode::ForgeStale,
    ];

    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ByzantineMode::Silent => "silent",
            ByzantineMode::Equivocate => "equivocate",
            ByzantineMode::SlowLeader => "slow-leader",
            ByzantineMode::BadSignatures => "bad-signatures",
            ByzantineMode::Replay => "replay",
            ByzantineMode::CorruptDigests => "corrupt-digests",
            ByzantineMode::TimeoutStorm => "timeout-storm",
            ByzantineMode::Twins => "twins",
            ByzantineMode::ForgeRequests => "forge-requests",
            ByzantineMode::ForgeStale => "forge-stale",
        }
    }
}

const REPLAY_HISTORY: usize = 256;
/// Forge requests: the clients forged for per tick or proposal, at most.
const FORGED_CLIENTS: usize = 8;

/// Requests forged in the names of the clients `core` has delivered for: each one's
/// next two numbers and one a million ahead, with this replica's payload and a garbage
/// authenticator (it cannot compute another replica's MAC).
fn forged_requests(core: &HotStuff) -> Vec<Request> {
    let payload = Bytes::from_static(b"forged by a byzantine replica");
    let garbage = Authenticator(vec![[0xA5; MAC_LEN]; core.n]);
    let mut forged = Vec::new();
    for (client, window) in core.delivered_table.iter().take(FORGED_CLIENTS) {
        let low = window.low();
        for number in [
            low.saturating_add(1),
            low.saturating_add(2),
            low.saturating_add(1_000_000),
        ] {
            let mut req = Request::new(*client, number, payload.clone());
            req.auth = garbage.clone();
            forged.push(req);
        }
    }
    forged.truncate(core.cfg.common.max_batch);
    forged
}
/// Forge-stale: answers a client request with a forged stale-number notice (the core
/// still handles the request) and a marks query with forged marks (the core does not
/// answer it: returns true).
fn forge_stale(core: &HotStuff, event: &HotStuffEvent, out: &mut Vec<HotStuffAction>) -> bool {
    let signer = core.cfg.common.signed_all.then_some(&core.keys);
    crate::exactly_once::forge_stale_answer(
        event,
        core.round(),
        core.me,
        &core.delivered_table,
        signer,
        out,
    )
}

const REPLAY_PER_TICK: usize = 8;
const STORM_ROUNDS: u64 = 8;

/// A mode and the state it needs.
#[derive(Debug)]
pub(crate) struct Byzantine {
    mode: ByzantineMode,
    /// Slow leader: proposals held until their release time.
    held: VecDeque<(Time, Envelope)>,
    /// Replay: messages sent before.
    history: VecDeque<Envelope>,
    replay_cursor: usize,
    /// Twins: the second instance, and each instance's timer deadlines.
    twin: Option<Box<HotStuff>>,
    twin_timers: [BTreeMap<HotStuffTimer, Time>; 2],
    /// Twins: the first instance's execution reports by sequence number, not yet
    /// handed to the twin (at most [`TWIN_EXECUTED_KEPT`]).
    twin_executed: BTreeMap<Seq, Executed>,
    /// Twins: the sequence numbers the twin delivered and has not yet been told
    /// executed.
    twin_delivered: BTreeSet<Seq>,
}

/// The most execution reports of the first twin kept for the second.
const TWIN_EXECUTED_KEPT: usize = 4096;

impl Byzantine {
    pub(crate) fn new(mode: ByzantineMode) -> Byzantine {
        Byzantine {
            mode,
            held: VecDeque::new(),
            history: VecDeque::new(),
            replay_cursor: 0,
            twin: None,
            twin_timers: [BTreeMap::new(), BTreeMap::new()],
            twin_executed: BTreeMap::new(),
            twin_delivered: BTreeSet::new(),
        }
    }

    pub(crate) fn mode(&self) -> ByzantineMode {
        self.mode
    }

    pub(crate) fn start(&mut self, core: &mut HotStuff, now: Time, out: &mut Vec<HotStuffAction>) {
        if self.mode != ByzantineMode::Twins {
            core.start(now, out);
            return;
        }
        // The twin executes nothing itself: it learns of execution from the first
        // instance's reports (`feed_twin`), which lag whenever the first instance's
        // half of the cluster lags. Held back by `max_unexecuted` meanwhile, it
        // proposed empty blocks and voted for none with requests — a censor, not an
        // honest instance — so its execution back-pressure is off.
        let mut cfg = core.cfg.clone();
        cfg.common.max_unexecuted = 1 << 20; // the most `validate` accepts
        let mut twin = HotStuff::new(cfg, core.keys.clone())
            .expect("the twin has the core's valid parameters");
        if let Some(allowed) = &core.allowed_clients {
            twin.set_allowed_clients(allowed.iter().copied());
        }
        let mut a = Vec::new();
        core.start(now, &mut a);
        let mut b = Vec::new();
        twin.start(now, &mut b);
        self.twin = Some(Box::new(twin));
        self.merge_twins(core.n, a, b, out);
    }

    pub(crate) fn handle(
        &mut self,
        core: &mut HotStuff,
        now: Time,
        event: HotStuffEvent,
        out: &mut Vec<HotStuffAction>,
    ) {
        if self.mode == ByzantineMode::Twins {
            self.handle_twins(core, now, event, out);
            return;
        }
        if self.mode == ByzantineMode::ForgeStale && forge_stale(core, &event, out) {
            return;
        }
        let status_tick = matches!(event, Event::Timer(HotStuffTimer::Status));
        let release = matches!(event, Event::Timer(HotStuffTimer::SlowRelease));
        let mut actions = Vec::new();
        core.handle(now, event, &mut actions);
        for action in actions {
            self.rewrite(core, now, action, out);
        }
        if release {
            while let Some((at, _)) = self.held.front() {
                if *at > now {
                    break;
                }
                let (_, msg) = self.held.pop_front().expect("front exists");
                out.push(Action::Broadcast { msg });
            }
            if let Some((at, _)) = self.held.front() {
                out.push(Action::SetTimer {
                    timer: HotStuffTimer::SlowRelease,
                    at: *at,
                });
                core.timers.insert(HotStuffTimer::SlowRelease, *at);
            }
        }
        if status_tick {
            self.on_tick(core, out);
        }
    }

    fn on_tick(&mut self, core: &mut HotStuff, out: &mut Vec<HotStuffAction>) {
        match self.mode {
            ByzantineMode::Replay if !self.history.is_empty() => {
                for _ in 0..REPLAY_PER_TICK {
                    let i = self.replay_cursor % self.history.len();
                    self.replay_cursor = self.replay_cursor.wrapping_add(1);
                    out.push(Action::Broadcast {
                        msg: self.history[i].clone(),
                    });
                }
            }
            ByzantineMode::TimeoutStorm => {
                let round = core.round();
                for r in round.0..round.0.saturating_add(STORM_ROUNDS) {
                    let body = TimeoutBody {
                        round: View(r),
                        hqc_round: core.high_qc.round,
                    };
                    let msg = TimeoutMsg {
                        timeout: Signed {
                            signature: core.keys.sign(&body.signing_bytes()),
                            body,
                            signer: core.me,
                        },
                        high_qc: core.high_qc.clone(),
                    };
                    out.push(Action::Broadcast {
                        msg: core.envelope(Message::Timeout(Box::new(msg))),
                    });
                }
            }
            ByzantineMode::ForgeRequests => {
                let forged = forged_requests(core);
                if !forged.is_empty() {
                    let round = core.round();
                    for leader in [core.leader(round), core.leader(round.next())] {
                        if leader != core.me {
                            core.send(leader, Message::Forward(forged.clone()), out);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn rewrite(
        &mut self,
        core: &mut HotStuff,
        now: Time,
        action: HotStuffAction,
        out: &mut Vec<HotStuffAction>,
    ) {
        match self.mode {
            ByzantineMode::Silent => match action {
                Action::Send { .. } | Action::Broadcast { .. } | Action::Reply { .. } => {}
                other => out.push(other),
            },
            ByzantineMode::Equivocate => match action {
                Action::Broadcast {
                    msg:
                        Envelope {
                            msg: Message::Proposal(p),
                            ..
                        },
                } => {
                    let other = Proposal {
                        block: Arc::new(Block {
                            batch: Arc::new(Batch::new(
                                p.block
                                    .batch
                                    .requests
                                    .iter()
                                    .rev()
                                    .skip(1)
                                    .cloned()
                                    .collect(),
                            )),
                            ..(*p.block).clone()
                        }),
                        tc: p.tc.clone(),
                    };
                    for to in 0..core.n {
                        let to = ReplicaId(to as u32);
                        let msg = if to.index().is_multiple_of(2) {
                            Message::Proposal(p.clone())
                        } else {
                            Message::Proposal(other.clone())
                        };
                        core.send(to, msg, out);
                    }
                }
                other => out.push(other),
            },
            ByzantineMode::SlowLeader => match action {
                Action::Broadcast { msg } if matches!(msg.msg, Message::Proposal(_)) => {
                    let delay = core.pacemaker.timeout().mul_f64(0.9);
                    let at = now + delay;
                    if self.held.is_empty() {
                        out.push(Action::SetTimer {
                            timer: HotStuffTimer::SlowRelease,
                            at,
                        });
                        core.timers.insert(HotStuffTimer::SlowRelease, at);
                    }
                    self.held.push_back((at, msg));
                }
                other => out.push(other),
            },
            ByzantineMode::BadSignatures => out.push(match action {
                Action::Send { to, msg } => Action::Send {
                    to,
                    msg: corrupt_signatures(msg),
                },
                Action::Broadcast { msg } => Action::Broadcast {
                    msg: corrupt_signatures(msg),
                },
                other => other,
            }),
            ByzantineMode::Replay => {
                if let Action::Broadcast { msg } | Action::Send { msg, .. } = &action {
                    if self.history.len() >= REPLAY_HISTORY {
                        self.history.pop_front();
                    }
                    self.history.push_back(msg.clone());
                }
                out.push(action);
            }
            ByzantineMode::CorruptDigests => out.push(match action {
                Action::Send { to, msg } => Action::Send {
                    to,
                    msg: corrupt_digests(core, msg),
                },
                Action::Broadcast { msg } => Action::Broadcast {
                    msg: corrupt_digests(core, msg),
                },
                Action::Reply { client, mut reply } => {
                    for r in &mut reply.results {
                        r.result = Bytes::from_static(b"wrong result");
                    }
                    Action::Reply { client, reply }
                }
                other => other,
            }),
            ByzantineMode::ForgeRequests => out.push(match action {
                Action::Broadcast {
                    msg:
                        Envelope {
                            msg: Message::Proposal(p),
                            ..
                        },
                } => {
                    let mut requests = forged_requests(core);
                    requests.extend(p.block.batch.requests.iter().cloned());
                    requests.truncate(core.cfg.common.max_batch);
                    let block = Block {
                        batch: Arc::new(Batch::new(requests)),
                        ..(*p.block).clone()
                    };
                    Action::Broadcast {
                        msg: core.envelope(Message::Proposal(Proposal {
                            block: Arc::new(block),
                            tc: p.tc.clone(),
                        })),
                    }
                }
                other => other,
            }),
            ByzantineMode::TimeoutStorm | ByzantineMode::Twins | ByzantineMode::ForgeStale => {
                out.push(action)
            }
        }
    }

    // ---- twins ----

    /// Which instance talks with `peer`: 0 for even, 1 for odd indices.
    fn twin_of(peer: ReplicaId) -> usize {
        peer.index() % 2
    }

    fn handle_twins(
        &mut self,
        core: &mut HotStuff,
        now: Time,
        event: HotStuffEvent,
        out: &mut Vec<HotStuffAction>,
    ) {
        let Some(mut twin) = self.twin.take() else {
            core.handle(now, event, out);
            return;
        };
        let n = core.n;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        match event {
            Event::Message { from, msg } => {
                if Self::twin_of(from) == 0 {
                    core.handle(now, Event::Message { from, msg }, &mut a);
                } else {
                    twin.handle(now, Event::Message { from, msg }, &mut b);
                }
            }
            Event::ClientRequest(req) => {
                core.handle(now, Event::ClientRequest(req.clone()), &mut a);
                twin.handle(now, Event::ClientRequest(req), &mut b);
            }
            Event::Timer(timer) => {
                for (i, inst) in [&mut *core, &mut *twin].into_iter().enumerate() {
                    if self.twin_timers[i].get(&timer).is_some_and(|at| *at <= now) {
                        self.twin_timers[i].remove(&timer);
                        let sink = if i == 0 { &mut a } else { &mut b };
                        inst.handle(now, Event::Timer(timer), sink);
                    }
                }
            }
            // The application belongs to the first instance. Its reports also go to
            // the twin when it delivers the same sequence number (`feed_twin`).
            Event::Executed(ex) => {
                self.twin_executed.insert(ex.seq, ex.clone());
                while self.twin_executed.len() > TWIN_EXECUTED_KEPT {
                    self.twin_executed.pop_first();
                }
                core.handle(now, Event::Executed(ex), &mut a);
            }
            other => core.handle(now, other, &mut a),
        }
        self.feed_twin(&mut twin, now, &mut b);
        self.twin = Some(twin);
        self.merge_twins(n, a, b, out);
        let _ = now;
    }

    /// Tells the twin its deliveries executed, with the first instance's reports for
    /// the same sequence numbers (both commit one chain, so the results and state
    /// digests are the same), in sequence order, as far as the first instance has
    /// executed. Without it the twin never executed, so it stayed held back by
    /// `max_unexecuted` for good: it proposed only empty blocks and voted for none
    /// that carried requests — a censor, not an honest instance (with leader
    /// reputation it then led nearly every round: `tandem sim --protocol hotstuff
    /// --seed 30 --faults twins --durability wal --protocol-param
    /// leader_election=reputation` completed 105 of 222 requests).
    fn feed_twin(&mut self, twin: &mut HotStuff, now: Time, b: &mut Vec<HotStuffAction>) {
        let mut scanned = 0;
        loop {
            for action in &b[scanned..] {
                if let Action::Deliver(d) = action {
                    self.twin_delivered.insert(d.seq);
                }
            }
            scanned = b.len();
            let Some(&seq) = self.twin_delivered.first() else {
                return;
            };
            let Some(ex) = self.twin_executed.get(&seq).cloned() else {
                return;
            };
            self.twin_delivered.remove(&seq);
            self.twin_executed = self.twin_executed.split_off(&seq.next());
            twin.handle(now, Event::Executed(ex), b);
        }
    }

    /// Routes each instance's actions to its half of the peers, keeps only the first
    /// instance's deliveries and replies, and merges the timers (the driver keeps one
    /// per name: it fires at the earlier deadline and each instance sees its own).
    fn merge_twins(
        &mut self,
        n: usize,
        a: Vec<HotStuffAction>,
        b: Vec<HotStuffAction>,
        out: &mut Vec<HotStuffAction>,
    ) {
        let mut touched = Vec::new();
        for (i, actions) in [a, b].into_iter().enumerate() {
            for action in actions {
                match action {
                    Action::Send { to, msg } => {
                        if Self::twin_of(to) == i {
                            out.push(Action::Send { to, msg });
                        }
                    }
                    Action::Broadcast { msg } => {
                        for to in (0..n).map(|t| ReplicaId(t as u32)) {
                            if Self::twin_of(to) == i {
                                out.push(Action::Send {
                                    to,
                                    msg: msg.clone(),
                                });
                            }
                        }
                    }
                    Action::SetTimer { timer, at } => {
                        self.twin_timers[i].insert(timer, at);
                        touched.push(timer);
                    }
                    Action::CancelTimer { timer } => {
                        self.twin_timers[i].remove(&timer);
                        touched.push(timer);
                    }
                    Action::Deliver(_) | Action::Reply { .. } | Action::Restore(_) if i == 1 => {}
                    other => out.push(other),
                }
            }
        }
        touched.sort();
        touched.dedup();
        for timer in touched {
            let next = self.twin_timers[0]
                .get(&timer)
                .into_iter()
                .chain(self.twin_timers[1].get(&timer))
                .min()
                .copied();
            match next {
                Some(at) => out.push(Action::SetTimer { timer, at }),
                None => out.push(Action::CancelTimer { timer }),
            }
        }
    }
}

fn corrupt_signatures(mut env: Envelope) -> Envelope {
    if let Some(sig) = &mut env.signature {
        sig.0[0] ^= 0xff;
    }
    match &mut env.msg {
        Message::Vote(v) => v.signature.0[0] ^= 0xff,
        Message::Timeout(t) => t.timeout.signature.0[0] ^= 0xff,
        Message::Checkpoint(c) => c.signature.0[0] ^= 0xff,
        // The QCs inside the blocks it serves: a block's digest binds its QC's block
        // and round, not the signatures, so a fetching replica must not log them.
        Message::Blocks(blocks) => {
            for b in blocks.iter_mut() {
                let mut forged = (**b).clone();
                if let Some(v) = forged.qc.votes.first_mut() {
                    v.signature.0[0] ^= 0xff;
                    *b = Arc::new(forged);
                }
            }
        }
        _ => {}
    }
    env
}

fn corrupt_digests(core: &HotStuff, env: Envelope) -> Envelope {
    let msg = match env.msg {
        Message::Vote(mut v) => {
            v.body.block.0[0] ^= 0xff;
            v.signature = core.keys.sign(&v.body.signing_bytes());
            Message::Vote(v)
        }
        Message::Checkpoint(mut c) => {
            c.body.digest.0[0] ^= 0xff;
            c.signature = core.keys.sign(&c.body.signing_bytes());
            Message::Checkpoint(c)
        }
        Message::Proposal(p) => {
            let mut block = (*p.block).clone();
            block.qc.block.0[0] ^= 0xff;
            Message::Proposal(Proposal {
                block: Arc::new(block),
                tc: p.tc,
            })
        }
        other => other,
    };
    core.envelope(msg)
}
