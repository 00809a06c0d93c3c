//! A replica's armed timers, shared by every protocol: when each was set to fire, so
//! that a firing cancelled or re-armed since (a stale one) is ignored, and the
//! `SetTimer` / `CancelTimer` actions that tell the driver.

use std::collections::BTreeMap;

use crate::protocol::Action;
use crate::types::Time;

/// The timers a replica armed, by kind, with their deadlines.
#[derive(Clone, Debug)]
pub(crate) struct Timers<T> {
    armed: BTreeMap<T, Time>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            armed: BTreeMap::new(),
        }
    }
}

impl<T: Ord + Copy> Timers<T> {
    /// Arms (or re-arms) `timer` for `at` and tells the driver.
    pub(crate) fn set<M, R>(&mut self, timer: T, at: Time, out: &mut Vec<Action<M, T, R>>) {
        self.armed.insert(timer, at);
        out.push(Action::SetTimer { timer, at });
    }

    /// Disarms `timer`, telling the driver if it was armed.
    pub(crate) fn cancel<M, R>(&mut self, timer: T, out: &mut Vec<Action<M, T, R>>) {
        if self.armed.remove(&timer).is_some() {
            out.push(Action::CancelTimer { timer });
        }
    }

    /// Records `timer` as armed for `at` without an action (the caller emits its own).
    pub(crate) fn insert(&mut self, timer: T, at: Time) {
        self.armed.insert(timer, at);
    }

    /// When `timer` is armed to fire, if it is.
    pub(crate) fn deadline(&self, timer: T) -> Option<Time> {
        self.armed.get(&timer).copied()
    }

    /// Whether `timer` is armed.
    pub(crate) fn is_armed(&self, timer: T) -> bool {
        self.armed.contains_key(&timer)
    }

    /// A firing of `timer` at `now`: disarms it and returns true if it was due, false
    /// if it was cancelled or re-armed for later (a stale firing).
    pub(crate) fn fire(&mut self, timer: T, now: Time) -> bool {
        match self.armed.get(&timer) {
            Some(deadline) if *deadline <= now => {
                self.armed.remove(&timer);
                true
            }
            _ => false,
        }
    }
}
