//! The Block-STM executor (Gelashvili et al., "Block-STM: Scaling Blockchain
//! Execution by Turning Ordering Curse to a Performance Blessing", PPoPP 2023):
//! optimistic execution of the whole batch on every thread, reads served from a
//! multi-version memory (`mvmemory.rs` over the lock-free key table of `keys.rs`),
//! each incarnation validated by re-reading its read set, aborted incarnations
//! re-executed with their old writes left as ESTIMATE markers so that readers wait
//! instead of reading stale values, all driven by the collaborative scheduler
//! (`scheduler.rs`). No declared read/write sets are used.
//!
//! Generic over the VM (`vm.rs`): the scheduler and the multi-version memory see
//! keys, values and receipts only, and a transaction runs through `Vm::execute`
//! against a view of the multi-version memory over the pre-batch state.
//!
//! Per batch: admission (signature checks in parallel, then gas in batch order),
//! one `broadcast` running the worker loop on every worker thread, then — again on
//! every thread, one state shard at a time — the highest version of every written
//! key is committed to the state and the digest updated. Per-thread scratch (read
//! set, write set, dependents, the VM's own) is reused, so executing a transaction
//! allocates nothing in the steady state beyond what the VM allocates (and a key
//! written by two or more transactions of the batch, whose chain spills).
//!
//! **One worker runs the batch in order.** With a single worker thread (and for a
//! batch of one transaction) nothing can run beside a transaction, so speculation
//! can only cost: the batch runs through the sequential executor's loop instead —
//! the same `Vm::execute`, each transaction's writes applied to the state before
//! the next one reads — which gives the sequential receipts and state by
//! construction. Aptos' block executor does the same at concurrency 1.
//! `ExecutorOptions::block_stm_speculate_alone` (`speculate_alone`) keeps the
//! speculative path on one thread, to measure what it costs.
//!
//! **Probing a batch for contention.** Where every transaction conflicts with the
//! one before it (one AMM pool, one staking reward index), speculation only
//! wastes work: two threads execute each transaction two or three times and wait
//! on each other, and lose to in-order execution (0.6× on one Uniswap pair). So a
//! batch of at least 1,024 transactions is speculated on in segments
//! (`ContentionProbe`: a 64th of it, 64 to 256 transactions, then each segment
//! twice the one before, so about six segments for 10,000 transactions), each
//! run to the end (`Scheduler::resume`: the workers carry on from the end of the
//! last segment over the same multi-version memory; what is done is never handed
//! out again). If a segment took at least 1.6 × threads executions and
//! dependency waits per transaction (3.2 on two threads: one Uniswap pair shows
//! about 4.8; two native pools with 20 µs swaps, where speculation still pays,
//! about 2.3), what is done is committed and the rest of
//! the batch runs in order (the sequential executor's loop, as with one worker),
//! counted in `BatchStats::fallbacks`. Either way the result is the sequential
//! one: a finished prefix holds the sequential results of its transactions, and
//! the rest reads them. Segments cost a broadcast each and the idle tail of each
//! segment; deciding again after every segment keeps one unrepresentative first
//! segment (on a loaded machine one thread may run it alone) from deciding for
//! the whole batch.
//!
//! **Deferred credits** (`Vm::settle`: the EVM's fees to the block beneficiary)
//! are never in the multi-version memory: each transaction's credit stays in its
//! receipt, and the batch's credits are settled into the state once, after its
//! writes are committed. A transaction that reads a credited key (`ReadView::read_credited`:
//! one that touches the beneficiary's account) cannot be answered from the
//! multi-version memory, so the view flags the batch, the workers stop, what was
//! speculated is discarded (never committed: the state is untouched) and the whole
//! batch runs in order, counted in `BatchStats::fallbacks`: the sequential result
//! by construction, at the cost of the discarded speculation.
//!
//! **Estimating from declarations first.** The segments above cost a one-pair
//! batch its speculated prefix: the first segments run with their conflicts
//! before the probe sees them. So before any speculation, the transactions of
//! the first segment (the same 64 to 256, for a batch the probe segments)
//! are asked for their declared keys (`Vm::declare`: an EVM transaction's
//! EIP-2930 access list, whose storage slots count as written, and its sender's
//! balance and nonce; the ledger's access set). If at least three quarters of
//! them declare a write to one and the same key (`HOT_SHARE`: one Uniswap pair's
//! reserves or one staking pool's reward index are in every transaction; with
//! two pools each key is in half of them, where speculation still pays), they
//! form a chain no schedule can run side by side. An access list does not say
//! which slots are written, though (a staking pool's index is in every
//! transaction, written by few, and speculation there still pays about as much
//! as it costs), so the declarations alone do not decide: a batch showing a
//! declared chain runs in order at once only if the last such batch that was
//! speculated on fell back in its segments (`ChainMemory`), and every
//! `REPROBE_EVERY`-th (8th) such batch is speculated on again to check. One
//! Uniswap pair thus pays the speculated prefix once per eight batches instead
//! of every batch. A batch run in order at once counts in
//! `BatchStats::fallbacks` like a probe's fallback. If any of the sampled
//! transactions declares nothing there is no estimate and the segments decide
//! as before. The estimate costs a few hundred `declare` calls per batch (well
//! under 1% of a 10,000-transaction batch) and is only an estimate: a
//! declaration may be wrong or incomplete, and it and the memory decide only
//! how a batch is run, never its result — in order or speculated, a batch gives the sequential
//! receipts and state by construction.
//!
//! **Prefetching the key table.** The key table is far larger than the cache
//! (one slot of two to three cache lines per key the batch touches), so the
//! first read of a key in a batch misses on its slot, and an execution's misses
//! came one after the other. Before a transaction's first incarnation runs, the
//! slots of the keys the VM expects it to touch (`Vm::hint_keys`: an EVM
//! transaction's sender, recipient and access list) are prefetched, so those
//! misses overlap each other and the execution. (Measured: about 6% less time
//! per speculated ERC-20 transfer. The ledger gives no hints: building its
//! access set cost more than the prefetch saved on its transactions of about a
//! microsecond and three keys.)
//!
//! **Repeating an execution before publishing it.** When an execution finishes,
//! its read set is checked at once (cheap: slot pointers, no lookups); if a lower
//! transaction recorded a write it read around meanwhile, it runs again right
//! away, up to `EARLY_RETRIES` times, still as the same incarnation (nothing of it
//! was published, so nobody can tell). Otherwise its stale writes would be
//! recorded, read by higher transactions, fail validation, become ESTIMATEs and be
//! re-executed with every higher transaction revalidated.

mod keys;
mod mvmemory;
mod scheduler;
mod spin;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mvmemory::{MvMemory, MvRead, ReadDescriptor};
use scheduler::{Scheduler, Task, TxnIndex, Version};

use crate::cost::ExecutionLimits;
use crate::error::Error;
use crate::executor::{BatchOutcome, BatchStats, Executor};
use crate::ledger_vm::LedgerVm;
use crate::sequential::SequentialExecutor;
use crate::state::SHARDS;
use crate::threads::{WorkerThreads, backoff};
use crate::tx::Access;
use crate::vm::{ReadError, ReadView, Vm, WriteSet};
use rustc_hash::FxHashMap;

/// Block-STM over a reusable set of worker threads.
pub struct BlockStmExecutor<V: Vm = LedgerVm> {
    vm: V,
    threads: Arc<WorkerThreads>,
    scheduler: Scheduler,
    mv: MvMemory<V>,
    verdicts: Vec<Option<V::Verdict>>,
    /// Runs a batch in order when speculation cannot pay (one worker thread).
    in_order: SequentialExecutor<V>,
    /// Run the speculative machinery even on one worker thread.
    speculate_alone: bool,
    /// How a batch is probed for contention before speculating on all of it.
    probe: ContentionProbe,
    /// The declared-hot-key estimate's scratch (reused across batches).
    hot: HotKeyEstimate<V>,
    /// What the last batches with a declared chain showed.
    chain: ChainMemory,
    /// Whether the last batch ran in order (its writes are already in the state),
    /// from the start or after its probe.
    last_in_order: bool,
    /// Size of the last batch run.
    last_n: usize,
    /// Whether the last batch was committed (which resets the per-transaction
    /// slots in parallel); if not, the next batch resets them serially.
    clean: bool,
}

impl<V: Vm> std::fmt::Debug for BlockStmExecutor<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStmExecutor")
            .field("threads", &self.threads.count())
            .finish()
    }
}

/// How many times in a row an execution that read a value overwritten while it
/// ran is repeated at once, before its results are recorded anyway (and left to
/// validation).
const EARLY_RETRIES: u32 = 2;

/// Counters one thread accumulates during a batch.
#[derive(Default, Clone, Copy)]
struct WorkerStats {
    /// Executions, counting those repeated before recording.
    executions: u64,
    validations: u64,
    validation_aborts: u64,
    dependency_waits: u64,
}

impl WorkerStats {
    /// Whether a segment of `probe` transactions run by `threads` workers with
    /// these counters says speculation cannot pay on the rest of the batch:
    /// every transaction executed `e` times and suspended `w` times on average
    /// (each suspension an execution cut short and a worker left without its
    /// transaction until the one it waits for finishes), from `e + w ≥ 1.6 ×
    /// threads` (3.2 on two threads: one Uniswap pair shows about 4.8, two
    /// native pools with 20 µs of work per swap about 2.3, where speculation
    /// still runs 1.4× sequential's speed).
    fn conflict_heavy(&self, probe: usize, threads: usize) -> bool {
        let costs = u128::from(self.executions) + u128::from(self.dependency_waits);
        let bound = (probe as u128) * (threads as u128) * 8;
        costs * 5 >= bound
    }
}

impl BatchStats {
    fn add(&mut self, w: WorkerStats) {
        self.executions += w.executions;
        self.validations += w.validations;
        self.validation_aborts += w.validation_aborts;
        self.dependency_waits += w.dependency_waits;
    }
}

/// How Block-STM splits a batch into segments, deciding after each whether to
/// go on speculating or to run the rest of the batch in order (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentionProbe {
    /// For batches of at least `MIN_PROBED_BATCH` transactions, a first segment
    /// of a 64th of the batch (64 to 256 transactions), each next one twice the
    /// one before; smaller batches are speculated on whole.
    Default,
    /// Never probe: speculate on every batch whole.
    Off,
    /// A first segment of exactly this many transactions, for any batch larger
    /// than that, each next one twice the one before (tests).
    Transactions(usize),
    /// A first segment of exactly this many, and then the rest in order whatever
    /// it found (tests: the fallback path on any batch).
    InOrderAfter(usize),
}

/// Smallest batch the default probe runs on.
const MIN_PROBED_BATCH: usize = 1024;

impl ContentionProbe {
    /// The first segment's length for a batch of `n` on `threads` workers (`n`:
    /// no probe). One worker speculating alone (`speculate_alone`, for measuring
    /// speculation) is never probed: it would always fall back.
    fn len(self, n: usize, threads: usize) -> usize {
        match self {
            _ if threads < 2 => n,
            ContentionProbe::Default if n >= MIN_PROBED_BATCH => (n / 64).clamp(64, 256),
            ContentionProbe::Transactions(p) | ContentionProbe::InOrderAfter(p)
                if p > 0 && p < n =>
            {
                p
            }
            _ => n,
        }
    }

    /// Whether the rest of the batch runs in order after a segment of `len`
    /// transactions on `threads` workers that counted `stats`.
    fn falls_back(self, stats: &WorkerStats, len: usize, threads: usize) -> bool {
        matches!(self, ContentionProbe::InOrderAfter(_)) || stats.conflict_heavy(len, threads)
    }
}

/// The declared-hot-key estimate (module docs): from the keys a sample of
/// transactions declares it writes (`Vm::declare`), whether one key is written
/// by so many of them that they form a chain no schedule can run side by side.
struct HotKeyEstimate<V: Vm> {
    /// One transaction's declared keys.
    declared: Vec<(V::Key, Access)>,
    /// Per declared written key: how many sampled transactions write it, and
    /// the last one that did (so a key declared twice by one counts once).
    writers: FxHashMap<V::Key, (usize, usize)>,
}

impl<V: Vm> Default for HotKeyEstimate<V> {
    fn default() -> Self {
        HotKeyEstimate {
            declared: Vec::new(),
            writers: FxHashMap::default(),
        }
    }
}

impl<V: Vm> HotKeyEstimate<V> {
    /// Whether at least `HOT_SHARE` of `sample` declare a write to one and the
    /// same key. `false` if any of them declares nothing (no estimate then: the
    /// segments decide).
    fn serialises(&mut self, sample: &[V::Tx]) -> bool {
        self.writers.clear();
        let mut hottest = 0;
        for (i, tx) in sample.iter().enumerate() {
            self.declared.clear();
            if !V::declare(tx, &mut self.declared) {
                return false;
            }
            for &(key, access) in &self.declared {
                if access != Access::Write {
                    continue;
                }
                let (count, last) = self.writers.entry(key).or_insert((0, usize::MAX));
                if *last != i {
                    *last = i;
                    *count += 1;
                    hottest = hottest.max(*count);
                }
            }
        }
        let (share_num, share_den) = HOT_SHARE;
        hottest * share_den >= sample.len() * share_num
    }
}

/// What Block-STM remembers of the batches whose declarations showed a chain:
/// whether the last of them to be speculated on was found conflict-heavy by the
/// segments (then the next ones run in order at once), and how many have run in
/// order at once since (every `REPROBE_EVERY`-th is speculated on again, so a
/// workload whose declared chain does not conflict much — the staking pools'
/// index, read by most transactions but written by few, since an access list
/// does not say which slots are written — goes back to speculating).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChainMemory {
    /// The last speculated batch with a declared chain fell back.
    confirmed: bool,
    /// Batches run in order at once since that one.
    skipped: u32,
}

/// How often a declared chain is speculated on again although the last such
/// batch fell back (one batch in this many).
const REPROBE_EVERY: u32 = 8;

impl ChainMemory {
    /// Whether a batch whose declarations show a chain (`declared`) runs in
    /// order at once; counts it if so.
    fn in_order_at_once(&mut self, declared: bool) -> bool {
        let skip = declared && self.confirmed && self.skipped + 1 < REPROBE_EVERY;
        if skip {
            self.skipped += 1;
        }
        skip
    }

    /// Records a speculated batch: whether its declarations showed a chain and
    /// whether the segments then found it conflict-heavy.
    fn speculated(&mut self, declared: bool, fell_back: bool) {
        *self = ChainMemory {
            confirmed: declared && fell_back,
            skipped: 0,
        };
    }
}

/// The share of a sample that, declaring a write to one key, makes the batch
/// run in order at once: three quarters (one Uniswap pair or staking pool:
/// every transaction; two pools: half each, where speculation still pays).
const HOT_SHARE: (usize, usize) = (3, 4);

/// What the workers share during one batch.
struct Batch<'a, V: Vm> {
    vm: &'a V,
    txs: &'a [V::Tx],
    verdicts: &'a [Option<V::Verdict>],
    base: &'a V::State,
    scheduler: &'a Scheduler,
    mv: &'a MvMemory<V>,
    totals: Mutex<WorkerStats>,
    /// Set when a transaction read a credited key (module docs): the workers
    /// stop and the batch runs in order.
    credited: AtomicBool,
}

/// A transaction's view: lower transactions' versions, else the pre-batch state;
/// every read is recorded for validation.
struct MvView<'a, V: Vm> {
    mv: &'a MvMemory<V>,
    base: &'a V::State,
    txn: TxnIndex,
    reads: &'a mut Vec<ReadDescriptor<V>>,
    credited: &'a AtomicBool,
}

impl<V: Vm> ReadView<V> for MvView<'_, V> {
    #[inline]
    fn read(&mut self, key: &V::Key) -> Result<Option<V::Value>, ReadError> {
        let (read, descriptor) = self.mv.read(key, self.txn);
        self.reads.extend(descriptor);
        match read {
            MvRead::Written(value) => Ok(Some(value)),
            MvRead::Estimate(blocking) => Err(ReadError::Dependency(blocking)),
            MvRead::Storage => Ok(V::read_state(self.base, key)),
        }
    }

    /// Deferred credits are not in the multi-version memory: flag the batch to
    /// run in order (module docs).
    fn read_credited(&mut self, _key: &V::Key) -> Result<Option<V::Value>, ReadError> {
        self.credited.store(true, Ordering::Relaxed);
        Err(ReadError::Credited)
    }
}

impl BlockStmExecutor {
    /// A native ledger Block-STM executor with its own `threads` worker threads,
    /// under the default cost limits.
    pub fn new(threads: usize) -> Result<BlockStmExecutor, Error> {
        BlockStmExecutor::for_vm(LedgerVm::default(), threads)
    }

    /// The same, with cost limits other than the defaults.
    pub fn with_limits(mut self, limits: ExecutionLimits) -> BlockStmExecutor {
        self.vm.limits = limits;
        self.in_order = self.in_order.with_limits(limits);
        self
    }
}

impl<V: Vm> BlockStmExecutor<V> {
    /// A Block-STM executor of `vm` with its own `threads` worker threads.
    pub fn for_vm(vm: V, threads: usize) -> Result<BlockStmExecutor<V>, Error> {
        Ok(BlockStmExecutor::with_threads(
            vm,
            Arc::new(WorkerThreads::new(threads)?),
        ))
    }

    /// A Block-STM executor of `vm` running on existing worker threads.
    pub fn with_threads(vm: V, threads: Arc<WorkerThreads>) -> BlockStmExecutor<V> {
        BlockStmExecutor {
            in_order: SequentialExecutor::for_vm(vm.clone()),
            vm,
            threads,
            scheduler: Scheduler::default(),
            mv: MvMemory::default(),
            verdicts: Vec::new(),
            speculate_alone: false,
            probe: ContentionProbe::Default,
            hot: HotKeyEstimate::default(),
            chain: ChainMemory::default(),
            last_in_order: false,
            last_n: 0,
            clean: true,
        }
    }

    /// With `true`, runs the speculative machinery even on one worker thread
    /// (where it can only cost: for measuring it); by default one worker runs a
    /// batch in order.
    pub fn speculate_alone(mut self, speculate: bool) -> BlockStmExecutor<V> {
        self.speculate_alone = speculate;
        self
    }

    /// How the executor probes a batch for contention (by default a 64th of a
    /// batch of at least 1,024 transactions; see the module docs).
    pub fn contention_probe(mut self, probe: ContentionProbe) -> BlockStmExecutor<V> {
        self.probe = probe;
        self
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    /// Whether a batch of `n` transactions runs in order rather than
    /// speculatively: with one worker thread (unless `speculate_alone`) there is
    /// nobody to share the batch with, and a single transaction has nothing to
    /// run beside it.
    fn runs_in_order(&self, n: usize) -> bool {
        n == 1 || (self.threads.count() == 1 && !self.speculate_alone)
    }
}

impl<V: Vm> Executor<V> for BlockStmExecutor<V> {
    fn name(&self) -> &str {
        "block-stm"
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

impl<V: Vm> BlockStmExecutor<V> {
    /// Runs Block-STM over `txs` given their admission verdicts and appends
    /// their receipts. The results stay in the multi-version memory until the
    /// batch is finished with `commit` (in parallel, per state shard).
    pub(crate) fn run(
        &mut self,
        state: &mut V::State,
        txs: &[V::Tx],
        verdicts: &[Option<V::Verdict>],
        receipts: &mut Vec<V::Receipt>,
        stats: &mut BatchStats,
    ) {
        let n = txs.len();
        let start = receipts.len();
        stats.transactions += n as u64;
        self.last_in_order = self.runs_in_order(n);
        if self.last_in_order {
            // The sequential executor's loop: the same `Vm::execute`, each
            // transaction's writes applied to the state before the next reads.
            self.in_order.run(state, txs, verdicts, receipts);
            stats.executions += n as u64;
            return;
        }
        let first = self.probe.len(n, self.threads.count());
        let declared_chain = first < n && self.hot.serialises(&txs[..first]);
        if self.chain.in_order_at_once(declared_chain) {
            // Most of the first segment declares a write to one key, and the
            // last such batch was found conflict-heavy: the batch is a chain, so
            // it runs in order at once, nothing speculated (module docs). The
            // multi-version memory and the scheduler stay untouched.
            self.last_in_order = true;
            self.in_order.run(state, txs, verdicts, receipts);
            stats.executions += n as u64;
            stats.fallbacks += 1;
            return;
        }
        let clean = std::mem::replace(&mut self.clean, false);
        if n >= u32::MAX as usize {
            // Transaction indices are u32; such a batch cannot be built in memory
            // anyway. Refuse it as a whole rather than misbehave.
            self.scheduler.reset(0, self.threads.count(), clean);
            self.mv.reset(0, clean);
            self.last_n = 0;
            receipts.extend(std::iter::repeat_n(self.vm.internal_error(), n));
            return;
        }
        let threads = self.threads.count();
        self.scheduler.reset(n, threads, clean);
        self.mv.reset(n, clean);
        self.last_n = n;
        if n == 0 {
            return;
        }
        // Speculate segment by segment (one segment: the whole batch, unless
        // probed), each twice the one before, deciding after each whether to go
        // on (module docs).
        let mut done = 0;
        let mut len = self.probe.len(n, threads);
        loop {
            let end = done + len.min(n - done);
            self.scheduler.resume(done, end);
            let (segment, credited) = self.speculate(state, txs, verdicts);
            stats.add(segment);
            if credited {
                // A transaction read a credited key: discard everything
                // speculated (the state is untouched; the next batch resets the
                // multi-version memory and the scheduler) and run the whole batch
                // in order (module docs).
                self.clean = false;
                self.last_in_order = true;
                self.in_order.run(state, txs, verdicts, receipts);
                stats.executions += n as u64;
                stats.fallbacks += 1;
                return;
            }
            if end == n {
                break;
            }
            if self.probe.falls_back(&segment, end - done, threads) {
                // Speculation loses here: commit what is done and run the rest
                // of the batch in order (module docs).
                self.chain.speculated(declared_chain, true);
                self.take_receipts(0..end, receipts);
                self.mv.learn(end);
                let (mv, scheduler) = (&self.mv, &self.scheduler);
                V::finish_batch(state, Some(&self.threads), |i, shard| {
                    Self::commit_shard(mv, scheduler, n, i, shard)
                });
                self.vm.settle(state, &receipts[start..]);
                self.clean = true;
                self.last_in_order = true;
                self.in_order
                    .run(state, &txs[end..], &verdicts[end..], receipts);
                stats.executions += (n - end) as u64;
                stats.fallbacks += 1;
                return;
            }
            done = end;
            len = len.saturating_mul(2);
        }
        self.chain.speculated(declared_chain, false);
        self.mv.learn(n);
        self.take_receipts(0..n, receipts);
    }

    /// One broadcast of the worker loop over the batch as the scheduler holds it;
    /// the workers' counters, and whether a transaction read a credited key (then
    /// the workers stopped early and the batch's results are not usable).
    fn speculate(
        &self,
        state: &V::State,
        txs: &[V::Tx],
        verdicts: &[Option<V::Verdict>],
    ) -> (WorkerStats, bool) {
        let batch = Batch {
            vm: &self.vm,
            txs,
            verdicts,
            base: state,
            scheduler: &self.scheduler,
            mv: &self.mv,
            totals: Mutex::new(WorkerStats::default()),
            credited: AtomicBool::new(false),
        };
        self.threads.broadcast(&|id| worker(&batch, id));
        let totals = *batch.totals.lock().unwrap_or_else(PoisonError::into_inner);
        (totals, batch.credited.load(Ordering::Relaxed))
    }

    /// Appends the receipts of the transactions in `range` (all recorded).
    fn take_receipts(&mut self, range: std::ops::Range<usize>, receipts: &mut Vec<V::Receipt>) {
        for i in range {
            let receipt = self.mv.take_receipt(i);
            receipts.push(receipt.unwrap_or_else(|| self.vm.internal_error()));
        }
    }

    /// Writes the batch's final versions for state shard `shard` (called once
    /// for each of the `SHARDS` shards, in parallel), and resets the matching
    /// slice of the per-transaction slots for the next batch.
    fn commit_shard(
        mv: &MvMemory<V>,
        scheduler: &Scheduler,
        n: usize,
        shard: usize,
        out: &mut V::Shard,
    ) {
        let range = shard * n / SHARDS..(shard + 1) * n / SHARDS;
        // SAFETY: called after the batch's broadcast has returned (no worker
        // runs), once per shard, and the shards' calls own disjoint key tables
        // and disjoint ranges of transactions.
        unsafe {
            mv.commit_shard(shard, out);
            scheduler.clean_range(range.clone());
            mv.clean_range(range);
        }
    }

    /// Writes the last `run`'s results into `state` and finishes the batch there
    /// (every shard committed and its digest folded, in parallel on the worker
    /// threads), then settles the deferred credits of `receipts`, the receipts
    /// that `run` appended (`Vm::settle`; a run that went in order settled them
    /// already).
    pub(crate) fn commit(&mut self, state: &mut V::State, receipts: &[V::Receipt]) {
        if self.last_in_order {
            // Everything is in the state already; the multi-version memory and
            // the scheduler were not touched.
            V::finish_batch(state, Some(&self.threads), |_, _| {});
            return;
        }
        let (mv, scheduler, n) = (&self.mv, &self.scheduler, self.last_n);
        V::finish_batch(state, Some(&self.threads), |i, shard| {
            Self::commit_shard(mv, scheduler, n, i, shard)
        });
        self.clean = true;
        self.vm.settle(state, receipts);
    }
}

/// What one worker thread keeps during a batch (reused across transactions).
struct Worker<V: Vm> {
    /// Its index among the workers (its activity flag in the scheduler).
    id: usize,
    reads: Vec<ReadDescriptor<V>>,
    writes: WriteSet<V::Key, V::Value>,
    scratch: V::Scratch,
    dependents: Vec<TxnIndex>,
    stats: WorkerStats,
}

/// The per-thread loop of Algorithm 1: run the task in hand, else ask for one,
/// until the scheduler says the batch is done.
fn worker<V: Vm>(b: &Batch<'_, V>, id: usize) {
    let mut w = Worker::<V> {
        id,
        reads: Vec::with_capacity(16),
        writes: WriteSet::default(),
        scratch: V::Scratch::default(),
        dependents: Vec::new(),
        stats: WorkerStats::default(),
    };
    let mut task: Option<Task> = None;
    let mut idle: u32 = 0;
    loop {
        task = match task {
            Some(Task::Execute(version)) => try_execute(b, &mut w, version),
            Some(Task::Validate(version)) => validate(b, &mut w, version),
            None => {
                if b.scheduler.done() || b.credited.load(Ordering::Relaxed) {
                    break;
                }
                let next = b.scheduler.next_task(id);
                if next.is_none() {
                    backoff(&mut idle);
                } else {
                    idle = 0;
                }
                next
            }
        };
    }
    let stats = w.stats;
    let mut t = b.totals.lock().unwrap_or_else(PoisonError::into_inner);
    t.executions += stats.executions;
    t.validations += stats.validations;
    t.validation_aborts += stats.validation_aborts;
    t.dependency_waits += stats.dependency_waits;
}

fn try_execute<V: Vm>(b: &Batch<'_, V>, w: &mut Worker<V>, version: Version) -> Option<Task> {
    let i = version.txn as usize;
    let tx = &b.txs[i];
    if version.incarnation == 0 {
        // The first touch of a key in the batch misses the cache on its slot:
        // start those misses together now rather than one by one as the
        // execution reaches each read (module docs).
        V::hint_keys(tx, |key| b.mv.prefetch(key));
    }
    let mut retries = 0;
    loop {
        w.reads.clear();
        w.writes.clear();
        w.stats.executions += 1;
        let mut view = MvView {
            mv: b.mv,
            base: b.base,
            txn: version.txn,
            reads: &mut w.reads,
            credited: &b.credited,
        };
        match b.vm.execute(
            tx,
            b.verdicts[i].as_ref(),
            &mut view,
            &mut w.scratch,
            &mut w.writes,
        ) {
            Ok(receipt) => {
                // A lower transaction may have recorded a write this execution
                // read around while it ran. Nothing of it is published yet, so
                // it can simply run again (same incarnation): its stale writes
                // would otherwise be recorded, read by higher transactions,
                // found invalid, turned into ESTIMATEs and re-executed, with
                // every higher transaction revalidated.
                if retries < EARLY_RETRIES && !MvMemory::reads_valid(version.txn, &w.reads) {
                    retries += 1;
                    continue;
                }
                let wrote_new = b.mv.record(version, &mut w.reads, &w.writes, receipt);
                return b
                    .scheduler
                    .finish_execution(version, wrote_new, &mut w.dependents);
            }
            Err(blocked) => {
                if b.scheduler.add_dependency(w.id, version.txn, blocked.0) {
                    w.stats.dependency_waits += 1;
                    return None;
                }
                // The blocking transaction finished in the meantime: go again.
            }
        }
    }
}

fn validate<V: Vm>(b: &Batch<'_, V>, w: &mut Worker<V>, version: Version) -> Option<Task> {
    w.stats.validations += 1;
    let valid = b.mv.validate_read_set(version.txn);
    let aborted = !valid && b.scheduler.try_validation_abort(version);
    if aborted {
        w.stats.validation_aborts += 1;
        b.mv.convert_writes_to_estimates(version.txn);
    }
    b.scheduler.finish_validation(version.txn, aborted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A declared chain runs in order at once only after a speculated one fell
    /// back, and is speculated on again every `REPROBE_EVERY`-th batch; a batch
    /// without a declared chain, or a declared chain that speculated through,
    /// clears the memory.
    #[test]
    fn declared_chains_run_in_order_once_confirmed_and_are_reprobed() {
        let mut m = ChainMemory::default();
        assert!(!m.in_order_at_once(true), "nothing confirmed yet");
        m.speculated(true, true);
        for _ in 1..REPROBE_EVERY {
            assert!(m.in_order_at_once(true));
        }
        assert!(!m.in_order_at_once(true), "the 8th is speculated on again");
        m.speculated(true, false);
        assert!(!m.in_order_at_once(true), "it did not fall back");
        m.speculated(true, true);
        assert!(!m.in_order_at_once(false), "no declared chain: speculate");
        m.speculated(false, true);
        assert!(
            !m.in_order_at_once(true),
            "the fallback had no declared chain"
        );
    }
}
