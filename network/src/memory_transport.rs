//! [`MemoryTransport`]: the in-memory transport for tests that need no sockets. A
//! [`MemoryHub`] connects any number of nodes through bounded tokio channels.
//!
//! Semantics match the QUIC transport where it matters to the protocol: per-pair FIFO,
//! `send` never waits, a frame for an absent peer or a full inbound channel is dropped
//! and counted, the sender's id is the one it joined with. A node that joins under an
//! id already present replaces it (a restart); dropping a transport leaves the hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::counters::CounterCells;
use crate::{Counters, Inbound, NodeId, Transport};

/// Default capacity, in frames, of each node's inbound channel.
pub const DEFAULT_MEMORY_INBOUND_CAPACITY: usize = 64 * 1024;

struct HubEntry {
    inbound: mpsc::Sender<(NodeId, Bytes)>,
    counters: Arc<CounterCells>,
    token: u64,
}

struct HubInner {
    nodes: RwLock<HashMap<NodeId, HubEntry>>,
    inbound_capacity: usize,
    next_token: AtomicU64,
}

/// Connects in-memory transports. Cheap to clone (all clones are the same hub).
#[derive(Clone)]
pub struct MemoryHub {
    inner: Arc<HubInner>,
}

impl Default for MemoryHub {
    fn default() -> Self {
        Self::new(DEFAULT_MEMORY_INBOUND_CAPACITY)
    }
}

impl MemoryHub {
    /// A hub whose nodes each buffer up to `inbound_capacity` undelivered frames.
    pub fn new(inbound_capacity: usize) -> Self {
        Self {
            inner: Arc::new(HubInner {
                nodes: RwLock::new(HashMap::new()),
                inbound_capacity: inbound_capacity.max(1),
                next_token: AtomicU64::new(0),
            }),
        }
    }

    /// Adds node `id` (replacing a node already joined under that id).
    pub fn join(&self, id: NodeId) -> (MemoryTransport, Inbound) {
        let (tx, rx) = mpsc::channel(self.inner.inbound_capacity);
        let counters = Arc::new(CounterCells::default());
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        let entry = HubEntry {
            inbound: tx,
            counters: Arc::clone(&counters),
            token,
        };
        self.inner
            .nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, entry);
        let transport = MemoryTransport {
            hub: Arc::clone(&self.inner),
            id,
            counters,
            token,
        };
        (transport, rx)
    }

    /// The ids currently joined, in order.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .inner
            .nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        ids.sort();
        ids
    }
}

/// One node's handle on a [`MemoryHub`].
pub struct MemoryTransport {
    hub: Arc<HubInner>,
    id: NodeId,
    counters: Arc<CounterCells>,
    token: u64,
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        let mut nodes = self
            .hub
            .nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if nodes.get(&self.id).is_some_and(|e| e.token == self.token) {
            nodes.remove(&self.id);
        }
    }
}

impl Transport for MemoryTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    fn send(&self, to: NodeId, frame: Bytes) {
        let cells = self.counters.peer(to);
        let nodes = self
            .hub
            .nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = nodes.get(&to) else {
            cells.record_dropped(1);
            return;
        };
        let len = frame.len() as u64;
        match entry.inbound.try_send((self.id, frame)) {
            Ok(()) => {
                cells.record_out(1, len);
                entry.counters.peer(self.id).record_in(len);
            }
            Err(_) => cells.record_dropped(1),
        }
    }

    fn is_connected(&self, peer: NodeId) -> bool {
        self.hub
            .nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&peer)
    }

    fn counters(&self) -> Counters {
        self.counters.snapshot()
    }
}
