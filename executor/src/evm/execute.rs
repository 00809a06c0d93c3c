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
//! configuration's base fee and block beneficiary), each committed to the state
//! before the next, paying for gas as on Ethereum: revm first checks that the
//! sender's balance covers gas limit × max fee (legacy, type 1: gas price) + value
//! (else `InsufficientFunds`: not run, no change, not even the nonce), takes gas
//! limit × effective gas price, and after execution hands back the unused gas at
//! that price; the sender pays gas used × effective gas price (`EvmReceipt::fee`),
//! the effective gas price being `min(max_fee, base_fee + priority_fee)` (legacy,
//! type 1: the gas price); the beneficiary is credited gas used × (effective gas
//! price − base fee) (`EvmReceipt::tip`) and the base fee part is burned
//! (EIP-1559). Here the credit is revm's own, made at the end of each transaction;
//! the scheduled executors (`vm.rs`) defer it to the end of the batch and give
//! the same receipts and state. Out-of-gas is an ordinary EVM halt:
//! deterministic, gas used = the limit, changes undone except the nonce and the fee.

use revm::context::result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction, Output};
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
    /// (type 2) or gas price (legacy, type 1) below it is refused at admission
    /// (`MaxFeeBelowBaseFee`); every transaction that runs burns gas used × base
    /// fee of its sender's ether (module docs). revm sees it as the block's base
    /// fee (BASEFEE, the effective gas price).
    pub base_fee: u64,
    /// The block beneficiary (COINBASE), credited every transaction's priority
    /// fee part (module docs; [`DEFAULT_BENEFICIARY`] by default). Part of the
    /// replicated state machine: every replica must use the same one.
    pub beneficiary: Address,
}

/// The block beneficiary unless configured otherwise: `0xfefe…fe`, no workload
/// account or contract (`address.rs`, `genesis.rs`).
pub const DEFAULT_BENEFICIARY: Address = Address::new([0xfe; 20]);

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
            beneficiary: DEFAULT_BENEFICIARY,
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
            match evm.transact_commit(tx.env(config.chain_id)) {
                Ok(result) => receipt(result, tx, config.base_fee),
                Err(EVMError::Transaction(why)) => EvmReceipt::refused(invalid(why)),
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
        None => tx.gas_price,
    };
    (max_fee < u128::from(base_fee)).then_some(EvmStatus::MaxFeeBelowBaseFee)
}

/// Calls `to` with `data` from the zero address without committing anything
/// (nonce check off, no gas bound beyond `max_tx_gas`): reading a contract's views.
/// `Err` carries the failing receipt's status.
pub fn call_view(state: &mut EvmState, to: Address, data: Vec<u8>) -> Result<Bytes, EvmStatus> {
    let config = EvmConfig::unbounded();
    let mut evm = context(&config)
        .modify_cfg_chained(|cfg| {
            cfg.disable_nonce_check = true;
            cfg.disable_fee_charge = true;
        })
        .with_db(&mut *state)
        .build_mainnet();
    let tx = EvmTx::call(Address::ZERO, to, U256::ZERO, 0, config.max_tx_gas, data);
    match evm.transact(tx.env(config.chain_id)) {
        Ok(out) => match out.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            other => Err(receipt(other, &tx, 0).status),
        },
        Err(e) => Err(EvmStatus::Invalid(e.to_string())),
    }
}

pub(super) fn context(config: &EvmConfig) -> Context {
    Context::mainnet()
        .modify_cfg_chained(|cfg| {
            cfg.spec = SpecId::CANCUN;
            cfg.chain_id = config.chain_id;
        })
        .modify_block_chained(|block| {
            block.number = U256::from(1);
            block.timestamp = U256::from(1);
            block.gas_limit = config.max_tx_gas;
            block.basefee = config.base_fee;
            block.beneficiary = config.beneficiary;
        })
}

/// A transaction revm refused before running it: `InsufficientFunds` when the
/// sender cannot cover gas limit × max fee + value, else `Invalid` with revm's
/// reason (a wrong nonce, a gas limit below the intrinsic cost, …).
pub(super) fn invalid(why: InvalidTransaction) -> EvmStatus {
    match why {
        InvalidTransaction::LackOfFundForMaxFee { .. } => EvmStatus::InsufficientFunds,
        other => EvmStatus::Invalid(other.to_string()),
    }
}

/// What a transaction that used `gas_used` gas pays under base fee `base_fee`, in
/// wei: the fee (gas used × effective gas price) and the tip, its part credited
/// to the beneficiary (gas used × (effective gas price − base fee)); see the
/// module docs. Saturating: admission and revm's balance check keep both within
/// the sender's balance, so within the ether in existence.
pub(super) fn fees(tx: &EvmTx, gas_used: u64, base_fee: u64) -> (u128, u128) {
    let base_fee = u128::from(base_fee);
    let price = match &tx.eip1559 {
        None => tx.gas_price,
        Some(fees) => fees
            .max_fee_per_gas
            .min(base_fee.saturating_add(fees.max_priority_fee_per_gas)),
    };
    let gas = u128::from(gas_used);
    (
        gas.saturating_mul(price),
        gas.saturating_mul(price.saturating_sub(base_fee)),
    )
}

/// The receipt of `tx`, which ran with `result` under base fee `base_fee`.
///
/// Gas used is revm's receipt value capped at the gas limit: revm applies
/// EIP-7623's calldata floor under Cancun too, and reports the floor as gas used
/// even where it is above the limit (an out-of-gas transaction with much
/// calldata, which Prague would refuse); the sender is charged, and the
/// beneficiary credited, for at most the limit.
pub(super) fn receipt(
    result: ExecutionResult<HaltReason>,
    tx: &EvmTx,
    base_fee: u64,
) -> EvmReceipt {
    let gas_used = result.tx_gas_used().min(tx.gas_limit);
    let (fee, tip) = fees(tx, gas_used, base_fee);
    match result {
        ExecutionResult::Success { logs, output, .. } => EvmReceipt {
            status: EvmStatus::Success,
            gas_used,
            fee,
            tip,
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
            fee,
            tip,
            logs: Vec::new(),
            output: output.to_vec(),
        },
        ExecutionResult::Halt { reason, .. } => EvmReceipt {
            status: match reason {
                HaltReason::OutOfGas(_) => EvmStatus::OutOfGas,
                other => EvmStatus::Halted(format!("{other:?}")),
            },
            gas_used,
            fee,
            tip,
            logs: Vec::new(),
            output: Vec::new(),
        },
    }
}
