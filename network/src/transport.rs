//! The [`Transport`] trait every transport implements (QUIC, in-memory, the fault layer
//! around either), and the receiving half they hand out.
//!
//! Contract: `send` never waits for the network. A frame for a peer that is not
//! connected, or whose queue is over its bound, is dropped and counted; the protocol
//! above retransmits. Frames from one sender to one receiver arrive in order, each
//! labeled with the sender's authenticated [`NodeId`], on the [`Inbound`] receiver the
//! transport's constructor returned (made to be polled in `tokio::select!`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{Counters, NodeId};

/// The receiving half of a transport: frames with their sender's id.
pub type Inbound = tokio::sync::mpsc::Receiver<(NodeId, Bytes)>;

/// What [`Transport::shutdown`] returns: a boxed future, so the trait stays usable as
/// `dyn Transport`.
pub type ShutdownFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Carries opaque frames between the members of a cluster.
pub trait Transport: Send + Sync + 'static {
    /// This node's id.
    fn local_id(&self) -> NodeId;

    /// Enqueues `frame` for `to` without waiting; drops it (and counts it) if `to` is not
    /// reachable right now or its queue is full. A frame to `local_id()` is delivered
    /// straight to this node's own inbound channel.
    fn send(&self, to: NodeId, frame: Bytes);

    /// Sends one frame to several peers; the buffer is shared, not copied.
    fn broadcast(&self, to: &[NodeId], frame: Bytes) {
        for &peer in to {
            self.send(peer, frame.clone());
        }
    }

    /// True while a connection to `peer` is up (both sides have spoken). Always true for
    /// `local_id()`.
    fn is_connected(&self, peer: NodeId) -> bool;

    /// A snapshot of the counters.
    fn counters(&self) -> Counters;

    /// Closes every link and waits, for a bounded time, until peers have been told; the
    /// transport sends nothing afterwards. The default has nothing to close and
    /// completes at once (dropping such a transport is enough).
    fn shutdown(&self) -> ShutdownFuture<'_> {
        Box::pin(std::future::ready(()))
    }
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn local_id(&self) -> NodeId {
        (**self).local_id()
    }

    fn send(&self, to: NodeId, frame: Bytes) {
        (**self).send(to, frame)
    }

    fn broadcast(&self, to: &[NodeId], frame: Bytes) {
        (**self).broadcast(to, frame)
    }

    fn is_connected(&self, peer: NodeId) -> bool {
        (**self).is_connected(peer)
    }

    fn counters(&self) -> Counters {
        (**self).counters()
    }

    fn shutdown(&self) -> ShutdownFuture<'_> {
        (**self).shutdown()
    }
}

/// Waits until `transport` is connected to every one of `peers`, or `timeout` passes.
/// Returns whether all were connected. Meant for start-up and tests; the protocol itself
/// should not need it.
pub async fn wait_until_connected<T: Transport + ?Sized>(
    transport: &T,
    peers: &[NodeId],
    timeout: Duration,
) -> bool {
    let poll = async {
        while !peers.iter().all(|&peer| transport.is_connected(peer)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(timeout, poll).await.is_ok()
}
