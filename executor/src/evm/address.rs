//! Addresses the EVM workloads use: account `i` is `0x7a…00 ‖ i` (20 bytes, the
//! index big-endian in the last 8), far from the precompiles at `0x01…0x11`; the
//! deployer that creates and seeds the contracts at genesis is its own address.
//! Under secp256k1 authentication account `i` is instead the address of the key
//! `EvmSigningKey::for_account(i)` ([`EvmAccounts`], which also holds the keys).

use std::collections::HashMap;
use std::sync::Arc;

use revm::primitives::Address;

use super::sender_recovery::{EvmAuth, EvmSigningKey};
use super::tx::{Eip1559Fees, EvmTx};
use crate::error::Error;

/// The address that deploys the contracts at genesis and mints their tokens.
pub const DEPLOYER: Address = Address::new([
    0xde, 0xde, 0xde, 0xde, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
]);

/// The fee caps of the workloads' EIP-1559 transactions ([`EvmAccounts::sign`]): a
/// max fee of 3 gwei and a priority fee of 1 gwei, so the effective gas price is
/// 1 gwei at the default base fee 0 and 2 gwei at a base fee of 1 gwei, and the
/// beneficiary gets 1 gwei per gas either way.
pub const WORKLOAD_FEES: Eip1559Fees = Eip1559Fees {
    max_fee_per_gas: 3_000_000_000,
    max_priority_fee_per_gas: 1_000_000_000,
};

/// The gas price of the workloads' legacy and EIP-2930 transactions (every
/// generated transaction carries it; `EvmAccounts::sign` turns half of them
/// into type-2 ones with [`WORKLOAD_FEES`] instead): 2 gwei, which a base fee up
/// to 2 gwei admits.
pub const WORKLOAD_GAS_PRICE: u128 = 2_000_000_000;

/// An address written as 40 hex digits, with or without `0x` (the cluster file's
/// `evm_beneficiary`, `--beneficiary`); `Err` says what is wrong.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "expected an address, 40 hex digits (optional 0x), got `{text}`"
        ));
    }
    let mut bytes = [0u8; 20];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16)
            .map_err(|e| format!("`{text}`: {e}"))?;
    }
    Ok(Address::new(bytes))
}

/// The address of workload account `index`.
pub fn account_address(index: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = 0x7a;
    bytes[12..].copy_from_slice(&index.to_be_bytes());
    Address::new(bytes)
}

/// The workload's accounts `0..count` under an authentication mode: their
/// addresses and, under secp256k1, their signing keys. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct EvmAccounts {
    addresses: Arc<Vec<Address>>,
    /// secp256k1: the keys, and the account index of each address.
    keys: Option<Arc<Keys>>,
}

/// The keys of secp256k1 accounts, and the account index of each address.
#[derive(Debug)]
struct Keys {
    keys: Vec<EvmSigningKey>,
    index: HashMap<Address, u64>,
}

impl EvmAccounts {
    /// Accounts `0..count` under `auth` (secp256k1 derives `count` keys: about
    /// 50 µs each in a release build).
    pub fn new(auth: EvmAuth, count: u64) -> EvmAccounts {
        match auth {
            EvmAuth::Channel => EvmAccounts {
                addresses: Arc::new((0..count).map(account_address).collect()),
                keys: None,
            },
            EvmAuth::Secp256k1 => {
                let keys: Vec<EvmSigningKey> = (0..count).map(EvmSigningKey::for_account).collect();
                let addresses: Vec<Address> = keys.iter().map(EvmSigningKey::address).collect();
                let index = addresses.iter().zip(0..).map(|(a, i)| (*a, i)).collect();
                EvmAccounts {
                    addresses: Arc::new(addresses),
                    keys: Some(Arc::new(Keys { keys, index })),
                }
            }
        }
    }

    pub fn auth(&self) -> EvmAuth {
        match self.keys {
            None => EvmAuth::Channel,
            Some(_) => EvmAuth::Secp256k1,
        }
    }

    pub fn len(&self) -> u64 {
        self.addresses.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The address of account `index` (below `len()`).
    pub fn address(&self, index: u64) -> Address {
        self.addresses[index as usize]
    }

    /// All the addresses, account 0 first.
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// Under secp256k1, `tx` signed for `chain_id` by its sender's key (`from`
    /// must be one of these accounts); under channel, `tx` itself.
    ///
    /// The workloads' mix of transaction types: a transaction with an odd nonce
    /// and no fee caps is signed as an EIP-1559 (type-2) one with
    /// [`WORKLOAD_FEES`], the others as they are (legacy, or type 1 with an access
    /// list), so every signed workload runs both forms half and half.
    pub fn sign(&self, mut tx: EvmTx, chain_id: u64) -> Result<EvmTx, Error> {
        let Some(keys) = &self.keys else {
            return Ok(tx);
        };
        if tx.nonce % 2 == 1 && tx.eip1559.is_none() {
            tx = tx.with_eip1559_fees(WORKLOAD_FEES);
        }
        let from = Address::new(tx.from);
        let Some(&i) = keys.index.get(&from) else {
            return Err(Error::Workload(format!(
                "no signing key for {from}: not one of the workload's accounts"
            )));
        };
        keys.keys[i as usize].sign(tx, chain_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_account_addresses_are_distinct_and_not_the_deployer() {
        assert_ne!(account_address(0), account_address(1));
        assert_ne!(account_address(0), DEPLOYER);
        assert_eq!(account_address(258).as_slice()[18..], [1, 2]);
    }

    #[test]
    fn evm_accounts_sign_as_their_senders() {
        let channel = EvmAccounts::new(EvmAuth::Channel, 3);
        assert_eq!(channel.address(2), account_address(2));
        let signed = EvmAccounts::new(EvmAuth::Secp256k1, 3);
        assert_eq!(signed.auth(), EvmAuth::Secp256k1);
        assert_eq!(signed.address(1), EvmSigningKey::for_account(1).address());
        let tx = EvmTx::call(
            signed.address(2),
            DEPLOYER,
            Default::default(),
            0,
            21_000,
            vec![],
        );
        assert_eq!(channel.sign(tx.clone(), 1).unwrap(), tx);
        let s = signed.sign(tx.clone(), 1).unwrap();
        assert_eq!(s.sender(), signed.address(2));
        assert_eq!(s.tx_type(), 0);
        // Odd nonces are signed as type 2.
        let odd = EvmTx {
            nonce: 1,
            ..tx.clone()
        };
        let s = signed.sign(odd.clone(), 1).unwrap();
        assert_eq!((s.tx_type(), s.eip1559), (2, Some(WORKLOAD_FEES)));
        assert_eq!(s.sender(), signed.address(2));
        assert_eq!(EvmTx::decode_signed(&s.encode().unwrap()).unwrap(), s);
        assert_eq!(channel.sign(odd.clone(), 1).unwrap(), odd);
        let stranger = EvmTx::call(DEPLOYER, DEPLOYER, Default::default(), 0, 21_000, vec![]);
        assert!(signed.sign(stranger, 1).is_err());
    }

    #[test]
    fn addresses_parse_from_40_hex_digits_only() {
        let a = Address::new([0xab; 20]);
        assert_eq!(parse_address(&"ab".repeat(20)), Ok(a));
        assert_eq!(parse_address(&format!("0x{}", "AB".repeat(20))), Ok(a));
        for bad in [
            "",
            "0x",
            &"ab".repeat(19),
            &"ab".repeat(21),
            &format!("{}zz", "ab".repeat(19)),
            "0x+1",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }
}
