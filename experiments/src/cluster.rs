//! The cluster file (TOML: the protocol and its parameters, execution, the workload
//! that defines genesis, and every member's id, address and public key) and the
//! per-member key files. Loading validates everything and names the file and the
//! field at fault.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use tandem_consensus::client_auth::MacKey;
use tandem_executor::evm::{Address, EvmAuth, EvmConfig, EvmWorkloadSpec};
use tandem_executor::{EXECUTOR_NAMES, ExecutionLimits, ExecutorOptions, WorkloadSpec};
use tandem_network::{Member, Membership, NodeId};

use crate::protocol_section::ProtocolSection;
pub use crate::replica_address::ReplicaAddress;
use crate::replica_address::resolve_all;

/// How long a member waits at start for replica host names to resolve (containers
/// and services that start together appear in DNS one by one).
pub const RESOLVE_WAIT: Duration = Duration::from_secs(30);

/// Bytes of a frame a state chunk must leave free: the application's proof beside
/// the chunk's bound (a ledger chunk's range proof is under 5 KiB) and the message
/// around it.
pub const STATE_CHUNK_HEADROOM: usize = 16 << 10;

/// The whole cluster description, shared by every replica and client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The protocol, the parameters every protocol shares, and each protocol's own
    /// section (see [`ProtocolSection`]).
    #[serde(default)]
    pub protocol: ProtocolSection,
    /// How replicas execute committed batches.
    #[serde(default)]
    pub execution: ExecutionConfig,
    /// The workload whose genesis every replica starts from, and the default one load
    /// clients generate.
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// With `[execution] vm = "evm"`: the EVM workload whose genesis (contracts
    /// deployed and seeded) every replica starts from and load clients generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evm_workload: Option<EvmWorkloadSpec>,
    /// Transport limits.
    #[serde(default)]
    pub network: NetworkConfig,
    /// What replicas keep across a restart.
    #[serde(default)]
    pub storage: StorageConfig,
    /// The replicas, ids 0..n in order.
    #[serde(rename = "replica", default)]
    pub replicas: Vec<ReplicaEntry>,
    /// The clients allowed to connect.
    #[serde(rename = "client", default)]
    pub clients: Vec<ClientEntry>,
    /// The launcher: the one identity whose control frames replicas obey (fault rules,
    /// status queries). Without it, replicas refuse every control frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlEntry>,
}

/// `[control]`: the launcher's identity. It connects like a client (its id is a client
/// id, `NodeId::Client(id)`, its key pinned like every member's) but sends no requests;
/// a replica obeys a control frame only from this key, and refuses, counts
/// (`control_refused`) and logs one from any other member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlEntry {
    /// The launcher's client id (distinct from every `[[client]]` id).
    #[serde(default = "ControlEntry::default_id")]
    pub id: u32,
    /// Its Ed25519 public key, hex.
    pub public_key: String,
    /// Seeds each replica's fault layer (losses, delays, duplicates drawn at the
    /// sender), mixed with the replica's id.
    #[serde(default)]
    pub fault_seed: u64,
}

impl ControlEntry {
    /// The launcher's id when the file gives none: the highest client id, far from the
    /// load clients' 0, 1, 2, …
    pub const DEFAULT_ID: u32 = u32::MAX;

    fn default_id() -> u32 {
        Self::DEFAULT_ID
    }

    /// The launcher as a transport member id.
    pub fn node_id(&self) -> NodeId {
        NodeId::Client(self.id)
    }
}

/// Execution settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// The VM: `ledger` (the native DeFi ledger, `[workload]`) or `evm` (revm,
    /// `[evm_workload]`).
    pub vm: String,
    /// `sequential`, `block-stm`, `access-list`, `auto`, or `none` (no ledger: a hash
    /// chain over the requests, to measure consensus alone).
    pub executor: String,
    /// Executor threads per replica.
    pub threads: usize,
    /// Most gas one transaction may cost (`tandem_executor::ExecutionLimits`): above
    /// it a request is refused at admission and aborts with `cost_limit` if ordered.
    pub max_tx_cost: u64,
    /// Most gas one batch may spend; a transaction that does not fit aborts with
    /// `batch_budget`.
    pub max_batch_cost: u64,
    /// Executor tunables.
    pub options: ExecutorOptions,
    /// EVM: the largest gas limit a transaction may declare.
    pub max_tx_gas: u64,
    /// EVM: gas a batch may reserve (the sum of its admitted transactions' limits);
    /// the first transaction that does not fit and every later one are refused.
    pub max_batch_gas: u64,
    /// EVM: how a transaction's sender is authenticated: `channel` (the default:
    /// the client's authenticated channel vouches for `from`) or `secp256k1`
    /// (Ethereum signatures for chain id `tandem_executor::evm::CHAIN_ID`, senders
    /// recovered on the executor's threads before each batch; the
    /// `[evm_workload]` accounts are then the keys' addresses, `EvmAccounts`, and
    /// a replica decodes only signed transactions).
    #[serde(skip_serializing_if = "EvmAuth::is_channel")]
    pub evm_auth: EvmAuth,
    /// EVM: the block's base fee, wei per gas (`EvmConfig::base_fee`, default 0):
    /// a transaction whose max fee or gas price is below it is refused; every one
    /// that runs burns gas used × base fee. Part of the replicated state machine:
    /// every replica reads it from this file.
    #[serde(skip_serializing_if = "is_zero")]
    pub evm_base_fee: u64,
    /// EVM: the block beneficiary credited the transactions' priority fees
    /// (`EvmConfig::beneficiary`), 40 hex digits (optional `0x`); by default
    /// `tandem_executor::evm::DEFAULT_BENEFICIARY`.
    #[serde(
        with = "beneficiary_hex",
        skip_serializing_if = "beneficiary_hex::is_default"
    )]
    pub evm_beneficiary: Address,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `evm_beneficiary` as a hex string (`parse_address`).
mod beneficiary_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use tandem_executor::evm::{Address, DEFAULT_BENEFICIARY, parse_address};

    pub fn is_default(a: &Address) -> bool {
        *a == DEFAULT_BENEFICIARY
    }

    pub fn serialize<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(a.as_slice())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let text = String::deserialize(d)?;
        parse_address(&text).map_err(serde::de::Error::custom)
    }
}

impl ExecutionConfig {
    /// The executor options with this section's cost limits.
    pub fn executor_options(&self) -> ExecutorOptions {
        ExecutorOptions {
            limits: ExecutionLimits {
                max_tx_cost: self.max_tx_cost,
                max_batch_cost: self.max_batch_cost,
            },
            ..self.options.clone()
        }
    }

    /// The EVM's gas bounds, authentication, base fee and beneficiary from this
    /// section.
    pub fn evm_config(&self) -> EvmConfig {
        EvmConfig {
            max_tx_gas: self.max_tx_gas,
            max_batch_gas: self.max_batch_gas,
            auth: self.evm_auth,
            base_fee: self.evm_base_fee,
            beneficiary: self.evm_beneficiary,
            ..EvmConfig::default()
        }
    }
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            vm: "ledger".to_string(),
            executor: "block-stm".to_string(),
            threads: 2,
            max_tx_cost: ExecutionLimits::default().max_tx_cost,
            max_batch_cost: ExecutionLimits::default().max_batch_cost,
            options: ExecutorOptions::default(),
            max_tx_gas: EvmConfig::default().max_tx_gas,
            max_batch_gas: 400_000_000,
            evm_auth: EvmAuth::Channel,
            evm_base_fee: 0,
            evm_beneficiary: tandem_executor::evm::DEFAULT_BENEFICIARY,
        }
    }
}

/// Transport settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Largest frame accepted or sent, in bytes.
    pub max_frame_bytes: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            max_frame_bytes: 64 << 20,
        }
    }
}

/// What a replica keeps across a restart (`[storage]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Nothing: a restarted replica starts empty and catches up from its peers by
    /// state transfer; it counts toward f until its old votes are below a stable
    /// checkpoint, and a cluster where more than f replicas restart at once loses
    /// what it acknowledged.
    #[default]
    None,
    /// A write-ahead log under the replica's data directory (the node's `wal/`): the
    /// protocol's records are durable before the messages that depend on them leave,
    /// and a restart replays the snapshot and the log, then catches up from peers.
    Wal,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Durability, String> {
        match s {
            "none" => Ok(Durability::None),
            "wal" => Ok(Durability::Wal),
            other => Err(format!("unknown durability `{other}`: none or wal")),
        }
    }
}

impl Durability {
    /// Its name in cluster files and on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Durability::None => "none",
            Durability::Wal => "wal",
        }
    }
}

/// Storage settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `none` or `wal`.
    pub durability: Durability,
    /// A log segment is closed at this many bytes.
    pub segment_bytes: u64,
    /// The log is compacted at a stable checkpoint once this many bytes were logged
    /// since the last compaction (default 4 MiB: a restart replays and re-executes
    /// everything since, so this bounds how long a restarted replica is out).
    pub compact_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            durability: Durability::None,
            segment_bytes: 64 << 20,
            compact_bytes: 4 << 20,
        }
    }
}

/// One replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaEntry {
    /// Its index, 0..n.
    pub id: u32,
    /// Where it listens (UDP, QUIC): `ip:port` or `host:port`, resolved at start.
    pub address: ReplicaAddress,
    /// Its Ed25519 public key, hex.
    pub public_key: String,
}

/// One client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    /// Its id.
    pub id: u32,
    /// Its Ed25519 public key, hex.
    pub public_key: String,
}

impl ClusterFile {
    /// Reads and validates a cluster file.
    pub fn load(path: &Path) -> Result<ClusterFile> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read cluster file {}", path.display()))?;
        let cluster: ClusterFile =
            toml::from_str(&text).map_err(|e| anyhow!("cluster file {}: {e}", path.display()))?;
        cluster
            .validate()
            .map_err(|e| anyhow!("cluster file {}: {e}", path.display()))?;
        Ok(cluster)
    }

    /// Writes the cluster file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).context("cannot encode the cluster file")?;
        fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.protocol.validate()?;
        if self.replicas.len() != self.protocol.common.replicas {
            bail!(
                "[protocol] replicas = {} but the file lists {} [[replica]] entries",
                self.protocol.common.replicas,
                self.replicas.len()
            );
        }
        let mut keys = BTreeSet::new();
        for (i, r) in self.replicas.iter().enumerate() {
            if r.id as usize != i {
                bail!(
                    "[[replica]] entry {i}: id = {} but replicas must be listed in order 0..n",
                    r.id
                );
            }
            let key = parse_public_key(&r.public_key)
                .map_err(|e| anyhow!("[[replica]] id = {}: public_key {e}", r.id))?;
            if !keys.insert(key) {
                bail!(
                    "[[replica]] id = {}: public_key is used by another member",
                    r.id
                );
            }
        }
        let mut client_ids = BTreeSet::new();
        for c in &self.clients {
            if !client_ids.insert(c.id) {
                bail!("[[client]] id = {} appears twice", c.id);
            }
            let key = parse_public_key(&c.public_key)
                .map_err(|e| anyhow!("[[client]] id = {}: public_key {e}", c.id))?;
            if !keys.insert(key) {
                bail!(
                    "[[client]] id = {}: public_key is used by another member",
                    c.id
                );
            }
        }
        if let Some(control) = &self.control {
            if client_ids.contains(&control.id) {
                bail!(
                    "[control] id = {} is also a [[client]] id: the launcher needs an id of its own",
                    control.id
                );
            }
            let key = parse_public_key(&control.public_key)
                .map_err(|e| anyhow!("[control] public_key {e}"))?;
            if !keys.insert(key) {
                bail!("[control] public_key is used by another member");
            }
        }
        let executor = self.execution.executor.as_str();
        if executor != "none" && !EXECUTOR_NAMES.contains(&executor) {
            bail!(
                "[execution] executor = \"{executor}\" is not one of none, {}",
                EXECUTOR_NAMES.join(", ")
            );
        }
        if self.execution.threads == 0 {
            bail!("[execution] threads must be at least 1");
        }
        if self.execution.max_tx_cost == 0 {
            bail!("[execution] max_tx_cost must be at least 1");
        }
        if self.execution.max_batch_cost < self.execution.max_tx_cost {
            bail!("[execution] max_batch_cost must be at least max_tx_cost");
        }
        self.workload
            .validate()
            .map_err(|e| anyhow!("[workload] {e}"))?;
        match (self.execution.vm.as_str(), &self.evm_workload) {
            ("ledger", None) if !self.execution.evm_auth.is_channel() => {
                bail!("[execution] evm_auth is for vm = \"evm\"")
            }
            ("ledger", None) if self.execution.evm_base_fee != 0 => {
                bail!("[execution] evm_base_fee is for vm = \"evm\"")
            }
            ("ledger", None)
                if self.execution.evm_beneficiary != tandem_executor::evm::DEFAULT_BENEFICIARY =>
            {
                bail!("[execution] evm_beneficiary is for vm = \"evm\"")
            }
            ("ledger", None) => {}
            ("ledger", Some(_)) => {
                bail!("[evm_workload] is given but [execution] vm = \"ledger\" (set vm = \"evm\")")
            }
            ("evm", None) => bail!("[execution] vm = \"evm\" needs an [evm_workload] section"),
            ("evm", Some(spec)) => {
                if executor == "none" {
                    bail!("[execution] vm = \"evm\" needs an executor, not none");
                }
                spec.validate().map_err(|e| anyhow!("[evm_workload] {e}"))?;
                if self.execution.max_tx_gas == 0
                    || self.execution.max_batch_gas < self.execution.max_tx_gas
                {
                    bail!(
                        "[execution] max_tx_gas must be at least 1 and max_batch_gas at least max_tx_gas"
                    );
                }
            }
            (other, _) => bail!("[execution] vm = \"{other}\" is not one of ledger, evm"),
        }
        if self.network.max_frame_bytes < 1 << 16 {
            bail!("[network] max_frame_bytes must be at least 65536");
        }
        let chunk = self.protocol.common.state_chunk_bytes;
        if chunk.saturating_add(STATE_CHUNK_HEADROOM) > self.network.max_frame_bytes {
            bail!(
                "[protocol] state_chunk_bytes ({chunk}) must leave {STATE_CHUNK_HEADROOM} bytes of \
                 a frame ([network] max_frame_bytes = {}) for the chunk's proof and message",
                self.network.max_frame_bytes
            );
        }
        Ok(())
    }

    /// Every replica's public key, by index.
    pub fn replica_keys(&self) -> Vec<[u8; 32]> {
        self.replicas
            .iter()
            .map(|r| parse_public_key(&r.public_key).expect("validated"))
            .collect()
    }

    /// Every replica's address, host names resolved (waiting up to [`RESOLVE_WAIT`]
    /// for names not yet in DNS), by index.
    pub fn resolve_addresses(&self) -> Result<Vec<SocketAddr>> {
        let addresses: Vec<ReplicaAddress> =
            self.replicas.iter().map(|r| r.address.clone()).collect();
        resolve_all(&addresses, RESOLVE_WAIT)
    }

    /// Where replica `id` binds: its IP address, or for a host name the unspecified
    /// address of the resolved family at its port.
    pub fn listen_address(&self, id: u32) -> Result<SocketAddr> {
        let entry = self
            .replicas
            .get(id as usize)
            .ok_or_else(|| anyhow!("replica {id} is not in the cluster file"))?;
        let resolved = resolve_all(std::slice::from_ref(&entry.address), RESOLVE_WAIT)?;
        Ok(entry.address.listen_address(resolved[0]))
    }

    /// The transport's view of the cluster (host names resolved as
    /// [`ClusterFile::resolve_addresses`] does).
    pub fn membership(&self) -> Result<Arc<Membership>> {
        let resolved = self.resolve_addresses()?;
        let replicas = self.replicas.iter().zip(resolved).map(|(r, addr)| Member {
            id: NodeId::Replica(r.id),
            addr: Some(addr),
            public_key: parse_public_key(&r.public_key).expect("validated"),
        });
        let clients = self.clients.iter().map(|c| Member {
            id: NodeId::Client(c.id),
            addr: None,
            public_key: parse_public_key(&c.public_key).expect("validated"),
        });
        let launcher = self.control.iter().map(|c| Member {
            id: c.node_id(),
            addr: None,
            public_key: parse_public_key(&c.public_key).expect("validated"),
        });
        Ok(Arc::new(Membership::new(
            replicas.chain(clients).chain(launcher),
        )?))
    }

    /// The launcher's member id, if the file has a `[control]` section.
    pub fn launcher(&self) -> Option<NodeId> {
        self.control.as_ref().map(ControlEntry::node_id)
    }
}

/// The launcher's key file name in a cluster folder.
pub const LAUNCHER_KEY: &str = "launcher.key";

/// The name of the cluster file in a cluster folder.
pub const CLUSTER_TOML: &str = "cluster.toml";

/// Writes a cluster folder: `dir/cluster.toml` and one `dir/<id>.key` per member (e.g.
/// `r0.key`, `c1.key`), creating `dir` if needed. Returns the cluster file's path and
/// the key files' paths in the order of `keys`.
pub fn save_cluster_folder(
    dir: &Path,
    cluster: &ClusterFile,
    keys: &[KeyFile],
) -> Result<(PathBuf, Vec<PathBuf>)> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cluster_path = dir.join(CLUSTER_TOML);
    cluster.save(&cluster_path)?;
    let mut key_paths = Vec::with_capacity(keys.len());
    let launcher = cluster.launcher().map(|id| id.to_string());
    for key in keys {
        let path = if launcher.as_deref() == Some(key.id.as_str()) {
            dir.join(LAUNCHER_KEY)
        } else {
            dir.join(format!("{}.key", key.id))
        };
        key.save(&path)?;
        key_paths.push(path);
    }
    Ok((cluster_path, key_paths))
}

/// Parses a 32-byte hex public key and refuses weak or invalid ones (the identity,
/// other small-order points, non-points, non-canonical spellings:
/// [`tandem_network::check_public_key`]).
fn parse_public_key(hex_key: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(hex_key.trim()).map_err(|e| anyhow!("is not hex: {e}"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow!("has {} bytes, expected 32", b.len()))?;
    tandem_network::check_public_key(&key).map_err(|e| anyhow!("{e}"))?;
    Ok(key)
}

/// Whether a key file readable by its group or others is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFileAccess {
    /// Refuse it (the default).
    OwnerOnly,
    /// Accept it (`--allow-shared-key-file`: secrets mounted into a container).
    AllowShared,
}

/// A member's private key file: its id and its PKCS#8 Ed25519 key, hex encoded; a
/// client's also holds the MAC keys it shares with each replica.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Whose key this is, as `r0` or `c1`.
    pub id: String,
    /// The PKCS#8 v2 document, hex.
    pub pkcs8: String,
    /// A client's MAC keys `k(c, r)`, hex, one per replica in id order: what its
    /// requests' authenticators are made with (`tandem_consensus::client_auth`).
    /// Derived from the replicas' identity keys by whoever generated the cluster; a
    /// leaked client key file reveals only this client's keys. Empty for replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mac_keys: Vec<String>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("id", &self.id)
            .field("pkcs8", &"<redacted>")
            .finish()
    }
}

impl KeyFile {
    /// A key file for `id` holding `pkcs8`.
    pub fn new(id: NodeId, pkcs8: &[u8]) -> KeyFile {
        KeyFile {
            id: id.to_string(),
            pkcs8: hex::encode(pkcs8),
            mac_keys: Vec::new(),
        }
    }

    /// The same key file holding a client's MAC keys, `keys[r] = k(c, r)`.
    pub fn with_mac_keys(mut self, keys: &[MacKey]) -> KeyFile {
        self.mac_keys = keys.iter().map(|k| hex::encode(k.0)).collect();
        self
    }

    /// The client's MAC keys, one per replica (empty for a replica's key file).
    pub fn mac_keys(&self) -> Result<Vec<MacKey>> {
        self.mac_keys
            .iter()
            .enumerate()
            .map(|(r, k)| {
                let bytes =
                    hex::decode(k.trim()).map_err(|e| anyhow!("mac_keys[{r}] is not hex: {e}"))?;
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|b: Vec<u8>| anyhow!("mac_keys[{r}] has {} bytes, not 32", b.len()))?;
                Ok(MacKey(key))
            })
            .collect()
    }

    /// Reads a key file, refusing one that its group or others may read or write
    /// (the file and its mode named in the error; issue 10 item 12).
    pub fn load(path: &Path) -> Result<KeyFile> {
        KeyFile::load_with(path, KeyFileAccess::OwnerOnly)
    }

    /// Reads a key file; `access` says whether a file readable by others is refused
    /// ([`KeyFileAccess::OwnerOnly`]) or accepted (`--allow-shared-key-file`, for
    /// containers that mount secrets with wider modes).
    pub fn load_with(path: &Path, access: KeyFileAccess) -> Result<KeyFile> {
        let meta = fs::metadata(path)
            .with_context(|| format!("cannot read key file {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if access == KeyFileAccess::OwnerOnly && mode & 0o077 != 0 {
            bail!(
                "key file {} has mode {mode:04o}: a private key must be readable by its owner only \
                 (chmod 600 {}), or pass --allow-shared-key-file",
                path.display(),
                path.display()
            );
        }
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read key file {}", path.display()))?;
        let key: KeyFile =
            toml::from_str(&text).map_err(|e| anyhow!("key file {}: {e}", path.display()))?;
        key.node_id()
            .map_err(|e| anyhow!("key file {}: field id {e}", path.display()))?;
        key.pkcs8_bytes()
            .map_err(|e| anyhow!("key file {}: field pkcs8 {e}", path.display()))?;
        key.mac_keys()
            .map_err(|e| anyhow!("key file {}: field {e}", path.display()))?;
        Ok(key)
    }

    /// Writes the key file readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = format!(
            "# Tandem private key for {}. Keep it secret.\n{}",
            self.id,
            toml::to_string(self).context("cannot encode a key file")?
        );
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create key file {}", path.display()))?;
        // `mode` applies only when the file is created: tighten an existing one.
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict key file {}", path.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write key file {}", path.display()))
    }

    /// The member id.
    pub fn node_id(&self) -> Result<NodeId> {
        self.id
            .parse::<NodeId>()
            .map_err(|e| anyhow!("`{}` is not a member id like r0 or c1: {e}", self.id))
    }

    /// The PKCS#8 bytes.
    pub fn pkcs8_bytes(&self) -> Result<Vec<u8>> {
        hex::decode(self.pkcs8.trim()).map_err(|e| anyhow!("is not hex: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_consensus::pbft::{PbftParams, PbftReplica};
    use tandem_consensus::{CommonParams, ProtocolKind};
    use tandem_network::Identity;

    fn sample(n: usize) -> (ClusterFile, Vec<Identity>) {
        let ids: Vec<Identity> = (0..n + 1).map(|_| Identity::generate().unwrap()).collect();
        let cluster = ClusterFile {
            protocol: ProtocolSection::new(
                ProtocolKind::Pbft,
                CommonParams {
                    replicas: n,
                    ..CommonParams::default()
                },
            ),
            execution: ExecutionConfig::default(),
            workload: WorkloadSpec::default(),
            evm_workload: None,
            network: NetworkConfig::default(),
            storage: StorageConfig::default(),
            replicas: (0..n)
                .map(|i| ReplicaEntry {
                    id: i as u32,
                    address: format!("127.0.0.1:{}", 7000 + i).parse().unwrap(),
                    public_key: hex::encode(ids[i].public_key()),
                })
                .collect(),
            clients: vec![ClientEntry {
                id: 0,
                public_key: hex::encode(ids[n].public_key()),
            }],
            control: None,
        };
        (cluster, ids)
    }

    #[test]
    fn roundtrip_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let (cluster, _) = sample(4);
        let path = dir.path().join("cluster.toml");
        cluster.save(&path).unwrap();
        let back = ClusterFile::load(&path).unwrap();
        assert_eq!(back.replica_keys(), cluster.replica_keys());
        assert_eq!(back.membership().unwrap().replica_ids().len(), 4);
    }

    /// `[execution] evm_auth`: left out when `channel`, read back when `secp256k1`,
    /// refused without `vm = "evm"`.
    #[test]
    fn evm_auth_round_trips_and_needs_the_evm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.toml");
        let (mut cluster, _) = sample(4);
        cluster.save(&path).unwrap();
        assert!(!fs::read_to_string(&path).unwrap().contains("evm_auth"));
        cluster.execution.vm = "evm".into();
        cluster.evm_workload = Some(EvmWorkloadSpec::new(
            tandem_executor::evm::EvmWorkloadKind::Erc20,
        ));
        cluster.execution.evm_auth = EvmAuth::Secp256k1;
        cluster.validate().unwrap();
        cluster.save(&path).unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("evm_auth = \"secp256k1\"")
        );
        assert_eq!(
            ClusterFile::load(&path).unwrap().execution.evm_auth,
            EvmAuth::Secp256k1
        );
        cluster.execution.vm = "ledger".into();
        cluster.evm_workload = None;
        let err = cluster.validate().unwrap_err().to_string();
        assert!(err.contains("evm_auth"), "{err}");
    }

    /// `[execution] evm_base_fee` and `evm_beneficiary`: left out at their defaults,
    /// read back otherwise into the EVM's configuration, refused without `vm =
    /// "evm"`; a malformed value is refused naming the line and the field.
    #[test]
    fn evm_fees_round_trip_and_bad_values_name_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.toml");
        let (mut cluster, _) = sample(4);
        cluster.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("evm_base_fee") && !text.contains("evm_beneficiary"));
        cluster.execution.vm = "evm".into();
        cluster.evm_workload = Some(EvmWorkloadSpec::new(
            tandem_executor::evm::EvmWorkloadKind::Erc20,
        ));
        let beneficiary = Address::new([0xbe; 20]);
        cluster.execution.evm_base_fee = 1_000_000_000;
        cluster.execution.evm_beneficiary = beneficiary;
        cluster.validate().unwrap();
        cluster.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("evm_base_fee = 1000000000"), "{text}");
        assert!(text.contains(&format!("evm_beneficiary = \"0x{}\"", "be".repeat(20))));
        let config = ClusterFile::load(&path).unwrap().execution.evm_config();
        assert_eq!(
            (config.base_fee, config.beneficiary),
            (1_000_000_000, beneficiary)
        );
        for (from, to, field) in [
            (
                "evm_base_fee = 1000000000",
                "evm_base_fee = -1",
                "evm_base_fee",
            ),
            (
                "evm_base_fee = 1000000000",
                "evm_base_fee = \"lots\"",
                "evm_base_fee",
            ),
            (
                &format!("evm_beneficiary = \"0x{}\"", "be".repeat(20)),
                "evm_beneficiary = \"0xbeef\"",
                "evm_beneficiary",
            ),
        ] {
            let bad = dir.path().join("bad.toml");
            fs::write(&bad, text.replace(from, to)).unwrap();
            let err = format!("{:#}", ClusterFile::load(&bad).unwrap_err());
            let line = text.lines().position(|l| l.starts_with(field)).unwrap() + 1;
            assert!(err.contains("bad.toml") && err.contains(field), "{err}");
            assert!(err.contains(&format!("line {line}")), "{err}");
        }
        cluster.execution.vm = "ledger".into();
        cluster.evm_workload = None;
        let err = cluster.validate().unwrap_err().to_string();
        assert!(err.contains("evm_base_fee"), "{err}");
        cluster.execution.evm_base_fee = 0;
        let err = cluster.validate().unwrap_err().to_string();
        assert!(err.contains("evm_beneficiary"), "{err}");
    }

    /// Issue 10 item 11: a replica key that is the identity, the order-2 point or no
    /// point at all is refused, naming the entry.
    #[test]
    fn weak_replica_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weak.toml");
        let identity_point = format!("01{}", "00".repeat(31));
        let order_two = format!("ec{}7f", "ff".repeat(30));
        let not_a_point = format!("02{}", "00".repeat(31));
        for (key, why) in [
            (identity_point, "small order"),
            (order_two, "small order"),
            (not_a_point, "not a point"),
        ] {
            let (mut cluster, _) = sample(4);
            cluster.replicas[1].public_key = key;
            cluster.save(&path).unwrap();
            let err = format!("{:#}", ClusterFile::load(&path).unwrap_err());
            assert!(err.contains("id = 1") && err.contains(why), "{err}");
        }
    }

    /// Issue 10 item 12: a key file readable by group or others is refused with its
    /// name and mode, unless shared access is allowed; saving tightens an existing file.
    #[test]
    fn key_files_readable_by_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r0.key");
        let identity = Identity::generate().unwrap();
        let key = KeyFile::new(tandem_network::NodeId::Replica(0), identity.pkcs8_der());
        key.save(&path).unwrap();
        KeyFile::load(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", KeyFile::load(&path).unwrap_err());
        assert!(err.contains("r0.key") && err.contains("0644"), "{err}");
        KeyFile::load_with(&path, KeyFileAccess::AllowShared).unwrap();
        key.save(&path).unwrap();
        KeyFile::load(&path).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        let (mut cluster, _) = sample(4);
        cluster.replicas[2].public_key = "zz".into();
        cluster.save(&path).unwrap();
        let err = format!("{:#}", ClusterFile::load(&path).unwrap_err());
        assert!(
            err.contains("bad.toml") && err.contains("id = 2") && err.contains("public_key"),
            "{err}"
        );

        let (mut cluster, _) = sample(4);
        let own = PbftParams {
            window: 1,
            ..PbftParams::default()
        };
        cluster
            .protocol
            .set_own_params::<PbftReplica>(&own)
            .unwrap();
        cluster.save(&path).unwrap();
        let err = format!("{:#}", ClusterFile::load(&path).unwrap_err());
        assert!(
            err.contains("bad.toml") && err.contains("[protocol.pbft]") && err.contains("window"),
            "{err}"
        );

        fs::write(&path, "[protocol]\nreplicas = 4\nbogus = 1\n").unwrap();
        let err = format!("{:#}", ClusterFile::load(&path).unwrap_err());
        assert!(err.contains("bogus") && err.contains("bad.toml"), "{err}");

        let (mut cluster, _) = sample(4);
        cluster.execution.executor = "magic".into();
        cluster.save(&path).unwrap();
        let err = format!("{:#}", ClusterFile::load(&path).unwrap_err());
        assert!(err.contains("executor"), "{err}");
    }

    #[test]
    fn the_launcher_is_a_member_with_an_id_and_key_of_its_own() {
        let (mut cluster, ids) = sample(4);
        let launcher = Identity::generate().unwrap();
        cluster.control = Some(ControlEntry {
            id: ControlEntry::DEFAULT_ID,
            public_key: hex::encode(launcher.public_key()),
            fault_seed: 7,
        });
        cluster.validate().unwrap();
        let members = cluster.membership().unwrap();
        assert_eq!(
            members.id_of(&launcher.public_key()),
            Some(NodeId::Client(u32::MAX))
        );
        assert_eq!(cluster.launcher(), Some(NodeId::Client(u32::MAX)));

        let mut clash = cluster.clone();
        clash.control.as_mut().unwrap().id = 0;
        let err = clash.validate().unwrap_err().to_string();
        assert!(err.contains("[control] id = 0"), "{err}");
        let mut reused = cluster.clone();
        reused.control.as_mut().unwrap().public_key = hex::encode(ids[4].public_key());
        let err = reused.validate().unwrap_err().to_string();
        assert!(err.contains("[control] public_key"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let keys = vec![KeyFile::new(NodeId::Client(u32::MAX), launcher.pkcs8_der())];
        let (path, key_paths) = save_cluster_folder(dir.path(), &cluster, &keys).unwrap();
        assert_eq!(key_paths[0], dir.path().join(LAUNCHER_KEY));
        assert_eq!(ClusterFile::load(&path).unwrap().control, cluster.control);
    }

    #[test]
    fn key_files_are_private_and_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r0.key");
        let id = Identity::generate().unwrap();
        KeyFile::new(NodeId::Replica(0), id.pkcs8_der())
            .save(&path)
            .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let back = KeyFile::load(&path).unwrap();
        assert_eq!(back.node_id().unwrap(), NodeId::Replica(0));
        assert_eq!(back.pkcs8_bytes().unwrap(), id.pkcs8_der());

        fs::write(&path, "id = \"x9\"\npkcs8 = \"00\"\n").unwrap();
        let err = format!("{:#}", KeyFile::load(&path).unwrap_err());
        assert!(err.contains("r0.key") && err.contains("field id"), "{err}");
    }

    #[test]
    fn a_cluster_folder_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("new");
        let (cluster, ids) = sample(4);
        let mut keys: Vec<KeyFile> = (0..4)
            .map(|i| KeyFile::new(NodeId::Replica(i as u32), ids[i].pkcs8_der()))
            .collect();
        keys.push(KeyFile::new(NodeId::Client(0), ids[4].pkcs8_der()));
        let (cluster_path, key_paths) = save_cluster_folder(&folder, &cluster, &keys).unwrap();
        assert_eq!(cluster_path, folder.join("cluster.toml"));
        assert_eq!(key_paths[4], folder.join("c0.key"));
        let back = ClusterFile::load(&cluster_path).unwrap();
        assert_eq!(back.replica_keys(), cluster.replica_keys());
        for (path, key) in key_paths.iter().zip(&keys) {
            assert_eq!(KeyFile::load(path).unwrap().pkcs8, key.pkcs8);
        }
    }
}
