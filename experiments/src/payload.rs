//! The request payload of the ledger application, shared by the load client that
//! builds it and the replica that executes it: a bincode [`Transaction`]
//! (`tandem-executor`'s encoding, at most `MAX_TX_BYTES`), optionally followed by zero
//! bytes that model larger transactions.

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
    payload[used..].iter().all(|b| *b == 0).then_some(tx)
}

/// Encodes an EVM transaction as a request payload (`vm = "evm"`): its bincode
/// form, or a signed transaction's Ethereum bytes (`EvmTx::encode`), unpadded.
pub fn encode_evm_payload(tx: &EvmTx) -> Bytes {
    Bytes::from(tx.encode().expect("generated transactions encode"))
}

/// Decodes an EVM request payload (exactly one `EvmTx`, nothing after it).
pub fn decode_evm_payload(payload: &[u8]) -> Option<EvmTx> {
    EvmTx::decode(payload).ok()
}

/// Decodes an EVM request payload under the cluster's `evm_auth`: an unsigned
/// `EvmTx` (channel) or a signed one, Ethereum's bytes (secp256k1), never the
/// other form.
pub fn decode_evm_payload_as(auth: EvmAuth, payload: &[u8]) -> Option<EvmTx> {
    EvmTx::decode_as(auth, payload).ok()
}

/// An EVM request's result: the receipt's status as one byte (0 success, 1
/// reverted, 2 out of gas, 3 other halt, 4 invalid, 5 gas limit above the maximum,
/// 6 batch gas budget exhausted, 7 bad signature, 8 priority fee above the max fee,
/// 9 max fee below the base fee), then the gas used (8 bytes, big-endian).
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
    };
    let mut out = Vec::with_capacity(9);
    out.push(status);
    out.extend_from_slice(&receipt.gas_used.to_be_bytes());
    Bytes::from(out)
}

/// Whether an EVM result says success; `None` if it is not a result at all.
pub fn evm_result_succeeded(result: &[u8]) -> Option<bool> {
    match result {
        [status @ 0..=9, gas @ ..] if gas.len() == 8 => Some(*status == 0),
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
        assert_eq!(evm_result_succeeded(&[10; 9]), None);
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
