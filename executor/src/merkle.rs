//! The state commitment: a fixed-shape binary Merkle tree over key buckets, with
//! SHA-256 (ring) and domain-separated node kinds. It replaces the additive multiset
//! hash (Σ SHA-256(entry) mod 2^256), which admits generalised-birthday forgeries,
//! and it is what makes state transfer chunked: any contiguous range of buckets can
//! be checked against the root on its own.
//!
//! Shape (a function of the entries only, so executors, shard layout and batch
//! boundaries cannot change the root):
//! - every key goes to one of `BUCKETS` = 16^4 = 65,536 buckets, `bucket_of(key)`:
//!   FNV-1a 64 over the key's canonical encoding (`encoding.rs`), finalised with
//!   splitmix64's mixer, top 16 bits (specified here, platform-independent; it only
//!   balances the buckets — the hashes below carry the security);
//! - `leaf = SHA-256(0x00 ‖ key ‖ value)` (canonical encodings);
//! - `bucket = SHA-256(0x01 ‖ leaf_1 ‖ … ‖ leaf_m)` over the bucket's leaves in key
//!   order, and 32 zero bytes for an empty bucket;
//! - four levels of 16-ary nodes above the buckets, `node = SHA-256(0x02 ‖ child_0
//!   ‖ … ‖ child_15)`, and 32 zero bytes when all 16 children are zero (an empty
//!   subtree); the root is the single node of the top level, so the empty state's
//!   root is zero. A non-empty subtree hashing to zero would be a SHA-256 preimage
//!   of zero.
//!
//! Why 16-ary: ring's SHA-256 costs a fixed ~140 ns per call plus ~45 ns per 64-byte
//! block here, so the number of hash calls dominates; a batch that touches a third
//! of the buckets dirties nearly every node of the lower levels, about 4,400 nodes
//! at arity 16 against about 50,000 in a binary tree.
//!
//! Storage and update: 16 subtrees (the root's children) of 4096 buckets, each with
//! its levels in one array (4096 buckets, 256, 16, then its root; a node's 16
//! children are contiguous) plus, per bucket, its `(key, leaf)` list sorted by key.
//! A batch hands in its changed keys with their new leaves (hashed in parallel by
//! the state shards); each subtree then updates its buckets and rehashes the dirty
//! buckets and the nodes above them (subtrees in parallel on the worker threads), and the root
//! is rehashed. A batch costs one leaf hash per changed key, one hash per dirty
//! bucket over its leaves, and one per dirty node.
//!
//! Why not a crate: `jmt` (Jellyfish) fits on proofs and a pluggable hasher but is a
//! versioned node store (new nodes per version, stale-node pruning, borsh encoding,
//! a dozen dependencies) for what is an in-memory map here; `sparse-merkle-tree`
//! walks 256 levels per update and its multi-proofs cannot show that a chunk is
//! complete for its key range; `rs_merkle` is an append-only leaf list without keyed
//! updates. A fixed-depth tree over buckets is small, and its range proofs (the
//! hashes of the maximal subtrees outside a bucket range) are what chunks need.
//!
//! Caveat: a bucket's hash covers all its leaves, so touching a bucket costs 32 bytes
//! of hashing per entry in it (about N / 65536 on average). An adversary who grinds
//! account ids into one bucket (2^16 tries per account, plus a paid transaction per
//! entry) makes that bucket slower to rehash, never the root wrong.

use ring::digest::{Context, SHA256};

use crate::encoding::{Buf, MAX_KEY_LEN, MAX_VALUE_LEN, encode_key, encode_value};
use crate::state::{Key, Value};
use crate::threads::WorkerThreads;

/// A 32-byte hash.
pub(crate) type Hash = [u8; 32];

/// The hash of an empty bucket or subtree.
pub(crate) const EMPTY: Hash = [0; 32];
/// Children per node.
const ARITY: usize = 16;
/// Node levels above the buckets.
pub(crate) const LEVELS: u32 = 4;
/// Number of buckets (16^4).
pub(crate) const BUCKETS: u32 = 1 << (4 * LEVELS);
/// Buckets per subtree (a child of the root).
const SUB_BUCKETS: usize = BUCKETS as usize / ARITY;
/// Where each level starts in a subtree's array: buckets, then 256, 16, 1 nodes.
const OFFSET: [usize; 4] = [0, 4096, 4096 + 256, 4096 + 256 + 16];
/// Length of a subtree's array.
const SUB_NODES: usize = 4096 + 256 + 16 + 1;

const LEAF_TAG: u8 = 0;
const BUCKET_TAG: u8 = 1;
const NODE_TAG: u8 = 2;

/// The bucket of `key` (see the module docs).
pub(crate) fn bucket_of(key: &Key) -> u32 {
    let mut buf = Buf::<MAX_KEY_LEN>::new();
    encode_key(key, &mut buf);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in buf.as_slice() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finaliser: every input bit reaches the top bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> (64 - 4 * LEVELS)) as u32
}

/// `SHA-256(0x00 ‖ key ‖ value)`.
pub(crate) fn leaf_hash(key: &Key, value: &Value) -> Hash {
    let mut buf = Buf::<{ 1 + MAX_KEY_LEN + MAX_VALUE_LEN }>::new();
    buf.put(&[LEAF_TAG]);
    encode_key(key, &mut buf);
    encode_value(value, &mut buf);
    sha256(&[buf.as_slice()])
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The hash of a bucket from its leaves in key order. The leaves are copied into
/// one buffer and hashed in one call (ring's per-call cost dominates small inputs).
pub(crate) fn bucket_hash<'a>(leaves: impl IntoIterator<Item = &'a Hash>) -> Hash {
    let mut buf: smallvec::SmallVec<[u8; 1024]> = smallvec::SmallVec::new();
    buf.push(BUCKET_TAG);
    for leaf in leaves {
        buf.extend_from_slice(leaf);
    }
    if buf.len() == 1 {
        return EMPTY;
    }
    sha256(&[&buf])
}

/// The hash of a node from its 16 children.
pub(crate) fn node_hash(children: &[Hash]) -> Hash {
    if children.iter().all(|c| *c == EMPTY) {
        return EMPTY;
    }
    sha256(&[&[NODE_TAG], children.as_flattened()])
}

/// A changed key: its bucket and its new leaf (`None`: removed).
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub(crate) bucket: u32,
    pub(crate) key: Key,
    pub(crate) leaf: Option<Hash>,
}

/// One subtree: 4096 buckets and the 273 nodes above them, level by level in
/// `nodes` (see `OFFSET`); node `j` of level `h + 1` has children `16j..16j + 16` of
/// level `h`. Both arrays stay unallocated (all empty) until the first change, so
/// small states are cheap to create and clone.
#[derive(Clone, Debug, Default)]
struct Subtree {
    nodes: Vec<Hash>,
    buckets: Vec<Vec<(Key, Hash)>>,
    dirty: Vec<usize>,
}

impl Subtree {
    /// Node `j` of level `h` (0 = buckets, 3 = the subtree's root).
    fn node(&self, h: usize, j: usize) -> Hash {
        self.nodes.get(OFFSET[h] + j).copied().unwrap_or(EMPTY)
    }

    /// Applies changes (local bucket index, key, new leaf) and rehashes what they
    /// touched.
    fn update(&mut self, changes: &mut [(u32, Key, Option<Hash>)]) {
        // In bucket order, memory is walked forwards (prefetch-friendly) and each
        // bucket's changes are adjacent.
        changes.sort_unstable_by_key(|c| c.0);
        if self.nodes.is_empty() {
            self.nodes = vec![EMPTY; SUB_NODES];
            self.buckets = vec![Vec::new(); SUB_BUCKETS];
        }
        self.dirty.clear();
        for (b, key, leaf) in changes.iter() {
            let bucket = &mut self.buckets[*b as usize];
            match (bucket.binary_search_by(|(k, _)| k.cmp(key)), leaf) {
                (Ok(i), Some(l)) => bucket[i].1 = *l,
                (Ok(i), None) => {
                    bucket.remove(i);
                }
                (Err(i), Some(l)) => bucket.insert(i, (*key, *l)),
                (Err(_), None) => continue,
            }
            self.dirty.push(*b as usize);
        }
        self.dirty.sort_unstable();
        self.dirty.dedup();
        for &b in &self.dirty {
            self.nodes[b] = bucket_hash(self.buckets[b].iter().map(|(_, l)| l));
        }

        for h in 1..OFFSET.len() {
            for d in self.dirty.iter_mut() {
                *d /= ARITY;
            }
            self.dirty.dedup();
            for &j in &self.dirty {
                let first = OFFSET[h - 1] + ARITY * j;
                self.nodes[OFFSET[h] + j] = node_hash(&self.nodes[first..first + ARITY]);
            }
        }
    }

    fn root(&self) -> Hash {
        self.node(OFFSET.len() - 1, 0)
    }
}

/// Changes for one subtree: (bucket within the subtree, key, new leaf).
type Routed = Vec<(u32, Key, Option<Hash>)>;

/// The Merkle tree over the state's buckets.
#[derive(Clone, Debug)]
pub(crate) struct MerkleTree {
    subtrees: Vec<Subtree>,
    root: Hash,
    /// Changes routed to subtrees (reused).
    routed: Vec<Routed>,
}

impl Default for MerkleTree {
    fn default() -> Self {
        MerkleTree {
            subtrees: (0..ARITY).map(|_| Subtree::default()).collect(),
            root: EMPTY,
            routed: vec![Vec::new(); ARITY],
        }
    }
}

impl MerkleTree {
    /// The root (the state digest).
    pub(crate) fn root(&self) -> Hash {
        self.root
    }

    /// Applies a batch of changes (at most one per key) and recomputes the root; with
    /// worker threads, subtrees are updated in parallel.
    pub(crate) fn apply(
        &mut self,
        changes: impl IntoIterator<Item = Change>,
        threads: Option<&WorkerThreads>,
    ) {
        for r in &mut self.routed {
            r.clear();
        }
        for c in changes {
            let s = c.bucket as usize / SUB_BUCKETS;
            let local = c.bucket % SUB_BUCKETS as u32;
            if let Some(r) = self.routed.get_mut(s) {
                r.push((local, c.key, c.leaf));
            }
        }
        let mut pairs: Vec<(&mut Subtree, &mut Routed)> = self
            .subtrees
            .iter_mut()
            .zip(self.routed.iter_mut())
            .filter(|(_, r)| !r.is_empty())
            .collect();
        let work = |_: usize, pairs: &mut [(&mut Subtree, &mut Routed)]| {
            for (sub, changes) in pairs.iter_mut() {
                sub.update(changes);
            }
        };
        match threads {
            Some(threads) if threads.count() > 1 => threads.parallel_chunks(&mut pairs, 1, work),
            _ => work(0, &mut pairs),
        }
        let roots: Vec<Hash> = self.subtrees.iter().map(Subtree::root).collect();
        self.root = node_hash(&roots);
    }

    /// The hash of node `i` of height `h` (0 = bucket `i`, `LEVELS` = the root).
    pub(crate) fn node(&self, h: u32, i: u32) -> Hash {
        if h >= LEVELS {
            return self.root;
        }
        let per_subtree = SUB_BUCKETS >> (4 * h);
        let (s, j) = (i as usize / per_subtree, i as usize % per_subtree);
        self.subtrees[s].node(h as usize, j)
    }

    /// The `(key, leaf)` pairs of bucket `b`, in key order.
    pub(crate) fn bucket(&self, b: u32) -> &[(Key, Hash)] {
        let s = b as usize / SUB_BUCKETS;
        self.subtrees[s]
            .buckets
            .get(b as usize % SUB_BUCKETS)
            .map_or(&[], |v| v.as_slice())
    }

    /// The range proof of buckets `[first, end)`: the hashes of the maximal subtrees
    /// outside the range, in tree order (at most `MAX_PROOF`).
    pub(crate) fn range_proof(&self, first: u32, end: u32) -> Vec<Hash> {
        let mut out = Vec::new();
        self.prove(LEVELS, 0, first, end, &mut out);
        out
    }

    fn prove(&self, h: u32, i: u32, first: u32, end: u32, out: &mut Vec<Hash>) {
        let (lo, hi) = span(h, i);
        if hi <= u64::from(first) || lo >= u64::from(end) {
            out.push(self.node(h, i));
        } else if lo < u64::from(first) || hi > u64::from(end) {
            for c in 0..ARITY as u32 {
                self.prove(h - 1, i * ARITY as u32 + c, first, end, out);
            }
        }
    }
}

/// Most hashes a range proof has: at most 15 siblings per level on each side.
pub(crate) const MAX_PROOF: usize = 2 * (ARITY - 1) * LEVELS as usize;

/// The buckets `[lo, hi)` under node `i` of height `h`.
fn span(h: u32, i: u32) -> (u64, u64) {
    let width = 1u64 << (4 * h);
    (u64::from(i) * width, (u64::from(i) + 1) * width)
}

/// The root implied by the bucket hashes of `[first, end)` (`bucket(b)`) and a range
/// proof; `None` if the range is empty or out of bounds, or the proof has too few or
/// too many hashes.
pub(crate) fn root_from_range(
    first: u32,
    end: u32,
    bucket: &dyn Fn(u32) -> Hash,
    proof: &[Hash],
) -> Option<Hash> {
    fn fold(
        h: u32,
        i: u32,
        range: (u32, u32),
        bucket: &dyn Fn(u32) -> Hash,
        proof: &mut std::slice::Iter<'_, Hash>,
    ) -> Option<Hash> {
        let (lo, hi) = span(h, i);
        if hi <= u64::from(range.0) || lo >= u64::from(range.1) {
            return proof.next().copied();
        }
        if h == 0 {
            return Some(bucket(i));
        }
        let mut children = [EMPTY; ARITY];
        for (c, child) in children.iter_mut().enumerate() {
            *child = fold(h - 1, i * ARITY as u32 + c as u32, range, bucket, proof)?;
        }
        Some(node_hash(&children))
    }
    if first >= end || end > BUCKETS {
        return None;
    }
    let mut it = proof.iter();
    let root = fold(LEVELS, 0, (first, end), bucket, &mut it)?;
    it.next().is_none().then_some(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_of(entries: &[(Key, Value)]) -> MerkleTree {
        let mut t = MerkleTree::default();
        t.apply(
            entries.iter().map(|(k, v)| Change {
                bucket: bucket_of(k),
                key: *k,
                leaf: Some(leaf_hash(k, v)),
            }),
            None,
        );
        t
    }

    /// Pinned so that a change to the bucket function or the hashing is a visible
    /// decision (it changes every replica's digest).
    #[test]
    fn shape_is_pinned() {
        assert_eq!(
            bucket_of(&Key::Balance(1, 0)),
            bucket_of(&Key::Balance(1, 0))
        );
        let root = tree_of(&[(Key::Balance(1, 0), Value::Amount(5))]).root();
        // One leaf: root = the chain of node hashes above its bucket, every other
        // child empty.
        let b = bucket_of(&Key::Balance(1, 0));
        let mut h = bucket_hash([&leaf_hash(&Key::Balance(1, 0), &Value::Amount(5))]);
        for level in 0..LEVELS {
            let mut children = [EMPTY; ARITY];
            children[((b >> (4 * level)) & 15) as usize] = h;
            h = sha256(&[&[NODE_TAG], children.as_flattened()]);
        }
        assert_eq!(root, h);
        let mut enc = vec![0u8, 2];
        enc.extend_from_slice(&1u64.to_be_bytes());
        enc.extend_from_slice(&0u32.to_be_bytes());
        enc.push(2);
        enc.extend_from_slice(&5u128.to_be_bytes());
        assert_eq!(
            leaf_hash(&Key::Balance(1, 0), &Value::Amount(5)).as_slice(),
            ring::digest::digest(&SHA256, &enc).as_ref()
        );
    }

    #[test]
    fn buckets_spread_keys() {
        let mut counts = vec![0u32; 256];
        for a in 0..100_000u64 {
            counts[(bucket_of(&Key::Balance(a, 0)) >> 8) as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 300 && *max < 500, "{min}..{max}");
    }

    #[test]
    fn updates_equal_a_rebuild_and_removal_restores_empty() {
        let entries: Vec<(Key, Value)> = (0..3000u64)
            .map(|a| {
                (
                    Key::Balance(a, (a % 3) as u32),
                    Value::Amount(u128::from(a) + 1),
                )
            })
            .collect();
        let mut t = tree_of(&entries);
        let threads = WorkerThreads::new(3).unwrap();
        let changed: Vec<(Key, Value)> = entries
            .iter()
            .step_by(7)
            .map(|(k, _)| (*k, Value::Amount(9)))
            .collect();
        t.apply(
            changed.iter().map(|(k, v)| Change {
                bucket: bucket_of(k),
                key: *k,
                leaf: Some(leaf_hash(k, v)),
            }),
            Some(&threads),
        );
        let mut expected = entries.clone();
        for (k, v) in &changed {
            expected.iter_mut().find(|(ek, _)| ek == k).unwrap().1 = *v;
        }
        assert_eq!(t.root(), tree_of(&expected).root());
        t.apply(
            entries.iter().map(|(k, _)| Change {
                bucket: bucket_of(k),
                key: *k,
                leaf: None,
            }),
            None,
        );
        assert_eq!(t.root(), EMPTY);
    }

    #[test]
    fn range_proofs_verify_and_bind_the_range() {
        let entries: Vec<(Key, Value)> = (0..500u64)
            .map(|a| (Key::Nonce(a), Value::Nonce(a + 1)))
            .collect();
        let t = tree_of(&entries);
        for (first, end) in [
            (0, BUCKETS),
            (0, 1),
            (5, 6000),
            (BUCKETS - 1, BUCKETS),
            (4095, 4097),
            (1000, 60000),
        ] {
            let proof = t.range_proof(first, end);
            assert!(proof.len() <= MAX_PROOF);
            let bucket = |b: u32| bucket_hash(t.bucket(b).iter().map(|(_, l)| l));
            assert_eq!(root_from_range(first, end, &bucket, &proof), Some(t.root()));
            // A proof for another range, or a truncated or extended one, does not verify.
            assert_ne!(
                root_from_range(first, end + 1, &bucket, &proof),
                Some(t.root())
            );
            assert_eq!(
                root_from_range(first, end, &bucket, &proof[..proof.len().saturating_sub(1)])
                    .filter(|_| !proof.is_empty()),
                None
            );
            let mut longer = proof.clone();
            longer.push(EMPTY);
            assert_eq!(root_from_range(first, end, &bucket, &longer), None);
        }
        assert_eq!(root_from_range(5, 5, &|_| EMPTY, &[]), None);
    }
}
