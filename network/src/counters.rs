//! Transport counters: live atomic cells the transports bump ([`CounterCells`]) and the
//! plain snapshot callers read at any time ([`Counters`], [`PeerCounters`]).
//!
//! Byte counts are payload bytes (the 4-byte length prefix is not counted). Totals in a
//! snapshot are sums over the peers, plus what belongs to no known peer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;

use crate::NodeId;

/// Counters of one peer link, as seen by this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeerCounters {
    /// Frames handed to the network for this peer.
    pub frames_out: u64,
    /// Payload bytes handed to the network for this peer.
    pub bytes_out: u64,
    /// Frames received from this peer.
    pub frames_in: u64,
    /// Payload bytes received from this peer.
    pub bytes_in: u64,
    /// Frames for this peer that were dropped: peer not connected, its queue over the
    /// bound, frame over the maximum size, or lost in the queue when the connection died.
    pub frames_dropped: u64,
    /// Connections to this peer that came up (both sides spoke).
    pub connections_established: u64,
    /// Connections with this peer closed because it sent garbage, an oversize length
    /// prefix or a truncated frame.
    pub connections_closed_bad_frame: u64,
}

/// A snapshot of a transport's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Sum of [`PeerCounters::frames_out`].
    pub frames_out: u64,
    /// Sum of [`PeerCounters::bytes_out`].
    pub bytes_out: u64,
    /// Sum of [`PeerCounters::frames_in`].
    pub frames_in: u64,
    /// Sum of [`PeerCounters::bytes_in`].
    pub bytes_in: u64,
    /// Sum of [`PeerCounters::frames_dropped`], plus frames sent to ids that are not
    /// members.
    pub frames_dropped: u64,
    /// Sum of [`PeerCounters::connections_established`].
    pub connections_established: u64,
    /// Connections this node refused during the TLS handshake (a key not in the
    /// membership, or not the key of the replica at the dialed address) or right after
    /// it (a replica dialing in the wrong direction).
    pub connections_rejected: u64,
    /// Sum of [`PeerCounters::connections_closed_bad_frame`].
    pub connections_closed_bad_frame: u64,
    /// Per peer.
    pub peers: BTreeMap<NodeId, PeerCounters>,
}

impl Counters {
    /// The counters of `peer` (zero if never seen).
    pub fn peer(&self, peer: NodeId) -> PeerCounters {
        self.peers.get(&peer).copied().unwrap_or_default()
    }
}

/// The live cells of one peer.
#[derive(Debug, Default)]
pub(crate) struct PeerCells {
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub connections_established: AtomicU64,
    pub connections_closed_bad_frame: AtomicU64,
}

impl PeerCells {
    pub fn record_out(&self, frames: u64, bytes: u64) {
        self.frames_out.fetch_add(frames, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn record_in(&self, bytes: u64) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn record_dropped(&self, frames: u64) {
        self.frames_dropped.fetch_add(frames, Ordering::Relaxed);
    }

    fn snapshot(&self) -> PeerCounters {
        PeerCounters {
            frames_out: self.frames_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            frames_in: self.frames_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            connections_established: self.connections_established.load(Ordering::Relaxed),
            connections_closed_bad_frame: self.connections_closed_bad_frame.load(Ordering::Relaxed),
        }
    }
}

/// All live cells of a transport.
#[derive(Debug, Default)]
pub(crate) struct CounterCells {
    peers: RwLock<BTreeMap<NodeId, Arc<PeerCells>>>,
    dropped_unknown_peer: AtomicU64,
    connections_rejected: AtomicU64,
}

impl CounterCells {
    /// The cells of `peer`, created on first use.
    pub fn peer(&self, peer: NodeId) -> Arc<PeerCells> {
        if let Some(cells) = self
            .peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
        {
            return Arc::clone(cells);
        }
        Arc::clone(
            self.peers
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(peer)
                .or_default(),
        )
    }

    /// A frame was addressed to an id that is not a member.
    pub fn record_dropped_unknown_peer(&self) {
        self.dropped_unknown_peer.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was refused at (or right after) the handshake.
    pub fn record_rejected(&self) {
        self.connections_rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Counters {
        let peers: BTreeMap<NodeId, PeerCounters> = self
            .peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(&id, cells)| (id, cells.snapshot()))
            .collect();
        let mut total = Counters {
            frames_dropped: self.dropped_unknown_peer.load(Ordering::Relaxed),
            connections_rejected: self.connections_rejected.load(Ordering::Relaxed),
            ..Counters::default()
        };
        for peer in peers.values() {
            total.frames_out += peer.frames_out;
            total.bytes_out += peer.bytes_out;
            total.frames_in += peer.frames_in;
            total.bytes_in += peer.bytes_in;
            total.frames_dropped += peer.frames_dropped;
            total.connections_established += peer.connections_established;
            total.connections_closed_bad_frame += peer.connections_closed_bad_frame;
        }
        total.peers = peers;
        total
    }
}
