//! Block-STM's collaborative scheduler (Gelashvili et al., PPoPP 2023, §4 and
//! Algorithms 4–5): two shared indices hand out execution and validation tasks in
//! preset order, each transaction has an (incarnation, status) pair and a list of
//! transactions suspended on it.
//!
//! Status transitions of one transaction (only these, always under its lock):
//!
//! ```text
//! ReadyToExecute(i) --try_incarnate--------------> Executing(i)
//! Executing(i)      --finish_execution-----------> Executed(i)
//! Executing(i)      --add_dependency (suspend)---> Aborting(i)
//! Executed(i)       --try_validation_abort-------> Aborting(i)
//! Aborting(i)       --set_ready_status-----------> ReadyToExecute(i+1)
//! ```
//!
//! Invariants:
//! - At most one thread owns a transaction's incarnation at a time: it is the one
//!   that moved it to `Executing` (`try_incarnate` succeeds once per incarnation)
//!   or to `Aborting` (`try_validation_abort` succeeds once per incarnation). Only
//!   that owner touches the transaction's entries in the multi-version memory.
//! - `num_active_tasks` counts threads that hold a task or are about to obtain one:
//!   it is incremented before `fetch_add` on an index, and decremented exactly once
//!   when that thread ends up with no task (`None` returned by this module, or a
//!   successful suspension in `add_dependency`). Tasks handed back to the caller as
//!   continuations (`Some`) keep their count.
//! - Every decrease of an index bumps `decrease_cnt`. `check_done` declares the
//!   batch finished only if both indices are past the end, no task is active, and
//!   `decrease_cnt` did not move while it looked: no thread can still be about to
//!   create work.
//! - `add_dependency(txn, blocking)` holds `blocking`'s lock while it checks that
//!   `blocking` is not yet `Executed`, suspends `txn` and registers it; since
//!   `finish_execution` sets `Executed` and then takes the dependents under the
//!   same lock, a registration is never lost. It is the only place holding two
//!   transaction locks, always lower index first (`blocking < txn`), so no deadlock.
//!
//! All atomics use `SeqCst`: the proof in the paper assumes sequential consistency,
//! and on x86 the cost is an `xchg` per store.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crossbeam::utils::CachePadded;

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
    ReadyToExecute,
    Executing,
    Executed,
    Aborting,
}

#[derive(Debug)]
struct TxnState {
    incarnation: Incarnation,
    status: Status,
    /// Transactions suspended until this one finishes executing.
    dependents: Vec<TxnIndex>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared scheduler state of one batch (reset and reused across batches).
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    execution_idx: CachePadded<AtomicUsize>,
    validation_idx: CachePadded<AtomicUsize>,
    decrease_cnt: CachePadded<AtomicUsize>,
    num_active_tasks: CachePadded<AtomicUsize>,
    done_marker: CachePadded<AtomicBool>,
    txns: Vec<CachePadded<Mutex<TxnState>>>,
    block_size: usize,
}

impl Scheduler {
    /// Prepares for a batch of `n` transactions, keeping allocations. With
    /// `clean`, the caller guarantees every existing slot was reset by
    /// `clean_range` after the previous batch, so only counters are reset here.
    pub(crate) fn reset(&mut self, n: usize, clean: bool) {
        if !clean {
            for t in &mut self.txns {
                let s = t.get_mut().unwrap_or_else(PoisonError::into_inner);
                s.incarnation = 0;
                s.status = Status::ReadyToExecute;
                s.dependents.clear();
            }
        }
        while self.txns.len() < n {
            self.txns.push(CachePadded::new(Mutex::new(TxnState {
                incarnation: 0,
                status: Status::ReadyToExecute,
                dependents: Vec::new(),
            })));
        }
        self.block_size = n;
        self.execution_idx.store(0, SeqCst);
        self.validation_idx.store(0, SeqCst);
        self.decrease_cnt.store(0, SeqCst);
        self.num_active_tasks.store(0, SeqCst);
        self.done_marker.store(n == 0, SeqCst);
    }

    /// Resets the slots in `range` for the next batch (run in parallel after a
    /// batch, once no worker uses them any more).
    pub(crate) fn clean_range(&self, range: std::ops::Range<usize>) {
        for t in &self.txns[range] {
            let mut s = lock(t);
            s.incarnation = 0;
            s.status = Status::ReadyToExecute;
            s.dependents.clear();
        }
    }

    fn state(&self, txn: TxnIndex) -> MutexGuard<'_, TxnState> {
        lock(&self.txns[txn as usize])
    }

    pub(crate) fn done(&self) -> bool {
        self.done_marker.load(SeqCst)
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
            && self.num_active_tasks.load(SeqCst) == 0
            && observed == self.decrease_cnt.load(SeqCst)
        {
            self.done_marker.store(true, SeqCst);
        }
    }

    /// Moves `txn` from ReadyToExecute to Executing; `None` if it was not ready.
    /// Does not touch `num_active_tasks` (callers account for it).
    fn try_incarnate(&self, txn: usize) -> Option<Version> {
        if txn >= self.block_size {
            return None;
        }
        let mut s = lock(&self.txns[txn]);
        if s.status == Status::ReadyToExecute {
            s.status = Status::Executing;
            return Some(Version {
                txn: txn as TxnIndex,
                incarnation: s.incarnation,
            });
        }
        None
    }

    fn next_version_to_execute(&self) -> Option<Version> {
        if self.execution_idx.load(SeqCst) >= self.block_size {
            self.check_done();
            return None;
        }
        self.num_active_tasks.fetch_add(1, SeqCst);
        let idx = self.execution_idx.fetch_add(1, SeqCst);
        let version = self.try_incarnate(idx);
        if version.is_none() {
            self.num_active_tasks.fetch_sub(1, SeqCst);
        }
        version
    }

    fn next_version_to_validate(&self) -> Option<Version> {
        if self.validation_idx.load(SeqCst) >= self.block_size {
            self.check_done();
            return None;
        }
        self.num_active_tasks.fetch_add(1, SeqCst);
        let idx = self.validation_idx.fetch_add(1, SeqCst);
        if idx < self.block_size {
            let s = lock(&self.txns[idx]);
            if s.status == Status::Executed {
                return Some(Version {
                    txn: idx as TxnIndex,
                    incarnation: s.incarnation,
                });
            }
        }
        self.num_active_tasks.fetch_sub(1, SeqCst);
        None
    }

    /// The next task for an idle thread: validation if the validation index is
    /// behind the execution index, else execution.
    pub(crate) fn next_task(&self) -> Option<Task> {
        if self.validation_idx.load(SeqCst) < self.execution_idx.load(SeqCst) {
            self.next_version_to_validate().map(Task::Validate)
        } else {
            self.next_version_to_execute().map(Task::Execute)
        }
    }

    /// Suspends `txn` (whose execution read an ESTIMATE written by `blocking`)
    /// until `blocking` finishes executing. `false` if `blocking` already has, in
    /// which case the caller re-executes `txn` right away (its task continues).
    pub(crate) fn add_dependency(&self, txn: TxnIndex, blocking: TxnIndex) -> bool {
        if blocking >= txn {
            // Cannot happen (reads only see lower transactions); re-executing is safe.
            return false;
        }
        {
            let mut b = self.state(blocking);
            if b.status == Status::Executed {
                return false;
            }
            // Lock order: lower index (blocking) first, then txn.
            self.state(txn).status = Status::Aborting;
            b.dependents.push(txn);
        }
        self.num_active_tasks.fetch_sub(1, SeqCst);
        true
    }

    /// Aborting(i) -> ReadyToExecute(i+1).
    fn set_ready_status(&self, txn: TxnIndex) {
        let mut s = self.state(txn);
        s.incarnation += 1;
        s.status = Status::ReadyToExecute;
    }

    /// Records that `version` finished executing; resumes its dependents. Returns
    /// its validation as a continuation when that can be done right away.
    pub(crate) fn finish_execution(
        &self,
        version: Version,
        wrote_new_location: bool,
        dependents: &mut Vec<TxnIndex>,
    ) -> Option<Task> {
        {
            let mut s = self.state(version.txn);
            s.status = Status::Executed;
            // Swap rather than take: the caller's buffer comes back empty and the
            // transaction keeps an allocation for its next dependents.
            dependents.clear();
            std::mem::swap(&mut s.dependents, dependents);
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
        self.num_active_tasks.fetch_sub(1, SeqCst);
        None
    }

    /// Executed(i) -> Aborting(i) if `version` is still the current incarnation
    /// and executed; only one validator can win this.
    pub(crate) fn try_validation_abort(&self, version: Version) -> bool {
        let mut s = self.state(version.txn);
        if s.incarnation == version.incarnation && s.status == Status::Executed {
            s.status = Status::Aborting;
            return true;
        }
        false
    }

    /// Ends a validation task. After an abort, every higher transaction must be
    /// revalidated, and the aborted one is re-executed right away if the
    /// execution index has already passed it.
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
        self.num_active_tasks.fetch_sub(1, SeqCst);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_thread_walks_execute_then_validate() {
        let mut s = Scheduler::default();
        s.reset(2, true);
        let mut deps = Vec::new();
        let t0 = s.next_task();
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
        assert_eq!(s.next_task(), Some(Task::Validate(v0)));
        assert_eq!(s.finish_validation(0, false), None);
        let Some(Task::Execute(v1)) = s.next_task() else {
            panic!("expected execution of txn 1")
        };
        assert_eq!(v1.txn, 1);
        assert_eq!(s.finish_execution(v1, false, &mut deps), None);
        assert_eq!(s.next_task(), Some(Task::Validate(v1)));
        assert_eq!(s.finish_validation(1, false), None);
        assert!(!s.done());
        assert_eq!(s.next_task(), None);
        assert!(s.done());
    }

    #[test]
    fn abort_reincarnates_and_dependency_resumes() {
        let mut s = Scheduler::default();
        s.reset(2, true);
        let mut deps = Vec::new();
        let Some(Task::Execute(v0)) = s.next_task() else {
            panic!("expected execution of txn 0")
        };
        // The validation index (0) is behind the execution index (1), but txn 0 is
        // not executed yet: that attempt yields nothing; the next one executes 1.
        assert_eq!(s.next_task(), None);
        let Some(Task::Execute(v1)) = s.next_task() else {
            panic!("expected execution of txn 1")
        };
        assert_eq!(v1.txn, 1);
        // txn 1 reads an ESTIMATE of txn 0 while 0 is still executing.
        assert!(s.add_dependency(v1.txn, v0.txn));
        // Finishing 0 resumes 1 and hands back 0's validation as a continuation.
        assert_eq!(
            s.finish_execution(v0, false, &mut deps),
            Some(Task::Validate(v0))
        );
        assert_eq!(deps, vec![1]);
        assert_eq!(s.finish_validation(0, false), None);
        assert_eq!(
            s.next_task(),
            Some(Task::Execute(Version {
                txn: 1,
                incarnation: 1
            }))
        );
        // A stale validation of incarnation 0 cannot abort incarnation 1.
        assert!(!s.try_validation_abort(v1));
    }
}
