//! [`QuicTransport`]: the pinned-key QUIC mesh over quinn (rustls with ring).
//!
//! Shape, per process: one quinn endpoint, acting as server (replicas only) and client.
//! Per peer pair: one connection. Replicas dial the replicas with higher numbers and
//! accept the lower ones; clients dial every replica and accept nothing; a replica sends
//! to a client over the connection the client opened. Per connection and direction: one
//! long-lived unidirectional stream (see [`crate::wire`]).
//!
//! Lifecycle of a connection: TLS handshake with [`PinnedKeyVerifier`] on both sides
//! (the peer's key names it); then each side opens its stream and writes the preamble;
//! the peer is *up* only when its preamble has arrived (a dialer's `connect` can succeed
//! and the server still refuse it). Once up, the connection becomes the peer's *link*,
//! replacing (and closing) any older one; a writer task drains the link's queue in
//! batches; the connection task reads frames into the inbound channel until the
//! connection ends or the peer breaks the wire format (then the connection is closed
//! with [`CLOSE_BAD_FRAME`] and counted, and other peers are unaffected). Dialers
//! reconnect with exponential back-off and jitter. Invariant: a peer has at most one
//! link, and only the connection task that installed a link removes it (checked by a
//! generation number).
//!
//! Restarts: the stateless-reset key and the connection-id key are derived from the
//! node's secret key, so a restarted node recognises its predecessor's connection ids
//! and resets them at once, and peers reconnect without waiting for the idle timeout.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::{Connection, Endpoint, EndpointConfig, RecvStream, SendStream, TransportConfig};
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::counters::{CounterCells, PeerCells};
use crate::identity::{Identity, Membership};
use crate::pinned_tls::{self, PinnedKeyVerifier, TlsError};
use crate::transport::ShutdownFuture;
use crate::wire::{
    self, CLOSE_BAD_FRAME, CLOSE_PROTOCOL, CLOSE_REPLACED, CLOSE_SHUTDOWN, CLOSE_WRONG_DIRECTION,
    FrameDecoder, FrameError, STREAM_PREAMBLE,
};
use crate::{Counters, Inbound, NodeId, Transport};

/// Tuning of a [`QuicTransport`]. Every node of a cluster should use the same values.
#[derive(Clone, Debug)]
pub struct QuicConfig {
    /// Largest frame payload accepted or sent; a peer announcing more is disconnected.
    pub max_frame_size: usize,
    /// Per peer: frames are dropped while this many payload bytes wait to be written.
    pub max_queued_bytes: usize,
    /// Capacity, in frames, of the inbound channel; when full, readers wait (and QUIC
    /// flow control slows the senders).
    pub inbound_capacity: usize,
    /// QUIC keep-alive interval; must be below `idle_timeout`.
    pub keep_alive: Duration,
    /// QUIC idle timeout: a silent connection is declared dead after this long.
    pub idle_timeout: Duration,
    /// Bound on one dial attempt, and on a new connection's handshake and preambles.
    pub connect_timeout: Duration,
    /// First reconnect delay after a failure; doubles up to `reconnect_max` (each delay
    /// is drawn uniformly from its upper half).
    pub reconnect_initial: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
    /// QUIC's initial RTT estimate (sets the first retransmission timers).
    pub initial_rtt: Duration,
    /// Per-stream receive window (bytes in flight per direction). 8 MiB covers 1 Gb/s
    /// at 60 ms RTT; on loopback 1.25 to 16 MiB measured the same.
    pub stream_receive_window: u32,
    /// Per-connection send window.
    pub send_window: u64,
    /// UDP socket send and receive buffer sizes to request (the kernel caps them at
    /// `net.core.{r,w}mem_max`); `None` keeps the system default.
    pub socket_buffer_bytes: Option<usize>,
    /// UDP payload size of the first packets. Must fit every path (1200 always does).
    pub initial_mtu: u16,
    /// Upper bound of path-MTU discovery; `None` turns discovery off. 4000 is the
    /// measured sweet spot on loopback (about 1.7x the throughput of 1452 for 64 KiB
    /// frames); discovery to 8000 collapsed to a few MB/s (GSO); paths with a smaller
    /// MTU just stop the discovery lower.
    pub mtu_discovery_upper_bound: Option<u16>,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            max_frame_size: wire::DEFAULT_MAX_FRAME_SIZE,
            max_queued_bytes: 64 << 20,
            inbound_capacity: 64 * 1024,
            keep_alive: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            reconnect_initial: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            initial_rtt: Duration::from_millis(100),
            stream_receive_window: 8 << 20,
            send_window: 16 << 20,
            socket_buffer_bytes: Some(4 << 20),
            initial_mtu: 1200,
            mtu_discovery_upper_bound: Some(4000),
        }
    }
}

impl QuicConfig {
    /// Checks the values that would make the transport misbehave.
    pub fn validate(&self) -> Result<(), QuicError> {
        let problem = if self.keep_alive >= self.idle_timeout {
            "keep_alive must be below idle_timeout"
        } else if self.max_frame_size > u32::MAX as usize {
            "max_frame_size must fit the u32 length prefix"
        } else if self.reconnect_initial.is_zero() || self.reconnect_max < self.reconnect_initial {
            "reconnect delays must satisfy 0 < reconnect_initial <= reconnect_max"
        } else if self.inbound_capacity == 0 {
            "inbound_capacity must be positive"
        } else if self.initial_mtu < 1200 {
            "initial_mtu must be at least 1200 (QUIC's minimum)"
        } else {
            return Ok(());
        };
        Err(QuicError::Config(problem.to_owned()))
    }
}

/// A QUIC transport could not be started.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// The identity's public key is not in the membership.
    #[error("this node's key is not in the membership")]
    NotAMember,
    /// Not called from within a tokio runtime.
    #[error("the QUIC transport must be started inside a tokio runtime")]
    NoRuntime,
    /// Socket trouble.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A configuration value quinn rejects.
    #[error("invalid QUIC configuration: {0}")]
    Config(String),
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnectionEnd {
    #[error(transparent)]
    BadFrame(#[from] FrameError),
    #[error("connection lost: {0}")]
    Lost(#[from] quinn::ConnectionError),
    #[error("read failed: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("write failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("peer ended its stream")]
    StreamFinished,
    #[error("peer did not open its stream in time")]
    HelloTimeout,
    #[error("inbound channel closed")]
    InboundClosed,
    #[error("transport shut down")]
    Shutdown,
}

/// A live connection to a peer, as `send` sees it.
struct Link {
    generation: u64,
    queue: mpsc::UnboundedSender<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    connection: Connection,
}

struct PeerSlot {
    cells: Arc<PeerCells>,
    link: Mutex<Option<Link>>,
}

impl PeerSlot {
    fn link(&self) -> std::sync::MutexGuard<'_, Option<Link>> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// State shared by the transport handle and its tasks.
struct Shared {
    local_id: NodeId,
    membership: Arc<Membership>,
    config: QuicConfig,
    counters: Arc<CounterCells>,
    self_cells: Arc<PeerCells>,
    peers: HashMap<NodeId, PeerSlot>,
    inbound: mpsc::Sender<(NodeId, Bytes)>,
    next_generation: AtomicU64,
}

/// The QUIC transport of one node. Dropping it closes every connection and stops its
/// tasks; the inbound receiver then yields `None` once the tasks are gone.
pub struct QuicTransport {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl QuicTransport {
    /// Binds a UDP socket at `addr` and starts the transport of the member whose key is
    /// `identity` (replica or client: the membership says which). Must be called inside
    /// a tokio runtime. Returns the transport and its inbound frames.
    pub fn bind(
        identity: &Identity,
        membership: Arc<Membership>,
        addr: SocketAddr,
        config: QuicConfig,
    ) -> Result<(Self, Inbound), QuicError> {
        Self::with_socket(identity, membership, UdpSocket::bind(addr)?, config)
    }

    /// As [`QuicTransport::bind`], on an already bound socket (e.g. bound to port 0
    /// before the membership was written).
    pub fn with_socket(
        identity: &Identity,
        membership: Arc<Membership>,
        socket: UdpSocket,
        config: QuicConfig,
    ) -> Result<(Self, Inbound), QuicError> {
        tokio::runtime::Handle::try_current().map_err(|_| QuicError::NoRuntime)?;
        config.validate()?;
        let local_id = membership
            .id_of(&identity.public_key())
            .ok_or(QuicError::NotAMember)?;
        let counters = Arc::new(CounterCells::default());
        let endpoint = make_endpoint(identity, &membership, local_id, socket, &config, &counters)?;
        let local_addr = endpoint.local_addr()?;

        let peers = membership
            .iter()
            .filter(|member| member.id != local_id)
            .map(|member| {
                let slot = PeerSlot {
                    cells: counters.peer(member.id),
                    link: Mutex::new(None),
                };
                (member.id, slot)
            })
            .collect();
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_capacity);
        let shared = Arc::new(Shared {
            local_id,
            self_cells: counters.peer(local_id),
            membership: Arc::clone(&membership),
            config,
            counters,
            peers,
            inbound: inbound_tx,
            next_generation: AtomicU64::new(0),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);

        // Every task logs inside a span naming this node (several may share a process).
        let span = tracing::info_span!("quic", node = %local_id);
        if local_id.is_replica() {
            tokio::spawn(
                accept_loop(Arc::clone(&shared), endpoint.clone(), shutdown_rx.clone())
                    .instrument(span.clone()),
            );
        }
        for member in membership.iter() {
            if should_dial(local_id, member.id)
                && let Some(addr) = member.addr
            {
                tokio::spawn(
                    dial_loop(
                        Arc::clone(&shared),
                        endpoint.clone(),
                        member.id,
                        addr,
                        shutdown_rx.clone(),
                    )
                    .instrument(span.clone()),
                );
            }
        }
        tracing::info!(parent: &span, addr = %local_addr, "QUIC transport started");
        Ok((
            Self {
                shared,
                endpoint,
                local_addr,
                shutdown,
            },
            inbound_rx,
        ))
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The peers with a live link, in order.
    pub fn connected_peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self
            .shared
            .peers
            .iter()
            .filter(|(_, slot)| slot.link().is_some())
            .map(|(&id, _)| id)
            .collect();
        peers.sort();
        peers
    }

    /// Closes every connection, stops the tasks and waits (at most about a second) for
    /// the peers to be told. The transport sends nothing afterwards; drop it to release
    /// the socket. (Dropping alone also closes everything, without waiting.)
    pub async fn shutdown(&self) {
        self.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }

    fn close(&self) {
        self.shutdown.send_replace(true);
        self.endpoint.close(CLOSE_SHUTDOWN, b"shutdown");
    }
}

impl Drop for QuicTransport {
    fn drop(&mut self) {
        self.close();
    }
}

impl Transport for QuicTransport {
    fn local_id(&self) -> NodeId {
        self.shared.local_id
    }

    fn send(&self, to: NodeId, frame: Bytes) {
        let shared = &self.shared;
        if to == shared.local_id {
            let len = frame.len() as u64;
            match shared.inbound.try_send((to, frame)) {
                Ok(()) => {
                    shared.self_cells.record_out(1, len);
                    shared.self_cells.record_in(len);
                }
                Err(_) => shared.self_cells.record_dropped(1),
            }
            return;
        }
        let Some(slot) = shared.peers.get(&to) else {
            shared.counters.record_dropped_unknown_peer();
            return;
        };
        if frame.len() > shared.config.max_frame_size {
            tracing::warn!(
                peer = %to,
                len = frame.len(),
                max = shared.config.max_frame_size,
                "dropping a frame over the maximum frame size"
            );
            slot.cells.record_dropped(1);
            return;
        }
        let link = slot.link();
        let Some(link) = link.as_ref() else {
            slot.cells.record_dropped(1);
            return;
        };
        if link.queued_bytes.load(Ordering::Relaxed) >= shared.config.max_queued_bytes {
            slot.cells.record_dropped(1);
            return;
        }
        let len = frame.len();
        link.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if link.queue.send(frame).is_err() {
            link.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            slot.cells.record_dropped(1);
        }
    }

    fn is_connected(&self, peer: NodeId) -> bool {
        peer == self.shared.local_id
            || self
                .shared
                .peers
                .get(&peer)
                .is_some_and(|slot| slot.link().is_some())
    }

    fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    fn shutdown(&self) -> ShutdownFuture<'_> {
        // The inherent method: close, then wait at most about a second.
        Box::pin(QuicTransport::shutdown(self))
    }
}

/// Whether `local` opens the connection to `peer`: clients dial replicas, replicas dial
/// replicas with higher numbers.
fn should_dial(local: NodeId, peer: NodeId) -> bool {
    match (local, peer) {
        (NodeId::Client(_), NodeId::Replica(_)) => true,
        (NodeId::Replica(me), NodeId::Replica(them)) => me < them,
        _ => false,
    }
}

fn make_endpoint(
    identity: &Identity,
    membership: &Arc<Membership>,
    local_id: NodeId,
    socket: UdpSocket,
    config: &QuicConfig,
    counters: &Arc<CounterCells>,
) -> Result<Endpoint, QuicError> {
    if let Some(size) = config.socket_buffer_bytes {
        let sock = socket2::SockRef::from(&socket);
        for (what, result) in [
            ("receive", sock.set_recv_buffer_size(size)),
            ("send", sock.set_send_buffer_size(size)),
        ] {
            if let Err(error) = result {
                tracing::warn!(%error, size, "cannot set the UDP {what} buffer size");
            }
        }
    }
    socket.set_nonblocking(true)?;

    let reset_key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &identity.derive_secret("tandem/1 quic stateless reset"),
    );
    let mut endpoint_config = EndpointConfig::new(Arc::new(reset_key));
    let cid_secret = identity.derive_secret("tandem/1 quic connection id");
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&cid_secret[..8]);
    let cid_key = u64::from_le_bytes(cid_key);
    endpoint_config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    let max_payload = config
        .mtu_discovery_upper_bound
        .unwrap_or(0)
        .max(config.initial_mtu)
        .max(1472);
    endpoint_config
        .max_udp_payload_size(max_payload)
        .map_err(|e| QuicError::Config(e.to_string()))?;

    let transport = Arc::new(transport_config(config)?);
    let verifier = Arc::new(PinnedKeyVerifier::new(
        Arc::clone(membership),
        Arc::clone(counters),
    ));
    let server_config = if local_id.is_replica() {
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(
            pinned_tls::rustls_server_config(identity, Arc::clone(&verifier))?,
        )
        .map_err(TlsError::from)?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server_config.transport_config(Arc::clone(&transport));
        Some(server_config)
    } else {
        None
    };
    let client_crypto = quinn::crypto::rustls::QuicClientConfig::try_from(
        pinned_tls::rustls_client_config(identity, verifier)?,
    )
    .map_err(TlsError::from)?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
    client_config.transport_config(transport);

    let mut endpoint = Endpoint::new(
        endpoint_config,
        server_config,
        socket,
        Arc::new(quinn::TokioRuntime),
    )?;
    endpoint.set_default_client_config(client_config);
    Ok(endpoint)
}

fn transport_config(config: &QuicConfig) -> Result<TransportConfig, QuicError> {
    let mut transport = TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .map_err(|e| QuicError::Config(format!("idle timeout: {e}")))?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(config.keep_alive))
        .max_concurrent_uni_streams(1u32.into())
        .max_concurrent_bidi_streams(0u32.into())
        .datagram_receive_buffer_size(None)
        .stream_receive_window(config.stream_receive_window.into())
        .send_window(config.send_window)
        .initial_rtt(config.initial_rtt)
        .initial_mtu(config.initial_mtu)
        .min_mtu(config.initial_mtu.min(1200));
    match config.mtu_discovery_upper_bound {
        Some(upper) => {
            let mut discovery = quinn::MtuDiscoveryConfig::default();
            discovery.upper_bound(upper.max(config.initial_mtu));
            transport.mtu_discovery_config(Some(discovery));
        }
        None => {
            transport.mtu_discovery_config(None);
        }
    }
    Ok(transport)
}

async fn accept_loop(shared: Arc<Shared>, endpoint: Endpoint, mut shutdown: watch::Receiver<bool>) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = shutdown.changed() => None,
        };
        let Some(incoming) = incoming else {
            return;
        };
        tokio::spawn(
            accept_one(Arc::clone(&shared), incoming, shutdown.clone())
                .instrument(tracing::Span::current()),
        );
    }
}

async fn accept_one(
    shared: Arc<Shared>,
    incoming: quinn::Incoming,
    shutdown: watch::Receiver<bool>,
) {
    let remote = incoming.remote_address();
    let connecting = match incoming.accept() {
        Ok(connecting) => connecting,
        Err(error) => {
            tracing::debug!(%remote, %error, "incoming connection failed");
            return;
        }
    };
    let connection = match tokio::time::timeout(shared.config.connect_timeout, connecting).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            tracing::debug!(%remote, %error, "incoming handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "incoming handshake timed out");
            return;
        }
    };
    let Some(peer) = pinned_tls::peer_id(&connection, &shared.membership) else {
        // The verifier admitted the key, so this cannot happen; refuse all the same.
        connection.close(CLOSE_PROTOCOL, b"unidentified peer");
        return;
    };
    if peer == shared.local_id || should_dial(shared.local_id, peer) {
        shared.counters.record_rejected();
        tracing::warn!(%peer, %remote, "refused a connection opened in the wrong direction");
        connection.close(CLOSE_WRONG_DIRECTION, b"the lower-numbered replica dials");
        return;
    }
    run_connection(&shared, connection, peer, shutdown).await;
}

async fn dial_loop(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    peer: NodeId,
    addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let mut backoff = config.reconnect_initial;
    let server_name = peer.to_string();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match endpoint.connect(addr, &server_name) {
            Ok(connecting) => {
                match tokio::time::timeout(config.connect_timeout, connecting).await {
                    Ok(Ok(connection)) => {
                        if run_connection(&shared, connection, peer, shutdown.clone()).await {
                            backoff = config.reconnect_initial;
                        }
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %addr, %error, "dial failed"),
                    Err(_) => tracing::debug!(%peer, %addr, "dial timed out"),
                }
            }
            Err(error) => tracing::debug!(%peer, %addr, %error, "cannot dial"),
        }
        let half = backoff / 2;
        let delay = half + rand::rng().random_range(Duration::ZERO..=half);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(config.reconnect_max);
    }
}

/// Runs one authenticated connection to `peer` to its end. Returns whether the peer
/// came up (spoke its preamble).
async fn run_connection(
    shared: &Arc<Shared>,
    connection: Connection,
    peer: NodeId,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    let Some(slot) = shared.peers.get(&peer) else {
        connection.close(CLOSE_PROTOCOL, b"unknown peer");
        return false;
    };
    let hello = tokio::time::timeout(
        shared.config.connect_timeout,
        exchange_preambles(&connection),
    );
    let (send, recv) = match hello.await {
        Ok(Ok(streams)) => streams,
        Ok(Err(ConnectionEnd::BadFrame(error))) => {
            close_after(&connection, slot, peer, &ConnectionEnd::BadFrame(error));
            return false;
        }
        Ok(Err(end)) => {
            // Typically the server refused our key after `connect` succeeded.
            tracing::debug!(%peer, %end, "connection failed before the peer spoke");
            connection.close(CLOSE_PROTOCOL, b"");
            return false;
        }
        Err(_) => {
            close_after(&connection, slot, peer, &ConnectionEnd::HelloTimeout);
            return false;
        }
    };

    let generation = shared.next_generation.fetch_add(1, Ordering::Relaxed);
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let replaced = slot.link().replace(Link {
        generation,
        queue: queue_tx,
        queued_bytes: Arc::clone(&queued_bytes),
        connection: connection.clone(),
    });
    if let Some(old) = replaced {
        old.connection
            .close(CLOSE_REPLACED, b"replaced by a newer connection");
    }
    slot.cells
        .connections_established
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(%peer, remote = %connection.remote_address(), "peer up");

    tokio::spawn(
        write_frames(send, queue_rx, queued_bytes, Arc::clone(&slot.cells), peer)
            .instrument(tracing::Span::current()),
    );
    let end = tokio::select! {
        end = read_frames(shared, recv, slot, peer) => end,
        _ = shutdown.changed() => ConnectionEnd::Shutdown,
    };

    {
        let mut link = slot.link();
        if link.as_ref().is_some_and(|l| l.generation == generation) {
            *link = None;
        }
    }
    close_after(&connection, slot, peer, &end);
    true
}

/// Closes `connection` after `end`, counting and logging a bad frame.
fn close_after(connection: &Connection, slot: &PeerSlot, peer: NodeId, end: &ConnectionEnd) {
    match end {
        ConnectionEnd::BadFrame(error) => {
            slot.cells
                .connections_closed_bad_frame
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, %error, "closing the connection: peer broke the wire format");
            connection.close(CLOSE_BAD_FRAME, error.to_string().as_bytes());
        }
        ConnectionEnd::StreamFinished | ConnectionEnd::HelloTimeout => {
            tracing::info!(%peer, %end, "closing the connection");
            connection.close(CLOSE_PROTOCOL, end.to_string().as_bytes());
        }
        ConnectionEnd::Shutdown | ConnectionEnd::InboundClosed => {
            connection.close(CLOSE_SHUTDOWN, b"shutdown");
        }
        ConnectionEnd::Lost(_) | ConnectionEnd::Read(_) | ConnectionEnd::Write(_) => {
            tracing::info!(%peer, %end, "connection ended");
            connection.close(CLOSE_SHUTDOWN, b"");
        }
    }
}

/// Opens this side's stream with the preamble and waits for the peer's.
async fn exchange_preambles(
    connection: &Connection,
) -> Result<(SendStream, RecvStream), ConnectionEnd> {
    let mut send = connection.open_uni().await?;
    send.write_all(&STREAM_PREAMBLE).await?;
    let mut recv = connection.accept_uni().await?;
    let mut preamble = [0u8; STREAM_PREAMBLE.len()];
    let mut filled = 0;
    while filled < preamble.len() {
        match recv.read(&mut preamble[filled..]).await? {
            Some(n) => {
                if preamble[filled..filled + n] != STREAM_PREAMBLE[filled..filled + n] {
                    return Err(FrameError::BadPreamble.into());
                }
                filled += n;
            }
            None => return Err(FrameError::BadPreamble.into()),
        }
    }
    Ok((send, recv))
}

/// Reads frames from the peer's stream into the inbound channel until the stream or
/// connection ends or the peer breaks the wire format.
async fn read_frames(
    shared: &Shared,
    mut recv: RecvStream,
    slot: &PeerSlot,
    peer: NodeId,
) -> ConnectionEnd {
    let mut decoder = FrameDecoder::new(shared.config.max_frame_size);
    loop {
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    slot.cells.record_in(frame.len() as u64);
                    if shared.inbound.send((peer, frame)).await.is_err() {
                        return ConnectionEnd::InboundClosed;
                    }
                }
                Ok(None) => break,
                Err(error) => return error.into(),
            }
        }
        match recv.read_chunk(usize::MAX, true).await {
            Ok(Some(chunk)) => decoder.extend(&chunk.bytes),
            Ok(None) => {
                return match decoder.finish() {
                    Ok(()) => ConnectionEnd::StreamFinished,
                    Err(error) => error.into(),
                };
            }
            Err(error) => return error.into(),
        }
    }
}

/// Most frames taken from a queue for one batched write.
const MAX_BATCH_FRAMES: usize = 1024;

/// Writes the frames queued for a peer, in batches, until the link is removed or the
/// connection fails; frames still queued then are counted as dropped.
async fn write_frames(
    mut send: SendStream,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    cells: Arc<PeerCells>,
    peer: NodeId,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH_FRAMES);
    let mut chunks = Vec::new();
    let mut scratch = BytesMut::with_capacity(64 * 1024);
    loop {
        let count = queue.recv_many(&mut batch, MAX_BATCH_FRAMES).await;
        if count == 0 {
            return;
        }
        let bytes = wire::encode_frames(batch.drain(..), &mut chunks, &mut scratch);
        let written = send.write_all_chunks(&mut chunks).await;
        chunks.clear();
        queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        match written {
            Ok(()) => cells.record_out(count as u64, bytes as u64),
            Err(error) => {
                tracing::debug!(%peer, %error, "write failed");
                cells.record_dropped(count as u64);
                queue.close();
                let mut lost = 0;
                while queue.try_recv().is_ok() {
                    lost += 1;
                }
                cells.record_dropped(lost);
                return;
            }
        }
    }
}
