//! Optional per-transaction Ed25519 signatures (ring): the signed message, the
//! deterministic per-account keys workloads use, and the pre-execution check that
//! every executor runs (in parallel on its worker threads) before applying a batch.
//!
//! The signed message is `"tandem/tx/v1" ‖ bincode(sender, nonce, work, op)`.
//! Rule (state-determined, so identical on every replica): an account with a
//! `Key::PublicKey` entry must sign and the signature must verify; a signature from
//! an account without a registered key is rejected. A failed check aborts that
//! transaction only (`MissingSignature` / `BadSignature`) and it reads nothing.
//! Public keys are written at genesis only, so checking them against the
//! pre-batch state is exact.

use ring::digest::{SHA256, digest};
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

use crate::error::Error;
use crate::state::{Account, State};
use crate::threads::WorkerThreads;
use crate::tx::{AbortReason, Op, Signature, Transaction};

const DOMAIN: &[u8] = b"tandem/tx/v1";
const MESSAGE_CAP: usize = 192;

/// The bytes a transaction's signature covers, written into `buf`.
fn signing_message<'a>(tx: &Transaction, buf: &'a mut [u8; MESSAGE_CAP]) -> Option<&'a [u8]> {
    buf[..DOMAIN.len()].copy_from_slice(DOMAIN);
    let body: (u64, u64, u32, &Op) = (tx.sender, tx.nonce, tx.work, &tx.op);
    let used = bincode::serde::encode_into_slice(
        body,
        &mut buf[DOMAIN.len()..],
        bincode::config::standard(),
    )
    .ok()?;
    Some(&buf[..DOMAIN.len() + used])
}

/// The Ed25519 key pair of `account` in a workload seeded with `seed`: its seed is
/// `SHA-256("tandem/account-key/v1" ‖ seed ‖ account)`, so replicas can register
/// the public keys at genesis and clients can sign without sharing anything.
pub fn account_keypair(seed: u64, account: Account) -> Result<Ed25519KeyPair, Error> {
    let mut material = Vec::with_capacity(40);
    material.extend_from_slice(b"tandem/account-key/v1");
    material.extend_from_slice(&seed.to_be_bytes());
    material.extend_from_slice(&account.to_be_bytes());
    let secret = digest(&SHA256, &material);
    Ed25519KeyPair::from_seed_unchecked(secret.as_ref()).map_err(|_| Error::KeyDerivation(account))
}

/// The public half of `account_keypair(seed, account)`.
pub fn account_public_key(seed: u64, account: Account) -> Result<[u8; 32], Error> {
    use ring::signature::KeyPair;
    let pair = account_keypair(seed, account)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(pair.public_key().as_ref());
    Ok(out)
}

impl Transaction {
    /// Signs the transaction in place with `keypair`.
    pub fn sign(&mut self, keypair: &Ed25519KeyPair) -> Result<(), Error> {
        let mut buf = [0u8; MESSAGE_CAP];
        let message = signing_message(self, &mut buf).ok_or(Error::Encode {
            what: "signing message",
            reason: "transaction too large".into(),
        })?;
        let sig = keypair.sign(message);
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(sig.as_ref());
        self.signature = Some(Signature(bytes));
        Ok(())
    }

    /// Whether the signature verifies under `public_key` (false when unsigned, and
    /// false for a weak or invalid key: see `public_key.rs`).
    pub fn verify_signature(&self, public_key: &[u8; 32]) -> bool {
        crate::public_key::check_public_key(public_key).is_ok() && self.verify_under(public_key)
    }

    /// Verification under a key already checked (every key in the state was).
    pub(crate) fn verify_under(&self, public_key: &[u8; 32]) -> bool {
        let Some(sig) = &self.signature else {
            return false;
        };
        let mut buf = [0u8; MESSAGE_CAP];
        match signing_message(self, &mut buf) {
            Some(message) => UnparsedPublicKey::new(&ED25519, public_key)
                .verify(message, &sig.0)
                .is_ok(),
            None => false,
        }
    }
}

fn check_one(state: &State, tx: &Transaction) -> Option<AbortReason> {
    match (state.public_key(tx.sender), &tx.signature) {
        (None, None) => None,
        (Some(_), None) => Some(AbortReason::MissingSignature),
        (None, Some(_)) => Some(AbortReason::BadSignature),
        (Some(pk), Some(_)) => (!tx.verify_under(&pk)).then_some(AbortReason::BadSignature),
    }
}

/// Fills `out[i]` with the signature verdict of `txs[i]` (`None` = may execute)
/// and returns how many signatures were verified. Verification runs on the worker
/// threads when given.
pub(crate) fn precheck(
    state: &State,
    txs: &[Transaction],
    threads: Option<&WorkerThreads>,
    out: &mut Vec<Option<AbortReason>>,
) -> u64 {
    out.clear();
    out.resize(txs.len(), None);
    let signed = txs.iter().filter(|t| t.signature.is_some()).count() as u64;
    if signed == 0 && !state.has_public_keys() {
        return 0;
    }
    let run = |offset: usize, part: &mut [Option<AbortReason>]| {
        for (slot, tx) in part.iter_mut().zip(&txs[offset..]) {
            *slot = check_one(state, tx);
        }
    };
    match threads {
        Some(threads) if signed > 0 && threads.count() > 1 => threads.parallel_chunks(out, 16, run),
        _ => run(0, out),
    }
    signed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Key, Value};

    fn transfer(sender: Account, nonce: u64) -> Transaction {
        Transaction::new(
            sender,
            nonce,
            Op::Transfer {
                to: 2,
                token: 0,
                amount: 5,
            },
        )
    }

    #[test]
    fn sign_and_verify() {
        let pair = account_keypair(7, 1).unwrap();
        let pk = account_public_key(7, 1).unwrap();
        let mut tx = transfer(1, 1);
        tx.sign(&pair).unwrap();
        assert!(tx.verify_signature(&pk));
        let mut tampered = tx.clone();
        tampered.nonce = 2;
        assert!(!tampered.verify_signature(&pk));
        assert!(!tx.verify_signature(&account_public_key(7, 2).unwrap()));
        assert_ne!(pk, account_public_key(8, 1).unwrap());
    }

    #[test]
    fn precheck_applies_the_rule_in_parallel_too() {
        let mut state = State::new();
        state
            .set(
                Key::PublicKey(1),
                Value::PublicKey(account_public_key(3, 1).unwrap()),
            )
            .unwrap();
        let pair = account_keypair(3, 1).unwrap();
        let mut good = transfer(1, 1);
        good.sign(&pair).unwrap();
        let mut bad = good.clone();
        bad.signature = Some(Signature([1; 64]));
        let mut stranger = transfer(2, 1);
        stranger.sign(&account_keypair(3, 2).unwrap()).unwrap();
        let txs = vec![good, transfer(1, 2), bad, transfer(2, 1), stranger];
        let expected = vec![
            None,
            Some(AbortReason::MissingSignature),
            Some(AbortReason::BadSignature),
            None,
            Some(AbortReason::BadSignature),
        ];
        let mut out = Vec::new();
        assert_eq!(precheck(&state, &txs, None, &mut out), 3);
        assert_eq!(out, expected);
        let threads = WorkerThreads::new(2).unwrap();
        let many: Vec<Transaction> = txs.iter().cycle().take(100).cloned().collect();
        precheck(&state, &many, Some(&threads), &mut out);
        assert!(out.iter().zip(expected.iter().cycle()).all(|(a, b)| a == b));
    }
}
