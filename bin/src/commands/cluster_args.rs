//! The command-line flags that describe a cluster (protocol, execution, workload),
//! shared by `tandem keygen` and `tandem local`; they fill
//! [`tandem_experiments::cluster_params::ClusterParams`], whose `Default` gives the
//! flags' defaults.

use clap::Args;
use tandem_consensus::ProtocolKind;
use tandem_experiments::cluster::Durability;
use tandem_experiments::cluster_params::ClusterParams;

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
    /// Executor threads per replica.
    #[arg(long, default_value_t = ClusterParams::default().threads)]
    pub threads: usize,
    /// Workload: transfer, dex, lending, smallbank or mixed.
    #[arg(long, default_value_t = ClusterParams::default().workload)]
    pub workload: String,
    /// Accounts in the genesis state.
    #[arg(long, default_value_t = ClusterParams::default().accounts)]
    pub accounts: u64,
    /// AMM pools (dex, mixed).
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
}

impl ClusterArgs {
    /// The parameters these flags describe.
    pub fn params(&self) -> ClusterParams {
        ClusterParams {
            protocol: self.protocol,
            replicas: self.replicas,
            executor: self.executor.clone(),
            threads: self.threads,
            workload: self.workload.clone(),
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
        }
    }
}
