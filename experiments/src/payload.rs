//! The request payloads of the ledger and EVM applications, shared by the load
//! client that builds them and the replica that executes them: a bincode
//! [`Transaction`] (`tandem-executor`'s encoding, at most `MAX_TX_BYTES`), optionally
//! followed by zero bytes that model larger transactions; or an EVM transaction,
//! optionally padded the same way with its length after the pad
//! ([`encode_evm_payload`]).

use bytes::Bytes;
use tandem_executor::Transaction;
use tandem_executor::evm::{EvmAuth, EvmReceipt, EvmStatus, EvmTx};

/// Encodes `tx` as a request payload of at least `pad_to` bytes.
pub fn encode_payload(tx: &Transaction, pad_to: usize) -> Bytes {
    let mut bytes = tx.encode().expect("generated transactions encode");
    if bytes.len() < pad_to {
        bytes.resize(pad_to, 0);
    }
    Bytes::from(bytes)
}

/// Decodes a request payload: a transaction, then only zero bytes.
pub fn decode_payload(payload: &[u8]) -> Option<Transaction> {
    let config = bincode::config::standard().with_limit::<{ tandem_executor::MAX_TX_BYTES }>();
    let (tx, used): (Transaction, usize) =
        bincode::serde::decode_from_slice(payload, config).ok()?;
    all_zero(&payload[used..]).then_some(tx)
}

/// Whether every byte of a pad is zero: an OR over the whole pad, which the compiler
/// vectorises (an early-exit loop goes byte by byte; a replica checks every
/// request's pad at admission and again at execution).
fn all_zero(pad: &[u8]) -> bool {
    pad.iter().fold(0u8, |acc, b| acc | b) == 0
}

/// The largest EVM request payload, padded or not: `MAX_EVM_TX_BYTES` (64 KiB, the
/// consensus layer's default `max_request_bytes`). A `--payload` above it is refused
/// for the EVM, and a replica decodes nothing longer, so checking a pad's zero bytes
/// is bounded.
pub const MAX_EVM_PAYLOAD_BYTES: usize = tandem_executor::evm::MAX_EVM_TX_BYTES;

/// Encodes an EVM transaction as a request payload (`vm = "evm"`): its bincode
/// form, or a signed transaction's Ethereum bytes (`EvmTx::encode`), padded to at
/// least `pad_to` bytes when that is more (`--payload`, modelling larger
/// transactions, as `encode_payload` does for the ledger's).
///
/// A padded payload is the encoding, then zero bytes, then the encoding's length
/// (4 bytes, big-endian): at least 4 bytes longer than the encoding, at most
/// [`MAX_EVM_PAYLOAD_BYTES`] (a transaction too long to pad within it goes
/// unpadded). The length is needed because the EVM's unsigned form is not
/// self-delimiting: the plain form followed by a zero byte is the same
/// transaction with an empty access list, which executes differently (a type-1
/// transaction, and a declared set for the access-list executor). The decoder
/// ([`decode_evm_payload_as`]) gives back exactly the transaction encoded, so
/// padding changes neither execution nor gas.
pub fn encode_evm_payload(tx: &EvmTx, pad_to: usize) -> Bytes {
    let mut bytes = tx.encode().expect("generated transactions encode");
    let len = bytes.len();
    let total = pad_to.min(MAX_EVM_PAYLOAD_BYTES).max(len + 4);
    if pad_to > len && total <= MAX_EVM_PAYLOAD_BYTES {
        bytes.resize(total - 4, 0);
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
    }
    Bytes::from(bytes)
}

/// Decodes an EVM request payload under channel authentication (see
/// [`decode_evm_payload_as`]).
pub fn decode_evm_payload(payload: &[u8]) -> Option<EvmTx> {
    decode_evm_payload_as(EvmAuth::Channel, payload)
}

/// Decodes an EVM request payload under the cluster's `evm_auth`: an unsigned
/// `EvmTx` (channel) or a signed one, Ethereum's bytes (secp256k1), never the
/// other form; either exactly one encoding, or one padded by
/// [`encode_evm_payload`] (the encoding of the length the last 4 bytes name, then
/// only zero bytes). At most [`MAX_EVM_PAYLOAD_BYTES`]. A padded payload never
/// decodes as a whole (the length after the pad leaves bytes no transaction
/// consumes), so the two readings never compete.
pub fn decode_evm_payload_as(auth: EvmAuth, payload: &[u8]) -> Option<EvmTx> {
    if payload.len() > MAX_EVM_PAYLOAD_BYTES {
        return None;
    }
    if let Ok(tx) = EvmTx::decode_as(auth, payload) {
        return Some(tx);
    }
    let (body, len) = payload.split_at(payload.len().checked_sub(4)?);
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    if len > body.len() {
        return None;
    }
    let (encoded, pad) = body.split_at(len);
    if !all_zero(pad) {
        return None;
    }
    EvmTx::decode_as(auth, encoded).ok()
}

/// An EVM request's result: the receipt's status as one byte (0 success, 1
/// reverted, 2 out of gas, 3 other halt, 4 invalid, 5 gas limit above the maximum,
/// 6 batch gas budget exhausted, 7 bad signature, 8 priority fee above the max fee,
/// 9 max fee below the base fee, 10 insufficient funds for gas limit × max fee +
/// value), then the gas used (8 bytes, big-endian).
pub fn encode_evm_result(receipt: &EvmReceipt) -> Bytes {
    let status: u8 = match receipt.status {
        EvmStatus::Success => 0,
        EvmStatus::Reverted => 1,
        EvmStatus::OutOfGas => 2,
        EvmStatus::Halted(_) => 3,
        EvmStatus::Invalid(_) => 4,
        EvmStatus::GasLimitAboveMax => 5,
        EvmStatus::BatchGasBudgetExhausted => 6,
        EvmStatus::BadSignature(_) => 7,
        EvmStatus::PriorityFeeAboveMaxFee => 8,
        EvmStatus::MaxFeeBelowBaseFee => 9,
        EvmStatus::InsufficientFunds => 10,
    };
    let mut out = Vec::with_capacity(9);
    out.push(status);
    out.extend_from_slice(&receipt.gas_used.to_be_bytes());
    Bytes::from(out)
}

/// Whether an EVM result says success; `None` if it is not a result at all.
pub fn evm_result_succeeded(result: &[u8]) -> Option<bool> {
    match result {
        [status @ 0..=10, gas @ ..] if gas.len() == 8 => Some(*status == 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_results_say_success_or_not_and_junk_is_no_result() {
        let ok = encode_evm_result(&EvmReceipt {
            status: EvmStatus::Success,
            gas_used: 71_148,
            fee: 71_148,
            tip: 0,
            logs: Vec::new(),
            output: Vec::new(),
        });
        assert_eq!(ok.len(), 9);
        assert_eq!(evm_result_succeeded(&ok), Some(true));
        let refused = encode_evm_result(&EvmReceipt::refused(EvmStatus::BatchGasBudgetExhausted));
        assert_eq!(evm_result_succeeded(&refused), Some(false));
        assert_eq!(evm_result_succeeded(b""), None);
        let bad = encode_evm_result(&EvmReceipt::refused(EvmStatus::BadSignature("s".into())));
        assert_eq!(evm_result_succeeded(&bad), Some(false));
        let fees = encode_evm_result(&EvmReceipt::refused(EvmStatus::MaxFeeBelowBaseFee));
        assert_eq!(evm_result_succeeded(&fees), Some(false));
        let poor = encode_evm_result(&EvmReceipt::refused(EvmStatus::InsufficientFunds));
        assert_eq!(poor[0], 10);
        assert_eq!(evm_result_succeeded(&poor), Some(false));
        assert_eq!(evm_result_succeeded(&[11; 9]), None);
        assert_eq!(evm_result_succeeded(&ok[..8]), None);
    }
    use tandem_executor::{WorkloadKind, WorkloadSpec};

    #[test]
    fn padded_payloads_decode_and_anything_else_does_not() {
        let spec = WorkloadSpec::new(WorkloadKind::Transfer);
        let tx = spec.generator(0, 1).unwrap().next_transaction();
        let plain = encode_payload(&tx, 0);
        let padded = encode_payload(&tx, 512);
        assert_eq!(padded.len(), 512);
        assert!(plain.len() < 512);
        assert_eq!(decode_payload(&plain), Some(tx.clone()));
        assert_eq!(decode_payload(&padded), Some(tx));
        let mut dirty = padded.to_vec();
        *dirty.last_mut().unwrap() = 1;
        assert_eq!(decode_payload(&dirty), None);
        assert_eq!(decode_payload(b"garbage"), None);
        assert_eq!(decode_payload(&plain[..plain.len() - 1]), None);
    }
}

#[cfg(test)]
mod evm_padding_tests {
    use super::*;
    use proptest::prelude::*;
    use tandem_executor::evm::{
        AccessListEntry, EvmWorkloadKind, EvmWorkloadSpec, MAX_EVM_TX_BYTES,
    };

    /// Transactions of every workload, unsigned and signed (legacy and EIP-1559),
    /// with and without an access list (the empty one included).
    fn transactions() -> Vec<(EvmAuth, EvmTx)> {
        let mut out = Vec::new();
        for kind in [EvmWorkloadKind::EvmTransfer, EvmWorkloadKind::Uniswap] {
            let spec = EvmWorkloadSpec {
                accounts: 8,
                ..EvmWorkloadSpec::new(kind)
            };
            for auth in [EvmAuth::Channel, EvmAuth::Secp256k1] {
                let accounts = spec.accounts_for(auth);
                let (genesis, deployment) = spec.genesis_with(&accounts).unwrap();
                let mut generator = spec
                    .generator_with(&genesis, &deployment, &accounts)
                    .unwrap();
                for (i, tx) in generator.batch(6).into_iter().enumerate() {
                    let tx = match i % 3 {
                        0 => tx,
                        1 => tx.with_access_list(vec![]),
                        _ => tx.with_access_list(vec![AccessListEntry {
                            address: [3; 20],
                            slots: vec![[4; 32]],
                        }]),
                    };
                    out.push((
                        auth,
                        accounts.sign(tx, tandem_executor::evm::CHAIN_ID).unwrap(),
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn padded_evm_payloads_decode_to_the_transaction_and_junk_does_not() {
        for (auth, tx) in transactions() {
            let plain = encode_evm_payload(&tx, 0);
            assert_eq!(plain, tx.encode().unwrap());
            assert_eq!(decode_evm_payload_as(auth, &plain), Some(tx.clone()));
            for pad_to in [1, plain.len(), plain.len() + 2, 512, 4096, usize::MAX] {
                let padded = encode_evm_payload(&tx, pad_to);
                let want = if pad_to <= plain.len() {
                    plain.len()
                } else {
                    pad_to.min(MAX_EVM_PAYLOAD_BYTES).max(plain.len() + 4)
                };
                assert_eq!(padded.len(), want, "{pad_to}");
                assert_eq!(
                    decode_evm_payload_as(auth, &padded),
                    Some(tx.clone()),
                    "{pad_to}"
                );
                if padded.len() > plain.len() {
                    assert_eq!(&padded[..plain.len()], &plain[..]);
                    // Not the transaction as a whole (the plain form then a zero is
                    // the empty-list form: the length tells them apart).
                    assert!(EvmTx::decode_as(auth, &padded).is_err());
                    // A non-zero pad byte, a wrong length, a cut: refused.
                    let mut dirty = padded.to_vec();
                    if padded.len() > plain.len() + 4 {
                        dirty[plain.len()] = 1;
                        assert_eq!(decode_evm_payload_as(auth, &dirty), None);
                    }
                    let mut wrong = padded.to_vec();
                    let n = wrong.len();
                    wrong[n - 1] ^= 1;
                    assert_ne!(decode_evm_payload_as(auth, &wrong), Some(tx.clone()));
                    assert_eq!(decode_evm_payload_as(auth, &padded[..n - 1]), None);
                }
            }
        }
        // Longer than the bound: refused, padded or not.
        assert_eq!(decode_evm_payload(&vec![0; MAX_EVM_TX_BYTES + 1]), None);
        assert_eq!(decode_evm_payload(b""), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn junk_evm_payloads_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            len in any::<u32>(),
        ) {
            let mut framed = bytes.clone();
            framed.extend_from_slice(&len.to_be_bytes());
            for auth in [EvmAuth::Channel, EvmAuth::Secp256k1] {
                for p in [&bytes, &framed] {
                    if let Some(tx) = decode_evm_payload_as(auth, p) {
                        // Whatever decodes is one encoding, possibly padded.
                        let plain = tx.encode().unwrap();
                        prop_assert!(p.starts_with(&plain));
                    }
                }
            }
        }
    }
}
