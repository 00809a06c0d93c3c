//! The message codec: bincode 2.0.1 (serde) with the `standard` configuration, always
//! decoded under a size limit, rejecting trailing bytes.
//!
//! Why the limit matters: without one, bincode trusts a length prefix and allocates
//! before it reads, so a 12-byte input claiming a 2^40-byte string aborts the process.
//! bincode only takes its limit as a const generic, so [`decode`] takes a runtime
//! `limit` and does two things with it: the input must not be longer than `limit`, and
//! the memory the decoder may reserve for claimed lengths is capped by the smallest
//! step of a fixed ladder (4 KiB, 64 KiB, 1 MiB, 16 MiB, 256 MiB, 1 GiB) that is at
//! least `limit` (1 GiB at most). Claims are counted in decoded (in-memory) bytes, which
//! may exceed the wire size, hence the headroom.

use bincode::config::{self, Config};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value the codec could not encode (bincode's own error, e.g. a sequence whose
/// length serde does not know up front).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode message: {0}")]
pub struct EncodeError(#[from] bincode::error::EncodeError);

/// Bytes that are not a valid encoding of the expected type under the given limit.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the limit.
    #[error("input of {len} bytes exceeds the limit of {limit} bytes")]
    InputTooLarge {
        /// Input length.
        len: usize,
        /// The limit passed to [`decode`].
        limit: usize,
    },
    /// bincode rejected the input (truncated, invalid tag, a claimed length over the
    /// limit, bad UTF-8, ...).
    #[error("malformed message: {0}")]
    Malformed(#[from] bincode::error::DecodeError),
    /// A value decoded from a prefix of the input; the rest was left over.
    #[error("{trailing} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were not consumed.
        trailing: usize,
    },
}

/// Encodes `value` with bincode's standard configuration (varint integers, little
/// endian) into a refcounted buffer, ready to send to one or many peers.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, EncodeError> {
    Ok(Bytes::from(bincode::serde::encode_to_vec(
        value,
        config::standard(),
    )?))
}

/// Decodes a whole `bytes` as one `T`, under `limit` (see the module docs); never
/// panics or aborts on malformed input.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::InputTooLarge {
            len: bytes.len(),
            limit,
        });
    }
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    let standard = config::standard();
    match limit {
        0..=4096 => decode_with(bytes, standard.with_limit::<{ 4 * KIB }>()),
        4097..=65536 => decode_with(bytes, standard.with_limit::<{ 64 * KIB }>()),
        65537..=1048576 => decode_with(bytes, standard.with_limit::<MIB>()),
        1048577..=16777216 => decode_with(bytes, standard.with_limit::<{ 16 * MIB }>()),
        16777217..=268435456 => decode_with(bytes, standard.with_limit::<{ 256 * MIB }>()),
        _ => decode_with(bytes, standard.with_limit::<{ 1024 * MIB }>()),
    }
}

fn decode_with<T: DeserializeOwned, C: Config>(bytes: &[u8], config: C) -> Result<T, DecodeError> {
    let (value, consumed) = bincode::serde::decode_from_slice(bytes, config)?;
    if consumed != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            trailing: bytes.len() - consumed,
        });
    }
    Ok(value)
}
