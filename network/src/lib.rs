//! tandem-network: the transports that carry opaque frames between Tandem's replicas
//! and clients, and the fault-injection layer around them.
//!
//! - [`Transport`]: send a frame to a peer without waiting; receive `(sender, frame)`
//!   on the [`Inbound`] channel the constructor returns; read [`Counters`]; `shutdown`.
//! - [`QuicTransport`]: quinn + rustls (ring), mutual TLS pinned to the members' Ed25519
//!   keys ([`Identity`], [`Membership`]), one connection per peer pair, one ordered
//!   stream per direction of length-prefixed frames ([`wire`]), reconnection with
//!   back-off.
//! - [`MemoryTransport`] on a [`MemoryHub`]: the same contract without sockets.
//! - [`FaultyTransport`] + [`FaultHandle`]: loss, delay (and rising-delay ramps),
//!   duplicate, reorder, flapping links, partitions, isolation, one-way cuts, heal;
//!   changeable at run time as a whole [`FaultRules`] value, seeded.
//! - [`codec`]: bincode 2 encoding of messages, always decoded under a size limit.
//!
//! The crate knows nothing of the protocol; it depends on no other Tandem crate.

pub mod certificate;
pub mod codec;
mod counters;
pub mod fault_injection;
mod identity;
mod memory_transport;
mod node_id;
pub mod pinned_tls;
mod quic_transport;
mod transport;
pub mod wire;

pub use codec::{DecodeError, EncodeError, decode, encode};
pub use counters::{Counters, PeerCounters};
pub use fault_injection::{
    Delay, FaultCounters, FaultError, FaultHandle, FaultRules, FaultyTransport, Flap, LinkFaults,
    LinkRule,
};
pub use identity::{
    Identity, IdentityError, Member, Membership, MembershipError, PUBLIC_KEY_LEN, PublicKey,
    SIGNATURE_LEN, WeakKey, check_public_key, verify_signature,
};
pub use memory_transport::{DEFAULT_MEMORY_INBOUND_CAPACITY, MemoryHub, MemoryTransport};
pub use node_id::{NodeId, ParseNodeIdError};
pub use quic_transport::{QuicConfig, QuicError, QuicTransport};
pub use transport::{Inbound, ShutdownFuture, Transport, wait_until_connected};
