//! The parameters that describe a cluster to generate (protocol, execution, workload),
//! which the flags of `tandem keygen` and `tandem local` fill, and how they become a
//! cluster file and key files.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tandem_consensus::client_auth::{MacKey, client_mac_key};
use tandem_consensus::crypto::SigningKey;
use tandem_consensus::{ClientId, CommonParams, ProtocolKind};
use tandem_executor::evm::{EvmAuth, EvmWorkloadKind, EvmWorkloadSpec};
use tandem_executor::{WorkloadKind, WorkloadSpec};
use tandem_network::{Identity, NodeId};

use crate::cluster::{
    ClientEntry, ClusterFile, ControlEntry, Durability, ExecutionConfig, KeyFile, NetworkConfig,
    ReplicaAddress, ReplicaEntry, StorageConfig,
};
use crate::protocol_section::ProtocolSection;

/// The EVM workload when none is named (`tandem local --vm evm`, `tandem compare --vm
/// evm`): swaps on Uniswap V2 pairs.
pub const DEFAULT_EVM_WORKLOAD: &str = "uniswap";

/// Cluster parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterParams {
    /// The protocol the replicas run.
    pub protocol: ProtocolKind,
    /// Number of replicas (n = 3f+1 ≥ 4).
    pub replicas: usize,
    /// Executor: sequential, block-stm, access-list, auto, or none (consensus only).
    pub executor: String,
    /// Executor threads per replica.
    pub threads: usize,
    /// The VM: `ledger` or `evm`.
    pub vm: String,
    /// Workload: transfer, dex, lending, smallbank or mixed (ledger); evm-transfer,
    /// erc20, uniswap, lending, staking or evm-mixed (evm).
    pub workload: String,
    /// EVM: the largest gas limit a transaction may declare (`[execution]
    /// max_tx_gas`); `None` is the cluster file's default.
    pub max_tx_gas: Option<u64>,
    /// EVM: the gas one batch may reserve (`[execution] max_batch_gas`); `None` is
    /// the cluster file's default.
    pub max_batch_gas: Option<u64>,
    /// EVM: how senders are authenticated (`[execution] evm_auth`).
    pub evm_auth: EvmAuth,
    /// EVM: the block's base fee, wei per gas (`[execution] evm_base_fee`);
    /// `None` is 0.
    pub base_fee: Option<u64>,
    /// EVM: the block beneficiary (`[execution] evm_beneficiary`); `None` is
    /// `tandem_executor::evm::DEFAULT_BENEFICIARY`.
    pub beneficiary: Option<tandem_executor::evm::Address>,
    /// Accounts in the genesis state.
    pub accounts: u64,
    /// AMM pools (dex, mixed).
    pub pools: u32,
    /// Zipf skew of account choice (0 = uniform).
    pub zipf: f64,
    /// Extra SHA-256 rounds per transaction (models contract cost).
    pub work: u32,
    /// Sign every transaction with its sender's Ed25519 key (verified on replicas).
    pub signed_txs: bool,
    /// Workload seed.
    pub workload_seed: u64,
    /// Maximum requests per batch.
    pub batch_size: usize,
    /// Batch timeout, milliseconds.
    pub batch_timeout_ms: u64,
    /// Checkpoint interval (sequence numbers).
    pub checkpoint_interval: u64,
    /// Initial time-out on the leader (PBFT: the view-change timer), milliseconds.
    pub view_timeout_ms: u64,
    /// Sign every protocol message, not only checkpoints and view changes.
    pub signed_all: bool,
    /// What replicas keep across a restart (the cluster file's `[storage]`).
    pub durability: Durability,
    /// Fields of the protocol's own section set by name (`--protocol-param KEY=VALUE`,
    /// [`ProtocolParams::set_param`](tandem_consensus::ProtocolParams::set_param)), in
    /// order, over its defaults and the leader time-out.
    pub protocol_params: Vec<(String, String)>,
}

impl Default for ClusterParams {
    /// Four replicas running the dex workload (10,000 accounts, 4 pools, uniform) on
    /// Block-STM with 2 threads; batches of up to 1024 requests or 2 ms, a checkpoint
    /// every 128 sequence numbers, a 1 s initial view-change timeout.
    fn default() -> Self {
        ClusterParams {
            protocol: ProtocolKind::default(),
            replicas: 4,
            executor: "block-stm".to_string(),
            threads: 2,
            vm: "ledger".to_string(),
            workload: "dex".to_string(),
            max_tx_gas: None,
            max_batch_gas: None,
            evm_auth: EvmAuth::Channel,
            base_fee: None,
            beneficiary: None,
            accounts: 10_000,
            pools: 4,
            zipf: 0.0,
            work: 0,
            signed_txs: false,
            workload_seed: 1,
            batch_size: 1024,
            batch_timeout_ms: 2,
            checkpoint_interval: 128,
            view_timeout_ms: 1000,
            signed_all: false,
            durability: Durability::None,
            protocol_params: Vec::new(),
        }
    }
}

impl ClusterParams {
    /// The EVM workload these arguments describe (`vm = "evm"`; `pools` is the
    /// number of contract instances), or `None` for the ledger.
    pub fn evm_workload_spec(&self) -> Result<Option<EvmWorkloadSpec>> {
        match self.vm.as_str() {
            "ledger" => Ok(None),
            "evm" => {
                let kind: EvmWorkloadKind = self
                    .workload
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--workload: {e}"))?;
                let spec = EvmWorkloadSpec {
                    kind,
                    accounts: self.accounts,
                    instances: self.pools,
                    zipf: self.zipf,
                    seed: self.workload_seed,
                };
                spec.validate()
                    .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
                Ok(Some(spec))
            }
            other => bail!("--vm: expected ledger or evm, got `{other}`"),
        }
    }

    /// Refuses flags that do not fit the VM, naming them: with `evm`, executor `none`,
    /// `--work` and `--signed-txs` (the ledger's), and gas bounds no transaction of
    /// the workload fits (`--max-tx-gas` below what it declares, `--max-batch-gas`
    /// below `--max-tx-gas`); with `ledger`, `--max-tx-gas` and `--max-batch-gas`.
    ///
    /// # Errors
    /// The first flag that does not fit, or an unknown VM or workload.
    pub fn check_vm_flags(&self) -> Result<()> {
        let Some(spec) = self.evm_workload_spec()? else {
            if self.max_tx_gas.is_some() || self.max_batch_gas.is_some() {
                let flag = if self.max_tx_gas.is_some() {
                    "--max-tx-gas"
                } else {
                    "--max-batch-gas"
                };
                bail!("{flag} bounds EVM gas: it needs --vm evm");
            }
            if !self.evm_auth.is_channel() {
                bail!("--evm-auth authenticates EVM transactions: it needs --vm evm");
            }
            if self.base_fee.is_some() || self.beneficiary.is_some() {
                let flag = if self.base_fee.is_some() {
                    "--base-fee"
                } else {
                    "--beneficiary"
                };
                bail!("{flag} sets EVM fees: it needs --vm evm");
            }
            return Ok(());
        };
        if self.executor == "none" {
            bail!(
                "--executor none runs no VM: --vm evm needs an executor (sequential, block-stm, access-list or auto)"
            );
        }
        if self.work > 0 {
            bail!(
                "--work is the ledger's cost knob (SHA-256 rounds); with --vm evm gas is the cost"
            );
        }
        if self.signed_txs {
            bail!("--signed-txs signs ledger transactions (Ed25519); not available with --vm evm");
        }
        if let Some(fee) = self.base_fee
            && u128::from(fee) > tandem_executor::evm::WORKLOAD_GAS_PRICE
        {
            bail!(
                "--base-fee {fee} is above the workloads' gas price {} wei: every legacy transaction would be refused",
                tandem_executor::evm::WORKLOAD_GAS_PRICE
            );
        }
        let defaults = ExecutionConfig::default();
        let tx_gas = self.max_tx_gas.unwrap_or(defaults.max_tx_gas);
        let declared = spec.kind.gas_limit();
        if tx_gas < declared {
            bail!(
                "--max-tx-gas {tx_gas} is below the {declared} gas {} transactions declare: every one would be refused",
                spec.kind
            );
        }
        let batch_gas = self.max_batch_gas.unwrap_or(defaults.max_batch_gas);
        if batch_gas < tx_gas {
            bail!(
                "--max-batch-gas {batch_gas} is below --max-tx-gas {tx_gas}: one transaction must fit a batch"
            );
        }
        Ok(())
    }

    /// The workload spec these arguments describe (the ledger's default when the
    /// VM is the EVM: replicas then start from `evm_workload_spec`).
    pub fn workload_spec(&self) -> Result<WorkloadSpec> {
        if self.evm_workload_spec()?.is_some() {
            return Ok(WorkloadSpec::default());
        }
        let kind = parse_workload(&self.workload)?;
        let spec = WorkloadSpec {
            kind,
            accounts: self.accounts,
            pools: self.pools,
            zipf: self.zipf,
            seed: self.workload_seed,
            work: self.work,
            signed: self.signed_txs,
            ..WorkloadSpec::new(kind)
        };
        spec.validate()
            .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
        Ok(spec)
    }

    /// The protocol as a comparison names it: its name, then `:KEY=VALUE` for each
    /// of `protocol_params` (e.g. `hotstuff:leader_election=reputation`); the form
    /// [`ClusterParams::set_protocol_variant`] reads.
    pub fn protocol_variant(&self) -> String {
        let mut label = self.protocol.to_string();
        for (key, value) in &self.protocol_params {
            label.push_str(&format!(":{key}={value}"));
        }
        label
    }

    /// Sets the protocol and its parameters from a variant `NAME[:KEY=VALUE]...`
    /// (`hotstuff:leader_election=reputation:chain_length=3`).
    ///
    /// # Errors
    /// An unknown protocol, or a parameter not of the form `KEY=VALUE`. Whether the
    /// protocol has the key is checked by [`ClusterParams::protocol_section`].
    pub fn set_protocol_variant(&mut self, variant: &str) -> Result<()> {
        let mut parts = variant.split(':');
        let name = parts.next().unwrap_or_default();
        self.protocol = name.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.protocol_params = parts
            .map(|p| parse_key_value(p).map_err(|e| anyhow::anyhow!("in `{variant}`: {e}")))
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// The `[protocol]` section these arguments describe: the common parameters, and
    /// the protocol's own defaults for them with the leader time-out and
    /// `protocol_params` set.
    ///
    /// # Errors
    /// A protocol parameter the protocol does not have or refuses (the error names
    /// the flag, the key and the field).
    pub fn protocol_section(&self) -> Result<ProtocolSection> {
        let common = CommonParams {
            replicas: self.replicas,
            checkpoint_interval: self.checkpoint_interval,
            max_batch: self.batch_size,
            batch_timeout: Duration::from_millis(self.batch_timeout_ms),
            signed_all: self.signed_all,
            ..CommonParams::default()
        };
        let mut section = ProtocolSection::new(self.protocol, common);
        section.set_view_timeout(Duration::from_millis(self.view_timeout_ms))?;
        for (key, value) in &self.protocol_params {
            section
                .set_param(key, value)
                .with_context(|| format!("protocol parameter {key}={value}"))?;
        }
        section.validate()?;
        Ok(section)
    }

    /// Generates keys for `clients` clients and the replicas at `host:base_port + i`,
    /// and returns the cluster file and every member's key file.
    pub fn generate(
        &self,
        host: IpAddr,
        base_port: u16,
        clients: usize,
    ) -> Result<(ClusterFile, Vec<KeyFile>)> {
        let ports = (0..self.replicas).map(|i| base_port.checked_add(i as u16));
        let mut addresses = Vec::new();
        for port in ports {
            let Some(port) = port else {
                bail!(
                    "--base-port {base_port} leaves no room for {} replicas",
                    self.replicas
                );
            };
            addresses.push(SocketAddr::new(host, port));
        }
        self.generate_at(&addresses, clients)
    }

    /// As [`ClusterParams::generate`], with explicit replica addresses. The keys are
    /// the replicas', then the clients', then the launcher's (`[control]`).
    pub fn generate_at(
        &self,
        addresses: &[SocketAddr],
        clients: usize,
    ) -> Result<(ClusterFile, Vec<KeyFile>)> {
        let addresses: Vec<ReplicaAddress> = addresses
            .iter()
            .copied()
            .map(ReplicaAddress::from)
            .collect();
        self.generate_at_hosts(&addresses, clients)
    }

    /// As [`ClusterParams::generate`], with explicit replica addresses that may be host
    /// names (resolved when members start).
    pub fn generate_at_hosts(
        &self,
        addresses: &[ReplicaAddress],
        clients: usize,
    ) -> Result<(ClusterFile, Vec<KeyFile>)> {
        let mut keys = Vec::new();
        let mut replicas = Vec::new();
        let mut replica_signers = Vec::new();
        for (i, address) in addresses.iter().enumerate() {
            let identity = Identity::generate()?;
            replica_signers.push(SigningKey::from_pkcs8(identity.pkcs8_der())?);
            replicas.push(ReplicaEntry {
                id: i as u32,
                address: address.clone(),
                public_key: hex::encode(identity.public_key()),
            });
            keys.push(KeyFile::new(
                NodeId::Replica(i as u32),
                identity.pkcs8_der(),
            ));
        }
        let mut client_entries = Vec::new();
        for c in 0..clients {
            let identity = Identity::generate()?;
            client_entries.push(ClientEntry {
                id: c as u32,
                public_key: hex::encode(identity.public_key()),
            });
            // k(c, r) for every replica r (`tandem_consensus::client_auth`).
            let macs: Vec<MacKey> = replica_signers
                .iter()
                .map(|r| client_mac_key(r, ClientId(c as u32)))
                .collect();
            keys.push(
                KeyFile::new(NodeId::Client(c as u32), identity.pkcs8_der()).with_mac_keys(&macs),
            );
        }
        let launcher = Identity::generate()?;
        let control = ControlEntry {
            id: ControlEntry::DEFAULT_ID,
            public_key: hex::encode(launcher.public_key()),
            fault_seed: 0,
        };
        keys.push(KeyFile::new(control.node_id(), launcher.pkcs8_der()));
        self.check_vm_flags()?;
        let defaults = ExecutionConfig::default();
        let cluster = ClusterFile {
            protocol: self.protocol_section()?,
            execution: ExecutionConfig {
                vm: self.vm.clone(),
                executor: self.executor.clone(),
                threads: self.threads,
                max_tx_gas: self.max_tx_gas.unwrap_or(defaults.max_tx_gas),
                max_batch_gas: self.max_batch_gas.unwrap_or(defaults.max_batch_gas),
                evm_auth: self.evm_auth,
                evm_base_fee: self.base_fee.unwrap_or(defaults.evm_base_fee),
                evm_beneficiary: self.beneficiary.unwrap_or(defaults.evm_beneficiary),
                ..defaults
            },
            workload: self.workload_spec()?,
            evm_workload: self.evm_workload_spec()?,
            network: NetworkConfig::default(),
            storage: StorageConfig {
                durability: self.durability,
                ..StorageConfig::default()
            },
            replicas,
            clients: client_entries,
            control: Some(control),
        };
        cluster.validate()?;
        Ok((cluster, keys))
    }
}

/// `KEY=VALUE` as a pair (both trimmed; the key not empty): how `--protocol-param`
/// and protocol variants spell a protocol parameter.
///
/// # Errors
/// No `=`, or an empty key.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Parses a workload kind name.
pub fn parse_workload(name: &str) -> Result<WorkloadKind> {
    match WorkloadKind::ALL.iter().find(|k| k.as_str() == name) {
        Some(k) => Ok(*k),
        None => bail!(
            "unknown workload `{name}`; choose one of: {}",
            WorkloadKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use tandem_consensus::crypto::Keyring;
    use tandem_consensus::{ClientId, ReplicaId};

    use super::*;

    /// `--protocol-param` reaches the protocol's own section over the leader time-out;
    /// a key the protocol lacks or a value it refuses names the flag and the field.
    #[test]
    fn protocol_params_set_the_protocols_own_section() {
        use tandem_consensus::hotstuff::HotStuffReplica;
        use tandem_consensus::hotstuff::leaders::LeaderElection;
        let params = ClusterParams {
            protocol: "hotstuff".parse().unwrap(),
            view_timeout_ms: 300,
            protocol_params: vec![
                ("leader_election".into(), "reputation".into()),
                ("max_round_timeout_ms".into(), "900".into()),
            ],
            ..ClusterParams::default()
        };
        let own = params
            .protocol_section()
            .unwrap()
            .own_params::<HotStuffReplica>()
            .unwrap();
        assert_eq!(own.leader_election, LeaderElection::Reputation);
        assert_eq!(own.round_timeout.as_millis(), 300);
        assert_eq!(own.max_round_timeout.as_millis(), 900);
        for (key, value, names) in [
            ("window", "8", "window"),
            ("chain_length", "4", "chain_length"),
            ("max_round_timeout_ms", "100", "max_round_timeout_ms"),
        ] {
            let bad = ClusterParams {
                protocol_params: vec![(key.into(), value.into())],
                ..params.clone()
            };
            let err = format!("{:#}", bad.protocol_section().unwrap_err());
            assert!(err.contains(names), "{err}");
        }
        assert_eq!(
            params.protocol_variant(),
            "hotstuff:leader_election=reputation:max_round_timeout_ms=900"
        );
        let mut back = ClusterParams::default();
        back.set_protocol_variant(&params.protocol_variant())
            .unwrap();
        assert_eq!(back.protocol_params, params.protocol_params);
        assert!(parse_key_value("=3").is_err());
        assert!(parse_key_value("window").is_err());
    }

    /// Issue 10 item 1: a generated client key file holds `k(c, r)` for every replica
    /// r, the key replica r derives from its own identity key alone; replica key files
    /// hold none.
    #[test]
    fn client_key_files_hold_the_mac_keys_each_replica_derives() {
        let params = ClusterParams::default();
        let (cluster, keys) = params
            .generate("127.0.0.1".parse().unwrap(), 17_000, 2)
            .unwrap();
        let n = cluster.replicas.len();
        let rings: Vec<Keyring> = (0..n)
            .map(|r| {
                let signer = SigningKey::from_pkcs8(&keys[r].pkcs8_bytes().unwrap()).unwrap();
                Keyring::new(ReplicaId(r as u32), signer, cluster.replica_keys())
            })
            .collect();
        for key in &keys[..n] {
            assert!(key.mac_keys.is_empty(), "{}", key.id);
        }
        for c in 0..2 {
            let macs = keys[n + c].mac_keys().unwrap();
            assert_eq!(macs.len(), n);
            for (r, ring) in rings.iter().enumerate() {
                assert_eq!(
                    macs[r],
                    ring.client_mac_key(ClientId(c as u32)),
                    "c{c} r{r}"
                );
            }
        }
        assert_ne!(keys[n].mac_keys().unwrap(), keys[n + 1].mac_keys().unwrap());
    }
}
