//! The EVM state digest: SHA-256 over a domain tag and the canonical entries in
//! sorted order — each account as `A ‖ address(20) ‖ balance(32, big-endian) ‖
//! nonce(8, big-endian) ‖ code hash(32)` in address order, then each storage slot
//! as `S ‖ address ‖ slot(32) ‖ value(32)` in (address, slot) order. Code is
//! covered by its hash. Deterministic and independent of insertion order, since the
//! state holds ordered maps and no defaults.
//!
//! On a parallel executor's threads (`EvmState::digest_on`) the same bytes are
//! cut into key-space chunks (accounts, then storage, each by the top byte of the
//! address): the helpers encode chunks (the 16-shard merge, the larger part of
//! the cost) a few ahead while the calling thread hashes them in order, so the
//! value is the same and the merge no longer runs on the calling thread alone.
//!
//! Not yet the ledger's Merkle tree (`merkle.rs`): one flat hash, recomputed over
//! the whole state, with no proofs or chunked snapshots. Issue 15 item 6 puts EVM
//! state under the same tree.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use revm::primitives::{Address, U256};
use ring::digest::{Context, SHA256};

use super::db::{EvmAccount, EvmState};
use crate::threads::WorkerThreads;

/// Calls `f` on the entries of `maps` in key order (the maps hold disjoint keys).
pub(super) fn merged<'a, K: Ord + 'a, V: 'a>(
    maps: impl Iterator<Item = &'a BTreeMap<K, V>>,
    f: impl FnMut(&'a K, &'a V),
) {
    merged_iters(maps.map(|m| m.iter()), f);
}

/// Calls `f` on the entries of the sorted `iters` in key order (disjoint keys).
fn merged_iters<'a, K: Ord + 'a, V: 'a, I: Iterator<Item = (&'a K, &'a V)>>(
    iters: impl Iterator<Item = I>,
    mut f: impl FnMut(&'a K, &'a V),
) {
    let mut iters: Vec<I> = iters.collect();
    let mut heads: Vec<Option<(&'a K, &'a V)>> = iters.iter_mut().map(|it| it.next()).collect();
    loop {
        let mut best: Option<(usize, &'a K, &'a V)> = None;
        for (i, head) in heads.iter().enumerate() {
            if let Some((k, v)) = *head
                && best.is_none_or(|(_, b, _)| k < b)
            {
                best = Some((i, k, v));
            }
        }
        let Some((i, k, v)) = best else {
            return;
        };
        f(k, v);
        heads[i] = iters[i].next();
    }
}

const DOMAIN: &[u8] = b"tandem-evm-state-v1\0";

impl EvmState {
    /// The digest described in the module docs.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Context::new(&SHA256);
        h.update(DOMAIN);
        merged(self.shards.iter().map(|s| &s.accounts), |address, a| {
            h.update(b"A");
            h.update(address.as_slice());
            h.update(&a.balance.to_be_bytes::<32>());
            h.update(&a.nonce.to_be_bytes());
            h.update(a.code_hash.as_slice());
        });
        merged(
            self.shards.iter().map(|s| &s.storage),
            |(address, slot), value| {
                h.update(b"S");
                h.update(address.as_slice());
                h.update(&slot.to_be_bytes::<32>());
                h.update(&value.to_be_bytes::<32>());
            },
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(h.finish().as_ref());
        out
    }

    /// The same digest as [`EvmState::digest`], computed on `threads` (module
    /// docs): chunks encoded on every thread, at most `DIGEST_WINDOW` ahead of
    /// the one the calling thread is hashing.
    pub fn digest_on(&self, threads: &WorkerThreads) -> [u8; 32] {
        if threads.count() == 1 {
            return self.digest();
        }
        let n = 2 * DIGEST_PARTS;
        let ready: Vec<Mutex<Option<Vec<u8>>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let spare: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
        let next = AtomicUsize::new(0);
        let hashed = AtomicUsize::new(0);
        let out = Mutex::new([0u8; 32]);
        // Claims the next chunk to encode, unless it is too far ahead.
        let claim = || -> Claim {
            loop {
                let c = next.load(Ordering::Acquire);
                if c >= n {
                    return Claim::Done;
                }
                if c >= hashed.load(Ordering::Acquire) + DIGEST_WINDOW {
                    return Claim::Wait;
                }
                if next
                    .compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Claim::Chunk(c);
                }
            }
        };
        let encode = |c: usize| {
            let mut buf = lock(&spare).pop().unwrap_or_default();
            buf.clear();
            self.encode_chunk(c, &mut buf);
            *lock(&ready[c]) = Some(buf);
        };
        threads.broadcast(&|id| {
            if id != 0 {
                loop {
                    match claim() {
                        Claim::Chunk(c) => encode(c),
                        Claim::Wait => std::thread::yield_now(),
                        Claim::Done => return,
                    }
                }
            }
            let mut h = Context::new(&SHA256);
            h.update(DOMAIN);
            for (i, slot) in ready.iter().enumerate() {
                loop {
                    let chunk = lock(slot).take();
                    if let Some(buf) = chunk {
                        h.update(&buf);
                        lock(&spare).push(buf);
                        break;
                    }
                    match claim() {
                        Claim::Chunk(c) => encode(c),
                        // Chunk `i` is being encoded on another thread.
                        Claim::Wait | Claim::Done => std::thread::yield_now(),
                    }
                }
                hashed.store(i + 1, Ordering::Release);
            }
            lock(&out).copy_from_slice(h.finish().as_ref());
        });
        out.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends the digest's bytes of chunk `c` (`digest_on`): the accounts whose
    /// address starts with byte `c` for `c < DIGEST_PARTS`, else the slots of the
    /// addresses starting with byte `c - DIGEST_PARTS`.
    fn encode_chunk(&self, c: usize, buf: &mut Vec<u8>) {
        let top = c % DIGEST_PARTS;
        let lo = starting_with(top);
        let hi = (top + 1 < DIGEST_PARTS).then(|| starting_with(top + 1));
        if c < DIGEST_PARTS {
            let range = (
                Bound::Included(lo),
                hi.map_or(Bound::Unbounded, Bound::Excluded),
            );
            merged_iters(
                self.shards.iter().map(|s| s.accounts.range(range)),
                |address, a| encode_account(buf, address, a),
            );
        } else {
            let range = (
                Bound::Included((lo, U256::ZERO)),
                hi.map_or(Bound::Unbounded, |hi| Bound::Excluded((hi, U256::ZERO))),
            );
            merged_iters(
                self.shards.iter().map(|s| s.storage.range(range)),
                |(address, slot), value| {
                    buf.push(b'S');
                    buf.extend_from_slice(address.as_slice());
                    buf.extend_from_slice(&slot.to_be_bytes::<32>());
                    buf.extend_from_slice(&value.to_be_bytes::<32>());
                },
            );
        }
    }
}

/// Key-space chunks per part (accounts, storage) of `EvmState::digest_on`: one per
/// top byte of the address.
const DIGEST_PARTS: usize = 256;

/// Encoded chunks `EvmState::digest_on` lets wait for the hash at most (bounds
/// its memory to a few chunks).
const DIGEST_WINDOW: usize = 8;

/// What `EvmState::digest_on`'s threads do next.
enum Claim {
    Chunk(usize),
    Wait,
    Done,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn encode_account(buf: &mut Vec<u8>, address: &Address, a: &EvmAccount) {
    buf.push(b'A');
    buf.extend_from_slice(address.as_slice());
    buf.extend_from_slice(&a.balance.to_be_bytes::<32>());
    buf.extend_from_slice(&a.nonce.to_be_bytes());
    buf.extend_from_slice(a.code_hash.as_slice());
}

/// The lowest address whose top byte is `top`.
fn starting_with(top: usize) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = u8::try_from(top).expect("a byte");
    Address::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use revm::primitives::{Address, U256};

    #[test]
    fn evm_digest_is_independent_of_insertion_order() {
        let entries: Vec<(Address, U256, U256)> = (0..50u8)
            .map(|i| {
                (
                    Address::with_last_byte(i % 7),
                    U256::from(i),
                    U256::from(i as u64 + 1),
                )
            })
            .collect();
        let mut a = EvmState::new();
        let mut b = EvmState::new();
        for (addr, slot, value) in &entries {
            a.set_storage(*addr, *slot, *value);
            a.fund(*addr, U256::from(1));
        }
        for (addr, slot, value) in entries.iter().rev() {
            b.set_storage(*addr, *slot, *value);
            b.fund(*addr, U256::from(1));
        }
        assert_eq!(a.digest(), b.digest());
        b.fund(Address::with_last_byte(3), U256::from(1));
        assert_ne!(a.digest(), b.digest());
        assert_ne!(EvmState::new().digest(), a.digest());
    }

    #[test]
    fn evm_digest_merges_the_shards_into_one_sorted_order() {
        let mut state = EvmState::new();
        let mut accounts = Vec::new();
        let mut slots = Vec::new();
        for i in 0..200u64 {
            let address = Address::left_padding_from(&(i * 7919 % 1000).to_be_bytes());
            state.fund(address, U256::from(i + 1));
            accounts.push((address, U256::from(i + 1)));
            for j in 0..3u64 {
                let slot = U256::from(j * 1_000_003 + i);
                state.set_storage(address, slot, U256::from(j + 1));
                slots.push((address, slot, U256::from(j + 1)));
            }
        }
        // Spread over several shards, so the merge matters.
        assert!(
            state
                .shards
                .iter()
                .filter(|s| !s.storage.is_empty())
                .count()
                > 1
        );
        accounts.sort();
        slots.sort();
        let mut h = Context::new(&SHA256);
        h.update(DOMAIN);
        for (address, balance) in &accounts {
            h.update(b"A");
            h.update(address.as_slice());
            h.update(&balance.to_be_bytes::<32>());
            h.update(&0u64.to_be_bytes());
            h.update(revm::primitives::KECCAK_EMPTY.as_slice());
        }
        for (address, slot, value) in &slots {
            h.update(b"S");
            h.update(address.as_slice());
            h.update(&slot.to_be_bytes::<32>());
            h.update(&value.to_be_bytes::<32>());
        }
        assert_eq!(state.digest().as_slice(), h.finish().as_ref());
        assert_eq!(state.len(), (200, 600));
    }

    #[test]
    fn evm_digest_on_threads_equals_the_serial_digest() {
        let mut state = EvmState::new();
        for threads in [1, 2, 3] {
            let pool = WorkerThreads::new(threads).unwrap();
            assert_eq!(state.digest_on(&pool), state.digest());
        }
        // Addresses at both ends of the key space and many in between, with
        // enough slots to fill more chunks than the window holds.
        for i in 0..3000u64 {
            let mut bytes = [0u8; 20];
            bytes[..8].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes());
            bytes[19] = (i % 251) as u8;
            let address = Address::from(bytes);
            state.fund(address, U256::from(i + 1));
            for j in 0..(i % 5) {
                state.set_storage(address, U256::from(j * 977 + i), U256::from(j + 1));
            }
        }
        state.fund(Address::ZERO, U256::from(7));
        state.set_storage(Address::ZERO, U256::ZERO, U256::from(1));
        state.fund(Address::repeat_byte(0xff), U256::from(9));
        state.set_storage(Address::repeat_byte(0xff), U256::MAX, U256::from(2));
        for threads in [1, 2, 3] {
            let pool = WorkerThreads::new(threads).unwrap();
            for _ in 0..3 {
                assert_eq!(state.digest_on(&pool), state.digest());
            }
        }
    }
}
