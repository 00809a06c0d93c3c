//! tandem-network: transports that carry frames between replicas and clients.
//!
//! Being built under issue 5 (pinned-key QUIC mesh, in-memory transport, fault layer).
