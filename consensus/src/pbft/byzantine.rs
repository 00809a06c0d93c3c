//! Byzantine behaviours for experiments, as modes of a replica: the honest core runs,
//! and the mode rewrites what it sends. Correct replicas must stay safe against each
//! (the simulator checks), and live once at most f replicas misbehave.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::client_auth::{Authenticator, MAC_LEN};
use crate::pbft::Pbft;
use crate::pbft::message::{
    CheckpointBody, Envelope, Message, PbftTimer, PrePrepare, Signed, SignedBody, Status, Vote,
};
use crate::pbft::replica::MAX_VIEWS_AHEAD;
use crate::pbft::replica::{PbftAction, PbftEvent};
use crate::protocol::{Action, Event};
use crate::request::Batch;
use crate::request::Request;
use crate::types::{ClientId, ReplicaId, Seq, Time, View};

/// A way for a replica to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ByzantineMode {
    /// Sends nothing at all (a crash that keeps its connections open).
    Silent,
    /// As primary, sends different batches for the same sequence number to different
    /// backups.
    Equivocate,
    /// As primary, holds every proposal until just under the view timeout.
    SlowPrimary,
    /// Corrupts every signature it produces.
    BadSignatures,
    /// Keeps resending old messages it sent or received.
    Replay,
    /// Votes for wrong digests: prepares, commits and pre-prepares with corrupted
    /// digests, validly signed checkpoints of a wrong state, wrong results to clients.
    CorruptDigests,
    /// Keeps asking for view changes to ever higher views.
    ViewChangeStorm,
    /// Ignores every request of client [`CENSORED_CLIENT`] — from the client or
    /// forwarded by a backup — and serves everyone else: as primary it never proposes
    /// that client's requests (issue 10 item 2).
    Censor,
    /// Censors client [`CENSORED_CLIENT`] as [`ByzantineMode::Censor`] does, but
    /// answers each of its requests at once with a busy refusal (`Reply::busy`), as
    /// an overloaded primary legitimately may: the client must still get its request
    /// to the backups, whose request timers replace the primary (a busy refusal used
    /// to hold the client's resend to all back for good; review of 9f188dc).
    CensorBusy,
    /// Censors client [`CENSORED_CLIENT`] while looking live: as primary it holds that
    /// client's requests (direct or forwarded), proposes an empty batch on every
    /// status tick, and lets one held request through every
    /// 3.5 view time-outs ([`DRIP_HALF_TIMEOUTS`]) — before a backup's timer for it could run out
    /// its extensions. Before the fix, empty batches counted as the primary's progress
    /// (each backup timer was extended) and each request's extensions restarted when
    /// the older one executed, so the client got about one request per second and
    /// never completed; now neither counts, and the backups replace the primary.
    CensorEmpty,
    /// Floods every peer on each status tick with pre-prepares for every view ahead
    /// it may buffer (as if it led them all) carrying full-size batches, and with
    /// votes for the next view outside the watermark window (issue 10 item 3).
    Flood,
    /// On each status tick, sends every peer [`STATUS_FLOOD`] status messages claiming
    /// it delivered nothing, batch fetches for every digest it knows and state fetches
    /// (issue 10 item 4: each used to trigger up to 16 batches).
    StatusFlood,
    /// Forges requests in honest clients' names (issue 10 item 1): as a backup, on
    /// each status tick it forwards to the primary, for every client it knows of, the
    /// client's next two numbers and one a million ahead with its own payload and a
    /// garbage authenticator, and a genuine request's authenticator on its own
    /// payload; as primary it puts such requests into every batch it proposes.
    ForgeRequests,
    /// Orders and votes honestly — so it signs stable checkpoints and is asked for
    /// their state — but serves every state chunk with a flipped byte (issue 10 item 6:
    /// a receiver must catch it at that chunk and ask another signer).
    CorruptState,
    /// Orders and votes honestly, but answers every client request it receives with a
    /// forged stale-number notice witnessing its number spent, and every marks query
    /// with forged marks claiming numbers far above the truth done
    /// (`exactly_once::forged_stale`, `forged_marks`): a client must renumber or skip
    /// only on f+1 such answers.
    ForgeStale,
}

/// Forge-stale: answers a client request with a forged stale-number notice (the core
/// still handles the request) and a marks query with forged marks (the core does not
/// answer it: returns true).
fn forge_stale(core: &Pbft, event: &PbftEvent, out: &mut Vec<PbftAction>) -> bool {
    let signer = core.cfg.signed_all.then_some(&core.keys);
    crate::exactly_once::forge_stale_answer(
        event,
        core.view,
        core.me,
        &core.delivered_table,
        signer,
        out,
    )
}

/// Censor-empty: one held request of the censored client goes through every this
/// many halves of the (base) view time-out: 3.5 time-outs. A backup's timer for a
/// request runs one time-out and up to three extensions; with status ticks of at
/// most a third of a time-out (the simulator's: 100 ms against 300 ms), the release
/// lands before the fourth time-out runs out.
pub const DRIP_HALF_TIMEOUTS: u32 = 7;

/// Censor-empty: how long between two of the censored client's requests let through.
fn drip_interval(core: &Pbft) -> std::time::Duration {
    (core.cfg.view_timeout / 2).saturating_mul(DRIP_HALF_TIMEOUTS)
}

/// Censor-empty: at most this many of the censored client's requests are held.
const HELD_CENSORED: usize = 1024;

/// Status flood: forged status messages (and rounds of fetches) per status tick.
pub const STATUS_FLOOD: usize = 50;

/// The client a [`ByzantineMode::Censor`] replica censors.
pub const CENSORED_CLIENT: ClientId = ClientId(0);

impl ByzantineMode {
    /// Every mode, in a fixed order.
    pub const ALL: [ByzantineMode; 15] = [
        ByzantineMode::Silent,
        ByzantineMode::Equivocate,
        ByzantineMode::SlowPrimary,
        ByzantineMode::BadSignatures,
        ByzantineMode::Replay,
        ByzantineMode::CorruptDigests,
        ByzantineMode::ViewChangeStorm,
        ByzantineMode::Censor,
        ByzantineMode::CensorBusy,
        ByzantineMode::CensorEmpty,
        ByzantineMode::Flood,
        ByzantineMode::StatusFlood,
        ByzantineMode::ForgeRequests,
        ByzantineMode::CorruptState,
        ByzantineMode::ForgeStale,
    ];

    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ByzantineMode::Silent => "silent",
            ByzantineMode::Equivocate => "equivocate",
            ByzantineMode::SlowPrimary => "slow-primary",
            ByzantineMode::BadSignatures => "bad-signatures",
            ByzantineMode::Replay => "replay",
            ByzantineMode::CorruptDigests => "corrupt-digests",
            ByzantineMode::ViewChangeStorm => "view-change-storm",
            ByzantineMode::Censor => "censor",
            ByzantineMode::CensorBusy => "censor-busy",
            ByzantineMode::CensorEmpty => "censor-empty",
            ByzantineMode::Flood => "flood",
            ByzantineMode::StatusFlood => "status-flood",
            ByzantineMode::ForgeRequests => "forge-requests",
            ByzantineMode::CorruptState => "corrupt-state",
            ByzantineMode::ForgeStale => "forge-stale",
        }
    }

    /// Parses a name from [`ByzantineMode::name`].
    pub fn from_name(name: &str) -> Option<ByzantineMode> {
        ByzantineMode::ALL.into_iter().find(|m| m.name() == name)
    }
}

const REPLAY_HISTORY: usize = 256;
const REPLAY_PER_TICK: usize = 8;

/// A mode and the state it needs.
#[derive(Debug)]
pub(crate) struct Byzantine {
    mode: ByzantineMode,
    /// Slow primary: proposals held until their release time.
    held: VecDeque<(Time, PbftAction)>,
    /// Replay: recent messages, sent or received.
    history: VecDeque<Message>,
    replay_cursor: usize,
    /// View-change storm: how far ahead the next bogus view change goes.
    storm_step: u64,
    /// Slow primary: when the release timer is set for.
    release_armed: Option<Time>,
    /// Flood: request numbers of made-up batches.
    flood_number: u64,
    /// Censor-empty: the censored client's requests held back, oldest first.
    held_censored: VecDeque<Request>,
    /// Censor-empty: when the next held request goes through.
    drip_at: Option<Time>,
}

impl Byzantine {
    pub(crate) fn new(mode: ByzantineMode) -> Byzantine {
        Byzantine {
            mode,
            held: VecDeque::new(),
            history: VecDeque::new(),
            replay_cursor: 0,
            storm_step: 0,
            release_armed: None,
            flood_number: 0,
            held_censored: VecDeque::new(),
            drip_at: None,
        }
    }

    pub(crate) fn mode(&self) -> ByzantineMode {
        self.mode
    }

    /// Runs the honest core on `event`, then rewrites its actions.
    pub(crate) fn handle(
        &mut self,
        core: &mut Pbft,
        now: Time,
        event: PbftEvent,
        out: &mut Vec<PbftAction>,
    ) {
        if matches!(event, Event::Timer(PbftTimer::SlowRelease)) {
            self.release_held(now, out);
            return;
        }
        if self.mode == ByzantineMode::CensorBusy
            && let Event::ClientRequest(req) = &event
            && req.client == CENSORED_CLIENT
        {
            core.refuse_busy(req, out);
            return;
        }
        if self.mode == ByzantineMode::ForgeStale && forge_stale(core, &event, out) {
            return;
        }
        let event = if self.mode == ByzantineMode::CensorEmpty {
            self.hold_censored(core, now, event)
        } else {
            self.censor(event)
        };
        let Some(event) = event else {
            return;
        };
        let status_tick = matches!(event, Event::Timer(PbftTimer::Status));
        if let (ByzantineMode::Replay, Event::Message { msg, .. }) = (self.mode, &event) {
            self.remember(msg.msg.clone());
        }
        let start = out.len();
        core.handle(now, event, out);
        let produced: Vec<PbftAction> = out.drain(start..).collect();
        for action in produced {
            self.rewrite(core, now, action, out);
        }
        if status_tick {
            self.on_tick(core, out);
            if self.mode == ByzantineMode::CensorEmpty {
                self.look_live(core, now, out);
            }
        }
        self.arm_release(out);
    }

    /// Censor: removes the censored client's requests from what the core sees.
    fn censor(&self, event: PbftEvent) -> Option<PbftEvent> {
        if !matches!(self.mode, ByzantineMode::Censor | ByzantineMode::CensorBusy) {
            return Some(event);
        }
        match event {
            Event::ClientRequest(req) if req.client == CENSORED_CLIENT => None,
            Event::Message {
                from,
                msg:
                    Envelope {
                        msg: Message::Forward(reqs),
                        signature,
                    },
            } => {
                let reqs: Vec<_> = reqs
                    .into_iter()
                    .filter(|r| r.client != CENSORED_CLIENT)
                    .collect();
                Some(Event::Message {
                    from,
                    msg: Envelope {
                        msg: Message::Forward(reqs),
                        signature,
                    },
                })
            }
            other => Some(other),
        }
    }

    /// Censor-empty: keeps the censored client's requests (from the client or in a
    /// forward) from the core, holding them to let through one by one; passes on
    /// everything else.
    fn hold_censored(&mut self, core: &Pbft, now: Time, event: PbftEvent) -> Option<PbftEvent> {
        let mut hold = |req: Request| {
            let known = self.held_censored.iter().any(|h| h.key() == req.key());
            if !known && self.held_censored.len() < HELD_CENSORED {
                self.held_censored.push_back(req);
            }
            if self.drip_at.is_none() {
                self.drip_at = Some(now + drip_interval(core));
            }
        };
        match event {
            Event::ClientRequest(req) if req.client == CENSORED_CLIENT => {
                hold(req);
                None
            }
            Event::Message {
                from,
                msg:
                    Envelope {
                        msg: Message::Forward(reqs),
                        signature,
                    },
            } => {
                let (censored, reqs): (Vec<_>, Vec<_>) =
                    reqs.into_iter().partition(|r| r.client == CENSORED_CLIENT);
                censored.into_iter().for_each(&mut hold);
                Some(Event::Message {
                    from,
                    msg: Envelope {
                        msg: Message::Forward(reqs),
                        signature,
                    },
                })
            }
            other => Some(other),
        }
    }

    /// Censor-empty, on each status tick: as primary, an empty batch, and the oldest
    /// held request of the censored client once [`Byzantine::drip_at`] passed.
    fn look_live(&mut self, core: &mut Pbft, now: Time, out: &mut Vec<PbftAction>) {
        if !core.is_primary() {
            return;
        }
        let start = out.len();
        core.propose_empty(now, out);
        if self.drip_at.is_some_and(|at| now >= at) {
            let table = &core.delivered_table;
            self.held_censored
                .retain(|r| !crate::exactly_once::is_delivered(table, r.client, r.number));
            if let Some(req) = self.held_censored.pop_front() {
                core.handle(now, Event::ClientRequest(req), out);
            }
            self.drip_at = (!self.held_censored.is_empty()).then_some(now + drip_interval(core));
        }
        let produced: Vec<PbftAction> = out.drain(start..).collect();
        for action in produced {
            self.rewrite(core, now, action, out);
        }
    }

    /// Keeps the release timer set for the earliest held proposal.
    fn arm_release(&mut self, out: &mut Vec<PbftAction>) {
        let next = self.held.front().map(|(at, _)| *at);
        if let Some(at) = next
            && next != self.release_armed
        {
            out.push(Action::SetTimer {
                timer: PbftTimer::SlowRelease,
                at,
            });
        }
        self.release_armed = next;
    }

    fn rewrite(&mut self, core: &Pbft, now: Time, action: PbftAction, out: &mut Vec<PbftAction>) {
        match self.mode {
            ByzantineMode::Silent => {
                if !matches!(
                    action,
                    Action::Send { .. } | Action::Broadcast { .. } | Action::Reply { .. }
                ) {
                    out.push(action);
                }
            }
            ByzantineMode::Equivocate => self.equivocate(core, action, out),
            ByzantineMode::SlowPrimary => {
                if carries_pre_prepare(&action) {
                    let delay = core.cfg.view_timeout.mul_f64(0.9);
                    self.held.push_back((now + delay, action));
                } else {
                    out.push(action);
                }
            }
            ByzantineMode::BadSignatures => out.push(map_messages(action, |env| {
                corrupt_signatures(env);
            })),
            ByzantineMode::Replay => {
                if let Action::Send { msg, .. } | Action::Broadcast { msg } = &action {
                    self.remember(msg.msg.clone());
                }
                out.push(action);
            }
            ByzantineMode::CorruptDigests => out.push(corrupt_digests(core, action)),
            ByzantineMode::ForgeRequests => out.push(forge_into_proposal(core, action)),
            ByzantineMode::CorruptState => out.push(map_messages(action, |env| {
                corrupt_state_chunk(core, env);
            })),
            ByzantineMode::ViewChangeStorm
            | ByzantineMode::Censor
            | ByzantineMode::CensorBusy
            | ByzantineMode::CensorEmpty
            | ByzantineMode::Flood
            | ByzantineMode::StatusFlood
            | ByzantineMode::ForgeStale => out.push(action),
        }
    }

    /// Equivocating primary: even-numbered backups get the real batch, odd-numbered
    /// ones a different batch under the same sequence number.
    fn equivocate(&self, core: &Pbft, action: PbftAction, out: &mut Vec<PbftAction>) {
        let Action::Broadcast { msg } = &action else {
            out.push(action);
            return;
        };
        let Message::PrePrepare(pp) = &msg.msg else {
            out.push(action);
            return;
        };
        let mut other = pp.batch.requests.clone();
        if other.is_empty() {
            out.push(action);
            return;
        }
        other.remove(0);
        let other = Arc::new(Batch::new(other));
        let forged = PrePrepare {
            view: pp.view,
            seq: pp.seq,
            digest: other.digest(),
            batch: other,
        };
        for r in 0..core.n as u32 {
            let to = ReplicaId(r);
            if to == core.me {
                continue;
            }
            let msg = if r % 2 == 0 {
                msg.clone()
            } else {
                core.envelope(Message::PrePrepare(forged.clone()))
            };
            out.push(Action::Send { to, msg });
        }
    }

    fn release_held(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        while self.held.front().is_some_and(|(at, _)| *at <= now) {
            let (_, action) = self.held.pop_front().expect("front exists");
            out.push(action);
        }
        self.release_armed = None;
        self.arm_release(out);
    }

    fn remember(&mut self, msg: Message) {
        if self.history.len() >= REPLAY_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(msg);
    }

    /// Periodic misbehaviour, on the status timer.
    fn on_tick(&mut self, core: &Pbft, out: &mut Vec<PbftAction>) {
        match self.mode {
            ByzantineMode::Replay if !self.history.is_empty() => {
                for _ in 0..REPLAY_PER_TICK {
                    self.replay_cursor = (self.replay_cursor + 7) % self.history.len();
                    let msg = self.history[self.replay_cursor].clone();
                    out.push(Action::Broadcast {
                        msg: core.envelope(msg),
                    });
                }
            }
            ByzantineMode::ViewChangeStorm => {
                self.storm_step = self.storm_step % 4 + 1;
                let target = crate::types::View(core.view.0.saturating_add(self.storm_step));
                let vc = core.make_view_change(target);
                out.push(Action::Broadcast {
                    msg: core.envelope(Message::ViewChange(Box::new(vc))),
                });
            }
            ByzantineMode::Flood => self.flood(core, out),
            ByzantineMode::StatusFlood => status_flood(core, out),
            ByzantineMode::ForgeRequests if !core.is_primary() => {
                let forged = forged_requests(core);
                if !forged.is_empty() {
                    core.send(core.primary(), Message::Forward(forged), out);
                }
            }
            _ => {}
        }
    }

    /// Flood: full-size pre-prepares for each of the next [`MAX_VIEWS_AHEAD`] views,
    /// prepares for the next view far outside the window, and in-window prepares and
    /// commits for every view ahead (admissible, so only the per-peer bound stops them).
    fn flood(&mut self, core: &Pbft, out: &mut Vec<PbftAction>) {
        let cfg = &core.cfg;
        let per_batch =
            (cfg.max_batch_bytes / cfg.max_request_bytes.max(1)).clamp(1, cfg.max_batch);
        let payload = Bytes::from(vec![0xF1; cfg.max_request_bytes]);
        for ahead in 1..=MAX_VIEWS_AHEAD {
            let view = View(core.view.0.saturating_add(ahead));
            for k in 0..FLOOD_PER_VIEW {
                self.flood_number = self.flood_number.wrapping_add(1);
                let requests = (0..per_batch)
                    .map(|i| {
                        Request::new(
                            FLOOD_CLIENT,
                            self.flood_number.wrapping_mul(64).wrapping_add(i as u64),
                            payload.clone(),
                        )
                    })
                    .collect();
                let batch = Arc::new(Batch::new(requests));
                let pp = PrePrepare {
                    view,
                    seq: Seq(core.stable.seq.0.saturating_add(1 + k)),
                    digest: batch.digest(),
                    batch,
                };
                out.push(Action::Broadcast {
                    msg: core.envelope(Message::PrePrepare(pp)),
                });
            }
        }
        for k in 0..FLOOD_PER_VIEW {
            let vote = Vote {
                view: core.view.next(),
                seq: Seq(u64::MAX - k),
                digest: Default::default(),
            };
            out.push(Action::Broadcast {
                msg: core.envelope(Message::Prepare(vote)),
            });
        }
        // And what the buffer's checks admit: in-window prepares (for views it does not
        // lead) and commits for every view ahead, so the per-peer bound is what stops it.
        for ahead in 1..=MAX_VIEWS_AHEAD {
            let view = View(core.view.0.saturating_add(ahead));
            for k in 0..FLOOD_PER_VIEW {
                let vote = Vote {
                    view,
                    seq: Seq(core.stable.seq.0.saturating_add(1 + k)),
                    digest: Default::default(),
                };
                if view.primary(core.n) != core.me {
                    out.push(Action::Broadcast {
                        msg: core.envelope(Message::Prepare(vote)),
                    });
                }
                out.push(Action::Broadcast {
                    msg: core.envelope(Message::Commit(vote)),
                });
            }
        }
    }
}

/// Status flood: forged status messages claiming nothing was delivered, and fetches
/// of every batch this replica holds and of the stable state.
fn status_flood(core: &Pbft, out: &mut Vec<PbftAction>) {
    let status = Status {
        view: core.view,
        view_active: true,
        stable: Seq(0),
        last_delivered: Seq(0),
    };
    let digests: Vec<_> = core.batches.keys().take(16).copied().collect();
    for _ in 0..STATUS_FLOOD {
        out.push(Action::Broadcast {
            msg: core.envelope(Message::Status(status)),
        });
        for d in &digests {
            out.push(Action::Broadcast {
                msg: core.envelope(Message::FetchBatch(*d)),
            });
        }
        out.push(Action::Broadcast {
            msg: core.envelope(Message::FetchState(Seq(0))),
        });
    }
}

/// Forge requests: at most this many clients are impersonated per tick.
const FORGED_CLIENTS: usize = 8;

/// Requests forged in the names of the clients `core` knows of (see
/// [`ByzantineMode::ForgeRequests`]): each client's next two numbers and one a million
/// ahead, with this replica's payload and a garbage authenticator, and a genuine
/// awaited request's authenticator on this replica's payload.
fn forged_requests(core: &Pbft) -> Vec<Request> {
    let payload = Bytes::from_static(b"forged by a byzantine replica");
    let garbage = Authenticator(vec![[0xA5; MAC_LEN]; core.n]);
    let mut clients: Vec<ClientId> = core.delivered_table.keys().copied().collect();
    clients.extend(core.awaited.keys().map(|(c, _)| *c));
    clients.sort();
    clients.dedup();
    let mut forged = Vec::new();
    for client in clients.into_iter().take(FORGED_CLIENTS) {
        let low = core.delivered_table.get(&client).map_or(0, |w| w.low());
        for number in [
            low.saturating_add(1),
            low.saturating_add(2),
            low.saturating_add(1_000_000),
        ] {
            let mut req = Request::new(client, number, payload.clone());
            req.auth = garbage.clone();
            forged.push(req);
        }
        if let Some((_, awaited)) = core.awaited.iter().find(|((c, _), _)| *c == client) {
            let genuine = &awaited.req;
            let mut stolen = Request::new(client, genuine.number, payload.clone());
            stolen.auth = genuine.auth.clone();
            forged.push(stolen);
        }
    }
    forged.truncate(core.cfg.max_batch);
    forged
}

/// Forge requests as primary: the proposal carries forged requests first, then as many
/// of the honest batch's requests as the batch limit leaves room for.
fn forge_into_proposal(core: &Pbft, action: PbftAction) -> PbftAction {
    let Action::Broadcast { msg } = &action else {
        return action;
    };
    let Message::PrePrepare(pp) = &msg.msg else {
        return action;
    };
    let mut requests = forged_requests(core);
    if requests.is_empty() {
        return action;
    }
    let room = core.cfg.max_batch.saturating_sub(requests.len());
    requests.extend(pp.batch.requests.iter().take(room).cloned());
    let batch = Arc::new(Batch::new(requests));
    let forged = PrePrepare {
        view: pp.view,
        seq: pp.seq,
        digest: batch.digest(),
        batch,
    };
    Action::Broadcast {
        msg: core.envelope(Message::PrePrepare(forged)),
    }
}

/// Flood: pre-prepares per view ahead and tick.
const FLOOD_PER_VIEW: u64 = 4;
/// Flood: the made-up client its batches name (no simulated client uses it; a
/// cluster with a client list refuses it).
const FLOOD_CLIENT: ClientId = ClientId(u32::MAX);

fn carries_pre_prepare(action: &PbftAction) -> bool {
    matches!(
        action,
        Action::Send {
            msg: Envelope {
                msg: Message::PrePrepare(_),
                ..
            },
            ..
        } | Action::Broadcast {
            msg: Envelope {
                msg: Message::PrePrepare(_),
                ..
            }
        }
    )
}

/// Applies `f` to the envelope of a send or broadcast.
fn map_messages(mut action: PbftAction, f: impl FnOnce(&mut Envelope)) -> PbftAction {
    if let Action::Send { msg, .. } | Action::Broadcast { msg } = &mut action {
        f(msg);
    }
    action
}

fn corrupt_signatures(env: &mut Envelope) {
    if let Some(sig) = &mut env.signature {
        sig.0[0] ^= 0x55;
    }
    match &mut env.msg {
        Message::Checkpoint(cp) => cp.signature.0[0] ^= 0x55,
        Message::ViewChange(vc) => vc.signature.0[0] ^= 0x55,
        Message::NewView(nv) => Arc::make_mut(nv).signature.0[0] ^= 0x55,
        _ => {}
    }
}

fn corrupt_digests(core: &Pbft, action: PbftAction) -> PbftAction {
    match action {
        Action::Send { to, msg } => Action::Send {
            to,
            msg: corrupt_envelope(core, msg),
        },
        Action::Broadcast { msg } => Action::Broadcast {
            msg: corrupt_envelope(core, msg),
        },
        Action::Reply { client, mut reply } => {
            for r in &mut reply.results {
                let mut bytes = r.result.to_vec();
                bytes.push(0xEE);
                r.result = Bytes::from(bytes);
            }
            if reply.signature.is_some() {
                reply.signature = Some(core.keys.sign(&reply.signing_bytes()));
            }
            Action::Reply { client, reply }
        }
        other => other,
    }
}

/// Flips the last byte of a state chunk (re-signing the envelope in signed-all mode,
/// so only the application's check can catch it).
fn corrupt_state_chunk(core: &Pbft, env: &mut Envelope) {
    if let Message::StateChunk(c) = &mut env.msg {
        let mut bytes = c.chunk.to_vec();
        if let Some(last) = bytes.last_mut() {
            *last ^= 0x40;
        }
        c.chunk = Bytes::from(bytes);
        *env = core.envelope(env.msg.clone());
    }
}

fn corrupt_envelope(core: &Pbft, env: Envelope) -> Envelope {
    let msg = match env.msg {
        Message::Prepare(mut v) => {
            v.digest.0[0] ^= 0xFF;
            Message::Prepare(v)
        }
        Message::Commit(mut v) => {
            v.digest.0[0] ^= 0xFF;
            Message::Commit(v)
        }
        Message::PrePrepare(mut pp) => {
            pp.digest.0[0] ^= 0xFF;
            Message::PrePrepare(pp)
        }
        Message::Checkpoint(cp) => {
            let mut body: CheckpointBody = cp.body;
            body.digest.0[0] ^= 0xFF;
            Message::Checkpoint(Signed {
                signature: core.keys.sign(&body.signing_bytes()),
                body,
                signer: cp.signer,
            })
        }
        other => other,
    };
    core.envelope(msg)
}
