//! A test-and-test-and-set spin lock for Block-STM's per-key and per-transaction
//! critical sections, which are a few dozen instructions long and almost never
//! contended: taking it is one compare-exchange and releasing it one plain store
//! (a `std::sync::Mutex` pays an atomic swap on release too). A waiter spins
//! briefly and then yields (`threads::backoff`), so a holder descheduled on an
//! oversubscribed machine gets its CPU back.
//!
//! No poisoning: a panic while the lock is held releases it (the guard's drop) and
//! leaves the data as it was; Block-STM then abandons the batch, and the next one
//! starts from a full reset (`BlockStmExecutor::run` with `clean == false`).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::threads::backoff;

/// A value behind a spin lock (the flag first: `repr(C)`, so that it shares a
/// cache line with whatever precedes the lock).
#[derive(Default)]
#[repr(C)]
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one thread at a time (the
// Acquire on taking it and the Release on dropping the guard order the accesses),
// so sharing the lock shares `T` only by moving access between threads.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// An unlocked lock around `value`.
    pub(crate) fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock and takes it.
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut idle = 0;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                backoff(&mut idle);
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The value, through exclusive access (no locking needed).
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The value without taking the lock, for phases where the caller alone
    /// uses this lock (Block-STM's commit and reset, after every worker has
    /// finished: the join of the batch's broadcast orders their accesses before
    /// this one). Skips the compare-exchange and the releasing store.
    ///
    /// # Safety
    /// No other thread may use the lock or the value until the returned
    /// reference is dropped, and the lock must not be held.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get_unsynced(&self) -> &mut T {
        debug_assert!(!self.locked.load(Ordering::Relaxed), "lock held");
        // SAFETY: exclusive use, by the caller's contract.
        unsafe { &mut *self.value.get() }
    }
}

/// Access to a locked value; dropping it releases the lock.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this thread holds the lock, and the
        // `&mut self` borrow makes this the only reference through it.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_concurrent_writers() {
        let lock = SpinLock::new(0u64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        // A read-modify-write split in two: lost updates would show
                        // if two threads were inside at once.
                        let mut g = lock.lock();
                        let v = *g;
                        std::hint::black_box(&v);
                        *g = v + 1;
                    }
                });
            }
        });
        assert_eq!(*lock.lock(), 40_000);
    }
}
