//! An EVM transaction as Tandem carries it: sender, recipient (none = contract
//! creation), value in wei, nonce, gas limit, calldata and what it pays for gas:
//! a legacy or type-1 transaction its gas price (`gas_price`, 0 by default), an
//! EIP-1559 (type-2) transaction the fee caps its sender signed
//! ([`Eip1559Fees`]); admission checks either against the block's base fee, and
//! the sender pays gas used × effective gas price (`execute.rs`). Two ways to authenticate the sender (`EvmAuth`, issue 15 item
//! 5): *channel*, where `from` is trusted because the client's channel is
//! authenticated, as for the ledger's unsigned transactions; or *secp256k1*, an
//! Ethereum signature ([`EvmSignature`]) from which the sender is recovered before
//! execution (`sender_recovery.rs`), and `from` is not used (it is all zeros).
//!
//! An optional EIP-2930 access list (addresses and storage slots the transaction
//! declares it touches) makes it a type-1 transaction for revm (intrinsic gas for
//! the list, its entries warm) and lets the access-list executor schedule it
//! (`vm.rs`, `EvmVm::declare`).
//!
//! Encoding: bincode 2, standard configuration (varint integers), of the serde
//! struct below field by field: `from` 20 bytes, `to` an option tag then 20 bytes,
//! `value` 32 bytes big-endian, `nonce` and `gas_limit` varints, `data` a varint
//! length then the bytes. A transaction with an access list appends it: a varint
//! count of entries, each an address (20 bytes) and a varint count of 32-byte
//! slots. Without one nothing is appended, so transactions encoded before access
//! lists existed decode unchanged and encode to the same bytes. A transaction
//! that pays for gas (a gas price above 0, or fee caps) appends to the form with
//! a list (its list, or the count 0) whether it has a list (a byte, 0 or 1), its
//! gas price (varint) and its fee caps (an option tag, then max fee and max
//! priority fee, varints). Decoding reads the plain form if it takes all the
//! bytes, else the form with a list, else the priced form; each form is the one
//! before it plus a non-empty suffix, so every byte string decodes to at most one
//! transaction, and the priced form is refused where an earlier form would
//! encode it (no gas price and no caps), for a gas price beside fee caps, and for
//! list entries under "no list", so each transaction encodes back to exactly
//! those bytes (a type-2 transaction's empty list is no list, as in the signed
//! form). Decoding is limited to `MAX_EVM_TX_BYTES` and refuses bytes no form
//! consumes exactly.
//!
//! A signed transaction encodes as Ethereum's signed transaction (`eth_rlp.rs`:
//! legacy EIP-155 without an access list, EIP-2930 type 1 with one, both with
//! their gas price; EIP-1559 type 2 when it has fee caps, with or without a list),
//! decoded by [`EvmTx::decode_signed`]; `decode` keeps reading the unsigned forms
//! only, so each decoder maps a byte string to at most one transaction, and a
//! replica decodes with the one its cluster's `evm_auth` names
//! ([`EvmTx::decode_as`]): under secp256k1 an unsigned transaction, whose `from`
//! nobody vouches for, never decodes.

use revm::context::TxEnv;
use revm::context_interface::transaction::{AccessList, AccessListItem};
use revm::primitives::{Address, B256, Bytes, TxKind, U256};
use serde::{Deserialize, Serialize};

use super::eth_rlp::{self, EthFields, EthSig};
use super::sender_recovery::{EvmAuth, EvmSignature};
use crate::error::Error;

/// Largest encoded EVM transaction accepted (a deployment carries its code).
pub const MAX_EVM_TX_BYTES: usize = 64 * 1024;

/// One entry of an EIP-2930 access list: an address and storage slots of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessListEntry {
    pub address: [u8; 20],
    pub slots: Vec<[u8; 32]>,
}

/// The fee caps of an EIP-1559 (type-2) transaction, wei per gas. Admission refuses
/// a transaction whose priority fee is above its max fee, or whose max fee is below
/// the block's base fee (`EvmConfig::base_fee`); the effective gas price
/// `min(max_fee, base_fee + priority_fee)` is what the GASPRICE opcode returns and
/// what the sender pays per gas used (see `execute.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Eip1559Fees {
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

/// One EVM transaction (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EvmTx {
    /// The sender of a channel-authenticated transaction; zeros and unused when
    /// `signature` is set (use [`EvmTx::sender`]).
    pub from: [u8; 20],
    pub to: Option<[u8; 20]>,
    pub value: [u8; 32],
    pub nonce: u64,
    pub gas_limit: u64,
    pub data: Vec<u8>,
    /// The EIP-2930 access list, if the transaction declares one.
    pub access_list: Option<Vec<AccessListEntry>>,
    /// `Some`: an EIP-1559 (type-2) transaction with these fee caps (and
    /// `access_list`, `None` meaning the empty list); `None`: legacy or type 1,
    /// paying `gas_price`.
    pub eip1559: Option<Eip1559Fees>,
    /// Wei per gas a legacy or type-1 transaction pays (0 for a type-2 one: it
    /// pays by its caps).
    pub gas_price: u128,
    /// The Ethereum signature of a secp256k1-authenticated transaction (`None`:
    /// channel-authenticated). It covers every field above but `from`, the access
    /// list included: attach a list before signing.
    pub signature: Option<EvmSignature>,
}

/// The encoding of a transaction without an access list (the original form).
#[derive(Serialize, Deserialize)]
struct Plain {
    from: [u8; 20],
    to: Option<[u8; 20]>,
    value: [u8; 32],
    nonce: u64,
    gas_limit: u64,
    data: Vec<u8>,
}

/// The encoding of a transaction with an access list: `Plain`, then the list.
/// bincode writes a nested struct's fields in order with nothing around them, so
/// the nesting adds no byte.
#[derive(Serialize, Deserialize)]
struct WithList {
    plain: Plain,
    access_list: Vec<AccessListEntry>,
}

/// The encoding of a transaction that pays for gas: `WithList` (the list, or
/// none: the count 0), then whether it has a list, its gas price and fee caps
/// (max fee, max priority fee).
#[derive(Serialize, Deserialize)]
struct Priced {
    with_list: WithList,
    listed: bool,
    gas_price: u128,
    caps: Option<(u128, u128)>,
}

impl Plain {
    /// The common fields of `tx`.
    fn of(tx: EvmTx) -> Plain {
        Plain {
            from: tx.from,
            to: tx.to,
            value: tx.value,
            nonce: tx.nonce,
            gas_limit: tx.gas_limit,
            data: tx.data,
        }
    }

    /// The unpriced, channel-authenticated transaction of these fields.
    fn into_tx(self, access_list: Option<Vec<AccessListEntry>>) -> EvmTx {
        EvmTx {
            from: self.from,
            to: self.to,
            value: self.value,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            data: self.data,
            access_list,
            eip1559: None,
            gas_price: 0,
            signature: None,
        }
    }
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
            access_list: None,
            eip1559: None,
            gas_price: 0,
            signature: None,
        }
    }

    /// The same transaction paying `price` wei per gas (legacy or type 1: a
    /// type-2 transaction pays by its caps, and keeps a gas price of 0).
    pub fn with_gas_price(mut self, price: u128) -> EvmTx {
        self.gas_price = price;
        self
    }

    /// The same transaction declaring `list` as its EIP-2930 access list.
    pub fn with_access_list(mut self, list: Vec<AccessListEntry>) -> EvmTx {
        self.access_list = Some(list);
        self
    }

    /// The same transaction as an EIP-1559 (type-2) one with these fee caps (it
    /// keeps its access list, if any; its gas price becomes 0).
    pub fn with_eip1559_fees(mut self, fees: Eip1559Fees) -> EvmTx {
        self.eip1559 = Some(fees);
        self.gas_price = 0;
        self
    }

    /// The EIP-2718 type Ethereum gives it: 0 legacy, 1 EIP-2930 (an access list,
    /// no fee caps), 2 EIP-1559 (fee caps).
    pub fn tx_type(&self) -> u8 {
        match (&self.eip1559, &self.access_list) {
            (Some(_), _) => 2,
            (None, Some(_)) => 1,
            (None, None) => 0,
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
            access_list: None,
            eip1559: None,
            gas_price: 0,
            signature: None,
        }
    }

    /// Who sends it: `from`, or for a signed transaction the address recovered
    /// from its signature (memoised; `Address::ZERO` if recovery fails, and then
    /// admission refuses the transaction before it runs: `sender_recovery.rs`).
    pub fn sender(&self) -> Address {
        match &self.signature {
            None => Address::new(self.from),
            Some(_) => self.recover_sender().unwrap_or(Address::ZERO),
        }
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

    /// revm's transaction environment: legacy at its gas price, EIP-2930 with its
    /// access list at its gas price, or EIP-1559 with its fee caps (gas price =
    /// max fee, priority fee) and its list.
    pub(super) fn env(&self, chain_id: u64) -> TxEnv {
        let access_list = match &self.access_list {
            None => AccessList::default(),
            Some(list) => AccessList(
                list.iter()
                    .map(|e| AccessListItem {
                        address: Address::new(e.address),
                        storage_keys: e.slots.iter().map(|s| B256::new(*s)).collect(),
                    })
                    .collect(),
            ),
        };
        let (gas_price, gas_priority_fee) = match &self.eip1559 {
            None => (self.gas_price, None),
            Some(fees) => (fees.max_fee_per_gas, Some(fees.max_priority_fee_per_gas)),
        };
        TxEnv {
            tx_type: self.tx_type(),
            access_list,
            caller: self.sender(),
            gas_limit: self.gas_limit,
            gas_price,
            gas_priority_fee,
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

    /// The fields Ethereum's signature covers, under `chain_id`.
    pub(super) fn eth_fields(&self, chain_id: u64) -> EthFields<'_> {
        EthFields {
            chain_id,
            nonce: self.nonce,
            gas_price: self.gas_price,
            gas_limit: self.gas_limit,
            to: self.to.as_ref(),
            value: &self.value,
            data: &self.data,
            access_list: self.access_list.as_deref(),
            fees: self.eip1559,
        }
    }

    /// The encoding (see the module docs): bincode, or Ethereum's signed form for
    /// a signed transaction.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        if let Some(sig) = &self.signature {
            let eth = EthSig {
                y_parity: sig.y_parity,
                r: sig.r,
                s: sig.s,
            };
            let bytes = self.eth_fields(sig.chain_id).encode_signed(&eth);
            if bytes.len() > MAX_EVM_TX_BYTES {
                return Err(Error::Encode {
                    what: "signed EVM transaction",
                    reason: format!("{} bytes, above {MAX_EVM_TX_BYTES}", bytes.len()),
                });
            }
            return Ok(bytes);
        }
        if self.eip1559.is_some() && self.gas_price != 0 {
            return Err(Error::Encode {
                what: "EVM transaction",
                reason: "a gas price beside EIP-1559 fee caps".into(),
            });
        }
        let config = bincode::config::standard();
        let mut tx = self.clone();
        if tx.gas_price != 0 || tx.eip1559.is_some() {
            // A type-2 transaction's empty list is no list (module docs).
            let listed = match (&tx.access_list, tx.eip1559) {
                (Some(list), Some(_)) => !list.is_empty(),
                (list, _) => list.is_some(),
            };
            let (gas_price, caps) = (
                tx.gas_price,
                tx.eip1559
                    .map(|f| (f.max_fee_per_gas, f.max_priority_fee_per_gas)),
            );
            let access_list = tx.access_list.take().unwrap_or_default();
            return bincode::serde::encode_to_vec(
                Priced {
                    with_list: WithList {
                        plain: Plain::of(tx),
                        access_list,
                    },
                    listed,
                    gas_price,
                    caps,
                },
                config,
            )
            .map_err(|e| Error::Encode {
                what: "EVM transaction",
                reason: e.to_string(),
            });
        }
        let encoded = match tx.access_list.take() {
            None => bincode::serde::encode_to_vec(Plain::of(tx), config),
            Some(access_list) => bincode::serde::encode_to_vec(
                WithList {
                    plain: Plain::of(tx),
                    access_list,
                },
                config,
            ),
        };
        encoded.map_err(|e| Error::Encode {
            what: "EVM transaction",
            reason: e.to_string(),
        })
    }

    /// Decodes `encode`'s output (either form): at most `MAX_EVM_TX_BYTES`, all
    /// of it consumed.
    pub fn decode(bytes: &[u8]) -> Result<EvmTx, Error> {
        const WHAT: &str = "EVM transaction";
        match crate::tx::decode_exact_limited::<Plain, MAX_EVM_TX_BYTES>(bytes, WHAT) {
            Ok(p) => Ok(p.into_tx(None)),
            Err(plain_error) => {
                match crate::tx::decode_exact_limited::<WithList, MAX_EVM_TX_BYTES>(bytes, WHAT) {
                    Ok(w) => Ok(w.plain.into_tx(Some(w.access_list))),
                    Err(_) => match crate::tx::decode_exact_limited::<Priced, MAX_EVM_TX_BYTES>(
                        bytes, WHAT,
                    ) {
                        Ok(p) => EvmTx::from_priced(p),
                        Err(_) => Err(plain_error),
                    },
                }
            }
        }
    }

    /// The transaction of a decoded priced form, refused where it is not canonical
    /// (module docs).
    fn from_priced(p: Priced) -> Result<EvmTx, Error> {
        let fail = |reason: &str| Error::Decode {
            what: "EVM transaction",
            reason: reason.to_string(),
        };
        match (p.gas_price, p.caps) {
            (0, None) => return Err(fail("priced form without a gas price or fee caps")),
            (1.., Some(_)) => return Err(fail("a gas price beside EIP-1559 fee caps")),
            _ => {}
        }
        let list = p.with_list.access_list;
        if !p.listed && !list.is_empty() {
            return Err(fail("access list entries under \"no list\""));
        }
        if p.listed && p.caps.is_some() && list.is_empty() {
            return Err(fail("a type-2 transaction's empty list marked as a list"));
        }
        Ok(EvmTx {
            eip1559: p.caps.map(|(max, priority)| Eip1559Fees {
                max_fee_per_gas: max,
                max_priority_fee_per_gas: priority,
            }),
            gas_price: p.gas_price,
            ..p.with_list.plain.into_tx(p.listed.then_some(list))
        })
    }

    /// Decodes a signed transaction (Ethereum's form: legacy or type 1 with its gas
    /// price, or type 2 with its fee caps; at most `MAX_EVM_TX_BYTES`; see
    /// `eth_rlp.rs`). The signature is not checked here, nor the fees (admission
    /// does).
    pub fn decode_signed(bytes: &[u8]) -> Result<EvmTx, Error> {
        let fail = |reason: String| Error::Decode {
            what: "signed EVM transaction",
            reason,
        };
        let d = eth_rlp::decode_signed(bytes).map_err(|e| fail(e.to_string()))?;
        Ok(EvmTx {
            from: [0; 20],
            to: d.to,
            value: d.value,
            nonce: d.nonce,
            gas_limit: d.gas_limit,
            data: d.data,
            access_list: d.access_list,
            eip1559: d.fees,
            gas_price: d.gas_price,
            signature: Some(EvmSignature::new(
                d.chain_id,
                d.sig.y_parity,
                d.sig.r,
                d.sig.s,
            )),
        })
    }

    /// Decodes with the decoder `auth` names: `decode` (channel) or
    /// `decode_signed` (secp256k1).
    pub fn decode_as(auth: EvmAuth, bytes: &[u8]) -> Result<EvmTx, Error> {
        match auth {
            EvmAuth::Channel => EvmTx::decode(bytes),
            EvmAuth::Secp256k1 => EvmTx::decode_signed(bytes),
        }
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
        // Trailing bytes that are no access list (a count of 5, no entries).
        let mut trailing = bytes.clone();
        trailing.push(5);
        assert!(EvmTx::decode(&trailing).is_err());
        assert!(EvmTx::decode(&bytes[..bytes.len() - 1]).is_err());
        let create = EvmTx::create(Address::with_last_byte(1), 0, 1_000_000, vec![0x60]);
        assert_eq!(EvmTx::decode(&create.encode().unwrap()).unwrap(), create);
        assert_eq!(
            create.created_address(),
            Some(Address::with_last_byte(1).create(0))
        );
    }

    /// The nested wire structs add no byte: the access-list and priced forms
    /// start with the plain form's bytes (what was written before they nested).
    #[test]
    fn evm_tx_wire_forms_extend_the_plain_form() {
        let plain = EvmTx::call(
            Address::with_last_byte(1),
            Address::with_last_byte(2),
            U256::from(7),
            3,
            50_000,
            vec![1, 2],
        );
        let plain_bytes = plain.encode().unwrap();
        let listed = plain.clone().with_access_list(vec![]).encode().unwrap();
        assert_eq!(&listed[..plain_bytes.len()], &plain_bytes[..]);
        assert_eq!(listed.len(), plain_bytes.len() + 1, "the list's count, 0");
        let priced = plain.clone().with_gas_price(5).encode().unwrap();
        assert_eq!(&priced[..plain_bytes.len()], &plain_bytes[..]);
        let config = bincode::config::standard();
        let tail = bincode::serde::encode_to_vec(
            (0u8, false, 5u128, Option::<(u128, u128)>::None),
            config,
        )
        .unwrap();
        assert_eq!(&priced[plain_bytes.len()..], &tail[..]);
    }

    #[test]
    fn evm_tx_access_list_form_round_trips_and_keeps_the_plain_form() {
        let plain = EvmTx::call(
            Address::with_last_byte(1),
            Address::with_last_byte(2),
            U256::ZERO,
            0,
            50_000,
            vec![1, 2],
        );
        let plain_bytes = plain.encode().unwrap();
        for list in [
            vec![],
            vec![AccessListEntry {
                address: [9; 20],
                slots: vec![[1; 32], [2; 32]],
            }],
        ] {
            let listed = plain.clone().with_access_list(list.clone());
            let bytes = listed.encode().unwrap();
            // The plain form, then the entry count and the entries.
            assert_eq!(bytes[..plain_bytes.len()], plain_bytes[..]);
            let entries: usize = list.iter().map(|e| 20 + 1 + 32 * e.slots.len()).sum();
            assert_eq!(bytes.len(), plain_bytes.len() + 1 + entries);
            assert_eq!(EvmTx::decode(&bytes).unwrap(), listed);
            assert_eq!(EvmTx::decode(&bytes).unwrap().encode().unwrap(), bytes);
            if list.is_empty() {
                // Without its count it is the plain transaction.
                assert_eq!(EvmTx::decode(&bytes[..bytes.len() - 1]).unwrap(), plain);
            } else {
                assert!(EvmTx::decode(&bytes[..bytes.len() - 1]).is_err());
            }
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(EvmTx::decode(&trailing).is_err());
        }
        assert_eq!(EvmTx::decode(&plain_bytes).unwrap(), plain);
    }

    /// Transactions that pay for gas take the priced form: a gas price with or
    /// without a list, fee caps with or without one; each decodes to itself and
    /// encodes back to the same bytes (a type-2 transaction's empty list is no
    /// list), the earlier forms are its prefixes, and non-canonical priced bytes
    /// are refused.
    #[test]
    fn evm_tx_priced_form_round_trips_and_is_canonical() {
        let plain = EvmTx::call(
            Address::with_last_byte(1),
            Address::with_last_byte(2),
            U256::from(5u64),
            3,
            50_000,
            vec![7, 8],
        );
        let entry = AccessListEntry {
            address: [9; 20],
            slots: vec![[1; 32]],
        };
        let caps = Eip1559Fees {
            max_fee_per_gas: 3_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
        };
        let priced = [
            plain.clone().with_gas_price(2_000_000_000),
            plain
                .clone()
                .with_access_list(vec![])
                .with_gas_price(u128::MAX),
            plain
                .clone()
                .with_access_list(vec![entry.clone()])
                .with_gas_price(1),
            plain.clone().with_eip1559_fees(caps),
            plain
                .clone()
                .with_access_list(vec![entry.clone()])
                .with_eip1559_fees(caps),
        ];
        let with_list = plain.clone().with_access_list(vec![]).encode().unwrap();
        for tx in &priced {
            let bytes = tx.encode().unwrap();
            assert_eq!(&EvmTx::decode(&bytes).unwrap(), tx);
            assert_eq!(EvmTx::decode(&bytes).unwrap().encode().unwrap(), bytes);
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(EvmTx::decode(&trailing).is_err());
        }
        // A type-2 transaction's empty list encodes as no list.
        let empty = plain
            .clone()
            .with_access_list(vec![])
            .with_eip1559_fees(caps);
        assert_eq!(EvmTx::decode(&empty.encode().unwrap()).unwrap(), priced[3]);
        // The priced form extends the form with a list; its suffix: listed, gas
        // price, caps. Non-canonical suffixes are refused.
        let suffix = |listed: u8, price: u8, caps: &[u8]| {
            let mut b = with_list.clone();
            b.extend_from_slice(&[listed, price]);
            b.extend_from_slice(caps);
            b
        };
        assert_eq!(
            EvmTx::decode(&suffix(0, 9, &[0])).unwrap(),
            plain.clone().with_gas_price(9)
        );
        assert!(
            EvmTx::decode(&suffix(0, 0, &[0])).is_err(),
            "no price, no caps"
        );
        assert!(
            EvmTx::decode(&suffix(0, 9, &[1, 5, 1])).is_err(),
            "price and caps"
        );
        assert!(
            EvmTx::decode(&suffix(1, 0, &[1, 5, 1])).is_err(),
            "type 2, empty list listed"
        );
        assert!(EvmTx::decode(&suffix(2, 9, &[0])).is_err(), "not a bool");
        let unlisted = {
            let mut b = plain
                .clone()
                .with_access_list(vec![entry])
                .encode()
                .unwrap();
            b.extend_from_slice(&[0, 9, 0]);
            b
        };
        assert!(EvmTx::decode(&unlisted).is_err(), "entries under no list");
        assert!(
            plain
                .clone()
                .with_eip1559_fees(caps)
                .with_gas_price(1)
                .encode()
                .is_err()
        );
    }
}
