//! The `auto` executor: picks sequential, Block-STM or access-list execution per
//! batch from what it measures, and says what it picked and why.
//!
//! Per batch:
//! 1. Admission runs on the worker threads (all choices need it).
//! 2. Small batches (below `auto_min_batch`) or one thread: sequential.
//! 3. A short prefix of the batch (1/64 of it, 32..=256 transactions) runs
//!    sequentially and is timed: that is this batch's cost per transaction `t`
//!    (operation mix, `work`, signatures' absence, cache state included), measured
//!    on real work that had to be done anyway.
//! 4. The declared sets of the next 512 transactions give the critical path of
//!    their dependency DAG, hence the available parallelism `P` (sample size over
//!    path length; 1 when every transaction conflicts with the previous one). If
//!    a sampled transaction declares nothing (an EVM transaction without an access
//!    list), `P` is unknown: it is taken as the thread count, and the access-list
//!    executor (which would run such a batch sequentially) is not considered.
//! 5. Each parallel executor `X` has an overhead `o_X` (extra thread-time per
//!    transaction), first measured when `auto` is built (on the VM's calibration
//!    batch, `Vm::calibration`: for the ledger 1024 independent transfers through
//!    each executor, a few milliseconds) and then learned from
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
use crate::ledger_vm::LedgerVm;
use crate::sequential::SequentialExecutor;
use crate::threads::WorkerThreads;
use crate::tx::Access;
use crate::vm::Vm;

const SAMPLE: usize = 512;
const BLOCK_STM: usize = 0;
const ACCESS_LIST: usize = 1;
const NAMES: [&str; 2] = ["block-stm", "access-list"];

/// Chooses an executor per batch (see the module docs).
pub struct AutoExecutor<V: Vm = LedgerVm> {
    vm: V,
    threads: Arc<WorkerThreads>,
    sequential: SequentialExecutor<V>,
    block_stm: BlockStmExecutor<V>,
    access_list: AccessListExecutor<V>,
    options: ExecutorOptions,
    verdicts: Vec<Option<V::Verdict>>,
    /// Learned overhead in ns per transaction: `[contended?][executor]`.
    overhead_ns: [[f64; 2]; 2],
    /// What calibration measured; learned values drift back towards it.
    calibrated_ns: [[f64; 2]; 2],
    levels: FxHashMap<V::Key, u32>,
    declared: Vec<(V::Key, Access)>,
}

impl<V: Vm> std::fmt::Debug for AutoExecutor<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoExecutor")
            .field("threads", &self.threads.count())
            .field("overhead_ns", &self.overhead_ns)
            .finish()
    }
}

impl AutoExecutor {
    /// The native ledger's `auto` executor under `options.limits` (see
    /// [`AutoExecutor::for_vm`]).
    pub fn new(threads: usize, options: ExecutorOptions) -> Result<AutoExecutor, Error> {
        AutoExecutor::for_vm(LedgerVm::new(options.limits), threads, options)
    }
}

impl<V: Vm> AutoExecutor<V> {
    /// Builds the executor for `vm` and, with more than one thread, measures the
    /// parallel executors' overheads on this machine (a few milliseconds, once).
    /// `options.limits` is not used: `vm` carries its limits.
    pub fn for_vm(
        vm: V,
        threads: usize,
        options: ExecutorOptions,
    ) -> Result<AutoExecutor<V>, Error> {
        let threads = Arc::new(WorkerThreads::new(threads)?);
        let mut auto = AutoExecutor {
            sequential: SequentialExecutor::for_vm(vm.clone()),
            block_stm: BlockStmExecutor::with_threads(vm.clone(), Arc::clone(&threads)),
            access_list: AccessListExecutor::with_threads(vm.clone(), Arc::clone(&threads)),
            vm,
            threads,
            options,
            verdicts: Vec::new(),
            overhead_ns: [[f64::INFINITY; 2]; 2],
            calibrated_ns: [[f64::INFINITY; 2]; 2],
            levels: FxHashMap::default(),
            declared: Vec::new(),
        };
        if auto.threads.count() > 1 {
            auto.calibrated_ns = auto.calibrate();
            auto.overhead_ns = auto.calibrated_ns;
        }
        Ok(auto)
    }

    /// Parallelism of `txs` from their declared sets: length over critical path;
    /// `None` if a transaction declares nothing.
    fn parallelism(&mut self, txs: &[V::Tx]) -> Option<f64> {
        self.levels.clear();
        let mut depth = 1u32;
        for tx in txs {
            self.declared.clear();
            if !V::declare(tx, &mut self.declared) {
                return None;
            }
            let level = 1 + self
                .declared
                .iter()
                .filter_map(|(k, _)| self.levels.get(k))
                .max()
                .copied()
                .unwrap_or(0);
            for (key, access) in &self.declared {
                if *access == Access::Write {
                    self.levels.insert(*key, level);
                }
            }
            depth = depth.max(level);
        }
        Some(txs.len().max(1) as f64 / f64::from(depth))
    }

    /// Runs `txs` on parallel executor `which` and finishes the batch: committing
    /// folds every dirty shard, so the sequential prefix's writes are folded with
    /// the parallel results, exactly as a sequential finish would.
    fn run_parallel(
        &mut self,
        which: usize,
        state: &mut V::State,
        txs: &[V::Tx],
        verdicts: &[Option<V::Verdict>],
        receipts: &mut Vec<V::Receipt>,
        stats: &mut BatchStats,
    ) {
        let start = receipts.len();
        if which == BLOCK_STM {
            self.block_stm.run(state, txs, verdicts, receipts, stats);
            self.block_stm.commit(state, &receipts[start..]);
        } else {
            self.access_list.run(state, txs, verdicts, receipts, stats);
            self.access_list.commit(state, &receipts[start..]);
        }
    }

    /// Measures each parallel executor's overhead once, on the VM's calibration
    /// batch of independent transactions.
    fn calibrate(&mut self) -> [[f64; 2]; 2] {
        let Some((state, txs)) = self.vm.calibration() else {
            return [[f64::INFINITY; 2]; 2];
        };
        let n = txs.len().max(1) as f64;
        let verdicts = vec![None; txs.len()];
        let mut best = [f64::INFINITY; 3];
        for _ in 0..2 {
            for (slot, which) in best.iter_mut().zip(0..3) {
                let mut s = state.clone();
                let mut receipts = Vec::with_capacity(txs.len());
                let mut stats = BatchStats::default();
                let start = Instant::now();
                match which {
                    0 => self.sequential.run(&mut s, &txs, &verdicts, &mut receipts),
                    _ => self.run_parallel(
                        which - 1,
                        &mut s,
                        &txs,
                        &verdicts,
                        &mut receipts,
                        &mut stats,
                    ),
                }
                *slot = slot.min(start.elapsed().as_nanos() as f64);
            }
        }
        let t = best[0] / n;
        let threads = self.threads.count() as f64;
        let overhead = |elapsed: f64| {
            let per_tx = elapsed / n;
            (threads * per_tx - t).clamp(0.0, 1e6)
        };
        let o = [overhead(best[1]), overhead(best[2])];
        // Contended batches start from twice the independent overhead (aborts,
        // waiting); learning corrects both.
        [o, [2.0 * o[0], 2.0 * o[1]]]
    }
}

impl<V: Vm> Executor<V> for AutoExecutor<V> {
    fn name(&self) -> &str {
        "auto"
    }

    /// Settles the state on this executor's threads.
    fn digest(&mut self, state: &mut V::State) -> [u8; 32] {
        V::digest(state, Some(&self.threads))
    }

    fn execute(&mut self, state: &mut V::State, txs: &[V::Tx]) -> BatchOutcome<V::Receipt> {
        let n = txs.len();
        let mut verdicts = std::mem::take(&mut self.verdicts);
        let admission = self
            .vm
            .admit(state, txs, Some(&self.threads), &mut verdicts);
        let mut receipts: Vec<V::Receipt> = Vec::with_capacity(n);
        let mut stats = BatchStats {
            signatures_verified: admission.signatures_verified,
            gas: admission.gas,
            ..BatchStats::default()
        };
        let threads = self.threads.count();
        let (picked, reason) = if threads == 1 || n < self.options.auto_min_batch.max(2) {
            self.sequential.run(state, txs, &verdicts, &mut receipts);
            V::finish_batch(state, Some(&self.threads), |_, _| {});
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
                .run(state, &txs[..k], &verdicts[..k], &mut receipts);
            let t = (start.elapsed().as_nanos() as f64 / k as f64).max(1.0);
            stats.transactions += k as u64;
            stats.executions += k as u64;
            let rest = &txs[k..];
            let rest_verdicts = &verdicts[k..];
            // 2. Estimate parallelism from declared sets.
            let declared = self.parallelism(&rest[..rest.len().min(SAMPLE)]);
            let p = declared.unwrap_or(threads as f64);
            let contended = usize::from(p < 2.0 * threads as f64);
            let width = p.min(threads as f64);
            let mut predicted = [0, 1].map(|x| width * t / (t + overhead[contended][x]));
            if declared.is_none() {
                predicted[ACCESS_LIST] = 0.0;
            }
            let best = if predicted[ACCESS_LIST] >= predicted[BLOCK_STM] {
                ACCESS_LIST
            } else {
                BLOCK_STM
            };
            let summary = format!(
                "{:.2} µs/tx, parallelism {}, predicted speedup block-stm {:.2}, access-list {:.2}",
                t / 1000.0,
                declared.map_or("unknown (nothing declared)".to_string(), |p| format!(
                    "{p:.1}"
                )),
                predicted[BLOCK_STM],
                predicted[ACCESS_LIST]
            );
            if rest.is_empty() || predicted[best] * self.options.auto_margin < 1.0 {
                self.sequential
                    .run(state, rest, rest_verdicts, &mut receipts);
                V::finish_batch(state, Some(&self.threads), |_, _| {});
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
                self.run_parallel(best, state, rest, rest_verdicts, &mut receipts, &mut stats);
                // 3. Learn: the overhead this batch implies.
                let elapsed = start.elapsed().as_nanos() as f64 / rest.len() as f64;
                let observed = (width * elapsed - t).clamp(0.0, 1e6);
                let o = &mut self.overhead_ns[contended][best];
                *o = 0.5 * *o + 0.5 * observed;
                (NAMES[best], summary)
            }
        };
        self.verdicts = verdicts;
        stats.picked = Some(picked.to_string());
        stats.pick_reason = Some(reason);
        BatchOutcome { receipts, stats }
    }
}
