//! The application interface a replica's driver runs deliveries through — a pluggable
//! callback that turns a delivered batch into results and a state digest, and can
//! snapshot and restore its state for state transfer — and a hash-chain application
//! for the simulator and for measuring consensus without execution.

use bytes::Bytes;

use crate::request::Batch;
use crate::types::{Digest, Seq};

/// What a driver (the simulator, or a node's executor thread) needs from an
/// application. Execution must be deterministic: every replica computes the same
/// results and digest from the same state and batch.
pub trait Application: Send {
    /// Executes a delivered batch: one result per request, and the new state digest.
    fn execute(&mut self, seq: Seq, batch: &Batch) -> (Vec<Bytes>, Digest);
    /// The current state, serialised.
    fn snapshot(&self) -> Bytes;
    /// A copy of the current state, cheap to take, to serialise later off the
    /// execution path (a node serialises checkpoints on another thread). By default
    /// the state is serialised at once.
    fn freeze(&self) -> Box<dyn FrozenState> {
        Box::new(EncodedState(self.snapshot()))
    }
    /// Replaces the state with `snapshot` if it decodes and its digest is `expected`.
    fn restore(&mut self, snapshot: &[u8], expected: &Digest) -> bool;
}

/// A frozen copy of an application's state.
pub trait FrozenState: Send {
    /// The serialised state ([`Application::snapshot`] of the state at freezing time).
    fn encode(&self) -> Bytes;
}

/// A state already serialised.
pub struct EncodedState(pub Bytes);

impl FrozenState for EncodedState {
    fn encode(&self) -> Bytes {
        self.0.clone()
    }
}

/// A hash-chain application: the state is a running digest over every executed request
/// and a count. Any divergence in order or content changes every later digest.
#[derive(Clone, Debug, Default)]
pub struct HashChainApp {
    chain: Digest,
    executed: u64,
}

impl HashChainApp {
    /// The digest of the current state.
    pub fn digest(&self) -> Digest {
        Digest::of(&[
            b"hash-chain-app",
            &self.chain.0,
            &self.executed.to_le_bytes(),
        ])
    }
}

impl Application for HashChainApp {
    fn execute(&mut self, seq: Seq, batch: &Batch) -> (Vec<Bytes>, Digest) {
        let mut results = Vec::with_capacity(batch.len());
        for req in &batch.requests {
            self.chain = Digest::of(&[
                &self.chain.0,
                &req.client.0.to_le_bytes(),
                &req.number.to_le_bytes(),
                &req.payload,
            ]);
            self.executed += 1;
            let mut result = Vec::with_capacity(16);
            result.extend_from_slice(&self.chain.0[..8]);
            result.extend_from_slice(&seq.0.to_le_bytes());
            results.push(Bytes::from(result));
        }
        (results, self.digest())
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::with_capacity(40);
        out.extend_from_slice(&self.chain.0);
        out.extend_from_slice(&self.executed.to_le_bytes());
        Bytes::from(out)
    }

    fn restore(&mut self, snapshot: &[u8], expected: &Digest) -> bool {
        if snapshot.len() != 40 {
            return false;
        }
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&snapshot[..32]);
        let mut count = [0u8; 8];
        count.copy_from_slice(&snapshot[32..]);
        let candidate = HashChainApp {
            chain: Digest(chain),
            executed: u64::from_le_bytes(count),
        };
        if candidate.digest() != *expected {
            return false;
        }
        *self = candidate;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use crate::types::ClientId;

    #[test]
    fn snapshot_restores_the_same_digest_and_rejects_garbage() {
        let mut a = HashChainApp::default();
        let batch = Batch::new(vec![Request {
            client: ClientId(1),
            number: 1,
            payload: Bytes::from_static(b"x"),
        }]);
        let (results, digest) = a.execute(Seq(1), &batch);
        assert_eq!(results.len(), 1);
        let mut b = HashChainApp::default();
        assert!(!b.restore(b"short", &digest));
        assert!(!b.restore(&a.snapshot(), &Digest::default()));
        assert!(b.restore(&a.snapshot(), &digest));
        assert_eq!(b.digest(), digest);
    }
}
