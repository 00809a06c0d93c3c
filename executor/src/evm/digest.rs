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

use ring::digest::{Context, SHA256};

use super::db::EvmState;

const DOMAIN: &[u8] = b"tandem-evm-state-v1\0";

impl EvmState {
    /// The digest described in the module docs.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Context::new(&SHA256);
        h.update(DOMAIN);
        for (address, a) in &self.accounts {
            h.update(b"A");
            h.update(address.as_slice());
            h.update(&a.balance.to_be_bytes::<32>());
            h.update(&a.nonce.to_be_bytes());
            h.update(a.code_hash.as_slice());
        }
        for ((address, slot), value) in &self.storage {
            h.update(b"S");
            h.update(address.as_slice());
            h.update(&slot.to_be_bytes::<32>());
            h.update(&value.to_be_bytes::<32>());
        }
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
            a.storage.insert((*addr, *slot), *value);
            a.fund(*addr, U256::from(1));
        }
        for (addr, slot, value) in entries.iter().rev() {
            b.storage.insert((*addr, *slot), *value);
            b.fund(*addr, U256::from(1));
        }
        assert_eq!(a.digest(), b.digest());
        b.fund(Address::with_last_byte(3), U256::from(1));
        assert_ne!(a.digest(), b.digest());
        assert_ne!(EvmState::new().digest(), a.digest());
    }
}
