//! The simulator's disks: what a replica's log holds, what survives a crash, and the
//! storage faults a seed can draw.
//!
//! A replica's [`Disk`] has a snapshot (the application state at a compaction point),
//! the records made durable by a completed fsync, and the records written since. An
//! fsync takes [`DiskModel::fsync_delay`] of virtual time and covers every record
//! written before it started; records written meanwhile wait for the next one (group
//! commit). The engine holds back every message a replica sends after a record until
//! an fsync covers that record.
//!
//! A crash keeps the snapshot and the fsynced records and loses the rest, unless a
//! [`StorageFault`] strikes: a torn last write keeps a prefix of the unsynced records
//! (the torn one is detected by its checksum and dropped — harmless, nothing depended
//! on them yet); a corrupted record hits a durable one (at the tail the log loses it,
//! in the middle the log is refused and the replica restarts empty and catches up by
//! state transfer); a lost fsync window drops durable records the disk had
//! acknowledged. The last two are lying disks: such a replica counts toward f and the
//! vote check no longer applies to it.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::protocol::DurableCheckpoint;
use crate::types::{Digest, Seq};

/// Records written after which the engine compacts a replica's log at its next idle
/// fsync, if the protocol offers a newer compaction point.
pub const COMPACT_AFTER: usize = 32;

/// How the simulator's disks behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskModel {
    /// How long one fsync takes.
    pub fsync_delay: Duration,
}

/// A fault a disk suffers at a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StorageFault {
    /// The last write was torn: a prefix of the records not yet fsynced survives, the
    /// torn record after it is dropped by its checksum.
    TornWrite,
    /// One durable record is corrupted: at the tail it is truncated, in the middle the
    /// log is refused and the replica restarts empty.
    CorruptRecord,
    /// The disk acknowledged an fsync it did not do: the last few durable records are
    /// lost.
    LostFsync,
}

impl StorageFault {
    /// Every storage fault, in a fixed order.
    pub const ALL: [StorageFault; 3] = [
        StorageFault::TornWrite,
        StorageFault::CorruptRecord,
        StorageFault::LostFsync,
    ];

    /// Whether the disk broke its promise (a record an fsync covered is gone): the
    /// replica then counts toward f.
    pub fn lies(self) -> bool {
        !matches!(self, StorageFault::TornWrite)
    }

    /// Its name in traces and reports.
    pub fn name(self) -> &'static str {
        match self {
            StorageFault::TornWrite => "torn-write",
            StorageFault::CorruptRecord => "corrupt-record",
            StorageFault::LostFsync => "lost-fsync",
        }
    }
}

/// The application state at a compaction point.
#[derive(Clone, Debug)]
pub struct DiskSnapshot {
    /// The stable checkpoint.
    pub seq: Seq,
    /// Its application digest.
    pub app_digest: Digest,
    /// The serialised application state.
    pub bytes: Bytes,
}

/// What a restart finds on a replica's disk.
#[derive(Debug)]
pub enum Recovered<R> {
    /// A snapshot (if the log was compacted) and the records to replay, in order.
    Log(Option<DiskSnapshot>, Vec<R>),
    /// The log was refused (corruption in the middle): start empty.
    Refused(String),
}

/// One replica's disk.
#[derive(Debug)]
pub struct Disk<R> {
    snapshot: Option<DiskSnapshot>,
    durable: Vec<R>,
    unsynced: Vec<R>,
    /// Records ever written in this incarnation (the hold-back counter).
    written: u64,
    /// Records ever covered by a completed fsync in this incarnation.
    synced: u64,
    /// Records an fsync under way will cover, if one is.
    in_flight: Option<u64>,
    since_compaction: usize,
    refused: Option<String>,
}

impl<R> Default for Disk<R> {
    fn default() -> Self {
        Disk {
            snapshot: None,
            durable: Vec::new(),
            unsynced: Vec::new(),
            written: 0,
            synced: 0,
            in_flight: None,
            since_compaction: 0,
            refused: None,
        }
    }
}

impl<R: Clone> Disk<R> {
    /// Writes a record (not durable until an fsync covers it). Returns whether an
    /// fsync should start now (none is under way).
    pub fn write(&mut self, record: R) -> bool {
        self.unsynced.push(record);
        self.written += 1;
        self.since_compaction += 1;
        self.in_flight.is_none()
    }

    /// Starts an fsync covering everything written so far.
    pub fn start_fsync(&mut self) {
        self.in_flight = Some(self.written);
    }

    /// The fsync under way completed. Returns whether another should start (records
    /// were written meanwhile).
    pub fn fsync_done(&mut self) -> bool {
        let Some(upto) = self.in_flight.take() else {
            return false;
        };
        let covered = upto.saturating_sub(self.synced) as usize;
        let covered = covered.min(self.unsynced.len());
        self.durable.extend(self.unsynced.drain(..covered));
        self.synced = upto;
        !self.unsynced.is_empty()
    }

    /// Records written so far in this incarnation: a message sent now depends on all.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Records covered by completed fsyncs in this incarnation.
    pub fn synced(&self) -> u64 {
        self.synced
    }

    /// Whether the log is idle and long enough to compact.
    pub fn wants_compaction(&self) -> bool {
        self.unsynced.is_empty()
            && self.in_flight.is_none()
            && self.since_compaction >= COMPACT_AFTER
    }

    /// Replaces the log by a compaction point (written and fsynced atomically: the
    /// engine only compacts an idle log). Ignored unless it is newer than the last.
    pub fn compact(&mut self, cp: DurableCheckpoint<R>) {
        self.since_compaction = 0;
        if self.snapshot.as_ref().is_some_and(|s| s.seq >= cp.seq) {
            return;
        }
        self.snapshot = Some(DiskSnapshot {
            seq: cp.seq,
            app_digest: cp.app_digest,
            bytes: cp.snapshot,
        });
        self.durable = vec![cp.base];
    }

    /// Records on disk (durable and not).
    pub fn len(&self) -> usize {
        self.durable.len() + self.unsynced.len()
    }

    /// Whether the disk holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The replica crashed, suffering `fault` if any. Returns whether the disk lied.
    pub fn crash(&mut self, fault: Option<StorageFault>, rng: &mut impl Rng) -> bool {
        let unsynced = std::mem::take(&mut self.unsynced);
        self.in_flight = None;
        self.written = 0;
        self.synced = 0;
        match fault {
            None => false,
            Some(StorageFault::TornWrite) => {
                let keep = rng.random_range(0..=unsynced.len());
                self.durable.extend(unsynced.into_iter().take(keep));
                false
            }
            Some(StorageFault::CorruptRecord) => {
                if self.durable.is_empty() {
                    return false;
                }
                let at = rng.random_range(0..self.durable.len());
                if at + 1 == self.durable.len() {
                    self.durable.pop();
                } else {
                    self.refused = Some(format!(
                        "record {at} of {} fails its checksum",
                        self.durable.len()
                    ));
                }
                true
            }
            Some(StorageFault::LostFsync) => {
                let lost = rng.random_range(1..=8usize).min(self.durable.len());
                // A compacted log's base survives: the window is recent writes.
                let keep = (self.durable.len() - lost).max(usize::from(self.snapshot.is_some()));
                let lied = keep < self.durable.len();
                self.durable.truncate(keep);
                // Nothing fell out of the window (only the compaction base was on
                // disk): the disk told the truth, and the replica's votes still count.
                lied
            }
        }
    }

    /// What a restart finds. A refused log is wiped (the replica starts empty).
    pub fn recover(&mut self) -> Recovered<R> {
        if let Some(problem) = self.refused.take() {
            self.wipe();
            return Recovered::Refused(problem);
        }
        Recovered::Log(self.snapshot.clone(), self.durable.clone())
    }

    /// Forgets everything (a replica that restarts empty).
    pub fn wipe(&mut self) {
        *self = Disk::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn log(disk: &mut Disk<u32>) -> Vec<u32> {
        match disk.recover() {
            Recovered::Log(_, r) => r,
            Recovered::Refused(p) => panic!("refused: {p}"),
        }
    }

    #[test]
    fn a_crash_keeps_what_was_fsynced_and_loses_the_rest() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut d = Disk::default();
        assert!(d.write(1));
        d.start_fsync();
        assert!(!d.write(2), "an fsync is under way: group commit");
        assert!(d.fsync_done(), "record 2 needs the next fsync");
        assert_eq!((d.written(), d.synced()), (2, 1));
        assert!(!d.crash(None, &mut rng));
        assert_eq!(log(&mut d), vec![1]);
    }

    #[test]
    fn a_torn_write_keeps_a_prefix_of_the_unsynced_records() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut d = Disk::default();
            d.write(1);
            d.start_fsync();
            d.fsync_done();
            for r in 2..6 {
                d.write(r);
            }
            assert!(!d.crash(Some(StorageFault::TornWrite), &mut rng));
            let kept = log(&mut d);
            assert_eq!(kept, (1..=kept.len() as u32).collect::<Vec<_>>());
        }
    }

    /// A lost fsync that finds only a compacted log's base loses nothing, so it must
    /// not report a lie (which would make the checker forget the replica's votes).
    #[test]
    fn a_lost_fsync_over_only_the_compaction_base_is_no_lie() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut d = Disk::default();
        d.compact(DurableCheckpoint {
            seq: Seq(8),
            app_digest: Digest::default(),
            snapshot: Bytes::new(),
            base: 7u32,
        });
        assert!(!d.crash(Some(StorageFault::LostFsync), &mut rng));
        assert_eq!(log(&mut d), vec![7]);
    }

    #[test]
    fn lying_disks_lose_durable_records_or_refuse_the_log() {
        let mut refused = 0;
        for seed in 0..40 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut d = Disk::default();
            for r in 0..10 {
                d.write(r);
            }
            d.start_fsync();
            d.fsync_done();
            let fault = if seed % 2 == 0 {
                StorageFault::CorruptRecord
            } else {
                StorageFault::LostFsync
            };
            assert!(d.crash(Some(fault), &mut rng));
            match d.recover() {
                Recovered::Log(_, r) => assert!(r.len() < 10),
                Recovered::Refused(_) => {
                    refused += 1;
                    assert!(d.is_empty(), "a refused log is wiped");
                }
            }
        }
        assert!(refused > 0);
    }
}
