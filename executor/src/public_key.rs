//! The one check every Ed25519 account public key passes before it enters the
//! ledger (genesis files, workload genesis, snapshots from peers): the 32 bytes must
//! be the canonical encoding of a point on the curve that has no small-order
//! component.
//!
//! Why: ring verifies signatures cofactorless (`[S]B = R + [k]A`), and under a key
//! `A` of small order (the identity, the point of order 2, the four of order 4 and
//! eight) `[k]A` takes at most 8 values, so a "signature" made without any private
//! key verifies with probability ≥ 1/8 — such an account would be spendable by
//! anyone. A key with a small-order component (`A + T`, T ≠ 0 of order 2, 4 or 8) is
//! never produced by key generation (A = aB lies in the prime-order subgroup) and
//! makes verification depend on the cofactor convention, so it is refused too, as
//! are non-canonical encodings (y ≥ p, or a sign bit on x = 0) that let one key have
//! two spellings. Since no weak key can be stored, no signature is ever verified
//! under one.
//!
//! ring has no point decompression; curve25519-dalek provides it (it does not verify
//! signatures here: ring stays the verifier).

use curve25519_dalek::edwards::CompressedEdwardsY;

/// Why a public key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeakKey {
    #[error("not a point on the Ed25519 curve")]
    NotOnCurve,
    #[error("not the canonical encoding of its curve point")]
    NotCanonical,
    #[error("a point of small order (weak key: signatures without a private key verify)")]
    SmallOrder,
    #[error("a point with a small-order component (not in the prime-order subgroup)")]
    Torsion,
}

impl WeakKey {
    /// The message as a static string (state validation reports `&'static str`).
    pub fn as_str(&self) -> &'static str {
        match self {
            WeakKey::NotOnCurve => "public key is not a point on the Ed25519 curve",
            WeakKey::NotCanonical => "public key is not the canonical encoding of its point",
            WeakKey::SmallOrder => "public key is a point of small order (weak key)",
            WeakKey::Torsion => "public key has a small-order component",
        }
    }
}

/// Accepts `key` only if it is the canonical encoding of a curve point in the
/// prime-order subgroup other than the identity.
pub fn check_public_key(key: &[u8; 32]) -> Result<(), WeakKey> {
    let point = CompressedEdwardsY(*key)
        .decompress()
        .ok_or(WeakKey::NotOnCurve)?;
    if point.compress().to_bytes() != *key {
        return Err(WeakKey::NotCanonical);
    }
    if point.is_small_order() {
        return Err(WeakKey::SmallOrder);
    }
    if !point.is_torsion_free() {
        return Err(WeakKey::Torsion);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{account_keypair, account_public_key};
    use crate::tx::{Op, Signature, Transaction};
    use curve25519_dalek::constants::EIGHT_TORSION;

    fn hex32(s: &str) -> [u8; 32] {
        crate::tx::from_hex::<32>(s).unwrap()
    }

    /// The eight small-order points (canonical encodings), and non-canonical
    /// encodings of some of them (y + p, and x = 0 with the sign bit set).
    #[test]
    fn every_small_order_encoding_is_refused() {
        let canonical: Vec<[u8; 32]> = EIGHT_TORSION
            .iter()
            .map(|p| p.compress().to_bytes())
            .collect();
        // The identity (y = 1) and the point of order 2 (y = -1) are among them.
        assert!(canonical.contains(&hex32(
            "0100000000000000000000000000000000000000000000000000000000000000"
        )));
        assert!(canonical.contains(&hex32(
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
        )));
        for key in &canonical {
            assert_eq!(
                check_public_key(key),
                Err(WeakKey::SmallOrder),
                "{key:02x?}"
            );
        }
        for key in [
            // y = 1 + p (the identity, non-canonical)
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            // y = 1 with the sign bit set (x = 0 cannot be negative)
            "0100000000000000000000000000000000000000000000000000000000000080",
            // y = p - 1 + ... the order-2 point with the sign bit set
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ] {
            assert!(check_public_key(&hex32(key)).is_err(), "{key}");
        }
    }

    #[test]
    fn a_non_point_and_a_mixed_order_point_are_refused() {
        // y = 2 is not the y-coordinate of any curve point.
        let mut y2 = [0u8; 32];
        y2[0] = 2;
        assert_eq!(check_public_key(&y2), Err(WeakKey::NotOnCurve));
        let good = account_public_key(1, 1).unwrap();
        let point = CompressedEdwardsY(good).decompress().unwrap();
        let mixed = (point + EIGHT_TORSION[1]).compress().to_bytes();
        assert_eq!(check_public_key(&mixed), Err(WeakKey::Torsion));
    }

    #[test]
    fn generated_keys_are_accepted() {
        for account in 0..20 {
            assert_eq!(
                check_public_key(&account_public_key(9, account).unwrap()),
                Ok(())
            );
        }
        let _ = account_keypair(9, 0).unwrap();
    }

    /// With the identity as the key, ring accepts a signature made without any
    /// private key (R = identity, S = 0): the reason the check exists.
    #[test]
    fn the_identity_key_would_accept_a_forged_signature() {
        let identity = hex32("0100000000000000000000000000000000000000000000000000000000000000");
        let mut tx = Transaction::new(
            5,
            1,
            Op::Transfer {
                to: 6,
                token: 0,
                amount: 1,
            },
        );
        let mut forged = [0u8; 64];
        forged[0] = 1; // R = identity, S = 0
        tx.signature = Some(Signature(forged));
        assert!(
            tx.verify_under(&identity),
            "ring accepts it: the key check must refuse"
        );
        assert!(check_public_key(&identity).is_err());
        assert!(!tx.verify_signature(&identity));
    }
}
