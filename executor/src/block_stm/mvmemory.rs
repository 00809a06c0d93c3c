//! Block-STM's multi-version memory (Gelashvili et al., PPoPP 2023, Algorithm 2):
//! for every key, the values written by each transaction of the batch (its latest
//! incarnation), each either a value or an ESTIMATE marker; plus, per transaction,
//! the read set and written keys of its latest recorded incarnation.
//!
//! Layout: every key the batch touches has a slot in the key table (`keys.rs`,
//! found without locks) holding its [`Versions`]: the version chain behind a
//! per-key spin lock, the highest transaction that has read the key, and the
//! lowest that has written it. A read finds the slot once and the read set keeps
//! a pointer to it, so that `record`, validation and ESTIMATE marking never hash
//! or look a key up again. A read by `t` of a key no transaction below `t` has
//! written takes no lock, and neither does validating such a read while that
//! still holds (the common case: a transaction's own keys, written by itself or
//! by higher transactions only). Commit walks the key table's lists of placed
//! slots, one state shard at a time. Everything is cleared but not freed between
//! batches, except chains that spilled past `KEEP_VERSIONS` entries.
//!
//! Invariants:
//! - Only the owner of transaction `t`'s current incarnation (see `scheduler.rs`)
//!   adds, replaces, removes or marks `t`'s entries: `record` while executing,
//!   `convert_writes_to_estimates` after winning a validation abort. Other threads
//!   only read them, under the key's lock.
//! - A read by transaction `t` sees the entry of the highest transaction below
//!   `t`: an ESTIMATE there means that transaction is being re-executed and `t`
//!   must wait for it; no entry means the pre-batch state.
//! - `min_writer` only falls during a batch and is lowered (under the key's lock,
//!   after the entry is inserted) by every insert, so `min_writer >= t` means no
//!   transaction below `t` ever had an entry: a read by `t` is served from the
//!   pre-batch state, and such a read stays valid, without locking.
//! - `record` writes the new entries before removing the previous incarnation's
//!   stale ones, and returns whether it wrote a key the previous incarnation did
//!   not and a higher transaction already read (then higher transactions must be
//!   revalidated). A reader raises `max_reader` and then looks at `min_writer`
//!   (and at the chain under the lock); a writer inserts under the lock, lowers
//!   `min_writer`, and then looks at `max_reader`; all sequentially consistent, so
//!   of a racing read and write at least one sees the other: the read sees the
//!   new entry, or the writer sees the reader and reports it. (A writer that finds
//!   `min_writer` already at or below its index skips the store: the reader then
//!   takes the lock, and the lock orders the two.)
//! - Lock order: a transaction record's lock before key locks (validation and
//!   `record` hold the record while they lock keys); a key lock is never held
//!   while taking another lock, so no deadlock.
//! - Slot pointers in records are valid until the batch is committed or reset
//!   (`keys.rs`), after every worker has finished; `clean_range`/`reset` drop them
//!   before the next batch.

use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use crossbeam::utils::CachePadded;
use smallvec::SmallVec;

use super::keys::{KeyTable, Slot};
use super::scheduler::{TxnIndex, Version};
use super::spin::SpinLock;
use crate::tx::MAX_ACCESS;
use crate::vm::{Vm, WriteSet};

/// Versions a key holds without allocating (one writer: the common case).
const INLINE_VERSIONS: usize = 1;

/// Version chains that spilled past this many entries are freed after the
/// batch rather than kept for whatever key lands in the slot next.
const KEEP_VERSIONS: usize = 2;

/// Keys per transaction assumed before a batch has shown the real figure.
const INITIAL_KEYS_PER_TX: usize = 4;

#[derive(Clone, Debug)]
struct Entry<T> {
    txn: TxnIndex,
    incarnation: u32,
    estimate: bool,
    value: T,
}

/// The number of entries below transaction `txn` (where its entry is or would
/// go). Transactions run roughly in index order, so a reader or writer is
/// usually at or near the top of a long chain (a pool's holds one entry per
/// swap): look there first, then search.
#[inline]
fn position<T>(entries: &[Entry<T>], txn: TxnIndex) -> usize {
    const NEAR_TOP: usize = 4;
    let mut at = entries.len();
    for _ in 0..NEAR_TOP {
        match at.checked_sub(1) {
            Some(below) if entries[below].txn >= txn => at = below,
            _ => return at,
        }
    }
    entries[..at].partition_point(|e| e.txn < txn)
}

/// What the multi-version memory keeps for one key (module docs).
///
/// Measured alternatives: two inline entries instead of one saved about 80
/// instructions per native transaction (fewer chains spill to the heap) for 96
/// more bytes in every slot of the key table; not kept.
///
/// In this order (`repr(C)`): the marks every read looks at come first, in the
/// key table slot's first cache line (`keys.rs`), the chain after them.
#[repr(C)]
pub(crate) struct Versions<V: Vm> {
    /// 1 + the highest transaction that has read this key through the
    /// multi-version memory in this batch (0: none).
    max_reader: AtomicU32,
    /// The lowest transaction that inserted an entry in this batch
    /// (`TxnIndex::MAX`: none); never raised within a batch.
    min_writer: AtomicU32,
    /// By ascending transaction index; inline for a single writer (the common
    /// case), so that most keys allocate nothing.
    entries: SpinLock<SmallVec<[Entry<V::Value>; INLINE_VERSIONS]>>,
}

impl<V: Vm> Default for Versions<V> {
    fn default() -> Self {
        Versions {
            max_reader: AtomicU32::new(0),
            min_writer: AtomicU32::new(TxnIndex::MAX),
            entries: SpinLock::new(SmallVec::new()),
        }
    }
}

impl<V: Vm> Versions<V> {
    /// Where a read by `txn` would be served from now (`None`: an ESTIMATE).
    fn origin_below(&self, txn: TxnIndex) -> Option<Origin> {
        let entries = self.entries.lock();
        let below = position(&entries, txn);
        match below.checked_sub(1).map(|i| &entries[i]) {
            None => Some(Origin::Storage),
            Some(e) if e.estimate => None,
            Some(e) => Some(Origin::Written(Version {
                txn: e.txn,
                incarnation: e.incarnation,
            })),
        }
    }

    /// Empties the chain for the next batch, returning its last entry.
    ///
    /// # Safety
    /// Only between batches, by the one thread committing or resetting this
    /// key's shard (no worker runs: the lock is not taken).
    unsafe fn take_last(&self) -> Option<Entry<V::Value>> {
        // SAFETY: exclusive use of this key's versions, by the caller's contract.
        let entries = unsafe { self.entries.get_unsynced() };
        let last = entries.pop();
        if entries.capacity() > KEEP_VERSIONS {
            *entries = SmallVec::new();
        } else {
            entries.clear();
        }
        // No worker runs (commit or reset): the next batch starts after a join.
        self.max_reader.store(0, Relaxed);
        self.min_writer.store(TxnIndex::MAX, Relaxed);
        last
    }
}

type KeySlot<V> = Slot<<V as Vm>::Key, Versions<V>>;

/// A pointer to a key's slot, kept in read sets and written-key lists (valid
/// until the batch is committed or reset: module docs).
pub(crate) struct SlotRef<V: Vm>(NonNull<KeySlot<V>>);

impl<V: Vm> Clone for SlotRef<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V: Vm> Copy for SlotRef<V> {}

impl<V: Vm> PartialEq for SlotRef<V> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<V: Vm> std::fmt::Debug for SlotRef<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotRef({:p})", self.0)
    }
}

// SAFETY: a `SlotRef` is a shared reference with its lifetime erased; the slot is
// `Sync` (keys.rs) and outlives every use of the pointer (module docs).
unsafe impl<V: Vm> Send for SlotRef<V> {}
// SAFETY: as above.
unsafe impl<V: Vm> Sync for SlotRef<V> {}

impl<V: Vm> SlotRef<V> {
    fn new(slot: &KeySlot<V>) -> SlotRef<V> {
        SlotRef(NonNull::from(slot))
    }

    #[inline]
    fn key(&self) -> V::Key {
        // SAFETY: as in `versions`.
        unsafe { self.0.as_ref() }.key()
    }

    #[inline]
    fn versions(&self) -> &Versions<V> {
        // SAFETY: the slot lives until the batch is committed or reset, and no
        // pointer is used after that (module docs).
        unsafe { self.0.as_ref() }.payload()
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

/// One read of an incarnation: the key's slot and where the value came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadDescriptor<V: Vm> {
    slot: SlotRef<V>,
    origin: Origin,
}

/// The answer to a versioned read.
pub(crate) enum MvRead<T> {
    Written(T),
    /// The highest lower writer is being re-executed.
    Estimate(TxnIndex),
    Storage,
}

struct TxnRecord<V: Vm> {
    reads: Vec<ReadDescriptor<V>>,
    written: SmallVec<[SlotRef<V>; MAX_ACCESS]>,
    /// The receipt of the last recorded incarnation (taken when the batch ends).
    receipt: Option<V::Receipt>,
}

impl<V: Vm> Default for TxnRecord<V> {
    fn default() -> Self {
        TxnRecord {
            reads: Vec::new(),
            written: SmallVec::new(),
            receipt: None,
        }
    }
}

impl<V: Vm> TxnRecord<V> {
    fn clear(&mut self) {
        self.reads.clear();
        self.written.clear();
        self.receipt = None;
    }
}

/// Versioned writes of one batch.
pub(crate) struct MvMemory<V: Vm> {
    keys: KeyTable<V::Key, Versions<V>>,
    records: Vec<CachePadded<SpinLock<TxnRecord<V>>>>,
    /// Keys the last batch placed per transaction (sizes the key table).
    keys_per_tx: usize,
}

impl<V: Vm> Default for MvMemory<V> {
    fn default() -> Self {
        MvMemory {
            keys: KeyTable::default(),
            records: Vec::new(),
            keys_per_tx: INITIAL_KEYS_PER_TX,
        }
    }
}

impl<V: Vm> MvMemory<V> {
    /// Prepares for a batch of `n` transactions, keeping allocations. With
    /// `clean`, the caller guarantees the previous batch was committed (which
    /// empties the key table) and its records reset by `clean_range`.
    pub(crate) fn reset(&mut self, n: usize, clean: bool) {
        if !clean {
            self.keys.clear(|_, versions| {
                // SAFETY: `&mut self`: no worker runs.
                unsafe { versions.take_last() };
            });
            for r in &mut self.records {
                r.get_mut().clear();
            }
        }
        self.keys.prepare(n.saturating_mul(self.keys_per_tx));
        while self.records.len() < n {
            self.records
                .push(CachePadded::new(SpinLock::new(TxnRecord::default())));
        }
    }

    /// Learns how many keys a transaction touches from the batch of `n` that
    /// just ran (before it is committed), to size the next batch's key table.
    pub(crate) fn learn(&mut self, n: usize) {
        if n > 0 {
            self.keys_per_tx = self.keys.keys_used().div_ceil(n).max(1);
        }
    }

    /// Resets the records in `range` for the next batch.
    ///
    /// # Safety
    /// Only after the batch's workers have finished, by the one thread that
    /// owns `range` (commit splits the records between the shards' calls).
    pub(crate) unsafe fn clean_range(&self, range: std::ops::Range<usize>) {
        for r in &self.records[range] {
            // SAFETY: exclusive use of these records, by the caller's contract.
            unsafe { r.get_unsynced() }.clear();
        }
    }

    /// Prefetches the key table slot where `key` probably is (a hint).
    #[inline]
    pub(crate) fn prefetch(&self, key: &V::Key) {
        self.keys.prefetch(V::key_hash(key));
    }

    fn slot(&self, key: &V::Key) -> &KeySlot<V> {
        self.keys.slot(key, V::key_hash(key))
    }

    /// The value of `key` as transaction `txn` should see it, and the read to
    /// record for validation (none for an ESTIMATE); records `txn` as a reader.
    #[inline]
    pub(crate) fn read(
        &self,
        key: &V::Key,
        txn: TxnIndex,
    ) -> (MvRead<V::Value>, Option<ReadDescriptor<V>>) {
        let slot = self.slot(key);
        let versions = slot.payload();
        // Reader mark before looking (module docs); skip the read-modify-write
        // when a higher reader already raised it.
        if versions.max_reader.load(SeqCst) <= txn {
            versions.max_reader.fetch_max(txn + 1, SeqCst);
        }
        let slot = SlotRef::new(slot);
        let storage = |slot| {
            let read = ReadDescriptor {
                slot,
                origin: Origin::Storage,
            };
            (MvRead::Storage, Some(read))
        };
        if versions.min_writer.load(SeqCst) >= txn {
            return storage(slot);
        }
        let entries = versions.entries.lock();
        let below = position(&entries, txn);
        match below.checked_sub(1).map(|i| &entries[i]) {
            None => storage(slot),
            Some(e) if e.estimate => (MvRead::Estimate(e.txn), None),
            Some(e) => {
                let version = Version {
                    txn: e.txn,
                    incarnation: e.incarnation,
                };
                let read = ReadDescriptor {
                    slot,
                    origin: Origin::Written(version),
                };
                (MvRead::Written(e.value.clone()), Some(read))
            }
        }
    }

    /// Adds or replaces `version`'s entry in `slot`; returns whether a higher
    /// transaction has already read the key (its read may now be stale).
    fn write(slot: SlotRef<V>, version: Version, value: V::Value) -> bool {
        let versions = slot.versions();
        {
            let mut entries = versions.entries.lock();
            let entry = Entry {
                txn: version.txn,
                incarnation: version.incarnation,
                estimate: false,
                value,
            };
            let at = position(&entries, version.txn);
            match entries.get_mut(at) {
                Some(e) if e.txn == version.txn => *e = entry,
                _ => entries.insert(at, entry),
            }
            if versions.min_writer.load(SeqCst) > version.txn {
                versions.min_writer.fetch_min(version.txn, SeqCst);
            }
        }
        versions.max_reader.load(SeqCst) > version.txn + 1
    }

    fn remove(slot: SlotRef<V>, txn: TxnIndex) {
        let mut entries = slot.versions().entries.lock();
        let at = position(&entries, txn);
        if entries.get(at).is_some_and(|e| e.txn == txn) {
            entries.remove(at);
        }
    }

    fn mark_estimate(slot: SlotRef<V>, txn: TxnIndex) {
        let mut entries = slot.versions().entries.lock();
        let at = position(&entries, txn);
        if let Some(e) = entries.get_mut(at).filter(|e| e.txn == txn) {
            e.estimate = true;
        }
    }

    /// Publishes an incarnation's writes, read set and receipt. `reads` is swapped
    /// with the previous read set, so the caller gets a buffer back to reuse.
    /// Returns whether it wrote a key that the previous incarnation did not write
    /// *and* that a higher transaction has already read: only then can a higher
    /// transaction that already passed validation hold a stale read, so only
    /// then must they all be revalidated. (The paper revalidates on every new
    /// key; the reader mark makes the check exact per key: module docs.)
    pub(crate) fn record(
        &self,
        version: Version,
        reads: &mut Vec<ReadDescriptor<V>>,
        writes: &WriteSet<V::Key, V::Value>,
        receipt: V::Receipt,
    ) -> bool {
        let mut rec = self.records[version.txn as usize].lock();
        let mut wrote_new = false;
        let mut slots: SmallVec<[SlotRef<V>; MAX_ACCESS]> = SmallVec::new();
        for (key, value) in writes.entries() {
            // Most keys written were read first: reuse the slot found then.
            let slot = match reads.iter().find(|r| r.slot.key() == *key) {
                Some(r) => r.slot,
                None => SlotRef::new(self.slot(key)),
            };
            let read_above = Self::write(slot, version, value.clone());
            if read_above && !rec.written.contains(&slot) {
                wrote_new = true;
            }
            slots.push(slot);
        }
        for &old in &rec.written {
            if !slots.contains(&old) {
                Self::remove(old, version.txn);
            }
        }
        rec.written = slots;
        std::mem::swap(&mut rec.reads, reads);
        rec.receipt = Some(receipt);
        wrote_new
    }

    /// Whether every read of `txn`'s last recorded incarnation would still be
    /// served from the same place.
    pub(crate) fn validate_read_set(&self, txn: TxnIndex) -> bool {
        let rec = self.records[txn as usize].lock();
        Self::reads_valid(txn, &rec.reads)
    }

    /// Whether every read in `reads` (by `txn`) would still be served from the
    /// same place.
    pub(crate) fn reads_valid(txn: TxnIndex, reads: &[ReadDescriptor<V>]) -> bool {
        reads.iter().all(|r| {
            let versions = r.slot.versions();
            match r.origin {
                // No lower transaction ever wrote there: still the pre-batch value.
                Origin::Storage if versions.min_writer.load(SeqCst) >= txn => true,
                origin => versions.origin_below(txn) == Some(origin),
            }
        })
    }

    /// Marks the last recorded writes of `txn` as ESTIMATEs (it was aborted and
    /// will probably write the same keys again).
    pub(crate) fn convert_writes_to_estimates(&self, txn: TxnIndex) {
        let rec = self.records[txn as usize].lock();
        for &slot in &rec.written {
            Self::mark_estimate(slot, txn);
        }
    }

    /// Takes the receipt of `txn`'s last recorded incarnation (`None` if it
    /// never recorded one, which a finished batch rules out).
    pub(crate) fn take_receipt(&mut self, txn: usize) -> Option<V::Receipt> {
        self.records[txn].get_mut().receipt.take()
    }

    /// Writes the final value of every key of state shard `shard` written in
    /// the batch (its highest writer's) into `out`, and empties that shard of
    /// the key table for the next batch. Runs after all workers have finished.
    ///
    /// # Safety
    /// Only after the batch's workers have finished, by the one thread
    /// committing `shard`.
    pub(crate) unsafe fn commit_shard(&self, shard: usize, out: &mut V::Shard) {
        self.keys.drain_shard(shard, |key, versions| {
            // SAFETY: this thread alone uses the shard's keys, by the contract.
            if let Some(last) = unsafe { versions.take_last() } {
                debug_assert!(!last.estimate, "ESTIMATE left after the batch");
                V::write_shard(out, key, last.value);
            }
        });
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

    fn mv(n: usize) -> MvMemory<LedgerVm> {
        let mut mv = MvMemory::default();
        mv.reset(n, true);
        mv
    }

    fn write(mv: &MvMemory<LedgerVm>, key: Key, version: Version, amount: u128) -> bool {
        MvMemory::write(SlotRef::new(mv.slot(&key)), version, Value::Amount(amount))
    }

    fn read(mv: &MvMemory<LedgerVm>, key: Key, txn: TxnIndex) -> MvRead<Value> {
        mv.read(&key, txn).0
    }

    #[test]
    fn position_finds_the_place_in_short_and_long_chains() {
        for len in [0u32, 1, 3, 4, 5, 40] {
            // Entries of transactions 0, 2, 4, ...
            let entries: Vec<Entry<()>> = (0..len)
                .map(|i| Entry {
                    txn: 2 * i,
                    incarnation: 0,
                    estimate: false,
                    value: (),
                })
                .collect();
            for txn in 0..2 * len + 2 {
                let want = entries.partition_point(|e| e.txn < txn);
                assert_eq!(position(&entries, txn), want, "len {len} txn {txn}");
            }
        }
    }

    #[test]
    fn reads_see_the_highest_lower_writer() {
        let mv = mv(5);
        let k = Key::Balance(1, 0);
        write(&mv, k, v(1, 0), 10);
        write(&mv, k, v(3, 0), 30);
        assert!(matches!(read(&mv, k, 0), MvRead::Storage));
        assert!(matches!(read(&mv, k, 1), MvRead::Storage));
        assert!(matches!(
            read(&mv, k, 2),
            MvRead::Written(Value::Amount(10))
        ));
        assert!(matches!(
            read(&mv, k, 4),
            MvRead::Written(Value::Amount(30))
        ));
        let slot = SlotRef::new(mv.slot(&k));
        MvMemory::mark_estimate(slot, 3);
        assert!(matches!(read(&mv, k, 4), MvRead::Estimate(3)));
        // An ESTIMATE is not a read to validate.
        assert!(mv.read(&k, 4).1.is_none());
        MvMemory::remove(slot, 3);
        assert!(matches!(
            read(&mv, k, 4),
            MvRead::Written(Value::Amount(10))
        ));
        // A write out of index order lands in place.
        write(&mv, k, v(2, 0), 20);
        assert!(matches!(
            read(&mv, k, 4),
            MvRead::Written(Value::Amount(20))
        ));
        assert!(matches!(
            read(&mv, k, 2),
            MvRead::Written(Value::Amount(10))
        ));
    }

    #[test]
    fn writes_report_higher_readers_only() {
        let mv = mv(6);
        let k = Key::Nonce(7);
        assert!(matches!(read(&mv, k, 2), MvRead::Storage));
        // Transaction 2 read it: a write by 1 may have made that read stale; a
        // write by 2 or above cannot.
        assert!(write(&mv, k, v(1, 0), 1));
        assert!(!write(&mv, k, v(2, 0), 1));
        assert!(!write(&mv, k, v(4, 0), 1));
        let fresh = Key::Nonce(8);
        assert!(!write(&mv, fresh, v(0, 0), 1), "nobody read it");
    }

    #[test]
    fn record_reports_new_locations_and_drops_stale_ones() {
        let mut mv = mv(3);
        let (a, b) = (Key::Balance(1, 0), Key::Balance(2, 0));
        let mut ws = WriteSet::default();
        let mut two = WriteSet::default();
        two_writes(&mut two, &[(a, 1), (b, 2)]);
        // Transaction 1 reads `a` from storage, then records.
        let (_, Some(read_a)) = mv.read(&a, 1) else {
            panic!("a storage read is recorded")
        };
        let mut reads = vec![read_a];
        // Transaction 2 read `b` before 1 wrote it: 1's new location matters.
        assert!(matches!(read(&mv, b, 2), MvRead::Storage));
        assert!(mv.record(v(1, 0), &mut reads, &two, Receipt::Ok));
        assert!(reads.is_empty());
        two_writes(&mut ws, &[(a, 5)]);
        reads.push(read_a);
        assert!(!mv.record(v(1, 1), &mut reads, &ws, Receipt::Ok));
        assert!(matches!(read(&mv, b, 2), MvRead::Storage));
        assert!(mv.validate_read_set(1));
        write(&mv, a, v(0, 0), 9);
        assert!(
            !mv.validate_read_set(1),
            "a lower write invalidates a storage read"
        );
        assert_eq!(mv.take_receipt(1), Some(Receipt::Ok));
        mv.learn(3);
        let mut state = crate::state::State::new();
        // SAFETY: no other thread uses `mv`.
        state.finish_batch_with(None, |i, shard| unsafe { mv.commit_shard(i, shard) });
        assert_eq!(state.entries(), vec![(a, Value::Amount(5))]);
        // Committing emptied the table: the next batch starts from storage.
        mv.reset(3, true);
        assert!(matches!(read(&mv, a, 2), MvRead::Storage));
    }

    #[test]
    fn validation_sees_estimates_and_replaced_versions() {
        let mv = mv(4);
        let k = Key::Pool(0);
        write(&mv, k, v(0, 0), 1);
        let (MvRead::Written(Value::Amount(1)), Some(read_k)) = mv.read(&k, 2) else {
            panic!("2 reads 0's value")
        };
        let mut reads = vec![read_k];
        mv.record(v(2, 0), &mut reads, &WriteSet::default(), Receipt::Ok);
        assert!(mv.validate_read_set(2));
        // A new incarnation of 0 replaces the version 2 read.
        write(&mv, k, v(0, 1), 1);
        assert!(!mv.validate_read_set(2), "same value, other incarnation");
        let mut reads = vec![mv.read(&k, 2).1.unwrap()];
        mv.record(v(2, 1), &mut reads, &WriteSet::default(), Receipt::Ok);
        assert!(mv.validate_read_set(2));
        // 1 now writes the key and is then aborted: its ESTIMATE fails 2.
        let mut one = WriteSet::default();
        two_writes(&mut one, &[(k, 3)]);
        mv.record(v(1, 0), &mut Vec::new(), &one, Receipt::Ok);
        assert!(!mv.validate_read_set(2));
        mv.convert_writes_to_estimates(1);
        assert!(matches!(read(&mv, k, 2), MvRead::Estimate(1)));
        assert!(!mv.validate_read_set(2));
    }

    #[test]
    fn reset_without_commit_forgets_everything() {
        let mut mv = mv(2);
        let k = Key::Market(1);
        write(&mv, k, v(0, 0), 1);
        mv.record(v(1, 0), &mut Vec::new(), &WriteSet::default(), Receipt::Ok);
        mv.reset(2, false);
        assert!(matches!(read(&mv, k, 1), MvRead::Storage));
        assert_eq!(mv.take_receipt(1), None);
    }

    fn two_writes(ws: &mut WriteSet, items: &[(Key, u128)]) {
        ws.clear();
        for (k, amount) in items {
            ws.put(*k, Value::Amount(*amount));
        }
    }
}
