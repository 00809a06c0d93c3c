//! `NodeId`: the name of a replica or a client, as the transports label every frame.
//!
//! A node's id is never taken from what a peer claims: the transports look the peer's
//! authenticated public key up in the [`Membership`](crate::Membership), and that lookup
//! yields the id. Displayed and parsed as `r2` / `c0`; serialized as that string in
//! human-readable formats (TOML, JSON) and as a compact enum in binary ones (bincode).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// A replica or a client of the cluster.
///
/// Ordering puts every replica before every client, replicas by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    /// Replica number `i` (0-based; the PBFT primary of view v is replica `v mod n`).
    Replica(u32),
    /// Client number `i`.
    Client(u32),
}

impl NodeId {
    /// True for replicas.
    pub fn is_replica(self) -> bool {
        matches!(self, NodeId::Replica(_))
    }

    /// True for clients.
    pub fn is_client(self) -> bool {
        matches!(self, NodeId::Client(_))
    }

    /// The index within its kind (`r2` → 2, `c0` → 0).
    pub fn index(self) -> u32 {
        match self {
            NodeId::Replica(i) | NodeId::Client(i) => i,
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeId::Replica(i) => write!(f, "r{i}"),
            NodeId::Client(i) => write!(f, "c{i}"),
        }
    }
}

/// A string that is not `r<u32>` or `c<u32>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node id {0:?}: expected r<number> (replica) or c<number> (client)")]
pub struct ParseNodeIdError(pub String);

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseNodeIdError(s.to_owned());
        let (kind, digits) = s.split_at_checked(1).ok_or_else(invalid)?;
        // `u32::from_str` accepts a leading '+'; an id is digits only.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let index: u32 = digits.parse().map_err(|_| invalid())?;
        match kind {
            "r" => Ok(NodeId::Replica(index)),
            "c" => Ok(NodeId::Client(index)),
            _ => Err(invalid()),
        }
    }
}

/// Binary form: the enum as bincode writes it (variant tag, then the index).
#[derive(Serialize, Deserialize)]
enum NodeIdRepr {
    Replica(u32),
    Client(u32),
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            match *self {
                NodeId::Replica(i) => NodeIdRepr::Replica(i),
                NodeId::Client(i) => NodeIdRepr::Client(i),
            }
            .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(de::Error::custom)
        } else {
            Ok(match NodeIdRepr::deserialize(deserializer)? {
                NodeIdRepr::Replica(i) => NodeId::Replica(i),
                NodeIdRepr::Client(i) => NodeId::Client(i),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for id in [NodeId::Replica(0), NodeId::Replica(42), NodeId::Client(7)] {
            assert_eq!(id.to_string().parse::<NodeId>(), Ok(id));
        }
        assert_eq!(NodeId::Replica(2).to_string(), "r2");
        assert_eq!(NodeId::Client(0).to_string(), "c0");
        for bad in ["", "r", "x1", "r-1", "r+1", "c1a", "R1", "r99999999999"] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn replicas_order_before_clients() {
        assert!(NodeId::Replica(9) < NodeId::Client(0));
        assert!(NodeId::Replica(1) < NodeId::Replica(2));
    }

    #[test]
    fn binary_form_round_trips() {
        let ids = vec![NodeId::Replica(3), NodeId::Client(1)];
        let bytes = crate::codec::encode(&ids).expect("encode");
        let back: Vec<NodeId> = crate::codec::decode(&bytes, 1024).expect("decode");
        assert_eq!(back, ids);
    }
}
