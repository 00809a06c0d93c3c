//! Where a PBFT client sends a new request: to the primary of the highest view that
//! f+1 replicas reported in their replies (so at least one correct replica is in it;
//! a lone faulty replica cannot lure clients to a view nobody runs).

use std::collections::BTreeMap;

use crate::client::{ClientRouting, Destination};
use crate::types::{ReplicaId, View, kth_highest_view, max_faulty};

/// PBFT's [`ClientRouting`]: the primary of the (f+1)-th highest reported view.
#[derive(Debug)]
pub struct PrimaryRouting {
    replicas: usize,
    weak: usize,
    reported_views: BTreeMap<ReplicaId, View>,
    view: View,
}

impl PrimaryRouting {
    /// The policy for an `replicas`-replica cluster, starting at view 0.
    pub fn new(replicas: usize) -> PrimaryRouting {
        PrimaryRouting {
            replicas,
            weak: max_faulty(replicas) + 1,
            reported_views: BTreeMap::new(),
            view: View(0),
        }
    }

    /// The view the client follows.
    pub fn view(&self) -> View {
        self.view
    }
}

impl ClientRouting for PrimaryRouting {
    /// Adopts the highest view that at least f+1 replicas reported.
    fn on_reply(&mut self, replica: ReplicaId, view: View) {
        let v = self.reported_views.entry(replica).or_insert(View(0));
        if view <= *v {
            // Nothing new (the common case, reply after reply): a replica's view at
            // or below what it reported before cannot raise the (f+1)-th highest.
            return;
        }
        *v = (*v).max(view);
        if let Some(vouched) = kth_highest_view(self.reported_views.values().copied(), self.weak) {
            self.view = self.view.max(vouched);
        }
    }

    fn destination(&self) -> Destination {
        Destination::One(self.view.primary(self.replicas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_view_only_once_f_plus_one_replicas_report_it() {
        let mut r = PrimaryRouting::new(4);
        assert_eq!(r.destination(), Destination::One(ReplicaId(0)));
        r.on_reply(ReplicaId(1), View(5));
        assert_eq!(
            r.destination(),
            Destination::One(ReplicaId(0)),
            "one is not enough"
        );
        r.on_reply(ReplicaId(2), View(1));
        assert_eq!(r.view(), View(1), "the 2nd highest of {{5, 1}}");
        assert_eq!(r.destination(), Destination::One(ReplicaId(1)));
        r.on_reply(ReplicaId(2), View(0));
        assert_eq!(r.view(), View(1), "never goes back");
        r.on_reply(ReplicaId(3), View(6));
        assert_eq!(
            r.destination(),
            Destination::One(ReplicaId(1)),
            "5 = primary r1"
        );
        assert_eq!(r.view(), View(5));
    }
}
