//! The application interface a replica's driver runs deliveries through — a pluggable
//! callback that turns a delivered batch into results and a state digest, and can
//! snapshot and restore its state for state transfer — and a hash-chain application
//! for the simulator and for measuring consensus without execution.
//!
//! State transfer comes in two forms. Single frame: [`FrozenState::encode`] on the
//! sender, [`Application::restore`] on the receiver. Chunked (for states larger than
//! a frame, and to catch a Byzantine sender at its first bad chunk): the sender cuts
//! its checkpoint's frozen state with [`FrozenState::chunks`] (their number is the
//! vector's length) and serves chunk `i` on request; the receiver calls
//! [`Application::restore_begin`] with the certified digest, then
//! [`Application::restore_chunk`] for `i = 0, 1, …` — each chunk is verified against
//! the digest on its own before it is kept, and a refused one changes nothing (ask
//! another replica for the same index) — until [`Application::restore_complete`],
//! and installs the state with [`Application::restore_finish`].

use bytes::Bytes;

use crate::request::Batch;
use crate::types::{Digest, Seq};

/// What a driver (the simulator, or a node's executor thread) needs from an
/// application. Execution must be deterministic: every replica computes the same
/// results and digest from the same state and batch.
pub trait Application: Send {
    /// Executes a delivered batch: one result per request.
    fn execute(&mut self, seq: Seq, batch: &Batch) -> Vec<Bytes>;
    /// The digest of the current state (after the last executed batch). It may cost
    /// work proportional to what changed since the last call (the ledger folds its
    /// changes into a Merkle tree here), so a node's driver asks for it only at
    /// checkpoints; the simulator asks after every batch, for its checker.
    fn digest(&mut self) -> Digest;
    /// Does now, while its driver has nothing else to execute, the work the next
    /// [`Application::digest`] would do (the ledger folds pending changes into its
    /// Merkle tree), so that a checkpoint finds less of it left. Never changes the
    /// state or a digest. By default nothing.
    fn prepare_digest(&mut self) {}
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
    /// Starts a chunked restore towards the state whose digest is `expected` (a
    /// stable checkpoint's), forgetting any restore in progress. The current state
    /// is untouched until `restore_finish`. Applications that cut chunks must
    /// implement all four chunk methods; by default chunks are refused.
    fn restore_begin(&mut self, expected: &Digest) {
        let _ = expected;
    }
    /// Verifies chunk `index` (chunks go in order from 0) against the digest given to
    /// `restore_begin` and keeps it only if it verifies; an error says why.
    fn restore_chunk(&mut self, index: u64, chunk: &[u8]) -> Result<(), ChunkRejected> {
        let _ = (index, chunk);
        Err(ChunkRejected("chunked restore is not supported".into()))
    }
    /// Whether every chunk of the restore in progress has been kept.
    fn restore_complete(&self) -> bool {
        false
    }
    /// Installs the restored state if it is complete and has the expected digest;
    /// the restore ends either way.
    fn restore_finish(&mut self) -> bool {
        false
    }
}

/// Why a state chunk was refused (not in order, malformed, or not matching the
/// certified digest).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("state chunk refused: {0}")]
pub struct ChunkRejected(pub String);

/// A frozen copy of an application's state.
pub trait FrozenState: Send {
    /// The serialised state ([`Application::snapshot`] of the state at freezing time).
    fn encode(&self) -> Bytes;
    /// The state as chunks of at most `max_chunk_bytes` each (an application may
    /// raise a bound too small to hold its proofs, and says so), in order, each
    /// verifiable on its own by [`Application::restore_chunk`]. By default one
    /// chunk: the whole encoding.
    fn chunks(&self, max_chunk_bytes: usize) -> Vec<Bytes> {
        let _ = max_chunk_bytes;
        vec![self.encode()]
    }
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
///
/// Its state is 40 bytes, so a chunked transfer is one chunk: the snapshot itself,
/// verified by its digest.
#[derive(Clone, Debug, Default)]
pub struct HashChainApp {
    chain: Digest,
    executed: u64,
    /// A chunked restore in progress: the expected digest, and the state once its
    /// one chunk verified.
    pending: Option<(Digest, Option<(Digest, u64)>)>,
}

impl HashChainApp {
    /// The digest of the current state (O(1)).
    pub fn chain_digest(&self) -> Digest {
        Digest::of(&[
            b"hash-chain-app",
            &self.chain.0,
            &self.executed.to_le_bytes(),
        ])
    }
}

impl Application for HashChainApp {
    fn execute(&mut self, seq: Seq, batch: &Batch) -> Vec<Bytes> {
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
        results
    }

    fn digest(&mut self) -> Digest {
        self.chain_digest()
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::with_capacity(40);
        out.extend_from_slice(&self.chain.0);
        out.extend_from_slice(&self.executed.to_le_bytes());
        Bytes::from(out)
    }

    fn restore(&mut self, snapshot: &[u8], expected: &Digest) -> bool {
        match Self::decode(snapshot, expected) {
            Some((chain, executed)) => {
                self.chain = chain;
                self.executed = executed;
                true
            }
            None => false,
        }
    }

    fn restore_begin(&mut self, expected: &Digest) {
        self.pending = Some((*expected, None));
    }

    fn restore_chunk(&mut self, index: u64, chunk: &[u8]) -> Result<(), ChunkRejected> {
        let Some((expected, kept)) = &mut self.pending else {
            return Err(ChunkRejected("no restore in progress".into()));
        };
        if index != 0 || kept.is_some() {
            return Err(ChunkRejected(format!(
                "chunk {index}: the state is one chunk"
            )));
        }
        let state = Self::decode(chunk, expected)
            .ok_or_else(|| ChunkRejected("chunk 0 does not have the expected digest".into()))?;
        *kept = Some(state);
        Ok(())
    }

    fn restore_complete(&self) -> bool {
        matches!(self.pending, Some((_, Some(_))))
    }

    fn restore_finish(&mut self) -> bool {
        match self.pending.take() {
            Some((_, Some((chain, executed)))) => {
                self.chain = chain;
                self.executed = executed;
                true
            }
            _ => false,
        }
    }
}

impl HashChainApp {
    /// The state in a 40-byte snapshot, if its digest is `expected`.
    fn decode(snapshot: &[u8], expected: &Digest) -> Option<(Digest, u64)> {
        if snapshot.len() != 40 {
            return None;
        }
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&snapshot[..32]);
        let mut count = [0u8; 8];
        count.copy_from_slice(&snapshot[32..]);
        let candidate = HashChainApp {
            chain: Digest(chain),
            executed: u64::from_le_bytes(count),
            pending: None,
        };
        (candidate.chain_digest() == *expected).then_some((candidate.chain, candidate.executed))
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
        let batch = Batch::new(vec![Request::new(ClientId(1), 1, Bytes::from_static(b"x"))]);
        let results = a.execute(Seq(1), &batch);
        let digest = a.digest();
        assert_eq!(results.len(), 1);
        let mut b = HashChainApp::default();
        assert!(!b.restore(b"short", &digest));
        assert!(!b.restore(&a.snapshot(), &Digest::default()));
        assert!(b.restore(&a.snapshot(), &digest));
        assert_eq!(b.digest(), digest);
    }

    #[test]
    fn chunked_restore_is_one_verified_chunk() {
        let mut a = HashChainApp::default();
        let batch = Batch::new(vec![Request::new(ClientId(1), 1, Bytes::from_static(b"x"))]);
        a.execute(Seq(1), &batch);
        let digest = a.digest();
        let chunks = a.freeze().chunks(1 << 20);
        assert_eq!(chunks.len(), 1);
        let mut b = HashChainApp::default();
        assert!(b.restore_chunk(0, &chunks[0]).is_err(), "no restore begun");
        b.restore_begin(&Digest::default());
        assert!(b.restore_chunk(0, &chunks[0]).is_err(), "another digest");
        b.restore_begin(&digest);
        assert!(b.restore_chunk(1, &chunks[0]).is_err());
        let mut flipped = chunks[0].to_vec();
        flipped[3] ^= 1;
        assert!(b.restore_chunk(0, &flipped).is_err());
        assert!(!b.restore_complete());
        b.restore_chunk(0, &chunks[0]).unwrap();
        assert!(b.restore_chunk(0, &chunks[0]).is_err(), "duplicate");
        assert!(b.restore_complete());
        assert_eq!(
            b.digest(),
            HashChainApp::default().digest(),
            "untouched until finish"
        );
        assert!(b.restore_finish());
        assert_eq!(b.digest(), digest);
        assert!(!b.restore_finish());
    }
}
