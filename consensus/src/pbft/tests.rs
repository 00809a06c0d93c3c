//! Targeted tests of one PBFT cluster driven synchronously: the normal case for several
//! cluster sizes, exactly-once replies, view change on a silent primary, checkpoints,
//! and every kind of bad input being dropped and counted without a panic.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use crate::application::{Application, HashChainApp};
use crate::client_auth::ClientMacs;
use crate::crypto::{Keyring, Signature};
use crate::exactly_once::{ClientTables, DedupWindow};
use crate::pbft::config::PbftConfig;
use crate::pbft::message::*;
use crate::pbft::{Pbft, PbftAction, PbftEvent, PbftRecord};
use crate::protocol::{Action, Delivery, Event, Executed};
use crate::request::{Batch, Reply, Request};
use crate::state_chunks::{DEFAULT_STATE_CHUNK_BYTES, RestoreOutcome, chunk_list_of};
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time, View};

/// A cluster whose messages are delivered instantly, in order, and whose applications
/// execute deliveries at once.
/// An execution report held back, with its checkpoint's snapshot if any.
type HeldExecution = (Executed, Option<Bytes>);

struct Harness {
    nodes: Vec<Pbft>,
    apps: Vec<HashChainApp>,
    timers: Vec<BTreeMap<PbftTimer, Time>>,
    now: Time,
    inflight: VecDeque<(ReplicaId, ReplicaId, Envelope)>,
    delivered: Vec<Vec<Delivery>>,
    replies: Vec<Reply>,
    silenced: Vec<bool>,
    /// Replicas that receive nothing from their peers (messages to them are lost).
    deaf: Vec<bool>,
    /// The replicas' keyrings, for clients' MAC keys.
    rings: Vec<Keyring>,
    /// State chunks sent by these replicas get a flipped byte (a Byzantine sender's).
    corrupt_chunks_from: Vec<bool>,
    /// While set, state chunks in flight are held here instead of delivered.
    held_chunks: Option<Vec<(ReplicaId, ReplicaId, Envelope)>>,
    /// These replicas' applications report checkpoints without their digest (a
    /// driver bug the replica must survive).
    withhold_digest: Vec<bool>,
    /// Per replica, while set: execution reports (and checkpoint snapshots) held
    /// here instead of fed back — a replica whose execution lags its deliveries.
    held_executions: Vec<Option<Vec<HeldExecution>>>,
}

impl Harness {
    fn new(n: usize, tweak: impl Fn(&mut PbftConfig)) -> Harness {
        let mut cfg = PbftConfig {
            replicas: n,
            checkpoint_interval: 4,
            window: 8,
            max_batch: 4,
            batch_timeout: Duration::from_millis(1),
            ..PbftConfig::default()
        };
        tweak(&mut cfg);
        let rings = Keyring::test_cluster(n, 1);
        let nodes: Vec<Pbft> = rings
            .iter()
            .map(|k| Pbft::new(cfg.clone(), k.clone()).unwrap())
            .collect();
        let mut h = Harness {
            apps: vec![HashChainApp::default(); n],
            timers: vec![BTreeMap::new(); n],
            delivered: vec![Vec::new(); n],
            silenced: vec![false; n],
            deaf: vec![false; n],
            rings,
            nodes,
            now: Time::ZERO,
            inflight: VecDeque::new(),
            replies: Vec::new(),
            corrupt_chunks_from: vec![false; n],
            held_chunks: None,
            withhold_digest: vec![false; n],
            held_executions: vec![None; n],
        };
        for i in 0..n {
            let mut out = Vec::new();
            h.nodes[i].start(h.now, &mut out);
            h.apply(i, out);
        }
        h
    }

    /// Replica `i`'s application state as a chunk list.
    fn snapshot_of(&self, i: usize) -> Bytes {
        chunk_list_of(self.apps[i].freeze().as_ref(), DEFAULT_STATE_CHUNK_BYTES)
    }

    fn feed(&mut self, i: usize, event: PbftEvent) {
        let mut out = Vec::new();
        self.nodes[i].handle(self.now, event, &mut out);
        self.apply(i, out);
    }

    fn apply(&mut self, i: usize, actions: Vec<PbftAction>) {
        let me = ReplicaId(i as u32);
        for a in actions {
            match a {
                Action::Send { to, msg } if !self.silenced[i] => {
                    self.inflight.push_back((me, to, msg))
                }
                Action::Broadcast { msg } if !self.silenced[i] => {
                    for j in 0..self.nodes.len() {
                        if j != i {
                            self.inflight
                                .push_back((me, ReplicaId(j as u32), msg.clone()));
                        }
                    }
                }
                Action::Send { .. } | Action::Broadcast { .. } => {}
                Action::Deliver(d) => {
                    let results = self.apps[i].execute(d.seq, &d.batch);
                    let app_digest =
                        (d.checkpoint && !self.withhold_digest[i]).then(|| self.apps[i].digest());
                    let snapshot = d.checkpoint.then(|| self.snapshot_of(i));
                    let seq = d.seq;
                    self.delivered[i].push(d);
                    let executed = Executed {
                        seq,
                        app_digest,
                        results,
                    };
                    if let Some(held) = &mut self.held_executions[i] {
                        held.push((executed, snapshot));
                        continue;
                    }
                    self.feed(i, Event::Executed(executed));
                    if let Some(snapshot) = snapshot {
                        self.feed(i, Event::Snapshot { seq, snapshot });
                    }
                }
                Action::Reply { reply, .. } => self.replies.push(reply),
                Action::SetTimer { timer, at } => {
                    self.timers[i].insert(timer, at);
                }
                Action::CancelTimer { timer } => {
                    self.timers[i].remove(&timer);
                }
                Action::Persist(_) => {}
                Action::Restore(step) => {
                    let Some(outcome) = step.apply(&mut self.apps[i]) else {
                        continue;
                    };
                    self.feed(i, Event::Restored(outcome));
                    if let RestoreOutcome::Installed { seq, ok: true } = outcome {
                        let snapshot = self.snapshot_of(i);
                        self.feed(i, Event::Snapshot { seq, snapshot });
                    }
                }
            }
        }
    }

    /// Feeds replica `i` the execution reports held so far (it keeps holding later
    /// ones), then settles.
    fn release_executions(&mut self, i: usize) {
        let held = self.held_executions[i]
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for (executed, snapshot) in held {
            let seq = executed.seq;
            self.feed(i, Event::Executed(executed));
            if let Some(snapshot) = snapshot {
                self.feed(i, Event::Snapshot { seq, snapshot });
            }
        }
        self.settle();
    }

    /// Delivers messages until none are in flight.
    fn settle(&mut self) {
        while let Some((from, to, mut msg)) = self.inflight.pop_front() {
            if let Message::StateChunk(c) = &mut msg.msg
                && self.corrupt_chunks_from[from.index()]
            {
                let mut bytes = c.chunk.to_vec();
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0x40;
                }
                c.chunk = Bytes::from(bytes);
            }
            if let (Message::StateChunk(_), Some(held)) = (&msg.msg, &mut self.held_chunks) {
                held.push((from, to, msg));
                continue;
            }
            if !self.deaf[to.index()] {
                self.feed(to.index(), Event::Message { from, msg });
            }
        }
    }

    /// Four replicas that committed twelve requests (two stable checkpoints at K = 4)
    /// while r3 heard nothing: r3 is behind the stable checkpoint and still deaf.
    fn with_r3_left_behind() -> Harness {
        let mut h = Harness::new(4, |_| {});
        h.deaf[3] = true;
        for k in 1..=12 {
            h.request(0, 1, k);
            h.settle();
            h.advance(Duration::from_millis(2));
        }
        h
    }

    /// Delivers the state chunks held so far (holding any later ones while holding is
    /// on), then settles.
    fn release_held_chunks(&mut self) {
        let held = self
            .held_chunks
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for (from, to, msg) in held {
            if !self.deaf[to.index()] {
                self.feed(to.index(), Event::Message { from, msg });
            }
        }
        self.settle();
    }

    /// Moves time forward by `d`, firing due timers and settling after each.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .timers
                .iter()
                .enumerate()
                .flat_map(|(i, t)| t.iter().map(move |(timer, at)| (*at, i, *timer)))
                .filter(|(at, _, _)| *at <= end)
                .min();
            let Some((at, i, timer)) = next else { break };
            self.now = self.now.max(at);
            self.timers[i].remove(&timer);
            self.feed(i, Event::Timer(timer));
            self.settle();
        }
        self.now = end;
    }

    fn request(&mut self, to: usize, client: u32, number: u64) {
        let req = self.signed(client, number, format!("op-{client}-{number}"));
        self.feed(to, Event::ClientRequest(req));
    }

    /// Client `client`'s request `number` with `payload`, authenticated as that client
    /// would (a MAC for every replica).
    fn signed(&self, client: u32, number: u64, payload: impl Into<Bytes>) -> Request {
        let mut req = Request::new(ClientId(client), number, payload.into());
        ClientMacs::from_keyrings(&self.rings, ClientId(client)).sign(&mut req);
        req
    }

    fn inject(&mut self, to: usize, from: u32, msg: Message) {
        self.feed(
            to,
            Event::Message {
                from: ReplicaId(from),
                msg: Envelope::plain(msg),
            },
        );
    }

    fn delivered_keys(&self, i: usize) -> Vec<(ClientId, u64)> {
        self.delivered[i]
            .iter()
            .flat_map(|d| d.batch.requests.iter().map(Request::key))
            .collect()
    }
}

fn batch_of(reqs: &[(u32, u64)]) -> Arc<Batch> {
    Arc::new(Batch::new(
        reqs.iter()
            .map(|(c, n)| Request::new(ClientId(*c), *n, Bytes::from_static(b"p")))
            .collect(),
    ))
}

#[test]
fn normal_case_commits_for_n_4_7_10() {
    for n in [4, 7, 10] {
        let mut h = Harness::new(n, |_| {});
        for k in 1..=10 {
            h.request(0, 1, k);
            h.settle();
        }
        h.advance(Duration::from_millis(5));
        for i in 0..n {
            assert_eq!(h.delivered_keys(i).len(), 10, "n={n} replica {i}");
            assert_eq!(h.delivered_keys(i), h.delivered_keys(0));
        }
        // Every replica replied to every request; f+1 matching replies exist.
        let replies_for_1 = h
            .replies
            .iter()
            .filter(|r| r.results.iter().any(|r| r.number == 1))
            .count();
        assert_eq!(replies_for_1, n);
        assert!(h.nodes.iter().all(|p| p.counters.safety_conflicts == 0));
    }
}

#[test]
fn checkpoints_become_stable_and_the_log_is_collected() {
    let mut h = Harness::new(4, |_| {});
    for k in 1..=12 {
        h.request(0, 1, k);
        h.settle();
        h.advance(Duration::from_millis(2));
    }
    for p in &h.nodes {
        assert!(p.stable.seq >= Seq(8), "stable {:?}", p.stable.seq);
        assert!(
            p.slots
                .keys()
                .all(|s| *s > p.stable.seq.min(p.last_delivered))
        );
        assert!(p.checkpoint_votes.seqs().all(|s| s > p.stable.seq));
        assert!(p.stable.votes.len() >= 3);
    }
}

/// A checkpoint reported executed without its application digest (the digest is
/// required at checkpoints only) is counted and not taken: the replica keeps
/// executing and replying, casts no checkpoint vote it cannot back, and the others'
/// quorum still makes the checkpoint stable.
#[test]
fn a_checkpoint_executed_without_its_digest_is_counted_and_not_taken() {
    let mut h = Harness::new(4, |_| {});
    h.withhold_digest[3] = true;
    for k in 1..=12 {
        h.request(0, 1, k);
        h.settle();
        h.advance(Duration::from_millis(2));
    }
    let r3 = &h.nodes[3];
    assert!(
        r3.counters.unexpected_executions >= 2,
        "{}",
        r3.counters.unexpected_executions
    );
    assert!(r3.own_checkpoints.is_empty(), "no checkpoint of its own");
    assert!(r3.last_executed >= Seq(8), "it kept executing");
    for p in &h.nodes[..3] {
        assert!(p.stable.seq >= Seq(8), "stable {:?}", p.stable.seq);
        assert_eq!(p.counters.unexpected_executions, 0);
        assert!(
            p.stable.votes.iter().all(|v| v.signer != ReplicaId(3)),
            "no vote from the replica without a digest"
        );
    }
    let replies_from_3 = h
        .replies
        .iter()
        .filter(|r| r.replica == ReplicaId(3))
        .count();
    assert!(replies_from_3 >= 12, "it kept replying: {replies_from_3}");
}

#[test]
fn duplicate_request_is_answered_from_the_cache_not_re_executed() {
    let mut h = Harness::new(4, |_| {});
    h.request(0, 5, 1);
    h.settle();
    let replies_before = h.replies.len();
    h.request(0, 5, 1);
    h.request(2, 5, 1);
    h.settle();
    h.advance(Duration::from_millis(10));
    assert_eq!(h.delivered_keys(0), vec![(ClientId(5), 1)]);
    assert_eq!(
        h.replies.len(),
        replies_before + 2,
        "both replicas answered from cache"
    );
    assert_eq!(h.nodes[0].counters.replies_from_cache, 1);
}

/// The payloads replica `i` delivered, in order.
fn delivered_payloads(h: &Harness, i: usize) -> Vec<(ClientId, u64, Bytes)> {
    h.delivered[i]
        .iter()
        .flat_map(|d| d.batch.requests.iter())
        .map(|r| (r.client, r.number, r.payload.clone()))
        .collect()
}

/// Issue 10 item 1: a Byzantine backup forwards requests in client 1's name to the
/// primary — number 1 with its own payload, and number 1,000,000 — with a garbage
/// authenticator. Before MAC authenticators the primary ordered the first (the
/// client's genuine request 1 was then filtered as a duplicate and the client got the
/// forged request's result) and the second slid client 1's window past its genuine
/// requests. Both are refused; the genuine requests run.
#[test]
fn a_backup_cannot_forge_requests_in_a_clients_name() {
    let mut h = Harness::new(4, |_| {});
    let mut forged = h.signed(1, 1, "evil");
    forged.auth.0.iter_mut().for_each(|mac| mac[0] ^= 0xff);
    let mut far = Request::new(ClientId(1), 1_000_000, Bytes::from_static(b"evil"));
    far.auth = forged.auth.clone();
    // Another client's valid authenticator does not help either.
    let mut borrowed = Request::new(ClientId(1), 1, Bytes::from_static(b"evil"));
    borrowed.auth = h.signed(2, 1, "evil").auth;
    h.inject(0, 2, Message::Forward(vec![forged, far, borrowed]));
    h.settle();
    h.advance(Duration::from_millis(5));
    for n in 1..=2 {
        h.request(0, 1, n);
        h.settle();
        h.advance(Duration::from_millis(5));
    }
    let genuine = vec![
        (ClientId(1), 1, Bytes::from("op-1-1")),
        (ClientId(1), 2, Bytes::from("op-1-2")),
    ];
    for i in 0..4 {
        assert_eq!(delivered_payloads(&h, i), genuine, "replica {i}");
    }
    assert_eq!(h.nodes[0].counters.unauthenticated_requests, 2);
    assert_eq!(h.nodes[0].counters.requests_too_far, 1);
    let reply = h
        .replies
        .iter()
        .find(|r| r.replica == ReplicaId(1))
        .unwrap();
    assert_eq!(reply.results[0].number, 1);
    let genuine_1 = Request::new(ClientId(1), 1, Bytes::from("op-1-1")).digest();
    assert_eq!(
        reply.results[0].request, genuine_1,
        "the reply names the request it answers"
    );
}

/// Issue 10 item 1: a Byzantine primary puts a request forged in client 1's name into
/// its pre-prepare. Before, every backup prepared and committed it. Now no backup can
/// authenticate it: each accepts the pre-prepare, withholds its prepare, and nothing
/// commits.
#[test]
fn a_forged_request_in_a_pre_prepare_gets_no_prepare() {
    let mut h = Harness::new(4, |_| {});
    let mut forged = h.signed(1, 1, "evil");
    forged.auth.0.iter_mut().for_each(|mac| mac[0] ^= 0xff);
    let batch = Arc::new(Batch::new(vec![forged]));
    let pp = PrePrepare {
        view: View(0),
        seq: Seq(1),
        digest: batch.digest(),
        batch,
    };
    for i in 1..4 {
        h.inject(i, 0, Message::PrePrepare(pp.clone()));
    }
    h.settle();
    for i in 1..4 {
        assert!(h.delivered[i].is_empty(), "replica {i} delivered a forgery");
        assert_eq!(h.nodes[i].counters.withheld_prepares, 1);
        let slot = &h.nodes[i].slots[&Seq(1)];
        assert!(slot.prepares.is_empty() && !slot.prepared);
        assert!(
            !h.nodes[i].pre_prepared_claims.contains_key(&Seq(1)),
            "no pre-prepared claim for a batch this replica could not authenticate"
        );
    }
}

/// A client whose authenticator is valid for every replica but r3 (a partially valid
/// authenticator): r3 withholds its prepare, yet prepares from the 2f prepares of the
/// others and executes the request like everyone else.
#[test]
fn a_partially_valid_authenticator_prepares_from_the_others() {
    let mut h = Harness::new(4, |_| {});
    let mut req = h.signed(1, 1, "op");
    req.auth.0[3][0] ^= 1;
    h.feed(0, Event::ClientRequest(req));
    h.settle();
    h.advance(Duration::from_millis(5));
    for i in 0..4 {
        assert_eq!(h.delivered_keys(i), vec![(ClientId(1), 1)], "replica {i}");
    }
    assert_eq!(h.nodes[3].counters.withheld_prepares, 1);
    assert!((0..3).all(|i| h.nodes[i].counters.withheld_prepares == 0));
}

#[test]
fn silent_primary_is_replaced_by_a_view_change() {
    let mut h = Harness::new(4, |_| {});
    h.silenced[0] = true;
    // The client times out and sends to every replica.
    for i in 0..4 {
        h.request(i, 1, 1);
    }
    h.settle();
    h.advance(Duration::from_secs(5));
    for i in 1..4 {
        assert_eq!(h.nodes[i].view, View(1), "replica {i}");
        assert!(h.nodes[i].view_active);
        assert_eq!(h.delivered_keys(i), vec![(ClientId(1), 1)]);
    }
}

/// Back-pressure from execution (issue 13 item 1): a primary whose own execution
/// lags orders at most `max_unexecuted` batches beyond what it executed; each
/// execution report lets the next batch go, and everything is ordered in the end.
#[test]
fn the_primary_orders_at_most_max_unexecuted_batches_beyond_its_execution() {
    let mut h = Harness::new(4, |c| c.max_unexecuted = 2);
    h.held_executions[0] = Some(Vec::new());
    // Request 1 goes alone (the pipeline is idle), 2–5 fill the second batch; the
    // rest wait in the queue (within the admission bound of 2 × 4, and each of the
    // three clients within its share of one batch).
    for number in 1..=12 {
        h.request(0, 1 + (number as u32 - 1) % 3, (number - 1) / 3 + 1);
    }
    h.settle();
    h.advance(Duration::from_millis(2));
    assert_eq!(h.nodes[0].counters.batches_proposed, 2);
    assert!(h.nodes[0].counters.proposals_throttled > 0);
    assert_eq!(h.nodes[0].queue.len(), 7);
    assert_eq!(h.nodes[0].counters.refused_busy, 0);
    for _ in 0..8 {
        h.release_executions(0);
        h.advance(Duration::from_millis(2));
    }
    for i in 0..4 {
        assert_eq!(h.delivered_keys(i).len(), 12, "replica {i}");
        assert_eq!(h.nodes[i].counters.view_changes_started, 0);
    }
}

/// Admission control (issue 13 item 1): once the primary's queue holds
/// `max_unexecuted` full batches, a client's further request is refused at once with
/// a busy refusal naming it, not queued; once execution caught up it is ordered.
#[test]
fn the_primary_refuses_client_requests_as_busy_when_its_queue_is_full() {
    let mut h = Harness::new(4, |c| c.max_unexecuted = 1);
    let bound = h.nodes[0].admission_bound() as u64;
    assert_eq!(bound, 4, "max_batch × max_unexecuted");
    h.held_executions[0] = Some(Vec::new());
    // Request 1 is proposed at once; the next `bound` wait, throttled.
    for number in 1..=bound + 1 {
        h.request(0, 1, number);
    }
    h.settle();
    assert!(h.replies.iter().all(|r| r.busy.is_empty()));
    h.request(0, 1, bound + 2);
    assert_eq!(h.nodes[0].counters.refused_busy, 1);
    let refusal = h
        .replies
        .iter()
        .find(|r| !r.busy.is_empty())
        .expect("refused");
    assert_eq!(refusal.busy, vec![bound + 2]);
    assert_eq!(refusal.replica, ReplicaId(0));
    for _ in 0..10 {
        h.release_executions(0);
        h.advance(Duration::from_millis(2));
    }
    assert_eq!(h.delivered_keys(1).len() as u64, bound + 1);
    h.request(0, 1, bound + 2);
    for _ in 0..4 {
        h.release_executions(0);
        h.advance(Duration::from_millis(2));
    }
    assert_eq!(h.delivered_keys(1).len() as u64, bound + 2);
}

/// A new primary queues the requests it awaited as a backup — they were admitted
/// already — instead of passing them through admission control: with more awaited
/// requests than the admission bound, it used to refuse the rest as busy (review of
/// 9f188dc, issue 13 item 1). Every awaited request is ordered, none refused. (Three
/// clients: a backup awaits at most `per_client_bound` of one client's requests.)
#[test]
fn a_new_primary_queues_the_requests_it_awaited_without_refusing_them() {
    let mut h = Harness::new(4, |c| c.max_unexecuted = 1);
    let bound = h.nodes[1].admission_bound() as u64;
    assert_eq!(bound, 4);
    h.silenced[0] = true;
    // Three clients timed out and sent `bound` requests each to every replica (each
    // within its share of a backup's wait list, `per_client_bound`).
    assert_eq!(h.nodes[1].per_client_bound() as u64, bound);
    for client in 1..=3 {
        for number in 1..=bound {
            for i in 0..4 {
                h.request(i, client, number);
            }
        }
    }
    h.settle();
    h.advance(Duration::from_secs(5));
    assert_eq!(h.nodes[1].view, View(1));
    assert!(h.nodes[1].is_primary());
    assert_eq!(
        h.nodes[1].counters.refused_busy, 0,
        "awaited requests refused"
    );
    assert!(
        h.replies
            .iter()
            .all(|r| r.replica != ReplicaId(1) || r.busy.is_empty()),
        "a busy refusal from the new primary"
    );
    for i in 1..4 {
        assert_eq!(h.delivered_keys(i).len() as u64, 3 * bound, "replica {i}");
    }
}

/// A primary held back by `max_unexecuted` whose execution report for a checkpoint
/// comes without the application digest still proposes the next batch at once: the
/// report is counted and the checkpoint skipped, but execution caught up (it used to
/// return before proposing, so the primary stalled until another event).
#[test]
fn a_checkpoint_executed_without_its_digest_still_releases_the_next_batch() {
    let mut h = Harness::new(4, |c| c.max_unexecuted = 1);
    h.withhold_digest[0] = true;
    h.held_executions[0] = Some(Vec::new());
    for number in 1..=3 {
        h.request(0, 1, number);
        h.settle();
        h.release_executions(0);
    }
    assert_eq!(h.nodes[0].last_executed, Seq(3));
    // Seq 4 (a checkpoint at K = 4) is ordered; its execution report is held, so
    // request 5 waits, throttled.
    h.request(0, 1, 4);
    h.settle();
    h.request(0, 1, 5);
    h.settle();
    assert_eq!(h.nodes[0].counters.batches_proposed, 4);
    assert!(h.nodes[0].counters.proposals_throttled > 0);
    h.release_executions(0);
    assert_eq!(h.nodes[0].counters.unexpected_executions, 1);
    assert_eq!(
        h.nodes[0].counters.batches_proposed, 5,
        "the throttled batch goes as soon as the checkpoint executed"
    );
    for i in 1..4 {
        assert_eq!(h.delivered_keys(i).len(), 5, "replica {i}");
    }
}

/// Admission fairness: client 1 floods the primary, whose execution lags; past its
/// share of the queue (a quarter of the admission bound, at least one batch) its
/// requests are refused as busy, and client 2's are still queued and ordered —
/// before, client 1 filled the whole admission bound and client 2 was refused.
#[test]
fn a_flooding_client_cannot_starve_another() {
    let mut h = Harness::new(4, |c| c.max_unexecuted = 4);
    let (bound, share) = (h.nodes[0].admission_bound(), h.nodes[0].per_client_bound());
    assert_eq!((bound, share), (16, 4));
    h.held_executions[0] = Some(Vec::new());
    for number in 1..=40 {
        h.request(0, 1, number);
    }
    h.settle();
    let refused = h.nodes[0].counters.refused_busy;
    assert!(refused > 0);
    assert_eq!(h.nodes[0].counters.refused_busy_client_share, refused);
    for number in 1..=4 {
        h.request(0, 2, number);
    }
    h.settle();
    assert_eq!(
        h.nodes[0].counters.refused_busy, refused,
        "client 2 was refused"
    );
    for _ in 0..20 {
        h.release_executions(0);
        h.advance(Duration::from_millis(2));
    }
    let client_2 = h
        .delivered_keys(1)
        .into_iter()
        .filter(|(c, _)| *c == ClientId(2))
        .count();
    assert_eq!(client_2, 4);
}

/// Issue 10 item 2: a primary that orders other clients' requests but never client
/// 9's is replaced. The backups wait for client 9's request; its timer is not re-armed
/// by the deliveries of client 1's requests.
#[test]
fn primary_censoring_one_client_is_replaced() {
    let mut h = Harness::new(4, |_| {});
    // Client 9 timed out and sent to every backup; the primary drops it (here: the
    // backups' forwards never reach it).
    for i in 1..4 {
        h.request(i, 9, 1);
    }
    h.inflight
        .retain(|(_, to, env)| !(to.index() == 0 && matches!(env.msg, Message::Forward(_))));
    h.settle();
    // Meanwhile a full batch of client 1's requests commits every 200 ms (a fifth of
    // the view timer). The backups see the primary busy, so they extend their timers,
    // but only MAX_VIEW_TIMER_EXTENSIONS times: after four time-outs they replace it.
    for k in 0..25 {
        h.inject(0, 1, Message::Forward(full_batch(&h, 1, k)));
        h.settle();
        h.advance(Duration::from_millis(200));
    }
    for i in 1..4 {
        assert_eq!(
            h.nodes[i].counters.view_timer_extensions,
            u64::from(crate::pbft::replica::MAX_VIEW_TIMER_EXTENSIONS),
            "replica {i}"
        );
        assert!(h.nodes[i].view >= View(1), "replica {i} still in view 0");
        assert!(
            h.delivered_keys(i).contains(&(ClientId(9), 1)),
            "replica {i}: the censored request executed in the new view"
        );
    }
}

/// Client `client`'s requests `4k + 1 ..= 4k + 4`: one full batch at the harness's
/// `max_batch` of 4.
fn full_batch(h: &Harness, client: u32, k: u64) -> Vec<Request> {
    (1..=4)
        .map(|i| h.signed(client, 4 * k + i, format!("op-{client}-{}", 4 * k + i)))
        .collect()
}

/// The backups wait for client 9's request 1 (its forwards never reach the primary);
/// the primary keeps delivering something every 200 ms, but never a full batch nor
/// an awaited request: `progress` does it (one of client 1's requests, or an empty
/// batch). That is no progress for the view timer (issue 13 review): the backups
/// replace the primary after one time-out, without extending their timers.
fn censoring_primary_looking_live(progress: impl Fn(&mut Harness, u64)) -> Harness {
    let mut h = Harness::new(4, |_| {});
    for i in 1..4 {
        h.request(i, 9, 1);
    }
    h.inflight
        .retain(|(_, to, env)| !(to.index() == 0 && matches!(env.msg, Message::Forward(_))));
    h.settle();
    for k in 1..=7 {
        progress(&mut h, k);
        h.settle();
        h.advance(Duration::from_millis(200));
    }
    for i in 1..4 {
        assert_eq!(h.nodes[i].counters.view_timer_extensions, 0, "replica {i}");
        assert!(h.nodes[i].view >= View(1), "replica {i} still in view 0");
        assert!(
            h.delivered_keys(i).contains(&(ClientId(9), 1)),
            "replica {i}: the censored request executed in the new view"
        );
    }
    h
}

#[test]
fn a_trickle_of_other_requests_does_not_extend_the_view_timer() {
    censoring_primary_looking_live(|h, k| h.request(0, 1, k));
}

#[test]
fn empty_batches_do_not_extend_the_view_timer() {
    let h = censoring_primary_looking_live(|h, _| {
        let mut out = Vec::new();
        let now = h.now;
        if h.nodes[0].propose_empty(now, &mut out) {
            h.apply(0, out);
        }
    });
    assert!(
        h.nodes[0].counters.batches_proposed >= 4,
        "empty batches went out"
    );
}

/// A request's view-timer extensions count over the view, not per timer: client 9's
/// requests 1 and 2 wait at the backups; a busy primary (a full batch every 200 ms)
/// earns the three extensions of request 1's timer, then orders request 1 just
/// before the fourth time-out. Request 2 waited through those time-outs too: its
/// timer (restarted when request 1 executed, at 3.4 s) runs out at its wait deadline,
/// four time-outs after it arrived (4 s), and is not extended — the backups replace
/// the primary then, not four time-outs later (the count used to restart with every
/// request, so a primary could order one request per four time-outs; then it was
/// bounded per request but a re-armed timer still started a fresh time-out, 5.4 s).
#[test]
fn view_timer_extensions_are_bounded_per_request_over_the_view() {
    let mut h = Harness::new(4, |_| {});
    for i in 1..4 {
        h.request(i, 9, 1);
        h.request(i, 9, 2);
    }
    h.inflight
        .retain(|(_, to, env)| !(to.index() == 0 && matches!(env.msg, Message::Forward(_))));
    h.settle();
    for k in 0..17 {
        h.inject(0, 1, Message::Forward(full_batch(&h, 1, k)));
        h.settle();
        h.advance(Duration::from_millis(200));
    }
    // 3.4 s: three extensions, the fourth time-out due at 4 s.
    let max = u64::from(crate::pbft::replica::MAX_VIEW_TIMER_EXTENSIONS);
    for i in 1..4 {
        assert_eq!(
            h.nodes[i].counters.view_timer_extensions, max,
            "replica {i}"
        );
        assert_eq!(h.nodes[i].view, View(0));
    }
    h.request(0, 9, 1);
    h.settle();
    for k in 17..28 {
        h.inject(0, 1, Message::Forward(full_batch(&h, 1, k)));
        h.settle();
        h.advance(Duration::from_millis(200));
    }
    // 5.6 s: request 2 arrived at 0 s; its own timer, armed at 3.4 s, fires at its
    // wait deadline of 4 s and is not extended (it used to be extended once, to 5.4 s).
    for i in 1..4 {
        assert_eq!(
            h.nodes[i].counters.view_timer_extensions, max,
            "replica {i}"
        );
        assert!(h.nodes[i].view >= View(1), "replica {i} still in view 0");
        assert!(h.delivered_keys(i).contains(&(ClientId(9), 2)));
    }
}

/// Issue 10 item 3: the future-view buffer checks what it can before buffering and
/// bounds each peer's share. r3 floods r2 with full pre-prepares for views it does not
/// lead and votes outside the window; afterwards a correct primary's pre-prepare for
/// the next view is still buffered, and r3 holds at most its bound.
#[test]
fn future_view_flood_is_refused_and_bounded_per_peer() {
    let mut h = Harness::new(4, |_| {});
    let big = |n: u64| {
        Arc::new(Batch::new(
            (0..4)
                .map(|i| Request::new(ClientId(1), n * 8 + i, Bytes::from(vec![7u8; 1000])))
                .collect(),
        ))
    };
    for n in 0..20_000u64 {
        let view = View(1 + n % 16);
        let batch = big(n);
        let pp = PrePrepare {
            view,
            seq: Seq(1 + n % 8),
            digest: batch.digest(),
            batch,
        };
        h.inject(2, 3, Message::PrePrepare(pp));
        let vote = Vote {
            view: View(1),
            seq: Seq(1_000 + n),
            digest: Digest::default(),
        };
        h.inject(2, 3, Message::Prepare(vote));
    }
    let batch = big(99_999);
    let honest = PrePrepare {
        view: View(1),
        seq: Seq(1),
        digest: batch.digest(),
        batch,
    };
    h.inject(2, 1, Message::PrePrepare(honest));
    let node = &h.nodes[2];
    assert!(
        node.future
            .get(&View(1))
            .is_some_and(|msgs| msgs.iter().any(|(from, _)| *from == ReplicaId(1))),
        "the correct primary's pre-prepare for view 1 was buffered"
    );
    let (max_messages, max_bytes) = node.future_bounds();
    let load = node
        .future_load
        .get(&ReplicaId(3))
        .copied()
        .unwrap_or_default();
    assert!(
        load.messages <= max_messages && load.bytes <= max_bytes,
        "{load:?}"
    );
    let from_r3: usize = node
        .future
        .values()
        .flatten()
        .filter(|(from, _)| *from == ReplicaId(3))
        .count();
    assert!(
        from_r3 <= 8,
        "only view 3 (which r3 leads), in-window: {from_r3}"
    );
}

/// The admissible flood: r3 sends everything the future-view buffer's checks let
/// through — full pre-prepares for every in-window sequence number of the future views
/// it leads, prepares for every other future view, commits for all — far more than
/// its share. The per-peer bound is what stops it (in messages with the default limits,
/// in bytes with large batches and a small in-flight limit), r3 never holds more, and
/// a correct primary's pre-prepare is still buffered afterwards.
#[test]
fn an_admissible_future_view_flood_stops_at_the_per_peer_bound() {
    // Pre-prepares first (views r3 leads), then votes for every future view.
    let flood = |h: &mut Harness, request_bytes: usize| {
        let window = h.nodes[2].cfg.window;
        let mut number = 0u64;
        let views = (1..=16u64).map(View);
        for view in views.clone().filter(|v| v.primary(4) == ReplicaId(3)) {
            for seq in 1..=window {
                let batch = Arc::new(Batch::new(
                    (0..4)
                        .map(|_| {
                            number += 1;
                            Request::new(ClientId(1), number, Bytes::from(vec![7u8; request_bytes]))
                        })
                        .collect(),
                ));
                let pp = PrePrepare {
                    view,
                    seq: Seq(seq),
                    digest: batch.digest(),
                    batch,
                };
                h.inject(2, 3, Message::PrePrepare(pp));
            }
        }
        for view in views {
            for seq in 1..=window {
                let vote = Vote {
                    view,
                    seq: Seq(seq),
                    digest: Digest::default(),
                };
                if view.primary(4) != ReplicaId(3) {
                    h.inject(2, 3, Message::Prepare(vote));
                }
                h.inject(2, 3, Message::Commit(vote));
            }
        }
    };
    let pre_prepares_from_r3 = |h: &Harness| {
        h.nodes[2]
            .future
            .values()
            .flatten()
            .filter(|(from, m)| *from == ReplicaId(3) && matches!(m, Message::PrePrepare(_)))
            .count()
    };
    let honest_still_buffered = |h: &mut Harness| {
        let batch = Arc::new(Batch::new(vec![Request::new(
            ClientId(2),
            1,
            Bytes::from_static(b"ok"),
        )]));
        let pp = PrePrepare {
            view: View(1),
            seq: Seq(1),
            digest: batch.digest(),
            batch,
        };
        h.inject(2, 1, Message::PrePrepare(pp));
        h.nodes[2]
            .future
            .get(&View(1))
            .is_some_and(|msgs| msgs.iter().any(|(from, _)| *from == ReplicaId(1)))
    };
    // Default limits: the message bound binds (16 views x 8 sequence numbers x 2 > 2 x
    // window + in-flight).
    let mut h = Harness::new(4, |_| {});
    let dropped_before = h.nodes[2].counters.dropped_future;
    flood(&mut h, 100);
    let (max_messages, max_bytes) = h.nodes[2].future_bounds();
    let load = h.nodes[2].future_load[&ReplicaId(3)];
    assert_eq!(
        load.messages, max_messages,
        "the flood fills r3's share exactly"
    );
    assert!(load.bytes <= max_bytes, "{load:?}");
    assert!(h.nodes[2].counters.dropped_future > dropped_before);
    assert_eq!(pre_prepares_from_r3(&h), 32, "small pre-prepares all fit");
    assert!(honest_still_buffered(&mut h));
    // Large batches, two in flight: the byte bound binds first.
    let mut h = Harness::new(4, |cfg| {
        cfg.max_in_flight = 2;
        cfg.max_batch_bytes = 64 << 10;
        cfg.max_request_bytes = 16 << 10;
    });
    flood(&mut h, 16 << 10);
    let (max_messages, max_bytes) = h.nodes[2].future_bounds();
    let load = h.nodes[2].future_load[&ReplicaId(3)];
    assert!(load.bytes <= max_bytes, "{load:?} over {max_bytes}");
    assert!(load.messages <= max_messages, "{load:?}");
    assert_eq!(
        pre_prepares_from_r3(&h),
        2,
        "of 32 admissible 64 KiB pre-prepares the byte bound admits two"
    );
    assert!(honest_still_buffered(&mut h));
}

/// The view-change resend gap (`tandem sim --faults mixed --seed 110 --durability
/// wal` before the fix): a replica that moved on to view 3 resends a peer still in view
/// 2's view change the view change it sent for view 2 — also after a restart from its
/// log — never one for a view it did not ask for, and only its newest four.
#[test]
fn a_replica_resends_its_old_view_change_to_a_peer_left_in_that_view() {
    let cfg = PbftConfig {
        replicas: 4,
        ..PbftConfig::default()
    };
    let rings = Keyring::test_cluster(4, 1);
    let mut clock = 0u64;
    // The views of the view changes `node` sends r2 when r2 reports it waits in
    // `peer_view`'s view change.
    let mut resent = |node: &mut Pbft, peer_view: u64| -> Vec<u64> {
        clock += 60;
        let status = Status {
            view: View(peer_view),
            view_active: false,
            stable: Seq(0),
            last_delivered: Seq(0),
        };
        let mut out = Vec::new();
        node.on_status(
            Time::ZERO + Duration::from_secs(clock),
            ReplicaId(2),
            status,
            &mut out,
        );
        let mut views: Vec<u64> = out
            .iter()
            .filter_map(|a| match a {
                Action::Send { to, msg } if *to == ReplicaId(2) => match &msg.msg {
                    Message::ViewChange(vc) => Some(vc.body.new_view.0),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        views.sort();
        views
    };
    let mut node = Pbft::new(cfg.clone(), rings[3].clone()).unwrap();
    let mut out = Vec::new();
    node.start_view_change(Time::ZERO, View(2), &mut out);
    node.start_view_change(Time::ZERO, View(3), &mut out);
    assert_eq!(
        resent(&mut node, 2),
        vec![2, 3],
        "view 2's view change again"
    );
    assert_eq!(
        resent(&mut node, 1),
        vec![3],
        "none for a view it never asked for"
    );
    for v in 4..=7 {
        node.start_view_change(Time::ZERO, View(v), &mut out);
    }
    assert_eq!(
        resent(&mut node, 2),
        vec![7],
        "view 2's fell out of the newest four"
    );
    assert_eq!(resent(&mut node, 4), vec![4, 7]);

    // Restarted from its log, it can still resend them.
    let mut restarted = Pbft::new(cfg, rings[3].clone()).unwrap();
    restarted
        .replay(0, PbftRecord::ViewChange { view: View(2) })
        .unwrap();
    restarted
        .replay(1, PbftRecord::ViewChange { view: View(3) })
        .unwrap();
    restarted.start(Time::ZERO, &mut out);
    assert_eq!(resent(&mut restarted, 2), vec![2, 3]);
}

/// An authenticator is outside the batch digest and the payload limits: a Byzantine
/// primary attaching 5,000 MACs to one small request (80 KB a request, megabytes a
/// batch) is refused like an oversize batch, and so is a forwarded request with such
/// an authenticator; a correct one (one MAC per replica) passes.
#[test]
fn authenticators_of_the_wrong_shape_are_refused() {
    let mut h = Harness::new(4, |_| {});
    let mut request = Request::new(ClientId(1), 1, Bytes::from_static(b"x"));
    request.auth = crate::client_auth::Authenticator(vec![[0u8; 16]; 5000]);
    let batch = Arc::new(Batch::new(vec![request.clone()]));
    let before = h.nodes[1].counters.dropped_oversize_batch;
    h.inject(
        1,
        0,
        Message::PrePrepare(PrePrepare {
            view: View(0),
            seq: Seq(1),
            digest: batch.digest(),
            batch,
        }),
    );
    assert_eq!(h.nodes[1].counters.dropped_oversize_batch, before + 1);
    assert!(!h.nodes[1].slots.contains_key(&Seq(1)));
    let refused = h.nodes[0].counters.unauthenticated_requests;
    h.inject(0, 2, Message::Forward(vec![request]));
    assert_eq!(h.nodes[0].counters.unauthenticated_requests, refused + 1);
}

/// Issue 10 item 4: forged status and fetch messages buy a peer no more than its
/// resend budget. r3 claims to have delivered nothing and asks for every batch and the
/// state, 200 times; r0 sends it at most the budget plus one answer.
#[test]
fn status_and_fetch_flood_is_answered_within_the_resend_budget() {
    let budget = 4096u64;
    let mut h = Harness::new(4, |cfg| cfg.resend_budget_bytes = budget);
    for number in 1..=12 {
        h.request(0, 1, number);
        h.settle();
        h.advance(Duration::from_millis(10));
    }
    h.advance(Duration::from_secs(1));
    assert!(h.nodes[0].last_delivered >= Seq(3));
    let digests: Vec<Digest> = h.nodes[0].batches.keys().copied().collect();
    let status = Status {
        view: View(0),
        view_active: true,
        stable: Seq(0),
        last_delivered: Seq(0),
    };
    h.inflight.clear();
    for _ in 0..200 {
        h.inject(0, 3, Message::Status(status));
        for d in &digests {
            h.inject(0, 3, Message::FetchBatch(*d));
        }
        h.inject(0, 3, Message::FetchState(Seq(0)));
    }
    let to_r3: Vec<usize> = h
        .inflight
        .iter()
        .filter(|(from, to, _)| from.index() == 0 && to.index() == 3)
        .map(|(_, _, env)| encoded_len(&env.msg))
        .collect();
    let sent: usize = to_r3.iter().sum();
    let largest = to_r3.iter().copied().max().unwrap_or(0);
    assert!(!to_r3.is_empty(), "r3 got answers");
    assert!(
        sent as u64 <= budget + largest as u64,
        "{sent} bytes in {} messages",
        to_r3.len()
    );
    assert!(h.nodes[0].counters.resend_budget_exhausted > 0);
}

#[test]
fn pre_prepare_from_a_backup_is_dropped_and_counted() {
    let mut h = Harness::new(4, |_| {});
    let batch = batch_of(&[(1, 1)]);
    let pp = PrePrepare {
        view: View(0),
        seq: Seq(1),
        digest: batch.digest(),
        batch,
    };
    h.inject(2, 1, Message::PrePrepare(pp));
    assert_eq!(h.nodes[2].counters.dropped_wrong_sender, 1);
    assert!(h.nodes[2].slots.is_empty());
}

#[test]
fn pre_prepare_with_a_wrong_digest_is_dropped_and_counted() {
    let mut h = Harness::new(4, |_| {});
    let batch = batch_of(&[(1, 1)]);
    let pp = PrePrepare {
        view: View(0),
        seq: Seq(1),
        digest: Digest([9; 32]),
        batch,
    };
    h.inject(1, 0, Message::PrePrepare(pp));
    assert_eq!(h.nodes[1].counters.dropped_bad_digest, 1);
}

#[test]
fn oversize_batch_is_dropped_and_counted() {
    let mut h = Harness::new(4, |_| {});
    let batch = batch_of(&[(1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]);
    let pp = PrePrepare {
        view: View(0),
        seq: Seq(1),
        digest: batch.digest(),
        batch,
    };
    h.inject(1, 0, Message::PrePrepare(pp));
    assert_eq!(h.nodes[1].counters.dropped_oversize_batch, 1);
}

#[test]
fn equivocating_pre_prepare_is_dropped_and_counted() {
    let mut h = Harness::new(4, |_| {});
    let a = batch_of(&[(1, 1)]);
    let b = batch_of(&[(1, 2)]);
    h.inject(
        1,
        0,
        Message::PrePrepare(PrePrepare {
            view: View(0),
            seq: Seq(1),
            digest: a.digest(),
            batch: a,
        }),
    );
    h.inject(
        1,
        0,
        Message::PrePrepare(PrePrepare {
            view: View(0),
            seq: Seq(1),
            digest: b.digest(),
            batch: b,
        }),
    );
    assert_eq!(h.nodes[1].counters.dropped_equivocation, 1);
}

#[test]
fn messages_outside_the_window_are_dropped_and_counted() {
    let mut h = Harness::new(4, |_| {});
    h.inject(
        1,
        2,
        Message::Prepare(Vote {
            view: View(0),
            seq: Seq(1000),
            digest: Digest([1; 32]),
        }),
    );
    assert_eq!(h.nodes[1].counters.dropped_out_of_window, 1);
}

#[test]
fn forged_checkpoints_are_dropped_and_counted() {
    let mut h = Harness::new(4, |_| {});
    let body = CheckpointBody {
        seq: Seq(4),
        digest: Digest([3; 32]),
    };
    let forged = Signed {
        body,
        signer: ReplicaId(2),
        signature: Signature([7; 64]),
    };
    h.inject(1, 2, Message::Checkpoint(forged.clone()));
    assert_eq!(h.nodes[1].counters.dropped_bad_signature, 1);
    // Signed by replica 2 but sent by replica 3: not a replica's own vote.
    let rings = Keyring::test_cluster(4, 1);
    let genuine = Signed {
        body,
        signer: ReplicaId(2),
        signature: rings[2].sign(&body.signing_bytes()),
    };
    h.inject(1, 3, Message::Checkpoint(genuine));
    assert_eq!(h.nodes[1].counters.dropped_wrong_sender, 1);
    // A certificate made of one vote repeated is not a quorum.
    let cert = StableCert {
        seq: Seq(4),
        digest: body.digest,
        votes: vec![forged.clone(), forged.clone(), forged],
    };
    h.inject(1, 3, Message::CheckpointCert(cert));
    assert_eq!(h.nodes[1].counters.dropped_invalid_checkpoint, 1);
    assert_eq!(h.nodes[1].stable.seq, Seq(0));
}

#[test]
fn forged_view_changes_and_new_views_are_dropped_and_counted() {
    let mut h = Harness::new(4, |_| {});
    let rings = Keyring::test_cluster(4, 1);
    let body = ViewChangeBody {
        new_view: View(1),
        stable: StableCert::default(),
        prepared: vec![],
        pre_prepared: vec![],
    };
    let bad_sig = Signed {
        body: body.clone(),
        signer: ReplicaId(2),
        signature: Signature([1; 64]),
    };
    h.inject(1, 2, Message::ViewChange(Box::new(bad_sig)));
    assert_eq!(h.nodes[1].counters.dropped_invalid_view_change, 1);
    // A claim prepared in a view not below the new view is invalid.
    let mut bogus = body.clone();
    bogus.prepared.push(PreparedClaim {
        seq: Seq(1),
        view: View(1),
        digest: Digest([1; 32]),
    });
    let signed = Signed {
        signature: rings[2].sign(&bogus.signing_bytes()),
        body: bogus,
        signer: ReplicaId(2),
    };
    h.inject(1, 2, Message::ViewChange(Box::new(signed)));
    assert_eq!(h.nodes[1].counters.dropped_invalid_view_change, 2);
    // A new view with too few view changes.
    let vc = Signed {
        signature: rings[2].sign(&body.signing_bytes()),
        body,
        signer: ReplicaId(2),
    };
    let nv_body = NewViewBody {
        view: View(1),
        view_changes: vec![vc],
        checkpoint: Seq(0),
        proposals: vec![],
    };
    let nv = Signed {
        signature: rings[1].sign(&nv_body.signing_bytes()),
        body: nv_body,
        signer: ReplicaId(1),
    };
    h.inject(2, 1, Message::NewView(Arc::new(nv)));
    assert_eq!(h.nodes[2].counters.dropped_invalid_view_change, 1);
    assert_eq!(h.nodes[2].view, View(0));
}

#[test]
fn signed_all_drops_unsigned_messages() {
    let mut h = Harness::new(4, |c| c.signed_all = true);
    h.inject(
        1,
        2,
        Message::Prepare(Vote {
            view: View(0),
            seq: Seq(1),
            digest: Digest([1; 32]),
        }),
    );
    assert_eq!(h.nodes[1].counters.dropped_bad_signature, 1);
    // And still works end to end with signatures.
    h.request(0, 1, 1);
    h.settle();
    assert_eq!(h.delivered_keys(3), vec![(ClientId(1), 1)]);
}

#[test]
fn batches_naming_unknown_clients_are_refused() {
    let mut h = Harness::new(4, |_| {});
    for p in &mut h.nodes {
        p.set_allowed_clients([ClientId(1)]);
    }
    h.request(0, 9, 1);
    assert_eq!(h.nodes[0].counters.dropped_unknown_client, 1);
    let batch = batch_of(&[(1, 1), (77, 1)]);
    let pp = PrePrepare {
        view: View(0),
        seq: Seq(1),
        digest: batch.digest(),
        batch,
    };
    h.inject(1, 0, Message::PrePrepare(pp));
    assert_eq!(h.nodes[1].counters.dropped_oversize_batch, 1);
    h.request(0, 1, 1);
    h.settle();
    assert_eq!(h.delivered_keys(2), vec![(ClientId(1), 1)]);
}

#[test]
fn oversize_request_is_dropped_and_counted() {
    let mut h = Harness::new(4, |c| c.max_request_bytes = 8);
    let req = Request::new(ClientId(1), 1, Bytes::from(vec![0u8; 9]));
    h.feed(0, Event::ClientRequest(req));
    assert_eq!(h.nodes[0].counters.dropped_oversize_request, 1);
}

/// Issue 10 item 5: a status reporting `u64::MAX` delivered made `resend_votes`
/// compute the next sequence number with an overflow.
#[test]
fn status_reporting_the_last_sequence_number_does_not_overflow() {
    let mut h = Harness::new(4, |_| {});
    h.silenced[3] = true; // only its forged statuses reach replica 1
    h.request(0, 1, 1);
    h.settle();
    // The same report twice, a patience apart: the peer looks stuck, so replica 1
    // resends what lies above the reported number.
    for last in [u64::MAX - 1, u64::MAX] {
        for _ in 0..3 {
            let st = Status {
                view: View(0),
                view_active: true,
                stable: Seq(u64::MAX),
                last_delivered: Seq(last),
            };
            h.inject(1, 3, Message::Status(st));
            h.advance(Duration::from_millis(300));
        }
    }
    assert_eq!(h.delivered_keys(1), vec![(ClientId(1), 1)]);
}

/// Issue 10 item 5: request numbers at the top of the range are ordered once and
/// answered from the cache, without overflow in the exactly-once window.
#[test]
fn request_numbers_near_u64_max_never_overflow() {
    // A window of one folds u64::MAX into the low mark at once.
    let mut h = Harness::new(4, |c| c.client_window = 1);
    for number in [u64::MAX, u64::MAX - 1, u64::MAX] {
        for i in 0..4 {
            h.request(i, 1, number);
        }
        h.settle();
        h.advance(Duration::from_millis(5));
    }
    for i in 0..4 {
        let keys = h.delivered_keys(i);
        assert!(keys.len() <= 2, "each number at most once: {keys:?}");
        assert!(h.nodes[i].counters.safety_conflicts == 0);
    }
}

/// Issue 10 item 5: a genuine stable certificate replayed with forged client tables
/// (a low mark at `u64::MAX`) reached `low + 1` before the digest check.
#[test]
fn snapshot_with_forged_tables_at_u64_max_is_refused() {
    let mut h = Harness::with_r3_left_behind();
    let cert = h.nodes[0].stable.clone();
    assert!(cert.seq >= Seq(8));
    h.inject(3, 0, Message::CheckpointCert(cert.clone()));
    h.advance(Duration::from_secs(1)); // replica 3 asks for the state; answers are lost
    assert!(h.nodes[3].transfer.is_some_and(|t| t.asked.is_some()));
    let forged = StateSnapshot {
        cert,
        app_digest: Digest([5; 32]),
        tables: {
            let mut t = ClientTables::default();
            t.delivered
                .insert(ClientId(1), DedupWindow::forged(u64::MAX, vec![]));
            t.delivered
                .insert(ClientId(2), DedupWindow::forged(u64::MAX, vec![u64::MAX]));
            t
        },
    };
    h.inject(3, 0, Message::StateSnapshot(Box::new(forged)));
    assert_eq!(h.nodes[3].counters.dropped_invalid_checkpoint, 1);
    assert!(h.nodes[3].installing.is_none());
}

/// A replica that missed two checkpoints fetches the state header and then the state
/// chunk by chunk; while every chunk it gets is corrupted (a Byzantine sender's),
/// each is refused by its application before it is kept, counted, and the next
/// signer is asked for the same chunk; once chunks arrive intact it installs the
/// state, executes on from it and agrees with the others.
#[test]
fn state_transfer_refuses_bad_chunks_and_installs_good_ones() {
    let mut h = Harness::with_r3_left_behind();
    assert!(h.nodes[0].stable.seq >= Seq(8));
    h.deaf[3] = false;
    h.corrupt_chunks_from = vec![true; 4];
    h.advance(Duration::from_secs(5));
    let refused = h.nodes[3].counters.dropped_invalid_checkpoint;
    assert!(
        refused >= 2,
        "bad chunks refused, from more than one signer: {refused}"
    );
    assert_eq!(
        h.nodes[3].counters.state_transfers, 0,
        "nothing bad installed"
    );
    assert_eq!(h.nodes[3].last_delivered, Seq(0));
    h.corrupt_chunks_from = vec![false; 4];
    h.advance(Duration::from_secs(5));
    assert_eq!(h.nodes[3].counters.state_transfers, 1);
    assert_eq!(h.nodes[3].last_delivered, h.nodes[0].stable.seq);
    for k in 13..=16 {
        h.request(0, 1, k);
        h.settle();
        h.advance(Duration::from_millis(2));
    }
    h.advance(Duration::from_secs(1));
    assert_eq!(h.nodes[3].last_executed, h.nodes[0].last_executed);
    assert_eq!(h.apps[3].digest(), h.apps[0].digest());
    assert_eq!(h.nodes[3].counters.checkpoint_mismatches, 0);
}

/// A signer that served a bad chunk is dropped at once: the restore starts again from
/// chunk 0 with the next signer, and nothing the bad signer sends afterwards is taken
/// (it cannot keep the fetch alive by sending more chunks). A header from a replica
/// that was not asked is not taken either.
#[test]
fn a_signer_that_served_a_bad_chunk_is_dropped_for_the_next() {
    let mut h = Harness::with_r3_left_behind();
    let stable = h.nodes[0].stable.seq;
    assert!(stable >= Seq(8));
    h.deaf[3] = false;
    h.held_chunks = Some(Vec::new());
    h.advance(Duration::from_secs(2));
    let fetch = |h: &Harness| {
        h.nodes[3]
            .transfer
            .and_then(|t| t.fetch)
            .expect("a chunk fetch")
    };
    let first = fetch(&h);
    assert_eq!((first.seq, first.next), (stable, 0));
    // An unsolicited header, from a replica not asked, is dropped.
    let other = (0..3).find(|r| ReplicaId(*r) != first.peer).unwrap();
    let own = h.nodes[other as usize].own_checkpoints[&stable].clone();
    let header = StateSnapshot::of(&h.nodes[other as usize].stable, &own).unwrap();
    let dropped = h.nodes[3].counters.dropped_duplicate;
    h.inject(3, other, Message::StateSnapshot(Box::new(header)));
    assert_eq!(h.nodes[3].counters.dropped_duplicate, dropped + 1);
    // The first peer's chunk 0 arrives corrupted: refused, and the next signer is
    // asked for chunk 0 of a fresh restore.
    let held = h.held_chunks.as_mut().unwrap();
    for (from, _, msg) in held.iter_mut() {
        if let Message::StateChunk(c) = &mut msg.msg
            && *from == first.peer
        {
            c.chunk = Bytes::from_static(b"a bad chunk");
        }
    }
    h.release_held_chunks();
    assert_eq!(h.nodes[3].counters.dropped_invalid_checkpoint, 1);
    let second = fetch(&h);
    assert_ne!(second.peer, first.peer);
    assert_eq!((second.seq, second.next, second.switches), (stable, 0, 1));
    // The dropped peer's chunks are not taken any more, however many it sends.
    for _ in 0..5 {
        let junk = StateChunk {
            seq: stable,
            index: 0,
            chunk: Bytes::from_static(b"junk"),
        };
        h.inject(3, first.peer.0, Message::StateChunk(junk));
    }
    assert_eq!(h.nodes[3].counters.dropped_invalid_checkpoint, 1);
    assert_eq!(fetch(&h).peer, second.peer);
    h.release_held_chunks();
    h.held_chunks = None;
    h.advance(Duration::from_secs(3));
    assert_eq!(h.nodes[3].counters.state_transfers, 1);
    assert_eq!(h.nodes[3].last_delivered, stable);
}

/// After a new stable checkpoint, a replica still holds the state of the one before:
/// a transfer that began before the checkpoint moved can finish.
#[test]
fn the_previous_stable_checkpoint_keeps_its_state() {
    let mut h = Harness::new(4, |_| {});
    for k in 1..=20 {
        h.request(0, 1, k);
        h.settle();
        h.advance(Duration::from_millis(2));
    }
    let stable = h.nodes[0].stable.seq;
    assert!(stable >= Seq(12), "{stable:?}");
    let held: Vec<Seq> = h.nodes[0].own_checkpoints.keys().copied().collect();
    let previous = Seq(stable.0 - 4);
    assert!(
        held.contains(&previous) && held.contains(&stable),
        "{held:?}"
    );
    assert!(held.iter().all(|s| *s >= previous), "{held:?}");
    let fetch = FetchChunk {
        seq: previous,
        index: 0,
    };
    assert!(StateChunk::of(&h.nodes[0].own_checkpoints, fetch).is_some());
}

fn arb_digest() -> impl Strategy<Value = Digest> + Clone {
    prop_oneof![Just(Digest([0; 32])), any::<[u8; 32]>().prop_map(Digest)]
}

/// Small numbers (inside the window) and numbers at the top of the range, where
/// arithmetic on a peer's number would overflow.
fn arb_number() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![0u64..40, (u64::MAX - 3)..=u64::MAX]
}

/// Requests from clients 0..3 with small or huge numbers.
fn arb_requests(max: usize) -> impl Strategy<Value = Vec<(u32, u64)>> + Clone {
    proptest::collection::vec(
        (0u32..3, prop_oneof![0u64..5, (u64::MAX - 2)..=u64::MAX]),
        0..max,
    )
}

/// Client tables as a peer could forge them: any low mark, any numbers above it.
fn arb_tables() -> impl Strategy<Value = ClientTables> {
    proptest::collection::vec(
        (
            0u32..3,
            arb_number(),
            proptest::collection::vec(arb_number(), 0..3),
        ),
        0..3,
    )
    .prop_map(|entries| {
        let mut t = ClientTables::default();
        for (client, low, above) in entries {
            t.delivered
                .insert(ClientId(client), DedupWindow::forged(low, above));
        }
        t
    })
}

fn arb_message() -> impl Strategy<Value = Message> {
    let seq = arb_number().prop_map(Seq);
    let view = prop_oneof![0u64..4, (u64::MAX - 1)..=u64::MAX].prop_map(View);
    let vote = || {
        (view.clone(), seq.clone(), arb_digest()).prop_map(|(view, seq, digest)| Vote {
            view,
            seq,
            digest,
        })
    };
    let sig = any::<u8>().prop_map(|b| Signature([b; 64]));
    prop_oneof![
        vote().prop_map(Message::Prepare),
        vote().prop_map(Message::Commit),
        (view.clone(), seq.clone(), arb_requests(6)).prop_map(|(view, seq, reqs)| {
            let batch = batch_of(&reqs);
            Message::PrePrepare(PrePrepare {
                view,
                seq,
                digest: batch.digest(),
                batch,
            })
        }),
        (seq.clone(), arb_digest(), 0u32..6, sig.clone()).prop_map(
            |(seq, digest, signer, signature)| {
                Message::Checkpoint(Signed {
                    body: CheckpointBody { seq, digest },
                    signer: ReplicaId(signer),
                    signature,
                })
            }
        ),
        (seq.clone(), arb_digest(), sig.clone()).prop_map(|(seq, digest, signature)| {
            let vote = Signed {
                body: CheckpointBody { seq, digest },
                signer: ReplicaId(1),
                signature,
            };
            Message::CheckpointCert(StableCert {
                seq,
                digest,
                votes: vec![vote.clone(), vote.clone(), vote],
            })
        }),
        (view.clone(), seq.clone(), 0u32..6, sig.clone()).prop_map(|(v, s, signer, signature)| {
            let body = ViewChangeBody {
                new_view: v,
                stable: StableCert::default(),
                prepared: vec![PreparedClaim {
                    seq: s,
                    view: View(0),
                    digest: Digest([1; 32]),
                }],
                pre_prepared: vec![],
            };
            Message::ViewChange(Box::new(Signed {
                body,
                signer: ReplicaId(signer),
                signature,
            }))
        }),
        // Few distinct values, so a faulty peer repeats its report, looks stuck, and
        // gets resends computed from its numbers.
        (
            0u64..2,
            prop_oneof![Just(0), Just(u64::MAX)],
            prop_oneof![Just(0), Just(u64::MAX - 1), Just(u64::MAX)],
            any::<bool>()
        )
            .prop_map(|(view, stable, s, active)| Message::Status(Status {
                view: View(view),
                view_active: active,
                stable: Seq(stable),
                last_delivered: Seq(s),
            })),
        arb_digest().prop_map(Message::FetchBatch),
        arb_requests(3).prop_map(|reqs| Message::BatchData(batch_of(&reqs))),
        seq.clone().prop_map(Message::FetchState),
        (seq.clone(), arb_digest(), arb_tables()).prop_map(|(seq, digest, tables)| {
            Message::StateSnapshot(Box::new(StateSnapshot {
                cert: StableCert {
                    seq,
                    digest,
                    votes: vec![],
                },
                app_digest: digest,
                tables,
            }))
        }),
        (seq.clone(), 0..4u64)
            .prop_map(|(seq, index)| Message::FetchChunk(FetchChunk { seq, index })),
        (seq.clone(), 0..4u64).prop_map(|(seq, index)| Message::StateChunk(StateChunk {
            seq,
            index,
            chunk: Bytes::from_static(b"junk"),
        })),
        (seq, arb_requests(3)).prop_map(|(seq, reqs)| {
            let batch = batch_of(&reqs);
            Message::Committed(CommittedBatch {
                seq,
                digest: batch.digest(),
                batch,
            })
        }),
        arb_requests(6).prop_map(|reqs| Message::Forward(batch_of(&reqs).requests.clone())),
    ]
}

/// What a faulty peer or a faulty client can throw at a replica.
#[derive(Clone, Debug)]
enum Junk {
    Peer(Message),
    Client(u32, u64),
}

fn arb_junk() -> impl Strategy<Value = Junk> {
    prop_oneof![
        4 => arb_message().prop_map(Junk::Peer),
        1 => (0u32..3, arb_number()).prop_map(|(c, n)| Junk::Client(c, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// No sequence of messages from a faulty peer (replica 3) or requests from a
    /// faulty client, however malformed and whatever their numbers (up to `u64::MAX`,
    /// with overflow checks on: the test profile has them), panics a replica; the
    /// correct replicas stay safe and keep committing.
    #[test]
    fn arbitrary_messages_never_panic_a_replica(junk in proptest::collection::vec(arb_junk(), 1..60)) {
        // A tiny exactly-once window, so huge request numbers reach the low mark.
        let mut h = Harness::new(4, |c| c.client_window = 2);
        for item in junk {
            for to in 0..3 {
                match &item {
                    Junk::Peer(msg) => h.inject(to, 3, msg.clone()),
                    Junk::Client(c, n) => h.request(to, *c, *n),
                }
            }
            h.settle();
            h.advance(Duration::from_millis(100));
        }
        h.advance(Duration::from_secs(3));
        h.request(h.nodes[1].primary().index(), 9, 1);
        for i in 0..4 {
            h.request(i, 9, 1);
        }
        h.settle();
        h.advance(Duration::from_secs(10));
        for i in 0..3 {
            prop_assert!(h.delivered_keys(i).contains(&(ClientId(9), 1)), "replica {} did not commit", i);
            prop_assert_eq!(h.nodes[i].counters.safety_conflicts, 0);
        }
        let d0: Vec<_> = h.delivered[0].iter().map(|d| (d.seq, d.batch.digest())).collect();
        for i in 1..3 {
            let di: Vec<_> = h.delivered[i].iter().map(|d| (d.seq, d.batch.digest())).collect();
            let common = d0.len().min(di.len());
            prop_assert_eq!(&d0[..common], &di[..common]);
        }
    }
}

/// Regression (review probe a): a request's wait is bounded by time, not only by the
/// extensions counted against it. Client 8's requests 1..=K wait at the backups
/// before client 9's request 1 (R); the primary (never given R: censoring) orders one
/// of client 8's every 900 ms, so each delivery re-arms the timer for the next oldest
/// request. Before the fix every re-arm was a fresh time-out and R waited about 21
/// time-outs; now every backup leaves view 0 within `1 + MAX_VIEW_TIMER_EXTENSIONS`
/// time-outs (4 s) of the requests' arrival at t = 0.
#[test]
fn older_awaited_requests_do_not_delay_a_censored_request_beyond_four_timeouts() {
    const K: u64 = 20;
    let mut h = Harness::new(4, |_| {});
    let timeout = h.nodes[1].view_timeout();
    let start = h.now;
    for i in 1..4 {
        for n in 1..=K {
            h.request(i, 8, n);
        }
        h.request(i, 9, 1);
    }
    h.inflight
        .retain(|(_, to, env)| !(to.index() == 0 && matches!(env.msg, Message::Forward(_))));
    h.settle();
    let mut left_at = [None; 4];
    for n in 1..=K {
        if h.nodes[1].view == View(0) {
            let req = h.signed(8, n, format!("op-8-{n}"));
            h.inject(0, 1, Message::Forward(vec![req]));
            h.settle();
        }
        h.advance(Duration::from_millis(900));
        for (i, left) in left_at.iter_mut().enumerate().skip(1) {
            if left.is_none() && h.nodes[i].view > View(0) {
                *left = Some(h.now);
            }
        }
    }
    eprintln!("backups left view 0 at {left_at:?}; R arrived at {start:?}");
    let bound = start + timeout.saturating_mul(1 + crate::pbft::replica::MAX_VIEW_TIMER_EXTENSIONS);
    for (i, left) in left_at.iter().enumerate().skip(1) {
        let left = left.unwrap_or_else(|| panic!("replica {i} never left view 0"));
        // Time advances in 900 ms steps: the view change started by the deadline.
        assert!(
            left <= bound + Duration::from_millis(900),
            "replica {i} left at {left:?}"
        );
    }
}

/// Regression (review probe b): a flooding client gets only its share
/// (`per_client_bound`) of a backup's wait list, the rest refused as busy (neither
/// awaited nor forwarded). Before, client 8 filled r1–r3's wait lists (256 each),
/// client 9's request was dropped unawaited by every backup (`dropped_queue_full`
/// 30) and a primary censoring client 9 while ordering client 8's requests one by
/// one stayed in view 0. Now client 9's request is awaited everywhere and the
/// censoring primary is replaced.
#[test]
fn a_flooding_client_gets_only_its_share_of_the_backups_wait_lists() {
    let mut h = Harness::new(4, |_| {});
    let cap = h.nodes[1].queue_capacity() as u64;
    let share = h.nodes[1].per_client_bound();
    assert!((share as u64) < cap);
    for i in 1..4 {
        for n in 1..=cap {
            h.request(i, 8, n);
        }
    }
    h.inflight
        .retain(|(_, to, env)| !(to.index() == 0 && matches!(env.msg, Message::Forward(_))));
    h.settle();
    for i in 1..4 {
        assert_eq!(h.nodes[i].awaited.len(), share, "replica {i}");
        let refused = h.nodes[i].counters.refused_busy_awaited_share;
        assert_eq!(refused, cap - share as u64, "replica {i}");
    }
    // Client 9 (correct) resends to all: awaited at every backup.
    for i in 1..4 {
        h.request(i, 9, 1);
    }
    h.inflight
        .retain(|(_, to, env)| !(to.index() == 0 && matches!(env.msg, Message::Forward(_))));
    h.settle();
    for i in 1..4 {
        assert!(
            h.nodes[i].awaited.contains_key(&(ClientId(9), 1)),
            "replica {i}"
        );
    }
    // The primary orders the flooder's awaited requests one by one, never client 9's.
    for round in 1..=30u64 {
        if h.nodes[0].view == View(0) {
            let req = h.signed(8, round, format!("op-8-{round}"));
            h.inject(0, 1, Message::Forward(vec![req]));
            h.settle();
        }
        h.advance(Duration::from_millis(900));
    }
    for i in 1..4 {
        eprintln!(
            "replica {i}: view {:?} dropped_queue_full {} refused_busy_awaited_share {}",
            h.nodes[i].view,
            h.nodes[i].counters.dropped_queue_full,
            h.nodes[i].counters.refused_busy_awaited_share
        );
        assert!(h.nodes[i].view >= View(1), "replica {i}");
        assert_eq!(h.nodes[i].counters.dropped_queue_full, 0, "replica {i}");
    }
}

/// Regression (review probe c): a client flooding a backup instead of the primary
/// gets only its share there; what the backup forwards counts against the client's
/// share at the primary, whose queue stays within the admission bound, and other
/// clients are admitted. Before, the primary queued 47 of the 60 requests (admission
/// bound 16) and refused all of client 2's as busy. A backup forwarding more than
/// its share of one client's requests (Byzantine) is cut off at the primary.
#[test]
fn flooding_through_a_backup_gets_only_the_clients_share() {
    let mut h = Harness::new(4, |c| c.max_unexecuted = 4);
    let (bound, share) = (h.nodes[0].admission_bound(), h.nodes[0].per_client_bound());
    assert_eq!((bound, share), (16, 4));
    h.held_executions[0] = Some(Vec::new());
    for number in 1..=60 {
        h.request(1, 1, number);
    }
    h.settle();
    eprintln!(
        "primary queue {} (admission bound {bound}, share {share}); backup refused {}",
        h.nodes[0].queue.len(),
        h.nodes[1].counters.refused_busy_awaited_share
    );
    assert!(h.nodes[0].queue.len() <= share);
    assert_eq!(
        h.nodes[1].counters.refused_busy_awaited_share,
        60 - share as u64
    );
    for number in 1..=4 {
        h.request(0, 2, number);
    }
    h.settle();
    assert_eq!(h.nodes[0].counters.refused_busy, 0, "client 2 admitted");
    // Replica 2 forwards 24 of client 1's requests it was never sent (Byzantine).
    for first in (100u64..124).step_by(4) {
        let reqs = (first..first + 4)
            .map(|n| h.signed(1, n, format!("op-1-{n}")))
            .collect();
        h.inject(0, 2, Message::Forward(reqs));
        h.settle();
    }
    let from_2 = h.nodes[0]
        .forwarded_counts
        .get(&(ReplicaId(2), ClientId(1)))
        .copied()
        .unwrap_or(0);
    assert!(from_2 <= share, "{from_2} of replica 2's forwards queued");
    assert!(h.nodes[0].counters.dropped_forward_over_share > 0);
    assert!(h.nodes[0].queue.len() <= bound);
}

/// A marks query is answered with the client's row of the replicated exactly-once
/// table — what a new run under the key numbers past — also after the reply cache is
/// gone (a restart empties it, so stale-number notices no longer witness anything):
/// low mark 3, high mark 5, the run 5..=5 done above the low mark. At most one answer
/// per client per `MARKS_QUERY_INTERVAL`; a client outside the cluster gets none.
#[test]
fn a_marks_query_is_answered_from_the_replicated_table_and_rate_bounded() {
    use crate::exactly_once::MARKS_QUERY_INTERVAL;
    use crate::request::ClientMarks;
    let mut h = Harness::new(4, |_| {});
    for k in [1, 2, 3, 5] {
        h.request(0, 5, k);
        h.settle();
    }
    h.advance(Duration::from_millis(5));
    assert_eq!(h.delivered_keys(1).len(), 4);
    h.nodes[1].reply_cache.clear();
    h.replies.clear();
    h.feed(1, Event::MarksQuery(ClientId(5)));
    let want = ClientMarks {
        low: 3,
        high: 5,
        runs: vec![(5, 5)],
        truncated: false,
    };
    assert_eq!(h.replies.len(), 1);
    assert_eq!(h.replies[0].marks.as_ref(), Some(&want));
    assert_eq!(
        (h.replies[0].replica, h.replies[0].client),
        (ReplicaId(1), ClientId(5))
    );
    assert!(h.replies[0].results.is_empty() && h.replies[0].stale.is_empty());
    h.feed(1, Event::MarksQuery(ClientId(5)));
    assert_eq!(h.replies.len(), 1, "answered once per interval");
    assert_eq!(h.nodes[1].counters.marks_refused, 1);
    h.feed(1, Event::MarksQuery(ClientId(9)));
    assert_eq!(
        h.replies.last().and_then(|r| r.marks.clone()),
        Some(ClientMarks::default()),
        "a client without a row: nothing done"
    );
    h.advance(MARKS_QUERY_INTERVAL);
    h.feed(1, Event::MarksQuery(ClientId(5)));
    assert_eq!(h.replies.last().and_then(|r| r.marks.as_ref()), Some(&want));
    assert_eq!(h.nodes[1].counters.marks_answered, 3);
    h.nodes[1].set_allowed_clients([ClientId(5)]);
    h.advance(MARKS_QUERY_INTERVAL);
    let before = h.replies.len();
    h.feed(1, Event::MarksQuery(ClientId(9)));
    assert_eq!(h.replies.len(), before, "outside the cluster: dropped");
    assert_eq!(h.nodes[1].counters.marks_refused, 2);
}
