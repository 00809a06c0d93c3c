//! The EVM state digest: SHA-256 over a domain tag and the canonical entries in
//! sorted order — each account as `A ‖ address(20) ‖ balance(32, big-endian) ‖
//! nonce(8, big-endian) ‖ code hash(32)` in address order, then each storage slot
//! as `S ‖ address ‖ slot(32) ‖ value(32)` in (address, slot) order. Code is
//! covered by its hash. Deterministic and independent of insertion order, since the
//! state holds ordered maps and no defaults.
//!
//! Not yet the ledger's Merkle tree (`merkle.rs`): one flat hash, recomputed over
//! the whole state, with no proofs or chunked snapshots. Issue 15 item 6 puts EVM
//! state under the same tree.

use std::collections::BTreeMap;

use ring::digest::{Context, SHA256};

use super::db::EvmState;

/// Calls `f` on the entries of `maps` in key order (the maps hold disjoint keys).
pub(super) fn merged<'a, K: Ord + 'a, V: 'a>(
    maps: impl Iterator<Item = &'a BTreeMap<K, V>>,
    mut f: impl FnMut(&'a K, &'a V),
) {
    let mut iters: Vec<_> = maps.map(|m| m.iter()).collect();
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
}
