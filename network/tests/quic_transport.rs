//! End-to-end tests of the QUIC transport over real sockets on 127.0.0.1 (OS-assigned
//! ports): frame exchange and ordering, pinned-key refusals on both sides of the
//! handshake, bad frames, client keys posing as replicas, and restarts (graceful and
//! crash). Every wait is bounded; nothing asserts on timings.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tandem_network::wire::{CLOSE_BAD_FRAME, CLOSE_WRONG_DIRECTION, STREAM_PREAMBLE};
use tandem_network::{
    Identity, Inbound, Member, Membership, NodeId, QuicConfig, QuicTransport, Transport,
    pinned_tls, wait_until_connected,
};

const WAIT: Duration = Duration::from_secs(8);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn config() -> QuicConfig {
    QuicConfig {
        reconnect_max: Duration::from_millis(400),
        ..QuicConfig::default()
    }
}

/// A cluster on paper: keys for every member, and a socket already bound (port 0) for
/// every replica, so the membership can name real addresses before anything starts.
struct Cluster {
    replicas: Vec<Identity>,
    clients: Vec<Identity>,
    sockets: Vec<Option<UdpSocket>>,
    addrs: Vec<SocketAddr>,
    membership: Arc<Membership>,
}

impl Cluster {
    fn new(replicas: usize, clients: usize) -> Self {
        let replicas: Vec<Identity> = (0..replicas)
            .map(|_| Identity::generate().expect("key"))
            .collect();
        let clients: Vec<Identity> = (0..clients)
            .map(|_| Identity::generate().expect("key"))
            .collect();
        let sockets: Vec<UdpSocket> = replicas
            .iter()
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let addrs: Vec<SocketAddr> = sockets
            .iter()
            .map(|s| s.local_addr().expect("addr"))
            .collect();
        let members = replicas
            .iter()
            .enumerate()
            .map(|(i, key)| Member {
                id: NodeId::Replica(i as u32),
                addr: Some(addrs[i]),
                public_key: key.public_key(),
            })
            .chain(clients.iter().enumerate().map(|(i, key)| Member {
                id: NodeId::Client(i as u32),
                addr: None,
                public_key: key.public_key(),
            }));
        let membership = Arc::new(Membership::new(members).expect("membership"));
        Self {
            replicas,
            clients,
            sockets: sockets.into_iter().map(Some).collect(),
            addrs,
            membership,
        }
    }

    /// Starts replica `i` on its pre-bound socket.
    fn start_replica(&mut self, i: usize) -> (QuicTransport, Inbound) {
        let socket = self.sockets[i].take().expect("socket already used");
        QuicTransport::with_socket(
            &self.replicas[i],
            Arc::clone(&self.membership),
            socket,
            config(),
        )
        .expect("start replica")
    }

    /// Starts replica `i` again on its address (after a stop), retrying the bind while
    /// the old socket is released.
    async fn restart_replica(&self, i: usize) -> (QuicTransport, Inbound) {
        let socket = rebind(self.addrs[i]).await;
        QuicTransport::with_socket(
            &self.replicas[i],
            Arc::clone(&self.membership),
            socket,
            config(),
        )
        .expect("restart replica")
    }

    fn start_client(&self, i: usize) -> (QuicTransport, Inbound) {
        QuicTransport::bind(
            &self.clients[i],
            Arc::clone(&self.membership),
            "127.0.0.1:0".parse().expect("addr"),
            config(),
        )
        .expect("start client")
    }
}

async fn rebind(addr: SocketAddr) -> UdpSocket {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match UdpSocket::bind(addr) {
            Ok(socket) => return socket,
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%error, "address still in use");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("cannot bind {addr} again: {error}"),
        }
    }
}

fn r(i: u32) -> NodeId {
    NodeId::Replica(i)
}

fn c(i: u32) -> NodeId {
    NodeId::Client(i)
}

fn seq_frame(seq: u64) -> Bytes {
    Bytes::copy_from_slice(&seq.to_le_bytes())
}

async fn recv(rx: &mut Inbound) -> (NodeId, Bytes) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for a frame")
        .expect("inbound channel closed")
}

/// Receives until a frame from `from` arrives, skipping others.
async fn recv_from(rx: &mut Inbound, from: NodeId) -> Bytes {
    loop {
        let (sender, frame) = recv(rx).await;
        if sender == from {
            return frame;
        }
    }
}

async fn connected(transport: &QuicTransport, peers: &[NodeId]) {
    assert!(
        wait_until_connected(transport, peers, WAIT).await,
        "{} not connected to all of {peers:?}; connected: {:?}",
        transport.local_id(),
        transport.connected_peers()
    );
}

/// Polls `condition` until it holds or the wait runs out.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `from` sends a numbered frame to `to` until one arrives (the link may be coming up).
async fn ping_until_received(from: &QuicTransport, to: NodeId, rx: &mut Inbound) {
    let sender = from.local_id();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        from.send(to, seq_frame(7));
        if let Ok(Some((who, _))) =
            tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            && who == sender
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{to} never received from {sender}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_pairs_exchange_frames_in_order() {
    init_tracing();
    let mut cluster = Cluster::new(4, 1);
    let mut nodes: Vec<(QuicTransport, Inbound)> =
        (0..4).map(|i| cluster.start_replica(i)).collect();
    nodes.push(cluster.start_client(0));
    let ids = [r(0), r(1), r(2), r(3), c(0)];
    for (transport, _) in &nodes {
        let me = transport.local_id();
        let peers: Vec<NodeId> = ids.iter().copied().filter(|&p| p != me).collect();
        connected(transport, &peers).await;
    }

    const FRAMES: u64 = 200;
    for (transport, _) in &nodes {
        for seq in 0..FRAMES {
            for &peer in &ids {
                if peer != transport.local_id() {
                    transport.send(peer, seq_frame(seq));
                }
            }
        }
    }
    for (transport, rx) in &mut nodes {
        let me = transport.local_id();
        let mut next = std::collections::BTreeMap::new();
        for _ in 0..FRAMES * 4 {
            let (from, frame) = recv(rx).await;
            let seq = u64::from_le_bytes(frame.as_ref().try_into().expect("8 bytes"));
            let expected = next.entry(from).or_insert(0u64);
            assert_eq!(seq, *expected, "{me} got frames from {from} out of order");
            *expected += 1;
        }
        assert_eq!(next.len(), 4, "{me} heard from {:?}", next.keys());
        assert!(next.values().all(|&n| n == FRAMES));
        let counters = transport.counters();
        assert_eq!(counters.frames_in, FRAMES * 4);
        assert_eq!(counters.bytes_in, FRAMES * 4 * 8);
        assert_eq!(counters.frames_dropped, 0);
        assert_eq!(counters.connections_rejected, 0);
    }
    // Broadcast shares one buffer; a frame to oneself is delivered locally.
    let (r0, rx0) = &mut nodes[0];
    r0.broadcast(&[r(0), r(1)], Bytes::from_static(b"hello"));
    assert_eq!(recv(rx0).await, (r(0), Bytes::from_static(b"hello")));
    assert_eq!(
        recv_from(&mut nodes[1].1, r(0)).await,
        Bytes::from_static(b"hello")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_are_refused_at_the_handshake_both_ways() {
    init_tracing();
    let mut cluster = Cluster::new(2, 0);
    let stranger = Identity::generate().expect("key");

    // The stranger dials r0.
    let (r0, _rx0) = cluster.start_replica(0);
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    let client_config =
        pinned_tls::client_config(&stranger, Arc::clone(&cluster.membership)).expect("config");
    let connecting = endpoint
        .connect_with(client_config, cluster.addrs[0], "r0")
        .expect("connect");
    // TLS 1.3: the client may finish its handshake before the server judges its
    // certificate; either way the connection must not survive.
    if let Ok(Ok(connection)) = tokio::time::timeout(WAIT, connecting).await {
        let closed = tokio::time::timeout(WAIT, connection.closed())
            .await
            .expect("server never closed the refused connection");
        tracing::info!(%closed, "stranger's connection closed");
    }
    eventually("r0 counts the refused stranger", || {
        r0.counters().connections_rejected == 1
    })
    .await;
    assert_eq!(r0.counters().connections_established, 0);

    // A stranger listens where r1 should be; r0 dials it and refuses it.
    let socket = cluster.sockets[1].take().expect("socket");
    let server_config =
        pinned_tls::server_config(&stranger, Arc::clone(&cluster.membership)).expect("config");
    let impostor = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .expect("impostor endpoint");
    let accepting = tokio::spawn(async move {
        while let Some(incoming) = impostor.accept().await {
            if let Ok(connecting) = incoming.accept() {
                let _ = connecting.await;
            }
        }
    });
    eventually("r0 refuses the stranger at r1's address", || {
        r0.counters().connections_rejected >= 2
    })
    .await;
    assert!(!r0.is_connected(r(1)));
    r0.send(r(1), Bytes::from_static(b"lost"));
    assert_eq!(r0.counters().peer(r(1)).frames_dropped, 1);
    accepting.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_dialing_a_lower_replica_is_refused() {
    init_tracing();
    let mut cluster = Cluster::new(2, 0);
    let (r0, _rx0) = cluster.start_replica(0);
    // r1's key dialing r0: a member, but the lower-numbered replica is the one to dial.
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    let client_config =
        pinned_tls::client_config(&cluster.replicas[1], Arc::clone(&cluster.membership))
            .expect("config");
    let connection = endpoint
        .connect_with(client_config, cluster.addrs[0], "r0")
        .expect("connect")
        .await
        .expect("handshake");
    match tokio::time::timeout(WAIT, connection.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => {
            assert_eq!(close.error_code, CLOSE_WRONG_DIRECTION);
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(r0.counters().connections_rejected, 1);
    assert!(!r0.is_connected(r(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_that_connection_only() {
    init_tracing();
    let mut cluster = Cluster::new(2, 2);
    let (r0, mut rx0) = cluster.start_replica(0);
    let (r1, mut rx1) = cluster.start_replica(1);
    let (c0, mut rx_c0) = cluster.start_client(0);
    connected(&r0, &[r(1), c(0)]).await;

    // c1 is a member, but speaks through a raw QUIC stream.
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    let mut oversize = STREAM_PREAMBLE.to_vec();
    oversize.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut truncated = STREAM_PREAMBLE.to_vec();
    truncated.extend_from_slice(&100u32.to_le_bytes());
    truncated.extend_from_slice(&[1; 10]);
    let cases: [(&str, Vec<u8>, bool); 3] = [
        (
            "garbage",
            b"GET / HTTP/1.1\r\nHost: r0\r\n\r\n".to_vec(),
            false,
        ),
        ("oversize length prefix", oversize, false),
        ("truncated frame", truncated, true),
    ];
    for (round, (name, bytes, finish)) in cases.into_iter().enumerate() {
        let client_config =
            pinned_tls::client_config(&cluster.clients[1], Arc::clone(&cluster.membership))
                .expect("config");
        let connection = endpoint
            .connect_with(client_config, cluster.addrs[0], "r0")
            .expect("connect")
            .await
            .expect("handshake");
        let mut stream = connection.open_uni().await.expect("stream");
        stream.write_all(&bytes).await.expect("write");
        if finish {
            stream.finish().expect("finish");
        }
        let closed = tokio::time::timeout(WAIT, connection.closed())
            .await
            .unwrap_or_else(|_| panic!("{name}: r0 kept the connection open"));
        match closed {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, CLOSE_BAD_FRAME, "{name}: {close:?}");
            }
            other => panic!("{name}: unexpected close {other}"),
        }
        let expected = round as u64 + 1;
        eventually(name, || {
            r0.counters().peer(c(1)).connections_closed_bad_frame == expected
        })
        .await;
        assert_eq!(r0.counters().connections_closed_bad_frame, expected);
    }
    assert_eq!(r0.counters().peer(c(1)).frames_in, 0);

    // Everyone else is still served.
    r0.send(r(1), Bytes::from_static(b"to r1"));
    r1.send(r(0), Bytes::from_static(b"to r0"));
    c0.send(r(0), Bytes::from_static(b"from c0"));
    r0.send(c(0), Bytes::from_static(b"to c0"));
    assert_eq!(
        recv_from(&mut rx1, r(0)).await,
        Bytes::from_static(b"to r1")
    );
    assert_eq!(
        recv_from(&mut rx_c0, r(0)).await,
        Bytes::from_static(b"to c0")
    );
    let mut heard = Vec::new();
    while heard.len() < 2 {
        heard.push(recv(&mut rx0).await);
    }
    heard.sort();
    assert_eq!(
        heard,
        vec![
            (r(1), Bytes::from_static(b"to r0")),
            (c(0), Bytes::from_static(b"from c0")),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_key_cannot_act_as_a_replica() {
    init_tracing();
    let mut cluster = Cluster::new(4, 1);
    let (r0, mut rx0) = cluster.start_replica(0);
    let (r1, _rx1) = cluster.start_replica(1);

    // c0's key on r3's address: the membership makes it a client, whatever the address.
    let socket = cluster.sockets[3].take().expect("socket");
    let (posing, _rx_posing) = QuicTransport::with_socket(
        &cluster.clients[0],
        Arc::clone(&cluster.membership),
        socket,
        config(),
    )
    .expect("start");
    assert_eq!(posing.local_id(), c(0));
    connected(&posing, &[r(0), r(1)]).await;
    posing.send(r(0), Bytes::from_static(b"I am r3"));
    assert_eq!(recv(&mut rx0).await, (c(0), Bytes::from_static(b"I am r3")));
    assert!(!r0.is_connected(r(3)), "r0 took a client for r3");

    // c0's key on a TLS server at r2's address: dialing r2, r0 and r1 refuse it.
    let socket = cluster.sockets[2].take().expect("socket");
    let server_config =
        pinned_tls::server_config(&cluster.clients[0], Arc::clone(&cluster.membership))
            .expect("config");
    let impostor = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .expect("impostor endpoint");
    let accepting = tokio::spawn(async move {
        while let Some(incoming) = impostor.accept().await {
            if let Ok(connecting) = incoming.accept() {
                let _ = connecting.await;
            }
        }
    });
    eventually("r0 and r1 refuse c0 posing as r2", || {
        r0.counters().connections_rejected >= 1 && r1.counters().connections_rejected >= 1
    })
    .await;
    assert!(!r0.is_connected(r(2)) && !r1.is_connected(r(2)));
    assert_eq!(r0.counters().peer(r(2)).connections_established, 0);
    assert_eq!(r0.counters().peer(r(3)).frames_in, 0);
    accepting.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gracefully_restarted_replica_is_reconnected() {
    init_tracing();
    let mut cluster = Cluster::new(3, 0);
    let (r0, mut rx0) = cluster.start_replica(0);
    let (r1, _rx1) = cluster.start_replica(1);
    let (r2, mut rx2) = cluster.start_replica(2);
    connected(&r1, &[r(0), r(2)]).await;

    r1.shutdown().await;
    drop(r1);
    let (r1, mut rx1) = cluster.restart_replica(1).await;
    connected(&r1, &[r(0), r(2)]).await;
    ping_until_received(&r0, r(1), &mut rx1).await;
    ping_until_received(&r2, r(1), &mut rx1).await;
    ping_until_received(&r1, r(0), &mut rx0).await;
    ping_until_received(&r1, r(2), &mut rx2).await;
    assert!(r0.counters().peer(r(1)).connections_established >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_through_the_trait_closes_the_links() {
    init_tracing();
    let mut cluster = Cluster::new(2, 0);
    let (r0, _rx0) = cluster.start_replica(0);
    let (r1, _rx1) = cluster.start_replica(1);
    connected(&r0, &[r(1)]).await;
    // As a driver generic over the transport would call it.
    let transport: &dyn Transport = &r1;
    transport.shutdown().await;
    eventually("r0 sees the link to r1 closed", || !r0.is_connected(r(1))).await;
    eventually("r1 dropped its link to r0", || !r1.is_connected(r(0))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replica_is_reconnected_after_restart() {
    init_tracing();
    let mut cluster = Cluster::new(3, 0);
    let (r0, mut rx0) = cluster.start_replica(0);
    let (r2, mut rx2) = cluster.start_replica(2);
    // r1 lives in its own runtime; shutting that runtime down kills it without a word
    // to its peers, like a crashed process.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (r1, _rx1) = {
        let _guard = doomed.enter();
        cluster.start_replica(1)
    };
    connected(&r1, &[r(0), r(2)]).await;
    connected(&r0, &[r(1)]).await;
    doomed.shutdown_background();
    drop(r1);

    let (r1, mut rx1) = cluster.restart_replica(1).await;
    connected(&r1, &[r(0), r(2)]).await;
    ping_until_received(&r0, r(1), &mut rx1).await;
    ping_until_received(&r2, r(1), &mut rx1).await;
    ping_until_received(&r1, r(0), &mut rx0).await;
    ping_until_received(&r1, r(2), &mut rx2).await;
}
