//! The access-list executor (Solana Sealevel style): schedules a batch from the
//! read/write sets transactions declare, running non-conflicting transactions in
//! parallel and conflicting ones in batch order.
//!
//! Planning (one pass in order, on the calling thread): for each declared key, the
//! transaction depends on the key's last declared writer before it (its
//! *source*), and becomes the key's last writer if it declares a write. The
//! edges form a DAG in batch order.
//!
//! Execution: every transaction writes into its own output slot, never into shared
//! state, so only read-after-write edges are needed (write-after-read and
//! write-after-write are harmless: each read goes to the slot of its source, whose
//! value no later writer can overwrite). A transaction's slot holds, for every key
//! it declares writable, the value after it: what it wrote, or what it read when
//! it did not write it (aborts pass values through). At the end the state takes,
//! for every key, the value in its last writer's slot (in parallel, per state
//! shard: the last-writer maps are kept per shard).
//!
//! Scheduling: `pending[i]` = number of sources + 1; the extra 1 is a token taken by
//! an in-order scan, so a transaction runs either when the scan reaches it with its
//! sources done, or when its last source finishes (that thread continues with it:
//! chains of conflicting transactions stay on one core, warm in cache). Other newly
//! ready transactions go to a shared queue.
//!
//! Safety of the output slots: slot `i` is written only by the thread running
//! transaction `i`, once, before it decrements its successors' counters (release);
//! it is read only by successors, which start after observing their counter reach
//! zero (acquire, through the release sequence of all decrements), and by the
//! caller after the broadcast has joined.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustc_hash::FxHashMap;

use crate::apply::{ReadError, StateView, WriteSet, apply};
use crate::cost::ExecutionLimits;
use crate::error::Error;
use crate::executor::{BatchOutcome, BatchStats, Executor};
use crate::pool::{WorkerPool, backoff};
use crate::signature;
use crate::state::{Key, SHARDS, Shard, State, Value, key_hash, shard_of};
use crate::tx::{AbortReason, AccessSet, MAX_ACCESS, Receipt, Transaction};

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Plan {
    access: AccessSet,
    /// For each declared key, the transaction whose slot holds its value before
    /// this one (`NONE`: the pre-batch state).
    sources: [u32; MAX_ACCESS],
}

#[derive(Clone, Copy, Debug)]
struct Output {
    receipt: Receipt,
    /// Value after this transaction of each declared writable key (by position).
    values: [Option<Value>; MAX_ACCESS],
}

const EMPTY_OUTPUT: Output = Output {
    receipt: Receipt::Ok,
    values: [None; MAX_ACCESS],
};

struct Slot(UnsafeCell<Output>);

// SAFETY: see the module docs: each slot has one writer, which finishes before
// any reader starts (happens-before through `pending`'s release sequence).
unsafe impl Sync for Slot {}

/// Declared-set scheduling over a reusable pool of threads.
pub struct AccessListExecutor {
    pool: Arc<WorkerPool>,
    limits: ExecutionLimits,
    /// Per state shard: the last declared writer of each key.
    last_writer: Vec<FxHashMap<Key, u32>>,
    plans: Vec<Plan>,
    pred_offsets: Vec<u32>,
    preds: Vec<u32>,
    succ_offsets: Vec<u32>,
    succs: Vec<u32>,
    fill: Vec<u32>,
    pending: Vec<AtomicU32>,
    slots: Vec<Slot>,
    prechecks: Vec<Option<AbortReason>>,
}

impl std::fmt::Debug for AccessListExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessListExecutor")
            .field("threads", &self.pool.threads())
            .finish()
    }
}

struct Batch<'a> {
    txs: &'a [Transaction],
    prechecks: &'a [Option<AbortReason>],
    base: &'a State,
    plans: &'a [Plan],
    succ_offsets: &'a [u32],
    succs: &'a [u32],
    pending: &'a [AtomicU32],
    slots: &'a [Slot],
    scan: AtomicUsize,
    ready: Mutex<Vec<u32>>,
    ready_len: AtomicUsize,
    completed: AtomicUsize,
}

impl Batch<'_> {
    fn output(&self, i: u32) -> &Output {
        // SAFETY: only called for a source of the running transaction (finished
        // before it started) — see the module docs.
        unsafe { &*self.slots[i as usize].0.get() }
    }

    /// The value of the `j`-th declared key of `plan` before its transaction.
    fn before(&self, plan: &Plan, j: usize) -> Option<Value> {
        let key = &plan.access.keys()[j];
        match plan.sources[j] {
            NONE => self.base.get(key),
            src => {
                let sp = &self.plans[src as usize];
                sp.access
                    .position(key)
                    .and_then(|k| self.output(src).values[k])
            }
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

struct View<'a, 'b> {
    batch: &'a Batch<'b>,
    plan: &'a Plan,
}

impl StateView for View<'_, '_> {
    fn read(&mut self, key: &Key) -> Result<Option<Value>, ReadError> {
        let j = self
            .plan
            .access
            .position(key)
            .ok_or(ReadError::Undeclared)?;
        Ok(self.batch.before(self.plan, j))
    }
}

impl AccessListExecutor {
    /// An access-list executor with its own pool of `threads` threads.
    pub fn new(threads: usize) -> Result<AccessListExecutor, Error> {
        Ok(AccessListExecutor::with_pool(Arc::new(WorkerPool::new(
            threads,
        )?)))
    }

    /// The same, with cost limits other than the defaults.
    pub fn with_limits(mut self, limits: ExecutionLimits) -> AccessListExecutor {
        self.limits = limits;
        self
    }

    /// An access-list executor running on an existing pool.
    pub fn with_pool(pool: Arc<WorkerPool>) -> AccessListExecutor {
        AccessListExecutor {
            pool,
            limits: ExecutionLimits::default(),
            last_writer: (0..SHARDS).map(|_| FxHashMap::default()).collect(),
            plans: Vec::new(),
            pred_offsets: Vec::new(),
            preds: Vec::new(),
            succ_offsets: Vec::new(),
            succs: Vec::new(),
            fill: Vec::new(),
            pending: Vec::new(),
            slots: Vec::new(),
            prechecks: Vec::new(),
        }
    }

    /// Builds the dependency DAG of `txs` from their declared sets.
    fn plan(&mut self, txs: &[Transaction]) {
        use std::collections::hash_map::Entry;
        let n = txs.len();
        for map in &mut self.last_writer {
            map.clear();
        }
        self.plans.clear();
        self.preds.clear();
        self.pred_offsets.clear();
        self.pred_offsets.push(0);
        while self.pending.len() < n {
            self.pending.push(AtomicU32::new(0));
        }
        for (i, tx) in txs.iter().enumerate() {
            let i = i as u32;
            let access = tx.access_set();
            let mut sources = [NONE; MAX_ACCESS];
            let first_pred = self.preds.len();
            for (j, key) in access.keys().iter().enumerate() {
                let map = &mut self.last_writer[shard_of(key_hash(key))];
                let source = match map.entry(*key) {
                    Entry::Occupied(mut e) => {
                        let s = *e.get();
                        if access.is_write(j) {
                            e.insert(i);
                        }
                        s
                    }
                    Entry::Vacant(e) => {
                        if access.is_write(j) {
                            e.insert(i);
                        }
                        NONE
                    }
                };
                sources[j] = source;
                if source != NONE && !self.preds[first_pred..].contains(&source) {
                    self.preds.push(source);
                }
            }
            let deps = (self.preds.len() - first_pred) as u32;
            self.pending[i as usize].store(deps + 1, Ordering::Relaxed);
            self.pred_offsets.push(self.preds.len() as u32);
            self.plans.push(Plan { access, sources });
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
    }

    /// Runs `txs` given their signature verdicts and appends their receipts. The
    /// results stay in the output slots until the batch is finished with
    /// `commit_shard` (in parallel, per state shard).
    pub(crate) fn run(
        &mut self,
        state: &State,
        txs: &[Transaction],
        prechecks: &[Option<AbortReason>],
        receipts: &mut Vec<Receipt>,
        stats: &mut BatchStats,
    ) {
        let n = txs.len();
        stats.transactions += n as u64;
        stats.executions += n as u64;
        if n >= NONE as usize {
            self.plan(&[]);
            receipts.extend(std::iter::repeat_n(
                Receipt::Aborted(AbortReason::Internal),
                n,
            ));
            return;
        }
        self.plan(txs);
        if n == 0 {
            return;
        }
        stats.dependency_edges += self.preds.len() as u64;
        while self.slots.len() < n {
            self.slots.push(Slot(UnsafeCell::new(EMPTY_OUTPUT)));
        }
        let batch = Batch {
            txs,
            prechecks,
            base: state,
            plans: &self.plans,
            succ_offsets: &self.succ_offsets,
            succs: &self.succs,
            pending: &self.pending[..n],
            slots: &self.slots[..n],
            scan: AtomicUsize::new(0),
            ready: Mutex::new(Vec::with_capacity(64)),
            ready_len: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
        };
        self.pool.broadcast(&|_| worker(&batch));
        drop(batch);
        receipts.extend(self.slots[..n].iter_mut().map(|s| s.0.get_mut().receipt));
    }

    /// Writes the last `run`'s results into `state` and finishes the batch there
    /// (every shard committed and its digest folded, in parallel on the pool).
    pub(crate) fn commit(&self, state: &mut State) {
        state.finish_batch_with(Some(&self.pool), |i, shard| self.commit_shard(i, shard));
    }

    /// Writes, for every key of state shard `shard` written in the batch, the
    /// value in its last writer's slot.
    fn commit_shard(&self, shard: usize, out: &mut Shard) {
        for (key, &w) in &self.last_writer[shard] {
            let plan = &self.plans[w as usize];
            // SAFETY: called after the broadcast joined: no writer is running.
            let slot = unsafe { &*self.slots[w as usize].0.get() };
            if let Some(v) = plan.access.position(key).and_then(|j| slot.values[j]) {
                out.write(*key, v);
            }
        }
    }
}

fn worker(b: &Batch<'_>) {
    let n = b.txs.len();
    let mut writes = WriteSet::default();
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
        next = run_one(b, i, &mut writes);
        done_here += 1;
    }
}

/// Executes transaction `i`, publishes its slot, releases its successors and
/// returns one that became ready (the continuation), if any.
fn run_one(b: &Batch<'_>, i: u32, writes: &mut WriteSet) -> Option<u32> {
    let idx = i as usize;
    let plan = &b.plans[idx];
    let mut view = View { batch: b, plan };
    let receipt = apply(&b.txs[idx], b.prechecks[idx], &mut view, writes)
        .unwrap_or(Receipt::Aborted(AbortReason::Internal));
    let mut out = Output {
        receipt,
        values: [None; MAX_ACCESS],
    };
    for (j, key) in plan.access.keys().iter().enumerate() {
        if plan.access.is_write(j) {
            out.values[j] = match writes.get(key) {
                Some(v) => Some(v),
                None => b.before(plan, j),
            };
        }
    }
    // SAFETY: this thread is the only writer of slot `i`, and no reader has
    // started: every reader is a successor still waiting on `pending`.
    unsafe {
        *b.slots[idx].0.get() = out;
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

impl Executor for AccessListExecutor {
    fn name(&self) -> &str {
        "access-list"
    }

    /// Settles the state on this executor's pool.
    fn digest(&mut self, state: &mut State) -> [u8; 32] {
        state.settle(Some(&self.pool));
        state.digest()
    }

    fn execute(&mut self, state: &mut State, txs: &[Transaction]) -> BatchOutcome {
        let mut prechecks = std::mem::take(&mut self.prechecks);
        let verified = signature::precheck(state, txs, Some(&self.pool), &mut prechecks);
        let gas = self.limits.charge(txs, &mut prechecks);
        let mut receipts = Vec::with_capacity(txs.len());
        let mut stats = BatchStats {
            signatures_verified: verified,
            gas,
            ..BatchStats::default()
        };
        self.run(state, txs, &prechecks, &mut receipts, &mut stats);
        self.prechecks = prechecks;
        self.commit(state);
        BatchOutcome { receipts, stats }
    }
}
