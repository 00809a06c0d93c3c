//! Who is who: a node's Ed25519 [`Identity`] (its key pair, which is all there is to its
//! identity) and the [`Membership`] of the cluster (every member's id, public key and,
//! for replicas, address), as read from the cluster file by the caller.
//!
//! Invariant: a public key maps to exactly one [`NodeId`] and a `NodeId` to exactly one
//! key, so looking an authenticated key up in the membership names the peer; a client's
//! key can never be taken for a replica, whatever the peer claims or wherever it binds.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::NodeId;

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 public key, raw 32 bytes.
pub type PublicKey = [u8; PUBLIC_KEY_LEN];

/// Key material that does not make an Ed25519 identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not an Ed25519 PKCS#8 (v1 or v2) document.
    #[error("not an Ed25519 PKCS#8 private key")]
    InvalidPkcs8,
    /// The system random generator failed while generating a key.
    #[error("system random generator failed")]
    Rng,
}

/// A node's Ed25519 key pair. Its public key is the node's identity on the network; its
/// TLS certificate is self-signed with it.
pub struct Identity {
    pkcs8: Vec<u8>,
    key_pair: Ed25519KeyPair,
}

impl Identity {
    /// A fresh random key pair.
    pub fn generate() -> Result<Self, IdentityError> {
        let document =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| IdentityError::Rng)?;
        Self::from_pkcs8(document.as_ref())
    }

    /// Loads a key pair from PKCS#8 DER (v2 as written by [`Identity::pkcs8_der`], or v1
    /// as written by e.g. `openssl genpkey -algorithm ed25519`).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, IdentityError> {
        let key_pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| IdentityError::InvalidPkcs8)?;
        Ok(Self {
            pkcs8: der.to_vec(),
            key_pair,
        })
    }

    /// The PKCS#8 DER bytes, for writing a key file. Secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> PublicKey {
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(self.key_pair.public_key().as_ref());
        key
    }

    /// Signs `message` (Ed25519, deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(self.key_pair.sign(message).as_ref());
        signature
    }

    /// A 32-byte secret derived from this key for `purpose` (HMAC-SHA256 keyed with the
    /// PKCS#8 document, which holds the private seed). Used for the QUIC stateless-reset
    /// key and connection-id key, which must survive a restart.
    pub(crate) fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.pkcs8);
        let tag = ring::hmac::sign(&key, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &KeyHex(&self.public_key()))
            .finish_non_exhaustive()
    }
}

/// Why a public key was refused (issue 10 item 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeakKey {
    /// The 32 bytes decode to no point of the curve.
    #[error("is not a point on the Ed25519 curve")]
    NotOnCurve,
    /// A second spelling of a point (y ≥ p, or a sign bit on x = 0).
    #[error("is not the canonical encoding of its curve point")]
    NotCanonical,
    /// The identity or another point of order 1, 2, 4 or 8.
    #[error("is a point of small order (a weak key: signatures without a private key verify)")]
    SmallOrder,
    /// A point with a small-order component.
    #[error("has a small-order component (not in the prime-order subgroup)")]
    Torsion,
}

/// Accepts `key` only if it is the canonical encoding of a curve point in the
/// prime-order subgroup other than the identity. ring verifies cofactorless
/// (`[S]B = R + [k]A`): under a small-order `A`, `[k]A` takes at most 8 values, so a
/// signature made without any private key verifies with probability ≥ 1/8. Key
/// generation never produces such keys (`A = aB`); they can only come from a file.
/// curve25519-dalek decompresses (ring has no point decompression); ring stays the
/// verifier. The executor checks account keys the same way (`executor/src/public_key.rs`;
/// the base crates do not depend on each other).
pub fn check_public_key(key: &PublicKey) -> Result<(), WeakKey> {
    let point = curve25519_dalek::edwards::CompressedEdwardsY(*key)
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

/// Checks an Ed25519 `signature` of `message` by `public_key`; a weak or invalid key
/// ([`check_public_key`]) validates nothing. For handshakes and other rare checks:
/// the key check costs a point decompression and a scalar multiplication, so hot
/// paths check keys once when they enter (the cluster file) and verify with ring.
pub fn verify_signature(public_key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    check_public_key(public_key).is_ok()
        && UnparsedPublicKey::new(&ED25519, public_key)
            .verify(message, signature)
            .is_ok()
}

/// Lower-case hex of a key, for logs and error messages.
pub(crate) struct KeyHex<'a>(pub &'a [u8]);

impl fmt::Display for KeyHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One entry of the cluster file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// The member's id.
    pub id: NodeId,
    /// Where the member listens: replicas have one, clients none (they only dial).
    pub addr: Option<SocketAddr>,
    /// The member's Ed25519 public key: its identity.
    pub public_key: PublicKey,
}

/// A cluster file that does not describe a valid membership.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// Two entries with one id.
    #[error("member {0} is listed twice")]
    DuplicateId(NodeId),
    /// Two members share a public key (a key must name exactly one node).
    #[error("members {0} and {1} have the same public key")]
    DuplicateKey(NodeId, NodeId),
    /// A replica without an address.
    #[error("replica {0} has no address")]
    ReplicaWithoutAddress(NodeId),
    /// A client with an address (clients only dial; nobody dials them).
    #[error("client {0} has an address; clients only dial replicas")]
    ClientWithAddress(NodeId),
    /// Two replicas at one address.
    #[error("replicas {0} and {1} share the address {2}")]
    DuplicateAddress(NodeId, NodeId, SocketAddr),
}

/// Every member of the cluster: replicas and clients, with their keys.
#[derive(Clone, Debug)]
pub struct Membership {
    members: BTreeMap<NodeId, Member>,
    by_key: HashMap<PublicKey, NodeId>,
}

impl Membership {
    /// Checks and indexes the members: ids and keys unique, replicas with distinct
    /// addresses, clients without.
    pub fn new(members: impl IntoIterator<Item = Member>) -> Result<Self, MembershipError> {
        let mut by_id = BTreeMap::new();
        let mut by_key = HashMap::new();
        let mut by_addr: HashMap<SocketAddr, NodeId> = HashMap::new();
        for member in members {
            match (member.id, member.addr) {
                (NodeId::Replica(_), None) => {
                    return Err(MembershipError::ReplicaWithoutAddress(member.id));
                }
                (NodeId::Client(_), Some(_)) => {
                    return Err(MembershipError::ClientWithAddress(member.id));
                }
                (NodeId::Replica(_), Some(addr)) => {
                    if let Some(&other) = by_addr.get(&addr) {
                        return Err(MembershipError::DuplicateAddress(other, member.id, addr));
                    }
                    by_addr.insert(addr, member.id);
                }
                (NodeId::Client(_), None) => {}
            }
            if let Some(&other) = by_key.get(&member.public_key) {
                return Err(MembershipError::DuplicateKey(other, member.id));
            }
            if by_id.contains_key(&member.id) {
                return Err(MembershipError::DuplicateId(member.id));
            }
            by_key.insert(member.public_key, member.id);
            by_id.insert(member.id, member);
        }
        Ok(Self {
            members: by_id,
            by_key,
        })
    }

    /// The member with this id.
    pub fn get(&self, id: NodeId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// The id of the member holding this public key: how an authenticated peer is named.
    pub fn id_of(&self, public_key: &PublicKey) -> Option<NodeId> {
        self.by_key.get(public_key).copied()
    }

    /// All members, replicas first, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// The replicas' ids, in order.
    pub fn replica_ids(&self) -> Vec<NodeId> {
        self.members
            .keys()
            .copied()
            .filter(|id| id.is_replica())
            .collect()
    }

    /// The clients' ids, in order.
    pub fn client_ids(&self) -> Vec<NodeId> {
        self.members
            .keys()
            .copied()
            .filter(|id| id.is_client())
            .collect()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: NodeId, addr: Option<&str>, key: u8) -> Member {
        Member {
            id,
            addr: addr.map(|a| a.parse().expect("addr")),
            public_key: [key; 32],
        }
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key_and_signs() {
        let identity = Identity::generate().expect("generate");
        let again = Identity::from_pkcs8(identity.pkcs8_der()).expect("reload");
        assert_eq!(identity.public_key(), again.public_key());
        let signature = again.sign(b"hello");
        assert!(verify_signature(
            &identity.public_key(),
            b"hello",
            &signature
        ));
        assert!(!verify_signature(
            &identity.public_key(),
            b"hellO",
            &signature
        ));
        assert!(Identity::from_pkcs8(b"not a key").is_err());
        assert_ne!(
            identity.derive_secret("a"),
            identity.derive_secret("b"),
            "purposes must give different secrets"
        );
        assert_eq!(identity.derive_secret("a"), again.derive_secret("a"));
        assert_eq!(check_public_key(&identity.public_key()), Ok(()));
    }

    /// Issue 10 item 11: the identity, the order-2 point, a non-point and a
    /// non-canonical spelling are refused, and a signature under the identity — which
    /// ring alone accepts for `R = identity, S = 0` — does not verify.
    #[test]
    fn weak_and_invalid_keys_are_refused_and_validate_nothing() {
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        let mut order_two = [0xffu8; 32];
        order_two[0] = 0xec;
        order_two[31] = 0x7f;
        assert_eq!(check_public_key(&identity_point), Err(WeakKey::SmallOrder));
        assert_eq!(check_public_key(&order_two), Err(WeakKey::SmallOrder));
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(check_public_key(&not_a_point), Err(WeakKey::NotOnCurve));
        // y = 1 + p: the identity spelled non-canonically.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert!(check_public_key(&non_canonical).is_err());
        // R = identity, S = 0: [0]B = identity + [k]identity holds for every message.
        let mut forged = [0u8; 64];
        forged[0] = 1;
        assert!(
            UnparsedPublicKey::new(&ED25519, &identity_point)
                .verify(b"any message", &forged)
                .is_ok(),
            "ring alone accepts it"
        );
        assert!(!verify_signature(&identity_point, b"any message", &forged));
    }

    #[test]
    fn membership_maps_keys_to_ids_and_checks_entries() {
        let ok = Membership::new([
            member(NodeId::Replica(0), Some("127.0.0.1:1"), 1),
            member(NodeId::Client(0), None, 2),
        ])
        .expect("valid");
        assert_eq!(ok.id_of(&[2; 32]), Some(NodeId::Client(0)));
        assert_eq!(ok.id_of(&[3; 32]), None);
        assert_eq!(ok.replica_ids(), vec![NodeId::Replica(0)]);
        assert_eq!(ok.client_ids(), vec![NodeId::Client(0)]);

        let r0 = NodeId::Replica(0);
        let c0 = NodeId::Client(0);
        let cases = [
            (
                vec![member(r0, Some("127.0.0.1:1"), 1), member(c0, None, 1)],
                MembershipError::DuplicateKey(r0, c0),
            ),
            (
                vec![member(r0, None, 1)],
                MembershipError::ReplicaWithoutAddress(r0),
            ),
            (
                vec![member(c0, Some("127.0.0.1:1"), 1)],
                MembershipError::ClientWithAddress(c0),
            ),
            (
                vec![member(c0, None, 1), member(c0, None, 2)],
                MembershipError::DuplicateId(c0),
            ),
        ];
        for (members, expected) in cases {
            assert_eq!(Membership::new(members).err(), Some(expected));
        }
    }
}
