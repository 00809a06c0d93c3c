//! What travels in transport frames. Replicas exchange PBFT envelopes; clients send
//! batches of requests and receive batches of replies. The launcher (the cluster
//! file's `[control]` identity) uses the same channel for control frames: fault rules
//! to install, status queries and pages of the exactly-once table (for the
//! acknowledged-loss check), each answered by a [`ControlReply`]. Every frame is
//! one bincode value; decoding is size-limited and rejects trailing bytes.

use anyhow::Result;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tandem_consensus::exactly_once::DeliveredTable;
use tandem_consensus::{ClientId, Reply, Request};
use tandem_network::FaultRules;

use crate::acknowledged::ExecutedWindow;

/// A client's frame to a replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientFrame {
    /// Requests, in the order the client issued them.
    Requests(Vec<Request>),
    /// A control command; obeyed only from the launcher's key.
    Control(Box<ControlRequest>),
    /// Asks for the sending client's marks in the replica's exactly-once table
    /// (`Event::MarksQuery`): answered with a reply carrying them, at most one per
    /// client per `MARKS_QUERY_INTERVAL`. One byte on the wire.
    MarksQuery,
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
    /// Report one page of the replica's exactly-once table (which request numbers of
    /// which clients it delivered), starting at client `client`, numbers above `after`
    /// for that first client. The answer's [`ControlReply::executed`] says where the
    /// next page starts.
    Executed {
        /// The first client of the page.
        client: u32,
        /// For that client, only numbers above this (0 from the start).
        after: u64,
    },
}

/// A replica's answer to a [`ControlRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlReply {
    /// The request's nonce.
    pub nonce: u64,
    /// The replica's state after carrying out the command.
    pub status: ControlStatus,
    /// The page a [`ControlCommand::Executed`] asked for (`None` for other commands).
    pub executed: Option<ExecutedPage>,
}

/// One page of a replica's exactly-once table, at most about
/// [`EXECUTED_PAGE_BYTES`] encoded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutedPage {
    /// Clients in id order. A client whose numbers do not fit one page appears again
    /// at the start of the next with the same low mark and the numbers that follow.
    pub clients: Vec<(u32, ExecutedWindow)>,
    /// Where the next page starts, `(client, after)` as in
    /// [`ControlCommand::Executed`]; `None` when the table ends with this page.
    pub next: Option<(u32, u64)>,
}

/// The encoded size a page of the exactly-once table stays under (with the status
/// around it, well under [`TARGET_FRAME_BYTES`]).
pub const EXECUTED_PAGE_BYTES: usize = TARGET_FRAME_BYTES - 4096;

impl ExecutedPage {
    /// The page of `table` starting at `(client, after)` (see
    /// [`ControlCommand::Executed`]), at most about `max_bytes` encoded (a number
    /// costs at most 10 bytes, a client's row header 32); at least one number or one
    /// client row per page, so paging always advances.
    pub fn from_table(table: &DeliveredTable, client: u32, after: u64, max_bytes: usize) -> Self {
        const ROW_BYTES: usize = 32;
        const NUMBER_BYTES: usize = 10;
        let mut page = ExecutedPage::default();
        let mut bytes = 16;
        for (id, window) in table.range(ClientId(client)..) {
            if !page.clients.is_empty() && bytes + ROW_BYTES > max_bytes {
                page.next = Some((id.0, 0));
                return page;
            }
            bytes += ROW_BYTES;
            let from = if id.0 == client { after } else { 0 };
            let mut row = ExecutedWindow {
                low: window.low(),
                above: Vec::new(),
            };
            for n in window.above_after(from) {
                if (!row.above.is_empty() || !page.clients.is_empty())
                    && bytes + NUMBER_BYTES > max_bytes
                {
                    let last = row.above.last().copied().unwrap_or(from);
                    page.clients.push((id.0, row));
                    page.next = Some((id.0, last));
                    return page;
                }
                bytes += NUMBER_BYTES;
                row.above.push(n);
            }
            page.clients.push((id.0, row));
        }
        page
    }
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
    /// Last sequence number its application executed (≤ `last_delivered`).
    pub last_executed: u64,
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

    /// Paging the exactly-once table returns every row and number exactly once, in
    /// pages whose encoded reply stays under the budget, even when one client's
    /// numbers need several pages.
    #[test]
    fn the_executed_table_pages_within_the_frame_budget() {
        let mut table = DeliveredTable::new();
        for (client, numbers) in [(1u32, 0..0u64), (4, 0..5000), (9, 0..3)] {
            let w = table.entry(ClientId(client)).or_default();
            // Every other number from 10 on: all above the low mark.
            for n in numbers {
                w.admit(10 + 2 * n, u64::MAX);
            }
            w.admit(1, u64::MAX);
        }
        for budget in [200usize, 4096, EXECUTED_PAGE_BYTES] {
            let mut cursor = (0u32, 0u64);
            let mut rows: Vec<(u32, u64, Vec<u64>)> = Vec::new();
            let mut pages = 0;
            loop {
                let page = ExecutedPage::from_table(&table, cursor.0, cursor.1, budget);
                pages += 1;
                let reply = ReplicaFrame::Control(Box::new(ControlReply {
                    nonce: u64::MAX,
                    status: ControlStatus::default(),
                    executed: Some(page.clone()),
                }));
                assert!(
                    encode(&reply).unwrap().len() <= budget + 64,
                    "budget {budget}"
                );
                for (client, w) in page.clients {
                    match rows.last_mut() {
                        Some(last) if last.0 == client => last.2.extend(w.above),
                        _ => rows.push((client, w.low, w.above)),
                    }
                }
                match page.next {
                    Some(next) => {
                        assert!(next > cursor, "paging advances");
                        cursor = next;
                    }
                    None => break,
                }
            }
            let want: Vec<(u32, u64, Vec<u64>)> = table
                .iter()
                .map(|(c, w)| (c.0, w.low(), w.above().collect()))
                .collect();
            assert_eq!(rows, want, "budget {budget}");
            if budget == 200 {
                assert!(pages > 100, "{pages}");
            } else if budget == EXECUTED_PAGE_BYTES {
                assert_eq!(pages, 1);
            }
        }
    }
}
