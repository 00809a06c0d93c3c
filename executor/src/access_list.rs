//! The access-list executor (Solana Sealevel style): schedules a batch from the
//! read/write sets transactions declare (`Vm::declare`), running non-conflicting
//! transactions in parallel and conflicting ones in batch order.
//!
//! Planning (one pass in order, on the calling thread): for each declared key, the
//! transaction depends on the key's last declared writer before it (its
//! *source*), and becomes the key's last writer if it declares a write. The
//! edges form a DAG in batch order. The declared entries of all transactions are
//! kept flat (transaction `i` owns entries `offsets[i]..offsets[i + 1]`), each with
//! its source's entry for the same key, so a read finds its value in O(1).
//!
//! Execution: every transaction writes into its own output entries, never into
//! shared state, so only read-after-write edges are needed (write-after-read and
//! write-after-write are harmless: each read goes to the entry of its source, whose
//! value no later writer can overwrite). A transaction's writable entries hold the
//! value of their key after it: what it wrote, or what it read when it did not
//! write it (aborts pass values through). At the end the state takes, for every
//! key, the value in its last writer's entry (in parallel, per state shard: the
//! last-writer maps are kept per shard).
//!
//! Declarations are checked, not trusted: a transaction that declares nothing, a
//! read of an undeclared key (the view answers `ReadError::Undeclared` and flags
//! the batch) or a write of a key not declared writable (found when its outputs
//! are filled), or a read of a key deferred credits change (`Vm::settle`: the EVM's
//! block beneficiary), makes the whole batch run sequentially instead, on the unchanged
//! pre-batch state (nothing reaches the state before `commit`), so a wrong
//! declaration costs time, never a result (`BatchStats::fallbacks`). Once the
//! batch is flagged, the remaining transactions are released without running.
//!
//! Scheduling: `pending[i]` = number of sources + 1; the extra 1 is a token taken by
//! an in-order scan, so a transaction runs either when the scan reaches it with its
//! sources done, or when its last source finishes (that thread continues with it:
//! chains of conflicting transactions stay on one core, warm in cache). Other newly
//! ready transactions go to a shared queue.
//!
//! Safety of the output entries: transaction `i`'s entries and receipt are written
//! only by the thread running `i`, once, before it decrements its successors'
//! counters (release); they are read only by successors, which start after
//! observing their counter reach zero (acquire, through the release sequence of all
//! decrements), and by the caller after the broadcast has joined.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustc_hash::FxHashMap;

use crate::cost::ExecutionLimits;
use crate::error::Error;
use crate::executor::{BatchOutcome, BatchStats, Executor};
use crate::ledger_vm::LedgerVm;
use crate::sequential::SequentialExecutor;
use crate::state::{SHARDS, shard_of};
use crate::threads::{WorkerThreads, backoff};
use crate::tx::Access;
use crate::vm::{ReadError, ReadView, Vm, WriteSet};

const NONE: u32 = u32::MAX;

/// A cell written by one thread before any reader starts (see the module docs).
struct Cell<T>(UnsafeCell<T>);

// SAFETY: see the module docs: each cell has one writer, which finishes before
// any reader starts (happens-before through `pending`'s release sequence).
unsafe impl<T: Send + Sync> Sync for Cell<T> {}

impl<T> Cell<T> {
    fn new(value: T) -> Cell<T> {
        Cell(UnsafeCell::new(value))
    }
}

/// Declared-set scheduling over a reusable set of worker threads.
pub struct AccessListExecutor<V: Vm = LedgerVm> {
    vm: V,
    threads: Arc<WorkerThreads>,
    /// Runs the batch when the declarations cannot be used.
    sequential: SequentialExecutor<V>,
    /// Per state shard: the last declared writer of each key (its transaction
    /// and entry).
    last_writer: Vec<FxHashMap<V::Key, (u32, u32)>>,
    /// Declared keys of all transactions, flat; `offsets[i]..offsets[i + 1]`
    /// are transaction `i`'s.
    keys: Vec<V::Key>,
    writable: Vec<bool>,
    /// For each entry, the entry of its key's source (`NONE`: the pre-batch state).
    sources: Vec<u32>,
    offsets: Vec<u32>,
    /// Scratch for `Vm::declare`.
    declared: Vec<(V::Key, Access)>,
    pred_offsets: Vec<u32>,
    preds: Vec<u32>,
    succ_offsets: Vec<u32>,
    succs: Vec<u32>,
    fill: Vec<u32>,
    pending: Vec<AtomicU32>,
    /// Per entry: the value of its key after its transaction (writable entries).
    values: Vec<Cell<Option<V::Value>>>,
    receipts: Vec<Cell<Option<V::Receipt>>>,
    verdicts: Vec<Option<V::Verdict>>,
    /// Whether the last `run` ran sequentially (its credits are settled already).
    ran_sequentially: bool,
}

impl<V: Vm> std::fmt::Debug for AccessListExecutor<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessListExecutor")
            .field("threads", &self.threads.count())
            .finish()
    }
}

struct Batch<'a, V: Vm> {
    vm: &'a V,
    txs: &'a [V::Tx],
    verdicts: &'a [Option<V::Verdict>],
    base: &'a V::State,
    keys: &'a [V::Key],
    writable: &'a [bool],
    sources: &'a [u32],
    offsets: &'a [u32],
    succ_offsets: &'a [u32],
    succs: &'a [u32],
    pending: &'a [AtomicU32],
    values: &'a [Cell<Option<V::Value>>],
    receipts: &'a [Cell<Option<V::Receipt>>],
    scan: AtomicUsize,
    ready: Mutex<Vec<u32>>,
    ready_len: AtomicUsize,
    completed: AtomicUsize,
    /// Set when a transaction stepped outside its declared set.
    undeclared: AtomicBool,
}

impl<V: Vm> Batch<'_, V> {
    /// The value of entry `e`'s key before its transaction.
    fn before(&self, e: usize) -> Option<V::Value> {
        match self.sources[e] {
            NONE => V::read_state(self.base, &self.keys[e]),
            // SAFETY: the source's transaction finished before this one started
            // (see the module docs).
            src => unsafe { (*self.values[src as usize].0.get()).clone() },
        }
    }

    fn pop_ready(&self) -> Option<u32> {
        if self.ready_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        let i = q.pop();
        self.ready_len.store(q.len(), Ordering::Release);
        i
    }

    fn push_ready(&self, i: u32) {
        let mut q = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        q.push(i);
        self.ready_len.store(q.len(), Ordering::Release);
    }

    /// Takes the scan token of the next transactions in order; returns the first
    /// whose sources are all done.
    fn scan(&self) -> Option<u32> {
        loop {
            let i = self.scan.fetch_add(1, Ordering::Relaxed);
            if i >= self.txs.len() {
                return None;
            }
            if self.pending[i].fetch_sub(1, Ordering::AcqRel) == 1 {
                return Some(i as u32);
            }
        }
    }
}

/// A transaction's view: its declared entries' values before it.
struct View<'a, 'b, V: Vm> {
    batch: &'a Batch<'b, V>,
    /// The transaction's entries.
    from: usize,
    to: usize,
}

impl<V: Vm> ReadView<V> for View<'_, '_, V> {
    #[inline]
    fn read(&mut self, key: &V::Key) -> Result<Option<V::Value>, ReadError> {
        match self.batch.keys[self.from..self.to]
            .iter()
            .position(|k| k == key)
        {
            Some(j) => Ok(self.batch.before(self.from + j)),
            None => {
                self.batch.undeclared.store(true, Ordering::Relaxed);
                Err(ReadError::Undeclared)
            }
        }
    }

    /// Entries hold no deferred credits (`Vm::settle`): like an undeclared read,
    /// the batch runs sequentially instead.
    fn read_credited(&mut self, _key: &V::Key) -> Result<Option<V::Value>, ReadError> {
        self.batch.undeclared.store(true, Ordering::Relaxed);
        Err(ReadError::Credited)
    }
}

impl AccessListExecutor {
    /// A native ledger access-list executor with its own `threads` worker
    /// threads, under the default cost limits.
    pub fn new(threads: usize) -> Result<AccessListExecutor, Error> {
        AccessListExecutor::for_vm(LedgerVm::default(), threads)
    }

    /// The same, with cost limits other than the defaults.
    pub fn with_limits(mut self, limits: ExecutionLimits) -> AccessListExecutor {
        self.vm.limits = limits;
        self.sequential = SequentialExecutor::for_vm(self.vm);
        self
    }
}

impl<V: Vm> AccessListExecutor<V> {
    /// An access-list executor of `vm` with its own `threads` worker threads.
    pub fn for_vm(vm: V, threads: usize) -> Result<AccessListExecutor<V>, Error> {
        Ok(AccessListExecutor::with_threads(
            vm,
            Arc::new(WorkerThreads::new(threads)?),
        ))
    }

    /// An access-list executor of `vm` running on existing worker threads.
    pub fn with_threads(vm: V, threads: Arc<WorkerThreads>) -> AccessListExecutor<V> {
        AccessListExecutor {
            sequential: SequentialExecutor::for_vm(vm.clone()),
            vm,
            threads,
            last_writer: (0..SHARDS).map(|_| FxHashMap::default()).collect(),
            ran_sequentially: false,
            keys: Vec::new(),
            writable: Vec::new(),
            sources: Vec::new(),
            offsets: Vec::new(),
            declared: Vec::new(),
            pred_offsets: Vec::new(),
            preds: Vec::new(),
            succ_offsets: Vec::new(),
            succs: Vec::new(),
            fill: Vec::new(),
            pending: Vec::new(),
            values: Vec::new(),
            receipts: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    /// Builds the dependency DAG of `txs` from their declared sets; `false` if
    /// a transaction declares nothing (or the entries overflow `u32`).
    fn plan(&mut self, txs: &[V::Tx]) -> bool {
        use std::collections::hash_map::Entry;
        let n = txs.len();
        for map in &mut self.last_writer {
            map.clear();
        }
        self.keys.clear();
        self.writable.clear();
        self.sources.clear();
        self.offsets.clear();
        self.offsets.push(0);
        self.preds.clear();
        self.pred_offsets.clear();
        self.pred_offsets.push(0);
        while self.pending.len() < n {
            self.pending.push(AtomicU32::new(0));
        }
        for (i, tx) in txs.iter().enumerate() {
            let i = i as u32;
            self.declared.clear();
            if !V::declare(tx, &mut self.declared) {
                return false;
            }
            let first_pred = self.preds.len();
            for &(key, access) in &self.declared {
                let e = self.keys.len() as u32;
                if e == NONE {
                    return false;
                }
                let write = access == Access::Write;
                let map = &mut self.last_writer[shard_of(V::key_hash(&key))];
                let source = match map.entry(key) {
                    Entry::Occupied(mut slot) => {
                        let s = *slot.get();
                        if write {
                            slot.insert((i, e));
                        }
                        Some(s)
                    }
                    Entry::Vacant(slot) => {
                        if write {
                            slot.insert((i, e));
                        }
                        None
                    }
                };
                self.keys.push(key);
                self.writable.push(write);
                match source {
                    Some((owner, entry)) => {
                        self.sources.push(entry);
                        if !self.preds[first_pred..].contains(&owner) {
                            self.preds.push(owner);
                        }
                    }
                    None => self.sources.push(NONE),
                }
            }
            self.offsets.push(self.keys.len() as u32);
            let deps = (self.preds.len() - first_pred) as u32;
            self.pending[i as usize].store(deps + 1, Ordering::Relaxed);
            self.pred_offsets.push(self.preds.len() as u32);
        }
        // Successor lists (CSR), each in ascending order.
        self.succ_offsets.clear();
        self.succ_offsets.resize(n + 1, 0);
        for &p in &self.preds {
            self.succ_offsets[p as usize + 1] += 1;
        }
        for i in 0..n {
            self.succ_offsets[i + 1] += self.succ_offsets[i];
        }
        self.succs.clear();
        self.succs.resize(self.preds.len(), 0);
        self.fill.clear();
        self.fill.extend_from_slice(&self.succ_offsets[..n]);
        for i in 0..n {
            let (a, b) = (
                self.pred_offsets[i] as usize,
                self.pred_offsets[i + 1] as usize,
            );
            for &p in &self.preds[a..b] {
                let at = &mut self.fill[p as usize];
                self.succs[*at as usize] = i as u32;
                *at += 1;
            }
        }
        true
    }

    /// Forgets the plan, so that `commit` writes nothing.
    fn forget_plan(&mut self) {
        for map in &mut self.last_writer {
            map.clear();
        }
    }

    /// Runs `txs` given their admission verdicts and appends their receipts. The
    /// results stay in the output entries until the batch is finished with
    /// `commit` (in parallel, per state shard) — except when the declarations
    /// cannot be used: then the batch runs sequentially straight into `state`
    /// (see the module docs) and `commit` only finishes it.
    pub(crate) fn run(
        &mut self,
        state: &mut V::State,
        txs: &[V::Tx],
        verdicts: &[Option<V::Verdict>],
        receipts: &mut Vec<V::Receipt>,
        stats: &mut BatchStats,
    ) {
        let n = txs.len();
        stats.transactions += n as u64;
        stats.executions += n as u64;
        self.ran_sequentially = false;
        if n >= NONE as usize {
            self.forget_plan();
            receipts.extend(std::iter::repeat_n(self.vm.internal_error(), n));
            return;
        }
        if !self.plan(txs) {
            self.fall_back(state, txs, verdicts, receipts, stats);
            return;
        }
        if n == 0 {
            return;
        }
        stats.dependency_edges += self.preds.len() as u64;
        let entries = self.keys.len();
        while self.values.len() < entries {
            self.values.push(Cell::new(None));
        }
        while self.receipts.len() < n {
            self.receipts.push(Cell::new(None));
        }
        let batch = Batch {
            vm: &self.vm,
            txs,
            verdicts,
            base: state,
            keys: &self.keys,
            writable: &self.writable,
            sources: &self.sources,
            offsets: &self.offsets,
            succ_offsets: &self.succ_offsets,
            succs: &self.succs,
            pending: &self.pending[..n],
            values: &self.values[..entries],
            receipts: &self.receipts[..n],
            scan: AtomicUsize::new(0),
            ready: Mutex::new(Vec::with_capacity(64)),
            ready_len: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            undeclared: AtomicBool::new(false),
        };
        self.threads.broadcast(&|_| worker(&batch));
        let undeclared = batch.undeclared.load(Ordering::Relaxed);
        drop(batch);
        if undeclared {
            for cell in &mut self.receipts[..n] {
                *cell.0.get_mut() = None;
            }
            self.fall_back(state, txs, verdicts, receipts, stats);
            return;
        }
        for cell in &mut self.receipts[..n] {
            let receipt = cell.0.get_mut().take();
            receipts.push(receipt.unwrap_or_else(|| self.vm.internal_error()));
        }
    }

    /// Runs the batch sequentially into `state` (the declarations cannot be used).
    fn fall_back(
        &mut self,
        state: &mut V::State,
        txs: &[V::Tx],
        verdicts: &[Option<V::Verdict>],
        receipts: &mut Vec<V::Receipt>,
        stats: &mut BatchStats,
    ) {
        self.forget_plan();
        self.ran_sequentially = true;
        stats.fallbacks += 1;
        self.sequential.run(state, txs, verdicts, receipts);
    }

    /// Writes the last `run`'s results into `state` and finishes the batch there
    /// (every shard committed and its digest folded, in parallel on the worker
    /// threads), then settles the deferred credits of `receipts`, the receipts
    /// that `run` appended (`Vm::settle`; a sequential run settled them already).
    /// After the writes: an entry of a declared write passes its key's value
    /// through, so committing it would undo an earlier settlement.
    pub(crate) fn commit(&self, state: &mut V::State, receipts: &[V::Receipt]) {
        let (last_writer, values) = (&self.last_writer, &self.values);
        V::finish_batch(state, Some(&self.threads), |i, shard| {
            commit_shard::<V>(&last_writer[i], values, shard)
        });
        if !self.ran_sequentially {
            self.vm.settle(state, receipts);
        }
    }
}

/// Writes, for every key of one state shard written in the batch
/// (`last_writer`, that shard's map), the value in its last writer's entry.
fn commit_shard<V: Vm>(
    last_writer: &FxHashMap<V::Key, (u32, u32)>,
    values: &[Cell<Option<V::Value>>],
    out: &mut V::Shard,
) {
    for (key, &(_, e)) in last_writer {
        // SAFETY: called after the broadcast joined: no writer is running.
        let value = unsafe { &*values[e as usize].0.get() };
        if let Some(v) = value {
            V::write_shard(out, *key, v.clone());
        }
    }
}

fn worker<V: Vm>(b: &Batch<'_, V>) {
    let n = b.txs.len();
    let mut writes = WriteSet::default();
    let mut scratch = V::Scratch::default();
    let mut next: Option<u32> = None;
    let mut done_here = 0usize;
    let mut idle = 0u32;
    loop {
        let i = match next.take().or_else(|| b.pop_ready()).or_else(|| b.scan()) {
            Some(i) => i,
            None => {
                if done_here > 0 {
                    b.completed.fetch_add(done_here, Ordering::AcqRel);
                    done_here = 0;
                }
                if b.completed.load(Ordering::Acquire) >= n {
                    break;
                }
                backoff(&mut idle);
                continue;
            }
        };
        idle = 0;
        next = run_one(b, i, &mut writes, &mut scratch);
        done_here += 1;
    }
}

/// Executes transaction `i` (unless the batch is already flagged), publishes its
/// outputs, releases its successors and returns one that became ready (the
/// continuation), if any.
fn run_one<V: Vm>(
    b: &Batch<'_, V>,
    i: u32,
    writes: &mut WriteSet<V::Key, V::Value>,
    scratch: &mut V::Scratch,
) -> Option<u32> {
    let idx = i as usize;
    let (from, to) = (b.offsets[idx] as usize, b.offsets[idx + 1] as usize);
    if !b.undeclared.load(Ordering::Relaxed) {
        let mut view = View { batch: b, from, to };
        let receipt =
            b.vm.execute(
                &b.txs[idx],
                b.verdicts[idx].as_ref(),
                &mut view,
                scratch,
                writes,
            )
            .unwrap_or_else(|_| b.vm.internal_error());
        let mut matched = 0;
        for e in from..to {
            if b.writable[e] {
                let after = match writes.get(&b.keys[e]) {
                    Some(v) => {
                        matched += 1;
                        Some(v.clone())
                    }
                    None => b.before(e),
                };
                // SAFETY: this thread is the only writer of transaction `i`'s
                // entries, and no reader has started: every reader is a successor
                // still waiting on `pending`.
                unsafe {
                    *b.values[e].0.get() = after;
                }
            }
        }
        if matched != writes.len() {
            // A write of a key not declared writable.
            b.undeclared.store(true, Ordering::Relaxed);
        }
        // SAFETY: as above, for the receipt.
        unsafe {
            *b.receipts[idx].0.get() = Some(receipt);
        }
    }
    let (from, to) = (
        b.succ_offsets[idx] as usize,
        b.succ_offsets[idx + 1] as usize,
    );
    let mut continuation = None;
    for &s in &b.succs[from..to] {
        if b.pending[s as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
            if continuation.is_none() {
                continuation = Some(s);
            } else {
                b.push_ready(s);
            }
        }
    }
    continuation
}

impl<V: Vm> Executor<V> for AccessListExecutor<V> {
    fn name(&self) -> &str {
        "access-list"
    }

    /// Settles the state on this executor's threads.
    fn digest(&mut self, state: &mut V::State) -> [u8; 32] {
        V::digest(state, Some(&self.threads))
    }

    fn execute(&mut self, state: &mut V::State, txs: &[V::Tx]) -> BatchOutcome<V::Receipt> {
        let mut verdicts = std::mem::take(&mut self.verdicts);
        let admission = self
            .vm
            .admit(state, txs, Some(&self.threads), &mut verdicts);
        let mut receipts = Vec::with_capacity(txs.len());
        let mut stats = BatchStats {
            signatures_verified: admission.signatures_verified,
            gas: admission.gas,
            ..BatchStats::default()
        };
        self.run(state, txs, &verdicts, &mut receipts, &mut stats);
        self.verdicts = verdicts;
        self.commit(state, &receipts);
        BatchOutcome { receipts, stats }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Key, Shard, State, Value};
    use crate::tx::{AbortReason, Op, Receipt, Transaction};
    use crate::vm::{Admission, Blocked};

    /// The ledger, except that a transfer to an account above 100 does not declare
    /// the receiver's balance: a wrong declaration.
    #[derive(Clone, Copy, Debug, Default)]
    struct Forgetful(LedgerVm);

    struct AsLedger<'a, R>(&'a mut R);

    impl<R: ReadView<Forgetful>> ReadView<LedgerVm> for AsLedger<'_, R> {
        fn read(&mut self, key: &Key) -> Result<Option<Value>, ReadError> {
            self.0.read(key)
        }
    }

    impl Vm for Forgetful {
        type Key = Key;
        type Value = Value;
        type Tx = Transaction;
        type Receipt = Receipt;
        type Verdict = AbortReason;
        type State = State;
        type Shard = Shard;
        type Scratch = ();
        fn key_hash(key: &Key) -> u64 {
            LedgerVm::key_hash(key)
        }
        fn read_state(state: &State, key: &Key) -> Option<Value> {
            LedgerVm::read_state(state, key)
        }
        fn write_state(state: &mut State, key: Key, value: Value) {
            LedgerVm::write_state(state, key, value)
        }
        fn write_shard(shard: &mut Shard, key: Key, value: Value) {
            LedgerVm::write_shard(shard, key, value)
        }
        fn finish_batch(
            state: &mut State,
            threads: Option<&WorkerThreads>,
            commit: impl Fn(usize, &mut Shard) + Sync,
        ) {
            LedgerVm::finish_batch(state, threads, commit)
        }
        fn digest(state: &mut State, threads: Option<&WorkerThreads>) -> [u8; 32] {
            LedgerVm::digest(state, threads)
        }
        fn admit(
            &self,
            state: &State,
            txs: &[Transaction],
            threads: Option<&WorkerThreads>,
            verdicts: &mut Vec<Option<AbortReason>>,
        ) -> Admission {
            self.0.admit(state, txs, threads, verdicts)
        }
        fn execute<R: ReadView<Self>>(
            &self,
            tx: &Transaction,
            verdict: Option<&AbortReason>,
            view: &mut R,
            scratch: &mut (),
            writes: &mut WriteSet<Key, Value>,
        ) -> Result<Receipt, Blocked> {
            self.0
                .execute(tx, verdict, &mut AsLedger(view), scratch, writes)
        }
        fn declare(tx: &Transaction, out: &mut Vec<(Key, Access)>) -> bool {
            LedgerVm::declare(tx, out);
            if let Op::Transfer { to, token, .. } = tx.op
                && to > 100
            {
                out.retain(|(k, _)| *k != Key::Balance(to, token));
            }
            true
        }
        fn internal_error(&self) -> Receipt {
            self.0.internal_error()
        }
        fn calibration(&self) -> Option<(State, Vec<Transaction>)> {
            None
        }
    }

    fn transfers(to_base: u64) -> (State, Vec<Transaction>) {
        let state = State::from_entries((1..=50).map(|a| (Key::Balance(a, 0), Value::Amount(100))))
            .unwrap();
        let txs = (1..=50u64)
            .map(|a| {
                let op = Op::Transfer {
                    to: to_base + a % 7,
                    token: 0,
                    amount: 1 + u128::from(a % 3),
                };
                Transaction::new(a, 1, op)
            })
            .collect();
        (state, txs)
    }

    /// A wrong declaration (an undeclared read, then the undeclared write) makes
    /// the batch run sequentially: the same receipts and state as the sequential
    /// executor, and the fallback counted; right declarations run the schedule.
    #[test]
    fn an_access_outside_the_declared_set_falls_back_to_sequential() {
        for (to_base, fallbacks) in [(1, 0), (200, 1)] {
            let (genesis, txs) = transfers(to_base);
            let mut expected_state = genesis.clone();
            let expected = SequentialExecutor::new().execute(&mut expected_state, &txs);
            for threads in [1, 2] {
                let mut exec = AccessListExecutor::for_vm(Forgetful::default(), threads).unwrap();
                for _ in 0..2 {
                    let mut state = genesis.clone();
                    let out = exec.execute(&mut state, &txs);
                    assert_eq!(out.receipts, expected.receipts);
                    assert_eq!(out.stats.fallbacks, fallbacks, "to {to_base}");
                    assert_eq!(state, expected_state);
                    assert_eq!(exec.digest(&mut state), expected_state.digest());
                }
            }
        }
    }
}
