//! The ledger: a key-value map of balances, nonces, public keys, AMM pools, LP
//! shares, lending markets and positions, with its incremental digest.
//!
//! Invariants:
//! - every stored value has the kind its key calls for (`Key::accepts`), and no
//!   stored value is a default (zero balance, zero nonce, empty position): a write
//!   of a default removes the entry, so the digest depends only on the meaning of
//!   the state, never on whether a zero was written or never set;
//! - `digest` is the root of the Merkle tree over all entries (`merkle.rs`),
//!   computed lazily. During a batch, executors `write` entries; the first write of
//!   a key in a batch records its old value (the entry remembers where, by batch
//!   epoch, so later writes update that record without another lookup), and
//!   `finish_batch` drops entries that became default and queues every changed key
//!   as *pending* (no hashing). `settle` (called by `digest`, by an executor's
//!   `Executor::digest` on its threads, and before a snapshot) hashes the current
//!   leaf of every pending key once — in parallel over the shards — and hands the
//!   changes to the tree, which rehashes the buckets and nodes above them (in
//!   parallel over its subtrees). A replica asks for the digest only at
//!   checkpoints, so a hot key written in every batch is hashed once per
//!   checkpoint interval, not once per batch, and a bucket or node once per
//!   interval however many batches dirtied it;
//! - the state is *settled* when no shard has pending keys: then the tree's root
//!   is the digest of the entries. Snapshots are cut from a settled state only.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::amm::Pool;
use crate::error::Error;
use crate::lending::{BPS, Market, Position};
use crate::merkle::{Change, MerkleTree, bucket_of, leaf_hash};
use crate::threads::WorkerThreads;

/// An account id. Account 0 is the faucet, the only sender allowed to mint.
pub type Account = u64;
/// A token id.
pub type Token = u32;
/// An AMM pool id.
pub type PoolId = u32;
/// A lending market id.
pub type MarketId = u32;

/// The genesis/faucet account: the only sender of `mint`.
pub const FAUCET: Account = 0;

/// A ledger location. Each key kind holds one value kind (see `Key::accepts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    /// The sender's last used nonce (`Value::Nonce`).
    Nonce(Account),
    /// The account's registered Ed25519 public key (`Value::PublicKey`); set at
    /// genesis only. An account with a key must sign its transactions.
    PublicKey(Account),
    /// A token balance (`Value::Amount`).
    Balance(Account, Token),
    /// An AMM pool (`Value::Pool`).
    Pool(PoolId),
    /// LP shares of an account in a pool (`Value::Amount`).
    Lp(PoolId, Account),
    /// A lending market (`Value::Market`).
    Market(MarketId),
    /// An account's position in a lending market (`Value::Position`).
    Position(MarketId, Account),
}

/// A ledger value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Nonce(u64),
    PublicKey([u8; 32]),
    Amount(u128),
    Pool(Pool),
    Market(Market),
    Position(Position),
}

impl Key {
    /// Whether `value` is of the kind this key holds.
    pub fn accepts(&self, value: &Value) -> bool {
        matches!(
            (self, value),
            (Key::Nonce(_), Value::Nonce(_))
                | (Key::PublicKey(_), Value::PublicKey(_))
                | (Key::Balance(..), Value::Amount(_))
                | (Key::Pool(_), Value::Pool(_))
                | (Key::Lp(..), Value::Amount(_))
                | (Key::Market(_), Value::Market(_))
                | (Key::Position(..), Value::Position(_))
        )
    }
}

impl Value {
    /// Default values are not stored: reading an absent key means the default.
    pub fn is_default(&self) -> bool {
        match self {
            Value::Nonce(n) => *n == 0,
            Value::Amount(a) => *a == 0,
            Value::Position(p) => p.deposit == 0 && p.borrow == 0,
            Value::PublicKey(_) | Value::Pool(_) | Value::Market(_) => false,
        }
    }
}

/// Checks that `value` may be stored under `key`.
pub(crate) fn check_entry(key: &Key, value: &Value) -> Result<(), &'static str> {
    if !key.accepts(value) {
        return Err("value kind does not match the key kind");
    }
    match value {
        Value::Pool(p) => {
            if p.token0 == p.token1 {
                return Err("a pool needs two distinct tokens");
            }
            if p.lp_supply == 0 && (p.reserve0 != 0 || p.reserve1 != 0) {
                return Err("a pool with reserves needs LP supply");
            }
        }
        Value::PublicKey(k) => crate::public_key::check_public_key(k).map_err(|e| e.as_str())?,
        Value::Market(m) => {
            if m.collateral_factor_bps > BPS {
                return Err("collateral factor above 10000 bps");
            }
            if m.total_borrows > m.total_deposits {
                return Err("market borrows exceed deposits");
            }
        }
        _ => {}
    }
    Ok(())
}

/// Number of hash shards of the state map. Shards only change the layout, never
/// the digest or any result; they let the commit phase of a parallel batch run on
/// every thread (each shard is written and finished by one thread).
pub(crate) const SHARDS: usize = 16;

/// The hash that places a key in a shard (Fx: deterministic, fast; the top bits
/// are the well-mixed ones). Block-STM's multi-version memory uses the same hash
/// so that its shards map onto state shards.
pub(crate) fn key_hash(key: &Key) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(key)
}

/// The state shard of a key hash.
pub(crate) fn shard_of(hash: u64) -> usize {
    (hash >> 60) as usize
}

#[derive(Clone, Debug)]
struct Entry {
    value: Value,
    /// The shard epoch (batch) in which this entry was first written, if it is
    /// the current one; `slot` then indexes its record in `Shard::dirty`.
    epoch: u64,
    slot: u32,
}

/// A key changed in the current batch: its value before the batch and now.
#[derive(Clone, Debug)]
struct Dirty {
    key: Key,
    old: Option<Value>,
    new: Value,
}

/// One shard of the state map, with the keys changed in the current batch and the
/// keys changed since the tree last saw them.
#[derive(Clone, Debug)]
pub struct Shard {
    map: FxHashMap<Key, Entry>,
    dirty: Vec<Dirty>,
    /// Current batch number of this shard; entries from earlier batches are clean.
    epoch: u64,
    /// Keys changed by finished batches and not yet folded into the tree, possibly
    /// with repeats: deduplicated by `settle`, and by `finish` whenever the list
    /// reaches `pending_limit`, which then becomes twice the deduplicated length. So
    /// the list holds at most about twice the distinct keys changed since the last
    /// digest (plus `PENDING_SLACK`), and each key pushed costs amortised O(log n).
    pending: Vec<Key>,
    /// The length at which `finish` deduplicates `pending` next.
    pending_limit: usize,
    /// Result of the last `settle`: the changed keys with their new leaves.
    changes: Vec<Change>,
    /// Public keys added by the last `finish`.
    keys_added: isize,
}

/// The smallest length at which `finish` deduplicates a shard's pending list (so a
/// state never asked for its digest stays bounded, see `Shard::pending`).
const PENDING_SLACK: usize = 4096;

impl Default for Shard {
    fn default() -> Self {
        Shard {
            map: FxHashMap::default(),
            dirty: Vec::new(),
            epoch: 1,
            pending: Vec::new(),
            pending_limit: PENDING_SLACK,
            changes: Vec::new(),
            keys_added: 0,
        }
    }
}

impl Shard {
    /// Writes `value` at `key` (which must hash to this shard) inside a batch.
    /// Writing the current value again is free.
    pub(crate) fn write(&mut self, key: Key, value: Value) {
        use std::collections::hash_map::Entry as MapEntry;
        match self.map.entry(key) {
            MapEntry::Occupied(slot) => {
                let entry = slot.into_mut();
                if entry.epoch == self.epoch {
                    if let Some(d) = self.dirty.get_mut(entry.slot as usize) {
                        d.new = value;
                    }
                } else {
                    if entry.value == value {
                        return;
                    }
                    entry.epoch = self.epoch;
                    entry.slot = self.dirty.len() as u32;
                    self.dirty.push(Dirty {
                        key,
                        old: Some(entry.value),
                        new: value,
                    });
                }
                entry.value = value;
            }
            MapEntry::Vacant(slot) => {
                if value.is_default() {
                    return;
                }
                slot.insert(Entry {
                    value,
                    epoch: self.epoch,
                    slot: self.dirty.len() as u32,
                });
                self.dirty.push(Dirty {
                    key,
                    old: None,
                    new: value,
                });
            }
        }
    }

    /// Ends the batch for this shard: removes entries that became default and
    /// queues every changed key (none for keys written back to their old value) as
    /// pending for the tree.
    fn finish(&mut self) {
        let mut keys_added = 0isize;
        for d in self.dirty.drain(..) {
            if d.old == Some(d.new) {
                continue;
            }
            if d.new.is_default() {
                self.map.remove(&d.key);
            }
            // Created and removed within the batch: the tree never saw it.
            if d.old.is_some() || !d.new.is_default() {
                self.pending.push(d.key);
            }
            if matches!(d.key, Key::PublicKey(_)) {
                keys_added += isize::from(!d.new.is_default()) - isize::from(d.old.is_some());
            }
        }
        if self.pending.len() >= self.pending_limit {
            self.pending.sort_unstable();
            self.pending.dedup();
            self.pending_limit = PENDING_SLACK.max(2 * self.pending.len());
        }
        self.epoch += 1;
        self.keys_added = keys_added;
    }

    /// Hashes the current leaf of every pending key once (`None` for a key no
    /// longer stored) into `changes`, and empties the pending list.
    fn settle(&mut self) {
        self.changes.clear();
        self.pending.sort_unstable();
        self.pending.dedup();
        self.pending_limit = PENDING_SLACK;
        for key in self.pending.drain(..) {
            let leaf = self.map.get(&key).map(|e| leaf_hash(&key, &e.value));
            self.changes.push(Change {
                bucket: bucket_of(&key),
                key,
                leaf,
            });
        }
    }
}

/// The ledger state. Cloning copies the whole map (used by benchmarks and tests).
#[derive(Clone, Debug)]
pub struct State {
    shards: Vec<Shard>,
    tree: MerkleTree,
    /// Number of `PublicKey` entries (signature checks are skipped when zero).
    public_keys: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            tree: MerkleTree::default(),
            public_keys: 0,
        }
    }
}

impl PartialEq for State {
    /// Equal entries (the digest is a function of them).
    fn eq(&self, other: &Self) -> bool {
        self.shards.iter().zip(&other.shards).all(|(a, b)| {
            a.map.len() == b.map.len()
                && a.map
                    .iter()
                    .all(|(k, e)| b.map.get(k).map(|o| o.value) == Some(e.value))
        })
    }
}

impl Eq for State {}

impl State {
    /// An empty ledger (digest zero).
    pub fn new() -> State {
        State::default()
    }

    /// Builds a state from entries; later duplicates overwrite earlier ones and
    /// default values are dropped.
    pub fn from_entries(entries: impl IntoIterator<Item = (Key, Value)>) -> Result<State, Error> {
        let mut state = State::new();
        state.set_many(entries)?;
        Ok(state)
    }

    /// The 32-byte state digest, the Merkle root of `merkle.rs`: settles the state
    /// first (on this thread; `Executor::digest` settles on the executor's threads),
    /// then O(1). Costs one leaf hash per key changed since the last digest, plus
    /// the buckets and nodes above them.
    pub fn digest(&mut self) -> [u8; 32] {
        self.settle(None);
        self.tree.root()
    }

    /// The digest if the state is settled (no change waits for the tree), without
    /// settling it.
    pub fn settled_digest(&self) -> Option<[u8; 32]> {
        self.is_settled().then(|| self.tree.root())
    }

    /// Whether every change has been folded into the tree.
    pub fn is_settled(&self) -> bool {
        self.shards.iter().all(|s| s.pending.is_empty())
    }

    /// Folds every pending change into the tree: the leaves are hashed per shard
    /// and the tree's subtrees rehashed, on the worker `threads` when given. The digest
    /// is the same either way.
    pub(crate) fn settle(&mut self, threads: Option<&WorkerThreads>) {
        if self.is_settled() {
            return;
        }
        let work = |_: usize, shards: &mut [Shard]| {
            for shard in shards.iter_mut() {
                shard.settle();
            }
        };
        match threads {
            Some(threads) if threads.count() > 1 => {
                threads.parallel_chunks(&mut self.shards, 1, work)
            }
            _ => work(0, &mut self.shards),
        }
        let changes = self.shards.iter_mut().flat_map(|s| s.changes.drain(..));
        self.tree.apply(changes, threads);
    }

    /// This state, settled: itself if it is, else a settled copy (snapshots of an
    /// unsettled state are cut from the copy).
    pub(crate) fn settled(&self) -> std::borrow::Cow<'_, State> {
        if self.is_settled() {
            std::borrow::Cow::Borrowed(self)
        } else {
            let mut copy = self.clone();
            copy.settle(None);
            std::borrow::Cow::Owned(copy)
        }
    }

    /// The Merkle tree (chunked snapshots read buckets and range proofs from it).
    pub(crate) fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Number of stored (non-default) entries.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `key`, `None` if absent (meaning the default).
    pub fn get(&self, key: &Key) -> Option<Value> {
        self.shards[shard_of(key_hash(key))]
            .map
            .get(key)
            .map(|e| e.value)
    }

    /// All entries in key order.
    pub fn entries(&self) -> Vec<(Key, Value)> {
        let mut all: Vec<(Key, Value)> = self
            .shards
            .iter()
            .flat_map(|s| s.map.iter().map(|(k, e)| (*k, e.value)))
            .collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all
    }

    pub fn balance(&self, account: Account, token: Token) -> u128 {
        match self.get(&Key::Balance(account, token)) {
            Some(Value::Amount(a)) => a,
            _ => 0,
        }
    }

    pub fn nonce(&self, account: Account) -> u64 {
        match self.get(&Key::Nonce(account)) {
            Some(Value::Nonce(n)) => n,
            _ => 0,
        }
    }

    pub fn lp_balance(&self, pool: PoolId, account: Account) -> u128 {
        match self.get(&Key::Lp(pool, account)) {
            Some(Value::Amount(a)) => a,
            _ => 0,
        }
    }

    pub fn pool(&self, pool: PoolId) -> Option<Pool> {
        match self.get(&Key::Pool(pool)) {
            Some(Value::Pool(p)) => Some(p),
            _ => None,
        }
    }

    pub fn market(&self, market: MarketId) -> Option<Market> {
        match self.get(&Key::Market(market)) {
            Some(Value::Market(m)) => Some(m),
            _ => None,
        }
    }

    pub fn position(&self, market: MarketId, account: Account) -> Position {
        match self.get(&Key::Position(market, account)) {
            Some(Value::Position(p)) => p,
            _ => Position::default(),
        }
    }

    pub fn public_key(&self, account: Account) -> Option<[u8; 32]> {
        match self.get(&Key::PublicKey(account)) {
            Some(Value::PublicKey(k)) => Some(k),
            _ => None,
        }
    }

    /// Whether any account has a registered public key.
    pub fn has_public_keys(&self) -> bool {
        self.public_keys > 0
    }

    /// Sets one entry (genesis, tests, tools), checking that the value fits the key.
    pub fn set(&mut self, key: Key, value: Value) -> Result<(), Error> {
        self.set_many([(key, value)])
    }

    /// Sets many entries at once, then updates the digest once.
    pub fn set_many(
        &mut self,
        entries: impl IntoIterator<Item = (Key, Value)>,
    ) -> Result<(), Error> {
        for (key, value) in entries {
            if let Err(reason) = check_entry(&key, &value) {
                self.finish_batch(None);
                return Err(Error::InvalidEntry { key, reason });
            }
            self.write(key, value);
        }
        self.finish_batch(None);
        self.settle(None);
        Ok(())
    }

    /// Writes `value` at `key` inside a batch; `finish_batch` folds it into the
    /// digest.
    pub(crate) fn write(&mut self, key: Key, value: Value) {
        self.shards[shard_of(key_hash(&key))].write(key, value);
    }

    /// Ends a batch (see `finish_batch_with`) with nothing more to write.
    pub(crate) fn finish_batch(&mut self, threads: Option<&WorkerThreads>) {
        self.finish_batch_with(threads, |_, _| {});
    }

    /// Ends a batch: for every shard, `commit(i, shard)` first writes whatever
    /// the executor still holds for shard `i` (its final versions), then the
    /// shard queues its changed keys for the tree (`settle` hashes them). With
    /// worker threads, shards are spread over them.
    pub(crate) fn finish_batch_with(
        &mut self,
        threads: Option<&WorkerThreads>,
        commit: impl Fn(usize, &mut Shard) + Sync,
    ) {
        let work = |offset: usize, shards: &mut [Shard]| {
            for (i, shard) in shards.iter_mut().enumerate() {
                commit(offset + i, shard);
                shard.finish();
            }
        };
        match threads {
            Some(threads) if threads.count() > 1 => {
                threads.parallel_chunks(&mut self.shards, 1, work)
            }
            _ => work(0, &mut self.shards),
        }
        for shard in &self.shards {
            self.public_keys = self.public_keys.saturating_add_signed(shard.keys_added);
        }
    }

    /// Inserts already validated entries with distinct keys outside any batch
    /// (snapshot restore), then updates the tree once.
    pub(crate) fn insert_verified(&mut self, entries: &[(Key, Value)]) {
        debug_assert!(self.is_settled(), "entries are inserted into a fresh state");
        self.reserve(entries.len());
        for (key, value) in entries {
            self.insert_one(*key, *value);
        }
        let changes = entries.iter().map(|(k, v)| Change {
            bucket: bucket_of(k),
            key: *k,
            leaf: Some(leaf_hash(k, v)),
        });
        self.tree.apply(changes, None);
    }

    fn insert_one(&mut self, key: Key, value: Value) {
        if matches!(key, Key::PublicKey(_)) {
            self.public_keys += 1;
        }
        self.shards[shard_of(key_hash(&key))].map.insert(
            key,
            Entry {
                value,
                epoch: 0,
                slot: 0,
            },
        );
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        for shard in &mut self.shards {
            shard.map.reserve(additional / SHARDS + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_contents_not_history() {
        let mut a = State::new();
        a.set(Key::Balance(1, 0), Value::Amount(10)).unwrap();
        a.set(Key::Balance(2, 0), Value::Amount(20)).unwrap();
        let mut b = State::new();
        b.set(Key::Balance(2, 0), Value::Amount(7)).unwrap();
        b.set(Key::Balance(3, 0), Value::Amount(7)).unwrap();
        b.set(Key::Balance(1, 0), Value::Amount(10)).unwrap();
        b.set(Key::Balance(2, 0), Value::Amount(20)).unwrap();
        assert_ne!(a.digest(), b.digest());
        b.set(Key::Balance(3, 0), Value::Amount(0)).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a, b);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn empty_state_has_zero_digest_and_defaults_are_absent() {
        let mut s = State::new();
        assert_eq!(s.digest(), [0; 32]);
        s.set(Key::Nonce(5), Value::Nonce(0)).unwrap();
        s.set(Key::Position(1, 5), Value::Position(Position::default()))
            .unwrap();
        assert_eq!(s.digest(), [0; 32]);
        assert!(s.is_empty());
    }

    #[test]
    fn batch_writes_fold_into_the_digest_once() {
        let mut s = State::new();
        s.set(Key::Balance(1, 0), Value::Amount(100)).unwrap();
        s.write(Key::Balance(1, 0), Value::Amount(50));
        s.write(Key::Balance(1, 0), Value::Amount(0));
        s.write(Key::Balance(2, 0), Value::Amount(100));
        s.finish_batch(None);
        let mut expected = State::from_entries([(Key::Balance(2, 0), Value::Amount(100))]).unwrap();
        assert_eq!(s.digest(), expected.digest());
        assert_eq!(s, expected);
    }

    #[test]
    fn set_rejects_mismatched_kinds_and_bad_pools() {
        let mut s = State::new();
        assert!(matches!(
            s.set(Key::Balance(1, 0), Value::Nonce(1)),
            Err(Error::InvalidEntry { .. })
        ));
        assert!(s.set(Key::Pool(0), Value::Pool(Pool::new(1, 1))).is_err());
        assert!(
            s.set(Key::Market(0), Value::Market(Market::new(0, 10_001)))
                .is_err()
        );
        assert!(s.is_empty());
    }

    #[test]
    fn public_key_count_follows_writes() {
        let mut s = State::new();
        let (k1, k2) = (
            crate::signature::account_public_key(1, 1).unwrap(),
            crate::signature::account_public_key(1, 2).unwrap(),
        );
        s.set(Key::PublicKey(1), Value::PublicKey(k1)).unwrap();
        s.set(Key::PublicKey(1), Value::PublicKey(k2)).unwrap();
        assert!(s.set(Key::PublicKey(2), Value::PublicKey([1; 32])).is_err());
        assert!(s.has_public_keys());
        assert_eq!(s.public_keys, 1);
    }

    #[test]
    fn parallel_finish_gives_the_same_digest() {
        let threads = WorkerThreads::new(3).unwrap();
        let mut a = State::new();
        let mut b = State::new();
        for round in 0..3u128 {
            for k in 0..2000u64 {
                let v = Value::Amount((u128::from(k) * 7 + round) % 5);
                a.write(Key::Balance(k, 0), v);
                b.write(Key::Balance(k, 0), v);
            }
            a.finish_batch(None);
            b.finish_batch(Some(&threads));
            assert_eq!(a.digest(), b.digest());
            assert_eq!(a, b);
        }
        let mut rebuilt = State::from_entries(a.entries()).unwrap();
        assert_eq!(rebuilt.digest(), a.digest());
    }

    /// The digest asked once after many batches (a replica asks at checkpoints)
    /// equals the digest asked after every batch, settled on worker threads or not, and
    /// keys removed, re-added and removed again between digests leave no trace.
    #[test]
    fn a_digest_after_many_batches_equals_one_after_each() {
        let threads = WorkerThreads::new(2).unwrap();
        let mut every = State::new();
        let mut once = State::new();
        for round in 0..6u128 {
            for k in 0..500u64 {
                // Amount 0 removes the entry: keys come and go between digests.
                let v = Value::Amount((u128::from(k) + round) % 3);
                every.write(Key::Balance(k, 0), v);
                once.write(Key::Balance(k, 0), v);
            }
            every.finish_batch(None);
            once.finish_batch(None);
            every.digest();
            assert!(every.is_settled());
            assert!(!once.is_settled());
            assert_eq!(once.settled_digest(), None);
        }
        once.settle(Some(&threads));
        assert_eq!(once.settled_digest(), every.settled_digest());
        let mut rebuilt = State::from_entries(once.entries()).unwrap();
        assert_eq!(rebuilt.digest(), every.digest());
        // A snapshot of an unsettled state is cut from a settled copy.
        once.write(Key::Balance(9, 0), Value::Amount(77));
        once.finish_batch(None);
        let mut back = State::restore(&once.snapshot()).unwrap();
        assert_eq!(back.digest(), once.digest());
    }

    /// A state never asked for its digest keeps each shard's pending list within
    /// twice its distinct pending keys plus `PENDING_SLACK`, however many batches
    /// rewrite the same keys, and keys created and removed within one batch are not
    /// pending at all.
    #[test]
    fn pending_changes_stay_bounded_without_a_digest() {
        let mut s = State::new();
        for round in 1..=200u128 {
            for k in 0..300u64 {
                s.write(Key::Balance(k, 0), Value::Amount(round));
            }
            s.finish_batch(None);
        }
        let pending: usize = s.shards.iter().map(|sh| sh.pending.len()).sum();
        assert!(
            pending <= SHARDS * PENDING_SLACK + 2 * s.len(),
            "{pending} pending"
        );
        // Created and removed in one batch, 10,000 distinct keys: nothing pending.
        s.digest();
        for k in 1_000..11_000u64 {
            s.write(Key::Balance(k, 1), Value::Amount(5));
            s.write(Key::Balance(k, 1), Value::Amount(0));
        }
        s.finish_batch(None);
        assert!(s.is_settled());
        let mut fresh = State::from_entries(s.entries()).unwrap();
        assert_eq!(s.digest(), fresh.digest());
    }
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The digest is a function of the entries only: any sequence of writes,
        /// cut into any batches, finished with or without worker threads, ends at the digest
        /// of the final entries built from scratch.
        #[test]
        fn digest_is_a_function_of_the_entries(
            writes in proptest::collection::vec((0u64..300, 0u32..3, 0u128..4), 1..400),
            cuts in proptest::collection::vec(0usize..400, 0..6),
            parallel in proptest::prelude::any::<bool>(),
        ) {
            let threads = WorkerThreads::new(2).unwrap();
            let mut s = State::new();
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut last = std::collections::BTreeMap::new();
            for (i, (a, t, v)) in writes.iter().enumerate() {
                s.write(Key::Balance(*a, *t), Value::Amount(*v));
                last.insert(Key::Balance(*a, *t), Value::Amount(*v));
                if cuts.binary_search(&i).is_ok() {
                    s.finish_batch(parallel.then_some(&threads));
                }
            }
            s.finish_batch(parallel.then_some(&threads));
            let mut fresh = State::from_entries(last).unwrap();
            proptest::prop_assert_eq!(s.digest(), fresh.digest());
            proptest::prop_assert!(s == fresh);
        }
    }
}
