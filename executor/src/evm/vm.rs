//! The EVM behind the schedulers' seam (`crate::vm`): [`EvmVm`] runs one
//! transaction through revm against whatever view a scheduler gives it (the
//! state itself, Block-STM's multi-version memory, the access-list schedule's
//! outputs), so every executor runs the EVM exactly as [`execute_batch`] does.
//!
//! **Keys** ([`EvmKey`]) are per account field — balance, nonce, code — and per
//! storage slot (address, slot), so two transfers from different senders, or two
//! token transfers between different holders, share no written key. The code key
//! holds the code hash and the code itself ([`EvmValue::Code`]): code is only
//! written when an account is created, and reading it with the hash saves revm a
//! `code_by_hash` lookup by hash (which a per-key view could not answer).
//!
//! **Execution**: revm's `Database` is implemented over the view (`Reader`; each
//! thread keeps one revm instance in its scratch, so its allocations are made once):
//! `basic` reads the three account fields (an account whose fields are all
//! default does not exist, as `EvmState` never stores one), `storage` reads the
//! slot. A read the view cannot answer is a database error that aborts revm
//! (`Dependency` becomes `Err(Blocked)`, `Undeclared` an internal-error receipt
//! the access-list executor discards when it falls back). The write set is taken
//! from revm's result state: for every touched account, the fields that differ
//! from what was read, and the slots whose value changed (a self-destructed
//! account, which since Cancun is one created by the same transaction, goes back
//! to defaults). A created account's storage is assumed empty before the creation
//! (storage only exists under code, and CREATE refuses an address with code or a
//! nonce), which is what `EvmState`'s commit clearing it amounts to.
//!
//! **Admission** ([`Vm::admit`]) is `execute_batch`'s, from the ordered
//! transactions alone: a signed transaction's sender is recovered, in parallel on
//! the executor's threads (`sender_recovery.rs`), and a bad signature refused
//! (reserving no gas); then fee caps that do not fit the base fee refused
//! (reserving no gas); then above `max_tx_gas` refused, gas limits reserved from
//! `max_batch_gas` in order, the first that does not fit and all after it refused.
//! The value-against-balance check is part of execution (it reads the sender's
//! balance through the view).
//!
//! **Declared sets** ([`Vm::declare`]): only a transaction carrying an EIP-2930
//! access list declares anything: the sender's balance and nonce (written) and
//! code, the recipient's fields (its balance written when value moves), a created
//! contract's fields (written), each listed address's fields (read) and each
//! listed slot (written). [`attach_access_lists`] makes such lists the way
//! `eth_createAccessList` does, by running the batch once.
//!
//! **Fees** (`execute.rs`): revm charges the sender as `execute_batch` does, but
//! the beneficiary's credit is deferred (issue 15 item 2; pevm had to do the
//! same): crediting it in every transaction would make the beneficiary's balance
//! a key every transaction reads and writes, so every pair would conflict. revm
//! runs under a handler whose beneficiary reward does nothing
//! (`DeferredReward`); the credit is left in the receipt (`EvmReceipt::tip`) and
//! [`Vm::settle`] adds the credits to the beneficiary's balance, after each
//! transaction under the sequential loop and once per batch after a parallel
//! run. A transaction that itself loads the beneficiary's account (a transfer to
//! or from it, BALANCE of it, a call to it) reads its balance through
//! `ReadView::read_credited`: the state under the sequential loop, where every
//! earlier credit is settled, so it sees exactly what `execute_batch` gives it;
//! Block-STM and the access-list executor cannot answer that read and run the
//! batch in order instead (`vm.rs` of the crate, "Deferred credits").
//!
//! [`execute_batch`]: super::execute_batch

use std::fmt;
use std::ptr::NonNull;

use revm::bytecode::Bytecode;
use revm::context::result::{EVMError, HaltReason, InvalidTransaction};
use revm::context::{BlockEnv, CfgEnv, Journal, TxEnv};
use revm::context_interface::ContextSetters;
use revm::database_interface::{DBErrorMarker, Database};
use revm::handler::{FrameResult, Handler, MainnetEvm};
use revm::primitives::{Address, B256, KECCAK_EMPTY, U256};
use revm::state::{Account, AccountInfo};
use revm::{Context, ExecuteEvm, MainBuilder};

use super::db::{EvmAccount, EvmState, StateShard};
use super::execute::{EvmConfig, context, fee_verdict, invalid, receipt};
use super::receipt::{EvmReceipt, EvmStatus};
use super::sender_recovery::check_signatures;
use super::tx::{AccessListEntry, EvmTx};
use crate::state::shard_of;
use crate::threads::WorkerThreads;
use crate::tx::Access;
use crate::vm::{Admission, Blocked, ReadError, ReadView, Vm, WriteSet};

/// A location of EVM state: the unit of conflict detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvmKey {
    /// An account's balance in wei.
    Balance(Address),
    /// An account's nonce.
    Nonce(Address),
    /// An account's code (hash and bytecode).
    Code(Address),
    /// A storage slot of a contract.
    Slot(Address, U256),
}

/// What an [`EvmKey`] holds (the variant matches the key's).
#[derive(Clone, Debug, PartialEq)]
pub enum EvmValue {
    Balance(U256),
    Nonce(u64),
    /// The code hash and the code (`KECCAK_EMPTY` and empty code: none).
    Code(B256, Bytecode),
    Slot(U256),
}

/// A commit shard of the EVM state: the final writes of a parallel executor for
/// the keys of one shard, applied to the state when the batch finishes.
#[derive(Debug, Default)]
pub struct EvmShard(Vec<(EvmKey, EvmValue)>);

/// The EVM as a [`Vm`] with its gas bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvmVm {
    /// Per-transaction gas limit, per-batch gas budget and chain id.
    pub config: EvmConfig,
}

impl EvmVm {
    /// The EVM under `config`.
    pub fn new(config: EvmConfig) -> EvmVm {
        EvmVm { config }
    }
}

/// The revm instance a thread keeps across transactions, over a `Reader`.
type ReaderEvm = MainnetEvm<Context<BlockEnv, TxEnv, CfgEnv, Reader, Journal<Reader>, ()>>;

/// Per-thread scratch: a revm instance (built once, with its journal, memory and
/// frame allocations, under the configuration it was built for) and the list of
/// an execution's changed accounts.
#[derive(Default)]
pub struct EvmScratch {
    evm: Option<(EvmConfig, Box<ReaderEvm>)>,
    changes: Vec<(Address, Account)>,
}

// SAFETY: `ReaderEvm` is not `Send` for two reasons, neither of which lets two
// threads touch shared data: its local context's memory buffer is an `Rc`, whose
// clones all live inside the same revm instance (its frames), so they move with
// it; and `Reader::view` is a raw pointer that is `None` except during one
// `execute` call on the thread that set it.
unsafe impl Send for EvmScratch {}

impl fmt::Debug for EvmScratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmScratch")
            .field("built", &self.evm.is_some())
            .finish()
    }
}

const EMPTY_ACCOUNT: EvmAccount = EvmAccount {
    balance: U256::ZERO,
    nonce: 0,
    code_hash: KECCAK_EMPTY,
};

/// Writes one field or slot into the state (a default removes it).
fn write_entry(state: &mut EvmState, key: EvmKey, value: EvmValue) {
    let shard = &mut state.shards[shard_of(EvmVm::key_hash(&key))];
    if let Some((hash, code)) = write_in_shard(shard, key, value) {
        state.code.entry(hash).or_insert(code);
    }
}

/// Writes one field or slot into `shard`, the state shard of `key`; returns the
/// code to add to the state's code map, if any.
fn write_in_shard(
    shard: &mut StateShard,
    key: EvmKey,
    value: EvmValue,
) -> Option<(B256, Bytecode)> {
    let address = match key {
        EvmKey::Slot(address, slot) => {
            let EvmValue::Slot(v) = value else {
                return None;
            };
            if v.is_zero() {
                shard.storage.remove(&(address, slot));
            } else {
                shard.storage.insert((address, slot), v);
            }
            return None;
        }
        EvmKey::Balance(a) | EvmKey::Nonce(a) | EvmKey::Code(a) => a,
    };
    let account = shard.accounts.entry(address).or_insert(EMPTY_ACCOUNT);
    let mut new_code = None;
    match (key, value) {
        (EvmKey::Balance(_), EvmValue::Balance(b)) => account.balance = b,
        (EvmKey::Nonce(_), EvmValue::Nonce(n)) => account.nonce = n,
        (EvmKey::Code(_), EvmValue::Code(hash, code)) => {
            account.code_hash = hash;
            if hash != KECCAK_EMPTY {
                new_code = Some((hash, code));
            }
        }
        _ => {}
    }
    if *account == EMPTY_ACCOUNT {
        shard.accounts.remove(&address);
    }
    new_code
}

impl Vm for EvmVm {
    type Key = EvmKey;
    type Value = EvmValue;
    type Tx = EvmTx;
    type Receipt = EvmReceipt;
    type Verdict = EvmStatus;
    type State = EvmState;
    type Shard = EvmShard;
    type Scratch = EvmScratch;

    /// Fx over the key, except that an account field's top bits (which pick its
    /// state shard) come from the address alone: an account's fields live in one
    /// `EvmState` shard entry (`db.rs`).
    #[inline]
    fn key_hash(key: &EvmKey) -> u64 {
        use std::hash::BuildHasher;
        const TOP: u64 = !(u64::MAX >> 4);
        let hash = rustc_hash::FxBuildHasher.hash_one(key);
        match key {
            EvmKey::Slot(..) => hash,
            EvmKey::Balance(a) | EvmKey::Nonce(a) | EvmKey::Code(a) => {
                (rustc_hash::FxBuildHasher.hash_one(a) & TOP) | (hash & !TOP)
            }
        }
    }

    fn read_state(state: &EvmState, key: &EvmKey) -> Option<EvmValue> {
        match *key {
            EvmKey::Slot(address, slot) => {
                let value = state.storage_at(address, slot);
                (!value.is_zero()).then_some(EvmValue::Slot(value))
            }
            EvmKey::Balance(a) => state
                .account(a)
                .filter(|a| !a.balance.is_zero())
                .map(|a| EvmValue::Balance(a.balance)),
            EvmKey::Nonce(a) => state
                .account(a)
                .filter(|a| a.nonce != 0)
                .map(|a| EvmValue::Nonce(a.nonce)),
            EvmKey::Code(a) => state
                .account(a)
                .filter(|a| a.code_hash != KECCAK_EMPTY)
                .map(|a| {
                    let code = state.code.get(&a.code_hash).cloned().unwrap_or_default();
                    EvmValue::Code(a.code_hash, code)
                }),
        }
    }

    fn write_state(state: &mut EvmState, key: EvmKey, value: EvmValue) {
        write_entry(state, key, value);
    }

    fn write_shard(shard: &mut EvmShard, key: EvmKey, value: EvmValue) {
        shard.0.push((key, value));
    }

    /// Collects each shard's writes and applies them to the matching state shard,
    /// one shard per thread at a time (on `threads` if given); code for created
    /// accounts, kept by hash outside the shards, is added afterwards. (Each
    /// key's final value is independent of the order shards are applied in.)
    fn finish_batch(
        state: &mut EvmState,
        threads: Option<&WorkerThreads>,
        commit: impl Fn(usize, &mut EvmShard) + Sync,
    ) {
        struct Work<'a> {
            writes: EvmShard,
            target: &'a mut StateShard,
            /// Writes whose key belongs to another shard (none from the
            /// executors, which commit by `key_hash`; applied afterwards).
            stray: Vec<(EvmKey, EvmValue)>,
            code: Vec<(B256, Bytecode)>,
        }
        let mut work: Vec<Work<'_>> = state
            .shards
            .iter_mut()
            .map(|target| Work {
                writes: EvmShard::default(),
                target,
                stray: Vec::new(),
                code: Vec::new(),
            })
            .collect();
        let apply = |offset: usize, part: &mut [Work<'_>]| {
            for (i, w) in part.iter_mut().enumerate() {
                commit(offset + i, &mut w.writes);
                for (key, value) in w.writes.0.drain(..) {
                    if shard_of(EvmVm::key_hash(&key)) != offset + i {
                        w.stray.push((key, value));
                    } else if let Some(code) = write_in_shard(w.target, key, value) {
                        w.code.push(code);
                    }
                }
            }
        };
        match threads {
            Some(threads) if threads.count() > 1 => threads.parallel_chunks(&mut work, 1, apply),
            _ => apply(0, &mut work),
        }
        let mut stray = Vec::new();
        let mut code = Vec::new();
        for w in work {
            stray.extend(w.stray);
            code.extend(w.code);
        }
        for (hash, bytecode) in code {
            state.code.entry(hash).or_insert(bytecode);
        }
        for (key, value) in stray {
            write_entry(state, key, value);
        }
    }

    /// On `threads`, the chunks are encoded in parallel (`EvmState::digest_on`).
    fn digest(state: &mut EvmState, threads: Option<&WorkerThreads>) -> [u8; 32] {
        match threads {
            Some(threads) => state.digest_on(threads),
            None => state.digest(),
        }
    }

    /// `execute_batch`'s admission (see the module docs): signatures checked and
    /// senders recovered on `threads`, then gas.
    fn admit(
        &self,
        _state: &EvmState,
        txs: &[EvmTx],
        threads: Option<&WorkerThreads>,
        verdicts: &mut Vec<Option<EvmStatus>>,
    ) -> Admission {
        verdicts.clear();
        verdicts.resize(txs.len(), None);
        let signatures_verified = check_signatures(
            txs,
            self.config.chain_id,
            self.config.auth,
            threads,
            verdicts,
        );
        let mut remaining = self.config.max_batch_gas;
        let mut exhausted = false;
        for (tx, verdict) in txs.iter().zip(verdicts.iter_mut()) {
            if verdict.is_some() {
                continue;
            }
            *verdict = if let Some(status) = fee_verdict(tx, self.config.base_fee) {
                Some(status)
            } else if tx.gas_limit > self.config.max_tx_gas {
                Some(EvmStatus::GasLimitAboveMax)
            } else if exhausted || tx.gas_limit > remaining {
                exhausted = true;
                Some(EvmStatus::BatchGasBudgetExhausted)
            } else {
                remaining -= tx.gas_limit;
                None
            };
        }
        Admission {
            signatures_verified,
            gas: self.config.max_batch_gas - remaining,
        }
    }

    fn execute<R: ReadView<Self>>(
        &self,
        tx: &EvmTx,
        verdict: Option<&EvmStatus>,
        view: &mut R,
        scratch: &mut EvmScratch,
        writes: &mut WriteSet<EvmKey, EvmValue>,
    ) -> Result<EvmReceipt, Blocked> {
        writes.clear();
        if let Some(status) = verdict {
            return Ok(EvmReceipt::refused(status.clone()));
        }
        let config = self.config;
        let build = || {
            let reader = Reader {
                view: None,
                originals: Vec::new(),
                beneficiary: config.beneficiary,
            };
            (
                config,
                Box::new(context(&config).with_db(reader).build_mainnet()),
            )
        };
        let slot = scratch.evm.get_or_insert_with(build);
        if slot.0 != config {
            *slot = build();
        }
        let evm = &mut slot.1;
        let db = &mut evm.ctx.journaled_state.database;
        db.originals.clear();
        let view: &mut dyn DynView = view;
        // SAFETY: only the lifetime is erased. The pointer is read only through
        // `Reader::field`, during the `run` call below, while `view` is borrowed
        // by this function, and is cleared before this function returns.
        db.view = Some(unsafe {
            std::mem::transmute::<NonNull<dyn DynView + '_>, NonNull<dyn DynView>>(NonNull::from(
                view,
            ))
        });
        let outcome = run(evm, tx, &config, &mut scratch.changes, writes);
        evm.ctx.journaled_state.database.view = None;
        if outcome.is_err() {
            writes.clear();
        }
        outcome
    }

    fn declare(tx: &EvmTx, out: &mut Vec<(EvmKey, Access)>) -> bool {
        let list: &[_] = match &tx.access_list {
            Some(list) => list,
            // An EIP-1559 transaction's empty list and no list are the same bytes
            // (`eth_rlp.rs`; signing drops an empty one): it declares its own
            // accounts. An undeclared access is still caught and falls back.
            None if tx.eip1559.is_some() => &[],
            None => return false,
        };
        let mut add = |key: EvmKey, access: Access| match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => {
                if access == Access::Write {
                    slot.1 = Access::Write;
                }
            }
            None => out.push((key, access)),
        };
        let account = |add: &mut dyn FnMut(EvmKey, Access), a: Address, balance, nonce, code| {
            add(EvmKey::Balance(a), balance);
            add(EvmKey::Nonce(a), nonce);
            add(EvmKey::Code(a), code);
        };
        let sender = tx.sender();
        account(&mut add, sender, Access::Write, Access::Write, Access::Read);
        let moves = if tx.value().is_zero() {
            Access::Read
        } else {
            Access::Write
        };
        match (tx.recipient(), tx.created_address()) {
            (Some(to), _) => account(&mut add, to, moves, Access::Read, Access::Read),
            (None, Some(created)) => account(
                &mut add,
                created,
                Access::Write,
                Access::Write,
                Access::Write,
            ),
            (None, None) => {}
        }
        for entry in list {
            let a = Address::new(entry.address);
            account(&mut add, a, Access::Read, Access::Read, Access::Read);
            for slot in &entry.slots {
                add(EvmKey::Slot(a, U256::from_be_bytes(*slot)), Access::Write);
            }
        }
        true
    }

    /// The sender's and the recipient's account fields, then those of every
    /// access-list entry and its slots (at most `MAX_HINTS` keys).
    fn hint_keys(tx: &EvmTx, mut hint: impl FnMut(&EvmKey)) {
        const MAX_HINTS: usize = 32;
        let mut left = MAX_HINTS;
        let mut key = |k: EvmKey| {
            if left > 0 {
                left -= 1;
                hint(&k);
            }
        };
        let account = |key: &mut dyn FnMut(EvmKey), a: Address| {
            key(EvmKey::Balance(a));
            key(EvmKey::Nonce(a));
            key(EvmKey::Code(a));
        };
        account(&mut key, tx.sender());
        if let Some(to) = tx.recipient() {
            account(&mut key, to);
        }
        for entry in tx.access_list.iter().flatten() {
            let a = Address::new(entry.address);
            account(&mut key, a);
            for slot in &entry.slots {
                key(EvmKey::Slot(a, U256::from_be_bytes(*slot)));
            }
        }
    }

    fn internal_error(&self) -> EvmReceipt {
        internal_error()
    }

    /// Adds the receipts' tips to the beneficiary's balance (module docs).
    fn settle(&self, state: &mut EvmState, receipts: &[EvmReceipt]) {
        let total = receipts
            .iter()
            .fold(U256::ZERO, |sum, r| sum.saturating_add(U256::from(r.tip)));
        if total.is_zero() {
            return;
        }
        let beneficiary = self.config.beneficiary;
        let balance = state.account(beneficiary).map_or(U256::ZERO, |a| a.balance);
        write_entry(
            state,
            EvmKey::Balance(beneficiary),
            EvmValue::Balance(balance.saturating_add(total)),
        );
    }

    /// 1024 independent ether transfers between funded accounts, each with an
    /// (empty) access list so that every executor can schedule them.
    fn calibration(&self) -> Option<(EvmState, Vec<EvmTx>)> {
        const N: u64 = 1024;
        let mut state = EvmState::new();
        for i in 0..N {
            state.fund(super::account_address(i), U256::from(1_000_000u64));
        }
        let txs = (0..N)
            .map(|i| {
                EvmTx::call(
                    super::account_address(i),
                    super::account_address(N + i),
                    U256::from(1u64),
                    0,
                    30_000,
                    Vec::new(),
                )
                .with_access_list(Vec::new())
            })
            .collect();
        Some((state, txs))
    }
}

/// revm's mainnet handler, except that the beneficiary is not rewarded: its
/// credit is deferred (module docs). Everything else — the sender's up-front
/// balance check and charge, the refund of unused gas — is revm's own.
struct DeferredReward;

impl Handler for DeferredReward {
    type Evm = ReaderEvm;
    type Error = EVMError<ViewError, InvalidTransaction>;
    type HaltReason = HaltReason;

    fn reward_beneficiary(
        &self,
        _evm: &mut ReaderEvm,
        _exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// One transaction on the thread's revm instance, its view set.
fn run(
    evm: &mut ReaderEvm,
    tx: &EvmTx,
    config: &EvmConfig,
    changes: &mut Vec<(Address, Account)>,
    writes: &mut WriteSet<EvmKey, EvmValue>,
) -> Result<EvmReceipt, Blocked> {
    let fail = |e: ViewError| match e {
        ViewError::Read(ReadError::Dependency(t)) => Err(Blocked(t)),
        _ => Ok(internal_error()),
    };
    // `ExecuteEvm::transact` with the handler above: run, then take the
    // journal's changes (which also clears it for the next transaction).
    evm.ctx.set_tx(tx.env(config.chain_id));
    let result = DeferredReward.run(evm);
    let state = evm.finalize();
    match result {
        Ok(result) => {
            changes.clear();
            changes.extend(state);
            // revm's map is a hash map: list the writes in address order.
            changes.sort_unstable_by_key(|(a, _)| *a);
            let originals = &evm.ctx.journaled_state.database.originals;
            for (address, account) in changes.drain(..) {
                let original = originals
                    .iter()
                    .find(|(a, _)| *a == address)
                    .map_or(EMPTY_ACCOUNT, |(_, o)| *o);
                account_writes(address, &account, &original, writes);
            }
            Ok(receipt(result, tx, config.base_fee))
        }
        Err(EVMError::Database(e)) => fail(e),
        Err(EVMError::Transaction(why)) => Ok(EvmReceipt::refused(invalid(why))),
        Err(other) => Ok(EvmReceipt::refused(EvmStatus::Invalid(other.to_string()))),
    }
}

fn internal_error() -> EvmReceipt {
    EvmReceipt::refused(EvmStatus::Invalid("internal error".into()))
}

fn balance_of(v: Option<EvmValue>) -> U256 {
    match v {
        Some(EvmValue::Balance(b)) => b,
        _ => U256::ZERO,
    }
}

/// The writes of one account revm returned, against what was read of it.
fn account_writes(
    address: Address,
    account: &Account,
    original: &EvmAccount,
    writes: &mut WriteSet<EvmKey, EvmValue>,
) {
    if !account.is_touched() {
        return;
    }
    let destroyed = account.is_selfdestructed();
    let (balance, nonce, code_hash) = if destroyed {
        (U256::ZERO, 0, KECCAK_EMPTY)
    } else {
        (
            account.info.balance,
            account.info.nonce,
            account.info.code_hash,
        )
    };
    if balance != original.balance {
        writes.put(EvmKey::Balance(address), EvmValue::Balance(balance));
    }
    if nonce != original.nonce {
        writes.put(EvmKey::Nonce(address), EvmValue::Nonce(nonce));
    }
    if code_hash != original.code_hash {
        let code = match (&account.info.code, destroyed) {
            (Some(code), false) => code.clone(),
            _ => Bytecode::default(),
        };
        writes.put(EvmKey::Code(address), EvmValue::Code(code_hash, code));
    }
    for (slot, value) in &account.storage {
        let present = if destroyed {
            U256::ZERO
        } else {
            value.present_value
        };
        if present != value.original_value {
            writes.put(EvmKey::Slot(address, *slot), EvmValue::Slot(present));
        }
    }
}

/// Why revm's database could not answer.
#[derive(Debug)]
enum ViewError {
    /// The view could not answer (a dependency or an undeclared key).
    Read(ReadError),
    /// Code asked for by hash alone (never expected: `basic` returns the code).
    CodeByHash,
    /// A read outside `execute` (never expected).
    NoView,
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::Read(e) => write!(f, "read refused: {e:?}"),
            ViewError::CodeByHash => f.write_str("code asked for by hash"),
            ViewError::NoView => f.write_str("no view"),
        }
    }
}

impl std::error::Error for ViewError {}
impl DBErrorMarker for ViewError {}

/// A scheduler's view behind a pointer without its type (see `Reader`).
trait DynView {
    fn read_key(&mut self, key: &EvmKey) -> Result<Option<EvmValue>, ReadError>;
    fn read_credited_key(&mut self, key: &EvmKey) -> Result<Option<EvmValue>, ReadError>;
}

impl<R: ReadView<EvmVm>> DynView for R {
    #[inline]
    fn read_key(&mut self, key: &EvmKey) -> Result<Option<EvmValue>, ReadError> {
        self.read(key)
    }

    fn read_credited_key(&mut self, key: &EvmKey) -> Result<Option<EvmValue>, ReadError> {
        self.read_credited(key)
    }
}

/// revm's database over the view of the transaction being executed, remembering
/// the accounts it read. The revm instance owning it lives in a thread's scratch
/// across transactions, so the view is a pointer set by `execute` for one
/// transaction and cleared after it (no view: every read fails).
struct Reader {
    view: Option<NonNull<dyn DynView>>,
    originals: Vec<(Address, EvmAccount)>,
    /// The block beneficiary, whose balance deferred credits change: read through
    /// `read_credited` (module docs).
    beneficiary: Address,
}

impl Reader {
    fn field(&mut self, key: EvmKey) -> Result<Option<EvmValue>, ViewError> {
        let Some(view) = self.view else {
            return Err(ViewError::NoView);
        };
        // SAFETY: `execute` set the pointer from a `&mut` view it holds for as
        // long as the pointer is set, and nothing else uses that view meanwhile.
        unsafe { (*view.as_ptr()).read_key(&key) }.map_err(ViewError::Read)
    }

    /// `field` for a key deferred credits change (the beneficiary's balance).
    fn credited_field(&mut self, key: EvmKey) -> Result<Option<EvmValue>, ViewError> {
        let Some(view) = self.view else {
            return Err(ViewError::NoView);
        };
        // SAFETY: as in `field`.
        unsafe { (*view.as_ptr()).read_credited_key(&key) }.map_err(ViewError::Read)
    }
}

impl Database for Reader {
    type Error = ViewError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, ViewError> {
        let balance = if address == self.beneficiary {
            balance_of(self.credited_field(EvmKey::Balance(address))?)
        } else {
            balance_of(self.field(EvmKey::Balance(address))?)
        };
        let nonce = match self.field(EvmKey::Nonce(address))? {
            Some(EvmValue::Nonce(n)) => n,
            _ => 0,
        };
        let (code_hash, code) = match self.field(EvmKey::Code(address))? {
            Some(EvmValue::Code(hash, code)) => (hash, code),
            _ => (KECCAK_EMPTY, Bytecode::default()),
        };
        let account = EvmAccount {
            balance,
            nonce,
            code_hash,
        };
        if !self.originals.iter().any(|(a, _)| *a == address) {
            self.originals.push((address, account));
        }
        if account == EMPTY_ACCOUNT {
            return Ok(None);
        }
        Ok(Some(AccountInfo {
            balance,
            nonce,
            code_hash,
            code: Some(code),
            ..AccountInfo::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, ViewError> {
        if code_hash == KECCAK_EMPTY {
            Ok(Bytecode::default())
        } else {
            Err(ViewError::CodeByHash)
        }
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, ViewError> {
        match self.field(EvmKey::Slot(address, index))? {
            Some(EvmValue::Slot(v)) => Ok(v),
            _ => Ok(U256::ZERO),
        }
    }

    /// No history: BLOCKHASH is zero, as `EvmState` answers.
    fn block_hash(&mut self, _number: u64) -> Result<B256, ViewError> {
        Ok(B256::ZERO)
    }
}

/// Records every key a transaction reads, over the state (for access lists).
struct Recording<'a> {
    state: &'a EvmState,
    keys: Vec<EvmKey>,
}

impl ReadView<EvmVm> for Recording<'_> {
    fn read(&mut self, key: &EvmKey) -> Result<Option<EvmValue>, ReadError> {
        if !self.keys.contains(key) {
            self.keys.push(*key);
        }
        Ok(EvmVm::read_state(self.state, key))
    }

    /// The state copy is settled after each transaction, as the sequential loop's.
    fn read_credited(&mut self, key: &EvmKey) -> Result<Option<EvmValue>, ReadError> {
        self.read(key)
    }
}

/// `txs` with EIP-2930 access lists made as `eth_createAccessList` does: the
/// batch is run in order on a copy of `state` (under `config`, without lists)
/// and each transaction lists the accounts and slots it touched, except its
/// sender and recipient's own account fields (which `declare` adds anyway).
/// Listing changes a transaction's intrinsic gas, not what it touches.
pub fn attach_access_lists(state: &EvmState, txs: &[EvmTx], config: &EvmConfig) -> Vec<EvmTx> {
    let vm = EvmVm::new(*config);
    let mut state = state.clone();
    let mut verdicts = Vec::new();
    vm.admit(&state, txs, None, &mut verdicts);
    let mut scratch = EvmScratch::default();
    let mut writes = WriteSet::default();
    txs.iter()
        .zip(&verdicts)
        .map(|(tx, verdict)| {
            let mut view = Recording {
                state: &state,
                keys: Vec::new(),
            };
            let plain = EvmTx {
                access_list: None,
                ..tx.clone()
            };
            let outcome = vm.execute(
                &plain,
                verdict.as_ref(),
                &mut view,
                &mut scratch,
                &mut writes,
            );
            let mut keys = view.keys;
            keys.extend(writes.entries().iter().map(|(k, _)| *k));
            let own = [Some(tx.sender()), tx.recipient()];
            let mut list: Vec<AccessListEntry> = Vec::new();
            for key in keys {
                let (address, slot) = match key {
                    EvmKey::Slot(a, s) => (a, Some(s)),
                    EvmKey::Balance(a) | EvmKey::Nonce(a) | EvmKey::Code(a) => (a, None),
                };
                if slot.is_none() && own.contains(&Some(address)) {
                    continue;
                }
                let index = match list.iter().position(|e| e.address == address.into_array()) {
                    Some(i) => i,
                    None => {
                        list.push(AccessListEntry {
                            address: address.into_array(),
                            slots: Vec::new(),
                        });
                        list.len() - 1
                    }
                };
                if let Some(s) = slot {
                    let s = s.to_be_bytes::<32>();
                    if !list[index].slots.contains(&s) {
                        list[index].slots.push(s);
                    }
                }
            }
            for (k, v) in writes.drain() {
                write_entry(&mut state, k, v);
            }
            if let Ok(receipt) = outcome {
                vm.settle(&mut state, std::slice::from_ref(&receipt));
            }
            tx.clone().with_access_list(list)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_both_accounts_and_the_access_list_within_the_cap() {
        let (from, to, token) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        let slots: Vec<[u8; 32]> = (0..40u8).map(|i| [i; 32]).collect();
        let tx = EvmTx::call(from, to, U256::ZERO, 0, 100_000, Vec::new()).with_access_list(vec![
            AccessListEntry {
                address: token.into_array(),
                slots,
            },
        ]);
        let mut hinted = Vec::new();
        EvmVm::hint_keys(&tx, |k| hinted.push(*k));
        assert_eq!(hinted.len(), 32, "capped");
        assert_eq!(
            &hinted[..3],
            &[
                EvmKey::Balance(from),
                EvmKey::Nonce(from),
                EvmKey::Code(from)
            ]
        );
        assert!(hinted.contains(&EvmKey::Code(to)));
        assert!(hinted.contains(&EvmKey::Slot(token, U256::from_be_bytes([0; 32]))));
        let plain = EvmTx::call(from, to, U256::ZERO, 0, 100_000, Vec::new());
        let mut n = 0;
        EvmVm::hint_keys(&plain, |_| n += 1);
        assert_eq!(n, 6, "no access list: the two accounts' fields");
    }
}
