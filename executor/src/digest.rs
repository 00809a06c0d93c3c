//! The incremental state digest.
//!
//! `digest = Σ SHA-256(key ‖ value) mod 2^256` over every entry of the state (each
//! hash read as a big-endian 256-bit integer; `key ‖ value` is the canonical
//! encoding of `encoding.rs`; entries holding a default value — zero balance, zero
//! nonce, empty position — are absent and contribute nothing).
//!
//! Why a sum of hashes (a multiset hash, "AdHash"): it depends only on the set of
//! entries, not on the order they were written or on how the executor scheduled a
//! batch, so every executor and every replica gets the same digest; and it updates
//! per write in O(1): subtract the entry's old leaf, add the new one. The state
//! caches each entry's leaf, so a batch costs one SHA-256 per distinct key it
//! changed, and those hashes are independent (executors compute them in parallel).
//! Caveat: additive hashing mod 2^256 resists accidental collisions (replicas that
//! diverge) but a generalised-birthday attacker who chooses many entries could
//! forge a collision in far less than 2^128 work; a production chain would use a
//! lattice hash (LtHash, 2 KiB) or a Merkle tree, which also give inclusion proofs.

use ring::digest::{SHA256, digest};

use crate::encoding::{Buf, MAX_KEY_LEN, MAX_VALUE_LEN, encode_key, encode_value};
use crate::state::{Key, Value};

/// A 256-bit integer as four little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limbs([u64; 4]);

impl Limbs {
    pub(crate) const ZERO: Limbs = Limbs([0; 4]);

    fn from_be_bytes(bytes: &[u8; 32]) -> Limbs {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let start = 32 - 8 * (i + 1);
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[start..start + 8]);
            *limb = u64::from_be_bytes(word);
        }
        Limbs(limbs)
    }

    pub(crate) fn to_be_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, limb) in self.0.iter().enumerate() {
            let start = 32 - 8 * (i + 1);
            out[start..start + 8].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    /// `self + other mod 2^256`.
    pub(crate) fn add(&mut self, other: Limbs) {
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *a = s2;
            carry = c1 || c2;
        }
    }

    /// `self - other mod 2^256`.
    pub(crate) fn sub(&mut self, other: Limbs) {
        let mut borrow = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            let (d1, b1) = a.overflowing_sub(b);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *a = d2;
            borrow = b1 || b2;
        }
    }
}

/// The digest contribution of one entry: SHA-256 of its canonical encoding.
pub(crate) fn leaf(key: &Key, value: &Value) -> Limbs {
    let mut buf = Buf::<{ MAX_KEY_LEN + MAX_VALUE_LEN }>::new();
    encode_key(key, &mut buf);
    encode_value(value, &mut buf);
    let hash = digest(&SHA256, buf.as_slice());
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(hash.as_ref());
    Limbs::from_be_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_sub_wrap_mod_2_256() {
        let max = Limbs([u64::MAX; 4]);
        let mut x = max;
        x.add(Limbs([1, 0, 0, 0]));
        assert_eq!(x, Limbs::ZERO);
        x.sub(Limbs([1, 0, 0, 0]));
        assert_eq!(x, max);
        let mut y = Limbs([5, 6, 7, 8]);
        let z = Limbs([u64::MAX, 3, u64::MAX, 1]);
        y.add(z);
        y.sub(z);
        assert_eq!(y, Limbs([5, 6, 7, 8]));
    }

    #[test]
    fn byte_order_round_trips() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(Limbs::from_be_bytes(&bytes).to_be_bytes(), bytes);
        assert_eq!(Limbs::from_be_bytes(&bytes).0[0], 0x18191a1b1c1d1e1f);
    }

    /// Pinned so that a change to the encoding or the digest is a visible decision.
    #[test]
    fn leaf_of_a_balance_is_sha256_of_its_encoding() {
        let l = leaf(&Key::Balance(1, 0), &Value::Amount(5));
        let mut enc = vec![2u8];
        enc.extend_from_slice(&1u64.to_be_bytes());
        enc.extend_from_slice(&0u32.to_be_bytes());
        enc.push(2);
        enc.extend_from_slice(&5u128.to_be_bytes());
        assert_eq!(l.to_be_bytes().as_slice(), digest(&SHA256, &enc).as_ref());
    }
}
