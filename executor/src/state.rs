//! The ledger: a key-value map of balances, nonces, public keys, AMM pools, LP
//! shares, lending markets and positions, with its incremental digest.
//!
//! Invariants:
//! - every stored value has the kind its key calls for (`Key::accepts`), and no
//!   stored value is a default (zero balance, zero nonce, empty position): a write
//!   of a default removes the entry, so the digest depends only on the meaning of
//!   the state, never on whether a zero was written or never set;
//! - outside a batch, `digest` equals the sum of the cached leaves of all entries
//!   (`digest.rs`). During a batch, executors `write` entries (each first write of
//!   a key records its old leaf) and `finish_batch` recomputes one leaf per
//!   changed key and folds the differences into the digest.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::amm::Pool;
use crate::digest::{Limbs, leaf};
use crate::error::Error;
use crate::lending::{BPS, Market, Position};
use crate::pool::WorkerPool;

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

#[derive(Clone, Debug)]
struct Entry {
    value: Value,
    /// The leaf of `value` as of the last `finish_batch` (stale while `dirty`).
    leaf: Limbs,
    /// Written since the last `finish_batch` (its pre-batch leaf is in `dirty`).
    dirty: bool,
}

/// The ledger state. Cloning copies the whole map (used by benchmarks and tests).
#[derive(Clone, Debug, Default)]
pub struct State {
    entries: FxHashMap<Key, Entry>,
    digest: Limbs,
    /// Keys written in the current batch with the leaf they had before it
    /// (`Limbs::ZERO` for keys that were absent).
    dirty: Vec<(Key, Limbs)>,
    /// Scratch for `finish_batch`: the new leaf of each dirty key, or `None` to delete.
    new_leaves: Vec<Option<Limbs>>,
    /// Number of `PublicKey` entries (signature checks are skipped when zero).
    public_keys: usize,
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
            && self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .all(|(k, e)| other.entries.get(k).map(|o| o.value) == Some(e.value))
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

    /// The 32-byte state digest (see `digest.rs`): O(1), maintained incrementally.
    pub fn digest(&self) -> [u8; 32] {
        self.digest.to_be_bytes()
    }

    /// Number of stored (non-default) entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value at `key`, `None` if absent (meaning the default).
    pub fn get(&self, key: &Key) -> Option<Value> {
        self.entries.get(key).map(|e| e.value)
    }

    /// All entries in key order.
    pub fn entries(&self) -> Vec<(Key, Value)> {
        let mut all: Vec<(Key, Value)> = self.entries.iter().map(|(k, e)| (*k, e.value)).collect();
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
        Ok(())
    }

    /// Writes `value` at `key` inside a batch. The digest is brought up to date by
    /// `finish_batch`. Writing the current value again is free.
    pub(crate) fn write(&mut self, key: Key, value: Value) {
        use std::collections::hash_map::Entry as MapEntry;
        match self.entries.entry(key) {
            MapEntry::Occupied(mut slot) => {
                let entry = slot.get_mut();
                if entry.value == value {
                    return;
                }
                if !entry.dirty {
                    entry.dirty = true;
                    self.dirty.push((key, entry.leaf));
                }
                entry.value = value;
            }
            MapEntry::Vacant(slot) => {
                if value.is_default() {
                    return;
                }
                slot.insert(Entry {
                    value,
                    leaf: Limbs::ZERO,
                    dirty: true,
                });
                self.dirty.push((key, Limbs::ZERO));
            }
        }
    }

    /// Ends a batch: one SHA-256 per changed key (spread over `pool`'s threads when
    /// given), then the digest is updated and default values are removed.
    pub(crate) fn finish_batch(&mut self, pool: Option<&WorkerPool>) {
        if self.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut new_leaves = std::mem::take(&mut self.new_leaves);
        new_leaves.clear();
        new_leaves.resize(dirty.len(), None);
        let entries = &self.entries;
        let compute = |offset: usize, out: &mut [Option<Limbs>]| {
            for (slot, (key, _)) in out.iter_mut().zip(&dirty[offset..]) {
                *slot = entries
                    .get(key)
                    .and_then(|e| (!e.value.is_default()).then(|| leaf(key, &e.value)));
            }
        };
        match pool {
            Some(pool) if pool.threads() > 1 && dirty.len() >= 256 => {
                pool.parallel_chunks(&mut new_leaves, 256, compute)
            }
            _ => compute(0, &mut new_leaves),
        }
        for ((key, old), new) in dirty.iter().zip(&new_leaves) {
            self.digest.sub(*old);
            match new {
                Some(l) => {
                    self.digest.add(*l);
                    if let Some(e) = self.entries.get_mut(key) {
                        e.leaf = *l;
                        e.dirty = false;
                    }
                }
                None => {
                    if let Some(e) = self.entries.remove(key)
                        && matches!(e.value, Value::PublicKey(_))
                    {
                        self.public_keys -= 1;
                    }
                }
            }
            if *old == Limbs::ZERO && new.is_some() && matches!(key, Key::PublicKey(_)) {
                self.public_keys += 1;
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
        self.new_leaves = new_leaves;
    }

    /// Inserts an already validated entry with its leaf (snapshot restore).
    pub(crate) fn insert_verified(&mut self, key: Key, value: Value) {
        let l = leaf(&key, &value);
        self.digest.add(l);
        if matches!(key, Key::PublicKey(_)) {
            self.public_keys += 1;
        }
        self.entries.insert(
            key,
            Entry {
                value,
                leaf: l,
                dirty: false,
            },
        );
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
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
        let expected = State::from_entries([(Key::Balance(2, 0), Value::Amount(100))]).unwrap();
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
        s.set(Key::PublicKey(1), Value::PublicKey([1; 32])).unwrap();
        s.set(Key::PublicKey(1), Value::PublicKey([2; 32])).unwrap();
        assert!(s.has_public_keys());
        assert_eq!(s.public_keys, 1);
    }
}
