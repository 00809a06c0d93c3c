//! A synchronous harness for HotStuff replicas: messages delivered in FIFO order,
//! timers fired by advancing a virtual clock, executions reported at once. Tests the
//! normal case at n = 4, 7, 10 (2- and 3-chain), leader rotation, a silent leader
//! (timeouts → TC → next round), the durable records, and that bad input is dropped
//! and counted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::application::{Application, HashChainApp};
use crate::client_auth::ClientMacs;
use crate::crypto::{Keyring, Signed, SignedBody};
use crate::hotstuff::block::Block;
use crate::hotstuff::leaders::LeaderElection;
use crate::hotstuff::message::{Envelope, HotStuffTimer, Message, Proposal};
use crate::hotstuff::qc::{Qc, TimeoutBody, TimeoutMsg, VoteBody};
use crate::hotstuff::{HotStuffParams, HotStuffRecord, HotStuffReplica};
use crate::params::{CommonParams, ProtocolParams};
use crate::protocol::{Action, Event, Executed, Protocol};
use crate::request::{Batch, Reply, Request};
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time, View};

type Act = Action<Envelope, HotStuffTimer, HotStuffRecord>;

struct Cluster {
    replicas: Vec<HotStuffReplica>,
    keys: Vec<Keyring>,
    apps: Vec<HashChainApp>,
    queue: VecDeque<(usize, usize, Envelope)>,
    executions: VecDeque<(usize, Executed)>,
    timers: Vec<BTreeMap<HotStuffTimer, Time>>,
    now: Time,
    delivered: Vec<Vec<(Seq, Digest, View)>>,
    replies: Vec<Reply>,
    logs: Vec<Vec<HotStuffRecord>>,
    /// Replicas whose messages are dropped (silent).
    silent: BTreeSet<usize>,
    /// Per replica: whether every vote and timeout it sent (to one peer or to all)
    /// left after the record it depends on (`Voted` of that block and round,
    /// `TimedOut` of that round) was persisted.
    persisted_before_vote: Vec<bool>,
    /// Every proposal broadcast: its sender and block.
    proposals: Vec<(usize, Arc<Block>)>,
    /// The parameters every replica was built with (for restarts).
    common: CommonParams,
    own: HotStuffParams,
    /// Checkpoint states the applications cut, to hand back as `Event::Snapshot`.
    snapshots: VecDeque<(usize, Seq, Bytes)>,
    /// Per replica: the snapshot of its log's compaction point, if it compacted.
    disk_snapshots: Vec<Option<(Seq, Digest, Bytes)>>,
    /// These replicas' applications report checkpoints without their digest.
    withhold_digest: BTreeSet<usize>,
    /// These replicas' execution reports (and checkpoint states) are held in
    /// `held`, not fed back: replicas whose execution lags their deliveries.
    hold_executions: BTreeSet<usize>,
    held: Vec<Event<Envelope, HotStuffTimer>>,
    held_for: Vec<usize>,
}

impl Cluster {
    fn new(n: usize, chain_length: u8) -> Cluster {
        Cluster::with_election(n, chain_length, LeaderElection::RoundRobin)
    }

    fn with_election(n: usize, chain_length: u8, leader_election: LeaderElection) -> Cluster {
        Cluster::with_params(n, chain_length, leader_election, |_| {})
    }

    /// As [`Cluster::with_election`], the common parameters changed by `tweak`.
    fn with_params(
        n: usize,
        chain_length: u8,
        leader_election: LeaderElection,
        tweak: impl Fn(&mut CommonParams),
    ) -> Cluster {
        let mut common = CommonParams {
            replicas: n,
            max_batch: 4,
            checkpoint_interval: 4,
            ..CommonParams::default()
        };
        tweak(&mut common);
        let own = HotStuffParams {
            round_timeout: Duration::from_millis(100),
            max_round_timeout: Duration::from_millis(800),
            chain_length,
            leader_election,
            ..HotStuffParams::default()
        };
        let keys = Keyring::test_cluster(n, 9);
        let replicas = keys
            .iter()
            .map(|k| HotStuffReplica::build(&common, &own, k.clone(), None).unwrap())
            .collect();
        let mut c = Cluster {
            replicas,
            keys,
            apps: (0..n).map(|_| HashChainApp::default()).collect(),
            queue: VecDeque::new(),
            executions: VecDeque::new(),
            timers: vec![BTreeMap::new(); n],
            now: Time::ZERO,
            delivered: vec![Vec::new(); n],
            replies: Vec::new(),
            logs: vec![Vec::new(); n],
            silent: BTreeSet::new(),
            persisted_before_vote: vec![true; n],
            proposals: Vec::new(),
            common,
            own,
            snapshots: VecDeque::new(),
            disk_snapshots: vec![None; n],
            withhold_digest: BTreeSet::new(),
            hold_executions: BTreeSet::new(),
            held: Vec::new(),
            held_for: Vec::new(),
        };
        for r in 0..n {
            let mut out = Vec::new();
            c.replicas[r].start(c.now, &mut out);
            c.apply(r, out);
        }
        c
    }

    fn n(&self) -> usize {
        self.replicas.len()
    }

    /// Replica `r` crashes and restarts from its log: its application restarts from
    /// the log's snapshot (or genesis), a fresh replica replays every record it
    /// persisted, then starts (its timers and unsent messages are lost) and gets the
    /// snapshot back as its own checkpoint's state. What it delivered above the
    /// snapshot is forgotten: it delivers it again.
    fn restart_from_log(&mut self, r: usize) {
        let mut fresh =
            HotStuffReplica::build(&self.common, &self.own, self.keys[r].clone(), None).unwrap();
        let mut app = HashChainApp::default();
        let snapshot = self.disk_snapshots[r].clone();
        if let Some((_, digest, bytes)) = &snapshot {
            assert!(crate::state_chunks::restore_from_chunk_list(
                &mut app, bytes, digest
            ));
        }
        for (i, rec) in self.logs[r].clone().into_iter().enumerate() {
            fresh.recover(i as u64, rec).unwrap();
        }
        self.apps[r] = app;
        let at = snapshot.as_ref().map_or(0, |(seq, _, _)| seq.0 as usize);
        self.delivered[r].truncate(at);
        self.executions.retain(|(i, _)| *i != r);
        self.snapshots.retain(|(i, _, _)| *i != r);
        self.queue.retain(|(_, to, _)| *to != r);
        self.replicas[r] = fresh;
        self.timers[r].clear();
        let mut out = Vec::new();
        self.replicas[r].start(self.now, &mut out);
        self.apply(r, out);
        if let Some((seq, _, bytes)) = snapshot {
            self.feed(
                r,
                Event::Snapshot {
                    seq,
                    snapshot: bytes,
                },
            );
        }
    }

    /// Replica `r`'s driver compacts its log at the protocol's compaction point (the
    /// snapshot and the base record replace every record); returns the point's seq.
    fn compact(&mut self, r: usize) -> Option<Seq> {
        let cp = self.replicas[r].durable_checkpoint()?;
        self.disk_snapshots[r] = Some((cp.seq, cp.app_digest, cp.snapshot));
        self.logs[r] = vec![cp.base];
        Some(cp.seq)
    }

    /// Whether replica `r` persisted what `msg` depends on (a vote: the `Voted`
    /// record of its block and round; a timeout: the `TimedOut` record of its round).
    fn persisted_for(&self, r: usize, msg: &Message) -> bool {
        let log = self.logs[r].iter().rev();
        match msg {
            Message::Vote(v) => log.clone().any(|rec| {
                matches!(rec, HotStuffRecord::Voted(b)
                    if b.digest() == v.body.block && b.round == v.body.round)
            }),
            Message::Timeout(t) => log.clone().any(|rec| {
                matches!(rec, HotStuffRecord::TimedOut { round, .. }
                    if *round == t.timeout.body.round)
            }),
            // A proposal: the leader's vote for it (a restart then knows it proposed).
            Message::Proposal(p) => log.clone().any(
                |rec| matches!(rec, HotStuffRecord::Voted(b) if b.digest() == p.block.digest()),
            ),
            _ => true,
        }
    }

    fn apply(&mut self, r: usize, out: Vec<Act>) {
        for a in out {
            match a {
                Action::Send { to, msg } => {
                    if !self.persisted_for(r, &msg.msg) {
                        self.persisted_before_vote[r] = false;
                    }
                    if !self.silent.contains(&r) {
                        self.queue.push_back((r, to.index(), msg));
                    }
                }
                Action::Broadcast { msg } => {
                    if !self.persisted_for(r, &msg.msg) {
                        self.persisted_before_vote[r] = false;
                    }
                    if let Message::Proposal(p) = &msg.msg {
                        self.proposals.push((r, p.block.clone()));
                    }
                    if !self.silent.contains(&r) {
                        for to in (0..self.n()).filter(|t| *t != r) {
                            self.queue.push_back((r, to, msg.clone()));
                        }
                    }
                }
                Action::Deliver(d) => {
                    let results = self.apps[r].execute(d.seq, &d.batch);
                    let app_digest = (d.checkpoint && !self.withhold_digest.contains(&r))
                        .then(|| self.apps[r].digest());
                    if d.checkpoint {
                        let frozen = self.apps[r].freeze();
                        let list = crate::state_chunks::chunk_list_of(
                            frozen.as_ref(),
                            crate::state_chunks::DEFAULT_STATE_CHUNK_BYTES,
                        );
                        self.snapshots.push_back((r, d.seq, list));
                    }
                    self.delivered[r].push((d.seq, d.batch.digest(), d.view));
                    self.executions.push_back((
                        r,
                        Executed {
                            seq: d.seq,
                            app_digest,
                            results,
                        },
                    ));
                }
                Action::Reply { reply, .. } => self.replies.push(reply),
                Action::SetTimer { timer, at } => {
                    self.timers[r].insert(timer, at);
                }
                Action::CancelTimer { timer } => {
                    self.timers[r].remove(&timer);
                }
                Action::Restore(_) => {}
                Action::Persist(rec) => self.logs[r].push(rec),
            }
        }
    }

    fn feed(&mut self, r: usize, event: Event<Envelope, HotStuffTimer>) {
        let mut out = Vec::new();
        self.replicas[r].handle(self.now, event, &mut out);
        self.apply(r, out);
    }

    fn request(&mut self, to: usize, client: u32, number: u64) {
        let mut req = Request::new(
            ClientId(client),
            number,
            Bytes::from(format!("op-{client}-{number}")),
        );
        ClientMacs::from_keyrings(&self.keys, ClientId(client)).sign(&mut req);
        self.feed(to, Event::ClientRequest(req));
    }

    /// Delivers every queued message and execution report.
    fn settle(&mut self) {
        self.settle_with(|_, _, _| true);
    }

    /// As [`Cluster::settle`], passing each message through `keep` first (which may
    /// rewrite it, or drop it by returning false).
    fn settle_with(&mut self, mut keep: impl FnMut(usize, usize, &mut Envelope) -> bool) {
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 1_000_000, "no quiescence");
            if let Some((r, ex)) = self.executions.pop_front() {
                if self.hold_executions.contains(&r) {
                    self.held.push(Event::Executed(ex));
                    self.held_for.push(r);
                } else {
                    self.feed(r, Event::Executed(ex));
                }
                continue;
            }
            if let Some((r, seq, snapshot)) = self.snapshots.pop_front() {
                if self.hold_executions.contains(&r) {
                    self.held.push(Event::Snapshot { seq, snapshot });
                    self.held_for.push(r);
                } else {
                    self.feed(r, Event::Snapshot { seq, snapshot });
                }
                continue;
            }
            let Some((from, to, mut msg)) = self.queue.pop_front() else {
                break;
            };
            if !keep(from, to, &mut msg) {
                continue;
            }
            self.feed(
                to,
                Event::Message {
                    from: ReplicaId(from as u32),
                    msg,
                },
            );
        }
    }

    /// Stops holding execution reports: feeds the held ones, in order, then settles.
    fn release_executions(&mut self) {
        self.hold_executions.clear();
        let held = std::mem::take(&mut self.held);
        let held_for = std::mem::take(&mut self.held_for);
        for (r, event) in held_for.into_iter().zip(held) {
            self.feed(r, event);
        }
        self.settle();
    }

    /// Fires the earliest timer other than the status timer (or returns false).
    fn fire_next_timer(&mut self) -> bool {
        let next = (0..self.n())
            .flat_map(|r| {
                self.timers[r]
                    .iter()
                    .filter(|(t, _)| **t != HotStuffTimer::Status)
                    .map(move |(t, at)| (*at, r, *t))
            })
            .min();
        let Some((at, r, timer)) = next else {
            return false;
        };
        self.now = self.now.max(at);
        self.timers[r].remove(&timer);
        self.feed(r, Event::Timer(timer));
        true
    }

    fn round(&self, r: usize) -> View {
        self.replicas[r].core().round()
    }

    fn assert_agreement(&self, expect_at_least: usize) {
        let longest = self.delivered.iter().map(Vec::len).max().unwrap();
        assert!(longest >= expect_at_least, "only {longest} deliveries");
        for (r, d) in self.delivered.iter().enumerate() {
            for (i, (seq, digest, _)) in d.iter().enumerate() {
                assert_eq!(*seq, Seq(i as u64 + 1), "replica {r}: gap-free by height");
                for other in &self.delivered {
                    if let Some((_, od, _)) = other.get(i) {
                        assert_eq!(od, digest, "replicas disagree at {seq}");
                    }
                }
            }
        }
    }
}

/// The `i`-th request (from 1) of a load spread round-robin over clients 1–4: its
/// client and that client's request number.
fn spread(i: u64) -> (u32, u64) {
    (1 + ((i - 1) % 4) as u32, (i - 1) / 4 + 1)
}

fn committed_requests(c: &Cluster, r: usize) -> usize {
    c.replicas[r].common_counters().requests_delivered as usize
}

#[test]
fn commits_on_a_two_chain_at_n_4_7_10() {
    for n in [4, 7, 10] {
        let mut c = Cluster::new(n, 2);
        for i in 1..=20 {
            // Clients send to the next leaders; any replica queues and proposes.
            c.request(1, 1, i);
            c.request(2, 1, i);
            c.settle();
        }
        c.settle();
        for r in 0..n {
            assert_eq!(committed_requests(&c, r), 20, "n={n} replica {r}");
            assert_eq!(c.replicas[r].common_counters().conflicting_commits, 0);
        }
        c.assert_agreement(1);
        assert!(c.replies.len() >= 20 * n / 2);
        assert!(c.persisted_before_vote.iter().all(|ok| *ok));
        // Idle again: no replica keeps a round timer armed.
        assert!(
            c.timers
                .iter()
                .all(|t| !t.contains_key(&HotStuffTimer::Round))
        );
    }
}

/// A checkpoint reported executed without its application digest is counted and
/// not taken; the replica keeps committing and replying, and the other three's
/// quorum makes the checkpoint stable without its vote.
#[test]
fn a_checkpoint_executed_without_its_digest_is_counted_and_not_taken() {
    let mut c = Cluster::new(4, 2);
    c.withhold_digest.insert(3);
    for i in 1..=20 {
        c.request(1, 1, i);
        c.request(2, 1, i);
        c.settle();
    }
    c.settle();
    let r3 = c.replicas[3].core();
    assert!(
        r3.counters().unexpected_executions >= 2,
        "{}",
        r3.counters().unexpected_executions
    );
    assert!(r3.own_checkpoints.is_empty(), "no checkpoint of its own");
    assert_eq!(committed_requests(&c, 3), 20, "it kept committing");
    for r in 0..3 {
        assert_eq!(c.replicas[r].core().counters().unexpected_executions, 0);
        let stable = &c.replicas[r].core().stable;
        assert!(stable.seq >= Seq(4), "replica {r}: stable {:?}", stable.seq);
        assert!(stable.votes.iter().all(|v| v.signer != ReplicaId(3)));
    }
    assert!(
        c.replies
            .iter()
            .filter(|r| r.replica == ReplicaId(3))
            .count()
            >= 10
    );
    c.assert_agreement(1);
}

/// A leader held back by `max_unexecuted` whose execution report for a checkpoint
/// comes without the application digest still proposes: the report is counted and
/// the checkpoint skipped, but execution caught up (it used to return before
/// proposing, and with every replica's application withholding digests the chain
/// stalled until a round time-out). No timer fires here.
#[test]
fn a_checkpoint_executed_without_its_digest_still_releases_a_throttled_leader() {
    let mut c = Cluster::with_params(4, 2, LeaderElection::RoundRobin, |p| {
        p.max_unexecuted = 1;
    });
    for r in 0..4 {
        c.withhold_digest.insert(r);
    }
    // Every replica gets every request (one batch at a time, within the admission
    // bound); forwards are dropped, so only a leader's own events (QCs, execution
    // reports) make it propose.
    for i in 1..=24 {
        for r in 0..4 {
            c.request(r, 1, i);
        }
        if i % 4 == 0 {
            c.settle_with(|_, _, env| !matches!(env.msg, Message::Forward(_)));
        }
    }
    for r in 0..4 {
        assert_eq!(committed_requests(&c, r), 24, "replica {r}");
        assert!(c.replicas[r].core().counters().unexpected_executions >= 2);
    }
    assert!(
        c.replicas
            .iter()
            .any(|r| r.core().counters().proposals_throttled > 0)
    );
    c.assert_agreement(1);
}

/// Back-pressure on the voters' side: r0 ignores `max_unexecuted` (built with the
/// largest one) and leads every fourth round with full blocks; r1–r3 execute nothing.
/// Before, they voted for every block r0 proposed and their backlog of delivered,
/// unexecuted blocks carrying requests grew with the load (50 blocks here). Now each
/// stops voting for blocks with requests once its execution lags by
/// 2 × max_unexecuted, so no such block gathers a quorum and the backlog stays within
/// 2 × max_unexecuted + the chain length; once execution catches up, everything
/// commits.
#[test]
fn voters_whose_execution_lags_withhold_votes_from_a_leader_ignoring_back_pressure() {
    let m = 2;
    let mut c = Cluster::with_params(4, 2, LeaderElection::RoundRobin, |p| {
        p.max_unexecuted = m;
    });
    let reckless = CommonParams {
        max_unexecuted: 1 << 20,
        ..c.common.clone()
    };
    c.replicas[0] = HotStuffReplica::build(&reckless, &c.own, c.keys[0].clone(), None).unwrap();
    let mut out = Vec::new();
    c.replicas[0].start(c.now, &mut out);
    c.apply(0, out);
    for r in 1..4 {
        c.hold_executions.insert(r);
    }
    // Four clients, 50 requests each, queued at r0 (within its per-client share).
    for number in 1..=50 {
        for client in 1..=4 {
            c.request(0, client, number);
        }
    }
    c.settle();
    for _ in 0..3000 {
        if !c.fire_next_timer() {
            break;
        }
        c.settle();
    }
    let payload_backlog = |c: &Cluster, r: usize| {
        c.replicas[r]
            .core()
            .pending_execution
            .values()
            .filter(|p| !p.batch.is_empty())
            .count() as u64
    };
    for r in 1..4 {
        let backlog = payload_backlog(&c, r);
        assert!(
            backlog <= 2 * m + 2,
            "replica {r}: {backlog} blocks with requests wait for execution"
        );
        assert!(c.replicas[r].core().counters().votes_withheld_execution_lag > 0);
    }
    c.release_executions();
    for _ in 0..3000 {
        if (0..4).all(|r| committed_requests(&c, r) == 200) {
            break;
        }
        if !c.fire_next_timer() {
            break;
        }
        c.settle();
    }
    for r in 0..4 {
        assert_eq!(committed_requests(&c, r), 200, "replica {r}");
    }
    c.assert_agreement(1);
}

/// Regression: a vote withheld for execution lag is retried once execution catches up
/// within the round. r3 is silent, so every quorum needs r1; r1's execution reports
/// are held until its lag reaches 2 × max_unexecuted and it withholds its vote for
/// the current round's block, which stalls the round. Releasing r1's reports used to
/// leave the round stalled until it timed out (the vote was never retried); now r1
/// votes at once, through the normal path, and the round's block is certified.
#[test]
fn a_vote_withheld_for_execution_lag_is_cast_once_execution_catches_up() {
    let m = 2;
    let mut c = Cluster::with_params(4, 2, LeaderElection::RoundRobin, |p| {
        p.max_unexecuted = m;
    });
    c.silent.insert(3);
    c.hold_executions.insert(1);
    let mut number = 0;
    let mut stalled = None;
    for _ in 0..400 {
        number += 1;
        for r in 0..3 {
            c.request(r, 1, number);
        }
        c.settle();
        let core = c.replicas[1].core();
        if let Some((digest, _, _)) = &core.lag_withheld
            && core
                .tree
                .get(digest)
                .is_some_and(|b| b.round == core.round())
        {
            stalled = Some((*digest, core.round()));
            break;
        }
        if !c.fire_next_timer() {
            break;
        }
        c.settle();
    }
    let (digest, round) = stalled.expect("r1 withholds a vote for execution lag");
    let votes_before = c.replicas[1].core().counters().votes_sent;
    assert!(c.replicas[1].core().counters().votes_withheld_execution_lag > 0);
    // No timer fires from here on: only r1's execution catching up.
    c.release_executions();
    // r1 voted for the stalled round's block (and, the round certified, for the
    // blocks after it).
    assert!(
        c.replicas[1].core().counters().votes_sent > votes_before,
        "r1 voted"
    );
    assert!(
        c.logs[1]
            .iter()
            .any(|rec| matches!(rec, HotStuffRecord::Voted(b) if b.digest() == digest)),
        "r1 voted for the round's block"
    );
    for r in 0..3 {
        assert!(
            c.replicas[r].core().high_qc.round >= round,
            "replica {r}: the round's block is certified"
        );
    }
}

/// A leader held back by `max_unexecuted` with nothing that needs ordering proposes
/// an empty keep-alive block a quarter of the base round time-out into its round, so
/// the others, who hold requests, do not time the round out: r3's execution lags
/// (its reports are held), the chain is idle in a round r3 leads, and new requests
/// arrive. It used to propose nothing, and every replica timed the round out.
#[test]
fn a_throttled_leader_keeps_the_round_alive_with_an_empty_block() {
    let mut c = Cluster::with_params(4, 2, LeaderElection::RoundRobin, |p| {
        p.max_unexecuted = 2;
    });
    c.hold_executions.insert(3);
    let mut number = 0;
    while c.replicas[3].core().leader(c.round(3)) != ReplicaId(3) || number < 8 {
        number += 1;
        for r in 0..4 {
            c.request(r, 1, number);
        }
        c.settle();
        assert!(number < 100, "never idle in a round r3 leads");
    }
    assert!(c.replicas[3].core().execution_bound(), "r3 is throttled");
    let timeouts = |c: &Cluster| -> u64 {
        (0..4)
            .map(|r| c.replicas[r].core().counters().round_timeouts)
            .sum()
    };
    let before = timeouts(&c);
    let start = committed_requests(&c, 0) as u64;
    for k in 1..=4 {
        for r in 0..4 {
            c.request(r, 2, k);
        }
    }
    c.settle();
    for _ in 0..200 {
        if (0..3).all(|r| committed_requests(&c, r) as u64 >= start + 4) {
            break;
        }
        if !c.fire_next_timer() {
            break;
        }
        c.settle();
    }
    for r in 0..3 {
        assert!(committed_requests(&c, r) as u64 >= start + 4, "replica {r}");
    }
    assert_eq!(timeouts(&c), before, "a round timed out");
    assert!(c.replicas[3].core().counters().keep_alive_blocks > 0);
}

/// (a quarter of the admission bound) they are refused as busy, and client 2's
/// requests are still queued — before, client 1 filled the whole admission bound
/// and every other client was refused.
#[test]
fn a_flooding_client_cannot_starve_another() {
    let mut c = Cluster::new(4, 2);
    let core = c.replicas[3].core();
    let (bound, share) = (
        core.admission_bound() as u64,
        core.per_client_bound() as u64,
    );
    assert_eq!((bound, share), (32, 8));
    for i in 1..=bound {
        c.request(3, 1, i);
    }
    // Queued up to the contended bound (three quarters of the admission bound),
    // then refused.
    let contended = c.replicas[3].core().contended_bound() as u64;
    assert_eq!(contended, bound / 4 * 3);
    let counters = &c.replicas[3].core().counters;
    assert_eq!(counters.refused_busy, bound - contended);
    assert_eq!(counters.refused_busy_client_share, bound - contended);
    for i in 1..=share {
        c.request(3, 2, i);
    }
    assert_eq!(
        c.replicas[3].core().counters.refused_busy,
        bound - contended,
        "client 2 was refused"
    );
    c.settle();
    for r in 0..4 {
        assert_eq!(
            committed_requests(&c, r) as u64,
            contended + share,
            "replica {r}"
        );
    }
}

/// A full queue of requests not yet delivered refuses more without walking itself
/// (an overloaded replica once spent 98% of its time cleaning a full queue for every
/// request it refused); once requests were delivered it takes new ones again. Here
/// `max_unexecuted` makes the admission bound the queue's capacity (by default
/// clients are refused as busy long before:
/// `clients_are_refused_as_busy_beyond_the_admission_bound`).
#[test]
fn a_full_queue_refuses_without_walking_itself() {
    let mut c = Cluster::with_params(4, 2, LeaderElection::RoundRobin, |p| {
        p.max_unexecuted = 64;
    });
    let cap = c.replicas[3].core().queue_capacity() as u64;
    assert_eq!(c.replicas[3].core().admission_bound() as u64, cap);
    // Four clients, each within its share of a quarter of the queue.
    for i in 1..=cap {
        c.request(3, spread(i).0, spread(i).1);
    }
    assert_eq!(c.replicas[3].core().queue.len() as u64, cap);
    for i in 1..=100 {
        c.request(3, 1, cap + i);
    }
    let counters = &c.replicas[3].core().counters;
    assert_eq!(counters.refused_busy, 100);
    assert_eq!(
        counters.queue_compactions, 0,
        "a queue of live requests was walked"
    );
    c.settle();
    assert_eq!(committed_requests(&c, 3) as u64, cap);
    for i in 1..=100 {
        let (client, number) = spread(cap + i);
        c.request(3, client, number);
    }
    let counters = &c.replicas[3].core().counters;
    assert_eq!(
        counters.refused_busy, 100,
        "delivered requests still fill the queue"
    );
    assert_eq!(counters.dropped_queue_full, 0);
    assert!(counters.queue_compactions <= 1);
    c.settle();
    assert_eq!(committed_requests(&c, 3) as u64, cap + 100);
}

/// Admission control: a replica holding `max_unexecuted` full batches of live
/// requests answers further client requests at once with a busy refusal naming them,
/// and queues them again once its queue drained.
#[test]
fn clients_are_refused_as_busy_beyond_the_admission_bound() {
    let mut c = Cluster::new(4, 2);
    let bound = c.replicas[3].core().admission_bound() as u64;
    assert_eq!(bound, 4 * 8, "max_batch × max_unexecuted");
    // Four clients, each within its share of a quarter of the queue.
    for i in 1..=bound {
        c.request(3, spread(i).0, spread(i).1);
    }
    assert!(c.replies.is_empty());
    let (client, number) = spread(bound + 1);
    c.request(3, client, number);
    let counters = &c.replicas[3].core().counters;
    assert_eq!(counters.refused_busy, 1);
    let refusal = c.replies.last().expect("a busy refusal");
    assert_eq!(refusal.busy, vec![number]);
    assert!(refusal.results.is_empty());
    assert_eq!(refusal.replica, ReplicaId(3));
    c.settle();
    assert_eq!(committed_requests(&c, 3) as u64, bound);
    c.request(3, client, number);
    c.settle();
    assert_eq!(committed_requests(&c, 3) as u64, bound + 1);
    assert_eq!(c.replicas[3].core().counters.refused_busy, 1);
}

#[test]
fn three_chain_commits_too() {
    let mut c = Cluster::new(4, 3);
    for i in 1..=10 {
        c.request(1, 7, i);
        c.settle();
    }
    for r in 0..4 {
        assert_eq!(committed_requests(&c, r), 10);
    }
    c.assert_agreement(1);
}

#[test]
fn leaders_rotate_round_by_round() {
    let mut c = Cluster::new(4, 2);
    for i in 1..=12 {
        c.request(i as usize % 4, 2, i);
    }
    c.settle();
    let delivered = &c.delivered[0];
    assert!(delivered.len() >= 3);
    let rounds: Vec<View> = delivered.iter().map(|(_, _, v)| *v).collect();
    assert!(rounds.windows(2).all(|w| w[0] < w[1]), "{rounds:?}");
    // Each committed block was proposed by replica (round mod 4), which signed it as
    // its author.
    let mut authors = BTreeSet::new();
    for (seq, batch, round) in delivered {
        let proposed: Vec<&(usize, Arc<Block>)> = c
            .proposals
            .iter()
            .filter(|(_, b)| b.round == *round && b.height == *seq)
            .collect();
        assert_eq!(proposed.len(), 1, "one proposal of round {round}");
        let (sender, block) = proposed[0];
        assert_eq!(block.batch.digest(), *batch);
        assert_eq!(block.author, ReplicaId(*sender as u32));
        assert_eq!(
            block.author,
            ReplicaId((round.0 % 4) as u32),
            "round {round}"
        );
        authors.insert(block.author);
    }
    assert!(
        authors.len() >= 3,
        "blocks from several leaders: {authors:?}"
    );
    assert!(c.round(0) > View(3));
}

#[test]
fn a_silent_leader_costs_a_timeout_then_a_tc_moves_on() {
    let mut c = Cluster::new(4, 2);
    c.silent.insert(1); // leader of round 1
    c.request(0, 3, 1);
    c.request(2, 3, 1);
    c.request(3, 3, 1);
    c.settle();
    assert_eq!(c.round(0), View(1));
    let mut fired = 0;
    while committed_requests(&c, 0) < 1 {
        assert!(c.fire_next_timer(), "a round timer is armed");
        c.settle();
        fired += 1;
        assert!(fired < 50);
    }
    for r in [0, 2, 3] {
        assert!(c.round(r) >= View(2), "entered the round after the TC");
        assert!(c.replicas[r].core().counters().round_timeouts >= 1);
        assert_eq!(committed_requests(&c, r), 1);
    }
    assert!(c.replicas[0].core().counters().tcs_formed >= 1);
    assert!(c.persisted_before_vote.iter().all(|ok| *ok));
    assert!(
        c.logs[0]
            .iter()
            .any(|r| matches!(r, HotStuffRecord::TimedOut { round, .. } if *round == View(1)))
    );
    c.assert_agreement(1);
}

/// Leader reputation (issue 11): with replica 1 silent, the correct replicas keep
/// committing, compute the same leaders from their committed chains, stop electing
/// the silent one once the window holds history, and drop (and count) a proposal from
/// a replica that is not the elected leader of its round, even round-robin's.
#[test]
fn reputation_skips_a_silent_leader_and_refuses_non_elected_proposals() {
    let mut c = Cluster::with_election(4, 2, LeaderElection::Reputation);
    c.silent.insert(1);
    for i in 1..=60 {
        for r in [0, 2, 3] {
            c.request(r, 5, i);
        }
        c.settle();
        let mut fired = 0;
        while committed_requests(&c, 0) < i as usize {
            assert!(c.fire_next_timer(), "a round timer is armed");
            c.settle();
            fired += 1;
            assert!(fired < 50);
        }
    }
    c.assert_agreement(30);
    let correct = [0, 2, 3];
    let round = c.round(0);
    assert!(round > View(crate::hotstuff::leaders::REPUTATION_LAG + 10));
    // Same committed history, same leaders; the silent replica is (almost) never one.
    // Same committed history, same leaders: every round whose window the replicas'
    // committed chains all cover (up to the lowest tip's round + the lag).
    let lowest_tip = correct
        .iter()
        .map(|r| c.replicas[*r].core().tree.tip().2)
        .min()
        .unwrap();
    let last = lowest_tip.0 + crate::hotstuff::leaders::REPUTATION_LAG;
    assert!(last > round.0 + 10);
    for r in crate::hotstuff::leaders::REPUTATION_LAG..=last {
        let l = c.replicas[0].core().leader(View(r));
        for other in correct {
            assert_eq!(c.replicas[other].core().leader(View(r)), l, "round {r}");
        }
    }
    // Round-robin would have given the silent replica one round in four, each
    // ending in a time-out; reputation only the first rounds (round-robin until the
    // window holds a committed block) and rare residual draws.
    let timeouts = c.replicas[0].core().counters().round_timeouts;
    assert!(
        timeouts <= 12,
        "{timeouts} time-outs in {round} rounds (round-robin: {})",
        round.0 / 4
    );
    // A proposal of the next round from a correct replica that is not its elected
    // leader (round-robin's, if that differs) is dropped and counted, and gets no vote.
    let target = 0;
    let next = c.round(target);
    let elected = c.replicas[target].core().leader(next);
    let intruder = [
        crate::hotstuff::leaders::leader(next, 4),
        ReplicaId(2),
        ReplicaId(3),
    ]
    .into_iter()
    .find(|r| *r != elected && *r != ReplicaId(target as u32) && *r != ReplicaId(1))
    .unwrap();
    let core = c.replicas[target].core();
    let (dropped, votes) = (
        core.counters().dropped_wrong_sender,
        core.counters().votes_sent,
    );
    let block = Arc::new(Block {
        round: next,
        height: core.committed_height().next(),
        author: intruder,
        qc: core.high_qc().clone(),
        batch: Batch::null(),
    });
    c.feed(
        target,
        Event::Message {
            from: intruder,
            msg: Envelope {
                msg: Message::Proposal(Proposal { block, tc: None }),
                signature: None,
            },
        },
    );
    let core = c.replicas[target].core();
    assert_eq!(core.counters().dropped_wrong_sender, dropped + 1);
    assert_eq!(core.counters().votes_sent, votes);
}

/// Issue 10 item 1 in HotStuff: a replica refuses a request forwarded in a client's
/// name without a valid MAC for it, and does not vote for a proposal carrying one; with
/// the client's own authenticator it queues the request and votes.
#[test]
fn forged_requests_are_refused_and_get_no_vote() {
    let mut c = Cluster::new(4, 2);
    let forged = {
        let mut r = Request::new(ClientId(1), 1, Bytes::from_static(b"not the client's"));
        r.auth = crate::client_auth::Authenticator(vec![[0xA5; 16]; 4]);
        r
    };
    let from_r2 = |msg| Event::Message {
        from: ReplicaId(2),
        msg: Envelope {
            msg,
            signature: None,
        },
    };
    c.feed(0, from_r2(Message::Forward(vec![forged.clone()])));
    assert_eq!(c.replicas[0].core().counters().unauthenticated_requests, 1);

    let proposal = |request: Request| {
        Message::Proposal(Proposal {
            block: Arc::new(Block {
                round: View(1),
                height: Seq(1),
                author: ReplicaId(1),
                qc: Qc::genesis(),
                batch: Arc::new(Batch::new(vec![request])),
            }),
            tc: None,
        })
    };
    let from_r1 = |msg| Event::Message {
        from: ReplicaId(1),
        msg: Envelope {
            msg,
            signature: None,
        },
    };
    let votes = c.replicas[0].core().counters().votes_sent;
    c.feed(0, from_r1(proposal(forged)));
    assert_eq!(c.replicas[0].core().counters().withheld_votes, 1);
    assert_eq!(c.replicas[0].core().counters().votes_sent, votes, "no vote");

    let mut genuine = Request::new(ClientId(1), 1, Bytes::from_static(b"pay"));
    ClientMacs::from_keyrings(&c.keys, ClientId(1)).sign(&mut genuine);
    let mut other = Cluster::new(4, 2);
    other.feed(0, from_r1(proposal(genuine)));
    assert_eq!(other.replicas[0].core().counters().withheld_votes, 0);
    assert_eq!(other.replicas[0].core().counters().votes_sent, votes + 1);
}

#[test]
fn bad_input_is_dropped_and_counted() {
    let mut c = Cluster::new(4, 2);
    let from = |r: u32| ReplicaId(r);
    // A proposal from a replica that does not lead round 1.
    let block = Arc::new(Block {
        round: View(1),
        height: Seq(1),
        author: from(2),
        qc: Qc::genesis(),
        batch: Batch::null(),
    });
    let p = Message::Proposal(Proposal {
        block: block.clone(),
        tc: None,
    });
    c.feed(
        0,
        Event::Message {
            from: from(2),
            msg: Envelope {
                msg: p,
                signature: None,
            },
        },
    );
    assert_eq!(c.replicas[0].core().counters().dropped_wrong_sender, 1);
    // A proposal whose QC is forged.
    let mut forged = (*block).clone();
    forged.author = from(1);
    forged.round = View(2);
    forged.qc = Qc {
        block: Digest([7; 32]),
        round: View(1),
        votes: Vec::new(),
    };
    forged.round = View(1);
    forged.qc.round = View(0);
    let p = Message::Proposal(Proposal {
        block: Arc::new(forged),
        tc: None,
    });
    c.feed(
        0,
        Event::Message {
            from: from(1),
            msg: Envelope {
                msg: p,
                signature: None,
            },
        },
    );
    assert_eq!(c.replicas[0].core().counters().dropped_bad_signature, 1);
    // A vote with a bad signature to the leader of round 2 (replica 2).
    let body = VoteBody {
        block: block.digest(),
        round: View(1),
    };
    let mut vote = Signed {
        signature: c.keys[3].sign(&body.signing_bytes()),
        body,
        signer: from(3),
    };
    vote.signature.0[5] ^= 1;
    c.feed(
        2,
        Event::Message {
            from: from(3),
            msg: Envelope {
                msg: Message::Vote(vote.clone()),
                signature: None,
            },
        },
    );
    assert_eq!(c.replicas[2].core().counters().dropped_bad_signature, 1);
    // A vote of round 4 (not the current round) sent to a replica that does not lead
    // round 5.
    vote.body.round = View(4);
    c.feed(
        0,
        Event::Message {
            from: from(3),
            msg: Envelope {
                msg: Message::Vote(vote),
                signature: None,
            },
        },
    );
    assert_eq!(c.replicas[0].core().counters().dropped_wrong_sender, 2);
    // A timeout for a far-future round, and one at u64::MAX.
    for round in [1000, u64::MAX] {
        let body = TimeoutBody {
            round: View(round),
            hqc_round: View(0),
        };
        let t = TimeoutMsg {
            timeout: Signed {
                signature: c.keys[3].sign(&body.signing_bytes()),
                body,
                signer: from(3),
            },
            high_qc: Qc::genesis(),
        };
        c.feed(
            0,
            Event::Message {
                from: from(3),
                msg: Envelope {
                    msg: Message::Timeout(Box::new(t)),
                    signature: None,
                },
            },
        );
    }
    assert_eq!(c.replicas[0].core().counters().dropped_future, 2);
    // Blocks nobody asked for.
    c.feed(
        0,
        Event::Message {
            from: from(3),
            msg: Envelope {
                msg: Message::Blocks(vec![block.clone()]),
                signature: None,
            },
        },
    );
    assert_eq!(c.replicas[0].core().counters().dropped_unrequested, 1);
    // Too many blocks in one answer.
    c.feed(
        0,
        Event::Message {
            from: from(3),
            msg: Envelope {
                msg: Message::Blocks(vec![block; 17]),
                signature: None,
            },
        },
    );
    assert_eq!(c.replicas[0].core().counters().dropped_malformed, 1);
    // An oversize request.
    let big = Request::new(ClientId(1), 1, Bytes::from(vec![0u8; 1 << 20]));
    c.feed(0, Event::ClientRequest(big));
    assert_eq!(c.replicas[0].core().counters().dropped_oversize_request, 1);
    // Nothing of it stopped the cluster.
    c.settle();
    c.request(1, 1, 2);
    c.settle();
    for r in 0..4 {
        assert_eq!(committed_requests(&c, r), 1);
    }
}

#[test]
fn recovery_restores_the_last_voted_round_and_the_highest_qc() {
    let mut c = Cluster::new(4, 2);
    for i in 1..=6 {
        c.request(1, 1, i);
        c.settle();
    }
    let log = c.logs[2].clone();
    assert!(!log.is_empty());
    let voted = c.replicas[2].core().safety.last_voted_round();
    let common = CommonParams {
        replicas: 4,
        max_batch: 4,
        checkpoint_interval: 4,
        ..CommonParams::default()
    };
    let own = HotStuffParams::for_simulator(&common);
    let mut fresh = HotStuffReplica::build(&common, &own, c.keys[2].clone(), None).unwrap();
    for (i, rec) in log.into_iter().enumerate() {
        fresh.recover(i as u64, rec).unwrap();
    }
    assert_eq!(fresh.core().safety.last_voted_round(), voted);
    assert_eq!(
        fresh.core().round(),
        voted.max(fresh.core().high_qc().round.next()),
        "resumes in its last voted round (or after its highest QC), where it votes no more"
    );
    assert!(fresh.core().high_qc().round > View(0));
    let bad = HotStuffRecord::TimedOut {
        round: View(1),
        high_qc: Qc {
            block: Digest([1; 32]),
            round: View(5),
            votes: Vec::new(),
        },
    };
    assert!(fresh.recover(99, bad).is_err());
}

/// Committing on a 1-chain (a block as soon as its QC forms) is unsafe: a replica that
/// saw the QC commits while the others time out and extend an older QC. The
/// simulator's checker must catch it; with the 2-chain rule the same seeds are safe.
#[test]
fn one_chain_commit_is_caught_by_the_simulator() {
    use crate::registry::ProtocolKind;
    use crate::sim::checker::Violation;
    use crate::sim::faults::FaultMix;
    use crate::sim::{SimConfig, run};
    let mut caught = None;
    'search: for mix in [
        FaultMix::Partition,
        FaultMix::Byzantine("twins"),
        FaultMix::Lossy,
    ] {
        for seed in 0..40 {
            let mut cfg = SimConfig::new(ProtocolKind::HotStuff, seed, mix, 4);
            cfg.break_safety = true;
            let report = run(&cfg);
            if report
                .violations
                .iter()
                .any(|v| matches!(v, Violation::Safety(_)))
            {
                caught = Some((cfg, report));
                break 'search;
            }
        }
    }
    let (mut cfg, report) = caught.expect("a 1-chain commit must produce a safety violation");
    assert!(
        report
            .replay_command()
            .contains("--protocol hotstuff --seed")
    );
    cfg.break_safety = false;
    let honest = run(&cfg);
    assert!(
        honest.ok(),
        "the 2-chain rule is safe on the same seed: {:?}",
        honest.violations
    );
}

/// A timeout of `round` signed with `keys`, carrying `high_qc`, as an envelope.
fn timeout_envelope(keys: &Keyring, round: View, high_qc: Qc) -> Envelope {
    let body = TimeoutBody {
        round,
        hqc_round: high_qc.round,
    };
    let t = TimeoutMsg {
        timeout: Signed {
            signature: keys.sign(&body.signing_bytes()),
            body,
            signer: keys.me(),
        },
        high_qc,
    };
    Envelope {
        msg: Message::Timeout(Box::new(t)),
        signature: None,
    }
}

/// Review #1: a copy of a QC the replica verified, with its votes stripped, is not
/// taken for the verified one (a faulty peer would otherwise have it adopted, put into
/// timeouts and TCs, and refused by correct peers that never saw the real QC).
#[test]
fn a_vote_less_copy_of_a_certified_qc_is_refused() {
    let mut c = Cluster::new(4, 2);
    for i in 1..=3 {
        c.request(1, 1, i);
        c.settle();
    }
    let real = c.replicas[0].core().high_qc().clone();
    assert!(real.round > View(0));
    assert_eq!(
        c.replicas[0].core().certified.get(&real.block),
        Some(&real),
        "the replica verified or formed this QC"
    );
    let mut vote_less = real.clone();
    vote_less.votes.clear();
    let round = c.round(0);
    let bad_before = c.replicas[0].core().counters().dropped_bad_signature;
    c.feed(
        0,
        Event::Message {
            from: ReplicaId(3),
            msg: timeout_envelope(&c.keys[3], round, vote_less),
        },
    );
    let core = c.replicas[0].core();
    assert_eq!(core.counters().dropped_bad_signature, bad_before + 1);
    assert_eq!(core.pacemaker.held(), 0, "the timeout was not kept");
    assert_eq!(core.high_qc(), &real);
    // The real QC in the same timeout is still accepted.
    c.feed(
        0,
        Event::Message {
            from: ReplicaId(3),
            msg: timeout_envelope(&c.keys[3], round, real),
        },
    );
    let core = c.replicas[0].core();
    assert_eq!(core.counters().dropped_bad_signature, bad_before + 1);
    assert_eq!(core.pacemaker.held(), 1);
}

/// Review #1: the cache of verified QCs skips the signature checks for the identical
/// QC only (shown by swapping in a keyring that knows none of the signers' keys).
#[test]
fn only_the_identical_verified_qc_skips_the_signature_checks() {
    use crate::hotstuff::qc::tests::qc_of;
    use crate::hotstuff::{HotStuff, HotStuffConfig};
    let keys = Keyring::test_cluster(4, 9);
    let common = CommonParams {
        replicas: 4,
        ..CommonParams::default()
    };
    let own = HotStuffParams::default();
    let mut hs = HotStuff::new(HotStuffConfig::new(&common, &own), keys[0].clone()).unwrap();
    let d = Digest::of(&[b"certified"]);
    let real = qc_of(&keys, d, 3, 3);
    assert!(hs.verify_qc(&real));
    let mut vote_less = real.clone();
    vote_less.votes.clear();
    assert!(!hs.verify_qc(&vote_less));
    let mut forged = real.clone();
    forged.votes[2].signature.0[0] ^= 1;
    assert!(!hs.verify_qc(&forged));
    // With keys that verify nothing, only the cached QC itself still passes.
    hs.keys = Keyring::test_cluster(4, 77)[0].clone();
    assert!(
        hs.verify_qc(&real),
        "the identical QC is not verified again"
    );
    assert!(
        !hs.verify_qc(&qc_of(&keys, d, 3, 4)),
        "another quorum is verified"
    );
    assert!(!hs.verify_qc(&vote_less));
}

/// Review #2: chained HotStuff's lock (the preferred round) survives a restart from the
/// log, so the restarted replica still refuses a proposal that conflicts with it.
#[test]
fn a_restarted_replica_keeps_its_lock() {
    let mut c = Cluster::new(4, 3);
    for i in 1..=6 {
        c.request(1, 1, i);
        c.settle();
    }
    let r = 2;
    let lock = c.replicas[r].core().safety.preferred_round();
    assert!(lock > View(0), "the replica locked");
    c.restart_from_log(r);
    // The restart re-derived its commits from the logged QCs: the committed tip is
    // below the lock (3-chain), and a block extending the tip is a fork of the locked
    // chain.
    let core = c.replicas[r].core();
    let (tip, tip_height, tip_round) = core.tree.tip();
    assert!(
        tip_height > Seq(0) && tip_round < lock,
        "{tip_height} {tip_round} {lock}"
    );
    let tip_qc = c
        .proposals
        .iter()
        .map(|(_, b)| b.qc.clone())
        .find(|qc| qc.block == tip)
        .expect("a proposal carries the tip's QC");
    let mut round = c.round(r).next();
    while crate::hotstuff::leaders::leader(round, 4) == ReplicaId(r as u32) {
        round = round.next();
    }
    let leader = crate::hotstuff::leaders::leader(round, 4);
    c.replicas[r].core_mut().pacemaker.resume(round);
    let block = Arc::new(Block {
        round,
        height: tip_height.next(),
        author: leader,
        qc: tip_qc,
        batch: Batch::null(),
    });
    c.feed(
        r,
        Event::Message {
            from: leader,
            msg: Envelope {
                msg: Message::Proposal(Proposal { block, tc: None }),
                signature: None,
            },
        },
    );
    let core = c.replicas[r].core();
    assert_eq!(core.counters().votes_sent, 0, "no vote against the lock");
    assert_eq!(core.counters().votes_refused, 1);
    assert_eq!(core.safety.preferred_round(), lock, "the lock was restored");
}

/// Review #3: HotStuff names the votes its messages cast, so the simulator's vote
/// ledger sees a replica that votes for two blocks in one round, or votes in a round
/// it timed out in.
#[test]
fn the_vote_ledger_sees_hotstuff_votes_and_timeouts() {
    use crate::sim::votes::VoteLedger;
    let keys = Keyring::test_cluster(4, 9);
    let vote = |block: u8, round: u64| {
        let body = VoteBody {
            block: Digest([block; 32]),
            round: View(round),
        };
        Envelope {
            msg: Message::Vote(Signed {
                signature: keys[1].sign(&body.signing_bytes()),
                body,
                signer: ReplicaId(1),
            }),
            signature: None,
        }
    };
    let cast = |env: &Envelope| HotStuffReplica::vote_of(env).expect("casts a vote");
    let mut ledger = VoteLedger::default();
    assert_eq!(ledger.cast(1, cast(&vote(1, 5))), None);
    assert_eq!(ledger.cast(1, cast(&vote(1, 5))), None, "a resend");
    assert_eq!(ledger.cast(2, cast(&vote(2, 5))), None, "another replica");
    assert!(
        ledger.cast(1, cast(&vote(2, 5))).is_some(),
        "two blocks in round 5"
    );
    assert_eq!(ledger.cast(1, cast(&vote(2, 6))), None);
    // A timeout of round 7: no vote in it, or below it, afterwards.
    let timeout = timeout_envelope(&keys[1], View(7), Qc::genesis());
    assert_eq!(ledger.cast(1, cast(&timeout)), None);
    assert!(ledger.cast(1, cast(&vote(3, 7))).is_some());
    assert_eq!(ledger.cast(1, cast(&vote(3, 8))), None);
    let fetch = Envelope {
        msg: Message::FetchBlock(Digest([0; 32])),
        signature: None,
    };
    assert_eq!(HotStuffReplica::vote_of(&fetch), None);
}

/// Review #3: with the ledger watching HotStuff's votes, runs without faults, with
/// crashes and restarts from disk, partitions (votes resent with timeouts), lossy
/// links and a Twins replica contradict no vote of a correct replica.
#[test]
fn hotstuff_runs_contradict_no_vote() {
    use crate::registry::ProtocolKind;
    use crate::sim::faults::FaultMix;
    use crate::sim::{SimConfig, run};
    for mix in [
        FaultMix::None,
        FaultMix::Crash,
        FaultMix::Partition,
        FaultMix::Lossy,
        FaultMix::Byzantine("twins"),
    ] {
        for seed in 0..3 {
            let mut cfg = SimConfig::new(ProtocolKind::HotStuff, seed, mix, 4);
            cfg.disks = true;
            cfg.storage_faults = false;
            let report = run(&cfg);
            assert!(
                report.ok(),
                "{} seed {seed}: {:?}",
                mix.name(),
                report.violations
            );
        }
    }
}

/// Review #4: replaying a log is no run of failed rounds: a restarted replica's first
/// round time-out is the base one, not the back-off's cap.
#[test]
fn a_restarted_replica_starts_from_the_base_time_out() {
    let mut c = Cluster::new(4, 2);
    for i in 1..=6 {
        c.request(1, 1, i);
        c.settle();
    }
    let r = 2;
    let voted = c.logs[r]
        .iter()
        .filter(|rec| matches!(rec, HotStuffRecord::Voted(_)))
        .count();
    assert!(voted >= 4, "several rounds to replay: {voted}");
    c.restart_from_log(r);
    assert!(c.round(r) >= View(4));
    let base = c.own.round_timeout;
    assert_eq!(c.replicas[r].core().pacemaker.timeout(), base);
    // The first round it waits in is timed with the base time-out.
    c.request(r, 5, 1);
    let at = c.timers[r][&HotStuffTimer::Round];
    assert_eq!(at, c.now + base);
}

/// Whether replica `r` delivered request `number` of `client`.
fn has_delivered(c: &Cluster, r: usize, client: u32, number: u64) -> bool {
    crate::exactly_once::is_delivered(c.replicas[r].delivered_requests(), ClientId(client), number)
}

/// Issue 12: a HotStuff replica compacts its log at a stable checkpoint (snapshot +
/// base record), logs more after it, restarts from base + tail: it stands where it
/// stood (committed height, deliveries, exactly-once tables, safety state), serves
/// its checkpoint's state at once, and goes on committing with the others.
#[test]
fn a_compacted_replica_restarts_from_base_and_tail_and_goes_on_committing() {
    let mut c = Cluster::new(4, 2);
    for i in 1..=10 {
        c.request(1, 1, i);
        c.settle();
    }
    let r = 2;
    assert!(
        c.replicas[r].core().stable.seq >= Seq(4),
        "a stable checkpoint"
    );
    let records_before = c.logs[r].len();
    let seq = c.compact(r).expect("a compaction point");
    assert!(seq >= Seq(4));
    let HotStuffRecord::Base(base) = &c.logs[r][0] else {
        panic!("the compacted log starts with its base");
    };
    assert_eq!(base.checkpoint_block.height, seq);
    assert_eq!(base.stable.seq, seq);
    let committed_above = base.committed.len() as u64;
    assert_eq!(
        seq.0 + committed_above,
        c.replicas[r].core().committed_height().0,
        "the base holds the committed blocks above the checkpoint"
    );
    assert!(
        records_before > 1,
        "{records_before} records replaced by one"
    );
    // A tail after the base: more votes.
    for i in 11..=14 {
        c.request(1, 1, i);
        c.settle();
    }
    assert!(c.logs[r].len() > 1, "records after the base");
    let core = c.replicas[r].core();
    let (height, delivered, voted, hqc) = (
        core.committed_height(),
        core.replica_status().last_delivered,
        core.safety.last_voted_round(),
        core.high_qc().round,
    );
    let table = c.replicas[r].delivered_requests().clone();

    c.restart_from_log(r);
    c.settle();
    let core = c.replicas[r].core();
    assert_eq!(
        core.committed_height(),
        height,
        "commits re-derived from the log"
    );
    assert_eq!(core.replica_status().last_delivered, delivered);
    assert_eq!(c.replicas[r].delivered_requests(), &table);
    assert_eq!(core.safety.last_voted_round(), voted);
    assert_eq!(core.high_qc().round, hqc);
    assert!(core.stable.seq >= seq);
    assert!(
        core.own_checkpoints
            .get(&seq)
            .is_some_and(|own| own.snapshot.is_some()),
        "its own checkpoint is registered with the snapshot, to serve state transfer"
    );
    assert_eq!(
        core.counters().state_transfers,
        0,
        "no state transfer needed"
    );

    // It goes on committing with the others, and compacts again.
    for i in 15..=24 {
        c.request(1, 1, i);
        c.settle();
    }
    for r in 0..4 {
        for i in 1..=24 {
            assert!(has_delivered(&c, r, 1, i), "r{r} lacks request {i}");
        }
        assert_eq!(c.replicas[r].common_counters().conflicting_commits, 0);
    }
    c.assert_agreement(20);
    assert!(c.persisted_before_vote.iter().all(|ok| *ok));
    assert!(c.compact(r).expect("a later compaction point") > seq);
}

/// The whole cluster restarts at once from compacted logs (no replica holds anything
/// in memory): each resumes from its base and tail, and nothing committed is lost.
#[test]
fn the_whole_cluster_restarts_from_compacted_logs() {
    let mut c = Cluster::new(4, 2);
    for i in 1..=10 {
        c.request(1, 3, i);
        c.settle();
    }
    for r in 0..4 {
        c.compact(r).expect("a compaction point");
    }
    for i in 11..=13 {
        c.request(1, 3, i);
        c.settle();
    }
    let heights: Vec<Seq> = (0..4)
        .map(|r| c.replicas[r].core().committed_height())
        .collect();
    for r in 0..4 {
        c.restart_from_log(r);
    }
    c.settle();
    for (r, height) in heights.into_iter().enumerate() {
        assert!(
            c.replicas[r].core().committed_height() >= height,
            "r{r} re-derives the commits it had (its log holds their QCs)"
        );
        for i in 1..=13 {
            assert!(has_delivered(&c, r, 3, i), "r{r} lost request {i}");
        }
    }
    for i in 14..=20 {
        c.request(1, 3, i);
        c.settle();
    }
    for r in 0..4 {
        for i in 1..=20 {
            assert!(has_delivered(&c, r, 3, i), "r{r} lacks request {i}");
        }
    }
    c.assert_agreement(16);
}

/// No compaction point while the replica has not executed its stable checkpoint,
/// holds no state for it, or its own checkpoint digest is not the certified one.
#[test]
fn no_compaction_point_without_an_agreeing_executed_checkpoint() {
    let mut c = Cluster::new(4, 2);
    assert!(
        c.replicas[0].durable_checkpoint().is_none(),
        "nothing stable yet"
    );
    for i in 1..=10 {
        c.request(1, 1, i);
        c.settle();
    }
    assert!(c.replicas[0].durable_checkpoint().is_some());
    let seq = c.replicas[0].core().stable.seq;
    let core = c.replicas[0].core_mut();
    let own = core.own_checkpoints.get_mut(&seq).unwrap();
    let snapshot = own.snapshot.take();
    assert!(
        c.replicas[0].durable_checkpoint().is_none(),
        "no state held"
    );
    let core = c.replicas[0].core_mut();
    let own = core.own_checkpoints.get_mut(&seq).unwrap();
    own.snapshot = snapshot;
    own.digest = Digest([7; 32]);
    assert!(
        c.replicas[0].durable_checkpoint().is_none(),
        "own digest differs from the stable one"
    );
}

/// A base that does not describe one state is refused with a `RecoveryError` naming
/// the record (never a panic): a wrong table, block, certificate, committed chain or
/// history, or a base that is not the first record.
#[test]
fn an_inconsistent_base_is_refused() {
    let mut c = Cluster::new(4, 2);
    let mut i = 0;
    while i < 10 || c.replicas[1].core().committed_height() == c.replicas[1].core().stable.seq {
        i += 1;
        assert!(i < 40);
        c.request(1, 1, i);
        c.settle();
    }
    let Some(cp) = c.replicas[1].durable_checkpoint() else {
        panic!("a compaction point");
    };
    let HotStuffRecord::Base(good) = cp.base else {
        panic!("a base record");
    };
    assert!(
        !good.committed.is_empty(),
        "blocks above the checkpoint to break"
    );
    let replay = |state: &crate::hotstuff::durable::DurableState, index: u64| {
        let mut fresh = HotStuffReplica::build(&c.common, &c.own, c.keys[1].clone(), None).unwrap();
        fresh.recover(index, HotStuffRecord::Base(Box::new(state.clone())))
    };
    assert!(replay(&good, 0).is_ok(), "the good base replays");
    let err = replay(&good, 3).unwrap_err();
    assert_eq!(err.index, 3);

    let mut bad: Vec<(&str, crate::hotstuff::durable::DurableState)> = Vec::new();
    let mut s = (*good).clone();
    s.tables.delivered.clear();
    bad.push(("tables", s));
    let mut s = (*good).clone();
    s.app_digest = Digest([9; 32]);
    bad.push(("app digest", s));
    let mut s = (*good).clone();
    s.checkpoint_block = s.committed[0].clone();
    bad.push(("checkpoint block", s));
    let mut s = (*good).clone();
    s.stable.votes.truncate(1);
    bad.push(("certificate", s));
    let mut s = (*good).clone();
    s.committed.remove(0);
    bad.push(("committed chain gap", s));
    let mut s = (*good).clone();
    s.committed.push(s.checkpoint_block.clone());
    bad.push(("committed chain loop", s));
    let mut s = (*good).clone();
    s.history = crate::hotstuff::block_tree::BlockTree::for_replicas(4)
        .history()
        .clone();
    bad.push(("history", s));
    let mut s = (*good).clone();
    s.high_qc.votes.truncate(1);
    bad.push(("highest QC", s));
    let mut s = (*good).clone();
    s.uncommitted.push(s.checkpoint_block.clone());
    bad.push(("uncommitted below the tip", s));
    for (what, state) in bad {
        let err = replay(&state, 0).expect_err(what);
        assert_eq!(err.index, 0, "{what}");
        assert!(!err.problem.is_empty(), "{what}");
    }
}

/// Review D1: a leader that proposed and voted in its round, crashed and restarted (in
/// that round, its last voted one) proposes no second, different block there when a
/// request arrives; and its proposal left only after the `Voted` record of its vote.
#[test]
fn a_restarted_leader_does_not_propose_twice_in_its_round() {
    let mut c = Cluster::new(4, 2);
    c.request(1, 1, 1);
    c.settle();
    let leader = (0..4)
        .find(|r| crate::hotstuff::leaders::leader(c.round(*r), 4).index() == *r)
        .expect("a replica in a round it leads");
    let round = c.round(leader);
    // The leader proposes and votes, but nothing it sends arrives: it crashes.
    c.silent.insert(leader);
    c.request(leader, 2, 1);
    let first: Vec<Digest> = c
        .proposals
        .iter()
        .filter(|(r, b)| *r == leader && b.round == round)
        .map(|(_, b)| b.digest())
        .collect();
    assert_eq!(first.len(), 1, "the leader proposed in its round");
    assert!(
        c.persisted_before_vote[leader],
        "the proposal left after the Voted record"
    );
    c.restart_from_log(leader);
    c.silent.remove(&leader);
    assert_eq!(c.round(leader), round, "resumes in its last voted round");
    c.request(leader, 3, 1);
    c.settle();
    let in_round: BTreeSet<Digest> = c
        .proposals
        .iter()
        .filter(|(r, b)| *r == leader && b.round == round)
        .map(|(_, b)| b.digest())
        .collect();
    assert_eq!(in_round.len(), 1, "one proposal in round {round}");
    for r in 0..4 {
        assert_eq!(
            c.replicas[r].core().counters().dropped_equivocation,
            0,
            "replica {r}"
        );
    }
}

/// Review D1: the simulator's vote ledger sees a leader's proposals: two different
/// blocks proposed by one replica in one round (across a restart) are a violation, a
/// resend is not; PBFT's pre-prepares were checked already.
#[test]
fn the_vote_ledger_sees_two_proposals_in_a_round() {
    use crate::sim::votes::VoteLedger;
    let proposal = |seed: u8, round: u64| {
        let block = Arc::new(Block {
            round: View(round),
            height: Seq(1),
            author: ReplicaId(1),
            qc: Qc::genesis(),
            batch: Arc::new(Batch::new(vec![Request::new(
                ClientId(1),
                u64::from(seed),
                Bytes::from(vec![seed]),
            )])),
        });
        Envelope {
            msg: Message::Proposal(Proposal { block, tc: None }),
            signature: None,
        }
    };
    let cast = |env: &Envelope| HotStuffReplica::vote_of(env).expect("casts a proposal");
    let mut ledger = VoteLedger::default();
    assert_eq!(ledger.cast(1, cast(&proposal(1, 5))), None);
    assert_eq!(ledger.cast(1, cast(&proposal(1, 5))), None, "a resend");
    assert!(
        ledger.cast(1, cast(&proposal(2, 5))).is_some(),
        "a second block in round 5"
    );
    assert_eq!(ledger.cast(1, cast(&proposal(2, 6))), None);
}

/// Review D2: a peer serves blocks whose embedded QCs carry forged signatures (a
/// block's digest binds its QC's block and round only). The fetching replica commits
/// through them but never logs one: every QC its log holds verifies, and it replays
/// that log. (The harness does not install states, so the restarted replica, behind a
/// checkpoint, is not asked to go on.)
#[test]
fn forged_qcs_in_fetched_blocks_never_reach_the_log() {
    let mut c = Cluster::new(4, 2);
    let r = 3;
    c.request(1, 1, 1);
    c.settle();
    // Replica r hears nothing for a while.
    for i in 2..=3 {
        c.request(1, 1, i);
        c.settle_with(|_, to, _| to != r);
        for _ in 0..50 {
            if has_delivered(&c, 0, 1, i) || !c.fire_next_timer() {
                break;
            }
            c.settle_with(|_, to, _| to != r);
        }
    }
    // Then it catches up, fetching blocks whose QCs' signatures are forged.
    let forge = |_: usize, to: usize, env: &mut Envelope| {
        if to == r
            && let Message::Blocks(blocks) = &mut env.msg
        {
            for b in blocks.iter_mut() {
                let mut forged = (**b).clone();
                if let Some(v) = forged.qc.votes.first_mut() {
                    v.signature.0[0] ^= 0xff;
                    *b = Arc::new(forged);
                }
            }
        }
        true
    };
    for i in 4..=6 {
        c.request(1, 1, i);
        c.settle_with(forge);
        for _ in 0..50 {
            if has_delivered(&c, r, 1, i) || !c.fire_next_timer() {
                break;
            }
            c.settle_with(forge);
        }
    }
    assert!(
        has_delivered(&c, r, 1, 3),
        "caught up through fetched blocks"
    );
    let mut keys = c.keys[0].clone();
    for (i, rec) in c.logs[r].iter().enumerate() {
        let qc = match rec {
            HotStuffRecord::Certified(qc) | HotStuffRecord::TimedOut { high_qc: qc, .. } => qc,
            HotStuffRecord::Voted(b) => &b.qc,
            _ => continue,
        };
        assert!(
            *qc == Qc::genesis() || qc.verify(&mut keys, 3),
            "record {i} holds a QC of round {} that does not verify",
            qc.round
        );
    }
    assert!(c.replicas[r].core().counters().unverified_commit_qcs > 0);
    // It replays its own log (every QC in it verified on the way).
    c.restart_from_log(r);
    let hqc = c.replicas[r].core().high_qc().clone();
    assert!(hqc.round > View(0) && hqc.verify(&mut keys, 3));
}

/// Review D2: the QC that committed blocks is logged only once verified: one inside a
/// held block (fetched, its signatures never checked) whose signatures are forged is
/// not logged, and counted.
#[test]
fn a_forged_qc_inside_a_held_block_is_not_logged() {
    let mut c = Cluster::new(4, 2);
    for i in 1..=3 {
        c.request(1, 1, i);
        c.settle();
    }
    let core = c.replicas[2].core_mut();
    let high = core.high_qc().clone();
    let (_, tip_height, _) = core.tree.tip();
    let certified = Digest([7; 32]);
    let mut forged = Qc {
        block: certified,
        round: View(high.round.0 + 1),
        votes: high.votes.clone(),
    };
    forged.votes[0].signature.0[0] ^= 0xff;
    let block = Arc::new(Block {
        round: View(high.round.0 + 2),
        height: Seq(tip_height.0 + 3),
        author: ReplicaId(0),
        qc: forged.clone(),
        batch: Batch::null(),
    });
    assert!(matches!(
        core.tree.insert(block.digest(), block),
        crate::hotstuff::block_tree::Insert::Inserted
    ));
    assert!(core.logged_qc_round < forged.round);
    core.note_commit_qc(certified);
    let mut out = Vec::new();
    core.log_commit_qc(&mut out);
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Persist(HotStuffRecord::Certified(qc)) if *qc == forged)),
        "the forged QC is not logged"
    );
    assert_eq!(core.counters().unverified_commit_qcs, 1);
}

/// Review D2: replay verifies the QCs of `Certified` and `TimedOut` records before
/// adopting them, and refuses a QC of the last round.
#[test]
fn replay_refuses_forged_or_out_of_range_qcs() {
    let mut c = Cluster::new(4, 2);
    for i in 1..=4 {
        c.request(1, 1, i);
        c.settle();
    }
    let log = c.logs[2].clone();
    let fresh = |log: &[HotStuffRecord]| {
        let mut f = HotStuffReplica::build(&c.common, &c.own, c.keys[2].clone(), None).unwrap();
        for (i, rec) in log.iter().enumerate() {
            f.recover(i as u64, rec.clone()).unwrap();
        }
        f
    };
    let real = fresh(&log).core().high_qc().clone();
    assert!(real.round > View(0));
    let mut forged = real.clone();
    forged.round = View(real.round.0 + 5);
    let records = [
        HotStuffRecord::Certified(forged.clone()),
        HotStuffRecord::TimedOut {
            round: View(forged.round.0 + 1),
            high_qc: forged.clone(),
        },
        HotStuffRecord::Certified(Qc {
            round: View(u64::MAX),
            ..real.clone()
        }),
    ];
    for bad in records {
        let mut f = fresh(&log);
        let err = f.recover(log.len() as u64, bad.clone()).unwrap_err();
        assert!(err.problem.contains("QC"), "{bad:?}: {err}");
        assert_eq!(f.core().high_qc(), &real, "not adopted");
    }
    // The real QC replays.
    let mut f = fresh(&log);
    f.recover(log.len() as u64, HotStuffRecord::Certified(real.clone()))
        .unwrap();
}

/// Review D2: a log refused by replay (here a base whose highest QC is forged) does not
/// make the replica forget its safety floor: a fresh replica salvages the last voted
/// round and the lock from it, and logs them again at `start` before sending anything.
#[test]
fn a_refused_log_keeps_the_safety_floor() {
    let mut c = Cluster::new(4, 3);
    for i in 1..=12 {
        c.request(1, 1, i);
        c.settle();
    }
    let r = 2;
    c.compact(r).expect("a compaction point");
    let HotStuffRecord::Base(mut state) = c.logs[r][0].clone() else {
        panic!("a base");
    };
    let (voted, lock) = (state.last_voted_round, state.preferred_round);
    assert!(voted > View(0) && lock > View(0));
    state.high_qc.votes[0].signature.0[0] ^= 0xff;
    let refused = vec![HotStuffRecord::Base(state)];
    let build = || HotStuffReplica::build(&c.common, &c.own, c.keys[r].clone(), None).unwrap();
    let mut f = build();
    assert!(
        f.recover(0, refused[0].clone()).is_err(),
        "the base is refused"
    );
    let mut f = build();
    for rec in refused {
        f.salvage(rec);
    }
    assert_eq!(f.core().safety.last_voted_round(), voted);
    assert_eq!(f.core().safety.preferred_round(), lock);
    let mut out = Vec::new();
    f.start(c.now, &mut out);
    let logged: Vec<HotStuffRecord> = out
        .iter()
        .filter_map(|a| match a {
            Action::Persist(rec) => Some(rec.clone()),
            _ => None,
        })
        .collect();
    assert!(
        out.iter()
            .take(logged.len())
            .all(|a| matches!(a, Action::Persist(_))),
        "logged before anything else"
    );
    // A restart from the new log keeps the floor.
    let mut again = build();
    for (i, rec) in logged.into_iter().enumerate() {
        again.recover(i as u64, rec).unwrap();
    }
    assert_eq!(again.core().safety.last_voted_round(), voted);
    assert_eq!(again.core().safety.preferred_round(), lock);
    assert!(again.core().round() >= voted);
}

/// Regression: the voters' lag check counts the uncommitted blocks with requests
/// below a block, which commit with it. r1 has delivered nothing (no execution lag)
/// but holds a chain of uncommitted certified blocks with requests in non-consecutive
/// rounds (never committed, so a commit of their descendant would deliver them all at
/// once); it used to vote for a block with requests on top of any number of them.
/// Now it withholds its vote once they reach 2 × max_unexecuted (empty blocks in the
/// chain do not count).
#[test]
fn uncommitted_blocks_with_requests_below_a_block_count_as_execution_lag() {
    let m = 2;
    let mut c = Cluster::with_params(4, 2, LeaderElection::RoundRobin, |p| {
        p.max_unexecuted = m;
    });
    let core = c.replicas[1].core_mut();
    let (mut parent, mut height, mut round) = core.tree.tip();
    let mut lags = Vec::new();
    for k in 0..6u64 {
        // Rounds 2, 4, 6, ...: no two consecutive, so no 2-chain commits.
        round = View(round.0 + 2);
        height = height.next();
        let requests = if k == 2 {
            Vec::new() // an empty block in the chain
        } else {
            vec![Request::new(
                ClientId(1),
                k + 1,
                Bytes::from(format!("op-{k}")),
            )]
        };
        let block = Arc::new(Block {
            round,
            height,
            author: ReplicaId(0),
            qc: Qc {
                block: parent,
                round: View(round.0 - 2),
                votes: Vec::new(),
            },
            batch: Arc::new(Batch::new(requests)),
        });
        let digest = block.digest();
        core.tree.insert(digest, block);
        parent = digest;
        lags.push(core.execution_lags_for_voting(parent));
    }
    assert_eq!(core.last_delivered, core.last_executed, "no execution lag");
    // Blocks with requests below the next block: 1, 2, 2 (empty), 3, 4, 5.
    assert_eq!(lags, vec![false, false, false, false, true, true]);
}

/// Regression: admission control and the per-client share apply to forwarded
/// requests as to direct ones. r2 forwards a flooding client's 32 requests (the
/// admission bound) to r3, which is not leading: r3 queues them up to the contended
/// bound and drops the rest (`dropped_forward_over_share`); they used to queue up to
/// the capacity, past the admission bound. Client 2's direct requests are then
/// admitted (its share is free).
#[test]
fn forwarded_requests_count_against_admission_and_the_client_share() {
    let mut c = Cluster::new(4, 2);
    let core = c.replicas[3].core();
    let (bound, contended) = (core.admission_bound() as u64, core.contended_bound() as u64);
    assert_eq!((bound, contended), (32, 24));
    let keys = c.keys.clone();
    let signed = |number: u64| {
        let mut req = Request::new(ClientId(1), number, Bytes::from(format!("op-1-{number}")));
        ClientMacs::from_keyrings(&keys, ClientId(1)).sign(&mut req);
        req
    };
    for first in (1..=bound).step_by(4) {
        let reqs = (first..first + 4).map(signed).collect();
        c.feed(
            3,
            Event::Message {
                from: ReplicaId(2),
                msg: Envelope {
                    msg: Message::Forward(reqs),
                    signature: None,
                },
            },
        );
    }
    let core = c.replicas[3].core();
    assert_eq!(core.pending.len() as u64, contended);
    assert_eq!(
        core.counters().dropped_forward_over_share,
        bound - contended
    );
    for number in 1..=4 {
        c.request(3, 2, number);
    }
    assert_eq!(c.replicas[3].core().counters().refused_busy, 0);
}

/// A marks query is answered with the client's row of the replicated exactly-once
/// table, signed in signed-all mode, and the row survives a restart from the log
/// (the reply cache need not: that is why a new run asks). At most one answer per
/// client per `MARKS_QUERY_INTERVAL`.
#[test]
fn a_marks_query_is_answered_from_the_table_a_restart_recovers() {
    use crate::exactly_once::MARKS_QUERY_INTERVAL;
    use crate::request::ClientMarks;
    let mut c = Cluster::with_params(4, 2, LeaderElection::RoundRobin, |common| {
        common.signed_all = true;
    });
    for i in [1, 2, 3, 5, 6] {
        c.request(1, 7, i);
        c.request(2, 7, i);
        c.settle();
    }
    c.settle();
    assert_eq!(committed_requests(&c, 3), 5);
    c.restart_from_log(3);
    c.settle();
    // Replaying its log re-executed what lies above its snapshot; results below a
    // snapshot (or skipped by a state transfer) are not held: the cache is soft state.
    c.replicas[3].core_mut().reply_cache.clear();
    c.replies.clear();
    c.feed(3, Event::MarksQuery(ClientId(7)));
    c.feed(3, Event::MarksQuery(ClientId(7)));
    assert_eq!(c.replies.len(), 1, "answered once per interval");
    let reply = &c.replies[0];
    let want = ClientMarks {
        low: 3,
        high: 6,
        runs: vec![(5, 6)],
        truncated: false,
    };
    assert_eq!(reply.marks.as_ref(), Some(&want));
    let key = c.keys[0].replica_keys()[3];
    let sig = reply.signature.expect("signed-all: signed");
    assert!(crate::crypto::verify_signature(
        &key,
        &reply.signing_bytes(),
        &sig
    ));
    let counters = c.replicas[3].core().counters();
    assert_eq!((counters.marks_answered, counters.marks_refused), (1, 1));
    c.now = c.now + MARKS_QUERY_INTERVAL;
    c.feed(3, Event::MarksQuery(ClientId(7)));
    assert_eq!(c.replies.len(), 2);
}
