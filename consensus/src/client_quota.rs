//! Per-client counts of the requests a proposer holds queued, for admission fairness
//! ([`crate::params::CommonParams::per_client_bound`]): one client cannot fill the
//! admission queue and leave every other client with busy refusals.

use std::collections::BTreeMap;

use crate::types::ClientId;

/// How many requests each client has queued (clients with none are not kept, so
/// the map holds at most one entry per queued request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueuedPerClient {
    counts: BTreeMap<ClientId, usize>,
}

impl QueuedPerClient {
    /// Requests of `client` queued.
    pub(crate) fn get(&self, client: ClientId) -> usize {
        self.counts.get(&client).copied().unwrap_or(0)
    }

    /// One more request of `client` queued.
    pub(crate) fn add(&mut self, client: ClientId) {
        let n = self.counts.entry(client).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// One request of `client` left the queue.
    pub(crate) fn remove(&mut self, client: ClientId) {
        if let Some(n) = self.counts.get_mut(&client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(&client);
            }
        }
    }

    /// Counts `clients` (one per queued request) afresh.
    pub(crate) fn recount(&mut self, clients: impl IntoIterator<Item = ClientId>) {
        self.counts.clear();
        for client in clients {
            self.add(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_client_and_forgets_clients_with_none() {
        let mut q = QueuedPerClient::default();
        q.add(ClientId(1));
        q.add(ClientId(1));
        q.add(ClientId(2));
        assert_eq!((q.get(ClientId(1)), q.get(ClientId(2))), (2, 1));
        q.remove(ClientId(2));
        q.remove(ClientId(2));
        assert_eq!(q.get(ClientId(2)), 0);
        assert!(!q.counts.contains_key(&ClientId(2)));
        q.recount([ClientId(3)]);
        assert_eq!((q.get(ClientId(1)), q.get(ClientId(3))), (0, 1));
    }
}
