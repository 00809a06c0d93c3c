//! The block tree: blocks a replica holds by digest, the committed chain by height up
//! to its tip (the last committed block), commit of a block with its ancestors, and
//! pruning.
//!
//! Invariants (asserted where established): the committed chain is gap-free by height
//! and each committed block's parent is the committed block one height below; the tip
//! only grows; an uncommitted block is kept only above the tip's height and round
//! (anything else is a fork that can never commit, dropped at every commit).
//!
//! The tree also keeps the [`History`] leader reputation reads: every block it commits
//! is recorded there in height order, and a state transfer resets it.
//!
//! Memory: at most [`MAX_PENDING_BLOCKS`] uncommitted blocks (a replica inserts only
//! blocks from the leader of its current round, one per round, and fetched blocks a
//! verified QC or a held block names), plus the committed blocks above the stable
//! checkpoint, which peers may fetch, plus the history's fixed window.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::hotstuff::block::{Block, Round, genesis_digest};
use crate::hotstuff::leaders::History;
use crate::types::{Digest, Seq, View};

/// Cap on uncommitted blocks held.
pub const MAX_PENDING_BLOCKS: usize = 4096;

/// What inserting a block did.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    /// Newly held.
    Inserted,
    /// Already held.
    Known,
    /// At or below the committed tip: of no use.
    Stale,
    /// The cap on uncommitted blocks is reached.
    Full,
}

/// Why a commit did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum CommitError {
    /// This block (the target or an ancestor) is not held: fetch it.
    Missing(Digest),
    /// The target does not extend the committed chain: two different blocks committed
    /// at `height` (a safety violation if the quorum rules held).
    Conflict {
        /// The height of the disagreement.
        height: Seq,
    },
}

/// The blocks a replica holds and its committed chain.
#[derive(Debug)]
pub struct BlockTree {
    blocks: BTreeMap<Digest, Arc<Block>>,
    /// Uncommitted blocks, by round.
    pending: BTreeSet<(Round, Digest)>,
    /// Committed digests by height, from the pruning point up to the tip.
    committed: BTreeMap<Seq, Digest>,
    tip: Digest,
    tip_height: Seq,
    tip_round: Round,
    history: History,
    /// Every this many heights the history is kept as it stood right after the
    /// block at that height committed (0: never): a checkpoint binds it.
    checkpoint_interval: u64,
    /// The history right after each checkpoint height's block committed, from the
    /// pruning point up; a state transfer's certified one at the installed height.
    checkpoint_histories: BTreeMap<Seq, Arc<History>>,
}

impl Default for BlockTree {
    fn default() -> BlockTree {
        BlockTree::new()
    }
}

impl BlockTree {
    /// A tree holding genesis, committed, with the history of a 4-replica cluster.
    pub fn new() -> BlockTree {
        BlockTree::for_replicas(4)
    }

    /// A tree holding genesis, committed, for an `n`-replica cluster.
    pub fn for_replicas(n: usize) -> BlockTree {
        let genesis = Block::genesis();
        let mut blocks = BTreeMap::new();
        blocks.insert(genesis_digest(), genesis);
        let mut committed = BTreeMap::new();
        committed.insert(Seq(0), genesis_digest());
        BlockTree {
            blocks,
            pending: BTreeSet::new(),
            committed,
            tip: genesis_digest(),
            tip_height: Seq(0),
            tip_round: View(0),
            history: History::new(n),
            checkpoint_interval: 0,
            checkpoint_histories: BTreeMap::new(),
        }
    }

    /// Keeps the history at every `interval`-th height (see
    /// [`BlockTree::checkpoint_history`]).
    pub fn with_checkpoint_interval(mut self, interval: u64) -> BlockTree {
        self.checkpoint_interval = interval;
        self
    }

    /// The reputation history as it stood right after the block at checkpoint height
    /// `seq` committed — what that checkpoint binds (`sync.rs`) — if still held.
    pub fn checkpoint_history(&self, seq: Seq) -> Option<Arc<History>> {
        self.checkpoint_histories.get(&seq).cloned()
    }

    /// Records a block just committed at the tip in the history, keeping a copy at
    /// checkpoint heights.
    fn record_committed(&mut self, digest: Digest, block: &Block) {
        self.history.record(digest, block);
        if self.checkpoint_interval > 0 && block.height.is_checkpoint(self.checkpoint_interval) {
            self.checkpoint_histories
                .insert(block.height, Arc::new(self.history.clone()));
        }
    }

    /// The committed history leader reputation reads.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The block `digest`, if held.
    pub fn get(&self, digest: &Digest) -> Option<&Arc<Block>> {
        self.blocks.get(digest)
    }

    /// Whether `digest` is held.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blocks.contains_key(digest)
    }

    /// The last committed block: digest, height, round.
    pub fn tip(&self) -> (Digest, Seq, Round) {
        (self.tip, self.tip_height, self.tip_round)
    }

    /// The committed block at `height`, if still held.
    pub fn committed_at(&self, height: Seq) -> Option<Digest> {
        self.committed.get(&height).copied()
    }

    /// Number of uncommitted blocks held.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Holds `block` (whose digest is `digest`).
    pub fn insert(&mut self, digest: Digest, block: Arc<Block>) -> Insert {
        if self.blocks.contains_key(&digest) {
            return Insert::Known;
        }
        if block.height <= self.tip_height || block.round <= self.tip_round {
            return Insert::Stale;
        }
        if self.pending.len() >= MAX_PENDING_BLOCKS {
            return Insert::Full;
        }
        self.pending.insert((block.round, digest));
        self.blocks.insert(digest, block);
        Insert::Inserted
    }

    /// The committed blocks above `height` up to the tip, in height order (those still
    /// held: every one above the pruning point).
    pub fn committed_above(&self, height: Seq) -> Vec<Arc<Block>> {
        self.committed
            .range(height.next()..)
            .filter_map(|(_, d)| self.blocks.get(d).cloned())
            .collect()
    }

    /// The uncommitted blocks held from `from` down its parents to the tip (exclusive),
    /// highest first; empty if `from` is committed or not held.
    pub fn uncommitted_chain(&self, from: Digest) -> Vec<Arc<Block>> {
        let mut out = Vec::new();
        let mut cur = from;
        while let Some(b) = self.blocks.get(&cur) {
            if b.height <= self.tip_height || !self.pending.contains(&(b.round, cur)) {
                break;
            }
            out.push(b.clone());
            cur = b.parent();
        }
        out
    }

    /// The uncommitted blocks held, as `(round, digest)` in round order.
    pub fn pending_blocks(&self) -> impl Iterator<Item = (Round, Digest)> + '_ {
        self.pending.iter().copied()
    }

    /// Appends `chain` to the committed chain above the tip, each block's parent the
    /// one before it (a log's compaction point, whose replay checked the links): no cap
    /// on uncommitted blocks applies, the history records them.
    pub fn extend_committed(&mut self, chain: Vec<Arc<Block>>) {
        for b in chain {
            let digest = b.digest();
            debug_assert_eq!(b.height, self.tip_height.next());
            debug_assert_eq!(b.parent(), self.tip);
            self.pending.remove(&(b.round, digest));
            self.committed.insert(b.height, digest);
            self.tip = digest;
            self.tip_height = b.height;
            self.tip_round = b.round;
            self.record_committed(digest, &b);
            self.blocks.insert(digest, b);
        }
        self.prune_forks();
    }

    /// Replaces the reputation history (a log's compaction point carries the one at
    /// its committed tip, which [`History::fits`] checked).
    pub fn set_history(&mut self, history: History) {
        self.history = history;
    }

    /// Keeps `history` as the one at checkpoint height `seq` (a state transfer's or a
    /// log's compaction point's, certified by the stable checkpoint).
    pub fn set_checkpoint_history(&mut self, seq: Seq, history: Arc<History>) {
        self.checkpoint_histories.insert(seq, history);
    }

    /// Up to `len` blocks from `from` down its parents, as `(digest, round)`, stopping
    /// at the first one not held.
    pub fn chain(&self, from: Digest, len: usize) -> Vec<(Digest, Round)> {
        let mut out = Vec::with_capacity(len);
        let mut cur = from;
        while out.len() < len {
            let Some(b) = self.blocks.get(&cur) else {
                break;
            };
            out.push((cur, b.round));
            if b.height == Seq(0) {
                break;
            }
            cur = b.parent();
        }
        out
    }

    /// Up to `len` held blocks from `from` down its parents, for a peer that fetches.
    pub fn ancestors(&self, from: Digest, len: usize) -> Vec<Arc<Block>> {
        let mut out = Vec::new();
        let mut cur = from;
        while out.len() < len {
            let Some(b) = self.blocks.get(&cur) else {
                break;
            };
            if b.height == Seq(0) {
                break;
            }
            out.push(b.clone());
            cur = b.parent();
        }
        out
    }

    /// Commits `target` and every uncommitted ancestor; returns the newly committed
    /// blocks in height order (empty if `target` was committed already).
    ///
    /// # Errors
    /// [`CommitError::Missing`] naming a block to fetch (nothing changed), or
    /// [`CommitError::Conflict`] if `target` does not extend the committed chain.
    pub fn commit(&mut self, target: Digest) -> Result<Vec<Arc<Block>>, CommitError> {
        let Some(block) = self.blocks.get(&target) else {
            return Err(CommitError::Missing(target));
        };
        if block.height <= self.tip_height {
            return match self.committed.get(&block.height) {
                Some(d) if *d != target => Err(CommitError::Conflict {
                    height: block.height,
                }),
                _ => Ok(Vec::new()),
            };
        }
        let mut chain = vec![(target, block.clone())];
        loop {
            let (_, cur) = chain.last().expect("not empty");
            if cur.height == self.tip_height.next() {
                if cur.parent() != self.tip {
                    return Err(CommitError::Conflict {
                        height: self.tip_height,
                    });
                }
                break;
            }
            let parent_digest = cur.parent();
            let Some(parent) = self.blocks.get(&parent_digest) else {
                return Err(CommitError::Missing(parent_digest));
            };
            if parent.height.next() != cur.height || parent.round >= cur.round {
                // A certified block whose height or round does not follow its parent:
                // correct voters check both, so this chain cannot be the committed one.
                return Err(CommitError::Conflict { height: cur.height });
            }
            chain.push((parent_digest, parent.clone()));
        }
        chain.reverse();
        for (digest, b) in &chain {
            debug_assert_eq!(b.height, self.tip_height.next());
            debug_assert_eq!(b.parent(), self.tip);
            self.pending.remove(&(b.round, *digest));
            self.committed.insert(b.height, *digest);
            self.tip = *digest;
            self.tip_height = b.height;
            self.tip_round = b.round;
            self.record_committed(*digest, b);
        }
        self.prune_forks();
        Ok(chain.into_iter().map(|(_, b)| b).collect())
    }

    /// Drops uncommitted blocks that can no longer commit: at or below the tip's
    /// round or height.
    fn prune_forks(&mut self) {
        let keep = self
            .pending
            .split_off(&(self.tip_round.next(), Digest::default()));
        for (_, digest) in std::mem::replace(&mut self.pending, keep) {
            self.blocks.remove(&digest);
        }
        let tip_height = self.tip_height;
        let dead: Vec<(Round, Digest)> = self
            .pending
            .iter()
            .filter(|(_, d)| self.blocks.get(d).is_none_or(|b| b.height <= tip_height))
            .copied()
            .collect();
        for key in dead {
            self.pending.remove(&key);
            self.blocks.remove(&key.1);
        }
    }

    /// Forgets committed blocks below `height` (never the tip).
    pub fn prune_committed_below(&mut self, height: Seq) {
        let height = height.min(self.tip_height);
        self.checkpoint_histories = self.checkpoint_histories.split_off(&height);
        let keep = self.committed.split_off(&height);
        for digest in std::mem::replace(&mut self.committed, keep).into_values() {
            self.blocks.remove(&digest);
        }
    }

    /// After a state transfer: `block` (digest `digest`), committed at its height
    /// according to a stable checkpoint certificate, becomes the tip; everything
    /// committed below it and every fork is dropped.
    pub fn reset_to(&mut self, digest: Digest, block: Arc<Block>) {
        if block.height <= self.tip_height {
            return;
        }
        self.pending.remove(&(block.round, digest));
        self.committed.clear();
        self.committed.insert(block.height, digest);
        self.tip = digest;
        self.tip_height = block.height;
        self.tip_round = block.round;
        self.history.reset(digest, &block);
        let pending = std::mem::take(&mut self.pending);
        let mut blocks = BTreeMap::new();
        blocks.insert(digest, block);
        for (round, d) in pending {
            if let Some(b) = self.blocks.get(&d)
                && round > self.tip_round
                && b.height > self.tip_height
            {
                blocks.insert(d, b.clone());
                self.pending.insert((round, d));
            }
        }
        self.blocks = blocks;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotstuff::qc::Qc;
    use crate::request::Batch;
    use crate::types::ReplicaId;

    fn child(parent: &Arc<Block>, parent_digest: Digest, round: u64) -> (Digest, Arc<Block>) {
        let b = Arc::new(Block {
            round: View(round),
            height: parent.height.next(),
            author: ReplicaId(0),
            qc: Qc {
                block: parent_digest,
                round: parent.round,
                votes: Vec::new(),
            },
            batch: Batch::null(),
        });
        (b.digest(), b)
    }

    #[test]
    fn commits_ancestors_in_order_and_prunes_forks() {
        let mut t = BlockTree::new();
        let g = Block::genesis();
        let (d1, b1) = child(&g, genesis_digest(), 1);
        let (d2, b2) = child(&b1, d1, 2);
        let (f2, fork) = child(&b2, d2, 3);
        let (d3, b3) = child(&b2, d2, 4);
        assert_eq!(t.commit(d2), Err(CommitError::Missing(d2)));
        for (d, b) in [(d1, &b1), (d2, &b2), (f2, &fork), (d3, &b3)] {
            assert_eq!(t.insert(d, b.clone()), Insert::Inserted);
        }
        assert_eq!(t.insert(d1, b1.clone()), Insert::Known);
        let done = t.commit(d2).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(t.tip(), (d2, Seq(2), View(2)));
        assert_eq!(t.committed_at(Seq(1)), Some(d1));
        assert!(t.contains(&f2), "round 3 is above the tip's round");
        assert!(t.commit(d2).unwrap().is_empty(), "already committed");
        t.commit(d3).unwrap();
        assert!(!t.contains(&f2), "a fork below the tip is dropped");
        assert_eq!(t.pending_len(), 0);
        assert_eq!(t.insert(f2, fork.clone()), Insert::Stale);
        t.prune_committed_below(Seq(3));
        assert!(!t.contains(&d1) && !t.contains(&d2) && t.contains(&d3));
        assert_eq!(t.chain(d3, 5), vec![(d3, View(4))]);
    }

    #[test]
    fn a_conflicting_commit_is_reported() {
        let mut t = BlockTree::new();
        let g = Block::genesis();
        let (d1, b1) = child(&g, genesis_digest(), 1);
        let (e1, other) = child(&g, genesis_digest(), 2);
        t.insert(d1, b1);
        t.insert(e1, other.clone());
        t.commit(d1).unwrap();
        // The fork was pruned with the commit; a replica that still held it would
        // see the conflict.
        let mut t2 = BlockTree::new();
        t2.insert(e1, other);
        t2.commit(e1).unwrap();
        let (d2, b2) = child(&t.get(&d1).unwrap().clone(), d1, 3);
        t2.blocks.insert(d1, t.get(&d1).unwrap().clone());
        t2.pending.insert((View(1), d1));
        t2.blocks.insert(d2, b2);
        t2.pending.insert((View(3), d2));
        assert_eq!(t2.commit(d2), Err(CommitError::Conflict { height: Seq(1) }));
    }
}
