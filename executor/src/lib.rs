//! tandem-executor: Tandem's DeFi ledger, its transactions, the executors that
//! apply ordered batches of them, and seeded workload generators.
//!
//! - [`State`]: balances, nonces, public keys, Uniswap V2 pools, lending markets;
//!   an incremental Merkle digest (`merkle.rs`), snapshots (whole, or in chunks each
//!   verifiable against the root: `chunks.rs`) and validating restore.
//! - [`Transaction`] / [`Receipt`]: the operations and their outcomes; the nonce
//!   rule and abort semantics are documented in `tx.rs`.
//! - [`Vm`]: the seam between schedulers and a virtual machine (`vm.rs`); the
//!   native ledger is [`LedgerVm`].
//! - [`Executor`]: `sequential`, `block-stm`, `access-list` and `auto`, generic
//!   over the [`Vm`], built by [`executor_by_name`] (the ledger) or
//!   [`executor_for`] (any VM); all give exactly the sequential receipts and digest.
//! - [`WorkloadSpec`]: deterministic genesis and per-client transaction streams
//!   for `transfer`, `dex`, `lending`, `smallbank` and `mixed` workloads.
//! - [`evm`]: the EVM (revm) over an in-memory state, our Vyper contracts, gas-bounded
//!   sequential batches and EVM workloads; not yet behind the executors (issue 15).

mod access_list;
pub mod amm;
mod apply;
mod auto;
mod block_stm;
mod chunks;
mod cost;
mod encoding;
mod error;
pub mod evm;
mod executor;
mod json;
mod ledger_vm;
pub mod lending;
mod merkle;
mod public_key;
mod sequential;
mod signature;
mod snapshot;
mod state;
mod threads;
mod tx;
mod u256;
mod vm;
pub mod workload;

pub use access_list::AccessListExecutor;
pub use auto::AutoExecutor;
pub use block_stm::{BlockStmExecutor, ContentionProbe};
pub use chunks::{ChunkedRestore, MIN_CHUNK_BYTES};
pub use cost::{ExecutionLimits, OverLimit, SIGNATURE_COST, op_cost};
pub use error::Error;
pub use executor::{
    BatchOutcome, BatchStats, EXECUTOR_NAMES, Executor, ExecutorOptions, executor_by_name,
    executor_for,
};
pub use json::{
    Genesis, evm_address_json, evm_receipt_json, evm_tx_json, read_evm_genesis,
    read_evm_genesis_auth, read_evm_transactions, read_transactions,
};
pub use ledger_vm::LedgerVm;
pub use public_key::{WeakKey, check_public_key};
pub use sequential::SequentialExecutor;
pub use signature::{account_keypair, account_public_key};
pub use state::{Account, FAUCET, Key, MarketId, PoolId, State, Token, Value};
pub use threads::{MAX_THREADS, WorkerThreads};
pub use tx::{
    AbortReason, Access, AccessSet, CHECKING, MAX_ACCESS, MAX_TX_BYTES, Op, Receipt, SAVINGS,
    Signature, SmallBankOp, Transaction, from_hex, to_hex,
};
pub use vm::{Admission, Blocked, ReadError, ReadView, Vm, WriteSet, WriteSetFull};
pub use workload::{Generator, WorkloadKind, WorkloadSpec};
