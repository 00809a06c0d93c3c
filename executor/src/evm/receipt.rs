//! What executing an EVM transaction gives back: a status, the gas used (what an
//! Ethereum receipt reports: after refunds, the whole limit on an exceptional
//! halt such as out-of-gas), the logs and the call's return data. Transactions
//! refused before they run (a bad signature, fee caps that do not fit the base
//! fee, a balance that cannot cover gas limit × max fee + value, invalid for
//! revm, above the per-transaction gas limit, or past the batch's gas budget) use
//! no gas, pay no fee and change nothing. A transaction that ran pays its fee
//! (`fee`, of which `tip` goes to the block beneficiary).

use serde::{Deserialize, Serialize};

/// How a transaction ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EvmStatus {
    /// Ran to completion; its changes are committed.
    Success,
    /// REVERT: changes undone except the sender's nonce; gas used up to the revert.
    Reverted,
    /// Ran out of gas: changes undone except the nonce; gas used = gas limit.
    OutOfGas,
    /// Another exceptional halt (invalid opcode, stack overflow, …), as OutOfGas.
    Halted(String),
    /// Refused by revm's checks before execution (nonce, intrinsic gas, balance
    /// for the value, …): no change at all, not even the nonce.
    Invalid(String),
    /// Gas limit above the configuration's `max_tx_gas`: not run.
    GasLimitAboveMax,
    /// The batch's gas budget could not admit this transaction (or an earlier
    /// one): not run.
    BatchGasBudgetExhausted,
    /// Its Ethereum signature gives no sender for this chain (why: see
    /// `SignatureError`): not run, no gas, no change (`sender_recovery.rs`).
    BadSignature(String),
    /// An EIP-1559 transaction whose max priority fee is above its max fee: not
    /// run, no gas, no change.
    PriorityFeeAboveMaxFee,
    /// Its max fee (type 2) or gas price (legacy, type 1: 0) is below the block's
    /// base fee (`EvmConfig::base_fee`): not run, no gas, no change.
    MaxFeeBelowBaseFee,
    /// Its sender's balance is below gas limit × max fee (type 2; legacy, type
    /// 1: gas price) + value, Ethereum's up-front check: not run, no gas, no
    /// change, not even the nonce.
    InsufficientFunds,
}

impl EvmStatus {
    pub fn is_success(&self) -> bool {
        *self == EvmStatus::Success
    }
}

impl std::fmt::Display for EvmStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvmStatus::Success => f.write_str("success"),
            EvmStatus::Reverted => f.write_str("reverted"),
            EvmStatus::OutOfGas => f.write_str("out of gas"),
            EvmStatus::Halted(why) => write!(f, "halted: {why}"),
            EvmStatus::Invalid(why) => write!(f, "invalid: {why}"),
            EvmStatus::GasLimitAboveMax => {
                f.write_str("gas limit above the per-transaction maximum")
            }
            EvmStatus::BatchGasBudgetExhausted => f.write_str("batch gas budget exhausted"),
            EvmStatus::BadSignature(why) => write!(f, "bad signature: {why}"),
            EvmStatus::PriorityFeeAboveMaxFee => f.write_str("max priority fee above max fee"),
            EvmStatus::MaxFeeBelowBaseFee => f.write_str("max fee below the block's base fee"),
            EvmStatus::InsufficientFunds => {
                f.write_str("balance below gas limit × max fee + value")
            }
        }
    }
}

/// A log (event) a transaction emitted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvmLog {
    pub address: [u8; 20],
    pub topics: Vec<[u8; 32]>,
    pub data: Vec<u8>,
}

/// The outcome of one EVM transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvmReceipt {
    pub status: EvmStatus,
    pub gas_used: u64,
    /// What the sender paid for gas, wei: gas used × effective gas price
    /// (`execute.rs`); 0 for a transaction that did not run.
    pub fee: u128,
    /// The part of `fee` credited to the block beneficiary, wei: gas used ×
    /// (effective gas price − base fee); the rest is burned. The scheduled
    /// executors credit it at the end of the batch (`vm.rs`, `Vm::settle`).
    pub tip: u128,
    /// Logs of a successful transaction (none otherwise, as on Ethereum).
    pub logs: Vec<EvmLog>,
    /// Return data (a call's output, revert data, or a creation's runtime code is
    /// not included: empty for creations).
    pub output: Vec<u8>,
}

impl EvmReceipt {
    /// A receipt for a transaction that did not run.
    pub fn refused(status: EvmStatus) -> EvmReceipt {
        EvmReceipt {
            status,
            gas_used: 0,
            fee: 0,
            tip: 0,
            logs: Vec::new(),
            output: Vec::new(),
        }
    }
}
