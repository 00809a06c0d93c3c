//! What travels in transport frames. Replicas exchange PBFT envelopes; clients send
//! batches of requests and receive batches of replies. The launcher (the cluster
//! file's `[control]` identity) uses the same channel for control frames: fault rules
//! to install and status queries, each answered by a [`ControlReply`]. Every frame is
//! one bincode value; decoding is size-limited and rejects trailing bytes.

use anyhow::Result;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tandem_consensus::{Reply, Request};
use tandem_network::FaultRules;

/// A client's frame to a replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientFrame {
    /// Requests, in the order the client issued them.
    Requests(Vec<Request>),
    /// A control command; obeyed only from the launcher's key.
    Control(Box<ControlRequest>),
}

/// A replica's frame to a client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ReplicaFrame {
    /// Replies, each covering the client's requests of one batch.
    Replies(Vec<Reply>),
    /// The answer to a control command (to the launcher only).
    Control(Box<ControlReply>),
}

/// A command from the launcher, numbered so its answer can be matched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Chosen by the launcher, echoed in the reply.
    pub nonce: u64,
    /// What to do.
    pub command: ControlCommand,
}

/// What the launcher can ask of a replica.
// A few control frames per run: the size of `FaultRules` inline costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ControlCommand {
    /// Install these rules in the replica's fault layer, replacing all it had
    /// (`FaultHandle::replace`: unchanged link rules keep their start time). The rules
    /// name every node; the replica applies those whose sender is itself.
    SetFaults(FaultRules),
    /// Report the replica's view and progress.
    Status,
}

/// A replica's answer to a [`ControlRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlReply {
    /// The request's nonce.
    pub nonce: u64,
    /// The replica's state after carrying out the command.
    pub status: ControlStatus,
}

/// A replica's view and progress, as the launcher sees it (e.g. to resolve the target
/// `primary` when a fault fires).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlStatus {
    /// The replica.
    pub replica: u32,
    /// Its current view.
    pub view: u64,
    /// Whether it is running that view (not in a view change).
    pub view_active: bool,
    /// Last sequence number delivered.
    pub last_delivered: u64,
    /// Latest stable checkpoint.
    pub stable: u64,
    /// Link rules (one per directed link) in its fault layer now.
    pub fault_links: u64,
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
        let frame = ClientFrame::Requests(vec![Request::new(
            ClientId(1),
            7,
            Bytes::from_static(b"tx"),
        )]);
        let bytes = encode(&frame).unwrap();
        let Ok(ClientFrame::Requests(reqs)) = decode_client_frame(&bytes, 1 << 20) else {
            panic!("requests decode");
        };
        assert_eq!(reqs[0].number, 7);
        let control = ClientFrame::Control(Box::new(ControlRequest {
            nonce: 3,
            command: ControlCommand::SetFaults(FaultRules {
                isolated: vec![tandem_network::NodeId::Replica(2)],
                ..FaultRules::default()
            }),
        }));
        let Ok(ClientFrame::Control(back)) =
            decode_client_frame(&encode(&control).unwrap(), 1 << 20)
        else {
            panic!("control decodes");
        };
        assert_eq!(back.nonce, 3);
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
