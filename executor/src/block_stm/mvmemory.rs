//! Block-STM's multi-version memory (Gelashvili et al., PPoPP 2023, Algorithm 2):
//! for every key, the values written by each transaction of the batch (its latest
//! incarnation), each either a value or an ESTIMATE marker; plus, per transaction,
//! the read set and written keys of its latest recorded incarnation.
//!
//! Layout: keys are spread over `SHARDS` mutex-protected hash maps; a key maps to
//! its version chain, sorted by transaction index, inline for a single writer
//! (the common case), and the highest transaction that has read it.
//! Everything is cleared but not freed between batches.
//!
//! Invariants:
//! - Only the owner of transaction `t`'s current incarnation (see `scheduler.rs`)
//!   adds, replaces, removes or marks `t`'s entries: `record` while executing,
//!   `convert_writes_to_estimates` after winning a validation abort. Other threads
//!   only read them, under the shard lock.
//! - A read by transaction `t` sees the entry of the highest transaction below
//!   `t`: an ESTIMATE there means that transaction is being re-executed and `t`
//!   must wait for it; no entry means the pre-batch state.
//! - `record` writes the new entries before removing the previous incarnation's
//!   stale ones, and returns whether it wrote a key the previous incarnation did
//!   not and a higher transaction already read (then higher transactions must be
//!   revalidated). Reads mark the chain under the shard lock, so a read either
//!   precedes the write (and is seen by this check) or sees the write.
//! - A transaction record's lock is taken before shard locks and never the other
//!   way round (validation reads shards while holding the record), so no deadlock.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crossbeam::utils::CachePadded;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::scheduler::{TxnIndex, Version};
use crate::state::SHARDS as STATE_SHARDS;
use crate::tx::MAX_ACCESS;
use crate::vm::{Vm, WriteSet};

/// Multi-version shards: 4 per state shard (same hash, two more bits), so the
/// final versions of a state shard are found in 4 consecutive shards here.
const SHARDS: usize = 64;
const PER_STATE_SHARD: usize = SHARDS / STATE_SHARDS;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Debug)]
struct Entry<T> {
    txn: TxnIndex,
    incarnation: u32,
    estimate: bool,
    value: T,
}

/// The versions of one key, and who has read it.
#[derive(Debug)]
struct Chain<T> {
    /// By ascending transaction index.
    versions: SmallVec<[Entry<T>; 1]>,
    /// 1 + the highest transaction that has read this key through the
    /// multi-version memory in this batch (0: none).
    max_reader: u32,
}

impl<T> Default for Chain<T> {
    fn default() -> Self {
        Chain {
            versions: SmallVec::new(),
            max_reader: 0,
        }
    }
}

/// Where a read was served from; validation re-reads and compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The pre-batch state (no lower transaction wrote the key).
    Storage,
    /// A lower transaction's incarnation.
    Written(Version),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadDescriptor<K> {
    pub(crate) key: K,
    pub(crate) origin: Origin,
}

/// The answer to a versioned read.
pub(crate) enum MvRead<T> {
    Written(Version, T),
    /// The highest lower writer is being re-executed.
    Estimate(TxnIndex),
    Storage,
}

struct TxnRecord<V: Vm> {
    reads: Vec<ReadDescriptor<V::Key>>,
    written: SmallVec<[V::Key; MAX_ACCESS]>,
    /// The receipt of the last recorded incarnation (taken when the batch ends).
    receipt: Option<V::Receipt>,
}

type Shard<V> = FxHashMap<<V as Vm>::Key, Chain<<V as Vm>::Value>>;

/// Versioned writes of one batch.
pub(crate) struct MvMemory<V: Vm> {
    shards: Vec<CachePadded<Mutex<Shard<V>>>>,
    records: Vec<CachePadded<Mutex<TxnRecord<V>>>>,
}

impl<V: Vm> Default for MvMemory<V> {
    fn default() -> Self {
        MvMemory {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::new(FxHashMap::default())))
                .collect(),
            records: Vec::new(),
        }
    }
}

impl<V: Vm> MvMemory<V> {
    /// Prepares for a batch of `n` transactions, keeping allocations. With
    /// `clean`, the caller guarantees the previous batch was committed (which
    /// empties the shards) and its records reset by `clean_range`.
    pub(crate) fn reset(&mut self, n: usize, clean: bool) {
        if !clean {
            for shard in &mut self.shards {
                shard
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
            }
            for r in &mut self.records {
                let r = r.get_mut().unwrap_or_else(PoisonError::into_inner);
                r.reads.clear();
                r.written.clear();
                r.receipt = None;
            }
        }
        while self.records.len() < n {
            self.records.push(CachePadded::new(Mutex::new(TxnRecord {
                reads: Vec::new(),
                written: SmallVec::new(),
                receipt: None,
            })));
        }
    }

    /// Resets the records in `range` for the next batch.
    pub(crate) fn clean_range(&self, range: std::ops::Range<usize>) {
        for r in &self.records[range] {
            let mut r = lock(r);
            r.reads.clear();
            r.written.clear();
            r.receipt = None;
        }
    }

    fn shard(&self, key: &V::Key) -> MutexGuard<'_, Shard<V>> {
        lock(&self.shards[(V::key_hash(key) >> 58) as usize])
    }

    /// The value of `key` as transaction `txn` should see it; records `txn` as
    /// a reader of the key.
    pub(crate) fn read(&self, key: &V::Key, txn: TxnIndex) -> MvRead<V::Value> {
        let mut shard = self.shard(key);
        let chain = shard.entry(*key).or_default();
        chain.max_reader = chain.max_reader.max(txn + 1);
        let below = chain.versions.partition_point(|e| e.txn < txn);
        match below.checked_sub(1).map(|i| &chain.versions[i]) {
            None => MvRead::Storage,
            Some(e) if e.estimate => MvRead::Estimate(e.txn),
            Some(e) => MvRead::Written(
                Version {
                    txn: e.txn,
                    incarnation: e.incarnation,
                },
                e.value.clone(),
            ),
        }
    }

    /// Like `read` but only the origin, for validation (no value copy; the
    /// reader is already recorded).
    fn read_origin(&self, key: &V::Key, txn: TxnIndex) -> Option<Origin> {
        let shard = self.shard(key);
        let Some(chain) = shard.get(key) else {
            return Some(Origin::Storage);
        };
        let below = chain.versions.partition_point(|e| e.txn < txn);
        match below.checked_sub(1).map(|i| &chain.versions[i]) {
            None => Some(Origin::Storage),
            Some(e) if e.estimate => None,
            Some(e) => Some(Origin::Written(Version {
                txn: e.txn,
                incarnation: e.incarnation,
            })),
        }
    }

    /// Adds or replaces `version`'s entry for `key`; returns whether a higher
    /// transaction has already read the key (its read may now be stale).
    fn write(&self, key: V::Key, version: Version, value: V::Value) -> bool {
        let mut shard = self.shard(&key);
        let chain = shard.entry(key).or_default();
        let entry = Entry {
            txn: version.txn,
            incarnation: version.incarnation,
            estimate: false,
            value,
        };
        let at = chain.versions.partition_point(|e| e.txn < version.txn);
        match chain.versions.get_mut(at) {
            Some(e) if e.txn == version.txn => *e = entry,
            _ => chain.versions.insert(at, entry),
        }
        chain.max_reader > version.txn + 1
    }

    fn remove(&self, key: &V::Key, txn: TxnIndex) {
        let mut shard = self.shard(key);
        if let Some(chain) = shard.get_mut(key) {
            let at = chain.versions.partition_point(|e| e.txn < txn);
            if chain.versions.get(at).is_some_and(|e| e.txn == txn) {
                chain.versions.remove(at);
            }
        }
    }

    fn mark_estimate(&self, key: &V::Key, txn: TxnIndex) {
        let mut shard = self.shard(key);
        if let Some(chain) = shard.get_mut(key) {
            let at = chain.versions.partition_point(|e| e.txn < txn);
            if let Some(e) = chain.versions.get_mut(at).filter(|e| e.txn == txn) {
                e.estimate = true;
            }
        }
    }

    /// Publishes an incarnation's writes, read set and receipt. `reads` is swapped
    /// with the previous read set, so the caller gets a buffer back to reuse.
    /// Returns whether it wrote a key that the previous incarnation did not write
    /// *and* that a higher transaction has already read: only then can a higher
    /// transaction that already passed validation hold a stale read, so only
    /// then must they all be revalidated. (The paper revalidates on every new
    /// key; the reader mark, set under the same shard lock as the write, makes
    /// the check exact per key: a read after the write sees the write.)
    pub(crate) fn record(
        &self,
        version: Version,
        reads: &mut Vec<ReadDescriptor<V::Key>>,
        writes: &WriteSet<V::Key, V::Value>,
        receipt: V::Receipt,
    ) -> bool {
        let mut rec = lock(&self.records[version.txn as usize]);
        let mut wrote_new = false;
        for (key, value) in writes.entries() {
            let read_above = self.write(*key, version, value.clone());
            if read_above && !rec.written.contains(key) {
                wrote_new = true;
            }
        }
        for key in &rec.written {
            if writes.get(key).is_none() {
                self.remove(key, version.txn);
            }
        }
        rec.written.clear();
        rec.written.extend(writes.entries().iter().map(|(k, _)| *k));
        std::mem::swap(&mut rec.reads, reads);
        rec.receipt = Some(receipt);
        wrote_new
    }

    /// Whether every read of `txn`'s last recorded incarnation would still be
    /// served from the same place.
    pub(crate) fn validate_read_set(&self, txn: TxnIndex) -> bool {
        let rec = lock(&self.records[txn as usize]);
        rec.reads
            .iter()
            .all(|r| self.read_origin(&r.key, txn) == Some(r.origin))
    }

    /// Marks the last recorded writes of `txn` as ESTIMATEs (it was aborted and
    /// will probably write the same keys again).
    pub(crate) fn convert_writes_to_estimates(&self, txn: TxnIndex) {
        let rec = lock(&self.records[txn as usize]);
        for key in &rec.written {
            self.mark_estimate(key, txn);
        }
    }

    /// Takes the receipt of `txn`'s last recorded incarnation (`None` if it
    /// never recorded one, which a finished batch rules out).
    pub(crate) fn take_receipt(&mut self, txn: usize) -> Option<V::Receipt> {
        self.records[txn]
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .receipt
            .take()
    }

    /// Writes the final value of every key of state shard `shard` written in
    /// the batch (its highest writer's) into `out`, and empties those
    /// multi-version shards for the next batch. Runs after all workers have
    /// finished, so the locks are uncontended.
    pub(crate) fn commit_shard(&self, shard: usize, out: &mut V::Shard) {
        for m in shard * PER_STATE_SHARD..(shard + 1) * PER_STATE_SHARD {
            let mut map = lock(&self.shards[m]);
            for (key, chain) in map.iter_mut() {
                if let Some(last) = chain.versions.pop() {
                    debug_assert!(!last.estimate, "ESTIMATE left after the batch");
                    V::write_shard(out, *key, last.value);
                }
            }
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger_vm::LedgerVm;
    use crate::state::{Key, Value};
    use crate::tx::Receipt;

    type WriteSet = crate::vm::WriteSet<Key, Value>;

    fn v(txn: TxnIndex, incarnation: u32) -> Version {
        Version { txn, incarnation }
    }

    #[test]
    fn reads_see_the_highest_lower_writer() {
        let mut mv = MvMemory::<LedgerVm>::default();
        mv.reset(5, true);
        let k = Key::Balance(1, 0);
        mv.write(k, v(1, 0), Value::Amount(10));
        mv.write(k, v(3, 0), Value::Amount(30));
        assert!(matches!(mv.read(&k, 0), MvRead::Storage));
        assert!(matches!(mv.read(&k, 1), MvRead::Storage));
        assert!(matches!(mv.read(&k, 2), MvRead::Written(x, Value::Amount(10)) if x == v(1, 0)));
        assert!(matches!(mv.read(&k, 4), MvRead::Written(x, Value::Amount(30)) if x == v(3, 0)));
        mv.mark_estimate(&k, 3);
        assert!(matches!(mv.read(&k, 4), MvRead::Estimate(3)));
        mv.remove(&k, 3);
        assert!(matches!(mv.read(&k, 4), MvRead::Written(x, _) if x == v(1, 0)));
    }

    #[test]
    fn record_reports_new_locations_and_drops_stale_ones() {
        let mut mv = MvMemory::<LedgerVm>::default();
        mv.reset(3, true);
        let (a, b) = (Key::Balance(1, 0), Key::Balance(2, 0));
        let mut ws = WriteSet::default();
        let mut reads = vec![ReadDescriptor {
            key: a,
            origin: Origin::Storage,
        }];
        let mut two = WriteSet::default();
        // Build write sets through the public execution path's shape.
        two_writes(&mut two, &[(a, 1), (b, 2)]);
        // Transaction 2 read `b` before 1 wrote it: 1's new location matters.
        assert!(matches!(mv.read(&b, 2), MvRead::Storage));
        assert!(mv.record(v(1, 0), &mut reads, &two, Receipt::Ok));
        assert!(reads.is_empty());
        two_writes(&mut ws, &[(a, 5)]);
        reads.push(ReadDescriptor {
            key: a,
            origin: Origin::Storage,
        });
        assert!(!mv.record(v(1, 1), &mut reads, &ws, Receipt::Ok));
        assert!(matches!(mv.read(&b, 2), MvRead::Storage));
        assert!(mv.validate_read_set(1));
        mv.write(a, v(0, 0), Value::Amount(9));
        assert!(
            !mv.validate_read_set(1),
            "a lower write invalidates a storage read"
        );
        let mut state = crate::state::State::new();
        state.finish_batch_with(None, |i, shard| mv.commit_shard(i, shard));
        assert_eq!(state.entries(), vec![(a, Value::Amount(5))]);
    }

    fn two_writes(ws: &mut WriteSet, items: &[(Key, u128)]) {
        ws.clear();
        for (k, amount) in items {
            ws.put(*k, Value::Amount(*amount));
        }
    }
}
