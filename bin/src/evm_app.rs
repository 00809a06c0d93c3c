//! The replicated EVM (`[execution] vm = "evm"`): revm behind consensus's
//! [`Application`], run by the executor the cluster file names (`executor_for` over
//! [`EvmVm`]). A request payload is one bincode [`EvmTx`], or under `[execution]
//! evm_auth = "secp256k1"` one signed transaction, Ethereum's bytes, whose sender
//! the executor recovers before the batch runs
//! (`tandem_experiments::payload::decode_evm_payload_as`); a result is the receipt's
//! status and gas used (`encode_evm_result`); a payload that does not decode gets an
//! empty result on every replica.
//!
//! The digest is the EVM state's chunk digest (`EvmChunks::digest`: SHA-256 over the
//! canonical entries' data chunks), and state transfer sends its manifest then its
//! data chunks, each verified before it is kept (`EvmChunkedRestore`).

use std::time::Instant;

use bytes::Bytes;
use tandem_consensus::application::{Application, ChunkRejected, FrozenState};
use tandem_consensus::{Batch, Digest, Seq};
use tandem_executor::evm::{EvmAuth, EvmChunkedRestore, EvmConfig, EvmState, EvmVm};
use tandem_executor::{Executor, ExecutorOptions, executor_for};
use tandem_experiments::payload::{decode_evm_payload_as, encode_evm_result};

use crate::ledger_app::ExecutionTotals;

/// The EVM state and the executor that applies batches to it.
pub struct EvmApp {
    state: EvmState,
    executor: Box<dyn Executor<EvmVm>>,
    totals: ExecutionTotals,
    pending: Option<EvmChunkedRestore>,
    /// Which payloads decode (`decode_evm_payload_as`).
    auth: EvmAuth,
}

impl EvmApp {
    /// Genesis `state` executed by the executor named `executor` with `threads`
    /// under the gas bounds of `config`.
    pub fn new(
        state: EvmState,
        config: EvmConfig,
        executor: &str,
        threads: usize,
        options: &ExecutorOptions,
    ) -> anyhow::Result<EvmApp> {
        Ok(EvmApp {
            state,
            executor: executor_for(EvmVm::new(config), executor, threads, options)?,
            totals: ExecutionTotals::default(),
            pending: None,
            auth: EvmAuth::Channel,
        })
    }

    /// The same application taking payloads authenticated as `auth` says (the
    /// cluster file's `[execution] evm_auth`; channel by default).
    pub fn with_auth(mut self, auth: EvmAuth) -> EvmApp {
        self.auth = auth;
        self
    }

    /// What the executor did so far.
    pub fn totals(&self) -> &ExecutionTotals {
        &self.totals
    }
}

/// A copy of the EVM state taken at a checkpoint.
struct FrozenEvm(EvmState);

impl FrozenState for FrozenEvm {
    fn encode(&self) -> Bytes {
        Bytes::from(self.0.chunks().encode())
    }

    /// The manifest, then the data chunks (each under 100 KiB whatever the bound).
    fn chunks(&self, _max_chunk_bytes: usize) -> Vec<Bytes> {
        self.0
            .chunks()
            .transfer()
            .into_iter()
            .map(Bytes::from)
            .collect()
    }
}

impl Application for EvmApp {
    fn execute(&mut self, _seq: Seq, batch: &Batch) -> Vec<Bytes> {
        let started = Instant::now();
        let mut txs = Vec::with_capacity(batch.len());
        let mut decoded = Vec::with_capacity(batch.len());
        for req in &batch.requests {
            match decode_evm_payload_as(self.auth, &req.payload) {
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
                if !receipt.status.is_success() {
                    self.totals.failed += 1;
                }
                encode_evm_result(receipt)
            })
            .collect();
        let t = &mut self.totals;
        t.transactions += txs.len() as u64;
        t.aborts += outcome.stats.validation_aborts;
        t.reexecutions += outcome.stats.reexecutions();
        t.batches += 1;
        t.busy_micros += started.elapsed().as_micros() as u64;
        if outcome.stats.picked.is_some() {
            t.last_pick = outcome.stats.picked.clone();
        }
        results
    }

    fn digest(&mut self) -> Digest {
        let started = Instant::now();
        let digest = self.state.chunks().digest();
        self.totals.busy_micros += started.elapsed().as_micros() as u64;
        Digest(digest)
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(self.state.chunks().encode())
    }

    fn freeze(&self) -> Box<dyn FrozenState> {
        Box::new(FrozenEvm(self.state.clone()))
    }

    fn restore(&mut self, snapshot: &[u8], expected: &Digest) -> bool {
        match EvmState::restore_chunks(snapshot, expected.0) {
            Ok(state) => {
                self.state = state;
                true
            }
            Err(_) => false,
        }
    }

    fn restore_begin(&mut self, expected: &Digest) {
        self.pending = Some(EvmChunkedRestore::new(expected.0));
    }

    fn restore_chunk(&mut self, index: u64, chunk: &[u8]) -> Result<(), ChunkRejected> {
        let pending = self
            .pending
            .as_mut()
            .ok_or_else(|| ChunkRejected("no restore in progress".into()))?;
        let index = usize::try_from(index)
            .map_err(|_| ChunkRejected(format!("chunk index {index} out of range")))?;
        pending
            .apply(index, chunk)
            .map_err(|e| ChunkRejected(e.to_string()))
    }

    fn restore_complete(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.is_complete())
    }

    fn restore_finish(&mut self) -> bool {
        match self.pending.take().map(EvmChunkedRestore::finish) {
            Some(Ok(state)) => {
                self.state = state;
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
    use tandem_executor::evm::{EvmWorkloadKind, EvmWorkloadSpec};
    use tandem_experiments::payload::{encode_evm_payload, evm_result_succeeded};

    /// `--payload` padding changes neither execution nor gas: the same transactions,
    /// unpadded and padded to 512 bytes (and to the bound), give byte-identical
    /// results (status and gas used) and the same digest, unsigned and signed
    /// (legacy and EIP-1559), on the sequential executor and Block-STM.
    #[test]
    fn padded_evm_payloads_execute_exactly_as_unpadded_ones() {
        use tandem_executor::evm::EvmAuth;
        use tandem_experiments::payload::MAX_EVM_PAYLOAD_BYTES;
        for auth in [EvmAuth::Channel, EvmAuth::Secp256k1] {
            let spec = EvmWorkloadSpec {
                accounts: 40,
                ..EvmWorkloadSpec::new(EvmWorkloadKind::EvmMixed)
            };
            let accounts = spec.accounts_for(auth);
            let (genesis, deployment) = spec.genesis_with(&accounts).unwrap();
            let txs: Vec<_> = spec
                .generator_with(&genesis, &deployment, &accounts)
                .unwrap()
                .batch(60)
                .into_iter()
                .map(|t| accounts.sign(t, tandem_executor::evm::CHAIN_ID).unwrap())
                .collect();
            let batch = |pad: usize| {
                Batch::new(
                    txs.iter()
                        .enumerate()
                        .map(|(i, t)| {
                            let p = encode_evm_payload(t, pad);
                            assert!(p.len() >= pad.min(MAX_EVM_PAYLOAD_BYTES));
                            Request::new(ClientId(0), i as u64 + 1, p)
                        })
                        .collect(),
                )
            };
            let config = EvmConfig {
                auth,
                ..EvmConfig::default()
            };
            let opts = ExecutorOptions::default();
            for executor in ["sequential", "block-stm"] {
                let mut runs = Vec::new();
                for pad in [0, 512, MAX_EVM_PAYLOAD_BYTES] {
                    let mut app = EvmApp::new(genesis.clone(), config, executor, 2, &opts)
                        .unwrap()
                        .with_auth(auth);
                    let results = app.execute(Seq(1), &batch(pad));
                    assert_eq!(app.totals().malformed, 0, "{auth} {executor} {pad}");
                    runs.push((results, app.digest()));
                }
                assert!(runs[0].0.iter().all(|r| r.len() == 9));
                let ok = runs[0]
                    .0
                    .iter()
                    .filter(|r| evm_result_succeeded(r) == Some(true))
                    .count();
                assert!(ok >= 50, "{auth} {executor}: {ok} of 60 succeeded");
                assert_eq!(runs[0], runs[1], "{auth} {executor}: 512");
                assert_eq!(runs[0], runs[2], "{auth} {executor}: the bound");
            }
        }
    }

    #[test]
    fn evm_app_executors_agree_and_state_transfers_by_chunks() {
        let spec = EvmWorkloadSpec {
            accounts: 50,
            ..EvmWorkloadSpec::new(EvmWorkloadKind::Uniswap)
        };
        let (genesis, deployment) = spec.genesis().unwrap();
        let mut generator = spec.generator(&genesis, &deployment).unwrap();
        let mut payloads: Vec<Bytes> = generator
            .batch(40)
            .iter()
            .map(|t| encode_evm_payload(t, 0))
            .collect();
        payloads.insert(5, Bytes::from_static(b"garbage"));
        let batch = Batch::new(
            payloads
                .into_iter()
                .enumerate()
                .map(|(i, p)| Request::new(ClientId(0), i as u64 + 1, p))
                .collect(),
        );
        let opts = ExecutorOptions::default();
        let config = EvmConfig::default();
        let mut seq = EvmApp::new(genesis.clone(), config, "sequential", 1, &opts).unwrap();
        let mut par = EvmApp::new(genesis.clone(), config, "block-stm", 2, &opts).unwrap();
        let r1 = seq.execute(Seq(1), &batch);
        let r2 = par.execute(Seq(1), &batch);
        assert_eq!(r1, r2);
        assert!(r1[5].is_empty());
        assert_eq!(seq.totals().malformed, 1);
        let ok = r1
            .iter()
            .filter(|r| evm_result_succeeded(r) == Some(true))
            .count();
        assert!(ok >= 35, "{ok} of 40 succeeded");
        let digest = seq.digest();
        assert_eq!(digest, par.digest());

        // A fresh replica takes the state chunk by chunk.
        let mut fresh = EvmApp::new(genesis, config, "sequential", 1, &opts).unwrap();
        assert_ne!(fresh.digest(), digest);
        let chunks = seq.freeze().chunks(1 << 20);
        fresh.restore_begin(&digest);
        for (i, c) in chunks.iter().enumerate() {
            fresh.restore_chunk(i as u64, c).unwrap();
        }
        assert!(fresh.restore_complete());
        assert!(fresh.restore_finish());
        assert_eq!(fresh.digest(), digest);
        // A whole snapshot under another digest is refused.
        assert!(!fresh.restore(&seq.snapshot(), &Digest([0; 32])));
        assert!(fresh.restore(&seq.snapshot(), &digest));
    }
}
