//! The command-line flags that describe a cluster (protocol, execution, workload),
//! shared by `tandem keygen` and `tandem local`; they fill
//! [`tandem_experiments::cluster_params::ClusterParams`], whose `Default` gives the
//! flags' defaults.

use anyhow::Result;
use clap::Args;
use tandem_consensus::ProtocolKind;
use tandem_experiments::cluster::Durability;
use tandem_experiments::cluster_params::{ClusterParams, DEFAULT_EVM_WORKLOAD};
use tandem_experiments::cpu_budget::CpuBudget;

/// Cluster flags.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Consensus protocol: pbft or hotstuff.
    #[arg(long, default_value_t = ClusterParams::default().protocol)]
    pub protocol: ProtocolKind,
    /// Number of replicas (n = 3f+1 ≥ 4).
    #[arg(long, default_value_t = ClusterParams::default().replicas)]
    pub replicas: usize,
    /// Executor: sequential, block-stm, access-list, auto, or none (consensus only).
    #[arg(long, default_value_t = ClusterParams::default().executor)]
    pub executor: String,
    /// Executor threads per replica [default: `tandem local` the CPU budget rounded up,
    /// or without one the replica's share of this machine (CPUs / replicas, at least
    /// 1); `keygen` and `deploy`, whose replicas run on machines of their own, 2].
    #[arg(long)]
    pub threads: Option<usize>,
    /// The VM the replicas run: ledger (the native DeFi ledger) or evm (revm).
    #[arg(long, default_value_t = ClusterParams::default().vm)]
    pub vm: String,
    /// Workload: transfer, dex, lending, smallbank or mixed (ledger); evm-transfer,
    /// erc20, uniswap, lending, staking or evm-mixed (evm) [default: dex; with --vm evm,
    /// uniswap].
    #[arg(long)]
    pub workload: Option<String>,
    /// With --vm evm: the largest gas limit a transaction may declare (the cluster
    /// file's `[execution] max_tx_gas`) [default: 16777216].
    #[arg(long)]
    pub max_tx_gas: Option<u64>,
    /// With --vm evm: the gas one batch may reserve, the sum of its transactions'
    /// limits (`[execution] max_batch_gas`) [default: 400000000].
    #[arg(long)]
    pub max_batch_gas: Option<u64>,
    /// With --vm evm: how transactions authenticate their sender, channel (the
    /// client's authenticated channel vouches for `from`) or secp256k1 (Ethereum
    /// signatures, senders recovered before execution; `[execution] evm_auth`).
    #[arg(long, default_value = "channel")]
    pub evm_auth: tandem_executor::evm::EvmAuth,
    /// With --vm evm: the block's base fee in wei per gas (`[execution]
    /// evm_base_fee`) [default: 0]; at most the workloads' gas price, 2 gwei.
    /// Every transaction that runs pays gas used × its effective gas price, the
    /// base fee part burned, the rest credited to the beneficiary.
    #[arg(long)]
    pub base_fee: Option<u64>,
    /// With --vm evm: the block beneficiary, 40 hex digits (`[execution]
    /// evm_beneficiary`) [default: 0xfefe…fe].
    #[arg(long, value_parser = beneficiary)]
    pub beneficiary: Option<tandem_executor::evm::Address>,
    /// Accounts in the genesis state.
    #[arg(long, default_value_t = ClusterParams::default().accounts)]
    pub accounts: u64,
    /// AMM pools (dex, mixed); with --vm evm, contract instances (tokens, pairs,
    /// markets, staking pools).
    #[arg(long, default_value_t = ClusterParams::default().pools)]
    pub pools: u32,
    /// Zipf skew of account choice (0 = uniform).
    #[arg(long, default_value_t = ClusterParams::default().zipf)]
    pub zipf: f64,
    /// Extra SHA-256 rounds per transaction (models contract cost).
    #[arg(long, default_value_t = ClusterParams::default().work)]
    pub work: u32,
    /// Sign every transaction with its sender's Ed25519 key (verified on replicas).
    #[arg(long)]
    pub signed_txs: bool,
    /// Workload seed.
    #[arg(long, default_value_t = ClusterParams::default().workload_seed)]
    pub workload_seed: u64,
    /// Maximum requests per batch.
    #[arg(long, default_value_t = ClusterParams::default().batch_size)]
    pub batch_size: usize,
    /// Batch timeout, milliseconds.
    #[arg(long, default_value_t = ClusterParams::default().batch_timeout_ms)]
    pub batch_timeout_ms: u64,
    /// Checkpoint interval (sequence numbers).
    #[arg(long, default_value_t = ClusterParams::default().checkpoint_interval)]
    pub checkpoint_interval: u64,
    /// Initial time-out on the leader, milliseconds (PBFT: the view-change timer,
    /// doubling up to 16×).
    #[arg(long, default_value_t = ClusterParams::default().view_timeout_ms)]
    pub view_timeout_ms: u64,
    /// Sign every protocol message, not only checkpoints and view changes.
    #[arg(long)]
    pub signed_all: bool,
    /// What replicas keep across a restart: `none`, or `wal` (a write-ahead log under
    /// each replica's data directory; a restart replays it).
    #[arg(long, default_value = "none")]
    pub durability: Durability,
    /// A field of the protocol's own section (`[protocol.<name>]`) by its name there,
    /// over its defaults (repeatable): e.g. HotStuff `leader_election=reputation`,
    /// `chain_length=3`; PBFT `window=512`. Applied after --view-timeout-ms.
    #[arg(long = "protocol-param", value_name = "KEY=VALUE",
          value_parser = tandem_experiments::cluster_params::parse_key_value)]
    pub protocol_params: Vec<(String, String)>,
}

impl ClusterArgs {
    /// The parameters these flags describe.
    pub fn params(&self) -> ClusterParams {
        ClusterParams {
            protocol: self.protocol,
            replicas: self.replicas,
            executor: self.executor.clone(),
            threads: self.threads.unwrap_or(ClusterParams::default().threads),
            vm: self.vm.clone(),
            workload: self.workload.clone().unwrap_or_else(|| {
                if self.vm == "evm" {
                    DEFAULT_EVM_WORKLOAD.to_string()
                } else {
                    ClusterParams::default().workload
                }
            }),
            max_tx_gas: self.max_tx_gas,
            max_batch_gas: self.max_batch_gas,
            evm_auth: self.evm_auth,
            base_fee: self.base_fee,
            beneficiary: self.beneficiary,
            accounts: self.accounts,
            pools: self.pools,
            zipf: self.zipf,
            work: self.work,
            signed_txs: self.signed_txs,
            workload_seed: self.workload_seed,
            batch_size: self.batch_size,
            batch_timeout_ms: self.batch_timeout_ms,
            checkpoint_interval: self.checkpoint_interval,
            view_timeout_ms: self.view_timeout_ms,
            signed_all: self.signed_all,
            durability: self.durability,
            protocol_params: self.protocol_params.clone(),
        }
    }
}

/// The CPU budget flags `tandem local` and `tandem compare` share (not `keygen`: a
/// budget belongs to a run, not to a cluster file).
#[derive(Args, Debug, Clone, Default)]
pub struct CpuBudgetArgs {
    /// CPUs per replica process, e.g. 1 or 2. Replicas × share must fit this machine.
    /// The process backend enforces whole CPUs by pinning (disjoint sets, replica i on
    /// the i-th CPUs) and refuses fractions; use --cpu-sets to share CPUs. Executor
    /// threads default to the budget rounded up.
    #[arg(long)]
    pub cpus_per_replica: Option<f64>,
    /// One CPU list per replica, in replica order, separated by `;`, e.g. "0;1;0;1"
    /// (two replicas pinned to each of CPUs 0 and 1) or "0-1;2-3;4-5;6-7". Each replica
    /// process is pinned to its set (sched_setaffinity).
    #[arg(long)]
    pub cpu_sets: Option<String>,
}

impl CpuBudgetArgs {
    /// The budget these flags give for `replicas` replicas; errors name the flag.
    pub fn budget(&self, replicas: usize) -> Result<CpuBudget> {
        CpuBudget::from_flags(self.cpus_per_replica, self.cpu_sets.as_deref(), replicas)
    }
}

/// `--beneficiary`: an address, 40 hex digits (optional `0x`).
fn beneficiary(text: &str) -> Result<tandem_executor::evm::Address, String> {
    tandem_executor::evm::parse_address(text)
}
