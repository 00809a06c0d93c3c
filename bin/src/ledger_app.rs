//! The replicated application: the DeFi ledger of `tandem-executor` behind consensus's
//! [`Application`] interface. Each request payload is a bincode transaction, optionally
//! followed by zero bytes (padding, to model larger transactions); each result is the
//! bincode receipt. A payload that does not decode is not executed and gets an empty
//! result — the same on every replica — which clients count as malformed.
//!
//! [`Admission`] is the node's check before ordering a client request: a transaction
//! whose cost is above the cluster's `max_tx_cost` is refused (and counted) there, so
//! it never costs consensus or execution anything; if a Byzantine primary orders one
//! anyway, every executor aborts it with `cost_limit`.

use std::time::Instant;

use bytes::Bytes;
use tandem_consensus::application::{Application, ChunkRejected, FrozenState};
use tandem_consensus::{Batch, Digest, Seq};
use tandem_executor::{
    ChunkedRestore, ExecutionLimits, Executor, ExecutorOptions, State, executor_by_name,
};
use tandem_experiments::payload::decode_payload;

/// Running totals of what the executor did.
#[derive(Clone, Debug, Default)]
pub struct ExecutionTotals {
    /// Transactions executed (successful or aborted by their own checks).
    pub transactions: u64,
    /// Transactions whose receipt is an abort.
    pub failed: u64,
    /// Payloads that did not decode.
    pub malformed: u64,
    /// Block-STM validation aborts.
    pub aborts: u64,
    /// Executions beyond the first of each transaction.
    pub reexecutions: u64,
    /// Batches executed.
    pub batches: u64,
    /// Time spent executing, in microseconds.
    pub busy_micros: u64,
    /// What `auto` last picked.
    pub last_pick: Option<String>,
}

/// The ledger and the executor that applies batches to it.
pub struct LedgerApp {
    state: State,
    executor: Box<dyn Executor>,
    totals: ExecutionTotals,
    /// A chunked restore in progress.
    pending: Option<ChunkedRestore>,
    /// Batches executed since the digest was last computed.
    batches_since_digest: u64,
}

/// Batches after which an idle execution stage folds the pending changes into the
/// Merkle tree ahead of the checkpoint (`prepare_digest`). `tandem bench-exec --work 0
/// --workloads dex --accounts 10000 --pools 4 --zipf 0 --batch 500 --batches 256
/// --digest-every N`, sequential: 3.82 µs/tx at N = 1, 3.00 at 8, 1.81 at 32, 1.60 at
/// 128. At 32 a checkpoint interval of 128 folds at most four times, a quarter of
/// the checkpoint's stall each, for about a tenth more work than one fold.
const PREPARE_AFTER_BATCHES: u64 = 32;

impl LedgerApp {
    /// Genesis `state` executed by the executor named `executor` with `threads`.
    pub fn new(
        state: State,
        executor: &str,
        threads: usize,
        options: &ExecutorOptions,
    ) -> anyhow::Result<LedgerApp> {
        Ok(LedgerApp {
            state,
            executor: executor_by_name(executor, threads, options)?,
            totals: ExecutionTotals::default(),
            pending: None,
            batches_since_digest: 0,
        })
    }

    /// What the executor did so far.
    pub fn totals(&self) -> &ExecutionTotals {
        &self.totals
    }
}

/// A copy of the ledger taken at a checkpoint; serialising it (sorting every entry) is
/// the expensive part, done on the snapshot thread.
struct FrozenLedger(State);

impl FrozenState for FrozenLedger {
    fn encode(&self) -> Bytes {
        Bytes::from(self.0.snapshot())
    }

    /// Chunks of `State::snapshot_chunks` (a bound below
    /// `tandem_executor::MIN_CHUNK_BYTES` is raised to it).
    fn chunks(&self, max_chunk_bytes: usize) -> Vec<Bytes> {
        self.0
            .snapshot_chunks(max_chunk_bytes)
            .into_iter()
            .map(Bytes::from)
            .collect()
    }
}

/// The admission check the driver runs on every client request before the protocol
/// sees it. The default admits everything (the hash-chain application).
#[derive(Clone, Copy, Debug, Default)]
pub struct Admission {
    limits: Option<ExecutionLimits>,
}

impl Admission {
    /// Refuses transactions above `limits.max_tx_cost`.
    pub fn ledger(limits: ExecutionLimits) -> Admission {
        Admission {
            limits: Some(limits),
        }
    }

    /// Whether a request with this payload may be ordered. A payload that does not
    /// decode is admitted: it executes as an empty result at no cost.
    pub fn admits(&self, payload: &[u8]) -> bool {
        match (&self.limits, decode_payload(payload)) {
            (Some(limits), Some(tx)) => limits.admits(&tx).is_ok(),
            _ => true,
        }
    }
}

impl Application for LedgerApp {
    fn execute(&mut self, _seq: Seq, batch: &Batch) -> Vec<Bytes> {
        let started = Instant::now();
        let mut txs = Vec::with_capacity(batch.len());
        let mut decoded = Vec::with_capacity(batch.len());
        for req in &batch.requests {
            match decode_payload(&req.payload) {
                Some(tx) => {
                    txs.push(tx);
                    decoded.push(true);
                }
                None => decoded.push(false),
            }
        }
        let outcome = self.executor.execute(&mut self.state, &txs);
        let mut receipts = outcome.receipts.iter();
        let results = decoded
            .iter()
            .map(|ok| {
                if !ok {
                    self.totals.malformed += 1;
                    return Bytes::new();
                }
                let receipt = receipts.next().expect("one receipt per transaction");
                if !receipt.is_success() {
                    self.totals.failed += 1;
                }
                Bytes::from(receipt.encode().expect("receipts always encode"))
            })
            .collect();
        let t = &mut self.totals;
        t.transactions += txs.len() as u64;
        t.aborts += outcome.stats.validation_aborts;
        t.reexecutions += outcome.stats.reexecutions();
        t.batches += 1;
        self.batches_since_digest += 1;
        t.busy_micros += started.elapsed().as_micros() as u64;
        if outcome.stats.picked.is_some() {
            t.last_pick = outcome.stats.picked.clone();
        }
        results
    }

    /// Folds the changes since the last digest into the Merkle tree (on the
    /// executor's threads); the time counts as execution.
    fn digest(&mut self) -> Digest {
        let started = Instant::now();
        let digest = self.executor.digest(&mut self.state);
        self.totals.busy_micros += started.elapsed().as_micros() as u64;
        self.batches_since_digest = 0;
        Digest(digest)
    }

    /// The same fold, done while the execution stage is idle, once at least
    /// `PREPARE_AFTER_BATCHES` batches wait for it: folding after every batch would
    /// hash hot keys and the nodes above them once per batch again.
    fn prepare_digest(&mut self) {
        if self.batches_since_digest >= PREPARE_AFTER_BATCHES {
            self.digest();
        }
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(self.state.snapshot())
    }

    fn freeze(&self) -> Box<dyn FrozenState> {
        Box::new(FrozenLedger(self.state.clone()))
    }

    fn restore(&mut self, snapshot: &[u8], expected: &Digest) -> bool {
        match State::restore(snapshot) {
            Ok(mut state) => {
                let ok = state.digest() == expected.0;
                if ok {
                    self.state = state;
                }
                ok
            }
            Err(_) => false,
        }
    }

    fn restore_begin(&mut self, expected: &Digest) {
        self.pending = Some(ChunkedRestore::new(expected.0));
    }

    fn restore_chunk(&mut self, index: u64, chunk: &[u8]) -> Result<(), ChunkRejected> {
        let pending = self
            .pending
            .as_mut()
            .ok_or_else(|| ChunkRejected("no restore in progress".into()))?;
        let index = u32::try_from(index)
            .map_err(|_| ChunkRejected(format!("chunk index {index} out of range")))?;
        pending
            .apply(index, chunk)
            .map_err(|e| ChunkRejected(e.to_string()))
    }

    fn restore_complete(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.is_complete())
    }

    fn restore_finish(&mut self) -> bool {
        match self.pending.take().map(ChunkedRestore::finish) {
            Some(Ok(state)) => {
                self.state = state;
                self.batches_since_digest = 0;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_consensus::{ClientId, Request};
    use tandem_executor::{WorkloadKind, WorkloadSpec};
    use tandem_experiments::payload::encode_payload;

    fn batch_of(payloads: Vec<Vec<u8>>) -> Batch {
        Batch::new(
            payloads
                .into_iter()
                .enumerate()
                .map(|(i, p)| Request::new(ClientId(0), i as u64 + 1, Bytes::from(p)))
                .collect(),
        )
    }

    /// Folding while idle (`prepare_digest`) waits for `PREPARE_AFTER_BATCHES`
    /// batches and never changes a digest: an app that prepared after every batch
    /// and one that never did agree at every checkpoint-like digest.
    #[test]
    fn preparing_the_digest_while_idle_changes_no_digest() {
        let spec = WorkloadSpec {
            kind: WorkloadKind::Dex,
            accounts: 200,
            ..WorkloadSpec::default()
        };
        let mut generator = spec.generator(0, 1).unwrap();
        let opts = ExecutorOptions::default();
        let mut prepared = LedgerApp::new(spec.genesis().unwrap(), "block-stm", 2, &opts).unwrap();
        let mut plain = LedgerApp::new(spec.genesis().unwrap(), "sequential", 1, &opts).unwrap();
        let mut since = 0;
        for b in 1..=2 * PREPARE_AFTER_BATCHES {
            let payloads = (0..20)
                .map(|_| encode_payload(&generator.next_transaction(), 0).to_vec())
                .collect();
            let batch = batch_of(payloads);
            prepared.execute(Seq(b), &batch);
            plain.execute(Seq(b), &batch);
            since += 1;
            prepared.prepare_digest();
            // Folded exactly when enough batches waited.
            let folds = since == PREPARE_AFTER_BATCHES;
            assert_eq!(prepared.state.is_settled(), folds, "batch {b}");
            if folds || b % 24 == 0 {
                since = 0;
            }
            if b % 24 == 0 {
                assert_eq!(prepared.digest(), plain.digest(), "batch {b}");
            }
        }
        assert_eq!(prepared.digest(), plain.digest());
    }

    #[test]
    fn executes_transactions_and_marks_malformed_payloads() {
        let spec = WorkloadSpec::new(WorkloadKind::Dex);
        let mut generator = spec.generator(0, 1).unwrap();
        let mut payloads: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                encode_payload(
                    &generator.next_transaction(),
                    if i % 2 == 0 { 512 } else { 0 },
                )
                .to_vec()
            })
            .collect();
        payloads.insert(3, b"garbage".to_vec());
        let mut nonzero_padding = encode_payload(&generator.next_transaction(), 64).to_vec();
        *nonzero_padding.last_mut().unwrap() = 1;
        payloads.push(nonzero_padding);
        let batch = batch_of(payloads);
        let opts = ExecutorOptions::default();
        let mut seq_app = LedgerApp::new(spec.genesis().unwrap(), "sequential", 1, &opts).unwrap();
        let mut par_app = LedgerApp::new(spec.genesis().unwrap(), "block-stm", 2, &opts).unwrap();
        let r1 = seq_app.execute(Seq(1), &batch);
        let r2 = par_app.execute(Seq(1), &batch);
        let (d1, d2) = (seq_app.digest(), par_app.digest());
        assert_eq!(r1, r2);
        assert_eq!(d1, d2);
        assert_eq!(r1.len(), 22);
        assert!(r1[3].is_empty());
        assert!(r1[21].is_empty());
        assert!(!r1[4].is_empty());
        assert_eq!(seq_app.totals().malformed, 2);

        let mut restored = LedgerApp::new(spec.genesis().unwrap(), "sequential", 1, &opts).unwrap();
        assert!(!restored.restore(&seq_app.snapshot(), &Digest([0; 32])));
        assert!(!restored.restore(b"junk", &d1));
        assert!(restored.restore(&seq_app.snapshot(), &d1));
    }
}

#[cfg(test)]
mod admission_tests {
    use super::*;
    use tandem_executor::{Op, Receipt, Transaction};
    use tandem_experiments::payload::encode_payload;

    fn transfer(work: u32) -> Transaction {
        Transaction::new(
            1,
            1,
            Op::Transfer {
                to: 2,
                token: 0,
                amount: 1,
            },
        )
        .with_work(work)
    }

    /// `work = u32::MAX` (minutes of hashing on every replica) is refused before
    /// ordering; garbage is admitted (it costs nothing); the hash-chain app admits all.
    #[test]
    fn admission_refuses_transactions_above_the_cost_limit() {
        let admission = Admission::ledger(ExecutionLimits::default());
        assert!(admission.admits(&encode_payload(&transfer(100), 0)));
        assert!(!admission.admits(&encode_payload(&transfer(u32::MAX), 512)));
        assert!(admission.admits(b"garbage"));
        assert!(Admission::default().admits(&encode_payload(&transfer(u32::MAX), 0)));
    }

    /// If a Byzantine primary orders one anyway, it aborts at once on every replica.
    #[test]
    fn an_ordered_over_limit_transaction_aborts_without_running() {
        let genesis = State::from_entries([(
            tandem_executor::Key::Balance(1, 0),
            tandem_executor::Value::Amount(10),
        )])
        .unwrap();
        let mut app = LedgerApp::new(genesis, "block-stm", 2, &ExecutorOptions::default()).unwrap();
        let batch = Batch::new(vec![tandem_consensus::Request::new(
            tandem_consensus::ClientId(0),
            1,
            encode_payload(&transfer(u32::MAX), 0),
        )]);
        let started = Instant::now();
        let results = app.execute(Seq(1), &batch);
        assert!(started.elapsed().as_secs() < 60);
        assert_eq!(
            Receipt::decode(&results[0]).unwrap(),
            Receipt::Aborted(tandem_executor::AbortReason::CostLimit)
        );
    }
}

#[cfg(test)]
mod chunked_tests {
    use super::*;
    use tandem_executor::{MIN_CHUNK_BYTES, WorkloadKind, WorkloadSpec};

    /// A ledger far larger than one (test-sized) frame moves in verified chunks; a
    /// Byzantine sender's bad chunk is refused at once and an honest one's accepted.
    #[test]
    fn a_ledger_larger_than_a_frame_transfers_in_chunks() {
        let spec = WorkloadSpec {
            kind: WorkloadKind::Mixed,
            accounts: 3000,
            ..WorkloadSpec::default()
        };
        let opts = ExecutorOptions::default();
        let mut sender = LedgerApp::new(spec.genesis().unwrap(), "sequential", 1, &opts).unwrap();
        let mut generator = spec.generator(0, 1).unwrap();
        let payloads = (0..200)
            .map(|i| {
                tandem_consensus::Request::new(
                    tandem_consensus::ClientId(0),
                    i + 1,
                    tandem_experiments::payload::encode_payload(&generator.next_transaction(), 0),
                )
            })
            .collect();
        sender.execute(Seq(1), &Batch::new(payloads));
        let digest = sender.digest();
        let frame = MIN_CHUNK_BYTES;
        assert!(
            sender.snapshot().len() > 20 * frame,
            "the ledger must exceed a frame"
        );
        let chunks = sender.freeze().chunks(frame);
        assert!(chunks.iter().all(|c| c.len() <= frame));
        let mut receiver = LedgerApp::new(State::new(), "sequential", 1, &opts).unwrap();
        receiver.restore_begin(&digest);
        for (i, chunk) in chunks.iter().enumerate() {
            let mut bad = chunk.to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 0x40;
            assert!(receiver.restore_chunk(i as u64, &bad).is_err(), "chunk {i}");
            receiver.restore_chunk(i as u64, chunk).unwrap();
        }
        assert!(receiver.restore_complete());
        assert!(receiver.restore_finish());
        assert_eq!(receiver.snapshot(), sender.snapshot());
    }
}
