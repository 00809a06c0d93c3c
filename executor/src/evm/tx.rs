//! An EVM transaction as Tandem carries it: sender, recipient (none = contract
//! creation), value in wei, nonce, gas limit and calldata. Channel-authenticated
//! like the ledger's unsigned transactions (no Ethereum signature yet, issue 15
//! item 5). The gas price is always 0 (see `mod.rs`).
//!
//! Encoding: bincode 2, standard configuration (varint integers), of the serde
//! struct below field by field: `from` 20 bytes, `to` an option tag then 20 bytes,
//! `value` 32 bytes big-endian, `nonce` and `gas_limit` varints, `data` a varint
//! length then the bytes. Decoding is limited to `MAX_EVM_TX_BYTES` and refuses
//! trailing bytes.

use revm::context::TxEnv;
use revm::primitives::{Address, Bytes, TxKind, U256};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Largest encoded EVM transaction accepted (a deployment carries its code).
pub const MAX_EVM_TX_BYTES: usize = 64 * 1024;

/// One EVM transaction (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvmTx {
    pub from: [u8; 20],
    pub to: Option<[u8; 20]>,
    pub value: [u8; 32],
    pub nonce: u64,
    pub gas_limit: u64,
    pub data: Vec<u8>,
}

impl EvmTx {
    /// A call of `to` (or a plain transfer with empty `data`).
    pub fn call(
        from: Address,
        to: Address,
        value: U256,
        nonce: u64,
        gas_limit: u64,
        data: Vec<u8>,
    ) -> EvmTx {
        EvmTx {
            from: from.into_array(),
            to: Some(to.into_array()),
            value: value.to_be_bytes::<32>(),
            nonce,
            gas_limit,
            data,
        }
    }

    /// A contract creation running `init` (deploy bytecode and constructor arguments).
    pub fn create(from: Address, nonce: u64, gas_limit: u64, init: Vec<u8>) -> EvmTx {
        EvmTx {
            from: from.into_array(),
            to: None,
            value: [0; 32],
            nonce,
            gas_limit,
            data: init,
        }
    }

    pub fn sender(&self) -> Address {
        Address::new(self.from)
    }

    pub fn recipient(&self) -> Option<Address> {
        self.to.map(Address::new)
    }

    pub fn value(&self) -> U256 {
        U256::from_be_bytes(self.value)
    }

    /// The address a creation by this transaction deploys to (CREATE: sender, nonce).
    pub fn created_address(&self) -> Option<Address> {
        match self.to {
            None => Some(self.sender().create(self.nonce)),
            Some(_) => None,
        }
    }

    /// revm's transaction environment: a legacy transaction at gas price 0.
    pub(super) fn env(&self, chain_id: u64) -> TxEnv {
        TxEnv {
            caller: self.sender(),
            gas_limit: self.gas_limit,
            gas_price: 0,
            kind: match self.recipient() {
                Some(to) => TxKind::Call(to),
                None => TxKind::Create,
            },
            value: self.value(),
            data: Bytes::from(self.data.clone()),
            nonce: self.nonce,
            chain_id: Some(chain_id),
            ..TxEnv::default()
        }
    }

    /// The bincode encoding (see the module docs).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).map_err(|e| {
            Error::Encode {
                what: "EVM transaction",
                reason: e.to_string(),
            }
        })
    }

    /// Decodes `encode`'s output: at most `MAX_EVM_TX_BYTES`, all of it consumed.
    pub fn decode(bytes: &[u8]) -> Result<EvmTx, Error> {
        crate::tx::decode_exact_limited::<EvmTx, MAX_EVM_TX_BYTES>(bytes, "EVM transaction")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_tx_encoding_round_trips_and_refuses_junk() {
        let tx = EvmTx::call(
            Address::with_last_byte(1),
            Address::with_last_byte(2),
            U256::from(1_000_000u64),
            7,
            50_000,
            vec![0xa9, 0x05, 0x9c, 0xbb, 1, 2, 3],
        );
        let bytes = tx.encode().unwrap();
        // 20 + (1 + 20) + 32 + 1 (nonce) + 3 (gas, varint) + 1 + 7 (data)
        assert_eq!(bytes.len(), 85);
        assert_eq!(EvmTx::decode(&bytes).unwrap(), tx);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(EvmTx::decode(&trailing).is_err());
        assert!(EvmTx::decode(&bytes[..bytes.len() - 1]).is_err());
        let create = EvmTx::create(Address::with_last_byte(1), 0, 1_000_000, vec![0x60]);
        assert_eq!(EvmTx::decode(&create.encode().unwrap()).unwrap(), create);
        assert_eq!(
            create.created_address(),
            Some(Address::with_last_byte(1).create(0))
        );
    }
}
