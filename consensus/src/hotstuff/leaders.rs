//! Who leads a round: round-robin over the replicas (round r is led by replica r mod
//! n, as in Jolteon's evaluation and DiemBFT v4; the default), or leader reputation as
//! Aptos builds it (`leader_election = "reputation"` in `[protocol.hotstuff]`).
//!
//! **Round-robin** ([`leader`]) meets every faulty leader once every n rounds, and each
//! meeting costs a round time-out: with f silent replicas, f rounds in n end by a TC.
//!
//! **Leader reputation** ([`History::elect`]) draws round r's leader from the committed
//! chain, so that every correct replica computes the same leader from data they all
//! agree on, and replicas that stopped taking part are (almost) never drawn:
//!
//! - *The window.* The committed blocks whose rounds lie in (r − [`REPUTATION_LAG`] −
//!   [`REPUTATION_WINDOW`], r − [`REPUTATION_LAG`]] (votes: only the last
//!   [`VOTER_WINDOW`] rounds of it). The most recent
//!   [`REPUTATION_LAG`] rounds are left out (Aptos' `exclude_round`), so a replica that
//!   commits a few rounds after the others (2-chain commits lag the round by 2 when all
//!   goes well) still sees the same window. Each committed block tells who proposed it
//!   (its author) and who voted for its parent (its QC's signers — the block digest
//!   binds them, so a block fetched from any peer carries the same ones); the rounds
//!   skipped between a committed block and its committed parent are failed rounds,
//!   charged to the leader this same election chose for them (computed once, when the
//!   block commits, from the older window: Aptos' `failed_proposers`). Failures are
//!   read only from blocks inside the window, so a replica that has not yet committed
//!   the block after a gap agrees with one that has.
//! - *The weights* (Aptos' `ProposerAndVoterHeuristic` in its v2 form): a replica whose
//!   share of failed rounds among the rounds it led in the window exceeds
//!   [`FAILURE_THRESHOLD_PERCENT`] weighs [`FAILED_WEIGHT`]; otherwise one that proposed
//!   or voted in the window weighs [`ACTIVE_WEIGHT`]; one that did neither (silent,
//!   crashed, cut off) weighs [`INACTIVE_WEIGHT`]. Failures are remembered over the
//!   whole window and votes only over its last [`VOTER_WINDOW`] rounds, so a leader
//!   that votes but fails its rounds stays down. No replica weighs 0, so a leader is
//!   always drawn and a replica left out comes back once it is drawn and proposes.
//! - *The draw.* SHA-256 of a domain tag, the round and the digest of the newest block
//!   in the window (which binds the whole committed chain below it), reduced modulo the
//!   total weight, picks a replica by cumulative weight in replica order. No clock,
//!   randomness, thread or hash-map order is involved.
//! - *Fallbacks.* An empty window (the first [`REPUTATION_LAG`] rounds after genesis, or
//!   a stretch of more than [`REPUTATION_WINDOW`] rounds with no committed block, as in
//!   a partition) gives round-robin, which every replica computes alike.
//! - *State transfer.* A replica that installs a stable checkpoint by state transfer
//!   lacks the chain below the installed block, so it could not attribute the window's
//!   failed rounds itself. The checkpoint therefore binds the history as it stood
//!   right after the checkpoint block committed ([`History::digest`] in
//!   `hotstuff_checkpoint_digest`, `sync.rs`), the state header carries it, and the
//!   installing replica takes it — certified by 2f+1 checkpoint votes — so it elects
//!   the same leaders as its peers at once. (Before, it reset its history and elected
//!   round-robin for ~440 rounds; two such replicas at n = 4 split every round's votes
//!   with the other two, and the cluster advanced only by round time-outs: simulator
//!   seed 44 `partition` and 391 `mixed` with disks, `tandem sim --protocol hotstuff
//!   --faults all --seeds 1000 --durability wal --protocol-param
//!   leader_election=reputation`.) A replica whose history still does not cover the
//!   window (the `History::reset` path, kept for a tree reset without a certified
//!   history) falls back to round-robin, which may cost it liveness, never safety.
//!   A replica restarted from a compacted log takes the history its base record
//!   carries (the checkpoint's, certified, and the one at the committed tip when the
//!   log compacted); from a log never compacted it starts from genesis and relearns
//!   the chain as it commits it again.
//!
//! Leader disagreement can cost liveness, never safety: the safety rules (vote once per
//! round, Jolteon's TC rule, the commit rule) do not depend on who leads.
//!
//! Memory: the history keeps the committed blocks of the last `REPUTATION_LAG +
//! REPUTATION_WINDOW` rounds below the committed tip (at most that many blocks, each
//! with at most n voters) and the failed rounds among them.
//!
//! Round-robin stays the default: a comparison with PBFT should not hide the cost of a
//! faulty leader, and `tandem local`/`compare` measure the protocol as Jolteon states
//! it. The simulator runs reputation with `--protocol-param leader_election=reputation`.
//!
//! Measured at rev bb6dd4a (landed as 996dc41; debug build, `--jobs 2`; README, "HotStuff"): `tandem sim
//! --protocol hotstuff --faults all --seeds 300 --durability wal` — round-robin 2
//! liveness failures (seeds 74 and 186, `silent`), 20,387 round time-outs; reputation
//! none, 6,436. `--faults silent --replicas 7 --seeds 100` — round-robin 29 failures
//! (20,086 of 22,831 requests by the bound), reputation none (22,831 of 22,831).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::hotstuff::block::{Block, Round};
use crate::types::{Digest, ReplicaId, View};

/// The most recent rounds left out of the reputation window.
pub const REPUTATION_LAG: u64 = 20;
/// The rounds of committed history the reputation window spans: proposals and failed
/// rounds are counted over all of it.
pub const REPUTATION_WINDOW: u64 = 200;
/// The most recent rounds of the window in which votes count (Aptos' voter window is
/// shorter than its proposer window too): a replica that stopped voting is inactive
/// after this many rounds, and a failed leader's vote does not outweigh its failures.
pub const VOTER_WINDOW: u64 = 40;
/// A replica that proposed or voted in the window and failed few of its rounds.
pub const ACTIVE_WEIGHT: u64 = 1000;
/// A replica that neither proposed nor voted in the window.
pub const INACTIVE_WEIGHT: u64 = 10;
/// A replica that failed more than [`FAILURE_THRESHOLD_PERCENT`] of the rounds it led.
pub const FAILED_WEIGHT: u64 = 1;
/// The share of failed rounds (among the rounds a replica led in the window) above
/// which it weighs [`FAILED_WEIGHT`].
pub const FAILURE_THRESHOLD_PERCENT: u64 = 10;

/// How a round's leader is chosen (`leader_election` in `[protocol.hotstuff]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaderElection {
    /// Round r is led by replica r mod n.
    #[default]
    RoundRobin,
    /// A draw weighted by the committed history ([`History::elect`]).
    Reputation,
}

impl LeaderElection {
    /// The name in cluster files.
    pub fn name(self) -> &'static str {
        match self {
            LeaderElection::RoundRobin => "round-robin",
            LeaderElection::Reputation => "reputation",
        }
    }

    /// The election named `name`.
    pub fn from_name(name: &str) -> Option<LeaderElection> {
        [LeaderElection::RoundRobin, LeaderElection::Reputation]
            .into_iter()
            .find(|e| e.name() == name)
    }
}

/// The round-robin leader of `round` in a cluster of `n` replicas.
pub fn leader(round: Round, n: usize) -> ReplicaId {
    ReplicaId((round.0 % n.max(1) as u64) as u32)
}

/// What the reputation election says of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// Drawn from the window.
    Elected(ReplicaId),
    /// The window holds no committed block: round-robin, as every replica computes.
    Empty,
    /// This replica's history does not cover the window (after a state transfer):
    /// round-robin, possibly unlike the others.
    Unknown,
}

impl Election {
    /// The leader: the drawn one, or round-robin's.
    pub fn leader(self, round: Round, n: usize) -> ReplicaId {
        match self {
            Election::Elected(id) => id,
            Election::Empty | Election::Unknown => leader(round, n),
        }
    }
}

/// One committed block, as the election reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    round: Round,
    digest: Digest,
    author: ReplicaId,
    /// Signers of its QC (votes for its parent), at most n.
    voters: Vec<ReplicaId>,
    /// Failed rounds between its parent and it (only recent ones), with their leader.
    failed: Vec<(Round, ReplicaId)>,
    /// Whether every failed round's leader was computed from a complete window.
    trusted: bool,
}

/// The committed history the reputation election reads: a fixed-size window of the
/// most recent committed blocks (see the module documentation). Serialisable: a
/// compaction point of the log (`durable.rs`) carries it, so a replica restarted from
/// there elects the same leaders as its peers at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    n: usize,
    entries: VecDeque<Entry>,
    /// Every committed block with a round above this one is (or will be) recorded:
    /// 0 from genesis, the installed block's round after a state transfer.
    complete_from: Round,
}

impl History {
    /// The empty history of an `n`-replica cluster at genesis.
    pub fn new(n: usize) -> History {
        History {
            n,
            entries: VecDeque::new(),
            complete_from: View(0),
        }
    }

    /// The digest a checkpoint binds (`sync.rs`): SHA-256 over a domain tag and the
    /// history's canonical (bincode) encoding, every field included, so two replicas
    /// with the same digest elect the same leaders.
    pub fn digest(&self) -> Digest {
        Digest::of(&[&crate::crypto::signing_bytes(
            b"tandem-hotstuff-history-v1",
            self,
        )])
    }

    /// Number of committed blocks held (at most `REPUTATION_LAG + REPUTATION_WINDOW`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no committed block is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether this history could be the one of an `n`-replica cluster whose committed
    /// tip is `tip` at round `tip_round`: the newest entry is the tip (or it is empty
    /// and the tip is genesis), it holds no more than the window spans, in round order,
    /// and no entry names a replica outside the cluster. What a log's compaction point
    /// is checked against before its history is taken.
    pub fn fits(&self, n: usize, tip: Digest, tip_round: Round) -> bool {
        let span = REPUTATION_LAG + REPUTATION_WINDOW;
        if self.n != n || self.entries.len() as u64 > span {
            return false;
        }
        let newest_is_tip = match self.entries.back() {
            Some(e) => e.digest == tip && e.round == tip_round,
            None => tip_round == View(0),
        };
        let in_order = self
            .entries
            .iter()
            .zip(self.entries.iter().skip(1))
            .all(|(a, b)| a.round < b.round);
        let members = self.entries.iter().all(|e| {
            e.author.index() < n
                && e.voters.len() <= n
                && e.voters.iter().all(|v| v.index() < n)
                && e.failed.iter().all(|(_, l)| l.index() < n)
        });
        self.n == n
            && newest_is_tip
            && in_order
            && members
            && self.entries.len() as u64 <= span
            && self.complete_from <= tip_round
    }

    /// Records `block` (digest `digest`), committed right after the last recorded one:
    /// its author, its QC's signers, and the leaders of the rounds skipped since its
    /// parent's round. Forgets what no later window can reach.
    pub fn record(&mut self, digest: Digest, block: &Block) {
        let span = REPUTATION_LAG + REPUTATION_WINDOW;
        let first_gap = block
            .qc
            .round
            .0
            .saturating_add(1)
            .max(block.round.0.saturating_sub(span).saturating_add(1));
        let mut failed = Vec::new();
        let mut trusted = true;
        for g in first_gap..block.round.0 {
            let round = View(g);
            let election = self.elect(round);
            trusted &= election != Election::Unknown;
            failed.push((round, election.leader(round, self.n)));
        }
        self.entries.push_back(Entry {
            round: block.round,
            digest,
            author: block.author,
            voters: block
                .qc
                .votes
                .iter()
                .map(|v| v.signer)
                .take(self.n)
                .collect(),
            failed,
            trusted,
        });
        while self
            .entries
            .front()
            .is_some_and(|e| e.round.0.saturating_add(span) <= block.round.0)
        {
            self.entries.pop_front();
        }
    }

    /// After a state transfer: `block` (digest `digest`) is the committed tip and the
    /// chain below it is unknown.
    pub fn reset(&mut self, digest: Digest, block: &Block) {
        self.entries.clear();
        self.complete_from = block.round;
        self.record(digest, block);
        if let Some(e) = self.entries.back_mut() {
            e.failed.clear();
            e.trusted = false;
        }
    }

    /// The reputation election of `round` (see the module documentation).
    pub fn elect(&self, round: Round) -> Election {
        let n = self.n.max(1);
        let Some(hi) = round.0.checked_sub(REPUTATION_LAG).filter(|hi| *hi > 0) else {
            return Election::Empty;
        };
        let lo = hi.saturating_sub(REPUTATION_WINDOW);
        let lo_votes = hi.saturating_sub(VOTER_WINDOW);
        if lo < self.complete_from.0 {
            return Election::Unknown;
        }
        let window: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.round.0 > lo && e.round.0 <= hi)
            .collect();
        let Some(newest) = window.last() else {
            return Election::Empty;
        };
        if window.iter().any(|e| !e.trusted) {
            return Election::Unknown;
        }
        let mut proposed = vec![0u64; n];
        let mut failed = vec![0u64; n];
        let mut voted = vec![false; n];
        for e in &window {
            if let Some(p) = proposed.get_mut(e.author.index()) {
                *p += 1;
            }
            if e.round.0 > lo_votes {
                for v in &e.voters {
                    if let Some(x) = voted.get_mut(v.index()) {
                        *x = true;
                    }
                }
            }
            for (g, l) in &e.failed {
                if g.0 > lo
                    && let Some(x) = failed.get_mut(l.index())
                {
                    *x += 1;
                }
            }
        }
        let weights: Vec<u64> = (0..n)
            .map(|i| {
                let led = proposed[i] + failed[i];
                if failed[i] * 100 > FAILURE_THRESHOLD_PERCENT * led {
                    FAILED_WEIGHT
                } else if proposed[i] > 0 || voted[i] {
                    ACTIVE_WEIGHT
                } else {
                    INACTIVE_WEIGHT
                }
            })
            .collect();
        let total: u64 = weights.iter().sum();
        let seed = Digest::of(&[
            b"tandem-hotstuff-leader-v1",
            &round.0.to_le_bytes(),
            &newest.digest.0,
        ]);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&seed.0[..8]);
        let mut draw = u64::from_le_bytes(bytes) % total;
        for (i, w) in weights.iter().enumerate() {
            if draw < *w {
                return Election::Elected(ReplicaId(i as u32));
            }
            draw -= w;
        }
        Election::Empty // unreachable: draw < total
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::{Signature, Signed};
    use crate::hotstuff::block::genesis_digest;
    use crate::hotstuff::qc::{Qc, VoteBody};
    use crate::request::Batch;
    use crate::types::Seq;

    #[test]
    fn rotates_over_every_replica() {
        let leaders: Vec<u32> = (1..=8).map(|r| leader(View(r), 4).0).collect();
        assert_eq!(leaders, [1, 2, 3, 0, 1, 2, 3, 0]);
        assert_eq!(leader(View(u64::MAX), 7).0, (u64::MAX % 7) as u32);
    }

    /// A run of `rounds` rounds of an `n`-replica cluster electing by reputation: a
    /// round whose elected leader is in `failing` fails (no block); otherwise its block
    /// commits at once, its QC signed by every replica not in `silent`. Returns the
    /// committed blocks and each round's leader.
    fn run(
        n: usize,
        rounds: u64,
        failing: &[u32],
        silent: &[u32],
    ) -> (Vec<(Digest, Arc<Block>)>, Vec<u32>) {
        let mut h = History::new(n);
        let mut blocks: Vec<(Digest, Arc<Block>)> = Vec::new();
        let mut leaders = vec![0];
        let (mut parent, mut parent_round) = (genesis_digest(), View(0));
        for r in 1..=rounds {
            let l = h.elect(View(r)).leader(View(r), n);
            leaders.push(l.0);
            if failing.contains(&l.0) {
                continue;
            }
            let votes = (0..n as u32)
                .filter(|v| !silent.contains(v))
                .map(|v| Signed {
                    body: VoteBody {
                        block: parent,
                        round: parent_round,
                    },
                    signer: ReplicaId(v),
                    signature: Signature([0; 64]),
                })
                .collect();
            let block = Arc::new(Block {
                round: View(r),
                height: Seq(blocks.len() as u64 + 1),
                author: l,
                qc: Qc {
                    block: parent,
                    round: parent_round,
                    votes,
                },
                batch: Batch::null(),
            });
            parent = block.digest();
            parent_round = View(r);
            h.record(parent, &block);
            blocks.push((parent, block));
        }
        (blocks, leaders)
    }

    fn history_of(n: usize, blocks: &[(Digest, Arc<Block>)]) -> History {
        let mut h = History::new(n);
        for (d, b) in blocks {
            h.record(*d, b);
        }
        h
    }

    #[test]
    fn same_committed_history_same_leaders() {
        let (blocks, leaders) = run(7, 600, &[], &[]);
        // Everyone takes part, so the draw spreads over all seven.
        for i in 0..7 {
            let led = leaders[100..].iter().filter(|l| **l == i).count();
            assert!(led > 40, "replica {i} led {led} of 500 rounds");
        }
        // Two replicas that committed the same chain elect the same leaders, whether
        // they committed it block by block or in one go after falling behind.
        let a = history_of(7, &blocks);
        let b = history_of(7, &blocks);
        assert!(a.len() <= (REPUTATION_LAG + REPUTATION_WINDOW) as usize);
        for r in 601..600 + REPUTATION_LAG + 5 {
            assert_eq!(a.elect(View(r)), b.elect(View(r)), "round {r}");
            assert!(matches!(a.elect(View(r)), Election::Elected(_)));
        }
        // A replica that has not committed the last blocks yet still agrees on the
        // rounds whose window they do not reach.
        let behind = history_of(7, &blocks[..blocks.len() - 10]);
        for r in 601..611 {
            assert_eq!(behind.elect(View(r)), a.elect(View(r)), "round {r}");
        }
    }

    #[test]
    fn a_silent_replica_is_not_elected() {
        for (n, silent) in [(4, &[2][..]), (7, &[0, 5][..]), (10, &[1, 4, 9][..])] {
            let (_, leaders) = run(n, 3000, silent, silent);
            // After genesis' round-robin, silent leaders are drawn only at their
            // residual weight (10 as inactive, 1 while a failure is in the window,
            // against 1000 per active replica): at most about 0.5% of the rounds,
            // where round-robin gives them f in n.
            let first = (2 * REPUTATION_LAG) as usize;
            let silent_led = leaders[first..]
                .iter()
                .filter(|l| silent.contains(l))
                .count();
            let rr = (first as u64..=3000)
                .filter(|r| silent.contains(&leader(View(*r), n).0))
                .count();
            assert!(
                silent_led * 50 < rr,
                "n = {n}: {silent_led} silent leaders, {rr} with round-robin"
            );
            assert!(silent_led <= 20, "n = {n}: {silent_led} silent leaders");
        }
    }

    #[test]
    fn failed_rounds_are_charged_to_their_leader() {
        // Replica 1 votes (it is in every QC) but its rounds fail: a failed leader.
        // Each time its failures leave the window its votes make it active again,
        // until a new failure reaches the window REPUTATION_LAG rounds later: about 5
        // failed rounds in every 220, against one in 4 with round-robin.
        let (_, leaders) = run(4, 3000, &[1], &[]);
        let led = leaders[40..].iter().filter(|l| **l == 1).count();
        assert!(led <= 100, "{led}");
    }

    #[test]
    fn genesis_and_gaps_fall_back_to_round_robin() {
        let h = History::new(4);
        for r in 1..100 {
            assert_eq!(h.elect(View(r)), Election::Empty);
            assert_eq!(h.elect(View(r)).leader(View(r), 4), leader(View(r), 4));
        }
        let (blocks, _) = run(4, 3, &[], &[]);
        let h = history_of(4, &blocks);
        assert_eq!(h.elect(View(REPUTATION_LAG)), Election::Empty);
        assert!(matches!(
            h.elect(View(REPUTATION_LAG + 1)),
            Election::Elected(_)
        ));
        // More than a window of rounds without a commit: round-robin again.
        let far = REPUTATION_LAG + REPUTATION_WINDOW + 4;
        assert_eq!(h.elect(View(far)), Election::Empty);
    }

    #[test]
    fn after_a_state_transfer_the_missing_history_falls_back() {
        let (blocks, _) = run(4, 600, &[3], &[3]);
        let full = history_of(4, &blocks);
        let mut t = History::new(4);
        let (d, b) = &blocks[199];
        let from = b.round.0;
        t.reset(*d, b);
        assert_eq!(t.elect(View(from + 30)), Election::Unknown);
        for (d, b) in &blocks[200..] {
            t.record(*d, b);
        }
        let last = blocks.last().unwrap().1.round.0;
        let span = REPUTATION_LAG + REPUTATION_WINDOW;
        assert_eq!(t.elect(View(from + span - 1)), Election::Unknown);
        for r in from + 2 * span + 1..last + REPUTATION_LAG {
            assert_eq!(t.elect(View(r)), full.elect(View(r)), "round {r}");
        }
    }

    #[test]
    fn names_round_trip() {
        for e in [LeaderElection::RoundRobin, LeaderElection::Reputation] {
            assert_eq!(LeaderElection::from_name(e.name()), Some(e));
        }
        assert_eq!(LeaderElection::from_name("random"), None);
    }
}
