//! Throughput of one QUIC connection on loopback: replica r0 streams frames to replica
//! r1 through `QuicTransport`, keeping a bounded number of bytes in flight, and r1
//! counts what arrives. Prints frames/s and MB/s (payload, 10^6 bytes) per frame size.
//!
//! ```sh
//! cargo run --release -p tandem-network --example quic_throughput -- \
//!     [--sizes 512,65536] [--seconds 3] [--initial-mtu 1200] [--mtu-upper 1452|off] \
//!     [--socket-buffer 4194304|off] [--stream-window 8388608] [--send-window 16777216]
//! ```

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_network::{
    Identity, Member, Membership, NodeId, QuicConfig, QuicTransport, Transport,
    wait_until_connected,
};
use tokio::sync::Notify;

struct Options {
    sizes: Vec<usize>,
    seconds: f64,
    config: QuicConfig,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        sizes: vec![512, 64 * 1024],
        seconds: 3.0,
        config: QuicConfig::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--sizes" => {
                options.sizes = value
                    .split(',')
                    .map(|s| s.parse().map_err(|e| format!("--sizes {s}: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => {
                options.seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?;
            }
            "--initial-mtu" => {
                options.config.initial_mtu =
                    u16::try_from(number()?).map_err(|e| format!("{flag}: {e}"))?;
            }
            "--mtu-upper" if value == "off" => options.config.mtu_discovery_upper_bound = None,
            "--mtu-upper" => {
                options.config.mtu_discovery_upper_bound =
                    Some(u16::try_from(number()?).map_err(|e| format!("{flag}: {e}"))?);
            }
            "--socket-buffer" if value == "off" => options.config.socket_buffer_bytes = None,
            "--socket-buffer" => {
                options.config.socket_buffer_bytes = Some(number()? as usize);
            }
            "--stream-window" => {
                options.config.stream_receive_window =
                    u32::try_from(number()?).map_err(|e| format!("{flag}: {e}"))?;
            }
            "--send-window" => options.config.send_window = number()?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let options = parse_options()?;
    println!(
        "config: initial_mtu={} mtu_upper={:?} socket_buffer={:?} stream_window={} send_window={}",
        options.config.initial_mtu,
        options.config.mtu_discovery_upper_bound,
        options.config.socket_buffer_bytes,
        options.config.stream_receive_window,
        options.config.send_window
    );
    println!(
        "{:>10} {:>12} {:>10} {:>9}",
        "frame", "frames/s", "MB/s", "dropped"
    );
    for &size in &options.sizes {
        run(size, options.seconds, &options.config).await?;
    }
    Ok(())
}

async fn run(
    size: usize,
    seconds: f64,
    config: &QuicConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    let keys = [Identity::generate()?, Identity::generate()?];
    let sockets = [
        UdpSocket::bind("127.0.0.1:0")?,
        UdpSocket::bind("127.0.0.1:0")?,
    ];
    let members = (0..2).map(|i| -> std::io::Result<Member> {
        Ok(Member {
            id: NodeId::Replica(i as u32),
            addr: Some(sockets[i].local_addr()?),
            public_key: keys[i].public_key(),
        })
    });
    let membership = Arc::new(Membership::new(
        members.collect::<std::io::Result<Vec<_>>>()?,
    )?);
    let [socket0, socket1] = sockets;
    let (sender, _rx0) =
        QuicTransport::with_socket(&keys[0], Arc::clone(&membership), socket0, config.clone())?;
    let (receiver, mut rx1) =
        QuicTransport::with_socket(&keys[1], Arc::clone(&membership), socket1, config.clone())?;
    let to = NodeId::Replica(1);
    if !wait_until_connected(&sender, &[to], Duration::from_secs(10)).await {
        return Err("the two replicas did not connect".into());
    }

    // The receiver counts; the sender keeps at most `window` bytes in flight.
    let received = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let counting = {
        let received = Arc::clone(&received);
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            while let Some((_, frame)) = rx1.recv().await {
                std::hint::black_box(&frame);
                received.fetch_add(1, Ordering::Relaxed);
                progress.notify_one();
            }
        })
    };
    let window = ((32usize << 20) / size).max(64) as u64;
    let frame = Bytes::from(vec![0xa5u8; size]);
    let mut sent = 0u64;
    let warm_up = Duration::from_millis(500);
    let start = Instant::now();
    let mut measured_from: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        if measured_from.is_none() && now - start >= warm_up {
            measured_from = Some((now, received.load(Ordering::Relaxed)));
        }
        if let Some((from, _)) = measured_from
            && (now - from).as_secs_f64() >= seconds
        {
            break;
        }
        while sent - received.load(Ordering::Relaxed) < window {
            sender.send(to, frame.clone());
            sent += 1;
        }
        let _ = tokio::time::timeout(Duration::from_millis(10), progress.notified()).await;
    }
    let (from, base) = measured_from.ok_or("no measurement window")?;
    let elapsed = from.elapsed().as_secs_f64();
    let frames = received.load(Ordering::Relaxed) - base;
    let rate = frames as f64 / elapsed;
    println!(
        "{:>10} {:>12.0} {:>10.1} {:>9}",
        size,
        rate,
        rate * size as f64 / 1e6,
        sender.counters().frames_dropped
    );
    counting.abort();
    sender.shutdown().await;
    receiver.shutdown().await;
    Ok(())
}
