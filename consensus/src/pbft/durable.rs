//! What a PBFT replica makes durable, and its replay after a restart from disk.
//!
//! A replica must never contradict a message it sent before a crash, or it would act
//! like a Byzantine one. So before each message that commits it to something, it logs
//! the fact the message depends on ([`PbftRecord`], through `Action::Persist`):
//!
//! | record | logged before |
//! |---|---|
//! | `PrePrepared` (with the batch) | its pre-prepare (primary) or prepare (backup) for `(view, seq)` |
//! | `Prepared` | its commit for `(view, seq)`; it is also a P-set entry of later view changes |
//! | `Committed` | the replies to the batch's clients (and its delivery is replayed) |
//! | `ViewChange` | its view change to `view`: it never votes in an older view again |
//! | `NewView` | the new view it sends (as new primary) or enters |
//! | `Stable` | nothing: the low watermark it moves to, kept so restarts skip the work |
//!
//! The pre-prepared and prepared records are the Q and P sets of Castro's view change
//! (PBFT, OSDI 1999; TOCS 2002 §4.4): a replica that forgot them could let a new view
//! drop a batch that committed. Checkpoint votes need no record: they are a
//! deterministic function of the executed sequence.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{OwnCheckpoint, StableCert, checkpoint_digest};
use crate::exactly_once::ClientTables;
use crate::pbft::Pbft;
use crate::pbft::message::{Message, SignedNewView};
use crate::pbft::replica::{CommittedEntry, PbftAction};
use crate::protocol::{Action, DurableCheckpoint, RecoveryError};
use crate::request::Batch;
use crate::state_transfer::StateTransfer;
use crate::types::{Digest, Seq, Time, View};

/// One entry of a PBFT replica's write-ahead log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PbftRecord {
    /// The replica's durable state at a compaction point: the first record of a
    /// compacted log, replacing every record before it.
    Base(Box<DurableState>),
    /// The replica accepted (backup) or proposed (primary) `digest` at `seq` in `view`.
    PrePrepared {
        /// View.
        view: View,
        /// Sequence number.
        seq: Seq,
        /// The batch's digest.
        digest: Digest,
        /// The batch, so that a restarted replica can re-propose it in a new view and
        /// execute it once committed.
        batch: Arc<Batch>,
    },
    /// The replica prepared `digest` at `seq` in `view` (pre-prepare plus 2f matching
    /// prepares).
    Prepared {
        /// View.
        view: View,
        /// Sequence number.
        seq: Seq,
        /// The batch's digest.
        digest: Digest,
    },
    /// `digest` committed at `seq`. The batch is in the record unless a `PrePrepared`
    /// record of this log already holds it.
    Committed {
        /// Sequence number.
        seq: Seq,
        /// The batch's digest.
        digest: Digest,
        /// The batch, when no earlier record of the log holds it.
        batch: Option<Arc<Batch>>,
    },
    /// The replica left its view for `view` (and sent its view change).
    ViewChange {
        /// The view it moved to.
        view: View,
    },
    /// The replica started the view of this (validated) new-view message.
    NewView(Arc<SignedNewView>),
    /// A stable checkpoint's certificate.
    Stable(StableCert),
}

/// A PBFT replica's durable state at a compaction point: everything its log held that
/// the stable checkpoint did not make unnecessary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DurableState {
    /// The current view.
    pub view: View,
    /// Whether the view was running (false during a view change).
    pub view_active: bool,
    /// The new-view message that started the current view, if any.
    pub new_view: Option<Arc<SignedNewView>>,
    /// The stable checkpoint, whose application state is the log's snapshot.
    pub stable: StableCert,
    /// The application digest at the stable checkpoint.
    pub app_digest: Digest,
    /// The exactly-once table at the stable checkpoint.
    pub tables: ClientTables,
    /// P set above the stable checkpoint: `(seq, view, digest)`.
    pub prepared: Vec<(Seq, View, Digest)>,
    /// Q set above the stable checkpoint: `(seq, digest, latest view)`.
    pub pre_prepared: Vec<(Seq, Digest, View)>,
    /// The current view's accepted proposals: `(seq, digest, prepared)`.
    pub slots: Vec<(Seq, Digest, bool)>,
    /// Committed batches above the stable checkpoint: `(seq, digest)`.
    pub committed: Vec<(Seq, Digest)>,
    /// Every batch the entries above name, once each.
    pub batches: Vec<Arc<Batch>>,
}

impl Pbft {
    /// Appends `record` to the actions: durable before anything sent after it.
    pub(crate) fn persist(&self, record: PbftRecord, out: &mut Vec<PbftAction>) {
        out.push(Action::Persist(record));
    }

    /// Logs that this replica accepted (or, as primary, proposed) `digest` at `seq` in
    /// the current view, with the batch, before its prepare (pre-prepare) leaves.
    pub(crate) fn persist_pre_prepared(&self, seq: Seq, digest: Digest, out: &mut Vec<PbftAction>) {
        if let Some(batch) = self.batches.get(&digest) {
            let record = PbftRecord::PrePrepared {
                view: self.view,
                seq,
                digest,
                batch: Arc::clone(batch),
            };
            self.persist(record, out);
        }
    }

    /// Logs that `digest` committed at `seq`, with the batch unless this view's
    /// `PrePrepared` record of the slot already holds it.
    pub(crate) fn persist_committed(
        &self,
        seq: Seq,
        digest: Digest,
        batch: &Arc<Batch>,
        out: &mut Vec<PbftAction>,
    ) {
        let logged = self.slots.get(&seq).is_some_and(|slot| {
            slot.digest == Some(digest)
                && (self.is_primary() || slot.prepares.get(&self.me) == Some(&digest))
        });
        let batch = (!logged).then(|| Arc::clone(batch));
        self.persist(PbftRecord::Committed { seq, digest, batch }, out);
    }

    /// Replays record `index` of this replica's log (see [`PbftRecord`]); nothing is
    /// sent and no timer is set until [`Pbft::start`].
    pub(crate) fn replay(&mut self, index: u64, record: PbftRecord) -> Result<(), RecoveryError> {
        let fail = |problem: String| Err(RecoveryError { index, problem });
        match record {
            PbftRecord::Base(state) => {
                if index != 0 {
                    return fail("a base record after the first".into());
                }
                self.replay_base(*state).or_else(fail)
            }
            PbftRecord::PrePrepared {
                view,
                seq,
                digest,
                batch,
            } => {
                if batch.digest() != digest {
                    return fail(format!("batch at {seq} does not match its digest"));
                }
                if view > self.view {
                    return fail(format!("pre-prepared in {view} while in {}", self.view));
                }
                self.batches.insert(digest, batch);
                if seq <= self.stable.seq {
                    return Ok(());
                }
                self.note_pre_prepared(seq, digest, view);
                if view == self.view && self.view_active {
                    let primary = self.is_primary();
                    let me = self.me;
                    let slot = self.slots.entry(seq).or_default();
                    if slot.digest.is_some_and(|d| d != digest) {
                        return fail(format!("two digests accepted at {seq} in {view}"));
                    }
                    slot.digest = Some(digest);
                    if !primary {
                        slot.prepares.insert(me, digest);
                    }
                    self.max_accepted = self.max_accepted.max(seq);
                    if primary {
                        self.next_seq = self.next_seq.max(seq.next());
                    }
                }
                Ok(())
            }
            PbftRecord::Prepared { view, seq, digest } => {
                if view > self.view {
                    return fail(format!("prepared in {view} while in {}", self.view));
                }
                if seq <= self.stable.seq {
                    return Ok(());
                }
                self.prepared_claims.insert(seq, (view, digest));
                if view == self.view
                    && let Some(slot) = self.slots.get_mut(&seq)
                    && slot.digest == Some(digest)
                {
                    slot.prepared = true;
                    slot.commits.insert(self.me, digest);
                }
                Ok(())
            }
            PbftRecord::Committed { seq, digest, batch } => {
                if let Some(batch) = batch {
                    if batch.digest() != digest {
                        return fail(format!("batch at {seq} does not match its digest"));
                    }
                    self.batches.insert(digest, batch);
                }
                if seq <= self.last_delivered {
                    return Ok(());
                }
                if let Some(existing) = self.committed.get(&seq) {
                    if existing.digest != digest {
                        return fail(format!("two digests committed at {seq}"));
                    }
                    return Ok(());
                }
                // A batch the log no longer holds (its slot fell below a stable
                // checkpoint before it committed): peers supply it.
                if let Some(batch) = self.batches.get(&digest).cloned() {
                    self.committed.insert(
                        seq,
                        CommittedEntry {
                            digest,
                            batch,
                            delivered_at: None,
                        },
                    );
                }
                Ok(())
            }
            PbftRecord::ViewChange { view } => {
                if view <= self.view {
                    return fail(format!("view change to {view} while in {}", self.view));
                }
                self.view = view;
                self.view_active = false;
                self.new_view_msg = None;
                self.slots.clear();
                self.max_accepted = Seq(0);
                self.view_changes = self.view_changes.split_off(&view);
                // Made again from the state the log held when it was first sent, so
                // a restarted replica can still resend it to peers left in that view.
                let vc = self.make_view_change(view);
                self.remember_own_view_change(vc);
                Ok(())
            }
            PbftRecord::NewView(nv) => {
                let view = nv.body.view;
                if view < self.view || (view == self.view && self.view_active) {
                    return fail(format!("new view {view} while in {}", self.view));
                }
                let Some(checkpoint) = self.validate_new_view(&nv) else {
                    return fail(format!("new view {view} does not validate"));
                };
                self.view = view;
                self.view_active = true;
                self.slots.clear();
                self.max_accepted = Seq(0);
                self.view_changes.clear();
                self.own_view_changes.clear();
                if checkpoint.seq > self.stable.seq {
                    self.stable = checkpoint;
                    self.collect_garbage();
                }
                let mut last = self.stable.seq;
                for &(seq, digest) in &nv.body.proposals {
                    last = last.max(seq);
                    if !self.in_log_range(seq) {
                        continue;
                    }
                    self.slots.entry(seq).or_default().digest = Some(digest);
                    self.max_accepted = self.max_accepted.max(seq);
                    if !self.batches.contains_key(&digest) {
                        self.wanted_batches.insert(digest);
                    }
                }
                if self.is_primary() {
                    self.next_seq = self.next_seq.max(last.next());
                }
                self.new_view_msg = Some(nv);
                Ok(())
            }
            PbftRecord::Stable(cert) => {
                if cert.seq <= self.stable.seq {
                    return Ok(());
                }
                if !self.validate_cert(&cert) {
                    return fail(format!(
                        "stable certificate at {} does not verify",
                        cert.seq
                    ));
                }
                self.stable = cert;
                self.collect_garbage();
                Ok(())
            }
        }
    }

    fn replay_base(&mut self, s: DurableState) -> Result<(), String> {
        if s.stable.seq > Seq(0) && !self.validate_cert(&s.stable) {
            return Err(format!(
                "stable certificate at {} does not verify",
                s.stable.seq
            ));
        }
        let digest = checkpoint_digest(s.stable.seq, &s.app_digest, &s.tables.digest());
        if s.stable.seq > Seq(0) && digest != s.stable.digest {
            return Err(format!(
                "state at {} does not match its certificate",
                s.stable.seq
            ));
        }
        if let Some(nv) = &s.new_view
            && (nv.body.view != s.view || self.validate_new_view(nv).is_none())
        {
            return Err(format!("new view of {} does not validate", s.view));
        }
        self.view = s.view;
        self.view_active = s.view_active;
        self.new_view_msg = s.new_view;
        self.last_delivered = s.stable.seq;
        self.last_executed = s.stable.seq;
        self.delivered_table = s.tables.delivered.clone();
        self.own_checkpoints.insert(
            s.stable.seq,
            OwnCheckpoint {
                digest,
                app_digest: s.app_digest,
                tables: s.tables,
                snapshot: None,
            },
        );
        self.stable = s.stable;
        for batch in s.batches {
            self.batches.insert(batch.digest(), batch);
        }
        for (seq, view, digest) in s.prepared {
            self.prepared_claims.insert(seq, (view, digest));
        }
        for (seq, digest, view) in s.pre_prepared {
            self.note_pre_prepared(seq, digest, view);
        }
        let primary = self.is_primary();
        for (seq, digest, prepared) in s.slots {
            let slot = self.slots.entry(seq).or_default();
            slot.digest = Some(digest);
            slot.prepared = prepared;
            if !primary {
                slot.prepares.insert(self.me, digest);
            }
            if prepared {
                slot.commits.insert(self.me, digest);
            }
            self.max_accepted = self.max_accepted.max(seq);
            if primary {
                self.next_seq = self.next_seq.max(seq.next());
            }
        }
        for (seq, digest) in s.committed {
            let Some(batch) = self.batches.get(&digest).cloned() else {
                return Err(format!("committed batch at {seq} is missing"));
            };
            self.committed.insert(
                seq,
                CommittedEntry {
                    digest,
                    batch,
                    delivered_at: None,
                },
            );
        }
        Ok(())
    }

    /// After a restart from disk (called by `start`, a no-op on a fresh replica):
    /// deliver what the log says committed, fetch the state if the log's stable
    /// checkpoint is ahead of it, and during a view change ask for the view again.
    pub(crate) fn resume_recovered(&mut self, now: Time, out: &mut Vec<PbftAction>) {
        self.collect_garbage();
        self.try_deliver(now, out);
        if self.last_delivered < self.stable.seq {
            self.arm_transfer(now, out);
        }
        if !self.view_active {
            let view = self.view;
            let vc = self.make_view_change(view);
            self.broadcast(Message::ViewChange(Box::new(vc.clone())), out);
            self.remember_own_view_change(vc.clone());
            self.view_changes
                .entry(view)
                .or_default()
                .insert(self.me, vc);
            self.arm_view_change_timer(now, out);
        }
    }

    /// The latest compaction point: the stable checkpoint, once this replica executed
    /// it and holds its serialised state, with the durable state now.
    pub(crate) fn durable_checkpoint(&self) -> Option<DurableCheckpoint<PbftRecord>> {
        let seq = self.stable.seq;
        let (own, snapshot) = crate::checkpoint::compaction_snapshot(
            &self.stable,
            &self.own_checkpoints,
            self.last_executed,
            self.installing.is_some(),
        )?;
        let mut named: BTreeSet<Digest> = BTreeSet::new();
        let prepared: Vec<_> = self
            .prepared_claims
            .range(seq.next()..)
            .map(|(s, (v, d))| (*s, *v, *d))
            .collect();
        let pre_prepared: Vec<_> = self
            .pre_prepared_claims
            .range(seq.next()..)
            .flat_map(|(s, m)| m.iter().map(|(d, v)| (*s, *d, *v)))
            .collect();
        let slots: Vec<_> = self
            .slots
            .range(seq.next()..)
            .filter_map(|(s, slot)| {
                let d = slot.digest?;
                self.batches
                    .contains_key(&d)
                    .then_some((*s, d, slot.prepared))
            })
            .collect();
        let committed: Vec<_> = self
            .committed
            .range(seq.next()..)
            .map(|(s, c)| (*s, c.digest))
            .collect();
        named.extend(prepared.iter().map(|p| p.2));
        named.extend(pre_prepared.iter().map(|p| p.1));
        named.extend(slots.iter().map(|p| p.1));
        named.extend(committed.iter().map(|p| p.1));
        let batches = named
            .iter()
            .filter_map(|d| self.batches.get(d).cloned())
            .collect();
        let state = DurableState {
            view: self.view,
            view_active: self.view_active,
            new_view: self.new_view_msg.clone(),
            stable: self.stable.clone(),
            app_digest: own.app_digest,
            tables: own.tables.clone(),
            prepared,
            pre_prepared,
            slots,
            committed,
            batches,
        };
        Some(DurableCheckpoint {
            seq,
            app_digest: own.app_digest,
            snapshot,
            base: PbftRecord::Base(Box::new(state)),
        })
    }
}
