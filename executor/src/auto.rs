//! The `auto` executor: picks sequential, Block-STM or access-list execution per
//! batch from what it measures, and says what it picked and why.
//!
//! Per batch:
//! 1. Signatures are checked on the pool (all choices need it).
//! 2. Small batches (below `auto_min_batch`) or a one-thread pool: sequential.
//! 3. A short prefix of the batch (1/64 of it, 32..=256 transactions) runs
//!    sequentially and is timed: that is this batch's cost per transaction `t`
//!    (operation mix, `work`, signatures' absence, cache state included), measured
//!    on real work that had to be done anyway.
//! 4. The declared sets of the next 512 transactions give the critical path of
//!    their dependency DAG, hence the available parallelism `P` (sample size over
//!    path length; 1 when every transaction conflicts with the previous one).
//! 5. Each parallel executor `X` has an overhead `o_X` (extra thread-time per
//!    transaction), first measured when `auto` is built (1024 independent
//!    transfers through each executor, a few milliseconds) and then learned from
//!    every batch it runs, separately for contended (`P < 2 × threads`) and
//!    independent batches; every batch run sequentially moves the learned value
//!    5% back towards the calibrated one, so one bad batch does not rule an
//!    executor out forever. Predicted speedup: `min(threads, P) × t / (t + o_X)`.
//! 6. The rest of the batch runs on the best `X` if its prediction beats
//!    sequential by the margin (`1 / auto_margin`), else sequentially.
//!
//! With cheap transactions (`work = 0`, about a microsecond each) the overheads
//! dominate and `auto` stays sequential; with contract-sized work it goes parallel.
//! Every choice gives the sequential result, so only speed depends on it.

use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::access_list::AccessListExecutor;
use crate::block_stm::BlockStmExecutor;
use crate::error::Error;
use crate::executor::{BatchOutcome, BatchStats, Executor, ExecutorOptions};
use crate::pool::WorkerPool;
use crate::sequential::SequentialExecutor;
use crate::signature;
use crate::state::{Key, State, Value};
use crate::tx::{AbortReason, Op, Receipt, Transaction};

const SAMPLE: usize = 512;
const BLOCK_STM: usize = 0;
const ACCESS_LIST: usize = 1;
const NAMES: [&str; 2] = ["block-stm", "access-list"];

/// Chooses an executor per batch (see the module docs).
pub struct AutoExecutor {
    pool: Arc<WorkerPool>,
    sequential: SequentialExecutor,
    block_stm: BlockStmExecutor,
    access_list: AccessListExecutor,
    options: ExecutorOptions,
    prechecks: Vec<Option<AbortReason>>,
    /// Learned overhead in ns per transaction: `[contended?][executor]`.
    overhead_ns: [[f64; 2]; 2],
    /// What calibration measured; learned values drift back towards it.
    calibrated_ns: [[f64; 2]; 2],
    levels: FxHashMap<Key, u32>,
}

impl std::fmt::Debug for AutoExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoExecutor")
            .field("threads", &self.pool.threads())
            .field("overhead_ns", &self.overhead_ns)
            .finish()
    }
}

impl AutoExecutor {
    /// Builds the executor and, with more than one thread, measures the parallel
    /// executors' overheads on this machine (a few milliseconds, once).
    pub fn new(threads: usize, options: ExecutorOptions) -> Result<AutoExecutor, Error> {
        let pool = Arc::new(WorkerPool::new(threads)?);
        let mut auto = AutoExecutor {
            sequential: SequentialExecutor::new(),
            block_stm: BlockStmExecutor::with_pool(Arc::clone(&pool)),
            access_list: AccessListExecutor::with_pool(Arc::clone(&pool)),
            pool,
            options,
            prechecks: Vec::new(),
            overhead_ns: [[f64::INFINITY; 2]; 2],
            calibrated_ns: [[f64::INFINITY; 2]; 2],
            levels: FxHashMap::default(),
        };
        if threads > 1 {
            auto.calibrated_ns = auto.calibrate();
            auto.overhead_ns = auto.calibrated_ns;
        }
        Ok(auto)
    }

    /// Parallelism of `txs` from their declared sets: length over critical path.
    fn parallelism(&mut self, txs: &[Transaction]) -> f64 {
        self.levels.clear();
        let mut depth = 1u32;
        for tx in txs {
            let access = tx.access_set();
            let level = 1 + access
                .keys()
                .iter()
                .filter_map(|k| self.levels.get(k))
                .max()
                .copied()
                .unwrap_or(0);
            for key in access.writes() {
                self.levels.insert(key, level);
            }
            depth = depth.max(level);
        }
        txs.len().max(1) as f64 / f64::from(depth)
    }

    /// Runs `txs` on parallel executor `which` and finishes the batch: committing
    /// folds every dirty shard, so the sequential prefix's writes are folded with
    /// the parallel results, exactly as a sequential finish would.
    fn run_parallel(
        &mut self,
        which: usize,
        state: &mut State,
        txs: &[Transaction],
        prechecks: &[Option<AbortReason>],
        receipts: &mut Vec<Receipt>,
        stats: &mut BatchStats,
    ) {
        if which == BLOCK_STM {
            self.block_stm.run(state, txs, prechecks, receipts, stats);
            self.block_stm.commit(state);
        } else {
            self.access_list.run(state, txs, prechecks, receipts, stats);
            self.access_list.commit(state);
        }
    }

    /// Measures each parallel executor's overhead once, on independent transfers.
    fn calibrate(&mut self) -> [[f64; 2]; 2] {
        const N: u64 = 1024;
        let mut state = State::new();
        let funded = (1..=N).map(|a| (Key::Balance(a, 0), Value::Amount(1_000_000)));
        if state.set_many(funded).is_err() {
            return [[f64::INFINITY; 2]; 2];
        }
        let txs: Vec<Transaction> = (1..=N)
            .map(|a| {
                Transaction::new(
                    a,
                    1,
                    Op::Transfer {
                        to: N + a,
                        token: 0,
                        amount: 1,
                    },
                )
            })
            .collect();
        let prechecks = vec![None; txs.len()];
        let mut best = [f64::INFINITY; 3];
        for _ in 0..2 {
            for (slot, which) in best.iter_mut().zip(0..3) {
                let mut s = state.clone();
                let mut receipts = Vec::with_capacity(txs.len());
                let mut stats = BatchStats::default();
                let start = Instant::now();
                match which {
                    0 => self.sequential.run(&mut s, &txs, &prechecks, &mut receipts),
                    _ => self.run_parallel(
                        which - 1,
                        &mut s,
                        &txs,
                        &prechecks,
                        &mut receipts,
                        &mut stats,
                    ),
                }
                *slot = slot.min(start.elapsed().as_nanos() as f64);
            }
        }
        let t = best[0] / N as f64;
        let threads = self.pool.threads() as f64;
        let overhead = |elapsed: f64| {
            let per_tx = elapsed / N as f64;
            (threads * per_tx - t).clamp(0.0, 1e6)
        };
        let o = [overhead(best[1]), overhead(best[2])];
        // Contended batches start from twice the independent overhead (aborts,
        // waiting); learning corrects both.
        [o, [2.0 * o[0], 2.0 * o[1]]]
    }
}

impl Executor for AutoExecutor {
    fn name(&self) -> &str {
        "auto"
    }

    /// Settles the state on this executor's pool.
    fn digest(&mut self, state: &mut State) -> [u8; 32] {
        state.settle(Some(&self.pool));
        state.digest()
    }

    fn execute(&mut self, state: &mut State, txs: &[Transaction]) -> BatchOutcome {
        let n = txs.len();
        let mut prechecks = std::mem::take(&mut self.prechecks);
        let verified = signature::precheck(state, txs, Some(&self.pool), &mut prechecks);
        let gas = self.options.limits.charge(txs, &mut prechecks);
        let mut receipts: Vec<Receipt> = Vec::with_capacity(n);
        let mut stats = BatchStats {
            signatures_verified: verified,
            gas,
            ..BatchStats::default()
        };
        let threads = self.pool.threads();
        let (picked, reason) = if threads == 1 || n < self.options.auto_min_batch.max(2) {
            self.sequential.run(state, txs, &prechecks, &mut receipts);
            state.finish_batch(Some(&self.pool));
            stats.transactions = n as u64;
            stats.executions = n as u64;
            let why = if threads == 1 {
                "one thread".to_string()
            } else {
                format!("batch of {n} below {}", self.options.auto_min_batch)
            };
            ("sequential", why)
        } else {
            let overhead = self.overhead_ns;
            // 1. Measure: a sequential prefix.
            let k = (n / 64).clamp(32, 256).min(n);
            let start = Instant::now();
            self.sequential
                .run(state, &txs[..k], &prechecks[..k], &mut receipts);
            let t = (start.elapsed().as_nanos() as f64 / k as f64).max(1.0);
            stats.transactions += k as u64;
            stats.executions += k as u64;
            let rest = &txs[k..];
            let rest_pre = &prechecks[k..];
            // 2. Estimate parallelism from declared sets.
            let p = self.parallelism(&rest[..rest.len().min(SAMPLE)]);
            let contended = usize::from(p < 2.0 * threads as f64);
            let width = p.min(threads as f64);
            let predicted = [0, 1].map(|x| width * t / (t + overhead[contended][x]));
            let best = if predicted[ACCESS_LIST] >= predicted[BLOCK_STM] {
                ACCESS_LIST
            } else {
                BLOCK_STM
            };
            let summary = format!(
                "{:.2} µs/tx, parallelism {:.1}, predicted speedup block-stm {:.2}, access-list {:.2}",
                t / 1000.0,
                p,
                predicted[BLOCK_STM],
                predicted[ACCESS_LIST]
            );
            if rest.is_empty() || predicted[best] * self.options.auto_margin < 1.0 {
                self.sequential.run(state, rest, rest_pre, &mut receipts);
                state.finish_batch(Some(&self.pool));
                stats.transactions += rest.len() as u64;
                stats.executions += rest.len() as u64;
                // Forget slowly: a bad batch (say, a busy machine) must not rule
                // a parallel executor out forever.
                for x in [BLOCK_STM, ACCESS_LIST] {
                    let (o, c) = (
                        self.overhead_ns[contended][x],
                        self.calibrated_ns[contended][x],
                    );
                    if o.is_finite() && c.is_finite() {
                        self.overhead_ns[contended][x] = o + 0.05 * (c - o);
                    }
                }
                ("sequential", summary)
            } else {
                let start = Instant::now();
                self.run_parallel(best, state, rest, rest_pre, &mut receipts, &mut stats);
                // 3. Learn: the overhead this batch implies.
                let elapsed = start.elapsed().as_nanos() as f64 / rest.len() as f64;
                let observed = (width * elapsed - t).clamp(0.0, 1e6);
                let o = &mut self.overhead_ns[contended][best];
                *o = 0.5 * *o + 0.5 * observed;
                (NAMES[best], summary)
            }
        };
        self.prechecks = prechecks;
        stats.picked = Some(picked.to_string());
        stats.pick_reason = Some(reason);
        BatchOutcome { receipts, stats }
    }
}
