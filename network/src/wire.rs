//! Tandem's wire format inside a QUIC connection, and its incremental decoder.
//!
//! Each side of a connection opens exactly one unidirectional stream and keeps it for
//! the connection's life. The stream starts with [`STREAM_PREAMBLE`] (8 bytes) and then
//! carries frames: a `u32` little-endian payload length, then the payload. A preamble
//! that does not match, a length over the receiver's maximum frame size, or a stream
//! that ends inside a frame is a [`FrameError`]: the receiver closes the connection with
//! [`CLOSE_BAD_FRAME`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use quinn::VarInt;

/// The first bytes of every stream: "TANDEM", then the wire version (0, 1).
pub const STREAM_PREAMBLE: [u8; 8] = *b"TANDEM\x00\x01";
/// Size of a frame's length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// The default maximum payload size of one frame: 64 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 64 << 20;

/// Connection close code: orderly shutdown of the transport.
pub const CLOSE_SHUTDOWN: VarInt = VarInt::from_u32(0);
/// Connection close code: a newer connection with the same peer took this one's place.
pub const CLOSE_REPLACED: VarInt = VarInt::from_u32(1);
/// Connection close code: the peer sent a bad preamble, an oversize length prefix or a
/// truncated frame.
pub const CLOSE_BAD_FRAME: VarInt = VarInt::from_u32(2);
/// Connection close code: the peer is a member but may not open this connection
/// (a replica dialing a lower-numbered replica; the lower one dials).
pub const CLOSE_WRONG_DIRECTION: VarInt = VarInt::from_u32(3);
/// Connection close code: the peer did not open its stream in time, or ended it.
pub const CLOSE_PROTOCOL: VarInt = VarInt::from_u32(4);

/// Bytes on a stream that break the wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The stream did not start with [`STREAM_PREAMBLE`].
    #[error("stream does not start with the tandem/1 preamble")]
    BadPreamble,
    /// A length prefix over the maximum frame size.
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    Oversize {
        /// The announced length.
        len: usize,
        /// The receiver's maximum.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({buffered} bytes of it received)")]
    Truncated {
        /// Bytes of the unfinished frame (prefix included) that arrived.
        buffered: usize,
    },
}

/// Frames up to this size get their whole buffer reserved when their prefix arrives.
const RESERVE_AHEAD_MAX: usize = 1 << 20;

/// Splits a byte stream into frames, enforcing the maximum frame size.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    buffer: BytesMut,
    max_frame_size: usize,
}

impl FrameDecoder {
    pub fn new(max_frame_size: usize) -> Self {
        Self {
            buffer: BytesMut::with_capacity(64 * 1024),
            max_frame_size,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next complete frame, `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = self.buffer.get(..LENGTH_PREFIX_LEN) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; LENGTH_PREFIX_LEN];
        len_bytes.copy_from_slice(prefix);
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len > self.max_frame_size {
            return Err(FrameError::Oversize {
                len,
                max: self.max_frame_size,
            });
        }
        let needed = LENGTH_PREFIX_LEN + len;
        if self.buffer.len() < needed {
            // Make room for a frame of moderate size at once rather than growing per
            // read; a larger one grows by doubling as its bytes actually arrive, so a
            // bare length prefix cannot make us allocate the maximum frame size.
            if needed <= RESERVE_AHEAD_MAX {
                self.buffer.reserve(needed - self.buffer.len());
            }
            return Ok(None);
        }
        self.buffer.advance(LENGTH_PREFIX_LEN);
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// Checks that the stream ended between frames.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buffer.len(),
            })
        }
    }
}

/// Frames up to this size are copied next to their length prefix (one write for many
/// small frames); larger ones are written from their own buffer, uncopied.
const COPY_THRESHOLD: usize = 8 * 1024;

/// Appends the wire form of `frames` to `chunks`, using `scratch` for length prefixes
/// and small payloads. Returns the payload bytes encoded.
pub(crate) fn encode_frames(
    frames: impl IntoIterator<Item = Bytes>,
    chunks: &mut Vec<Bytes>,
    scratch: &mut BytesMut,
) -> usize {
    let mut payload = 0;
    for frame in frames {
        payload += frame.len();
        // Callers never queue frames over the maximum frame size, itself a u32.
        scratch.put_u32_le(u32::try_from(frame.len()).unwrap_or(u32::MAX));
        if frame.len() <= COPY_THRESHOLD {
            scratch.extend_from_slice(&frame);
        } else {
            chunks.push(scratch.split().freeze());
            chunks.push(frame);
        }
    }
    if !scratch.is_empty() {
        chunks.push(scratch.split().freeze());
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(frames: &[&[u8]]) -> Vec<u8> {
        let mut chunks = Vec::new();
        let mut scratch = BytesMut::new();
        encode_frames(
            frames.iter().map(|f| Bytes::copy_from_slice(f)),
            &mut chunks,
            &mut scratch,
        );
        chunks.concat()
    }

    #[test]
    fn frames_survive_any_split_of_the_stream() {
        let big = vec![7u8; COPY_THRESHOLD + 10];
        let frames: Vec<&[u8]> = vec![b"a", b"", b"hello", &big, b"z"];
        let bytes = wire(&frames);
        for step in [1, 3, 7, 4096, bytes.len()] {
            let mut decoder = FrameDecoder::new(1 << 20);
            let mut out = Vec::new();
            for piece in bytes.chunks(step) {
                decoder.extend(piece);
                while let Some(frame) = decoder.next_frame().expect("valid") {
                    out.push(frame);
                }
            }
            decoder.finish().expect("ends between frames");
            let out: Vec<&[u8]> = out.iter().map(|f| f.as_ref()).collect();
            assert_eq!(out, frames, "step {step}");
        }
    }

    #[test]
    fn oversize_and_truncated_frames_are_errors() {
        let mut decoder = FrameDecoder::new(10);
        decoder.extend(&11u32.to_le_bytes());
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::Oversize { len: 11, max: 10 })
        );

        let mut decoder = FrameDecoder::new(10);
        decoder.extend(&wire(&[b"0123456789"])[..9]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Truncated { buffered: 9 }));

        let mut decoder = FrameDecoder::new(u32::MAX as usize);
        decoder.extend(&u32::MAX.to_le_bytes());
        assert_eq!(
            decoder.next_frame(),
            Ok(None),
            "no allocation of 4 GiB up front"
        );
    }
}
