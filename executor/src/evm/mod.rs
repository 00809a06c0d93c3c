//! The EVM as a second VM beside the native ledger (issue 15, items 2–4): revm over
//! an in-memory state, contracts of our own compiled from Vyper, gas as the cost
//! model, and workload generators. Every executor (`sequential`, Block-STM,
//! access-list, auto) runs it through [`EvmVm`] (`vm.rs`), exactly as the
//! reference [`execute_batch`] does.
//!
//! - `db.rs`: [`EvmState`], accounts (balance, nonce, code hash) and storage keyed by
//!   (address, slot), implementing revm's `Database` and `DatabaseCommit`.
//! - `digest.rs`: [`EvmState::digest`], SHA-256 over the sorted canonical entries
//!   (not yet the Merkle tree of `merkle.rs`).
//! - `tx.rs`: [`EvmTx`] and its encodings; `receipt.rs`: [`EvmReceipt`].
//! - `eth_rlp.rs`: Ethereum's signed-transaction bytes and signing hash (RLP,
//!   EIP-155 legacy, EIP-2930 type 1 and EIP-1559 type 2); `sender_recovery.rs`: [`EvmAuth`]
//!   (channel or secp256k1), [`EvmSignature`], signing ([`EvmSigningKey`]) and the
//!   sender recovery admission runs on the executor's threads before a batch.
//! - `execute.rs`: [`EvmConfig`] (per-transaction gas limit, per-batch gas budget)
//!   and [`execute_batch`], sequential execution of a batch; [`call_view`].
//! - `vm.rs`: [`EvmVm`], the EVM behind the schedulers' `Vm` seam: keys per
//!   account field and storage slot, revm's database over a scheduler's view,
//!   declared sets from EIP-2930 access lists ([`attach_access_lists`]).
//! - `abi.rs`: the few ABI encodings the contracts need; `address.rs`: the
//!   workloads' account and deployer addresses.
//! - `contracts.rs`: the checked-in bytecode of `executor/contracts/*.vy`.
//! - `genesis.rs`: deploying and seeding the contracts at genesis ([`Deployment`]),
//!   each account in its home instances ([`home_instances`]).
//! - `workload.rs`: [`EvmWorkloadSpec`] and its seeded [`EvmGenerator`] (one per
//!   load client: `client_generator`).
//! - `snapshot.rs`: the state as verifiable chunks ([`EvmChunks`], a manifest and
//!   data chunks; [`EvmChunkedRestore`]) for a replicated application.
//!
//! Fees (`execute.rs`): every transaction that runs pays gas used × effective
//! gas price from its sender's balance (after Ethereum's up-front check that the
//! balance covers gas limit × max fee + value: else `InsufficientFunds`, nothing
//! changes); the block beneficiary ([`EvmConfig::beneficiary`]) is credited the
//! priority part, gas used × (effective gas price − base fee), and the base fee
//! part is burned (EIP-1559). A type-2 transaction carries fee caps, which
//! admission checks against the block's base fee ([`EvmConfig::base_fee`], 0 by
//! default) before it runs, deterministically on every executor: a priority fee
//! above the max fee, or a max fee (a gas price) below the base fee, gets a
//! refusal receipt, no gas and no change; so does a legacy or type-1
//! transaction's gas price below it. The beneficiary's credit is deferred to the end of the batch
//! under the parallel executors, so that it makes no two transactions conflict
//! (issue 15 item 2; `vm.rs`), and is still exactly what sequential revm gives.

mod abi;
mod address;
mod contracts;
mod db;
mod digest;
mod eth_rlp;
mod execute;
mod genesis;
mod receipt;
mod sender_recovery;
mod snapshot;
mod tx;
mod vm;
mod workload;

#[cfg(test)]
mod contract_tests;

pub use abi::{Abi, selector};
pub use address::{
    DEPLOYER, EvmAccounts, WORKLOAD_FEES, WORKLOAD_GAS_PRICE, account_address, parse_address,
};
pub use contracts::Contract;
pub use db::{EvmAccount, EvmState};
pub use execute::{CHAIN_ID, DEFAULT_BENEFICIARY, EvmConfig, call_view, execute_batch};
pub use genesis::{Deployment, GENESIS_ETH, GENESIS_TOKENS, HOME_INSTANCES, home_instances};
pub use receipt::{EvmLog, EvmReceipt, EvmStatus};
pub use sender_recovery::{EvmAuth, EvmSignature, EvmSigningKey, SignatureError};
pub use snapshot::{EVM_CHUNK_TARGET, EvmChunkedRestore, EvmChunks};
pub use tx::{AccessListEntry, Eip1559Fees, EvmTx, MAX_EVM_TX_BYTES};
pub use vm::{EvmKey, EvmScratch, EvmShard, EvmValue, EvmVm, attach_access_lists};
pub use workload::{EvmGenerator, EvmWorkloadKind, EvmWorkloadSpec};

/// revm's primitive types, re-exported so users need not depend on revm.
pub use revm::primitives::{Address, B256, Bytes, U256};
