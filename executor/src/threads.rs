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
    /// Incremented for every broadcast; helpers run each epoch exactly once.
    epoch: u64,
    job: Option<JobPtr>,
    /// Helpers that have not finished the current epoch.
    pending: usize,
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
                pending: 0,
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

    /// Runs `f(i)` for every `i in 0..count()` concurrently (`f(0)` on the
    /// calling thread) and waits for all of them.
    pub fn broadcast<'a>(&self, f: &'a (dyn Fn(usize) + Sync + 'a)) {
        let _serial = lock(&self.serial);
        if self.threads == 1 {
            f(0);
            return;
        }
        // SAFETY: only the lifetime is erased; `Wait` below blocks until all
        // helpers have finished with the pointer, before this borrow ends.
        let erased: &'static Job =
            unsafe { std::mem::transmute::<&'a (dyn Fn(usize) + Sync + 'a), &'static Job>(f) };
        {
            let mut c = lock(&self.shared.control);
            c.job = Some(JobPtr(erased));
            c.pending = self.threads - 1;
            c.epoch += 1;
        }
        self.shared.start.notify_all();

        struct Wait<'a>(&'a Shared);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                let mut c = lock(&self.0.control);
                while c.pending > 0 {
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
            c.job
        };
        let outcome = match job {
            // SAFETY: the broadcaster keeps the job alive until `pending` reaches 0,
            // which cannot happen before this helper decrements it below.
            Some(JobPtr(ptr)) => catch_unwind(AssertUnwindSafe(|| unsafe { (*ptr)(id) })),
            None => Ok(()),
        };
        let mut c = lock(&shared.control);
        if let Err(payload) = outcome
            && c.panic.is_none()
        {
            c.panic = Some(payload);
        }
        c.pending -= 1;
        if c.pending == 0 {
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
    fn thread_count_is_checked() {
        assert!(matches!(WorkerThreads::new(0), Err(Error::ThreadCount(0))));
        assert_eq!(WorkerThreads::new(1).unwrap().count(), 1);
    }
}
