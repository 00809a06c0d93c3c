//! Block-STM's collaborative scheduler (Gelashvili et al., PPoPP 2023, §4 and
//! Algorithms 4–5): two shared indices hand out execution and validation tasks in
//! preset order, each transaction has an (incarnation, status) pair and a list of
//! transactions suspended on it.
//!
//! Status transitions of one transaction (only these; each is a single atomic
//! store or compare-exchange of its packed (incarnation, status) word):
//!
//! ```text
//! ReadyToExecute(i) --try_incarnate (CAS)--------------> Executing(i)
//! Executing(i)      --finish_execution-----------------> Executed(i)
//! Executing(i)      --add_dependency (suspend)---------> Aborting(i)
//! Executed(i)       --try_validation_abort (CAS)-------> Aborting(i)
//! Aborting(i)       --set_ready_status-----------------> ReadyToExecute(i+1)
//! ```
//!
//! Invariants:
//! - At most one thread owns a transaction's incarnation at a time: it is the one
//!   whose compare-exchange moved it to `Executing` (`try_incarnate` succeeds once
//!   per incarnation) or to `Aborting` (`try_validation_abort` succeeds once per
//!   incarnation). Only that owner writes the status word with a plain store
//!   (`finish_execution`, `add_dependency`, `set_ready_status`), and only the owner
//!   touches the transaction's entries in the multi-version memory.
//! - Each worker has an activity flag (its own cache line) that is set while it
//!   holds a task or is about to obtain one: set (if clear) before `fetch_add` on
//!   an index, and cleared only when that worker finds the index it would draw
//!   from already past the end (before `check_done`), or suspends its transaction
//!   in `add_dependency`. A worker that finishes a task and asks for the next one
//!   keeps it set in between (it is about to obtain one), so that a stream of tasks
//!   costs no store to the flag at all; tasks handed back as continuations
//!   (`Some`) keep it set too. Tasks never move between workers (a
//!   resumed or aborted transaction is handed out again through an index
//!   decrease), so the flags say what the paper's single `num_active_tasks`
//!   counter says without every task start and end bouncing one cache line
//!   between the cores.
//! - Every decrease of an index bumps `decrease_cnt`. `check_done` declares the
//!   batch finished only if both indices are past the end, no worker is active,
//!   and `decrease_cnt` did not move while it looked: a worker it saw idle can only
//!   get work from an index below the end, which needs a decrease, made by a
//!   worker that was active then — seen active, or seen idle after the decrease
//!   and its bump, which the second read of `decrease_cnt` catches.
//! - `add_dependency(txn, blocking)` holds `blocking`'s dependents lock while it
//!   checks that `blocking` is not yet `Executed`, suspends `txn` and registers
//!   it; `finish_execution` sets `Executed` and then takes the dependents under the
//!   same lock, so a registration is never lost. It is the only place holding a
//!   lock while touching another transaction, and it only stores to `txn`'s word.
//!
//! All atomics use `SeqCst`: the proof in the paper assumes sequential consistency,
//! and on x86 the cost is an `xchg` per store.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};

use crossbeam::utils::CachePadded;

use super::spin::SpinLock;

pub(crate) type TxnIndex = u32;
pub(crate) type Incarnation = u32;

/// One execution attempt of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) txn: TxnIndex,
    pub(crate) incarnation: Incarnation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    Execute(Version),
    Validate(Version),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    ReadyToExecute = 0,
    Executing = 1,
    Executed = 2,
    Aborting = 3,
}

/// An (incarnation, status) pair packed in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Word(u64);

impl Word {
    fn new(incarnation: Incarnation, status: Status) -> Word {
        Word(u64::from(incarnation) << 2 | status as u64)
    }

    fn incarnation(self) -> Incarnation {
        // At most 2^32 - 1 incarnations are ever packed (a u32 shifted by 2).
        (self.0 >> 2) as Incarnation
    }

    fn status(self) -> Status {
        match self.0 & 3 {
            0 => Status::ReadyToExecute,
            1 => Status::Executing,
            2 => Status::Executed,
            _ => Status::Aborting,
        }
    }
}

#[derive(Default)]
struct TxnState {
    /// The packed (incarnation, status) word.
    word: AtomicU64,
    /// Transactions suspended until this one finishes executing.
    dependents: SpinLock<Vec<TxnIndex>>,
}

impl TxnState {
    fn load(&self) -> Word {
        Word(self.word.load(SeqCst))
    }

    fn store(&self, word: Word) {
        self.word.store(word.0, SeqCst);
    }

    fn cas(&self, from: Word, to: Word) -> bool {
        self.word
            .compare_exchange(from.0, to.0, SeqCst, SeqCst)
            .is_ok()
    }

    /// Back to `ReadyToExecute(0)` with no dependents.
    ///
    /// # Safety
    /// Only between batches, by the one thread resetting this transaction.
    unsafe fn reset(&self) {
        self.word
            .store(Word::new(0, Status::ReadyToExecute).0, Relaxed);
        // SAFETY: exclusive use, by the caller's contract.
        unsafe { self.dependents.get_unsynced() }.clear();
    }
}

/// The shared scheduler state of one batch (reset and reused across batches).
#[derive(Default)]
pub(crate) struct Scheduler {
    execution_idx: CachePadded<AtomicUsize>,
    validation_idx: CachePadded<AtomicUsize>,
    decrease_cnt: CachePadded<AtomicUsize>,
    done_marker: CachePadded<AtomicBool>,
    /// One activity flag per worker (module docs).
    active: Vec<CachePadded<AtomicBool>>,
    txns: Vec<CachePadded<TxnState>>,
    block_size: usize,
}

impl Scheduler {
    /// Prepares for a batch of `n` transactions run by `workers` threads, keeping
    /// allocations. With `clean`, the caller guarantees every existing slot was
    /// reset by `clean_range` after the previous batch, so only counters are
    /// reset here.
    pub(crate) fn reset(&mut self, n: usize, workers: usize, clean: bool) {
        if !clean {
            for t in &self.txns {
                // SAFETY: `&mut self`: no worker runs.
                unsafe { t.reset() };
            }
        }
        while self.txns.len() < n {
            self.txns.push(CachePadded::new(TxnState::default()));
        }
        self.active
            .resize_with(workers, || CachePadded::new(AtomicBool::new(false)));
        for a in &self.active {
            a.store(false, SeqCst);
        }
        self.block_size = n;
        self.execution_idx.store(0, SeqCst);
        self.validation_idx.store(0, SeqCst);
        self.decrease_cnt.store(0, SeqCst);
        self.done_marker.store(n == 0, SeqCst);
    }

    /// Sets the batch just reset, whose first `start` transactions are done
    /// (executed and validated by earlier runs of the workers; none for
    /// `start` = 0), to run its transactions up to `n` (the batch is done once
    /// those are): the indices start at `start`, and nothing below it is ever
    /// handed out again (no transaction below `start` holds an ESTIMATE, so none
    /// above waits on one, and aborts only lower the indices to the aborted
    /// transaction). Before any worker runs.
    pub(crate) fn resume(&mut self, start: usize, n: usize) {
        debug_assert!(start <= n && n <= self.txns.len());
        self.block_size = n;
        for a in &self.active {
            a.store(false, SeqCst);
        }
        self.execution_idx.store(start, SeqCst);
        self.validation_idx.store(start, SeqCst);
        self.decrease_cnt.store(0, SeqCst);
        self.done_marker.store(start >= n, SeqCst);
    }

    /// Resets the slots in `range` for the next batch (run in parallel after a
    /// batch, once no worker uses them any more).
    ///
    /// # Safety
    /// Only after the batch's workers have finished (the broadcast's join orders
    /// their accesses before these plain stores), by the one thread that owns
    /// `range`.
    pub(crate) unsafe fn clean_range(&self, range: std::ops::Range<usize>) {
        for t in &self.txns[range] {
            // SAFETY: exclusive use, by the caller's contract.
            unsafe { t.reset() };
        }
    }

    fn txn(&self, txn: TxnIndex) -> &TxnState {
        &self.txns[txn as usize]
    }

    pub(crate) fn done(&self) -> bool {
        self.done_marker.load(SeqCst)
    }

    fn activate(&self, worker: usize) {
        let flag = &self.active[worker];
        // Only this worker stores to its flag: a load decides.
        if !flag.load(SeqCst) {
            flag.store(true, SeqCst);
        }
    }

    fn deactivate(&self, worker: usize) {
        self.active[worker].store(false, SeqCst);
    }

    fn decrease_execution_idx(&self, target: usize) {
        self.execution_idx.fetch_min(target, SeqCst);
        self.decrease_cnt.fetch_add(1, SeqCst);
    }

    fn decrease_validation_idx(&self, target: usize) {
        self.validation_idx.fetch_min(target, SeqCst);
        self.decrease_cnt.fetch_add(1, SeqCst);
    }

    fn check_done(&self) {
        let observed = self.decrease_cnt.load(SeqCst);
        if self
            .execution_idx
            .load(SeqCst)
            .min(self.validation_idx.load(SeqCst))
            >= self.block_size
            && self.active.iter().all(|a| !a.load(SeqCst))
            && observed == self.decrease_cnt.load(SeqCst)
        {
            self.done_marker.store(true, SeqCst);
        }
    }

    /// Moves `txn` from ReadyToExecute to Executing; `None` if it was not ready.
    /// Does not touch the activity flags (callers account for them).
    fn try_incarnate(&self, txn: usize) -> Option<Version> {
        if txn >= self.block_size {
            return None;
        }
        let state = &self.txns[txn];
        let word = state.load();
        if word.status() != Status::ReadyToExecute {
            return None;
        }
        let incarnation = word.incarnation();
        state
            .cas(word, Word::new(incarnation, Status::Executing))
            .then_some(Version {
                txn: txn as TxnIndex,
                incarnation,
            })
    }

    /// Worker `worker` found nothing left to draw: clears its flag (if set) and
    /// looks whether the batch is done.
    fn idle(&self, worker: usize) {
        if self.active[worker].load(SeqCst) {
            self.deactivate(worker);
        }
        self.check_done();
    }

    fn next_version_to_execute(&self, worker: usize) -> Option<Version> {
        if self.execution_idx.load(SeqCst) >= self.block_size {
            self.idle(worker);
            return None;
        }
        self.activate(worker);
        let idx = self.execution_idx.fetch_add(1, SeqCst);
        // On failure the flag stays set: the worker asks again at once.
        self.try_incarnate(idx)
    }

    fn next_version_to_validate(&self, worker: usize) -> Option<Version> {
        if self.validation_idx.load(SeqCst) >= self.block_size {
            self.idle(worker);
            return None;
        }
        self.activate(worker);
        let idx = self.validation_idx.fetch_add(1, SeqCst);
        if idx < self.block_size {
            let word = self.txns[idx].load();
            if word.status() == Status::Executed {
                return Some(Version {
                    txn: idx as TxnIndex,
                    incarnation: word.incarnation(),
                });
            }
        }
        None
    }

    /// The next task for idle worker `worker`: validation if the validation index
    /// is behind the execution index, else execution.
    pub(crate) fn next_task(&self, worker: usize) -> Option<Task> {
        if self.validation_idx.load(SeqCst) < self.execution_idx.load(SeqCst) {
            self.next_version_to_validate(worker).map(Task::Validate)
        } else {
            self.next_version_to_execute(worker).map(Task::Execute)
        }
    }

    /// Suspends `txn` (whose execution by `worker` read an ESTIMATE written by
    /// `blocking`) until `blocking` finishes executing. `false` if `blocking`
    /// already has, in which case the caller re-executes `txn` right away (its
    /// task continues).
    pub(crate) fn add_dependency(&self, worker: usize, txn: TxnIndex, blocking: TxnIndex) -> bool {
        if blocking >= txn {
            // Cannot happen (reads only see lower transactions); re-executing is safe.
            return false;
        }
        {
            let b = self.txn(blocking);
            let mut dependents = b.dependents.lock();
            if b.load().status() == Status::Executed {
                return false;
            }
            // The caller owns `txn`'s incarnation (it is Executing).
            let t = self.txn(txn);
            t.store(Word::new(t.load().incarnation(), Status::Aborting));
            dependents.push(txn);
        }
        self.deactivate(worker);
        true
    }

    /// Aborting(i) -> ReadyToExecute(i+1), by the owner of the abort.
    fn set_ready_status(&self, txn: TxnIndex) {
        let t = self.txn(txn);
        let word = t.load();
        debug_assert_eq!(word.status(), Status::Aborting);
        t.store(Word::new(word.incarnation() + 1, Status::ReadyToExecute));
    }

    /// Records that `version` finished executing; resumes its dependents.
    /// Returns its validation as a continuation when that can be done right
    /// away. (The worker's activity flag stays set either way: it asks for its
    /// next task at once.)
    pub(crate) fn finish_execution(
        &self,
        version: Version,
        wrote_new_location: bool,
        dependents: &mut Vec<TxnIndex>,
    ) -> Option<Task> {
        {
            let t = self.txn(version.txn);
            t.store(Word::new(version.incarnation, Status::Executed));
            let mut waiting = t.dependents.lock();
            // Swap rather than take: the caller's buffer comes back empty and the
            // transaction keeps an allocation for its next dependents.
            dependents.clear();
            std::mem::swap(&mut *waiting, dependents);
        }
        if !dependents.is_empty() {
            let mut min = usize::MAX;
            for &d in dependents.iter() {
                self.set_ready_status(d);
                min = min.min(d as usize);
            }
            self.decrease_execution_idx(min);
        }
        if self.validation_idx.load(SeqCst) > version.txn as usize {
            if wrote_new_location {
                // A higher transaction read the new location before it existed.
                self.decrease_validation_idx(version.txn as usize);
            } else {
                return Some(Task::Validate(version));
            }
        }
        None
    }

    /// Executed(i) -> Aborting(i) if `version` is still the current incarnation
    /// and executed; only one validator can win this.
    pub(crate) fn try_validation_abort(&self, version: Version) -> bool {
        self.txn(version.txn).cas(
            Word::new(version.incarnation, Status::Executed),
            Word::new(version.incarnation, Status::Aborting),
        )
    }

    /// Ends a validation task. After an abort, every higher transaction must be
    /// revalidated, and the aborted one is re-executed right away if the
    /// execution index has already passed it. (The worker's activity flag stays
    /// set: it asks for its next task at once.)
    pub(crate) fn finish_validation(&self, txn: TxnIndex, aborted: bool) -> Option<Task> {
        if aborted {
            self.set_ready_status(txn);
            self.decrease_validation_idx(txn as usize + 1);
            if self.execution_idx.load(SeqCst) > txn as usize
                && let Some(version) = self.try_incarnate(txn as usize)
            {
                return Some(Task::Execute(version));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_pack_incarnation_and_status() {
        for status in [
            Status::ReadyToExecute,
            Status::Executing,
            Status::Executed,
            Status::Aborting,
        ] {
            for incarnation in [0, 1, 7, u32::MAX] {
                let w = Word::new(incarnation, status);
                assert_eq!((w.incarnation(), w.status()), (incarnation, status));
            }
        }
    }

    #[test]
    fn single_thread_walks_execute_then_validate() {
        let mut s = Scheduler::default();
        s.reset(2, 1, true);
        let mut deps = Vec::new();
        let t0 = s.next_task(0);
        assert_eq!(
            t0,
            Some(Task::Execute(Version {
                txn: 0,
                incarnation: 0
            }))
        );
        let Some(Task::Execute(v0)) = t0 else {
            unreachable!()
        };
        // validation_idx (0) is not above 0, so no continuation.
        assert_eq!(s.finish_execution(v0, true, &mut deps), None);
        assert_eq!(s.next_task(0), Some(Task::Validate(v0)));
        assert_eq!(s.finish_validation(0, false), None);
        let Some(Task::Execute(v1)) = s.next_task(0) else {
            panic!("expected execution of txn 1")
        };
        assert_eq!(v1.txn, 1);
        assert_eq!(s.finish_execution(v1, false, &mut deps), None);
        assert_eq!(s.next_task(0), Some(Task::Validate(v1)));
        assert_eq!(s.finish_validation(1, false), None);
        assert!(!s.done());
        assert_eq!(s.next_task(0), None);
        assert!(s.done());
    }

    #[test]
    fn abort_reincarnates_and_dependency_resumes() {
        let mut s = Scheduler::default();
        s.reset(2, 2, true);
        let mut deps = Vec::new();
        let Some(Task::Execute(v0)) = s.next_task(0) else {
            panic!("expected execution of txn 0")
        };
        // The validation index (0) is behind the execution index (1), but txn 0 is
        // not executed yet: that attempt yields nothing; the next one executes 1.
        assert_eq!(s.next_task(1), None);
        let Some(Task::Execute(v1)) = s.next_task(1) else {
            panic!("expected execution of txn 1")
        };
        assert_eq!(v1.txn, 1);
        // txn 1 reads an ESTIMATE of txn 0 while 0 is still executing.
        assert!(s.add_dependency(1, v1.txn, v0.txn));
        // Worker 1 is idle now, worker 0 is not: the batch is not done.
        s.check_done();
        assert!(!s.done());
        // Finishing 0 resumes 1 and hands back 0's validation as a continuation.
        assert_eq!(
            s.finish_execution(v0, false, &mut deps),
            Some(Task::Validate(v0))
        );
        assert_eq!(deps, vec![1]);
        assert_eq!(s.finish_validation(0, false), None);
        assert_eq!(
            s.next_task(1),
            Some(Task::Execute(Version {
                txn: 1,
                incarnation: 1
            }))
        );
        // A stale validation of incarnation 0 cannot abort incarnation 1.
        assert!(!s.try_validation_abort(v1));
    }

    #[test]
    fn a_stopped_batch_is_done_at_its_end_and_resumes_above_it() {
        let mut s = Scheduler::default();
        s.reset(3, 1, true);
        s.resume(0, 1);
        let mut deps = Vec::new();
        let Some(Task::Execute(v0)) = s.next_task(0) else {
            panic!("expected execution of txn 0")
        };
        assert_eq!(s.finish_execution(v0, false, &mut deps), None);
        assert_eq!(s.next_task(0), Some(Task::Validate(v0)));
        assert_eq!(s.finish_validation(0, false), None);
        assert_eq!(s.next_task(0), None);
        assert!(s.done(), "done once the first transaction is");
        s.resume(1, 3);
        assert!(!s.done());
        let Some(Task::Execute(v1)) = s.next_task(0) else {
            panic!("expected execution of txn 1")
        };
        assert_eq!(v1.txn, 1, "nothing below the resume point is handed out");
    }

    #[test]
    fn validation_abort_is_won_once_and_reexecutes() {
        let mut s = Scheduler::default();
        s.reset(1, 2, true);
        let mut deps = Vec::new();
        let Some(Task::Execute(v0)) = s.next_task(0) else {
            panic!("expected execution of txn 0")
        };
        assert_eq!(s.finish_execution(v0, false, &mut deps), None);
        assert_eq!(s.next_task(0), Some(Task::Validate(v0)));
        assert!(s.try_validation_abort(v0));
        assert!(!s.try_validation_abort(v0), "a second validator loses");
        // The execution index passed 0: re-executed at once as incarnation 1.
        assert_eq!(
            s.finish_validation(0, true),
            Some(Task::Execute(Version {
                txn: 0,
                incarnation: 1
            }))
        );
    }
}
