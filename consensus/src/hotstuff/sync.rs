//! Catching up: status gossip, certificates for peers behind, block sync (fetching
//! missing ancestors by digest), checkpoints and state transfer.
//!
//! - Every status interval a replica broadcasts its round, highest QC round, committed
//!   height and stable checkpoint. A peer ahead answers with its highest QC and latest
//!   TC (so the replica enters the current round and learns the chain's head) and, if
//!   its stable checkpoint is above the replica's committed height, the certificate.
//! - A QC for a block a replica lacks, or a block whose parent it lacks, starts a
//!   fetch: `FetchBlock(digest)` to the peer that showed it, retried with other peers
//!   every status interval; the answer is the block and up to 15 ancestors. A fetched
//!   block is kept only if its digest was asked for (a digest a verified QC or a held
//!   block names), so its content is certified without checking anything else; the
//!   QCs inside fetched blocks then drive the commit rule for older blocks. At most
//!   `MAX_WANTED` digests are fetched at once.
//! - Checkpoints reuse `checkpoint.rs` (votes, certificates and divergence are its
//!   shared `CheckpointReplica`): after executing every K-th height a replica
//!   signs a checkpoint digest binding the application digest, the exactly-once
//!   tables and the committed block at that height; a quorum makes a stable
//!   certificate; committed blocks below it are dropped. A replica behind a stable
//!   checkpoint (after a grace period for block sync) fetches the state header and
//!   the certified block, then the application state chunk by chunk, installs it,
//!   and continues the chain from that block (the shared `state_transfer.rs`:
//!   HotStuff adds the block and resets its tree to it).

use std::sync::Arc;

use crate::checkpoint::{
    CheckpointParts, CheckpointReplica, FetchChunk, OwnCheckpoint, PendingInstall,
    SignedCheckpoint, StableCert, StateChunk, StateSnapshot, checkpoint_digest,
    retain_own_checkpoints,
};
use crate::exactly_once::{ClientTables, is_delivered};
use crate::hotstuff::block::Block;
use crate::hotstuff::block_tree::Insert;
use crate::hotstuff::counters::Counters;
use crate::hotstuff::durable::HotStuffRecord;
use crate::hotstuff::leaders::History;
use crate::hotstuff::message::{BlockSnapshot, HotStuffTimer, Message, Status};
use crate::hotstuff::qc::{Qc, Tc};
use crate::hotstuff::replica::{
    HotStuff, HotStuffAction, Installing, MAX_BLOCKS_PER_ANSWER, MAX_WANTED,
};
use crate::protocol::Action;
use crate::resend_budget::ResendBudget;
use crate::state_chunks::RestoreStep;
use crate::state_transfer::{StateTransfer, Transfer, TransferParams, take_installed};
use crate::types::{Digest, ReplicaId, Seq, Time};

/// Fetch attempts after which a wanted block is given up (state transfer covers it).
const MAX_FETCH_ATTEMPTS: u32 = 20;
/// Wanted blocks re-requested per status interval.
const REFETCH_PER_TICK: usize = 4;

/// HotStuff's checkpoint digest: the shared [`checkpoint_digest`] of the application
/// digest and tables, bound to the committed block at the checkpoint's height and to
/// the leader-reputation history as it stood right after that block committed
/// ([`History::digest`]). Binding the history lets a replica that installs the
/// checkpoint by state transfer take the history with it, certified, and elect the
/// same leaders as its peers at once (without it, such a replica fell back to
/// round-robin for ~440 rounds, and two of them at n = 4 split the votes of every
/// round: simulator seed 44, `partition`, with disks).
pub fn hotstuff_checkpoint_digest(
    seq: Seq,
    app_digest: &Digest,
    tables: &ClientTables,
    block: &Digest,
    history: &Digest,
) -> Digest {
    let base = checkpoint_digest(seq, app_digest, &tables.digest());
    Digest::of(&[
        b"tandem-hotstuff-checkpoint-v2",
        &base.0,
        &block.0,
        &history.0,
    ])
}

impl CheckpointReplica for HotStuff {
    type Action = HotStuffAction;
    type Counters = Counters;

    fn checkpoint_parts(&mut self) -> CheckpointParts<'_, Counters> {
        CheckpointParts {
            me: self.me,
            quorum: self.quorum,
            interval: self.cfg.common.checkpoint_interval,
            keys: &mut self.keys,
            stable: &mut self.stable,
            votes: &mut self.checkpoint_votes,
            own: &mut self.own_checkpoints,
            diverged: &mut self.diverged,
            counters: &mut self.counters,
        }
    }

    fn last_delivered(&self) -> Seq {
        self.last_delivered
    }

    /// Sixteen checkpoint intervals above the stable checkpoint.
    fn vote_horizon(&self) -> u64 {
        self.cfg.common.checkpoint_interval.saturating_mul(16)
    }

    fn broadcast_vote(&mut self, vote: SignedCheckpoint, out: &mut Vec<HotStuffAction>) {
        self.broadcast(Message::Checkpoint(vote), out);
    }

    fn persist_stable(&mut self, cert: &StableCert, out: &mut Vec<HotStuffAction>) {
        out.push(Action::Persist(HotStuffRecord::Stable(cert.clone())));
    }

    fn collect_stable_garbage(&mut self) {
        self.collect_garbage();
    }

    fn start_transfer(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        self.arm_transfer(now, out);
    }

    fn after_stable(&mut self, _now: Time, _out: &mut Vec<HotStuffAction>) {}
}

impl HotStuff {
    pub(crate) fn on_status_timer(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        let status = Status {
            round: self.round(),
            hqc_round: self.high_qc.round,
            committed: self.tree.tip().1,
            stable: self.stable.seq,
        };
        self.broadcast(Message::Status(status), out);
        // Retry fetches with another peer each time.
        let retry: Vec<(Digest, u32)> = self
            .wanted
            .iter()
            .take(REFETCH_PER_TICK)
            .map(|(d, a)| (*d, *a))
            .collect();
        for (digest, attempts) in retry {
            if attempts >= MAX_FETCH_ATTEMPTS || self.tree.contains(&digest) {
                self.wanted.remove(&digest);
                continue;
            }
            self.wanted.insert(digest, attempts + 1);
            let peer = ReplicaId(((self.me.0 as u64 + 1 + attempts as u64) % self.n as u64) as u32);
            self.send(peer, Message::FetchBlock(digest), out);
        }
        self.set_timer(
            HotStuffTimer::Status,
            now + self.cfg.common.status_interval,
            out,
        );
    }

    pub(crate) fn on_status(&mut self, from: ReplicaId, st: Status, out: &mut Vec<HotStuffAction>) {
        if st.round < self.round() || st.hqc_round < self.high_qc.round {
            self.send_certificates(from, out);
        }
        if self.stable.seq > st.committed && self.stable.seq > st.stable {
            self.send(from, Message::CheckpointCert(self.stable.clone()), out);
        }
    }

    pub(crate) fn on_certificates(
        &mut self,
        now: Time,
        from: ReplicaId,
        qc: Qc,
        tc: Option<Arc<Tc>>,
        out: &mut Vec<HotStuffAction>,
    ) {
        if qc.round > self.high_qc.round || !self.tree.contains(&qc.block) {
            if !self.verify_qc(&qc) {
                self.counters.dropped_bad_signature += 1;
                return;
            }
            self.process_qc(now, qc, Some(from), out);
        }
        if let Some(tc) = tc
            && tc.round >= self.round()
        {
            if !self.verify_tc(&tc) {
                self.counters.dropped_bad_signature += 1;
                return;
            }
            self.process_tc(now, tc, out);
        }
    }

    /// Starts fetching block `digest` (from `from`, else from everyone).
    pub(crate) fn fetch(
        &mut self,
        digest: Digest,
        from: Option<ReplicaId>,
        out: &mut Vec<HotStuffAction>,
    ) {
        if self.tree.contains(&digest) || self.wanted.contains_key(&digest) {
            return;
        }
        if self.wanted.len() >= MAX_WANTED {
            return;
        }
        self.wanted.insert(digest, 0);
        match from {
            Some(peer) if peer != self.me => self.send(peer, Message::FetchBlock(digest), out),
            _ => self.broadcast(Message::FetchBlock(digest), out),
        }
    }

    pub(crate) fn on_fetch_block(
        &mut self,
        from: ReplicaId,
        digest: Digest,
        out: &mut Vec<HotStuffAction>,
    ) {
        let blocks = self.tree.ancestors(digest, MAX_BLOCKS_PER_ANSWER);
        if !blocks.is_empty() {
            self.send(from, Message::Blocks(blocks), out);
        }
    }

    /// Blocks a peer sent: keeps the ones asked for, asks for missing parents, and
    /// runs the commit rule over the QCs they carry.
    pub(crate) fn on_blocks(
        &mut self,
        now: Time,
        from: ReplicaId,
        blocks: Vec<Arc<Block>>,
        out: &mut Vec<HotStuffAction>,
    ) {
        if blocks.len() > MAX_BLOCKS_PER_ANSWER {
            self.counters.dropped_malformed += 1;
            return;
        }
        let mut inserted = Vec::new();
        for block in blocks {
            let digest = block.digest();
            if !self.wanted.contains_key(&digest) {
                self.counters.dropped_unrequested += 1;
                continue;
            }
            if !self.block_well_formed(&block) || !self.batch_within_limits(&block.batch) {
                self.counters.dropped_bad_block += 1;
                continue;
            }
            self.wanted.remove(&digest);
            let parent = block.parent();
            let height = block.height;
            match self.tree.insert(digest, block) {
                Insert::Inserted => {
                    self.counters.blocks_fetched += 1;
                    inserted.push((height, digest, parent));
                }
                Insert::Known | Insert::Stale => continue,
                Insert::Full => {
                    self.counters.dropped_tree_full += 1;
                    continue;
                }
            }
            if height > self.tree.tip().1.next()
                && !self.tree.contains(&parent)
                && self.wanted.len() < MAX_WANTED
            {
                self.wanted.entry(parent).or_insert(0);
            }
        }
        inserted.sort();
        // A fetched block's QC is not cached as verified: the block's digest binds
        // only the QC's block and round, not its signatures.
        for (_, _, parent) in &inserted {
            if let Some(p) = self.tree.get(parent) {
                let grand_round = p.qc.round;
                self.safety.observe_qc(grand_round);
                self.check_commit(now, *parent, Some(from), out);
            }
        }
        let hqc = self.high_qc.block;
        if self.tree.contains(&hqc) {
            let parent_round = self.tree.get(&hqc).map(|b| b.qc.round).unwrap_or_default();
            self.safety.observe_qc(parent_round);
            self.check_commit(now, hqc, Some(from), out);
        }
        // Ask the same peer for the next missing parents right away.
        let next: Vec<Digest> = inserted
            .iter()
            .map(|(_, _, p)| *p)
            .filter(|p| self.wanted.get(p) == Some(&0))
            .collect();
        for p in next {
            self.wanted.insert(p, 1);
            self.send(from, Message::FetchBlock(p), out);
        }
        if let Some((digest, tc)) = self.deferred.clone()
            && self
                .tree
                .get(&digest)
                .is_some_and(|b| self.tree.contains(&b.parent()))
        {
            self.deferred = None;
            let author = self.tree.get(&digest).map(|b| b.author).unwrap_or(from);
            self.try_vote(now, digest, tc, author, out);
        }
        self.try_propose(now, out);
    }

    // ---- checkpoints ----

    /// Records our checkpoint after executing `seq` (bound to the committed block
    /// there, kept to serve state transfer) and broadcasts a signed vote.
    pub(crate) fn take_checkpoint(
        &mut self,
        now: Time,
        seq: Seq,
        app_digest: Digest,
        tables: ClientTables,
        block: Digest,
        out: &mut Vec<HotStuffAction>,
    ) {
        if seq < self.stable.seq {
            // Executed after a later checkpoint became stable without us: nothing to
            // vote for, and its history may already be pruned.
            return;
        }
        let Some(history) = self.tree.checkpoint_history(seq) else {
            // Kept for every checkpoint height committed since the last reset at or
            // above the stable one, and a reset (state transfer, compaction point)
            // keeps the certified one.
            self.counters.unexpected_executions += 1;
            tracing::warn!(replica = %self.me, %seq, "no reputation history at a checkpoint height");
            return;
        };
        let digest =
            hotstuff_checkpoint_digest(seq, &app_digest, &tables, &block, &history.digest());
        if let Some(b) = self.tree.get(&block) {
            self.checkpoint_blocks.insert(seq, b.clone());
        }
        let own = OwnCheckpoint {
            digest,
            app_digest,
            tables,
            snapshot: None,
        };
        self.record_own_checkpoint(now, seq, own, out);
    }

    /// Drops what the stable checkpoint made unnecessary.
    pub(crate) fn collect_garbage(&mut self) {
        let stable = self.stable.seq;
        let keep = stable.min(self.last_delivered);
        self.tree.prune_committed_below(keep);
        self.checkpoint_votes.prune_through(stable);
        retain_own_checkpoints(&mut self.own_checkpoints, stable);
        self.checkpoint_blocks = self.checkpoint_blocks.split_off(&stable);
    }

    // ---- state transfer ----

    /// Sends `to` a state-transfer answer (a header or a chunk) within its budget:
    /// two chunks' worth of bytes (`2 × state_chunk_bytes`) per status interval, so
    /// no number of fetches makes this replica send a peer more (an answer may
    /// overdraw the budget once; the peer then waits for the refill).
    fn send_state_answer(
        &mut self,
        now: Time,
        to: ReplicaId,
        msg: Message,
        out: &mut Vec<HotStuffAction>,
    ) {
        let bytes = crate::crypto::encoded_len(&msg);
        let per_interval = (self.cfg.common.state_chunk_bytes as u64).saturating_mul(2);
        let budget = self
            .state_budgets
            .entry(to)
            .or_insert_with(|| ResendBudget::full(per_interval, now));
        if !budget.charge(now, bytes, per_interval, self.cfg.common.status_interval) {
            self.counters.state_budget_exhausted += 1;
            return;
        }
        self.send(to, msg, out);
    }

    pub(crate) fn on_fetch_state(
        &mut self,
        now: Time,
        from: ReplicaId,
        seq: Seq,
        out: &mut Vec<HotStuffAction>,
    ) {
        if self.stable.seq < seq {
            return;
        }
        let Some(own) = self.own_checkpoints.get(&self.stable.seq) else {
            return;
        };
        let Some(block) = self.checkpoint_blocks.get(&self.stable.seq) else {
            return;
        };
        let Some(history) = self.tree.checkpoint_history(self.stable.seq) else {
            return;
        };
        let Some(state) = StateSnapshot::of(&self.stable, own) else {
            return;
        };
        let snapshot = BlockSnapshot {
            state,
            block: block.clone(),
            history: History::clone(&history),
        };
        self.send_state_answer(now, from, Message::StateSnapshot(Box::new(snapshot)), out);
    }

    /// A fetched state header with its block: if it is the one to install and the
    /// block is the certified one at its height, its state is fetched chunk by chunk
    /// from the sender.
    pub(crate) fn on_state_snapshot(
        &mut self,
        now: Time,
        from: ReplicaId,
        s: BlockSnapshot,
        out: &mut Vec<HotStuffAction>,
    ) {
        let seq = s.state.cert.seq;
        let digest = s.block.digest();
        let height = s.block.height;
        // The history must end at the certified block; its digest is then checked
        // with the rest against the certificate. Both run only for a header this
        // replica asked for and can use (`accept_snapshot` calls `expected` last).
        let (n, round, history) = (self.n, s.block.round, &s.history);
        let expected = |state: &StateSnapshot| {
            (height == seq && history.fits(n, digest, round)).then(|| {
                let history = history.digest();
                hotstuff_checkpoint_digest(seq, &state.app_digest, &state.tables, &digest, &history)
            })
        };
        if !self.accept_snapshot(from, &s.state, expected) {
            return;
        }
        let app_digest = s.state.app_digest;
        self.installing = Some(Installing {
            install: s.state.into_pending(),
            block: s.block,
            digest,
            history: Arc::new(s.history),
        });
        self.begin_chunk_fetch(now, from, seq, app_digest, out);
    }
}

impl StateTransfer for HotStuff {
    /// The application's verdict on the snapshot it was asked to install: on
    /// success the chain continues above the installed block.
    fn on_snapshot_installed(
        &mut self,
        now: Time,
        seq: Seq,
        ok: bool,
        out: &mut Vec<HotStuffAction>,
    ) {
        let Some(installing) = take_installed(
            &mut self.installing,
            seq,
            ok,
            |i| &i.install,
            &mut self.counters,
        ) else {
            return;
        };
        let Installing {
            install,
            block,
            digest,
            history,
        } = installing;
        self.checkpoint_blocks.insert(seq, block.clone());
        self.tree.reset_to(digest, block);
        if self.tree.tip().0 == digest {
            // The certified history replaces the reset one: leaders agree at once.
            self.tree.set_history(History::clone(&history));
        }
        self.tree.set_checkpoint_history(seq, history);
        self.complete_transfer(now, seq, install, out);
        // Continue the chain above the installed block.
        let hqc = self.high_qc.block;
        if self.tree.contains(&hqc) {
            self.check_commit(now, hqc, None, out);
        } else {
            self.fetch(hqc, None, out);
        }
        self.try_deliver(now, out);
    }

    fn transfer_mut(&mut self) -> &mut Option<Transfer> {
        &mut self.transfer
    }

    fn installing_cert(&self) -> Option<&StableCert> {
        self.installing.as_ref().map(|i| &i.install.cert)
    }

    fn abandon_install(&mut self) {
        self.installing = None;
    }

    fn transfer_params(&self) -> TransferParams {
        TransferParams {
            status_interval: self.cfg.common.status_interval,
            transfer_timeout: self.cfg.common.transfer_timeout,
            client_window: self.cfg.common.client_window,
            state_chunk_bytes: self.cfg.common.state_chunk_bytes,
        }
    }

    fn set_transfer_timer(&mut self, at: Time, out: &mut Vec<HotStuffAction>) {
        self.set_timer(HotStuffTimer::Transfer, at, out);
    }

    fn cancel_transfer_timer(&mut self, out: &mut Vec<HotStuffAction>) {
        self.cancel_timer(HotStuffTimer::Transfer, out);
    }

    fn send_fetch_state(&mut self, peer: ReplicaId, seq: Seq, out: &mut Vec<HotStuffAction>) {
        self.send(peer, Message::FetchState(seq), out);
    }

    fn send_fetch_chunk(
        &mut self,
        peer: ReplicaId,
        fetch: FetchChunk,
        out: &mut Vec<HotStuffAction>,
    ) {
        self.send(peer, Message::FetchChunk(fetch), out);
    }

    fn send_state_chunk(
        &mut self,
        now: Time,
        peer: ReplicaId,
        chunk: StateChunk,
        out: &mut Vec<HotStuffAction>,
    ) {
        self.send_state_answer(now, peer, Message::StateChunk(chunk), out);
    }

    fn push_restore(&mut self, step: RestoreStep, out: &mut Vec<HotStuffAction>) {
        out.push(Action::Restore(step));
    }

    fn adopt_installed(&mut self, seq: Seq, install: &PendingInstall) {
        self.last_delivered = seq;
        self.last_executed = seq;
        self.pending_execution.clear();
        self.delivered_table = install.own.tables.delivered.clone();
        let delivered = &self.delivered_table;
        self.pending
            .retain(|(client, number)| !is_delivered(delivered, *client, *number));
        self.pending_by_client
            .recount(self.pending.iter().map(|(client, _)| *client));
    }
}
