//! State transfer, shared by every protocol: a replica behind the stable checkpoint
//! (or whose state diverged from it) waits a grace period (three status intervals,
//! for the normal case or block sync to catch up), then asks the certificate's
//! signers for the checkpoint's state in turn, one per transfer time-out; it checks
//! the header against the certificate ([`StateSnapshot::verify`]; only a header from
//! the peer asked is taken), then fetches the application state chunk by chunk from
//! that peer, handing each chunk to the application, which verifies it against the
//! certified application digest before keeping it, and, once the application holds
//! the whole state, installs it and continues from the checkpoint.
//!
//! ```text
//!          grace period / time-out: ask the next signer for a header
//!   idle ──► FetchState(peer) ──► header from peer verified ──► Begin, FetchChunk(0)
//!                ▲                                                      │
//!                │ abandon: 2 × signers switches,                       ▼
//!                │ or our stable checkpoint moved past it     ┌─► awaiting chunk i ◄─┐
//!                │                                            │         │ chunk i     │ kept,
//!                └──────────── switch peer ◄── refused / time-out      ▼ from peer   │ more
//!                                   │                         │     verifying ────────┘
//!                                   └─► Begin, FetchChunk(0) ─┘         │ kept, complete
//!                                       to the next signer              ▼
//!                                                  Finish ──► installed (or refused: refetch)
//! ```
//!
//! Chunks are fetched one at a time (one in flight per transfer), so a receiver holds
//! at most one unverified chunk, of at most `state_chunk_bytes` plus
//! [`CHUNK_SLACK_BYTES`] (larger ones are dropped before the application sees them),
//! beside the verified part of the state it assembles. Every chunk of one restore
//! comes from one peer: a replica may cut the same state at other boundaries (a
//! Byzantine one where it likes), so when a peer refuses to serve — a chunk the
//! application refused, or none within the transfer time-out — the restore starts
//! again from chunk 0 with the next signer, and nothing the dropped peer sends is
//! taken any more. A Byzantine sender is thus caught at its first bad chunk and holds
//! the fetch for at most one time-out per round of signers; two rounds without an
//! install, or our stable checkpoint moving past the one fetched (its signers keep
//! only the stable checkpoint's and the one before it), abandon the fetch and a
//! header is fetched afresh.
//!
//! [`StateTransfer`] is the one copy of that logic; a protocol supplies its timer, its
//! fetch message, its checkpoint digest check and what it resets on install.

use std::time::Duration;

use crate::checkpoint::{
    CheckpointCount, CheckpointCounters, CheckpointReplica, FetchChunk, PendingInstall, StableCert,
    StateChunk, StateSnapshot,
};
use crate::state_chunks::{RestoreOutcome, RestoreStep};
use crate::types::{Digest, ReplicaId, Seq, Time};

/// A state transfer under way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transfer {
    /// Fetch attempts so far (selects the next peer to ask).
    pub attempts: u32,
    /// The peer last asked for a header — the only one whose header is taken —, or
    /// `None` while the timer is still the grace period.
    pub asked: Option<ReplicaId>,
    /// The chunk fetch under way, once a header was accepted.
    pub fetch: Option<ChunkFetch>,
}

/// A chunked fetch of a checkpoint's application state (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkFetch {
    /// The checkpoint.
    pub seq: Seq,
    /// The application digest its certificate vouches for.
    pub app_digest: Digest,
    /// The peer every chunk of this restore comes from.
    pub peer: ReplicaId,
    /// The next chunk to fetch (every chunk below it is kept by the application).
    pub next: u64,
    /// Chunk `next` is with the application, awaiting its verdict.
    pub verifying: bool,
    /// Every chunk is kept; the install is with the application.
    pub finishing: bool,
    /// Peers given up on (a refused chunk or a time-out) for this header.
    pub switches: u32,
}

/// Bytes a received chunk may exceed `state_chunk_bytes` by (an application's proof
/// and one indivisible unit, e.g. a ledger chunk's range proof and one bucket); a
/// larger one is dropped before the application sees it.
pub(crate) const CHUNK_SLACK_BYTES: usize = 64 << 10;

/// The parameters state transfer reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TransferParams {
    /// The status interval: the grace period is three of them.
    pub status_interval: Duration,
    /// How long to wait for a snapshot before asking the next peer.
    pub transfer_timeout: Duration,
    /// The client window a snapshot's exactly-once table must respect.
    pub client_window: u64,
    /// The cluster's bound on one state chunk (`CommonParams::state_chunk_bytes`).
    pub state_chunk_bytes: usize,
}

/// The state transfer every protocol shares. A protocol implements the required
/// methods; the provided ones are the shared logic.
pub(crate) trait StateTransfer: CheckpointReplica {
    /// The transfer under way, if any.
    fn transfer_mut(&mut self) -> &mut Option<Transfer>;
    /// The certificate of the checkpoint being restored, if any (from its accepted
    /// header until the application's install verdict).
    fn installing_cert(&self) -> Option<&StableCert>;
    /// Forgets the restore under way (its chunk fetch was abandoned).
    fn abandon_install(&mut self);
    /// The parameters state transfer reads.
    fn transfer_params(&self) -> TransferParams;
    /// Sets the protocol's transfer timer.
    fn set_transfer_timer(&mut self, at: Time, out: &mut Vec<Self::Action>);
    /// Cancels the protocol's transfer timer.
    fn cancel_transfer_timer(&mut self, out: &mut Vec<Self::Action>);
    /// Asks `peer` for the state at the stable checkpoint `seq`.
    fn send_fetch_state(&mut self, peer: ReplicaId, seq: Seq, out: &mut Vec<Self::Action>);
    /// Asks `peer` for a chunk of a checkpoint's state.
    fn send_fetch_chunk(&mut self, peer: ReplicaId, fetch: FetchChunk, out: &mut Vec<Self::Action>);
    /// Sends `peer` a chunk of our state it asked for (within its resend budget, if
    /// the protocol keeps one).
    fn send_state_chunk(
        &mut self,
        now: Time,
        peer: ReplicaId,
        chunk: StateChunk,
        out: &mut Vec<Self::Action>,
    );
    /// Asks the driver to carry out a restore step on the application.
    fn push_restore(&mut self, step: RestoreStep, out: &mut Vec<Self::Action>);
    /// The application's verdict on installing the restored state of checkpoint `seq`
    /// (the protocol completes the transfer with [`StateTransfer::complete_transfer`]).
    fn on_snapshot_installed(&mut self, now: Time, seq: Seq, ok: bool, out: &mut Vec<Self::Action>);
    /// Takes on the installed checkpoint `install` at `seq` before it becomes our
    /// own: delivered and executed through `seq`, its exactly-once table, and what
    /// the protocol continues from.
    fn adopt_installed(&mut self, seq: Seq, install: &PendingInstall);

    /// Starts the state-transfer grace period, unless one is under way.
    fn arm_transfer(&mut self, now: Time, out: &mut Vec<Self::Action>) {
        if self.transfer_mut().is_some() {
            return;
        }
        *self.transfer_mut() = Some(Transfer {
            attempts: 0,
            asked: None,
            fetch: None,
        });
        let grace = self.transfer_params().status_interval * 3;
        self.set_transfer_timer(now + grace, out);
    }

    /// Forgets the chunk fetch and the restore under way, if any.
    fn drop_fetch(&mut self) {
        if self.is_installing() {
            self.abandon_install();
        }
        if let Some(t) = self.transfer_mut().as_mut() {
            t.fetch = None;
        }
    }

    /// The chunk fetch under way, if any.
    fn fetch_mut(&mut self) -> Option<&mut ChunkFetch> {
        self.transfer_mut().as_mut().and_then(|t| t.fetch.as_mut())
    }

    /// The application's answer to a restore step: a chunk's verdict, or the
    /// install's ([`StateTransfer::on_snapshot_installed`]).
    fn on_restored(&mut self, now: Time, outcome: RestoreOutcome, out: &mut Vec<Self::Action>) {
        match outcome {
            RestoreOutcome::Chunk {
                seq,
                index,
                ok,
                complete,
            } => self.on_chunk_restored(now, seq, index, ok, complete, out),
            RestoreOutcome::Installed { seq, ok } => self.on_snapshot_installed(now, seq, ok, out),
        }
    }

    /// Whether a restore is under way (a header accepted, no install verdict yet).
    fn is_installing(&self) -> bool {
        self.installing_cert().is_some()
    }

    /// The transfer timer: during a chunk fetch, a chunk that did not come moves the
    /// fetch to the next signer (or abandons it); otherwise asks the next signer of the
    /// stable certificate for its header, unless we caught up.
    fn on_transfer_timer(&mut self, now: Time, out: &mut Vec<Self::Action>) {
        let Some(transfer) = *self.transfer_mut() else {
            return;
        };
        if let Some(fetch) = transfer.fetch {
            let retry_at = now + self.transfer_params().transfer_timeout;
            if fetch.verifying || fetch.finishing {
                if self.is_installing() {
                    self.set_transfer_timer(retry_at, out); // the application is at work
                    return;
                }
            } else if self.is_installing() {
                self.switch_chunk_peer(now, out);
                return;
            }
        }
        self.fetch_header(now, out);
    }

    /// Forgets any chunk fetch and restore under way and asks the next signer of the
    /// stable certificate for its header — or ends the transfer if we caught up.
    fn fetch_header(&mut self, now: Time, out: &mut Vec<Self::Action>) {
        self.drop_fetch();
        let Some(mut transfer) = *self.transfer_mut() else {
            return;
        };
        let retry_at = now + self.transfer_params().transfer_timeout;
        let last_delivered = self.last_delivered();
        let p = self.checkpoint_parts();
        if !*p.diverged && last_delivered >= p.stable.seq {
            *self.transfer_mut() = None;
            return;
        }
        let me = p.me;
        let seq = p.stable.seq;
        let peers: Vec<ReplicaId> = p.stable.signers().filter(|r| *r != me).collect();
        if peers.is_empty() {
            *self.transfer_mut() = None;
            return;
        }
        let peer = peers[transfer.attempts as usize % peers.len()];
        transfer.attempts = transfer.attempts.wrapping_add(1);
        transfer.asked = Some(peer);
        *self.transfer_mut() = Some(transfer);
        tracing::debug!(replica = %me, %peer, %seq, "fetching state");
        self.send_fetch_state(peer, seq, out);
        self.set_transfer_timer(retry_at, out);
    }

    /// Whether a fetched header `s` from `from` is one to install: asked of `from`,
    /// none being installed, at or above the stable checkpoint and ahead of us (or we
    /// diverged), consistent by the protocol's own check, and what its certificate
    /// vouches for. `expected` is that check: `None` if the header is inconsistent,
    /// else the protocol's checkpoint digest recomputed from it. Counts what it drops.
    fn accept_snapshot(
        &mut self,
        from: ReplicaId,
        s: &StateSnapshot,
        expected: impl FnOnce(&StateSnapshot) -> Option<Digest>,
    ) -> bool {
        let seq = s.cert.seq;
        let asked = self.transfer_mut().is_some_and(|t| t.asked == Some(from));
        let installing = self.is_installing();
        let last_delivered = self.last_delivered();
        let client_window = self.transfer_params().client_window;
        let p = self.checkpoint_parts();
        let useful =
            asked && !installing && seq >= p.stable.seq && (seq > last_delivered || *p.diverged);
        if !useful {
            p.counters.count(CheckpointCount::DroppedDuplicate);
            return false;
        }
        let valid = expected(s).is_some_and(|expected| {
            s.verify(p.keys, p.quorum, p.interval, client_window, expected)
        });
        if !valid {
            p.counters.count(CheckpointCount::DroppedInvalidCheckpoint);
        }
        valid
    }

    /// Starts fetching the state of the checkpoint `seq` whose header `peer` sent and
    /// we accepted (the protocol holds the install): the application begins a restore
    /// towards `app_digest`, and `peer` is asked for chunk 0.
    fn begin_chunk_fetch(
        &mut self,
        now: Time,
        peer: ReplicaId,
        seq: Seq,
        app_digest: Digest,
        out: &mut Vec<Self::Action>,
    ) {
        let Some(transfer) = self.transfer_mut().as_mut() else {
            return;
        };
        transfer.fetch = Some(ChunkFetch {
            seq,
            app_digest,
            peer,
            next: 0,
            verifying: false,
            finishing: false,
            switches: 0,
        });
        self.restart_chunks(now, out);
    }

    /// Begins the application's restore afresh and asks the fetch's peer for chunk 0.
    /// Every chunk of one restore comes from one peer: chunks from different replicas
    /// need not fit together (an application may cut the same state at other
    /// boundaries, and a Byzantine replica cuts where it likes).
    fn restart_chunks(&mut self, now: Time, out: &mut Vec<Self::Action>) {
        let timeout = self.transfer_params().transfer_timeout;
        let Some(fetch) = self.fetch_mut() else {
            return;
        };
        fetch.next = 0;
        fetch.verifying = false;
        let (seq, app_digest, peer) = (fetch.seq, fetch.app_digest, fetch.peer);
        self.push_restore(RestoreStep::Begin { seq, app_digest }, out);
        self.send_fetch_chunk(peer, FetchChunk { seq, index: 0 }, out);
        self.set_transfer_timer(now + timeout, out);
    }

    /// A chunk from `from`: handed to the application if it is the one awaited, from
    /// the peer asked, within the chunk bound; anything else is counted and dropped.
    fn on_state_chunk(&mut self, from: ReplicaId, chunk: StateChunk, out: &mut Vec<Self::Action>) {
        let bound = self
            .transfer_params()
            .state_chunk_bytes
            .saturating_add(CHUNK_SLACK_BYTES);
        if chunk.chunk.len() > bound {
            self.checkpoint_parts()
                .counters
                .count(CheckpointCount::DroppedMalformed);
            return;
        }
        let awaited = self.fetch_mut().filter(|f| {
            f.seq == chunk.seq
                && f.next == chunk.index
                && f.peer == from
                && !f.verifying
                && !f.finishing
        });
        let Some(fetch) = awaited else {
            self.checkpoint_parts()
                .counters
                .count(CheckpointCount::DroppedDuplicate);
            return;
        };
        fetch.verifying = true;
        self.push_restore(
            RestoreStep::Chunk {
                seq: chunk.seq,
                index: chunk.index,
                chunk: chunk.chunk,
            },
            out,
        );
    }

    /// The application's verdict on chunk `index` of checkpoint `seq`: kept — ask for
    /// the next, or install once complete; refused — count it and restart the restore
    /// with the next signer ([`StateTransfer::switch_chunk_peer`]).
    fn on_chunk_restored(
        &mut self,
        now: Time,
        seq: Seq,
        index: u64,
        ok: bool,
        complete: bool,
        out: &mut Vec<Self::Action>,
    ) {
        let retry_at = now + self.transfer_params().transfer_timeout;
        let fetch = self
            .fetch_mut()
            .filter(|f| f.seq == seq && f.next == index && f.verifying);
        let Some(fetch) = fetch else {
            self.checkpoint_parts()
                .counters
                .count(CheckpointCount::UnexpectedExecutions);
            return;
        };
        fetch.verifying = false;
        if !ok {
            let bad = fetch.peer;
            tracing::warn!(peer = %bad, %seq, index, "state chunk refused: asking another replica");
            self.checkpoint_parts()
                .counters
                .count(CheckpointCount::DroppedInvalidCheckpoint);
            self.switch_chunk_peer(now, out);
            return;
        }
        if complete {
            fetch.finishing = true;
            self.push_restore(RestoreStep::Finish { seq }, out);
            self.set_transfer_timer(retry_at, out);
            return;
        }
        fetch.next = fetch.next.saturating_add(1);
        let (peer, next) = (fetch.peer, fetch.next);
        self.send_fetch_chunk(peer, FetchChunk { seq, index: next }, out);
        self.set_transfer_timer(retry_at, out);
    }

    /// The fetch's peer refused to serve (a refused chunk, or none within the
    /// transfer time-out): the restore starts again from chunk 0 with the next signer
    /// of the certificate. After two rounds of signers, or once our stable checkpoint
    /// moved past the one being fetched (its signers discard its state), the fetch is
    /// abandoned and a header is fetched afresh. A peer can therefore hold the fetch
    /// for one time-out at a time at most: once it refused or fell silent, nothing it
    /// sends is taken.
    fn switch_chunk_peer(&mut self, now: Time, out: &mut Vec<Self::Action>) {
        let me = self.checkpoint_parts().me;
        let stable = self.checkpoint_parts().stable.seq;
        let signers: Vec<ReplicaId> = self
            .installing_cert()
            .map(|c| c.signers().filter(|r| *r != me).collect())
            .unwrap_or_default();
        let Some(fetch) = self.fetch_mut() else {
            return;
        };
        fetch.switches = fetch.switches.saturating_add(1);
        let rounds_over = fetch.switches as usize > 2 * signers.len();
        if stable > fetch.seq {
            tracing::debug!(seq = %fetch.seq, %stable, "chunk fetch abandoned: the checkpoint moved on");
            self.fetch_header(now, out);
            return;
        }
        if signers.is_empty() || rounds_over {
            // Wait one time-out before the next header: no tight loop of refusals.
            tracing::debug!(seq = %fetch.seq, "chunk fetch abandoned: no signer served it");
            let retry_at = now + self.transfer_params().transfer_timeout;
            self.drop_fetch();
            self.set_transfer_timer(retry_at, out);
            return;
        }
        let at = signers.iter().position(|r| *r == fetch.peer);
        fetch.peer = signers[at.map_or(0, |i| (i + 1) % signers.len())];
        self.restart_chunks(now, out);
    }

    /// Answers a chunk fetch from our own checkpoint's state, if we hold it.
    fn serve_chunk(
        &mut self,
        now: Time,
        from: ReplicaId,
        fetch: FetchChunk,
        out: &mut Vec<Self::Action>,
    ) {
        let Some(chunk) = StateChunk::of(self.checkpoint_parts().own, fetch) else {
            return; // not held (any more): the requester asks another replica
        };
        self.send_state_chunk(now, from, chunk, out);
    }

    /// Completes a transfer the application installed: the checkpoint becomes our
    /// own, the certificate stable (if it is above ours), and garbage is collected;
    /// a transfer starts again if the stable checkpoint moved past it meanwhile.
    fn complete_transfer(
        &mut self,
        now: Time,
        seq: Seq,
        install: PendingInstall,
        out: &mut Vec<Self::Action>,
    ) {
        self.adopt_installed(seq, &install);
        let p = self.checkpoint_parts();
        let me = p.me;
        p.own.insert(seq, install.own);
        *p.diverged = false;
        *self.transfer_mut() = None;
        self.cancel_transfer_timer(out);
        let p = self.checkpoint_parts();
        p.counters.count(CheckpointCount::StateTransfers);
        tracing::debug!(replica = %me, %seq, "state transfer complete");
        if install.cert.seq > p.stable.seq {
            self.make_stable(now, install.cert, out);
        }
        self.collect_stable_garbage();
        if self.last_delivered() < self.checkpoint_parts().stable.seq {
            self.arm_transfer(now, out);
        }
    }
}

/// Takes the snapshot install the application reported on for `seq` (`ok`: whether
/// it installed it) from `installing`, where `install_of` finds its
/// [`PendingInstall`]. A report for no install, or another sequence number, counts
/// as unexpected (and keeps the install); a rejected snapshot counts as invalid and
/// is dropped — the transfer timer asks the next peer.
pub(crate) fn take_installed<I>(
    installing: &mut Option<I>,
    seq: Seq,
    ok: bool,
    install_of: impl Fn(&I) -> &PendingInstall,
    counters: &mut impl CheckpointCounters,
) -> Option<I> {
    let Some(taken) = installing.take() else {
        counters.count(CheckpointCount::UnexpectedExecutions);
        return None;
    };
    if install_of(&taken).cert.seq != seq {
        counters.count(CheckpointCount::UnexpectedExecutions);
        *installing = Some(taken);
        return None;
    }
    if !ok {
        tracing::warn!(%seq, "application rejected a fetched snapshot");
        counters.count(CheckpointCount::DroppedInvalidCheckpoint);
        return None;
    }
    Some(taken)
}
