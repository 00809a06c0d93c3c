//! The cluster file's `[protocol]` section: which protocol the replicas run (`name`,
//! `pbft` when absent), the parameters every protocol shares, and each protocol's own
//! section (`[protocol.pbft]`, later `[protocol.hotstuff]`):
//!
//! ```toml
//! [protocol]
//! name = "pbft"
//! replicas = 4
//! max_batch = 1024
//! checkpoint_interval = 128
//!
//! [protocol.pbft]
//! window = 256
//! view_timeout_ms = 1000
//! ```
//!
//! A file written before protocols had names (no `name`) keeps working: PBFT's own
//! fields found directly in `[protocol]` are read as `[protocol.pbft]`. Own sections
//! are kept as TOML and typed through the registry when used or validated, so this
//! module names no protocol.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tandem_consensus::{
    CommonParams, Protocol, ProtocolKind, ProtocolParams, ProtocolVisitor, RegistryError,
};

/// The `[protocol]` section of a cluster file.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolSection {
    /// The protocol the replicas run.
    pub name: ProtocolKind,
    /// The parameters every protocol shares.
    pub common: CommonParams,
    /// Each protocol's own section, as written; a protocol without one runs with
    /// its defaults for `common` ([`ProtocolParams::defaults_for`]).
    own: BTreeMap<ProtocolKind, toml::Table>,
}

impl Default for ProtocolSection {
    fn default() -> ProtocolSection {
        ProtocolSection::new(ProtocolKind::default(), CommonParams::default())
    }
}

impl ProtocolSection {
    /// `name` with `common` and its own defaults for them.
    pub fn new(name: ProtocolKind, common: CommonParams) -> ProtocolSection {
        ProtocolSection {
            name,
            common,
            own: BTreeMap::new(),
        }
    }

    /// Protocol `P`'s own parameters: its section, or its defaults for the common
    /// parameters when the file has none.
    ///
    /// # Errors
    /// A field of the section is unknown or of the wrong type (the error names it).
    pub fn own_params<P: Protocol>(&self) -> Result<P::Params> {
        let kind = ProtocolKind::from_name(P::NAME)?;
        match self.own.get(&kind) {
            None => Ok(P::Params::defaults_for(&self.common)),
            Some(table) => table
                .clone()
                .try_into()
                .map_err(|e| anyhow!("[protocol.{}] {}", P::NAME, e.to_string().trim_end())),
        }
    }

    /// Replaces protocol `P`'s own section.
    pub fn set_own_params<P: Protocol>(&mut self, own: &P::Params) -> Result<()> {
        let kind = ProtocolKind::from_name(P::NAME)?;
        let table = toml::Table::try_from(own)
            .map_err(|e| anyhow!("cannot encode [protocol.{}]: {e}", P::NAME))?;
        self.own.insert(kind, table);
        Ok(())
    }

    /// Sets the chosen protocol's initial leader time-out
    /// ([`ProtocolParams::set_view_timeout`]) in its own section.
    pub fn set_view_timeout(&mut self, initial: std::time::Duration) -> Result<()> {
        struct SetTimeout<'a>(&'a mut ProtocolSection, std::time::Duration);
        impl ProtocolVisitor for SetTimeout<'_> {
            type Output = Result<()>;
            fn visit<P: Protocol>(self) -> Result<()> {
                let mut own = self.0.own_params::<P>()?;
                own.set_view_timeout(self.1);
                self.0.set_own_params::<P>(&own)
            }
        }
        self.name.dispatch(SetTimeout(self, initial))
    }

    /// Sets field `key` of the chosen protocol's own section to `value`
    /// ([`ProtocolParams::set_param`]).
    ///
    /// # Errors
    /// The protocol has no such field, or the value does not fit it.
    pub fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        struct Set<'a>(&'a mut ProtocolSection, &'a str, &'a str);
        impl ProtocolVisitor for Set<'_> {
            type Output = Result<()>;
            fn visit<P: Protocol>(self) -> Result<()> {
                let mut own = self.0.own_params::<P>()?;
                own.set_param(self.1, self.2)
                    .map_err(|e| anyhow!("[protocol.{}] {e}", P::NAME))?;
                self.0.set_own_params::<P>(&own)
            }
        }
        let name = self.name;
        name.dispatch(Set(self, key, value))
    }

    /// Checks the common parameters and every own section present (and the chosen
    /// protocol's, present or not); the error names the section and the field.
    pub fn validate(&self) -> Result<()> {
        struct Check<'a>(&'a ProtocolSection);
        impl ProtocolVisitor for Check<'_> {
            type Output = Result<()>;
            fn visit<P: Protocol>(self) -> Result<()> {
                let own = self.0.own_params::<P>()?;
                own.validate(&self.0.common)
                    .map_err(|e| anyhow!("[protocol.{}] {e}", P::NAME))
            }
        }
        self.common
            .validate()
            .map_err(|e| anyhow!("[protocol] {e}"))?;
        self.name.dispatch(Check(self))?;
        for kind in self.own.keys().filter(|k| **k != self.name) {
            kind.dispatch(Check(self))?;
        }
        Ok(())
    }

    /// Reads the section from its TOML table.
    fn from_table(mut table: toml::Table) -> Result<ProtocolSection> {
        let named = table.remove("name");
        let name = match &named {
            None => ProtocolKind::default(),
            Some(toml::Value::String(s)) => ProtocolKind::from_name(s)?,
            Some(other) => bail!(
                "`name` must be a string naming a protocol ({}), not {other}",
                ProtocolKind::names().join(", ")
            ),
        };
        let mut own = BTreeMap::new();
        let sections: Vec<String> = table
            .iter()
            .filter(|(_, v)| v.is_table())
            .map(|(k, _)| k.clone())
            .collect();
        for key in sections {
            let kind = ProtocolKind::from_name(&key).map_err(|e| match e {
                RegistryError::UnknownProtocol { known, .. } => {
                    anyhow!("unknown section [protocol.{key}]; known protocols: {known}")
                }
                other => anyhow!(other),
            })?;
            if let Some(toml::Value::Table(t)) = table.remove(&key) {
                own.insert(kind, t);
            }
        }
        if named.is_none() {
            move_legacy_fields(&mut table, name, &mut own)?;
        }
        let common: CommonParams = table
            .try_into()
            .map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        let section = ProtocolSection { name, common, own };
        if named.is_none() {
            section.check_types().map_err(|e| {
                anyhow!("{e:#} (a [protocol] without `name` is {name}, its own fields beside the common ones)")
            })?;
        }
        Ok(section)
    }

    /// Checks that the chosen protocol's own section has the protocol's fields, of
    /// the right types (not their ranges: [`ProtocolSection::validate`] does).
    fn check_types(&self) -> Result<()> {
        struct Parse<'a>(&'a ProtocolSection);
        impl ProtocolVisitor for Parse<'_> {
            type Output = Result<()>;
            fn visit<P: Protocol>(self) -> Result<()> {
                self.0.own_params::<P>().map(drop)
            }
        }
        self.name.dispatch(Parse(self))
    }
}

/// Moves every field of `table` that is not a common parameter into `name`'s own
/// section: in a file without `name` (written before protocols had sections), PBFT's
/// fields sit in `[protocol]` itself. An unknown field moves too, and the own
/// section's type then names it.
fn move_legacy_fields(
    table: &mut toml::Table,
    name: ProtocolKind,
    own: &mut BTreeMap<ProtocolKind, toml::Table>,
) -> Result<()> {
    let common = toml::Table::try_from(CommonParams::default())
        .map_err(|e| anyhow!("cannot encode the common parameters: {e}"))?;
    let legacy: Vec<String> = table
        .keys()
        .filter(|k| !common.contains_key(*k))
        .cloned()
        .collect();
    if legacy.is_empty() {
        return Ok(());
    }
    let section = own.entry(name).or_default();
    for key in legacy {
        if section.contains_key(&key) {
            bail!("`{key}` appears both in [protocol] and in [protocol.{name}]");
        }
        if let Some(value) = table.remove(&key) {
            section.insert(key, value);
        }
    }
    Ok(())
}

impl Serialize for ProtocolSection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape<'a> {
            name: ProtocolKind,
            #[serde(flatten)]
            common: &'a CommonParams,
            #[serde(flatten)]
            own: &'a BTreeMap<ProtocolKind, toml::Table>,
        }
        Shape {
            name: self.name,
            common: &self.common,
            own: &self.own,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ProtocolSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProtocolSection, D::Error> {
        let table = toml::Table::deserialize(d)?;
        ProtocolSection::from_table(table).map_err(|e| D::Error::custom(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_consensus::pbft::{PbftParams, PbftReplica};

    #[derive(Debug, Serialize, Deserialize)]
    struct File {
        #[serde(default)]
        protocol: ProtocolSection,
    }

    fn parse(text: &str) -> Result<ProtocolSection> {
        let file: File = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        file.protocol.validate()?;
        Ok(file.protocol)
    }

    #[test]
    fn roundtrips_with_name_common_fields_and_own_section() {
        let mut section = ProtocolSection::new(
            ProtocolKind::Pbft,
            CommonParams {
                max_batch: 77,
                ..CommonParams::default()
            },
        );
        section
            .set_view_timeout(std::time::Duration::from_millis(250))
            .unwrap();
        let text = toml::to_string(&File {
            protocol: section.clone(),
        })
        .unwrap();
        assert!(text.starts_with("[protocol]\nname = \"pbft\"\n"), "{text}");
        assert!(text.contains("[protocol.pbft]"), "{text}");
        assert!(text.contains("view_timeout_ms = 250"), "{text}");
        let back = parse(&text).unwrap();
        assert_eq!(back, section);
        let own = back.own_params::<PbftReplica>().unwrap();
        assert_eq!(own.view_timeout, std::time::Duration::from_millis(250));
        assert_eq!(own.max_view_timeout, std::time::Duration::from_millis(4000));
    }

    #[test]
    fn a_file_without_name_is_pbft_with_its_fields_in_protocol() {
        let s = parse("[protocol]\nreplicas = 7\nwindow = 512\nmax_in_flight = 9\n").unwrap();
        assert_eq!(s.name, ProtocolKind::Pbft);
        assert_eq!(s.common.replicas, 7);
        let own = s.own_params::<PbftReplica>().unwrap();
        assert_eq!((own.window, own.max_in_flight), (512, 9));
        // No section at all: the defaults for the common parameters.
        let s = parse("[protocol]\ncheckpoint_interval = 300\n").unwrap();
        assert_eq!(s.own_params::<PbftReplica>().unwrap().window, 600);
        let s = parse("").unwrap();
        assert_eq!(s, ProtocolSection::default());
        assert_eq!(
            s.own_params::<PbftReplica>().unwrap(),
            PbftParams::default()
        );
    }

    #[test]
    fn hotstuff_leader_election_reads_from_its_section() {
        use tandem_consensus::hotstuff::HotStuffReplica;
        use tandem_consensus::hotstuff::leaders::LeaderElection;
        let s = parse(
            "[protocol]\nname = \"hotstuff\"\n[protocol.hotstuff]\nleader_election = \"reputation\"\n",
        )
        .unwrap();
        s.validate().unwrap();
        let own = s.own_params::<HotStuffReplica>().unwrap();
        assert_eq!(own.leader_election, LeaderElection::Reputation);
        let s = parse("[protocol]\nname = \"hotstuff\"\n").unwrap();
        let own = s.own_params::<HotStuffReplica>().unwrap();
        assert_eq!(own.leader_election, LeaderElection::RoundRobin);
        let bad = parse(
            "[protocol]\nname = \"hotstuff\"\n[protocol.hotstuff]\nleader_election = \"random\"\n",
        );
        let e = format!("{:#}", bad.unwrap_err());
        assert!(e.contains("leader_election") || e.contains("random"), "{e}");
    }

    #[test]
    fn errors_name_the_section_and_the_field() {
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        let e = err("[protocol]\nname = \"raft\"\n");
        assert!(
            e.contains("unknown protocol `raft`") && e.contains("pbft"),
            "{e}"
        );
        let e = err("[protocol]\nname = \"pbft\"\nwindow = 512\n");
        assert!(e.contains("unknown field `window`"), "{e}");
        let e = err("[protocol]\nname = \"pbft\"\n[protocol.pbft]\nbogus = 1\n");
        assert!(e.contains("[protocol.pbft]") && e.contains("bogus"), "{e}");
        let e = err("[protocol]\n[protocol.pbft]\nwindow = \"wide\"\n");
        assert!(e.contains("[protocol.pbft]") && e.contains("window"), "{e}");
        let e = err("[protocol]\n[protocol.pbft]\nwindow = 3\n");
        assert!(
            e.contains("[protocol.pbft]") && e.contains("`window`"),
            "{e}"
        );
        let e = err("[protocol]\nmax_batch = 0\n");
        assert!(e.contains("[protocol]") && e.contains("`max_batch`"), "{e}");
        let e = err("[protocol]\n[protocol.paxos]\nx = 1\n");
        assert!(
            e.contains("[protocol.paxos]") && e.contains("known protocols"),
            "{e}"
        );
        let e = err("[protocol]\nwindow = 512\n[protocol.pbft]\nwindow = 512\n");
        assert!(e.contains("`window` appears both"), "{e}");
        let e = err("[protocol]\nreplicas = 4\nbogus = 1\n");
        assert!(
            e.contains("bogus") && e.contains("without `name` is pbft"),
            "{e}"
        );
        let e = err("[protocol]\nname = 3\n");
        assert!(e.contains("`name` must be a string"), "{e}");
    }
}
