//! What travels in transport frames. Replicas exchange PBFT envelopes; clients send
//! batches of requests and receive batches of replies. Every frame is one bincode
//! value; decoding is size-limited and rejects trailing bytes.

use anyhow::Result;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tandem_consensus::{Reply, Request};

/// A client's frame to a replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientFrame {
    /// Requests, in the order the client issued them.
    Requests(Vec<Request>),
}

/// A replica's frame to a client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ReplicaFrame {
    /// Replies, each covering the client's requests of one batch.
    Replies(Vec<Reply>),
}

/// Largest frame the client and reply paths build on purpose, well under the
/// transport's limit.
pub const TARGET_FRAME_BYTES: usize = 1 << 20;

/// Splits `items` into consecutive chunks of about [`TARGET_FRAME_BYTES`] each, as
/// estimated by `size` (every chunk holds at least one item).
pub fn chunks_by_size<T>(items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for item in items {
        let s = size(&item);
        if !current.is_empty() && bytes + s > TARGET_FRAME_BYTES {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += s;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Encodes a frame.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes> {
    Ok(tandem_network::encode(value)?)
}

/// Decodes a client's frame.
pub fn decode_client_frame(frame: &[u8], limit: usize) -> Result<ClientFrame> {
    Ok(tandem_network::decode(frame, limit)?)
}

/// Decodes a replica's frame to a client.
pub fn decode_replica_frame(frame: &[u8], limit: usize) -> Result<ReplicaFrame> {
    Ok(tandem_network::decode(frame, limit)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_consensus::ClientId;

    #[test]
    fn frames_roundtrip_and_garbage_is_an_error() {
        let frame = ClientFrame::Requests(vec![Request {
            client: ClientId(1),
            number: 7,
            payload: Bytes::from_static(b"tx"),
        }]);
        let bytes = encode(&frame).unwrap();
        let ClientFrame::Requests(reqs) = decode_client_frame(&bytes, 1 << 20).unwrap();
        assert_eq!(reqs[0].number, 7);
        assert!(decode_client_frame(b"\xff\xff\xff\xff\xff\xff", 1 << 20).is_err());
        let chunks = chunks_by_size(vec![600_000usize, 600_000, 10, 2_000_000, 5], |n| *n);
        assert_eq!(
            chunks,
            vec![vec![600_000], vec![600_000, 10], vec![2_000_000], vec![5]]
        );
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(decode_client_frame(&trailing, 1 << 20).is_err());
    }
}
