//! Ethereum-style signatures on EVM transactions and sender recovery (issue 15
//! item 5): [`EvmAuth`], the cluster's choice between channel-authenticated
//! transactions (`from` trusted) and secp256k1 signatures; [`EvmSignature`] and
//! its check; signing ([`EvmSigningKey`], the workloads' deterministic per-account
//! keys); and the recovery every executor runs on its worker threads before
//! scheduling a batch (`check_signatures`, called by `EvmVm::admit` and by
//! `execute_batch`).
//!
//! The signing hash is Ethereum's (`eth_rlp.rs`: EIP-155 legacy, EIP-2930 type 1
//! when the transaction carries an access list, EIP-1559 type 2 when it carries fee
//! caps) with the signature's chain id.
//! A signature is accepted when its chain id is the configuration's
//! (`EvmConfig::chain_id`, [`super::CHAIN_ID`] by default: replay protection), r
//! and s are in 1..n, s is at most n/2 (EIP-2: the other of the two valid s
//! values is refused, so a third party cannot make a second valid transaction of
//! the same content), and the public key is recoverable. The sender is the last
//! 20 bytes of keccak256 of that key; it is never taken from the sender's claim.
//! A transaction failing the check gets a `BadSignature` receipt, uses no gas,
//! reserves none of the batch's budget, and changes nothing, on every executor.
//!
//! Recovery is memoised in the transaction (`SenderCache`), so admission recovers
//! each sender once and execution reads it; a clone starts without it (so a
//! benchmark that clones its batches measures recovery every run). The memo keeps
//! a copy of everything the signature covers and of the signature itself (chain
//! id, y parity, r, s, nonce, gas limit, recipient, value, data, access list, fee
//! caps) and answers only while the transaction still has exactly those: a transaction whose
//! fields were changed after its sender was recovered is recovered again from what
//! it holds now, never given the sender of the fields it had (the fields are
//! public, so the memo cannot assume they stay as they were).

use std::str::FromStr;
use std::sync::OnceLock;

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use revm::primitives::{Address, keccak256};
use serde::{Deserialize, Serialize};

use super::receipt::EvmStatus;
use super::tx::EvmTx;
use crate::error::Error;
use crate::threads::WorkerThreads;

/// How EVM transactions authenticate their sender (the cluster file's
/// `[execution] evm_auth`, `--auth` of `tandem bench-exec`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvmAuth {
    /// `from` is trusted: the client's channel is authenticated (as today).
    #[default]
    Channel,
    /// Every transaction carries an Ethereum signature; the sender is recovered.
    Secp256k1,
}

impl EvmAuth {
    /// Whether this is the default, `Channel` (a cluster file leaves it out).
    pub fn is_channel(&self) -> bool {
        *self == EvmAuth::Channel
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EvmAuth::Channel => "channel",
            EvmAuth::Secp256k1 => "secp256k1",
        }
    }
}

impl std::fmt::Display for EvmAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EvmAuth {
    type Err = Error;
    fn from_str(s: &str) -> Result<EvmAuth, Error> {
        match s {
            "channel" => Ok(EvmAuth::Channel),
            "secp256k1" => Ok(EvmAuth::Secp256k1),
            other => Err(Error::Workload(format!(
                "unknown EVM authentication `{other}`; expected channel or secp256k1"
            ))),
        }
    }
}

/// Why a signature does not give a sender.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SignatureError {
    #[error("signed for chain id {signed}, this chain is {expected}")]
    WrongChain { signed: u64, expected: u64 },
    #[error("r or s is zero or not below the curve order")]
    OutOfRange,
    #[error("s is above n/2 (EIP-2)")]
    HighS,
    #[error("no public key recovers from it")]
    Unrecoverable,
    /// An unsigned transaction where the configuration asks for signatures
    /// ([`EvmAuth::Secp256k1`]): its `from` would otherwise be trusted.
    #[error("unsigned, and this chain's transactions must be signed (secp256k1)")]
    Unsigned,
}

/// An Ethereum ECDSA signature over a transaction (see the module docs). Equality
/// and hashing are over the signature alone, not the memoised sender.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EvmSignature {
    /// The chain id it was signed for.
    pub chain_id: u64,
    /// Whether R's y coordinate is odd (`v - 35 - 2 * chain_id` of a legacy
    /// transaction).
    pub y_parity: bool,
    /// r and s, 32 bytes big-endian each.
    pub r: [u8; 32],
    pub s: [u8; 32],
    sender: SenderCache,
}

impl EvmSignature {
    /// A signature with no sender recovered yet.
    pub fn new(chain_id: u64, y_parity: bool, r: [u8; 32], s: [u8; 32]) -> EvmSignature {
        EvmSignature {
            chain_id,
            y_parity,
            r,
            s,
            sender: SenderCache::default(),
        }
    }
}

/// The recovered sender, once computed, with the fields it was computed from. Not
/// part of a signature's identity, and not cloned (see the module docs). Boxed, so a
/// transaction carries one pointer for it, not a copy of its fields.
#[derive(Default)]
struct SenderCache(OnceLock<Box<Recovered>>);

/// A memoised verdict and what it was reached from.
struct Recovered {
    fields: SignedFields,
    sender: Result<Address, SignatureError>,
}

/// What a signature covers and the signature itself, as they were when the sender
/// was recovered ([`EvmTx::eth_fields`] and the signature's scalars).
#[derive(Debug, PartialEq, Eq)]
struct SignedFields {
    chain_id: u64,
    y_parity: bool,
    r: [u8; 32],
    s: [u8; 32],
    nonce: u64,
    gas_limit: u64,
    to: Option<[u8; 20]>,
    value: [u8; 32],
    data: Vec<u8>,
    access_list: Option<Vec<crate::evm::AccessListEntry>>,
    eip1559: Option<crate::evm::Eip1559Fees>,
    gas_price: u128,
}

impl SignedFields {
    fn of(tx: &EvmTx, sig: &EvmSignature) -> SignedFields {
        SignedFields {
            chain_id: sig.chain_id,
            y_parity: sig.y_parity,
            r: sig.r,
            s: sig.s,
            nonce: tx.nonce,
            gas_limit: tx.gas_limit,
            to: tx.to,
            value: tx.value,
            data: tx.data.clone(),
            access_list: tx.access_list.clone(),
            eip1559: tx.eip1559,
            gas_price: tx.gas_price,
        }
    }

    /// Whether `tx` signed by `sig` still has exactly these fields (no allocation).
    fn matches(&self, tx: &EvmTx, sig: &EvmSignature) -> bool {
        self.chain_id == sig.chain_id
            && self.y_parity == sig.y_parity
            && self.r == sig.r
            && self.s == sig.s
            && self.nonce == tx.nonce
            && self.gas_limit == tx.gas_limit
            && self.to == tx.to
            && self.value == tx.value
            && self.data == tx.data
            && self.access_list == tx.access_list
            && self.eip1559 == tx.eip1559
            && self.gas_price == tx.gas_price
    }
}

impl SenderCache {
    /// The memoised verdict for `tx` signed by `sig`, computing it with `verdict` the
    /// first time; `None` if the memo was made from other fields than `tx` has now.
    fn get_or_init(
        &self,
        tx: &EvmTx,
        sig: &EvmSignature,
        verdict: impl FnOnce() -> Result<Address, SignatureError>,
    ) -> Option<&Result<Address, SignatureError>> {
        let memo = self.0.get_or_init(|| {
            Box::new(Recovered {
                fields: SignedFields::of(tx, sig),
                sender: verdict(),
            })
        });
        memo.fields.matches(tx, sig).then_some(&memo.sender)
    }
}

impl Clone for SenderCache {
    fn clone(&self) -> SenderCache {
        SenderCache::default()
    }
}

impl PartialEq for SenderCache {
    fn eq(&self, _: &SenderCache) -> bool {
        true
    }
}

impl Eq for SenderCache {}

impl std::hash::Hash for SenderCache {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for SenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.get().map(|m| &m.sender) {
            Some(Ok(a)) => write!(f, "{a}"),
            Some(Err(e)) => write!(f, "({e})"),
            None => f.write_str("(not recovered)"),
        }
    }
}

/// A secp256k1 key that signs EVM transactions.
#[derive(Clone)]
pub struct EvmSigningKey(SigningKey);

impl std::fmt::Debug for EvmSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EvmSigningKey({})", self.address())
    }
}

impl EvmSigningKey {
    /// The key with secret scalar `secret` (32 bytes big-endian); `Err` if it is
    /// zero or not below the curve order.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<EvmSigningKey, Error> {
        SigningKey::from_bytes(secret.into())
            .map(EvmSigningKey)
            .map_err(|_| Error::Workload("secp256k1 secret not in 1..n".into()))
    }

    /// The key of workload account `index` under secp256k1 authentication: secret
    /// `keccak256("tandem/evm-account-key/v1" ‖ index as 8 bytes big-endian)`
    /// (the first such hash in 1..n, re-hashing otherwise: never in practice), so
    /// clients and replicas derive the same accounts without sharing anything.
    pub fn for_account(index: u64) -> EvmSigningKey {
        let mut material = b"tandem/evm-account-key/v1".to_vec();
        material.extend_from_slice(&index.to_be_bytes());
        let mut secret = keccak256(&material).0;
        loop {
            if let Ok(key) = EvmSigningKey::from_bytes(&secret) {
                return key;
            }
            secret = keccak256(secret).0;
        }
    }

    /// The Ethereum address of the key.
    pub fn address(&self) -> Address {
        Address::from_public_key(self.0.verifying_key())
    }

    /// Signs `tx` (all its fields but `from`, which it zeroes) for `chain_id`. An
    /// EIP-1559 transaction's empty access list becomes none (the same bytes and
    /// signature: `eth_rlp.rs`), so the signed transaction is exactly what its
    /// bytes decode to.
    pub fn sign(&self, mut tx: EvmTx, chain_id: u64) -> Result<EvmTx, Error> {
        tx.from = [0; 20];
        tx.signature = None;
        if tx.eip1559.is_some() && tx.access_list.as_ref().is_some_and(Vec::is_empty) {
            tx.access_list = None;
        }
        let hash = tx.eth_fields(chain_id).signing_hash();
        let (sig, id) = self
            .0
            .sign_prehash_recoverable(&hash)
            .map_err(|e| Error::Encode {
                what: "EVM transaction signature",
                reason: e.to_string(),
            })?;
        // k256 returns low-s signatures already (EIP-2); keep it so if that changed.
        let (sig, y_odd) = match sig.normalize_s() {
            Some(low) => (low, !id.is_y_odd()),
            None => (sig, id.is_y_odd()),
        };
        let (r, s) = sig.split_bytes();
        tx.signature = Some(EvmSignature::new(chain_id, y_odd, r.into(), s.into()));
        Ok(tx)
    }
}

impl EvmTx {
    /// The sender recovered from the signature (memoised, for the fields the
    /// transaction has now: see the module docs); an unsigned transaction returns
    /// `from`. Does not check the chain id against a configuration
    /// (`check_signature` does).
    pub fn recover_sender(&self) -> Result<Address, SignatureError> {
        let Some(sig) = &self.signature else {
            return Ok(Address::new(self.from));
        };
        match sig.sender.get_or_init(self, sig, || recover(self, sig)) {
            Some(memo) => memo.clone(),
            // Changed since the memo was made: recovered from what it holds now.
            None => recover(self, sig),
        }
    }

    /// `None` if the transaction may run under chain `chain_id`: unsigned, or
    /// signed for that chain by a recoverable key (see the module docs).
    ///
    /// A signature for another chain is refused without recovery, and that verdict
    /// is memoised as the sender: later calls of [`EvmTx::recover_sender`] (the
    /// access-list executor's `declare` asks every transaction for its sender)
    /// return it instead of running a secp256k1 recovery (about 250 µs) for a
    /// transaction that will not run. A transaction is checked against one chain
    /// only (its configuration's), so the memo never hides a valid sender.
    pub fn check_signature(&self, chain_id: u64) -> Option<SignatureError> {
        let sig = self.signature.as_ref()?;
        if sig.chain_id != chain_id {
            let refused = SignatureError::WrongChain {
                signed: sig.chain_id,
                expected: chain_id,
            };
            let memo = sig.sender.get_or_init(self, sig, || Err(refused.clone()));
            // Recovered before this check (a caller asked for the sender first), or
            // memoised for other fields: the chain still decides.
            return Some(match memo {
                Some(Err(e)) => e.clone(),
                Some(Ok(_)) | None => refused,
            });
        }
        self.recover_sender().err()
    }

    /// [`EvmTx::check_signature`] under the configuration's authentication mode:
    /// with [`EvmAuth::Secp256k1`] an unsigned transaction is refused
    /// ([`SignatureError::Unsigned`]) rather than run as the `from` it names. A
    /// replica already decodes only its mode's form (`decode_as`); this keeps every
    /// executor safe when a caller hands it transactions of the other form.
    pub fn check_authentication(&self, chain_id: u64, auth: EvmAuth) -> Option<SignatureError> {
        if auth == EvmAuth::Secp256k1 && self.signature.is_none() {
            return Some(SignatureError::Unsigned);
        }
        self.check_signature(chain_id)
    }
}

fn recover(tx: &EvmTx, sig: &EvmSignature) -> Result<Address, SignatureError> {
    let hash = tx.eth_fields(sig.chain_id).signing_hash();
    recover_prehash(&hash, sig.y_parity, sig.r, sig.s)
}

/// The address whose key signed `hash` with (y parity, r, s), low s only.
fn recover_prehash(
    hash: &[u8; 32],
    y_parity: bool,
    r: [u8; 32],
    s: [u8; 32],
) -> Result<Address, SignatureError> {
    let signature = Signature::from_scalars(r, s).map_err(|_| SignatureError::OutOfRange)?;
    if signature.normalize_s().is_some() {
        return Err(SignatureError::HighS);
    }
    let id = RecoveryId::new(y_parity, false);
    let key = VerifyingKey::recover_from_prehash(hash, &signature, id)
        .map_err(|_| SignatureError::Unrecoverable)?;
    Ok(Address::from_public_key(&key))
}

/// Sets `verdicts[i]` to `BadSignature` for every `txs[i]` whose signature fails
/// under `chain_id`, recovering the senders on `threads` when given (chunks of 16
/// handed out to the threads as they ask). Leaves the other verdicts alone;
/// `verdicts` must be as long as `txs`. Returns how many signatures were checked.
pub(super) fn check_signatures(
    txs: &[EvmTx],
    chain_id: u64,
    auth: EvmAuth,
    threads: Option<&WorkerThreads>,
    verdicts: &mut [Option<EvmStatus>],
) -> u64 {
    let signed = txs.iter().filter(|t| t.signature.is_some()).count() as u64;
    if signed == 0 && auth == EvmAuth::Channel {
        return 0;
    }
    let run = |offset: usize, part: &mut [Option<EvmStatus>]| {
        for (slot, tx) in part.iter_mut().zip(&txs[offset..]) {
            if let Some(e) = tx.check_authentication(chain_id, auth) {
                *slot = Some(EvmStatus::BadSignature(e.to_string()));
            }
        }
    };
    match threads {
        Some(threads) if threads.count() > 1 => threads.parallel_chunks(verdicts, 16, run),
        _ => run(0, verdicts),
    }
    signed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evm::eth_rlp::{EthFields, EthSig, decode_signed};
    use crate::evm::{AccessListEntry, U256};
    use proptest::prelude::*;

    const CHAIN: u64 = super::super::execute::CHAIN_ID;
    const FEES: crate::evm::Eip1559Fees = crate::evm::Eip1559Fees {
        max_fee_per_gas: 7_000_000_000,
        max_priority_fee_per_gas: 2,
    };

    fn transfer() -> EvmTx {
        EvmTx::call(
            Address::ZERO,
            Address::with_last_byte(0x35),
            U256::from(1_000u64),
            3,
            30_000,
            vec![1, 2, 3],
        )
    }

    /// n, the order of secp256k1.
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];

    /// A signature for another chain is refused once and never recovered after:
    /// the access-list executor asks every transaction for its sender, and a
    /// batch of foreign-chain transactions cost a recovery each on its scheduling
    /// thread (review of 9583c41).
    #[test]
    fn a_foreign_chain_signature_is_refused_without_recovery_and_stays_refused() {
        let key = EvmSigningKey::from_bytes(&[0x46; 32]).unwrap();
        let tx = EvmTx::call(
            Address::ZERO,
            Address::new([0x35; 20]),
            U256::from(1u64),
            0,
            21_000,
            Vec::new(),
        );
        let signed = key.sign(tx, 1).unwrap();
        let refused = Some(SignatureError::WrongChain {
            signed: 1,
            expected: CHAIN,
        });
        assert_eq!(signed.check_signature(CHAIN), refused);
        // The memo holds the refusal: no recovery, no sender.
        assert_eq!(signed.recover_sender(), Err(refused.clone().unwrap()));
        assert_eq!(signed.sender(), Address::ZERO);
        assert_eq!(signed.check_signature(CHAIN), refused);
        // A fresh copy recovers as before.
        assert_eq!(signed.clone().recover_sender(), Ok(key.address()));
    }

    #[test]
    fn eip155_example_key_signs_the_example_and_recovers_its_address() {
        let key = EvmSigningKey::from_bytes(&[0x46; 32]).unwrap();
        assert_eq!(
            key.address().to_string().to_lowercase(),
            "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"
        );
        // The example's fields but gas price 0 (Tandem's): its own hash, same key.
        let tx = EvmTx::call(
            Address::ZERO,
            Address::new([0x35; 20]),
            U256::from(10u64).pow(U256::from(18u64)),
            9,
            21_000,
            Vec::new(),
        );
        let signed = key.sign(tx, 1).unwrap();
        assert_eq!(signed.recover_sender(), Ok(key.address()));
        assert_eq!(signed.sender(), key.address());
        assert_eq!(signed.check_signature(1), None);
        assert!(matches!(
            signed.check_signature(CHAIN),
            Some(SignatureError::WrongChain { signed: 1, .. })
        ));
    }

    #[test]
    fn eip155_example_signature_recovers_the_example_key() {
        let bytes = [
            "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000",
            "8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d899",
            "7f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83",
        ]
        .concat();
        let bytes: Vec<u8> = (0..bytes.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&bytes[i..i + 2], 16).unwrap())
            .collect();
        let tx = super::super::eth_rlp::decode_signed(&bytes).unwrap();
        let hash = super::super::eth_rlp::EthFields {
            chain_id: tx.chain_id,
            nonce: tx.nonce,
            gas_price: tx.gas_price,
            gas_limit: tx.gas_limit,
            to: tx.to.as_ref(),
            value: &tx.value,
            data: &tx.data,
            access_list: None,
            fees: None,
        }
        .signing_hash();
        let example = EvmSigningKey::from_bytes(&[0x46; 32]).unwrap().address();
        assert_eq!(
            recover_prehash(&hash, tx.sig.y_parity, tx.sig.r, tx.sig.s),
            Ok(example)
        );
        assert_ne!(
            recover_prehash(&hash, !tx.sig.y_parity, tx.sig.r, tx.sig.s),
            Ok(example)
        );
        // Tandem's decoder takes it with its gas price, and encodes it back.
        let decoded = EvmTx::decode_signed(&bytes).unwrap();
        assert_eq!(decoded.gas_price, tx.gas_price);
        assert_eq!(decoded.encode().unwrap(), bytes);
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn word(s: &str) -> [u8; 32] {
        unhex(s).try_into().unwrap()
    }

    fn address(s: &str) -> [u8; 20] {
        unhex(s).try_into().unwrap()
    }

    /// A published EIP-2930 vector: a mainnet type-1 transaction with a three-entry
    /// access list (chain 1, nonce 9215, gas price 43 gwei, gas 1,000,000), its
    /// signed bytes, fields, signature and sender, from ethers-rs
    /// (gakonst/ethers-rs, `ethers-core/src/types/transaction/eip2930.rs`, test
    /// `decoding_eip2930_with_access_list`). Checks the signed encoding both ways
    /// and, through the sender recovered, the signing hash.
    #[test]
    fn published_eip2930_vector_decodes_encodes_and_recovers_its_sender() {
        let raw = unhex(concat!(
            "01f90126018223ff850a02ffee00830f4240940000000000a8fb09af944ab3baf7a9b3e1ab29d880b8",
            "76200200001525000000000b69ffb300000000557b933a7c2c45672b610f8954a3deb39a51a8cae53e",
            "c727dbdeb9e2d5456c3be40cff031ab40a55724d5c9c618a2152e99a45649a3b8cf198321f46720b72",
            "2f4ec38f99ba3bb1303258d2e816e6a95b25647e01bd0967c1b9599fa3521939871d1d0888f845d694",
            "724d5c9c618a2152e99a45649a3b8cf198321f46c0d694720b722f4ec38f99ba3bb1303258d2e816e6",
            "a95bc0d69425647e01bd0967c1b9599fa3521939871d1d0888c001a08323efae7b9993bd31a58da792",
            "4359d24b5504aa2b33194fcc5ae206e65d2e62a054ce201e3b4b5cd38eb17c56ee2f9111b2e164efcd",
            "57b3e70fa308a0a51f7014",
        ));
        let data = unhex(concat!(
            "200200001525000000000b69ffb300000000557b933a7c2c45672b610f8954a3deb39a51a8cae53ec7",
            "27dbdeb9e2d5456c3be40cff031ab40a55724d5c9c618a2152e99a45649a3b8cf198321f46720b722f",
            "4ec38f99ba3bb1303258d2e816e6a95b25647e01bd0967c1b9599fa3521939871d1d0888",
        ));
        let list: Vec<AccessListEntry> = [
            "724d5c9c618a2152e99a45649a3b8cf198321f46",
            "720b722f4ec38f99ba3bb1303258d2e816e6a95b",
            "25647e01bd0967c1b9599fa3521939871d1d0888",
        ]
        .iter()
        .map(|a| AccessListEntry {
            address: address(a),
            slots: vec![],
        })
        .collect();
        let to = address("0000000000a8fb09af944ab3baf7a9b3e1ab29d8");
        let fields = EthFields {
            chain_id: 1,
            nonce: 9215,
            gas_price: 43_000_000_000,
            gas_limit: 1_000_000,
            to: Some(&to),
            value: &[0; 32],
            data: &data,
            access_list: Some(&list),
            fees: None,
        };
        let sig = EthSig {
            y_parity: true,
            r: word("8323efae7b9993bd31a58da7924359d24b5504aa2b33194fcc5ae206e65d2e62"),
            s: word("54ce201e3b4b5cd38eb17c56ee2f9111b2e164efcd57b3e70fa308a0a51f7014"),
        };
        assert_eq!(fields.encode_signed(&sig), raw);
        let decoded = decode_signed(&raw).unwrap();
        assert_eq!(decoded.sig, sig);
        assert_eq!(decoded.access_list.as_deref(), Some(&list[..]));
        assert_eq!(decoded.fields().encode_signed(&decoded.sig), raw);
        let hash = fields.signing_hash();
        assert_eq!(decoded.fields().signing_hash(), hash);
        assert_eq!(
            recover_prehash(&hash, sig.y_parity, sig.r, sig.s),
            Ok(Address::new(address(
                "e9c790e8fde820ded558a4771b72eec916c04763"
            )))
        );
        // Tandem's decoder takes it with its gas price, and encodes it back.
        let tx = EvmTx::decode_signed(&raw).unwrap();
        assert_eq!(tx.gas_price, decoded.gas_price);
        assert_eq!(tx.encode().unwrap(), raw);
    }

    /// A published EIP-1559 vector: mainnet transaction
    /// 0x0ec0b6a2df4d87424e5f6ad2a654e27aaeb7dac20ae9e8385cc09087ad532ee0 (chain 1,
    /// nonce 0x42, max priority fee 1 gwei, max fee 20 gwei, gas 44386, a
    /// `setApprovalForAll` call), its fields, signature, hash and signer, from reth
    /// (paradigmxyz/reth, `crates/primitives/src/transaction/eip1559.rs`, test
    /// `recover_signer_eip1559`). The transaction hash is keccak256 of the signed
    /// bytes, so it checks the signed encoding; the signer checks the signing hash.
    #[test]
    fn published_eip1559_vector_hashes_and_recovers_its_signer() {
        let to = address("6069a6c32cf691f5982febae4faf8a6f3ab2f0f6");
        let data = unhex(concat!(
            "a22cb4650000000000000000000000005eee75727d804a2b13038928d36f8b188945a57a",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ));
        let fields = EthFields {
            chain_id: 1,
            nonce: 0x42,
            gas_price: 0,
            gas_limit: 44_386,
            to: Some(&to),
            value: &[0; 32],
            data: &data,
            access_list: None,
            fees: Some(crate::evm::Eip1559Fees {
                max_fee_per_gas: 0x4_a817_c800,
                max_priority_fee_per_gas: 0x3b9a_ca00,
            }),
        };
        let sig = EthSig {
            y_parity: false,
            r: word("840cfc572845f5786e702984c2a582528cad4b49b2a10b9db1be7fca90058565"),
            s: word("25e7109ceb98168d95b09b18bbf6b685130e0562f233877d492b94eee0c5b6d1"),
        };
        let signed = fields.encode_signed(&sig);
        assert_eq!(signed[0], 2);
        assert_eq!(
            keccak256(&signed).0,
            word("0ec0b6a2df4d87424e5f6ad2a654e27aaeb7dac20ae9e8385cc09087ad532ee0")
        );
        let decoded = decode_signed(&signed).unwrap();
        assert_eq!((decoded.fees, decoded.sig), (fields.fees, sig));
        assert_eq!(decoded.access_list, None);
        assert_eq!(decoded.fields().encode_signed(&decoded.sig), signed);
        let hash = fields.signing_hash();
        assert_eq!(decoded.fields().signing_hash(), hash);
        assert_eq!(
            recover_prehash(&hash, sig.y_parity, sig.r, sig.s),
            Ok(Address::new(address(
                "dd6b8b3dc6b7ad97db52f08a275ff4483e024cea"
            )))
        );
        // Tandem decodes it (type 2 carries any fee caps) and recovers the signer
        // for chain 1.
        let tx = EvmTx::decode_signed(&signed).unwrap();
        assert_eq!(tx.tx_type(), 2);
        assert_eq!(tx.check_signature(1), None);
        assert_eq!(
            tx.sender(),
            Address::new(address("dd6b8b3dc6b7ad97db52f08a275ff4483e024cea"))
        );
        assert_eq!(tx.encode().unwrap(), signed);
    }

    #[test]
    fn signed_transactions_round_trip_and_recover_their_signer() {
        let key = EvmSigningKey::for_account(5);
        assert_ne!(key.address(), EvmSigningKey::for_account(6).address());
        for tx in [
            transfer(),
            transfer().with_access_list(vec![]),
            transfer().with_access_list(vec![AccessListEntry {
                address: [9; 20],
                slots: vec![[1; 32]],
            }]),
            EvmTx::create(Address::ZERO, 0, 1_000_000, vec![0x60, 0x00]),
            transfer().with_eip1559_fees(FEES),
            transfer().with_eip1559_fees(FEES).with_access_list(vec![]),
            transfer()
                .with_eip1559_fees(FEES)
                .with_access_list(vec![AccessListEntry {
                    address: [9; 20],
                    slots: vec![[1; 32], [2; 32]],
                }]),
            EvmTx::create(Address::ZERO, 0, 1_000_000, vec![0x60, 0x00]).with_eip1559_fees(FEES),
        ] {
            let signed = key.sign(tx.clone(), CHAIN).unwrap();
            assert_eq!(signed.from, [0; 20]);
            assert_eq!(signed.sender(), key.address());
            let bytes = signed.encode().unwrap();
            let decoded = EvmTx::decode_signed(&bytes).unwrap();
            assert_eq!(decoded, signed);
            assert_eq!(decoded.encode().unwrap(), bytes);
            assert_eq!(decoded.check_signature(CHAIN), None);
            assert_eq!(decoded.sender(), key.address());
            assert_eq!(
                EvmTx::decode_as(EvmAuth::Secp256k1, &bytes).unwrap(),
                signed
            );
            // The unsigned decoder does not take it, nor the signed one the unsigned form.
            assert!(EvmTx::decode_as(EvmAuth::Channel, &bytes).is_err());
            match tx.encode() {
                Ok(plain) => assert!(EvmTx::decode_signed(&plain).is_err()),
                // Fee caps: only the signed form carries them.
                Err(_) => assert_eq!(tx.tx_type(), 2),
            }
        }
    }

    #[test]
    fn tampered_fields_or_signatures_recover_another_sender_or_none() {
        let key = EvmSigningKey::for_account(1);
        let signed = key.sign(transfer(), CHAIN).unwrap();
        let mut tampered = [
            signed.clone(),
            signed.clone(),
            signed.clone(),
            signed.clone(),
        ];
        tampered[0].nonce += 1;
        tampered[1].value[31] ^= 1;
        tampered[2].data.push(0);
        tampered[3] = tampered[3].clone().with_access_list(vec![]);
        for t in &tampered {
            assert_ne!(t.recover_sender(), Ok(key.address()));
        }
        let mut flipped = signed.clone();
        let sig = flipped.signature.as_mut().unwrap();
        *sig = EvmSignature::new(sig.chain_id, !sig.y_parity, sig.r, sig.s);
        assert_ne!(flipped.recover_sender(), Ok(key.address()));
        let mut r_changed = signed.clone();
        let sig = r_changed.signature.as_mut().unwrap();
        let mut r = sig.r;
        r[31] ^= 1;
        *sig = EvmSignature::new(sig.chain_id, sig.y_parity, r, sig.s);
        assert_ne!(r_changed.recover_sender(), Ok(key.address()));
        // From a clone of the recovered transaction the sender is recovered again.
        assert_eq!(signed.recover_sender(), Ok(key.address()));
        assert_eq!(signed.clone().recover_sender(), Ok(key.address()));
    }

    /// The memo answers only for the fields it was recovered from: a signed
    /// transaction changed in place after its sender was recovered (any field the
    /// signature covers, or the signature) is recovered again and never runs as the
    /// signer. Before, the memo was the sender of whatever the transaction held when
    /// first asked, so a changed nonce, value, recipient or calldata kept the
    /// signer's address.
    #[test]
    fn a_transaction_changed_after_recovery_is_not_given_the_memoised_sender() {
        let key = EvmSigningKey::for_account(1);
        let signed = key.sign(transfer(), CHAIN).unwrap();
        type Change = (&'static str, fn(&mut EvmTx));
        let changes: [Change; 10] = [
            ("nonce", |t| t.nonce += 1),
            ("value", |t| t.value[31] ^= 1),
            ("recipient", |t| t.to = Some([7; 20])),
            ("gas limit", |t| t.gas_limit += 1),
            ("data", |t| t.data.push(0)),
            ("access list", |t| t.access_list = Some(vec![])),
            ("fee caps", |t| t.eip1559 = Some(FEES)),
            ("y parity", |t| {
                let sig = t.signature.as_mut().unwrap();
                sig.y_parity = !sig.y_parity;
            }),
            ("r", |t| t.signature.as_mut().unwrap().r[31] ^= 1),
            ("chain id", |t| t.signature.as_mut().unwrap().chain_id += 1),
        ];
        for (what, change) in changes {
            let mut tx = signed.clone();
            assert_eq!(tx.recover_sender(), Ok(key.address()), "{what}");
            assert_eq!(tx.sender(), key.address());
            change(&mut tx);
            assert_ne!(tx.recover_sender(), Ok(key.address()), "changed {what}");
            assert_ne!(tx.sender(), key.address(), "changed {what}");
            // What a fresh recovery of the changed transaction gives (another
            // address, or a refusal), memo or not.
            assert_eq!(tx.recover_sender(), tx.clone().recover_sender(), "{what}");
        }
        // Unchanged, the memo still answers (and agrees with a fresh recovery).
        let tx = signed.clone();
        assert_eq!(tx.recover_sender(), Ok(key.address()));
        assert_eq!(tx.check_signature(CHAIN), None);
        assert_eq!(tx.recover_sender(), signed.clone().recover_sender());
    }

    /// A wrong-chain verdict memoised for one chain id is not the verdict of the
    /// transaction once re-signed in place for the configured chain.
    #[test]
    fn a_wrong_chain_memo_does_not_outlive_a_changed_signature() {
        let key = EvmSigningKey::for_account(2);
        let mut tx = key.sign(transfer(), CHAIN + 1).unwrap();
        assert!(matches!(
            tx.check_signature(CHAIN),
            Some(SignatureError::WrongChain { .. })
        ));
        let resigned = key.sign(transfer(), CHAIN).unwrap();
        let (memo, sig) = (tx.signature.take().unwrap(), resigned.signature.unwrap());
        // The same memo cell, the new signature's scalars.
        tx.signature = Some(EvmSignature {
            sender: memo.sender,
            ..sig
        });
        assert_eq!(tx.check_signature(CHAIN), None);
        assert_eq!(tx.recover_sender(), Ok(key.address()));
    }

    #[test]
    fn high_s_zero_and_out_of_range_are_refused() {
        let key = EvmSigningKey::for_account(2);
        let signed = key.sign(transfer(), CHAIN).unwrap();
        let sig = signed.signature.clone().unwrap();
        // s' = n - s is the other valid s of the same signature: refused.
        let s = U256::from_be_bytes(sig.s);
        let high = (U256::from_be_bytes(N) - s).to_be_bytes::<32>();
        let mut malleated = signed.clone();
        malleated.signature = Some(EvmSignature::new(CHAIN, !sig.y_parity, sig.r, high));
        assert_eq!(malleated.recover_sender(), Err(SignatureError::HighS));
        assert_eq!(malleated.sender(), Address::ZERO);
        // And it still decodes (refused at admission, not at decoding).
        let bytes = malleated.encode().unwrap();
        assert_eq!(
            EvmTx::decode_signed(&bytes).unwrap().check_signature(CHAIN),
            Some(SignatureError::HighS)
        );
        for (r, s) in [([0; 32], sig.s), (sig.r, [0; 32]), (N, sig.s)] {
            let mut bad = signed.clone();
            bad.signature = Some(EvmSignature::new(CHAIN, sig.y_parity, r, s));
            assert_eq!(bad.recover_sender(), Err(SignatureError::OutOfRange));
        }
    }

    #[test]
    fn parallel_check_matches_the_sequential_one() {
        let threads = WorkerThreads::new(2).unwrap();
        let mut txs: Vec<EvmTx> = (0..50)
            .map(|i| {
                EvmSigningKey::for_account(i)
                    .sign(transfer(), CHAIN)
                    .unwrap()
            })
            .collect();
        txs[7].nonce += 1; // another sender: passes the check
        txs[9].signature.as_mut().unwrap().s = [0; 32];
        txs[11].signature.as_mut().unwrap().chain_id = 1;
        txs.push(transfer());
        // Clones: each check recovers the senders itself.
        let fresh = || txs.to_vec();
        let mut one = vec![None; txs.len()];
        let mut two = vec![None; txs.len()];
        assert_eq!(
            check_signatures(&fresh(), CHAIN, EvmAuth::Channel, None, &mut one),
            50
        );
        assert_eq!(
            check_signatures(&fresh(), CHAIN, EvmAuth::Channel, Some(&threads), &mut two),
            50
        );
        assert_eq!(one, two);
        let bad: Vec<usize> = (0..one.len()).filter(|&i| one[i].is_some()).collect();
        assert_eq!(bad, vec![9, 11]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn junk_signed_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            at in any::<prop::sample::Index>(),
            flip in 1u8..,
        ) {
            if let Ok(tx) = EvmTx::decode_signed(&bytes) {
                let _ = tx.check_signature(CHAIN);
                prop_assert_eq!(tx.encode().unwrap(), bytes.clone());
            }
            let signed = EvmSigningKey::for_account(3).sign(transfer(), CHAIN).unwrap();
            let mut b = signed.encode().unwrap();
            let i = at.index(b.len());
            b[i] ^= flip;
            if let Ok(tx) = EvmTx::decode_signed(&b) {
                prop_assert_ne!(&tx, &signed);
                prop_assert_ne!(tx.check_signature(CHAIN).is_none() && tx.sender() == signed.sender(), true);
                prop_assert_eq!(tx.encode().unwrap(), b);
            }
        }
    }

    /// Signing drops an EIP-1559 transaction's empty access list, and the
    /// transaction still declares its own accounts to the access-list executor
    /// (it fell back on every signed batch holding one).
    #[test]
    fn a_signed_type_2_transaction_with_an_empty_list_still_declares() {
        use crate::evm::{EvmKey, EvmVm};
        use crate::tx::Access;
        use crate::vm::Vm;
        let key = EvmSigningKey::from_bytes(&[0x46; 32]).unwrap();
        let mut tx = transfer().with_access_list(Vec::new());
        tx.eip1559 = Some(FEES);
        let signed = key.sign(tx, CHAIN).unwrap();
        assert_eq!(signed.access_list, None);
        let mut declared = Vec::new();
        assert!(EvmVm::declare(&signed, &mut declared));
        assert!(declared.contains(&(EvmKey::Balance(key.address()), Access::Write)));
        assert!(declared.contains(&(
            EvmKey::Balance(Address::with_last_byte(0x35)),
            Access::Write
        )));
        // Without fee caps, no list still declares nothing.
        assert!(!EvmVm::declare(&transfer(), &mut Vec::new()));
    }
}
