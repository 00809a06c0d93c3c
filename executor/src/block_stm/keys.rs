//! Block-STM's key table: the slot of every key a batch touches, found without
//! locks. It replaces a `Mutex<HashMap>` per shard, which cost every read, write
//! and validation two atomic read-modify-writes on a shared lock, a second hash of
//! the key and a probe of hashbrown's control bytes.
//!
//! Layout: one open-addressing table per state shard (`crate::state::SHARDS`; the
//! top bits of `Vm::key_hash` pick it, exactly as they pick the key's state shard,
//! so committing a state shard visits exactly one table), linear probing from the
//! next bits of the hash, sized before each batch from the keys per transaction of
//! the last one at a load of at most one half. Each table also lists, in claim
//! order, the slots that left `EMPTY` during the batch: commit walks that list (no
//! scan of the table) and empties exactly those slots for the next batch.
//!
//! A slot's state moves only forward within a batch (and back to `EMPTY` only
//! between batches, when no worker runs):
//!
//! ```text
//!   EMPTY --CAS by the inserting thread--> BUSY --key written, Release--> READY
//!   EMPTY --CAS when the table is 3/4 full--> CLOSED (probes go to the overflow map)
//! ```
//!
//! Invariants:
//! - A key is in at most one place: the first `READY` slot holding it on its probe
//!   sequence, or the overflow map if the sequence reaches a `CLOSED` slot first.
//!   A probe stops at the first slot that is not `READY`; since a slot leaves
//!   `EMPTY` once per batch and never returns to it during the batch, two threads
//!   inserting the same key meet at the same first non-`READY` slot, and only one
//!   CAS wins there (the other sees `BUSY`, waits for `READY`, and compares).
//! - A slot's key is written only by the thread whose CAS moved it to `BUSY`, and
//!   read only after an Acquire load saw `READY` (the Release that published it).
//! - A table's list holds every slot that left `EMPTY` this batch, each once: the
//!   counter that places it is the same one that decides `CLOSED` (at three
//!   quarters of the capacity), and there are no more transitions than slots, so
//!   it never overflows.
//! - References to slots (and to overflow slots, boxed so that map growth does not
//!   move them) stay valid until `drain_shard`, `clear` or `prepare`, which run only
//!   when no worker is using the table.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crossbeam::utils::CachePadded;
use rustc_hash::FxHashMap;

use crate::state::{SHARDS, shard_of};
use crate::threads::backoff;

const EMPTY: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;
const CLOSED: u8 = 3;

/// Smallest capacity of one shard's table.
const MIN_CAPACITY: usize = 64;

/// One key's place in the table, with the payload the caller keeps for it.
///
/// Laid out in this order and aligned to a cache line, so that a probe and the
/// head of the payload (Block-STM's reader and writer marks) share the slot's
/// first line: a read served from storage touches one line of the table.
#[repr(C, align(64))]
pub(crate) struct Slot<K, P> {
    state: AtomicU8,
    key: UnsafeCell<MaybeUninit<K>>,
    payload: P,
}

// SAFETY: `key` is written once per batch by the thread that claimed the slot and
// read by others only after the Release/Acquire pair on `state` (module docs); `K`
// is `Copy`, so nothing is dropped. `payload` is shared as `&P`, which needs `P: Sync`.
unsafe impl<K: Copy + Send + Sync, P: Sync> Sync for Slot<K, P> {}

impl<K: Copy, P: Default> Slot<K, P> {
    fn empty() -> Slot<K, P> {
        Slot {
            state: AtomicU8::new(EMPTY),
            key: UnsafeCell::new(MaybeUninit::uninit()),
            payload: P::default(),
        }
    }

    fn ready(key: K) -> Slot<K, P> {
        Slot {
            state: AtomicU8::new(READY),
            key: UnsafeCell::new(MaybeUninit::new(key)),
            payload: P::default(),
        }
    }
}

impl<K: Copy, P> Slot<K, P> {
    /// What the caller keeps for this key.
    #[inline]
    pub(crate) fn payload(&self) -> &P {
        &self.payload
    }

    /// The key (every slot handed out is `READY`).
    #[inline]
    pub(crate) fn key(&self) -> K {
        // SAFETY: callers reach a slot only after an Acquire load saw READY, which
        // the writer of the key published with a Release store.
        unsafe { (*self.key.get()).assume_init() }
    }
}

/// One state shard's table.
struct Table<K, P> {
    slots: Box<[Slot<K, P>]>,
    /// Slots that left `EMPTY` this batch (their indices, in claim order); the
    /// first `used` entries are set.
    list: Box<[AtomicUsize]>,
    used: CachePadded<AtomicUsize>,
    /// Keys that found the table three quarters full.
    overflow: Mutex<FxHashMap<K, Box<Slot<K, P>>>>,
}

impl<K: Copy, P: Default> Table<K, P> {
    fn new(capacity: usize) -> Table<K, P> {
        Table {
            slots: (0..capacity).map(|_| Slot::empty()).collect(),
            list: (0..capacity).map(|_| AtomicUsize::new(0)).collect(),
            used: CachePadded::new(AtomicUsize::new(0)),
            overflow: Mutex::new(FxHashMap::default()),
        }
    }
}

/// The per-batch key table (module docs).
pub(crate) struct KeyTable<K, P> {
    tables: Vec<Table<K, P>>,
    /// log2 of each table's capacity.
    bits: u32,
}

impl<K, P> Default for KeyTable<K, P>
where
    K: Copy + Eq + std::hash::Hash,
    P: Default,
{
    fn default() -> Self {
        KeyTable::with_capacity(MIN_CAPACITY)
    }
}

impl<K, P> KeyTable<K, P>
where
    K: Copy + Eq + std::hash::Hash,
    P: Default,
{
    fn with_capacity(capacity: usize) -> KeyTable<K, P> {
        let capacity = capacity.next_power_of_two().max(MIN_CAPACITY);
        KeyTable {
            tables: (0..SHARDS).map(|_| Table::new(capacity)).collect(),
            bits: capacity.trailing_zeros(),
        }
    }

    fn capacity(&self) -> usize {
        1 << self.bits
    }

    /// Sizes the (empty) table for about `keys` keys in the coming batch: each
    /// shard's table gets twice its share, rounded up to a power of two (a load
    /// of a quarter to a half; the hash spreads keys over the shards evenly, and
    /// a table closes only at three quarters). Grows whenever that is more than
    /// it has; shrinks only when it has eight times too much, so that batch
    /// sizes that vary do not reallocate every time.
    pub(crate) fn prepare(&mut self, keys: usize) {
        debug_assert!(self.keys_used() == 0, "prepare on a table in use");
        let wanted = (keys.saturating_mul(2) / SHARDS)
            .max(MIN_CAPACITY)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX / 2 + 1);
        let capacity = self.capacity();
        if wanted > capacity || wanted.saturating_mul(8) < capacity {
            *self = KeyTable::with_capacity(wanted);
        }
    }

    /// Number of keys (and closed slots) placed this batch, overflow included.
    pub(crate) fn keys_used(&self) -> usize {
        self.tables
            .iter()
            .map(|t| {
                t.used.load(Ordering::Relaxed)
                    + t.overflow
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .len()
            })
            .sum()
    }

    /// Where the probe for a key whose hash is `hash` starts (its table, the
    /// slot's index).
    #[inline]
    fn home(&self, hash: u64) -> (&Table<K, P>, usize) {
        let table = &self.tables[shard_of(hash)];
        // The bits below the shard's: as well mixed as the shard's own.
        let i = ((hash << 4) >> (64 - self.bits)) as usize & (self.capacity() - 1);
        (table, i)
    }

    /// Asks the processor to bring the first cache line of the slot where the
    /// probe for a key with hash `hash` starts into the cache (a hint: nothing
    /// is read or written). A read of a key no thread touched yet in the batch
    /// misses the cache on that line (the table is far larger than the cache);
    /// prefetching a transaction's keys before it runs overlaps those misses.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        let (table, i) = self.home(hash);
        let slot: *const Slot<K, P> = &table.slots[i];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: a prefetch reads nothing architecturally and cannot
            // fault; `slot` points into the live table anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(slot.cast::<i8>()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// The slot of `key` (whose `Vm::key_hash` is `hash`), inserted if absent.
    #[inline]
    pub(crate) fn slot(&self, key: &K, hash: u64) -> &Slot<K, P> {
        let (table, mut i) = self.home(hash);
        let mask = self.capacity() - 1;
        loop {
            let slot = &table.slots[i];
            match slot.state.load(Ordering::Acquire) {
                READY => {
                    if slot.key() == *key {
                        return slot;
                    }
                    i = (i + 1) & mask;
                }
                EMPTY => {
                    if let Some(slot) = self.claim(table, i, key) {
                        return slot;
                    }
                    // Lost the race for this slot: look at it again.
                }
                BUSY => wait_ready(slot),
                _ => return Self::overflow(table, key),
            }
        }
    }

    /// Tries to move slot `i` from `EMPTY` to `READY` holding `key` (or to
    /// `CLOSED` if the table is 3/4 full, then returning the overflow slot).
    /// `None`: another thread changed the slot first.
    #[cold]
    fn claim<'a>(&self, table: &'a Table<K, P>, i: usize, key: &K) -> Option<&'a Slot<K, P>> {
        let slot = &table.slots[i];
        let full = table.used.load(Ordering::Relaxed) >= self.capacity() / 4 * 3;
        let next = if full { CLOSED } else { BUSY };
        slot.state
            .compare_exchange(EMPTY, next, Ordering::Acquire, Ordering::Acquire)
            .ok()?;
        let at = table.used.fetch_add(1, Ordering::Relaxed);
        // At most one transition per slot per batch, so `at` < capacity.
        table.list[at].store(i, Ordering::Relaxed);
        if full {
            return Some(Self::overflow(table, key));
        }
        // SAFETY: the CAS to BUSY gave this thread the slot; nobody reads the key
        // before the Release store below.
        unsafe { (*slot.key.get()).write(*key) };
        slot.state.store(READY, Ordering::Release);
        Some(slot)
    }

    /// The overflow slot of `key` in `table`, inserted if absent.
    #[cold]
    fn overflow<'a>(table: &'a Table<K, P>, key: &K) -> &'a Slot<K, P> {
        let mut map = table
            .overflow
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let boxed = map
            .entry(*key)
            .or_insert_with(|| Box::new(Slot::ready(*key)));
        let ptr: *const Slot<K, P> = &**boxed;
        // SAFETY: the box is neither moved nor freed until `drain_shard`, `clear`
        // or `prepare`, none of which runs while a reference from here is in use
        // (module docs); map growth moves the box pointer, not the slot.
        unsafe { &*ptr }
    }

    /// Calls `f` on every key of state shard `shard` placed this batch (with its
    /// payload, which `f` must leave as `P::default()` would be) and empties
    /// the shard's table. Only while no other thread uses this shard's table.
    pub(crate) fn drain_shard(&self, shard: usize, mut f: impl FnMut(K, &P)) {
        let table = &self.tables[shard];
        let used = table.used.swap(0, Ordering::Relaxed);
        for at in &table.list[..used] {
            let slot = &table.slots[at.load(Ordering::Relaxed)];
            let state = slot.state.load(Ordering::Relaxed);
            slot.state.store(EMPTY, Ordering::Relaxed);
            if state == READY {
                f(slot.key(), &slot.payload);
            }
        }
        let mut map = table
            .overflow
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (key, slot) in map.drain() {
            f(key, &slot.payload);
        }
    }

    /// Empties every shard's table, calling `f` as `drain_shard` does.
    pub(crate) fn clear(&mut self, mut f: impl FnMut(K, &P)) {
        for shard in 0..SHARDS {
            self.drain_shard(shard, &mut f);
        }
    }
}

#[cold]
fn wait_ready<K, P>(slot: &Slot<K, P>) {
    let mut idle = 0;
    while slot.state.load(Ordering::Acquire) == BUSY {
        backoff(&mut idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn hash(k: &u64) -> u64 {
        use std::hash::BuildHasher;
        rustc_hash::FxBuildHasher.hash_one(k)
    }

    #[test]
    fn one_slot_per_key_and_drain_sees_each_once() {
        let mut t = KeyTable::<u64, AtomicU32>::default();
        t.prepare(100);
        for k in 0..100u64 {
            t.slot(&k, hash(&k))
                .payload()
                .store(k as u32 + 1, Ordering::Relaxed);
        }
        for k in 0..100u64 {
            assert_eq!(
                t.slot(&k, hash(&k)).payload().load(Ordering::Relaxed),
                k as u32 + 1
            );
        }
        assert_eq!(t.keys_used(), 100);
        let mut seen = Vec::new();
        t.clear(|k, p| {
            seen.push((k, p.swap(0, Ordering::Relaxed)));
        });
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..100u64).map(|k| (k, k as u32 + 1)).collect::<Vec<_>>()
        );
        assert_eq!(t.keys_used(), 0);
        // Empty again: fresh slots.
        assert_eq!(t.slot(&7, hash(&7)).payload().load(Ordering::Relaxed), 0);
    }

    #[test]
    fn overflow_keeps_every_key_findable() {
        // Far more keys than the minimum table holds before closing.
        let t = KeyTable::<u64, AtomicU32>::default();
        let n = (SHARDS * MIN_CAPACITY * 2) as u64;
        for k in 0..n {
            t.slot(&k, hash(&k))
                .payload()
                .fetch_add(1, Ordering::Relaxed);
        }
        for k in 0..n {
            assert_eq!(t.slot(&k, hash(&k)).payload().load(Ordering::Relaxed), 1);
        }
        let overflowed: usize = t
            .tables
            .iter()
            .map(|t| t.overflow.lock().unwrap().len())
            .sum();
        assert!(overflowed > 0, "the test must exercise the overflow map");
        let mut count = 0;
        t.drain_shard(0, |_, _| count += 1);
        assert!(count > 0);
    }

    #[test]
    fn concurrent_inserts_of_the_same_keys_agree() {
        let t = KeyTable::<u64, AtomicU32>::default();
        let n = 3000u64;
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for k in 0..n {
                        t.slot(&k, hash(&k))
                            .payload()
                            .fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        for k in 0..n {
            assert_eq!(t.slot(&k, hash(&k)).payload().load(Ordering::Relaxed), 4);
        }
    }
}
