//! Chunked snapshots: the state as a sequence of bounded chunks, each verifiable on
//! its own against the certified state digest (the Merkle root of `merkle.rs`), so a
//! receiver checks every chunk before accepting it, catches a Byzantine sender at
//! its first bad chunk, and can receive a ledger larger than one frame.
//!
//! A chunk covers a contiguous range of buckets `[first, end)` with all their
//! entries, and carries the range proof (the hashes of the maximal subtrees outside
//! the range). The receiver recomputes the range's bucket hashes from the entries
//! and folds them with the proof: only the exact entries of those buckets give the
//! certified root, so a chunk with a changed, missing or extra entry is refused.
//! Chunks must arrive in order (chunk `i` starts where chunk `i - 1` ended, the
//! first at bucket 0), which catches reordering, duplication and omission; the last
//! ends at bucket 65536. Format (integers big-endian):
//!
//! ```text
//! magic   "TNDMCHK1"                         8 bytes
//! root    the state digest                  32 bytes
//! index   chunk number, from 0               4 bytes
//! first   first bucket of the range          4 bytes
//! end     one past the last bucket           4 bytes
//! proofs  number of proof hashes (≤ 120)     4 bytes, then 32 bytes each
//! count   number of entries                  8 bytes
//! entries key ‖ value (encoding.rs), ordered by (bucket, key), strictly
//! ```
//!
//! A chunk holds whole buckets, so the byte bound is exceeded only by a chunk made of
//! a single bucket larger than the bound (about N / 65536 entries per bucket).

use crate::encoding::{
    Buf, MAX_KEY_LEN, MAX_VALUE_LEN, MIN_ENTRY_LEN, Reader, encode_key, encode_value,
};
use crate::error::Error;
use crate::merkle::{BUCKETS, Hash, MAX_PROOF, bucket_hash, bucket_of, leaf_hash, root_from_range};
use crate::state::{Key, State, Value, check_entry};

const MAGIC: [u8; 8] = *b"TNDMCHK1";
/// Bytes of a chunk before its entries, at most.
const OVERHEAD: usize = 8 + 32 + 4 + 4 + 4 + 4 + 32 * MAX_PROOF + 8;
/// The smallest byte bound `snapshot_chunks` accepts (a larger one is used as given).
pub const MIN_CHUNK_BYTES: usize = OVERHEAD + 1024;

fn encode_entry(key: &Key, value: &Value, out: &mut Vec<u8>) {
    let mut buf = Buf::<{ MAX_KEY_LEN + MAX_VALUE_LEN }>::new();
    encode_key(key, &mut buf);
    encode_value(value, &mut buf);
    out.extend_from_slice(buf.as_slice());
}

impl State {
    /// The state as chunks of at most `max_chunk_bytes` each (raised to
    /// `MIN_CHUNK_BYTES`; see the module docs for the one exception), in order.
    /// An unsettled state is cut from a settled copy (`State::settled`).
    pub fn snapshot_chunks(&self, max_chunk_bytes: usize) -> Vec<Vec<u8>> {
        self.settled().cut_chunks(max_chunk_bytes)
    }

    /// `snapshot_chunks` of a settled state.
    fn cut_chunks(&self, max_chunk_bytes: usize) -> Vec<Vec<u8>> {
        let bound = max_chunk_bytes.max(MIN_CHUNK_BYTES);
        let tree = self.tree();
        let root = tree.root();
        let mut chunks = Vec::new();
        let mut first = 0u32;
        let mut body: Vec<u8> = Vec::new();
        let mut count = 0u64;
        let mut bucket_bytes: Vec<u8> = Vec::new();
        let close = |chunks: &mut Vec<Vec<u8>>, first: u32, end: u32, body: &[u8], count: u64| {
            let proof = tree.range_proof(first, end);
            let mut out = Vec::with_capacity(OVERHEAD + body.len());
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&root);
            out.extend_from_slice(&(chunks.len() as u32).to_be_bytes());
            out.extend_from_slice(&first.to_be_bytes());
            out.extend_from_slice(&end.to_be_bytes());
            out.extend_from_slice(&(proof.len() as u32).to_be_bytes());
            for h in &proof {
                out.extend_from_slice(h);
            }
            out.extend_from_slice(&count.to_be_bytes());
            out.extend_from_slice(body);
            chunks.push(out);
        };
        for b in 0..BUCKETS {
            bucket_bytes.clear();
            let keys = tree.bucket(b);
            for (key, _) in keys {
                if let Some(value) = self.get(key) {
                    encode_entry(key, &value, &mut bucket_bytes);
                }
            }
            if b > first && OVERHEAD + body.len() + bucket_bytes.len() > bound {
                close(&mut chunks, first, b, &body, count);
                first = b;
                body.clear();
                count = 0;
            }
            body.extend_from_slice(&bucket_bytes);
            count += keys.len() as u64;
        }
        close(&mut chunks, first, BUCKETS, &body, count);
        chunks
    }
}

/// A restore in progress: chunks verified and applied in order, then `finish`.
#[derive(Debug)]
pub struct ChunkedRestore {
    expected: Hash,
    next_index: u32,
    next_bucket: u32,
    entries: Vec<(Key, Value)>,
}

impl ChunkedRestore {
    /// Starts a restore towards the state whose digest is `expected` (certified).
    pub fn new(expected: [u8; 32]) -> ChunkedRestore {
        ChunkedRestore {
            expected,
            next_index: 0,
            next_bucket: 0,
            entries: Vec::new(),
        }
    }

    /// The index of the chunk `apply` expects next.
    pub fn next_index(&self) -> u32 {
        self.next_index
    }

    /// Whether every bucket has arrived.
    pub fn is_complete(&self) -> bool {
        self.next_bucket == BUCKETS
    }

    /// Verifies chunk `index` against the expected root and, only if it verifies,
    /// keeps its entries. Refuses (and keeps nothing of) a chunk out of order, for
    /// another root, malformed, or whose entries and proof do not give the root.
    pub fn apply(&mut self, index: u32, chunk: &[u8]) -> Result<(), Error> {
        let fail = |reason: String| Error::Chunk { index, reason };
        let at = |e: crate::encoding::DecodeError| fail(format!("byte {}: {}", e.offset, e.reason));
        if index != self.next_index {
            return Err(fail(format!("expected chunk {}", self.next_index)));
        }
        let mut r = Reader::new(chunk);
        if r.take::<8>().map_err(at)? != MAGIC {
            return Err(fail("not a tandem state chunk (bad magic)".into()));
        }
        if r.take::<32>().map_err(at)? != self.expected {
            return Err(fail("made for another state digest".into()));
        }
        let u32_ = |r: &mut Reader<'_>| r.take::<4>().map(u32::from_be_bytes).map_err(at);
        let claimed = u32_(&mut r)?;
        let (first, end) = (u32_(&mut r)?, u32_(&mut r)?);
        if claimed != index {
            return Err(fail(format!("carries index {claimed}")));
        }
        if first != self.next_bucket {
            return Err(fail(format!(
                "starts at bucket {first}, expected {}",
                self.next_bucket
            )));
        }
        if end <= first || end > BUCKETS {
            return Err(fail(format!(
                "bucket range {first}..{end} is empty or out of bounds"
            )));
        }
        let proofs = u32_(&mut r)? as usize;
        if proofs > MAX_PROOF {
            return Err(fail(format!("{proofs} proof hashes (at most {MAX_PROOF})")));
        }
        let proof: Vec<Hash> = (0..proofs)
            .map(|_| r.take::<32>().map_err(at))
            .collect::<Result<_, _>>()?;
        let count = r.u64().map_err(at)?;
        if count > (r.remaining() / MIN_ENTRY_LEN) as u64 {
            return Err(fail("entry count larger than the chunk can hold".into()));
        }
        let mut entries: Vec<(u32, Key, Value)> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let offset = r.position();
            let key = r.key().map_err(at)?;
            let value = r.value().map_err(at)?;
            let bucket = bucket_of(&key);
            if bucket < first || bucket >= end {
                return Err(fail(format!(
                    "byte {offset}: entry outside the chunk's buckets"
                )));
            }
            if entries
                .last()
                .is_some_and(|(b, k, _)| (*b, *k) >= (bucket, key))
            {
                return Err(fail(format!(
                    "byte {offset}: entries not in (bucket, key) order"
                )));
            }
            check_entry(&key, &value).map_err(|reason| fail(format!("byte {offset}: {reason}")))?;
            if value.is_default() {
                return Err(fail(format!(
                    "byte {offset}: default value stored (not canonical)"
                )));
            }
            entries.push((bucket, key, value));
        }
        if r.remaining() != 0 {
            return Err(fail(format!("byte {}: trailing bytes", r.position())));
        }
        // Bucket hashes of the range's non-empty buckets, in bucket order.
        let mut hashes: Vec<(u32, Hash)> = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let b = entries[i].0;
            let j = entries[i..]
                .iter()
                .position(|e| e.0 != b)
                .map_or(entries.len(), |n| i + n);
            let leaves: Vec<Hash> = entries[i..j]
                .iter()
                .map(|(_, k, v)| leaf_hash(k, v))
                .collect();
            hashes.push((b, bucket_hash(&leaves)));
            i = j;
        }
        let bucket = |b: u32| match hashes.binary_search_by_key(&b, |(x, _)| *x) {
            Ok(i) => hashes[i].1,
            Err(_) => crate::merkle::EMPTY,
        };
        if root_from_range(first, end, &bucket, &proof) != Some(self.expected) {
            return Err(fail(
                "entries and proof do not give the certified digest".into(),
            ));
        }
        self.entries
            .extend(entries.into_iter().map(|(_, k, v)| (k, v)));
        self.next_bucket = end;
        self.next_index += 1;
        Ok(())
    }

    /// The restored state, once every chunk has arrived (its digest is the expected
    /// one: each chunk was checked against it).
    pub fn finish(self) -> Result<State, Error> {
        if !self.is_complete() {
            return Err(Error::Chunk {
                index: self.next_index,
                reason: format!("missing: buckets {}.. have not arrived", self.next_bucket),
            });
        }
        let mut entries = self.entries;
        entries.sort_unstable_by_key(|(k, _)| *k);
        let mut state = State::new();
        state.insert_verified(&entries);
        if state.digest() != self.expected {
            return Err(Error::Chunk {
                index: self.next_index,
                reason: "the assembled state does not have the certified digest".into(),
            });
        }
        Ok(state)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{WorkloadKind, WorkloadSpec};

    fn ledger(accounts: u64) -> State {
        WorkloadSpec {
            kind: WorkloadKind::Mixed,
            accounts,
            signed: true,
            ..WorkloadSpec::default()
        }
        .genesis()
        .unwrap()
    }

    fn restore_all(root: [u8; 32], chunks: &[Vec<u8>]) -> Result<State, Error> {
        let mut r = ChunkedRestore::new(root);
        for (i, c) in chunks.iter().enumerate() {
            r.apply(i as u32, c)?;
        }
        r.finish()
    }

    #[test]
    fn chunks_are_bounded_verify_and_rebuild_the_state() {
        let mut state = ledger(2000);
        for bound in [MIN_CHUNK_BYTES, 16 << 10, 1 << 30] {
            let chunks = state.snapshot_chunks(bound);
            assert!(chunks.iter().all(|c| c.len() <= bound), "bound {bound}");
            if bound == MIN_CHUNK_BYTES {
                assert!(chunks.len() > 20, "{} chunks", chunks.len());
            } else if bound == 1 << 30 {
                assert_eq!(chunks.len(), 1);
            }
            let mut back = restore_all(state.digest(), &chunks).unwrap();
            assert!(back == state);
            assert_eq!(back.digest(), state.digest());
            assert!(back.has_public_keys());
        }
        let mut empty = State::new();
        let chunks = empty.snapshot_chunks(0);
        assert_eq!(chunks.len(), 1);
        assert!(restore_all(empty.digest(), &chunks).unwrap() == empty);
    }

    #[test]
    fn reordering_duplication_omission_and_another_root_are_caught() {
        let mut state = ledger(800);
        let chunks = state.snapshot_chunks(MIN_CHUNK_BYTES);
        assert!(chunks.len() >= 4);
        let root = state.digest();
        // Reordered: chunk 1 where chunk 0 is expected (by index or by content).
        let mut r = ChunkedRestore::new(root);
        assert!(r.apply(0, &chunks[1]).is_err());
        assert!(r.apply(1, &chunks[1]).is_err());
        r.apply(0, &chunks[0]).unwrap();
        // Duplicated: chunk 0 again.
        assert!(r.apply(1, &chunks[0]).is_err());
        // Omitted: chunk 2 after chunk 0.
        assert!(r.apply(1, &chunks[2]).is_err());
        // A refused chunk leaves the restore where it was.
        r.apply(1, &chunks[1]).unwrap();
        assert_eq!(r.next_index(), 2);
        // Omitting the tail: finish refuses.
        assert!(matches!(r.finish(), Err(Error::Chunk { .. })));
        // Chunks of another state (another root) are refused at once.
        let other = ledger(801);
        let mut r = ChunkedRestore::new(root);
        assert!(
            r.apply(0, &other.snapshot_chunks(MIN_CHUNK_BYTES)[0])
                .is_err()
        );
        // Chunks of another state presented as ours (root bytes rewritten): the proof fails.
        let mut forged = other.snapshot_chunks(MIN_CHUNK_BYTES)[0].clone();
        forged[8..40].copy_from_slice(&root);
        assert!(r.apply(0, &forged).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        /// A flipped byte anywhere in any chunk is caught at that chunk.
        #[test]
        fn any_flipped_byte_is_caught(which in 0usize..1000, at in 0usize..100_000, bit in 0u8..8) {
            static SAMPLE: std::sync::OnceLock<(State, Vec<Vec<u8>>)> = std::sync::OnceLock::new();
            let (state, chunks) = SAMPLE.get_or_init(|| {
                let state = ledger(300);
                let chunks = state.snapshot_chunks(MIN_CHUNK_BYTES);
                (state, chunks)
            });
            let k = which % chunks.len();
            let mut bad = chunks[k].clone();
            let i = at % bad.len();
            bad[i] ^= 1 << bit;
            // The restore as it stands after chunks 0..k (their order is tested above).
            let mut first = [0u8; 4];
            first.copy_from_slice(&chunks[k][44..48]);
            let mut r = ChunkedRestore {
                expected: state.settled_digest().expect("a new ledger is settled"),
                next_index: k as u32,
                next_bucket: u32::from_be_bytes(first),
                entries: Vec::new(),
            };
            proptest::prop_assert!(r.apply(k as u32, &bad).is_err(), "chunk {} byte {} bit {}", k, i, bit);
            // The good chunk still applies after the refusal: nothing was kept.
            r.apply(k as u32, &chunks[k]).unwrap();
        }

        /// Arbitrary bytes never panic and are refused.
        #[test]
        fn junk_is_refused(noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut r = ChunkedRestore::new([7; 32]);
            proptest::prop_assert!(r.apply(0, &noise).is_err());
        }
    }
}
