//! State transfer, shared by every protocol: a replica behind the stable checkpoint
//! (or whose state diverged from it) waits a grace period (three status intervals,
//! for the normal case or block sync to catch up), then asks the certificate's
//! signers for the checkpoint's state in turn, one per transfer time-out; it checks
//! the snapshot against the certificate ([`StateSnapshot::verify`]), hands it to the
//! application and, once installed, continues from the checkpoint.
//!
//! [`StateTransfer`] is the one copy of that logic; a protocol supplies its timer, its
//! fetch message, its checkpoint digest check and what it resets on install.

use std::time::Duration;

use crate::checkpoint::{
    CheckpointCount, CheckpointCounters, CheckpointReplica, PendingInstall, StateSnapshot,
};
use crate::types::{Digest, ReplicaId, Seq, Time};

/// A state transfer under way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transfer {
    /// Fetch attempts so far (selects the next peer to ask).
    pub attempts: u32,
    /// Whether a request is out (else the timer is a grace period).
    pub requested: bool,
}

/// The parameters state transfer reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TransferParams {
    /// The status interval: the grace period is three of them.
    pub status_interval: Duration,
    /// How long to wait for a snapshot before asking the next peer.
    pub transfer_timeout: Duration,
    /// The client window a snapshot's exactly-once table must respect.
    pub client_window: u64,
}

/// The state transfer every protocol shares. A protocol implements the required
/// methods; the provided ones are the shared logic.
pub(crate) trait StateTransfer: CheckpointReplica {
    /// The transfer under way, if any.
    fn transfer_mut(&mut self) -> &mut Option<Transfer>;
    /// Whether a snapshot is with the application, awaiting its verdict.
    fn is_installing(&self) -> bool;
    /// The parameters state transfer reads.
    fn transfer_params(&self) -> TransferParams;
    /// Sets the protocol's transfer timer.
    fn set_transfer_timer(&mut self, at: Time, out: &mut Vec<Self::Action>);
    /// Cancels the protocol's transfer timer.
    fn cancel_transfer_timer(&mut self, out: &mut Vec<Self::Action>);
    /// Asks `peer` for the state at the stable checkpoint `seq`.
    fn send_fetch_state(&mut self, peer: ReplicaId, seq: Seq, out: &mut Vec<Self::Action>);
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
            requested: false,
        });
        let grace = self.transfer_params().status_interval * 3;
        self.set_transfer_timer(now + grace, out);
    }

    /// The transfer timer: asks the next signer of the stable certificate for its
    /// state, unless a snapshot is being installed (then waits) or we caught up.
    fn on_transfer_timer(&mut self, now: Time, out: &mut Vec<Self::Action>) {
        let Some(mut transfer) = *self.transfer_mut() else {
            return;
        };
        let retry_at = now + self.transfer_params().transfer_timeout;
        if self.is_installing() {
            self.set_transfer_timer(retry_at, out);
            return;
        }
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
        transfer.requested = true;
        *self.transfer_mut() = Some(transfer);
        tracing::debug!(replica = %me, %peer, %seq, "fetching state");
        self.send_fetch_state(peer, seq, out);
        self.set_transfer_timer(retry_at, out);
    }

    /// Whether a fetched snapshot is one to install: asked for, none being
    /// installed, at or above the stable checkpoint and ahead of us (or we diverged),
    /// consistent by the protocol's own check, and what its certificate vouches for.
    /// `expected` is that check: `None` if the snapshot is inconsistent, else the
    /// protocol's checkpoint digest recomputed from it. Counts what it drops.
    fn accept_snapshot(
        &mut self,
        s: &StateSnapshot,
        expected: impl FnOnce(&StateSnapshot) -> Option<Digest>,
    ) -> bool {
        let seq = s.cert.seq;
        let requested = self.transfer_mut().is_some_and(|t| t.requested);
        let installing = self.is_installing();
        let last_delivered = self.last_delivered();
        let client_window = self.transfer_params().client_window;
        let p = self.checkpoint_parts();
        let useful = requested
            && !installing
            && seq >= p.stable.seq
            && (seq > last_delivered || *p.diverged);
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
