//! The executors' worker threads (`WorkerThreads`): spawned once per executor and
//! parked between batches; every parallel phase (signature checks, Block-STM, the
//! access-list schedule, digest leaves) is one `broadcast` onto them. (Named for
//! what they are: "pool" in this crate means an AMM pool, `amm::Pool`.)
//!
//! `broadcast(f)` runs `f(0)` on the calling thread and `f(1..threads)` on the
//! helpers, and returns only when every call has returned. That is what makes it
//! sound for `f` to borrow from the caller's stack: the erased-lifetime pointer
//! handed to helpers is never used after `broadcast` returns (the wait happens in
//! a drop guard, so it holds even if `f(0)` unwinds). A panicking helper is caught
//! and re-raised on the caller after the wait.
//!
//! A helper that has not started its call by the time `f(0)` returns does not get
//! it: the caller takes it and runs it itself, after `f(0)`. On a machine with
//! fewer free cores than threads a parked helper can take a scheduler time slice to
//! wake up; every phase here shares its work through the job itself (Block-STM's
//! indices, the access-list ready queue, `parallel_chunks`' shared iterator), so
//! the caller has usually done all of it by then and the late call finds nothing
//! left, instead of the caller waiting for a thread that was never needed. Hence
//! the rule for jobs: no call `f(i)` may wait for another call `f(j)` to make
//! progress (they may run one after another on one thread).
//!
//! Each call `f(i)` is taken exactly once, by helper `i` or by the caller, under
//! the control lock (`Control::taken`); `running` counts helpers that took theirs
//! and have not finished, and the caller's wait is for those only.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::error::Error;

/// Upper bound on worker threads per executor.
pub const MAX_THREADS: usize = 256;

type Job = dyn Fn(usize) + Sync;

/// A job pointer with its lifetime erased; valid while its broadcast is running.
#[derive(Clone, Copy)]
struct JobPtr(*const Job);

// SAFETY: the pointee is `Sync` (shared calls from many threads are allowed), and
// `broadcast` keeps it alive until every helper has finished using the pointer.
unsafe impl Send for JobPtr {}

struct Control {
    /// Incremented for every broadcast; helpers look at each epoch at most once.
    epoch: u64,
    job: Option<JobPtr>,
    /// `taken[i - 1]`: whether call `f(i)` of the current epoch was taken (by
    /// helper `i` or by the caller).
    taken: Vec<bool>,
    /// Helpers running a call of the current epoch.
    running: usize,
    panic: Option<Box<dyn std::any::Any + Send>>,
    shutdown: bool,
}

struct Shared {
    control: Mutex<Control>,
    start: Condvar,
    finished: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fixed set of threads (the caller counts as thread 0).
pub struct WorkerThreads {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    threads: usize,
    /// Serialises broadcasts from different callers.
    serial: Mutex<()>,
}

impl std::fmt::Debug for WorkerThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerThreads")
            .field("threads", &self.threads)
            .finish()
    }
}

impl WorkerThreads {
    /// `threads` threads: the caller plus `threads - 1` helpers.
    pub fn new(threads: usize) -> Result<WorkerThreads, Error> {
        if threads == 0 || threads > MAX_THREADS {
            return Err(Error::ThreadCount(threads));
        }
        let shared = Arc::new(Shared {
            control: Mutex::new(Control {
                epoch: 0,
                job: None,
                taken: vec![true; threads - 1],
                running: 0,
                panic: None,
                shutdown: false,
            }),
            start: Condvar::new(),
            finished: Condvar::new(),
        });
        let mut this = WorkerThreads {
            shared,
            helpers: Vec::with_capacity(threads - 1),
            threads,
            serial: Mutex::new(()),
        };
        for id in 1..threads {
            let shared = Arc::clone(&this.shared);
            let handle = std::thread::Builder::new()
                .name(format!("tandem-exec-{id}"))
                .spawn(move || helper_loop(&shared, id))
                .map_err(|e| Error::SpawnFailed(e.to_string()))?;
            // On error, dropping `this` shuts down the helpers started so far.
            this.helpers.push(handle);
        }
        Ok(this)
    }

    /// Number of threads, including the caller.
    pub fn count(&self) -> usize {
        self.threads
    }

    /// Runs `f(i)` for every `i in 0..count()` (`f(0)` on the calling thread, the
    /// others concurrently on the helpers, or after `f(0)` on the calling thread
    /// for helpers that had not started: module docs) and waits for all of them.
    pub fn broadcast<'a>(&self, f: &'a (dyn Fn(usize) + Sync + 'a)) {
        let _serial = lock(&self.serial);
        if self.threads == 1 {
            f(0);
            return;
        }
        // SAFETY: only the lifetime is erased; `Wait` below blocks until every
        // helper that took a call has finished with the pointer, and marks the
        // rest taken (so no helper reads it later), before this borrow ends.
        let erased: &'static Job =
            unsafe { std::mem::transmute::<&'a (dyn Fn(usize) + Sync + 'a), &'static Job>(f) };
        {
            let mut c = lock(&self.shared.control);
            c.job = Some(JobPtr(erased));
            c.taken.fill(false);
            c.epoch += 1;
        }
        self.shared.start.notify_all();

        struct Wait<'a>(&'a Shared);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                let mut c = lock(&self.0.control);
                c.taken.fill(true);
                while c.running > 0 {
                    c = self
                        .0
                        .finished
                        .wait(c)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                c.job = None;
            }
        }
        let wait = Wait(&self.shared);
        f(0);
        // Take the calls no helper has started.
        let mut left = Vec::new();
        {
            let mut c = lock(&self.shared.control);
            for (i, taken) in c.taken.iter_mut().enumerate() {
                if !*taken {
                    *taken = true;
                    left.push(i + 1);
                }
            }
        }
        for i in left {
            f(i);
        }
        drop(wait);
        let panic = lock(&self.shared.control).panic.take();
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
    }

    /// Splits `data` into chunks of `chunk` items and hands them out to the
    /// threads; `f(offset, chunk)` gets each chunk's starting index.
    pub fn parallel_chunks<T: Send>(
        &self,
        data: &mut [T],
        chunk: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        let chunk = chunk.max(1);
        let next = Mutex::new(data.chunks_mut(chunk).enumerate());
        self.broadcast(&|_| {
            loop {
                let item = lock(&next).next();
                match item {
                    Some((i, part)) => f(i * chunk, part),
                    None => break,
                }
            }
        });
    }
}

fn helper_loop(shared: &Shared, id: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut c = lock(&shared.control);
            while c.epoch == seen && !c.shutdown {
                c = shared.start.wait(c).unwrap_or_else(PoisonError::into_inner);
            }
            if c.shutdown {
                return;
            }
            seen = c.epoch;
            match c.job {
                Some(job) if !c.taken[id - 1] => {
                    c.taken[id - 1] = true;
                    c.running += 1;
                    job
                }
                // The caller took this call, or the broadcast is over.
                _ => continue,
            }
        };
        // SAFETY: the broadcaster keeps the job alive until `running` is back to
        // 0, which cannot happen before this helper decrements it below.
        let JobPtr(ptr) = job;
        let outcome = catch_unwind(AssertUnwindSafe(|| unsafe { (*ptr)(id) }));
        let mut c = lock(&shared.control);
        if let Err(payload) = outcome
            && c.panic.is_none()
        {
            c.panic = Some(payload);
        }
        c.running -= 1;
        if c.running == 0 {
            shared.finished.notify_all();
        }
    }
}

impl Drop for WorkerThreads {
    fn drop(&mut self) {
        lock(&self.shared.control).shutdown = true;
        self.shared.start.notify_all();
        for handle in self.helpers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Spin briefly, then yield: a worker with nothing to do waits for others that may be
/// about to publish work, and on a machine with fewer cores than threads they need
/// the CPU. `idle` counts consecutive idle turns; the caller resets it after work.
pub(crate) fn backoff(idle: &mut u32) {
    *idle = idle.saturating_add(1);
    if *idle < 32 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn broadcast_runs_every_index_once_per_call() {
        let threads = WorkerThreads::new(4).unwrap();
        for round in 0..50 {
            let hits: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
            threads.broadcast(&|i| {
                hits[i].fetch_add(round + 1, Ordering::SeqCst);
            });
            for h in &hits {
                assert_eq!(h.load(Ordering::SeqCst), round + 1);
            }
        }
    }

    #[test]
    fn parallel_chunks_cover_the_slice() {
        let threads = WorkerThreads::new(3).unwrap();
        let mut data = vec![0usize; 1000];
        threads.parallel_chunks(&mut data, 7, |offset, part| {
            for (i, x) in part.iter_mut().enumerate() {
                *x = offset + i;
            }
        });
        assert!(data.iter().enumerate().all(|(i, x)| *x == i));
    }

    #[test]
    fn helper_panic_reaches_the_caller_and_threads_survive() {
        let threads = WorkerThreads::new(2).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            threads.broadcast(&|i| {
                if i == 1 {
                    panic!("boom");
                }
            })
        }));
        assert!(result.is_err());
        let count = AtomicUsize::new(0);
        threads.broadcast(&|_| {
            count.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn calls_a_helper_has_not_started_run_on_the_caller() {
        let threads = WorkerThreads::new(3).unwrap();
        let caller = std::thread::current().id();
        for _ in 0..20 {
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            let on_caller = AtomicUsize::new(0);
            threads.broadcast(&|i| {
                hits[i].fetch_add(1, Ordering::SeqCst);
                if std::thread::current().id() == caller {
                    on_caller.fetch_add(1, Ordering::SeqCst);
                }
            });
            // Every call ran exactly once, wherever it ran.
            assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1));
            assert!(on_caller.load(Ordering::SeqCst) >= 1);
        }
        // A helper that is busy for long has its call taken by the caller when
        // the caller's own call is quick: the broadcast still runs all three.
        let slow = std::sync::Barrier::new(2);
        let count = AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                threads.broadcast(&|i| {
                    if i == 1 {
                        // Helper 1 (or the caller) waits here for the test.
                        slow.wait();
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                });
            });
            slow.wait();
        });
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn thread_count_is_checked() {
        assert!(matches!(WorkerThreads::new(0), Err(Error::ThreadCount(0))));
        assert_eq!(WorkerThreads::new(1).unwrap().count(), 1);
    }
}
