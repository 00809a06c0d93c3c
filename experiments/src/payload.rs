//! The request payload of the ledger application, shared by the load client that
//! builds it and the replica that executes it: a bincode [`Transaction`]
//! (`tandem-executor`'s encoding, at most `MAX_TX_BYTES`), optionally followed by zero
//! bytes that model larger transactions.

use bytes::Bytes;
use tandem_executor::Transaction;

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

#[cfg(test)]
mod tests {
    use super::*;
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
