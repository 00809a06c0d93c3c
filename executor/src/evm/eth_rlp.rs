//! Ethereum's wire form of a signed transaction and its signing hash (issue 15
//! item 5), as Ethereum computes them, over RLP (`alloy-rlp`):
//!
//! - **Legacy, EIP-155** (a transaction without an access list): the signed form is
//!   `rlp([nonce, gasPrice, gasLimit, to, value, data, v, r, s])` with
//!   `v = chainId * 2 + 35 + yParity`; the signing hash is
//!   `keccak256(rlp([nonce, gasPrice, gasLimit, to, value, data, chainId, 0, 0]))`.
//!   Pre-EIP-155 `v` (27, 28: no chain id, replayable on any chain) is refused.
//! - **EIP-2930, type 1** (with an access list, possibly empty): the signed form is
//!   `0x01 ‖ rlp([chainId, nonce, gasPrice, gasLimit, to, value, data, accessList,
//!   yParity, r, s])`; the signing hash is `keccak256(0x01 ‖ rlp([chainId, nonce,
//!   gasPrice, gasLimit, to, value, data, accessList]))`, the access list being
//!   `[[address, [storageKey, …]], …]`.
//! - **EIP-1559, type 2** (fee caps instead of a gas price): the signed form is
//!   `0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gasLimit, to,
//!   value, data, accessList, yParity, r, s])`; the signing hash is
//!   `keccak256(0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas,
//!   gasLimit, to, value, data, accessList]))`. An empty access list decodes as
//!   none (`access_list: None`), and none encodes as the empty list, so the bytes
//!   still round-trip exactly.
//!
//! `to` is the empty string for a contract creation, else 20 bytes; integers are
//! big-endian without leading zeros. Decoding is strict, so every byte string
//! decodes to at most one transaction and it encodes back to exactly those bytes:
//! alloy-rlp refuses non-canonical headers, single bytes wrapped in a string header
//! and integers with leading zeros; here the lists must be consumed exactly, no
//! byte may follow, `yParity` is 0 or 1, and at most `MAX_EVM_TX_BYTES` are read.
//! The signature's validity (r, s in range, low s, recovery) is not checked here
//! (`sender_recovery.rs`).

use alloy_rlp::{Decodable, Encodable, Header};
use revm::primitives::{Address, B256, U256, keccak256};

use super::tx::{AccessListEntry, Eip1559Fees, MAX_EVM_TX_BYTES};

/// Why bytes are not a signed Ethereum transaction of the forms above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthTxError {
    #[error("longer than {MAX_EVM_TX_BYTES} bytes")]
    TooLong,
    #[error("RLP: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    #[error("transaction type {0:#04x} (only legacy EIP-155, EIP-2930 type 1 and EIP-1559 type 2)")]
    UnsupportedType(u8),
    #[error("bytes after the transaction")]
    Trailing,
    #[error("v = {0}: not EIP-155 (chain id missing or out of range)")]
    NotEip155(u128),
    #[error("y parity {0} (must be 0 or 1)")]
    YParity(u8),
}

/// The fields a signature covers, borrowed from the transaction.
#[derive(Clone, Copy, Debug)]
pub(super) struct EthFields<'a> {
    pub chain_id: u64,
    pub nonce: u64,
    /// Wei per gas of a legacy or type-1 transaction; unused by a type-2 one.
    pub gas_price: u128,
    pub gas_limit: u64,
    pub to: Option<&'a [u8; 20]>,
    pub value: &'a [u8; 32],
    pub data: &'a [u8],
    /// Without `fees`: `Some`, a type-1 transaction with this list; `None`,
    /// legacy. With `fees`: the type-2 transaction's list (`None`: empty).
    pub access_list: Option<&'a [AccessListEntry]>,
    /// `Some`: an EIP-1559 type-2 transaction with these fee caps.
    pub fees: Option<Eip1559Fees>,
}

/// An ECDSA signature as Ethereum carries it (validity unchecked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct EthSig {
    pub y_parity: bool,
    pub r: [u8; 32],
    pub s: [u8; 32],
}

/// A decoded signed transaction: owned fields and the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DecodedEthTx {
    pub chain_id: u64,
    pub nonce: u64,
    pub gas_price: u128,
    pub gas_limit: u64,
    pub to: Option<[u8; 20]>,
    pub value: [u8; 32],
    pub data: Vec<u8>,
    pub access_list: Option<Vec<AccessListEntry>>,
    pub fees: Option<Eip1559Fees>,
    pub sig: EthSig,
}

const TYPE_2930: u8 = 0x01;
const TYPE_1559: u8 = 0x02;

impl EthFields<'_> {
    /// The hash the sender signs (see the module docs).
    pub fn signing_hash(&self) -> [u8; 32] {
        let mut out = Vec::with_capacity(self.data.len() + 128);
        let mut payload = Vec::with_capacity(self.data.len() + 96);
        match self.tx_type() {
            None => {
                self.common(&mut payload);
                self.chain_id.encode(&mut payload);
                0u8.encode(&mut payload);
                0u8.encode(&mut payload);
            }
            Some(tx_type) => {
                out.push(tx_type);
                self.chain_id.encode(&mut payload);
                self.common(&mut payload);
                self.encode_access_list(&mut payload);
            }
        }
        list(&payload, &mut out);
        keccak256(&out).0
    }

    /// The signed transaction's bytes (see the module docs).
    pub fn encode_signed(&self, sig: &EthSig) -> Vec<u8> {
        let mut payload = Vec::with_capacity(self.data.len() + 160);
        let mut out = Vec::with_capacity(self.data.len() + 168);
        match self.tx_type() {
            None => {
                self.common(&mut payload);
                let v = u128::from(self.chain_id) * 2 + 35 + u128::from(sig.y_parity);
                v.encode(&mut payload);
            }
            Some(tx_type) => {
                out.push(tx_type);
                self.chain_id.encode(&mut payload);
                self.common(&mut payload);
                self.encode_access_list(&mut payload);
                sig.y_parity.encode(&mut payload);
            }
        }
        U256::from_be_bytes(sig.r).encode(&mut payload);
        U256::from_be_bytes(sig.s).encode(&mut payload);
        list(&payload, &mut out);
        out
    }

    /// The type byte of a typed transaction (1 or 2); `None` for legacy.
    fn tx_type(&self) -> Option<u8> {
        match (&self.fees, &self.access_list) {
            (Some(_), _) => Some(TYPE_1559),
            (None, Some(_)) => Some(TYPE_2930),
            (None, None) => None,
        }
    }

    /// nonce, gasPrice (type 2: maxPriorityFeePerGas, maxFeePerGas), gasLimit, to,
    /// value, data.
    fn common(&self, out: &mut Vec<u8>) {
        self.nonce.encode(out);
        match &self.fees {
            None => self.gas_price.encode(out),
            Some(fees) => {
                fees.max_priority_fee_per_gas.encode(out);
                fees.max_fee_per_gas.encode(out);
            }
        }
        self.gas_limit.encode(out);
        match self.to {
            Some(to) => Address::new(*to).encode(out),
            None => out.push(alloy_rlp::EMPTY_STRING_CODE),
        }
        U256::from_be_bytes(*self.value).encode(out);
        self.data.encode(out);
    }

    fn encode_access_list(&self, out: &mut Vec<u8>) {
        let mut entries = Vec::new();
        for entry in self.access_list.unwrap_or_default() {
            let mut item = Vec::with_capacity(24 + 33 * entry.slots.len());
            Address::new(entry.address).encode(&mut item);
            let mut slots = Vec::with_capacity(33 * entry.slots.len());
            for slot in &entry.slots {
                B256::new(*slot).encode(&mut slots);
            }
            list(&slots, &mut item);
            list(&item, &mut entries);
        }
        list(&entries, out);
    }
}

/// Appends a list header for `payload`, then `payload`.
fn list(payload: &[u8], out: &mut Vec<u8>) {
    Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(out);
    out.extend_from_slice(payload);
}

/// Decodes a signed transaction of any of the three forms (see the module docs).
pub(super) fn decode_signed(bytes: &[u8]) -> Result<DecodedEthTx, EthTxError> {
    if bytes.len() > MAX_EVM_TX_BYTES {
        return Err(EthTxError::TooLong);
    }
    let (tx_type, mut buf) = match bytes.first() {
        Some(&b @ (TYPE_2930 | TYPE_1559)) => (Some(b), &bytes[1..]),
        Some(&b) if b < alloy_rlp::EMPTY_LIST_CODE => return Err(EthTxError::UnsupportedType(b)),
        _ => (None, bytes),
    };
    let mut payload = Header::decode_bytes(&mut buf, true)?;
    if !buf.is_empty() {
        return Err(EthTxError::Trailing);
    }
    let total = payload.len();
    let p = &mut payload;
    let chain_id = match tx_type {
        Some(_) => Some(u64::decode(p)?),
        None => None,
    };
    let nonce = u64::decode(p)?;
    let (gas_price, fees) = if tx_type == Some(TYPE_1559) {
        let max_priority_fee_per_gas = u128::decode(p)?;
        let max_fee_per_gas = u128::decode(p)?;
        let fees = Eip1559Fees {
            max_fee_per_gas,
            max_priority_fee_per_gas,
        };
        (0, Some(fees))
    } else {
        (u128::decode(p)?, None)
    };
    let gas_limit = u64::decode(p)?;
    let to = if p.first() == Some(&alloy_rlp::EMPTY_STRING_CODE) {
        *p = &p[1..];
        None
    } else {
        Some(Address::decode(p)?.into_array())
    };
    let value = U256::decode(p)?.to_be_bytes::<32>();
    let data = Header::decode_bytes(p, false)?.to_vec();
    let (chain_id, access_list, y_parity) = match chain_id {
        Some(chain_id) => {
            let list = decode_access_list(p)?;
            let parity = u8::decode(p)?;
            if parity > 1 {
                return Err(EthTxError::YParity(parity));
            }
            // Type 2's empty list is no list (see the module docs).
            let list = (fees.is_none() || !list.is_empty()).then_some(list);
            (chain_id, list, parity == 1)
        }
        None => {
            let v = u128::decode(p)?;
            let chain_id = v
                .checked_sub(35)
                .map(|c| c / 2)
                .and_then(|c| u64::try_from(c).ok())
                .ok_or(EthTxError::NotEip155(v))?;
            (chain_id, None, (v - 35) % 2 == 1)
        }
    };
    let r = U256::decode(p)?.to_be_bytes::<32>();
    let s = U256::decode(p)?.to_be_bytes::<32>();
    if !p.is_empty() {
        return Err(EthTxError::Rlp(alloy_rlp::Error::ListLengthMismatch {
            expected: total - p.len(),
            got: total,
        }));
    }
    Ok(DecodedEthTx {
        chain_id,
        nonce,
        gas_price,
        gas_limit,
        to,
        value,
        data,
        access_list,
        fees,
        sig: EthSig { y_parity, r, s },
    })
}

fn decode_access_list(buf: &mut &[u8]) -> Result<Vec<AccessListEntry>, EthTxError> {
    let mut entries = Header::decode_bytes(buf, true)?;
    let mut list = Vec::new();
    while !entries.is_empty() {
        let mut item = Header::decode_bytes(&mut entries, true)?;
        let address = Address::decode(&mut item)?.into_array();
        let mut keys = Header::decode_bytes(&mut item, true)?;
        if !item.is_empty() {
            return Err(EthTxError::Trailing);
        }
        let mut slots = Vec::new();
        while !keys.is_empty() {
            slots.push(B256::decode(&mut keys)?.0);
        }
        list.push(AccessListEntry { address, slots });
    }
    Ok(list)
}

#[cfg(test)]
impl DecodedEthTx {
    /// The fields as `EthFields` (to re-encode or hash them).
    pub fn fields(&self) -> EthFields<'_> {
        EthFields {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_price: self.gas_price,
            gas_limit: self.gas_limit,
            to: self.to.as_ref(),
            value: &self.value,
            data: &self.data,
            access_list: self.access_list.as_deref(),
            fees: self.fees,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn word(s: &str) -> [u8; 32] {
        hex(s).try_into().unwrap()
    }

    /// The example of EIP-155's text: nonce 9, gas price 20 gwei, gas 21000, to
    /// 0x3535…35, 1 ether, chain id 1, key 0x4646…46.
    const EIP155_SIGNED: &str = "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83";

    #[test]
    fn eip155_example_signing_hash_and_signed_bytes() {
        let value = U256::from(10u64).pow(U256::from(18u64)).to_be_bytes::<32>();
        let fields = EthFields {
            chain_id: 1,
            nonce: 9,
            gas_price: 20_000_000_000,
            gas_limit: 21_000,
            to: Some(&[0x35; 20]),
            value: &value,
            data: &[],
            access_list: None,
            fees: None,
        };
        assert_eq!(
            fields.signing_hash(),
            word("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53")
        );
        let sig = EthSig {
            y_parity: false,
            r: word("28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276"),
            s: word("67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"),
        };
        let signed = fields.encode_signed(&sig);
        assert_eq!(signed, hex(EIP155_SIGNED));
        let decoded = decode_signed(&signed).unwrap();
        assert_eq!(decoded.sig, sig);
        assert_eq!(decoded.chain_id, 1);
        assert_eq!(decoded.fields().signing_hash(), fields.signing_hash());
        assert_eq!(decoded.fields().encode_signed(&decoded.sig), signed);
    }

    #[test]
    fn type_1_round_trips_and_its_list_is_signed() {
        let list = vec![AccessListEntry {
            address: [7; 20],
            slots: vec![[1; 32], [0; 32]],
        }];
        let value = [0; 32];
        let mut fields = EthFields {
            chain_id: 0x7a4d,
            nonce: 0,
            gas_price: 0,
            gas_limit: 100_000,
            to: None,
            value: &value,
            data: &[0x60, 0x00],
            access_list: Some(&list),
            fees: None,
        };
        let sig = EthSig {
            y_parity: true,
            r: [0x11; 32],
            s: [0x22; 32],
        };
        let bytes = fields.encode_signed(&sig);
        assert_eq!(bytes[0], 1);
        let decoded = decode_signed(&bytes).unwrap();
        assert_eq!(decoded.access_list.as_deref(), Some(&list[..]));
        assert_eq!(decoded.to, None);
        assert_eq!(decoded.fields().encode_signed(&sig), bytes);
        let hash = fields.signing_hash();
        fields.access_list = Some(&[]);
        assert_ne!(fields.signing_hash(), hash);
        fields.access_list = None;
        assert_ne!(fields.signing_hash(), hash);
    }

    fn type_2() -> (Vec<u8>, EthSig) {
        let value = U256::from(5u64).to_be_bytes::<32>();
        let fields = EthFields {
            chain_id: 0x7a4d,
            nonce: 3,
            gas_price: 0,
            gas_limit: 60_000,
            to: Some(&[0x42; 20]),
            value: &value,
            data: &[0xa9, 0x05, 0x9c, 0xbb],
            access_list: None,
            fees: Some(Eip1559Fees {
                max_fee_per_gas: 30_000_000_000,
                max_priority_fee_per_gas: 1,
            }),
        };
        let sig = EthSig {
            y_parity: false,
            r: [0x33; 32],
            s: [0x44; 32],
        };
        (fields.encode_signed(&sig), sig)
    }

    #[test]
    fn type_2_round_trips_and_its_fees_and_list_are_signed() {
        let (bytes, sig) = type_2();
        assert_eq!(bytes[0], 2);
        let decoded = decode_signed(&bytes).unwrap();
        assert_eq!(decoded.sig, sig);
        assert_eq!(decoded.gas_price, 0);
        assert_eq!(decoded.access_list, None);
        assert_eq!(decoded.fields().encode_signed(&sig), bytes);
        let mut fields = decoded.fields();
        let hash = fields.signing_hash();
        // The empty list and no list are the same transaction.
        fields.access_list = Some(&[]);
        assert_eq!(fields.signing_hash(), hash);
        assert_eq!(fields.encode_signed(&sig), bytes);
        let list = [AccessListEntry {
            address: [7; 20],
            slots: vec![[1; 32]],
        }];
        fields.access_list = Some(&list);
        assert_ne!(fields.signing_hash(), hash);
        let listed = fields.encode_signed(&sig);
        assert_eq!(
            decode_signed(&listed).unwrap().access_list.as_deref(),
            Some(&list[..])
        );
        // Either fee cap, or the type, changes the hash.
        for fees in [
            Eip1559Fees {
                max_fee_per_gas: 30_000_000_001,
                max_priority_fee_per_gas: 1,
            },
            Eip1559Fees {
                max_fee_per_gas: 30_000_000_000,
                max_priority_fee_per_gas: 2,
            },
            // The two caps swapped.
            Eip1559Fees {
                max_fee_per_gas: 1,
                max_priority_fee_per_gas: 30_000_000_000,
            },
        ] {
            let mut other = decoded.fields();
            other.fees = Some(fees);
            assert_ne!(other.signing_hash(), hash);
        }
        let mut type_1 = decoded.fields();
        type_1.fees = None;
        type_1.access_list = Some(&[]);
        assert_ne!(type_1.signing_hash(), hash);
        // Truncated, trailing, a y parity of 2.
        assert!(decode_signed(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0x80);
        assert_eq!(decode_signed(&longer), Err(EthTxError::Trailing));
        let at_parity = bytes.len() - 2 * 33 - 1;
        assert_eq!(bytes[at_parity], 0x80);
        let mut parity = bytes.clone();
        parity[at_parity] = 2;
        assert_eq!(decode_signed(&parity), Err(EthTxError::YParity(2)));
    }

    #[test]
    fn non_canonical_and_pre_eip155_bytes_are_refused() {
        let signed = hex(EIP155_SIGNED);
        // A trailing byte, a truncation.
        let mut longer = signed.clone();
        longer.push(0);
        assert_eq!(decode_signed(&longer), Err(EthTxError::Trailing));
        assert!(decode_signed(&signed[..signed.len() - 1]).is_err());
        // The nonce 9 written as the string 0x81 0x09 (non-canonical single byte).
        let mut wrapped = signed.clone();
        wrapped.splice(2..3, [0x81, 0x09]);
        wrapped[1] += 1;
        assert!(decode_signed(&wrapped).is_err());
        // v = 27 (no chain id).
        let at_v = signed.len() - 2 * 33 - 1;
        assert_eq!(signed[at_v], 0x25);
        let mut old = signed.clone();
        old[at_v] = 27;
        assert_eq!(decode_signed(&old), Err(EthTxError::NotEip155(27)));
        // Unknown type bytes (EIP-4844's blob type among them); an empty type 2.
        for t in [0x00, 0x03, 0x04, 0x7f] {
            assert_eq!(
                decode_signed(&[t, 0xc0]),
                Err(EthTxError::UnsupportedType(t))
            );
        }
        assert!(decode_signed(&[0x02, 0xc0]).is_err());
        assert!(decode_signed(&[]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn junk_never_panics_and_what_decodes_re_encodes_exactly(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            cut in any::<prop::sample::Index>(),
            flip in any::<u8>(),
        ) {
            if let Ok(tx) = decode_signed(&bytes) {
                prop_assert_eq!(tx.fields().encode_signed(&tx.sig), bytes.clone());
            }
            // Mutations of a valid transaction (legacy, or type 2 on odd flips).
            let mut signed = if flip % 2 == 0 { hex(EIP155_SIGNED) } else { type_2().0 };
            let i = cut.index(signed.len());
            signed[i] ^= flip;
            if let Ok(tx) = decode_signed(&signed) {
                prop_assert_eq!(tx.fields().encode_signed(&tx.sig), signed.clone());
            }
            signed.truncate(i);
            if let Ok(tx) = decode_signed(&signed) {
                prop_assert_eq!(tx.fields().encode_signed(&tx.sig), signed);
            }
        }
    }
}
