//! The protocols Tandem runs, by name, and the dispatch that turns a name into a
//! monomorphised driver.
//!
//! Drivers (the simulator, the replica node, load clients) are generic over
//! `P: Protocol`; a [`ProtocolVisitor`] holds what a driver needs and
//! [`ProtocolKind::dispatch`] calls its `visit::<P>()` with the protocol a name picked.
//! Everything else here (names, Byzantine mode lists, client routing) goes through
//! that one dispatch, so no other code matches on the protocol.
//!
//! # Adding a protocol (HotStuff goes in `consensus/src/hotstuff/`)
//! 1. Implement [`Protocol`] for the replica type (e.g. `HotStuffReplica`), with:
//!    - `const NAME` — the name (`"hotstuff"`): `--protocol`, the cluster file's
//!      `[protocol] name`, and its own section `[protocol.hotstuff]`;
//!    - `type Params` implementing [`ProtocolParams`](crate::params::ProtocolParams)
//!      (serde with `#[serde(default, deny_unknown_fields)]`, durations as `*_ms`;
//!      `defaults_for`, `validate` naming the field, `set_view_timeout` — what
//!      `--view-timeout-ms` sets, e.g. the pacemaker's initial round time-out —,
//!      `for_simulator`, and the test-only `break_safety` that the simulator's
//!      broken-rule test flips, e.g. commit on a 1-chain);
//!    - `type Byzantine` implementing
//!      [`ByzantineBehaviour`] (`ALL`, `name`):
//!      the simulator builds one fault mix per mode, in `ALL`'s order, and
//!      `--byzantine` accepts exactly these names;
//!    - `build` (from [`CommonParams`], its params, a `Keyring`, an optional mode),
//!      `client_routing` (a [`ClientRouting`]: where
//!      clients send new requests, e.g. `Destination::Several` for the next leaders),
//!      `set_allowed_clients`, and `common_counters`
//!      ([`CommonCounters`](crate::protocol::CommonCounters): its
//!      `conflicting_commits` is what the simulator's checker reports as a safety
//!      violation; `view_changes` counts round time-outs);
//!    - the events/actions interface (`start`, `handle`, `status`, `counters`), with
//!      `Delivery::seq` numbering deliveries 1, 2, 3, … (block heights, not rounds);
//!    - durability: `type Record` (its log records), `Action::Persist` before every
//!      message that depends on a fact (HotStuff: its last voted round and its
//!      locked/highest quorum certificates before a vote, blocks before voting for
//!      them), `recover` (replays the records in order before `start`) and
//!      `durable_checkpoint` (a stable checkpoint's snapshot and the durable state
//!      that replace older records); `pbft/durable.rs` is the model.
//! 2. Register it here: a variant of [`ProtocolKind`], its entry in
//!    [`ProtocolKind::ALL`], and its arm in [`ProtocolKind::dispatch`].
//! 3. Sweep it in `consensus/tests/simulator.rs` (one test per mix of
//!    `FaultMix::all(ProtocolKind::HotStuff)`), as PBFT is.
//!
//! The simulator (`sim::run`, `tandem sim --protocol`), the node, `tandem local` and
//! `keygen` then take it by name; nothing else names a protocol.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::client::ClientRouting;
use crate::crypto::Keyring;
use crate::hotstuff::HotStuffReplica;
use crate::params::{CommonParams, ParamsError};
use crate::pbft::PbftReplica;
use crate::protocol::{ByzantineBehaviour, Protocol};

/// A protocol Tandem knows. Parses from and prints as its name (`pbft`); the default
/// (`pbft`) is what a cluster file without `[protocol] name` runs.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum ProtocolKind {
    /// PBFT (Castro and Liskov, OSDI 1999 / TOCS 2002): [`PbftReplica`].
    #[default]
    Pbft,
    /// 2-chain HotStuff (Jolteon, Gelashvili et al., FC 2022; DiemBFT v4), with a
    /// switch for 3-chain chained HotStuff: [`HotStuffReplica`].
    HotStuff,
}

/// Code that runs generic over a protocol: [`ProtocolKind::dispatch`] calls `visit`
/// with the protocol type a name picked (static dispatch: one monomorphised copy of
/// the driver per protocol).
pub trait ProtocolVisitor {
    /// What the visit returns.
    type Output;

    /// Runs with protocol `P`.
    fn visit<P: Protocol>(self) -> Self::Output;
}

/// A name that is not a protocol or not one of its Byzantine modes, or parameters a
/// protocol refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// No protocol has this name.
    #[error("unknown protocol `{name}`; known protocols: {known}")]
    UnknownProtocol {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The protocol has no Byzantine mode of this name.
    #[error("{protocol} has no Byzantine mode `{name}`; its modes: {known}")]
    UnknownByzantineMode {
        /// The protocol.
        protocol: &'static str,
        /// The name given.
        name: String,
        /// The protocol's modes, comma-separated.
        known: String,
    },
    /// The parameters are invalid for the protocol.
    #[error(transparent)]
    Params(#[from] ParamsError),
}

impl ProtocolKind {
    /// Every protocol, in the order help texts list them.
    pub const ALL: &'static [ProtocolKind] = &[ProtocolKind::Pbft, ProtocolKind::HotStuff];

    /// Runs `visitor` with this protocol's type.
    pub fn dispatch<V: ProtocolVisitor>(self, visitor: V) -> V::Output {
        match self {
            ProtocolKind::Pbft => visitor.visit::<PbftReplica>(),
            ProtocolKind::HotStuff => visitor.visit::<HotStuffReplica>(),
        }
    }

    /// The protocol's name ([`Protocol::NAME`]).
    pub fn name(self) -> &'static str {
        struct Name;
        impl ProtocolVisitor for Name {
            type Output = &'static str;
            fn visit<P: Protocol>(self) -> &'static str {
                P::NAME
            }
        }
        self.dispatch(Name)
    }

    /// Every protocol's name.
    pub fn names() -> Vec<&'static str> {
        ProtocolKind::ALL.iter().map(|k| k.name()).collect()
    }

    /// The protocol called `name`.
    ///
    /// # Errors
    /// [`RegistryError::UnknownProtocol`], listing the known names.
    pub fn from_name(name: &str) -> Result<ProtocolKind, RegistryError> {
        ProtocolKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == name)
            .ok_or_else(|| RegistryError::UnknownProtocol {
                name: name.to_string(),
                known: ProtocolKind::names().join(", "),
            })
    }

    /// The names of the protocol's Byzantine modes, in their fixed order.
    pub fn byzantine_modes(self) -> Vec<&'static str> {
        struct Modes;
        impl ProtocolVisitor for Modes {
            type Output = Vec<&'static str>;
            fn visit<P: Protocol>(self) -> Vec<&'static str> {
                P::Byzantine::ALL.iter().map(|m| m.name()).collect()
            }
        }
        self.dispatch(Modes)
    }

    /// Checks that the protocol has a Byzantine mode called `name`, and returns the
    /// mode's name.
    ///
    /// # Errors
    /// [`RegistryError::UnknownByzantineMode`], listing the protocol's modes.
    pub fn byzantine_mode(self, name: &str) -> Result<&'static str, RegistryError> {
        struct Check<'a>(&'a str);
        impl ProtocolVisitor for Check<'_> {
            type Output = Result<&'static str, RegistryError>;
            fn visit<P: Protocol>(self) -> Self::Output {
                byzantine_mode::<P>(self.0).map(ByzantineBehaviour::name)
            }
        }
        self.dispatch(Check(name))
    }

    /// The policy clients of the protocol use to route new requests in an
    /// `replicas`-replica cluster.
    pub fn client_routing(self, replicas: usize) -> Box<dyn ClientRouting> {
        struct Routing(usize);
        impl ProtocolVisitor for Routing {
            type Output = Box<dyn ClientRouting>;
            fn visit<P: Protocol>(self) -> Box<dyn ClientRouting> {
                P::client_routing(self.0)
            }
        }
        self.dispatch(Routing(replicas))
    }
}

impl fmt::Display for ProtocolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProtocolKind {
    type Err = RegistryError;

    fn from_str(name: &str) -> Result<ProtocolKind, RegistryError> {
        ProtocolKind::from_name(name)
    }
}

impl TryFrom<String> for ProtocolKind {
    type Error = RegistryError;

    fn try_from(name: String) -> Result<ProtocolKind, RegistryError> {
        ProtocolKind::from_name(&name)
    }
}

impl From<ProtocolKind> for String {
    fn from(kind: ProtocolKind) -> String {
        kind.name().to_string()
    }
}

/// `P`'s Byzantine mode called `name`.
///
/// # Errors
/// [`RegistryError::UnknownByzantineMode`], listing `P`'s modes.
pub fn byzantine_mode<P: Protocol>(name: &str) -> Result<P::Byzantine, RegistryError> {
    P::Byzantine::from_name(name).ok_or_else(|| RegistryError::UnknownByzantineMode {
        protocol: P::NAME,
        name: name.to_string(),
        known: P::Byzantine::ALL
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Builds replica `keys.me()` of protocol `P` from the common and `P`'s own
/// parameters, honest or misbehaving in the Byzantine mode called `byzantine`.
///
/// # Errors
/// An unknown mode name, or parameters `P` refuses (naming the field).
pub fn build<P: Protocol>(
    common: &CommonParams,
    own: &P::Params,
    keys: Keyring,
    byzantine: Option<&str>,
) -> Result<P, RegistryError> {
    let mode = byzantine.map(byzantine_mode::<P>).transpose()?;
    Ok(P::build(common, own, keys, mode)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ProtocolParams;
    use crate::pbft::PbftParams;

    #[test]
    fn names_roundtrip_and_unknown_names_list_the_known_ones() {
        for kind in ProtocolKind::ALL {
            assert_eq!(ProtocolKind::from_name(kind.name()), Ok(*kind));
            assert_eq!(kind.to_string().parse::<ProtocolKind>(), Ok(*kind));
        }
        assert_eq!(ProtocolKind::default().name(), "pbft");
        let err = ProtocolKind::from_name("raft").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown protocol `raft`; known protocols: pbft, hotstuff"
        );
    }

    #[test]
    fn byzantine_modes_are_the_protocols_own() {
        let modes = ProtocolKind::Pbft.byzantine_modes();
        assert_eq!(modes.len(), crate::pbft::ByzantineMode::ALL.len());
        assert!(modes.contains(&"view-change-storm"));
        assert_eq!(
            ProtocolKind::Pbft.byzantine_mode("equivocate"),
            Ok("equivocate")
        );
        let err = ProtocolKind::Pbft
            .byzantine_mode("timeout-storm")
            .unwrap_err();
        assert!(err.to_string().starts_with(
            "pbft has no Byzantine mode `timeout-storm`; its modes: silent, equivocate"
        ));
    }

    #[test]
    fn build_parses_the_mode_and_checks_the_parameters() {
        let common = CommonParams::default();
        let own = PbftParams::defaults_for(&common);
        let keys = Keyring::test_cluster(4, 1);
        let replica: PbftReplica = build(&common, &own, keys[1].clone(), Some("silent")).unwrap();
        assert_eq!(replica.id(), crate::types::ReplicaId(1));
        assert_eq!(
            replica.byzantine_mode(),
            Some(crate::pbft::ByzantineMode::Silent)
        );
        assert!(matches!(
            build::<PbftReplica>(&common, &own, keys[1].clone(), Some("nope")),
            Err(RegistryError::UnknownByzantineMode { .. })
        ));
        let bad = PbftParams { window: 1, ..own };
        let err = build::<PbftReplica>(&common, &bad, keys[1].clone(), None).unwrap_err();
        assert_eq!(
            err,
            RegistryError::Params(ParamsError::new(
                "window",
                "must be at least 2 × checkpoint_interval"
            ))
        );
    }

    #[test]
    fn deserializes_from_the_name() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StringDeserializer};
        let de: StringDeserializer<Error> = "pbft".to_string().into_deserializer();
        assert_eq!(ProtocolKind::deserialize(de).unwrap(), ProtocolKind::Pbft);
        let de: StringDeserializer<Error> = "raft".to_string().into_deserializer();
        let err = ProtocolKind::deserialize(de).unwrap_err().to_string();
        assert!(err.contains("known protocols: pbft"), "{err}");
        assert_eq!(String::from(ProtocolKind::Pbft), "pbft");
    }
}
