//! What a HotStuff replica makes durable, its compaction point, and its replay after a
//! restart from disk.
//!
//! A replica must never contradict a vote or timeout it sent before a crash, so before
//! each it logs ([`HotStuffRecord`], through `Action::Persist`):
//!
//! | record | logged before | replay |
//! |---|---|---|
//! | `Base` ([`DurableState`]) | nothing: the first record of a log compacted at a stable checkpoint, replacing every record before it | resume at the checkpoint (below) |
//! | `Voted` (the block, with its QC) | its vote for the block | the last voted round, the block into the tree, its QC (the parent's) as a candidate highest QC |
//! | `TimedOut` (round, highest QC) | its timeout for the round: no vote in it afterwards | the last voted round, the highest QC |
//! | `Locked` (preferred round) | its next vote after the lock rose (chained HotStuff only: Jolteon's voting rule does not read the lock) | the lock |
//! | `Stable` | nothing: the stable checkpoint, kept so a restart skips older blocks | the stable certificate |
//! | `Certified` (a QC) | the replies to the requests of the blocks it committed, when no record holds a QC as high (a leader that formed it votes for its next block in the same event, whose `Voted` record carries it, and logs nothing more) | a QC for the commit rule at `start`, a candidate highest QC |
//!
//! **Compaction** ([`HotStuff::durable_checkpoint`]): once this replica executed its
//! stable checkpoint, holds that state's chunk list and its own checkpoint digest is
//! the certified one (not while a state transfer installs a state), the driver may
//! replace the log by the application snapshot at the checkpoint and a `Base` record:
//! the safety state (last voted round, lock, highest QC), the stable certificate, the
//! application digest and exactly-once tables the certificate binds
//! (`hotstuff_checkpoint_digest`), the committed block at the checkpoint, the committed
//! blocks above it up to the committed tip, the uncommitted blocks on the chains of the
//! highest QC and of the last voted block (down to the tip), and the reputation
//! history at the tip. Recovery checks all of it against itself — the certificate's
//! signatures, the checkpoint digest recomputed from the tables, application digest
//! and block, the committed chain linked by parent digest and height from the
//! checkpoint block, the history ending at the tip, the highest QC's signatures — and
//! refuses an inconsistent base with a [`RecoveryError`]; then the replica stands at
//! the checkpoint (committed height = its seq, the checkpoint block the committed tip
//! until the blocks above commit again, the tables as delivered, its own checkpoint
//! registered — the driver hands the snapshot back as `Event::Snapshot`, so it serves
//! state transfer at once), with the safety state of the base.
//!
//! **Commits are re-derived, not logged.** Committed blocks are not logged one by one:
//! after a restart a replica re-derives its commits ([`HotStuff::resume_recovered`],
//! from `start`): the commit rule runs over every QC the log holds — inside each
//! `Voted` block, each `TimedOut` and `Certified` record, the base's highest QC — in
//! round order, and commits and delivers what they certify above the committed tip
//! (the base's, or genesis). Why that suffices, also when every replica restarts at
//! once and no peer holds anything in memory:
//! - *The QC.* Whatever a replica replied to was executed, so committed by some QC
//!   in an event before the reply; by the end of that event the log holds that QC or a
//!   higher one (`Certified`, else the `Voted`/`TimedOut` record that carried it), and
//!   the driver sends the reply only after that record is durable. A higher QC
//!   certifies a block extending the committed one (the commit rule's safety), so
//!   re-deriving from it commits at least as far.
//! - *The blocks.* Every block of a certified chain got 2f+1 votes, each logged
//!   (`Voted`, with the block) before it left; a compaction keeps the blocks above the
//!   compacting replica's checkpoint that its commit tip and its highest QC's chain
//!   need, and the snapshot holds the effect of those below. A block the restarted
//!   replica did not vote for itself it fetches from the voters that logged it (the
//!   commit rule asks for missing ancestors), or it state-transfers from a peer's
//!   checkpoint above it (peers serve theirs at once: the driver hands each the
//!   snapshot it restored).
//! - *Commits by others.* A block another replica committed that this one never saw
//!   commit is not lost either: every later certified block extends it, and leaders
//!   keep proposing while uncommitted requests sit on the highest QC's chain.
//!
//! **Only verified QCs are logged and adopted.** Replay adopts a logged QC as its
//! highest QC and as a head of the commit rule, so every QC the log holds must verify:
//! the QC that committed blocks is the highest QC, one this replica verified or
//! formed, or the QC inside a held block once its signatures verify (a fetched block's
//! digest binds its QC's block and round, not the signatures; a forged one is not
//! logged — the highest QC is, when higher — and counted `unverified_commit_qcs`).
//! Replay verifies again the QCs of `Certified`, `TimedOut` and `Base` records (and
//! refuses a QC, vote or timeout of round `u64::MAX`); a `Voted` block's QC was
//! verified before the vote and is not checked again.
//!
//! **A refused log.** A log whose replay is refused is moved aside by the node, and the
//! replica restarts empty, recovering its state from its peers. It does not forget its
//! safety floor: the node hands every decodable record of the refused log to
//! [`HotStuff::salvage`], which keeps the highest round voted or timed out in and the
//! lock, and logs them again at `start` (a `TimedOut` of that round holding the genesis
//! QC, and `Locked`) before anything is sent.
//!
//! **The last vote** (`last_voted_block`, and the vote itself, resent with a timeout
//! of its round) is restored from the last `Voted` record (the vote signed again at
//! `start`: the same vote, signatures are deterministic) when no later timeout or base
//! holds a higher round. A base does not name its last voted block: a replica
//! restarted from a base alone resends no vote with its timeout (peers that missed it
//! form the QC from the others, or a TC).
//!
//! The simulator's whole-cluster crash test (`sim/mod.rs`), the unit tests in
//! `tests.rs` and the node driver's restart test check it.
//!
//! Size: a base holds what the replica holds in memory anyway — the committed blocks
//! above the stable checkpoint (which the block tree keeps for peers that fetch them),
//! the uncommitted blocks of two chains above the tip, and at most
//! `REPUTATION_LAG + REPUTATION_WINDOW` history entries — not every uncommitted fork
//! the tree holds: a fork block this replica voted for in an earlier round is needed
//! for no vote (the last voted round is) and, if it ever commits, its 2f other voters
//! logged it.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{OwnCheckpoint, StableCert};
use crate::exactly_once::ClientTables;
use crate::hotstuff::block::{Block, Round};
use crate::hotstuff::block_tree::Insert;
use crate::hotstuff::leaders::History;
use crate::hotstuff::qc::Qc;
use crate::hotstuff::replica::{HotStuff, HotStuffAction};
use crate::hotstuff::sync::hotstuff_checkpoint_digest;
use crate::protocol::{DurableCheckpoint, RecoveryError};
use crate::types::{Digest, Seq, Time, View};

/// One entry of a HotStuff replica's write-ahead log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum HotStuffRecord {
    /// The durable state at a compaction point: the first record of a compacted log,
    /// replacing every record before it.
    Base(Box<DurableState>),
    /// The replica voted for this block (in its round).
    Voted(Arc<Block>),
    /// The replica timed out in `round` holding `high_qc`.
    TimedOut {
        /// The round.
        round: Round,
        /// Its highest QC then.
        high_qc: Qc,
    },
    /// A stable checkpoint's certificate.
    Stable(StableCert),
    /// The lock (preferred round) rose to this round (logged before the next vote).
    Locked(Round),
    /// A QC that committed blocks, above every QC the log held (logged before the
    /// replies to the requests those blocks carry).
    Certified(Qc),
}

/// A HotStuff replica's durable state at a compaction point: everything its log held
/// that the stable checkpoint's snapshot did not make unnecessary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DurableState {
    /// The highest round voted or timed out in.
    pub last_voted_round: Round,
    /// The lock.
    pub preferred_round: Round,
    /// The highest QC.
    pub high_qc: Qc,
    /// The stable checkpoint, whose application state is the log's snapshot.
    pub stable: StableCert,
    /// The application digest at the stable checkpoint.
    pub app_digest: Digest,
    /// The exactly-once tables at the stable checkpoint (bound by its digest).
    pub tables: ClientTables,
    /// The committed block at the stable checkpoint's height (bound by its digest):
    /// the chain continues from it.
    pub checkpoint_block: Arc<Block>,
    /// The committed blocks above the checkpoint up to the committed tip, in height
    /// order.
    pub committed: Vec<Arc<Block>>,
    /// Uncommitted blocks on the highest QC's chain and the last voted block's chain,
    /// above the committed tip, in round order.
    pub uncommitted: Vec<Arc<Block>>,
    /// The reputation history at the committed tip (`leaders.rs`).
    pub history: History,
    /// The reputation history right after the checkpoint block committed (bound by
    /// the certificate; served with the checkpoint's state).
    pub checkpoint_history: History,
}

impl HotStuff {
    /// The latest compaction point: the stable checkpoint, once this replica executed
    /// it, holds its serialised state and agrees with its certificate, with the durable
    /// state now. `None` while a state transfer installs a state.
    pub(crate) fn durable_checkpoint(&self) -> Option<DurableCheckpoint<HotStuffRecord>> {
        let seq = self.stable.seq;
        let (own, snapshot) = crate::checkpoint::compaction_snapshot(
            &self.stable,
            &self.own_checkpoints,
            self.last_executed,
            self.installing.is_some(),
        )?;
        let block = self.checkpoint_blocks.get(&seq)?.clone();
        let digest = block.digest();
        let checkpoint_history = self.tree.checkpoint_history(seq)?;
        if self.tree.committed_at(seq) != Some(digest)
            || hotstuff_checkpoint_digest(
                seq,
                &own.app_digest,
                &own.tables,
                &digest,
                &checkpoint_history.digest(),
            ) != own.digest
        {
            return None;
        }
        let (_, tip_height, _) = self.tree.tip();
        let committed = self.tree.committed_above(seq);
        if committed.len() as u64 != tip_height.0 - seq.0 {
            return None;
        }
        let mut heads = vec![self.high_qc.block];
        heads.extend(self.last_voted_block);
        let mut seen = BTreeSet::new();
        let mut uncommitted: Vec<Arc<Block>> = heads
            .into_iter()
            .flat_map(|head| self.tree.uncommitted_chain(head))
            .filter(|b| seen.insert(b.digest()))
            .collect();
        uncommitted.sort_by_key(|b| b.round);
        let state = DurableState {
            last_voted_round: self.safety.last_voted_round(),
            preferred_round: self.safety.preferred_round(),
            high_qc: self.high_qc.clone(),
            stable: self.stable.clone(),
            app_digest: own.app_digest,
            tables: own.tables.clone(),
            checkpoint_block: block,
            committed,
            uncommitted,
            history: self.tree.history().clone(),
            checkpoint_history: History::clone(&checkpoint_history),
        };
        Some(DurableCheckpoint {
            seq,
            app_digest: own.app_digest,
            snapshot,
            base: HotStuffRecord::Base(Box::new(state)),
        })
    }

    /// Replays record `index` of this replica's log (see [`HotStuffRecord`]); nothing
    /// is sent and no timer is set until `start`.
    pub(crate) fn replay(
        &mut self,
        index: u64,
        record: HotStuffRecord,
    ) -> Result<(), RecoveryError> {
        let fail = |problem: String| RecoveryError { index, problem };
        match record {
            HotStuffRecord::Base(state) => {
                if index != 0 {
                    return Err(fail("a base record after the first".into()));
                }
                self.replay_base(*state).map_err(fail)?;
            }
            HotStuffRecord::Voted(block) => {
                if block.round == View(0)
                    || block.round.0 == u64::MAX
                    || block.qc.round >= block.round
                {
                    return Err(fail(
                        "a vote for a block whose QC is not below its round".into(),
                    ));
                }
                // Its QC was verified before the vote (proposals are checked) and is
                // not verified again: a long log replays without a signature check
                // per vote. It becomes the highest QC only if no checked one is higher.
                let digest = block.digest();
                if block.round >= self.safety.last_voted_round() {
                    self.last_voted_block = Some(digest);
                }
                self.safety.restore(block.round, View(0));
                self.note_logged_qc(&block.qc);
                self.restore_high_qc(block.qc.clone());
                // At or below the committed tip (a base covers it): nothing to hold.
                let _ = self.tree.insert(digest, block);
            }
            HotStuffRecord::TimedOut { round, high_qc } => {
                if high_qc.round >= round || round.0 == u64::MAX {
                    return Err(fail(
                        "a timeout whose highest QC is not below its round".into(),
                    ));
                }
                self.check_logged_qc(&high_qc).map_err(fail)?;
                self.safety.restore(round, View(0));
                self.note_logged_qc(&high_qc);
                self.restore_high_qc(high_qc);
            }
            HotStuffRecord::Certified(qc) => {
                if qc.round == View(0) {
                    return Err(fail("a commit by the genesis QC".into()));
                }
                self.check_logged_qc(&qc).map_err(fail)?;
                self.note_logged_qc(&qc);
                self.restore_high_qc(qc);
            }
            HotStuffRecord::Stable(cert) => {
                if cert.seq > self.stable.seq {
                    self.stable = cert;
                }
            }
            HotStuffRecord::Locked(lock) => {
                self.safety.restore(View(0), lock);
                self.persisted_lock = self.persisted_lock.max(lock);
            }
        }
        // A restarted replica resumes in the last round it voted or timed out in (no
        // second vote there: the safety rules hold that round), or after its highest
        // QC, from the base time-out (the rounds replayed are not failed rounds). Not
        // after it: its peers may still be in that round, waiting for its timeout to
        // form the round's TC (a replica moves on only with a QC or a TC; resuming one
        // round ahead split a whole cluster restarted at once into two rounds, neither
        // with a quorum of timeouts).
        let resume = self
            .safety
            .last_voted_round()
            .max(self.high_qc.round.next());
        self.pacemaker.resume(resume);
        // A leader proposes only in a round it has not voted or timed out in, and its
        // proposal leaves after its `Voted` record: it proposed in no round above its
        // last voted one, and proposes in none up to it again.
        self.last_proposed = self.last_proposed.max(self.safety.last_voted_round());
        Ok(())
    }

    /// The safety floor of a refused log's record (`Protocol::salvage`): the round
    /// voted or timed out in, the lock; nothing else of the record is trusted.
    pub(crate) fn salvage(&mut self, record: HotStuffRecord) {
        let (voted, lock) = match record {
            HotStuffRecord::Base(s) => (s.last_voted_round, s.preferred_round),
            HotStuffRecord::Voted(b) => (b.round, View(0)),
            HotStuffRecord::TimedOut { round, .. } => (round, View(0)),
            HotStuffRecord::Locked(lock) => (View(0), lock),
            HotStuffRecord::Stable(_) | HotStuffRecord::Certified(_) => return,
        };
        let cap = |r: Round| View(r.0.min(u64::MAX - 1));
        let (voted, lock) = (cap(voted), cap(lock));
        let floor = self.salvaged_floor.get_or_insert((View(0), View(0)));
        *floor = (floor.0.max(voted), floor.1.max(lock));
        self.safety.restore(voted, lock);
        self.pacemaker.resume(self.safety.last_voted_round());
        self.last_proposed = self.last_proposed.max(self.safety.last_voted_round());
    }

    /// At `start`, after a salvage: logs the floor again in the new log (a timeout of
    /// the last voted round holding the genesis QC, the lock), before anything is
    /// sent.
    pub(crate) fn log_salvaged_floor(&mut self, out: &mut Vec<HotStuffAction>) {
        let Some((voted, lock)) = self.salvaged_floor.take() else {
            return;
        };
        tracing::warn!(replica = %self.me, last_voted_round = %voted, lock = %lock,
            "safety floor salvaged from a refused log");
        if voted > View(0) {
            out.push(crate::protocol::Action::Persist(HotStuffRecord::TimedOut {
                round: voted,
                high_qc: Qc::genesis(),
            }));
        }
        if lock > self.persisted_lock {
            self.persisted_lock = lock;
            out.push(crate::protocol::Action::Persist(HotStuffRecord::Locked(
                lock,
            )));
        }
    }

    /// The vote for the last voted block, signed again (the same vote: signatures are
    /// deterministic), to resend with a timeout of its round; none if a later timeout
    /// or a base holds the last voted round.
    fn restore_last_vote(&mut self) {
        let Some(digest) = self.last_voted_block else {
            return;
        };
        let Some(round) = self.tree.get(&digest).map(|b| b.round) else {
            return;
        };
        if self.last_vote.is_some() || round != self.safety.last_voted_round() {
            return;
        }
        let body = crate::hotstuff::qc::VoteBody {
            block: digest,
            round,
        };
        self.last_vote = Some(crate::crypto::Signed {
            signature: self
                .keys
                .sign(&crate::crypto::SignedBody::signing_bytes(&body)),
            body,
            signer: self.me,
        });
    }

    /// A QC the log holds: a head for the commit rule at `start`.
    fn note_logged_qc(&mut self, qc: &Qc) {
        self.logged_qc_round = self.logged_qc_round.max(qc.round);
        self.recovered_heads.push((qc.round, qc.block));
    }

    /// Blocks committed by the QC certifying `certified`: unless the log holds a QC as
    /// high (the replica's vote for a block carrying it, usually in this very event),
    /// that QC is logged at the end of the event ([`HotStuff::log_commit_qc`]).
    ///
    /// Only a verified QC is logged (a restart adopts it as its highest QC): the
    /// highest QC, or one this replica verified or formed, or the QC inside a held
    /// block once its signatures verify — a fetched block's digest binds its QC's block
    /// and round, not the signatures, so a faulty peer may have forged them. If that
    /// one does not verify, the highest QC is logged instead when it is higher (it
    /// certifies a block extending the committed ones, so a restart re-derives the
    /// commits from it).
    pub(crate) fn note_commit_qc(&mut self, certified: Digest) {
        let qc = if self.high_qc.block == certified {
            Some(self.high_qc.clone())
        } else if let Some(qc) = self.certified.get(&certified) {
            Some(qc.clone())
        } else {
            let held = self
                .tree
                .pending_blocks()
                .filter_map(|(_, d)| self.tree.get(&d))
                .map(|b| &b.qc)
                .find(|qc| qc.block == certified)
                .cloned();
            match held {
                Some(qc) if self.verify_qc(&qc) => Some(qc),
                Some(qc) => {
                    self.counters.unverified_commit_qcs += 1;
                    (self.high_qc.round > qc.round).then(|| self.high_qc.clone())
                }
                None => None,
            }
        };
        if let Some(qc) = qc
            && qc.round > self.logged_qc_round
            && self.commit_qc.as_ref().is_none_or(|c| c.round < qc.round)
        {
            self.commit_qc = Some(qc);
        }
    }

    /// A QC a record holds, checked before replay adopts it: a round below the
    /// largest (whose successor exists), signed by a quorum (the genesis QC aside).
    fn check_logged_qc(&mut self, qc: &Qc) -> Result<(), String> {
        if qc.round.0 == u64::MAX {
            return Err("a QC of the last round".into());
        }
        if *qc != Qc::genesis() && !self.verify_qc(qc) {
            return Err(format!("the QC of round {} does not verify", qc.round));
        }
        Ok(())
    }

    /// At the end of an event: logs the QC that committed blocks in it unless a record
    /// of the event (a vote for a block carrying it, a timeout) holds one as high, so
    /// the replies to those blocks' requests, sent after their execution, follow a
    /// record from which a restart re-derives the commit.
    pub(crate) fn log_commit_qc(&mut self, out: &mut Vec<HotStuffAction>) {
        if let Some(qc) = self.commit_qc.take()
            && qc.round > self.logged_qc_round
        {
            self.logged_qc_round = qc.round;
            out.push(crate::protocol::Action::Persist(HotStuffRecord::Certified(
                qc,
            )));
        }
    }

    fn restore_high_qc(&mut self, qc: Qc) {
        if qc.round > self.high_qc.round {
            self.high_qc = qc;
        }
    }

    /// Resumes at a log's compaction point, after checking it describes one state.
    fn replay_base(&mut self, s: DurableState) -> Result<(), String> {
        let seq = s.stable.seq;
        let c = &self.cfg.common;
        let (interval, window) = (c.checkpoint_interval, c.client_window);
        if seq == Seq(0) || !s.stable.verify(&mut self.keys, self.quorum, interval) {
            return Err(format!("stable certificate at {seq} does not verify"));
        }
        if !s.tables.is_well_formed(window) {
            return Err(format!("exactly-once tables at {seq} are malformed"));
        }
        let block = s.checkpoint_block;
        let digest = block.digest();
        if block.height != seq
            || !s.checkpoint_history.fits(self.n, digest, block.round)
            || hotstuff_checkpoint_digest(
                seq,
                &s.app_digest,
                &s.tables,
                &digest,
                &s.checkpoint_history.digest(),
            ) != s.stable.digest
        {
            return Err(format!("state at {seq} does not match its certificate"));
        }
        if s.last_voted_round.0 == u64::MAX || s.preferred_round.0 == u64::MAX {
            return Err(format!("safety state at {seq} is out of range"));
        }
        if let Err(e) = self.check_logged_qc(&s.high_qc) {
            return Err(format!("highest QC: {e}"));
        }
        let mut parent = (digest, block.height, block.round);
        for b in &s.committed {
            if b.parent() != parent.0 || b.height != parent.1.next() || b.round <= parent.2 {
                return Err(format!(
                    "committed block at {} does not extend the one below",
                    b.height
                ));
            }
            parent = (b.digest(), b.height, b.round);
        }
        let (tip, tip_height, tip_round) = parent;
        if !s.history.fits(self.n, tip, tip_round) {
            return Err(format!(
                "reputation history does not end at the tip {tip_height}"
            ));
        }
        if let Some(b) = s
            .uncommitted
            .iter()
            .find(|b| !self.block_well_formed(b) || b.height <= tip_height || b.round <= tip_round)
        {
            return Err(format!(
                "uncommitted block of round {} is malformed or below the tip",
                b.round
            ));
        }

        self.tree.reset_to(digest, block.clone());
        self.tree.set_history(s.checkpoint_history.clone());
        self.tree
            .set_checkpoint_history(seq, std::sync::Arc::new(s.checkpoint_history));
        self.tree.extend_committed(s.committed);
        debug_assert_eq!(self.tree.tip(), (tip, tip_height, tip_round));
        self.tree.set_history(s.history);
        for b in s.uncommitted {
            let round = b.round;
            if !matches!(
                self.tree.insert(b.digest(), b),
                Insert::Inserted | Insert::Known
            ) {
                return Err(format!("uncommitted block of round {round} is not held"));
            }
        }
        self.safety.restore(s.last_voted_round, s.preferred_round);
        self.persisted_lock = self.persisted_lock.max(s.preferred_round);
        self.note_logged_qc(&s.high_qc);
        self.restore_high_qc(s.high_qc);
        self.last_delivered = seq;
        self.last_executed = seq;
        self.delivered_table = s.tables.delivered.clone();
        self.checkpoint_blocks.insert(seq, block);
        self.own_checkpoints.insert(
            seq,
            OwnCheckpoint {
                digest: s.stable.digest,
                app_digest: s.app_digest,
                tables: s.tables,
                snapshot: None,
            },
        );
        self.stable = s.stable;
        Ok(())
    }

    /// After a restart from disk (called by `start`; a fresh replica finds nothing to
    /// do): re-derives the commits of the QCs the log holds — the one inside each held
    /// block, and the highest QC, in round order — then delivers the committed blocks
    /// above the checkpoint (or genesis) the application was restored to.
    pub(crate) fn resume_recovered(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        self.restore_last_vote();
        let mut heads = std::mem::take(&mut self.recovered_heads);
        heads.extend(
            self.tree
                .pending_blocks()
                .filter_map(|(_, d)| self.tree.get(&d).map(|b| (b.qc.round, b.qc.block))),
        );
        heads.push((self.high_qc.round, self.high_qc.block));
        heads.sort();
        heads.dedup();
        for (_, head) in heads {
            if self.tree.contains(&head) {
                self.check_commit(now, head, None, out);
            }
        }
        self.try_deliver(now, out);
    }
}
