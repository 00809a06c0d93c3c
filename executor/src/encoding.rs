//! The canonical byte encoding of state keys and values, shared by the digest (a
//! Merkle leaf is SHA-256 of `0x00 ‖ key ‖ value`, `merkle.rs`), by snapshots and
//! by snapshot chunks (sequences of `key ‖ value`).
//!
//! Every item starts with a one-byte tag followed by fixed-width big-endian
//! fields, so encodings are self-delimiting and keys sort bytewise in the same
//! order as `Key`'s derived `Ord` (tag = variant order, then fields in order).
//!
//! | key | bytes | value | bytes |
//! |---|---|---|---|
//! | `0` Nonce(account u64) | 9 | `0` Nonce(u64) | 9 |
//! | `1` PublicKey(account u64) | 9 | `1` PublicKey(32 bytes) | 33 |
//! | `2` Balance(account u64, token u32) | 13 | `2` Amount(u128) | 17 |
//! | `3` Pool(pool u32) | 5 | `3` Pool(token0 u32, token1 u32, reserve0, reserve1, lp_supply u128) | 57 |
//! | `4` Lp(pool u32, account u64) | 13 | `4` Market(token u32, collateral_factor_bps u16, total_deposits, total_borrows u128) | 39 |
//! | `5` Market(market u32) | 5 | `5` Position(deposit u128, borrow u128) | 33 |
//! | `6` Position(market u32, account u64) | 13 | | |

use crate::amm::Pool;
use crate::lending::{Market, Position};
use crate::state::{Key, Value};

/// Longest key encoding.
pub(crate) const MAX_KEY_LEN: usize = 13;
/// Longest value encoding.
pub(crate) const MAX_VALUE_LEN: usize = 57;
/// Shortest `key ‖ value` pair (a pool or market id with a nonce-sized value).
pub(crate) const MIN_ENTRY_LEN: usize = 5 + 9;

/// A bounded output buffer for one encoding.
pub(crate) struct Buf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    pub(crate) fn new() -> Self {
        Buf {
            bytes: [0; N],
            len: 0,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub(crate) fn put(&mut self, data: &[u8]) {
        // Callers size N for the longest encoding; `get_mut` keeps this panic-free
        // even if that were ever wrong (the encoding would then be truncated and
        // the digest tests would fail loudly).
        if let Some(dst) = self.bytes.get_mut(self.len..self.len + data.len()) {
            dst.copy_from_slice(data);
            self.len += data.len();
        }
    }
}

/// Appends the canonical encoding of `key`.
pub(crate) fn encode_key<const N: usize>(key: &Key, out: &mut Buf<N>) {
    match *key {
        Key::Nonce(a) => {
            out.put(&[0]);
            out.put(&a.to_be_bytes());
        }
        Key::PublicKey(a) => {
            out.put(&[1]);
            out.put(&a.to_be_bytes());
        }
        Key::Balance(a, t) => {
            out.put(&[2]);
            out.put(&a.to_be_bytes());
            out.put(&t.to_be_bytes());
        }
        Key::Pool(p) => {
            out.put(&[3]);
            out.put(&p.to_be_bytes());
        }
        Key::Lp(p, a) => {
            out.put(&[4]);
            out.put(&p.to_be_bytes());
            out.put(&a.to_be_bytes());
        }
        Key::Market(m) => {
            out.put(&[5]);
            out.put(&m.to_be_bytes());
        }
        Key::Position(m, a) => {
            out.put(&[6]);
            out.put(&m.to_be_bytes());
            out.put(&a.to_be_bytes());
        }
    }
}

/// Appends the canonical encoding of `value`.
pub(crate) fn encode_value<const N: usize>(value: &Value, out: &mut Buf<N>) {
    match value {
        Value::Nonce(n) => {
            out.put(&[0]);
            out.put(&n.to_be_bytes());
        }
        Value::PublicKey(k) => {
            out.put(&[1]);
            out.put(k);
        }
        Value::Amount(a) => {
            out.put(&[2]);
            out.put(&a.to_be_bytes());
        }
        Value::Pool(p) => {
            out.put(&[3]);
            out.put(&p.token0.to_be_bytes());
            out.put(&p.token1.to_be_bytes());
            out.put(&p.reserve0.to_be_bytes());
            out.put(&p.reserve1.to_be_bytes());
            out.put(&p.lp_supply.to_be_bytes());
        }
        Value::Market(m) => {
            out.put(&[4]);
            out.put(&m.token.to_be_bytes());
            out.put(&m.collateral_factor_bps.to_be_bytes());
            out.put(&m.total_deposits.to_be_bytes());
            out.put(&m.total_borrows.to_be_bytes());
        }
        Value::Position(p) => {
            out.put(&[5]);
            out.put(&p.deposit.to_be_bytes());
            out.put(&p.borrow.to_be_bytes());
        }
    }
}

/// A cursor over untrusted bytes: every read is bounds-checked.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Why decoding stopped, and where.
pub(crate) struct DecodeError {
    pub(crate) offset: usize,
    pub(crate) reason: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason,
        }
    }

    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self
            .bytes
            .get(self.pos..self.pos + N)
            .ok_or(self.error("truncated input"))?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.pos += N;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take()?))
    }

    fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_be_bytes(self.take()?))
    }

    pub(crate) fn key(&mut self) -> Result<Key, DecodeError> {
        Ok(match self.u8()? {
            0 => Key::Nonce(self.u64()?),
            1 => Key::PublicKey(self.u64()?),
            2 => Key::Balance(self.u64()?, self.u32()?),
            3 => Key::Pool(self.u32()?),
            4 => Key::Lp(self.u32()?, self.u64()?),
            5 => Key::Market(self.u32()?),
            6 => Key::Position(self.u32()?, self.u64()?),
            _ => {
                self.pos -= 1;
                return Err(self.error("unknown key tag"));
            }
        })
    }

    pub(crate) fn value(&mut self) -> Result<Value, DecodeError> {
        Ok(match self.u8()? {
            0 => Value::Nonce(self.u64()?),
            1 => Value::PublicKey(self.take()?),
            2 => Value::Amount(self.u128()?),
            3 => Value::Pool(Pool {
                token0: self.u32()?,
                token1: self.u32()?,
                reserve0: self.u128()?,
                reserve1: self.u128()?,
                lp_supply: self.u128()?,
            }),
            4 => Value::Market(Market {
                token: self.u32()?,
                collateral_factor_bps: self.u16()?,
                total_deposits: self.u128()?,
                total_borrows: self.u128()?,
            }),
            5 => Value::Position(Position {
                deposit: self.u128()?,
                borrow: self.u128()?,
            }),
            _ => {
                self.pos -= 1;
                return Err(self.error("unknown value tag"));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(key: Key, value: Value) {
        let mut buf = Buf::<{ MAX_KEY_LEN + MAX_VALUE_LEN }>::new();
        encode_key(&key, &mut buf);
        encode_value(&value, &mut buf);
        let mut r = Reader::new(buf.as_slice());
        assert_eq!(r.key().ok(), Some(key));
        assert_eq!(r.value().ok(), Some(value));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(Key::Nonce(u64::MAX), Value::Nonce(7));
        round_trip(Key::PublicKey(3), Value::PublicKey([9; 32]));
        round_trip(Key::Balance(1, 2), Value::Amount(u128::MAX));
        round_trip(
            Key::Pool(4),
            Value::Pool(Pool {
                token0: 1,
                token1: 2,
                reserve0: 3,
                reserve1: 4,
                lp_supply: 5,
            }),
        );
        round_trip(Key::Lp(4, 8), Value::Amount(1));
        round_trip(Key::Market(2), Value::Market(Market::new(3, 7500)));
        round_trip(
            Key::Position(2, 9),
            Value::Position(Position {
                deposit: 1,
                borrow: 2,
            }),
        );
    }

    #[test]
    fn key_bytes_sort_like_keys() {
        let keys = [
            Key::Nonce(1),
            Key::Nonce(256),
            Key::PublicKey(0),
            Key::Balance(1, 9),
            Key::Balance(2, 0),
            Key::Pool(0),
            Key::Lp(0, 5),
            Key::Lp(1, 0),
            Key::Market(3),
            Key::Position(0, u64::MAX),
        ];
        for pair in keys.windows(2) {
            let mut a = Buf::<MAX_KEY_LEN>::new();
            let mut b = Buf::<MAX_KEY_LEN>::new();
            encode_key(&pair[0], &mut a);
            encode_key(&pair[1], &mut b);
            assert!(pair[0] < pair[1]);
            assert!(
                a.as_slice() < b.as_slice(),
                "{:?} vs {:?}",
                pair[0],
                pair[1]
            );
        }
    }
}
