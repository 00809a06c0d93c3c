//! Ed25519 signatures (ring) for the messages that are forwarded as proof: checkpoints,
//! view changes and new views, votes and time-outs that form certificates (and every
//! message in signed-all mode). [`Signed`] is a body with its signer and signature;
//! [`SignedBody`] gives each kind of body its domain tag.
//!
//! A replica's [`Keyring`] holds its own signing key and every replica's public key.
//! Signatures cover a domain tag and the bincode encoding of the signed body, so a
//! signature for one kind of message can never be replayed as another kind. Verified
//! signatures are remembered in a bounded FIFO cache, because the same checkpoint
//! signature reaches a replica many times (in certificates, view changes, new views).

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::client_auth::{ClientMacVerifier, MacKey};
use crate::request::Request;
use crate::types::{ClientId, Digest, ReplicaId};

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "crate::byte_arrays")] pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sig:{:02x}{:02x}{:02x}{:02x}",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// An Ed25519 key pair.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<Ed25519KeyPair>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({:02x?})", &self.public_key()[..4])
    }
}

/// A key could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid Ed25519 key: {0}")]
pub struct KeyError(String);

impl SigningKey {
    /// A key pair from a 32-byte seed (deterministic; used by the simulator and tests).
    pub fn from_seed(seed: &[u8; 32]) -> SigningKey {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32-byte seed is valid");
        SigningKey {
            pair: Arc::new(pair),
        }
    }

    /// A key pair from a PKCS#8 v2 document (as written by `tandem keygen`).
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| KeyError(e.to_string()))?;
        Ok(SigningKey {
            pair: Arc::new(pair),
        })
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let sig = self.pair.sign(message);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        Signature(out)
    }
}

/// Verifies `sig` on `message` under the 32-byte Ed25519 public key `public`.
pub fn verify_signature(public: &[u8; 32], message: &[u8], sig: &Signature) -> bool {
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, &sig.0)
        .is_ok()
}

/// The bytes a signature covers: a domain tag, then the bincode encoding of `body`.
pub fn signing_bytes<T: Serialize + ?Sized>(domain: &[u8], body: &T) -> Vec<u8> {
    let mut out = domain.to_vec();
    let encoded = bincode::serde::encode_to_vec(body, bincode::config::standard())
        .expect("encoding a protocol message into a Vec cannot fail");
    out.extend_from_slice(&encoded);
    out
}

/// The exact size of `value` in bincode's standard encoding, in bytes, computed
/// without allocating (what a driver puts on the wire, before framing; both
/// protocols charge answers to their resend budgets by it).
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(value, &mut size, bincode::config::standard()) {
        Ok(()) => size.bytes_written,
        Err(_) => usize::MAX,
    }
}

/// A body signed by a replica, forwardable as proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    /// What was signed.
    pub body: T,
    /// Who signed it.
    pub signer: ReplicaId,
    /// Ed25519 signature over the domain tag and `body`.
    pub signature: Signature,
}

/// Domain tags for signed bodies.
pub trait SignedBody: Serialize {
    /// The domain separation tag.
    const DOMAIN: &'static [u8];

    /// The bytes the signature covers.
    fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(Self::DOMAIN, self)
    }
}

const VERIFIED_CACHE_CAPACITY: usize = 4096;

/// A replica's own signing key, the public keys of all replicas, and the check of its
/// own MAC in client requests (`client_auth.rs`, derived from the signing key).
#[derive(Debug, Clone)]
pub struct Keyring {
    me: ReplicaId,
    signer: SigningKey,
    replicas: Vec<[u8; 32]>,
    verified: BTreeSet<Digest>,
    verified_order: VecDeque<Digest>,
    client_macs: ClientMacVerifier,
}

impl Keyring {
    /// A keyring for replica `me`; `replicas[i]` is replica i's public key. Client
    /// requests must carry a valid MAC for `me` ([`Keyring::verify_client`]).
    pub fn new(me: ReplicaId, signer: SigningKey, replicas: Vec<[u8; 32]>) -> Keyring {
        let client_macs = ClientMacVerifier::new(me, replicas.len(), &signer);
        Keyring {
            me,
            signer,
            replicas,
            verified: BTreeSet::new(),
            verified_order: VecDeque::new(),
            client_macs,
        }
    }

    /// Whether `req` carries a valid MAC for this replica.
    pub fn verify_client(&mut self, req: &Request) -> bool {
        self.client_macs.verify(req)
    }

    /// The MAC key this replica shares with `client` (`k(client, me)`).
    pub fn client_mac_key(&self, client: ClientId) -> MacKey {
        self.client_macs.client_key(client)
    }

    /// Deterministic keys for an `n`-replica test cluster: replica i's seed is derived
    /// from `cluster_seed` and i. Returns one keyring per replica.
    pub fn test_cluster(n: usize, cluster_seed: u64) -> Vec<Keyring> {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_seed(&test_seed(cluster_seed, i as u64)))
            .collect();
        let publics: Vec<[u8; 32]> = keys.iter().map(SigningKey::public_key).collect();
        keys.into_iter()
            .enumerate()
            .map(|(i, k)| Keyring::new(ReplicaId(i as u32), k, publics.clone()))
            .collect()
    }

    /// This replica's id.
    pub fn me(&self) -> ReplicaId {
        self.me
    }

    /// The public keys of all replicas, by index.
    pub fn replica_keys(&self) -> &[[u8; 32]] {
        &self.replicas
    }

    /// Signs `message` with this replica's key.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signer.sign(message)
    }

    /// Checks that `signer` signed `message`. Unknown signers fail.
    pub fn verify(&mut self, signer: ReplicaId, message: &[u8], sig: &Signature) -> bool {
        let Some(public) = self.replicas.get(signer.index()) else {
            return false;
        };
        let key = Digest::of(&[&signer.0.to_le_bytes(), &sig.0, message]);
        if self.verified.contains(&key) {
            return true;
        }
        if !verify_signature(public, message, sig) {
            return false;
        }
        if self.verified_order.len() >= VERIFIED_CACHE_CAPACITY
            && let Some(old) = self.verified_order.pop_front()
        {
            self.verified.remove(&old);
        }
        self.verified.insert(key);
        self.verified_order.push_back(key);
        true
    }
}

/// The seed of test key `index` in a cluster seeded with `cluster_seed`.
pub fn test_seed(cluster_seed: u64, index: u64) -> [u8; 32] {
    Digest::of(&[
        b"tandem-test-key",
        &cluster_seed.to_le_bytes(),
        &index.to_le_bytes(),
    ])
    .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_roundtrip() {
        let mut rings = Keyring::test_cluster(4, 7);
        let sig = rings[1].sign(b"hello");
        assert!(rings[0].verify(ReplicaId(1), b"hello", &sig));
        assert!(rings[0].verify(ReplicaId(1), b"hello", &sig), "cached path");
        assert!(!rings[0].verify(ReplicaId(2), b"hello", &sig));
        assert!(!rings[0].verify(ReplicaId(1), b"hellO", &sig));
        assert!(!rings[0].verify(ReplicaId(9), b"hello", &sig));
        let mut bad = sig;
        bad.0[10] ^= 1;
        assert!(!rings[0].verify(ReplicaId(1), b"hello", &bad));
    }

    #[test]
    fn signature_serde_roundtrip_and_length_check() {
        let ring = &Keyring::test_cluster(1, 1)[0];
        let sig = ring.sign(b"x");
        let enc = bincode::serde::encode_to_vec(sig, bincode::config::standard()).unwrap();
        let (dec, used): (Signature, usize) =
            bincode::serde::decode_from_slice(&enc, bincode::config::standard()).unwrap();
        assert_eq!(dec, sig);
        assert_eq!(used, enc.len());
        let short = bincode::serde::encode_to_vec(
            serde_bytes_like(&[1u8; 10]),
            bincode::config::standard(),
        )
        .unwrap();
        let r: Result<(Signature, usize), _> =
            bincode::serde::decode_from_slice(&short, bincode::config::standard());
        assert!(r.is_err());
    }

    struct BytesOnly<'a>(&'a [u8]);
    impl Serialize for BytesOnly<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    fn serde_bytes_like(b: &[u8]) -> BytesOnly<'_> {
        BytesOnly(b)
    }
}
