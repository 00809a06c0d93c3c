//! Sequential execution of a batch of EVM transactions with gas as the cost model,
//! and read-only calls.
//!
//! Admission comes first and depends on the transactions alone, never on
//! execution, so that a parallel executor admits exactly the same set (as the
//! ledger's `cost.rs` charges `work`): in batch order, a signed transaction whose
//! signature gives no sender for `chain_id` is refused (`BadSignature`, reserving
//! nothing: `sender_recovery.rs`; the parallel executors recover senders on their
//! threads first, this reference one by one); a transaction whose fee caps do
//! not fit the block's base fee is refused (`fee_verdict`: an EIP-1559 priority
//! fee above the max fee, a max fee or gas price below `base_fee`), reserving
//! nothing; a transaction whose gas limit
//! is above `max_tx_gas` is refused (`GasLimitAboveMax`); otherwise its gas
//! *limit* is reserved from `max_batch_gas`, and the first transaction whose limit
//! does not fit in what remains stops admission: it and every later transaction
//! get a `BatchGasBudgetExhausted` receipt (no skipping ahead to smaller ones).
//! Unused gas is not handed back to the budget, since that would make admission
//! depend on the gas earlier transactions actually used.
//!
//! Admitted transactions run one after another through revm (Cancun rules, the
//! configuration's base fee, fee charge disabled: the block beneficiary is never
//! touched and no sender pays for gas), each
//! committed to the state before the next. Out-of-gas is an ordinary EVM halt:
//! deterministic, gas used = the limit, changes undone except the nonce.

use revm::context::result::{EVMError, ExecutionResult, HaltReason, Output};
use revm::context_interface::ContextTr;
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes, U256};
use revm::{Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

use super::db::EvmState;
use super::receipt::{EvmLog, EvmReceipt, EvmStatus};
use super::sender_recovery::EvmAuth;
use super::tx::EvmTx;

/// The bounds and rules of EVM execution: gas limits, chain id and sender
/// authentication (the cluster file's `[execution]` section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvmConfig {
    /// Largest gas limit a transaction may declare (EIP-7825's cap, 2^24, by default).
    pub max_tx_gas: u64,
    /// Gas a batch may reserve in total, summed over admitted transactions' limits.
    pub max_batch_gas: u64,
    /// The chain id revm checks transactions against and signatures must be made
    /// for (EIP-155 replay protection): [`CHAIN_ID`] unless a test says otherwise.
    pub chain_id: u64,
    /// How transactions authenticate their sender: with
    /// [`EvmAuth::Secp256k1`] an unsigned transaction gets a `BadSignature`
    /// receipt on every executor (channel, the default, runs it as its `from`).
    pub auth: EvmAuth,
    /// The block's base fee, wei per gas (0 by default): a transaction's max fee
    /// (type 2) or gas price (legacy, type 1: 0) below it is refused at admission
    /// (`MaxFeeBelowBaseFee`). revm sees it as the block's base fee (BASEFEE, the
    /// effective gas price); nothing is charged.
    pub base_fee: u64,
}

/// Tandem's EVM chain id, 0x7a4d = 31309 (arbitrary, not a public network's): the
/// one place it is fixed. Signed transactions are signed for it
/// (`sender_recovery.rs`); a signature for another chain is refused.
pub const CHAIN_ID: u64 = 0x7a_4d;

impl Default for EvmConfig {
    fn default() -> EvmConfig {
        EvmConfig {
            max_tx_gas: 1 << 24,
            max_batch_gas: 200_000_000,
            chain_id: CHAIN_ID,
            auth: EvmAuth::Channel,
            base_fee: 0,
        }
    }
}

impl EvmConfig {
    /// No batch budget (genesis, tests).
    pub fn unbounded() -> EvmConfig {
        EvmConfig {
            max_batch_gas: u64::MAX,
            ..EvmConfig::default()
        }
    }
}

/// Runs `txs` in order against `state` (see the module docs), one receipt each.
pub fn execute_batch(state: &mut EvmState, txs: &[EvmTx], config: &EvmConfig) -> Vec<EvmReceipt> {
    let mut evm = context(config).with_db(&mut *state).build_mainnet();
    let mut remaining = config.max_batch_gas;
    let mut exhausted = false;
    txs.iter()
        .map(|tx| {
            if let Some(why) = tx.check_authentication(config.chain_id, config.auth) {
                return EvmReceipt::refused(EvmStatus::BadSignature(why.to_string()));
            }
            if let Some(status) = fee_verdict(tx, config.base_fee) {
                return EvmReceipt::refused(status);
            }
            if tx.gas_limit > config.max_tx_gas {
                return EvmReceipt::refused(EvmStatus::GasLimitAboveMax);
            }
            if exhausted || tx.gas_limit > remaining {
                exhausted = true;
                return EvmReceipt::refused(EvmStatus::BatchGasBudgetExhausted);
            }
            remaining -= tx.gas_limit;
            // With the fee charge disabled revm no longer checks the value against
            // the balance up front (it would halt inside the call instead); keep
            // Ethereum's rule: such a transaction is invalid and changes nothing.
            if evm.ctx.db_ref().balance(tx.sender()) < tx.value() {
                return EvmReceipt::refused(EvmStatus::Invalid(
                    "balance below the value sent".into(),
                ));
            }
            match evm.transact_commit(tx.env(config.chain_id)) {
                Ok(result) => receipt(result),
                Err(EVMError::Transaction(why)) => {
                    EvmReceipt::refused(EvmStatus::Invalid(why.to_string()))
                }
                Err(other) => EvmReceipt::refused(EvmStatus::Invalid(other.to_string())),
            }
        })
        .collect()
}

/// The admission verdict on `tx`'s fees under base fee `base_fee` (see the module
/// docs): `PriorityFeeAboveMaxFee`, `MaxFeeBelowBaseFee` or `None` (it may run).
/// The transaction's fields alone decide, so every executor refuses the same ones;
/// revm's own validation would refuse them too, later and as `Invalid`.
pub(super) fn fee_verdict(tx: &EvmTx, base_fee: u64) -> Option<EvmStatus> {
    let max_fee = match &tx.eip1559 {
        Some(fees) if fees.max_priority_fee_per_gas > fees.max_fee_per_gas => {
            return Some(EvmStatus::PriorityFeeAboveMaxFee);
        }
        Some(fees) => fees.max_fee_per_gas,
        None => 0,
    };
    (max_fee < u128::from(base_fee)).then_some(EvmStatus::MaxFeeBelowBaseFee)
}

/// Calls `to` with `data` from the zero address without committing anything
/// (nonce check off, no gas bound beyond `max_tx_gas`): reading a contract's views.
/// `Err` carries the failing receipt's status.
pub fn call_view(state: &mut EvmState, to: Address, data: Vec<u8>) -> Result<Bytes, EvmStatus> {
    let config = EvmConfig::unbounded();
    let mut evm = context(&config)
        .modify_cfg_chained(|cfg| cfg.disable_nonce_check = true)
        .with_db(&mut *state)
        .build_mainnet();
    let tx = EvmTx::call(Address::ZERO, to, U256::ZERO, 0, config.max_tx_gas, data);
    match evm.transact(tx.env(config.chain_id)) {
        Ok(out) => match out.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            other => Err(receipt(other).status),
        },
        Err(e) => Err(EvmStatus::Invalid(e.to_string())),
    }
}

pub(super) fn context(config: &EvmConfig) -> Context {
    Context::mainnet()
        .modify_cfg_chained(|cfg| {
            cfg.spec = SpecId::CANCUN;
            cfg.chain_id = config.chain_id;
            cfg.disable_fee_charge = true;
        })
        .modify_block_chained(|block| {
            block.number = U256::from(1);
            block.timestamp = U256::from(1);
            block.gas_limit = config.max_tx_gas;
            block.basefee = config.base_fee;
            block.beneficiary = Address::ZERO;
        })
}

pub(super) fn receipt(result: ExecutionResult<HaltReason>) -> EvmReceipt {
    let gas_used = result.tx_gas_used();
    match result {
        ExecutionResult::Success { logs, output, .. } => EvmReceipt {
            status: EvmStatus::Success,
            gas_used,
            logs: logs
                .into_iter()
                .map(|log| EvmLog {
                    address: log.address.into_array(),
                    topics: log.data.topics().iter().map(|t| t.0).collect(),
                    data: log.data.data.to_vec(),
                })
                .collect(),
            output: match output {
                Output::Call(bytes) => bytes.to_vec(),
                Output::Create(..) => Vec::new(),
            },
        },
        ExecutionResult::Revert { output, .. } => EvmReceipt {
            status: EvmStatus::Reverted,
            gas_used,
            logs: Vec::new(),
            output: output.to_vec(),
        },
        ExecutionResult::Halt { reason, .. } => EvmReceipt {
            status: match reason {
                HaltReason::OutOfGas(_) => EvmStatus::OutOfGas,
                other => EvmStatus::Halted(format!("{other:?}")),
            },
            gas_used,
            logs: Vec::new(),
            output: Vec::new(),
        },
    }
}
