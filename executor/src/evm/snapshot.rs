//! The EVM state as verifiable chunks, for a replicated application's checkpoints
//! and state transfer (`tandem local --vm evm`).
//!
//! Canonical entries, in order: every account (`A ‖ address(20) ‖ balance(32) ‖
//! nonce(8) ‖ code hash(32)`, address order), every code (`C ‖ hash(32) ‖ length(4,
//! big-endian) ‖ bytes`, hash order), every storage slot (`S ‖ address ‖ slot(32) ‖
//! value(32)`, (address, slot) order) — all big-endian. They are cut into data
//! chunks, a chunk closed as soon as it holds [`EVM_CHUNK_TARGET`] bytes or more (an
//! entry is never split; code is at most 64 KiB, so a chunk stays under 100 KiB).
//! The cut depends on the state alone, never on a configuration.
//!
//! The *chunk digest* ([`EvmChunks::digest`]) is SHA-256 over a domain tag, the
//! number of data chunks and each data chunk's SHA-256. A transfer sends chunk 0,
//! the manifest (the count and those hashes: verified by hashing it to the expected
//! digest), then the data chunks, each verified against its hash in the manifest
//! before it is kept ([`EvmChunkedRestore`]), so a receiver never holds an
//! unverified chunk beyond the one it is checking. Assembly then checks the entries
//! are canonical (strictly ordered, no empty account, no zero slot, code matching
//! its hash). The chunk digest covers exactly what `EvmState::digest` covers plus
//! the code itself.

use revm::bytecode::Bytecode;
use revm::primitives::{Address, B256, Bytes, KECCAK_EMPTY, U256, keccak256};
use ring::digest::{Context, SHA256, digest};

use super::db::{EvmAccount, EvmState, account_shard};
use super::digest::merged;
use crate::error::Error;

/// A data chunk is closed once it holds this many bytes or more.
pub const EVM_CHUNK_TARGET: usize = 32 << 10;

const DOMAIN: &[u8] = b"tandem-evm-chunks-v1\0";
const ACCOUNT_LEN: usize = 1 + 20 + 32 + 8 + 32;
const SLOT_LEN: usize = 1 + 20 + 32 + 32;
/// Longest code accepted when restoring (more than any deployable code).
const MAX_CODE: usize = 64 << 10;

/// The state cut into data chunks (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvmChunks {
    pub data: Vec<Vec<u8>>,
}

fn chunk_hash(chunk: &[u8]) -> [u8; 32] {
    digest(&SHA256, chunk)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

fn manifest_digest(manifest: &[u8]) -> [u8; 32] {
    let mut h = Context::new(&SHA256);
    h.update(DOMAIN);
    h.update(manifest);
    h.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

impl EvmState {
    /// The canonical entries cut into data chunks.
    pub fn chunks(&self) -> EvmChunks {
        let mut data = Vec::new();
        let mut current = Vec::new();
        let mut push = |entry: &[u8], current: &mut Vec<u8>| {
            current.extend_from_slice(entry);
            if current.len() >= EVM_CHUNK_TARGET {
                data.push(std::mem::take(current));
            }
        };
        let mut entry = Vec::with_capacity(ACCOUNT_LEN);
        merged(self.shards.iter().map(|s| &s.accounts), |address, a| {
            entry.clear();
            entry.push(b'A');
            entry.extend_from_slice(address.as_slice());
            entry.extend_from_slice(&a.balance.to_be_bytes::<32>());
            entry.extend_from_slice(&a.nonce.to_be_bytes());
            entry.extend_from_slice(a.code_hash.as_slice());
            push(&entry, &mut current);
        });
        for (hash, code) in &self.code {
            let bytes = code.original_bytes();
            entry.clear();
            entry.push(b'C');
            entry.extend_from_slice(hash.as_slice());
            let len = u32::try_from(bytes.len()).expect("code fits u32");
            entry.extend_from_slice(&len.to_be_bytes());
            entry.extend_from_slice(&bytes);
            push(&entry, &mut current);
        }
        merged(
            self.shards.iter().map(|s| &s.storage),
            |(address, slot), value| {
                entry.clear();
                entry.push(b'S');
                entry.extend_from_slice(address.as_slice());
                entry.extend_from_slice(&slot.to_be_bytes::<32>());
                entry.extend_from_slice(&value.to_be_bytes::<32>());
                push(&entry, &mut current);
            },
        );
        if !current.is_empty() {
            data.push(current);
        }
        EvmChunks { data }
    }
}

impl EvmChunks {
    /// Chunk 0 of a transfer: the data chunk count (4 bytes, big-endian) and each
    /// data chunk's SHA-256.
    pub fn manifest(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 32 * self.data.len());
        let count = u32::try_from(self.data.len()).expect("chunk count fits u32");
        out.extend_from_slice(&count.to_be_bytes());
        for chunk in &self.data {
            out.extend_from_slice(&chunk_hash(chunk));
        }
        out
    }

    /// The chunk digest (see the module docs).
    pub fn digest(&self) -> [u8; 32] {
        manifest_digest(&self.manifest())
    }

    /// The transfer's chunks: the manifest, then the data chunks.
    pub fn transfer(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.manifest())
            .chain(self.data.iter().cloned())
            .collect()
    }

    /// The whole state as one byte string: the transfer's chunks, each preceded
    /// by its length (4 bytes, big-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in self.transfer() {
            let len = u32::try_from(chunk.len()).expect("chunk fits u32");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&chunk);
        }
        out
    }
}

/// A chunked restore in progress against an expected chunk digest.
pub struct EvmChunkedRestore {
    expected: [u8; 32],
    /// The data chunks' hashes, once the manifest verified.
    hashes: Option<Vec<[u8; 32]>>,
    /// The state assembled so far, and where each section's order stands.
    state: EvmState,
    last: Last,
    /// Chunks kept (the manifest counts as the first).
    next: usize,
}

/// The last entry kept, for the order check across chunks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Last {
    Start,
    Account(Address),
    Code(B256),
    Slot(Address, U256),
}

fn refuse(reason: &'static str) -> Error {
    Error::Snapshot { offset: 0, reason }
}

impl EvmChunkedRestore {
    /// A restore of the state whose chunk digest is `expected`.
    pub fn new(expected: [u8; 32]) -> EvmChunkedRestore {
        EvmChunkedRestore {
            expected,
            hashes: None,
            state: EvmState::new(),
            last: Last::Start,
            next: 0,
        }
    }

    /// Keeps chunk `index` if it is the next one and verifies.
    pub fn apply(&mut self, index: usize, chunk: &[u8]) -> Result<(), Error> {
        if index != self.next {
            return Err(refuse("EVM chunk out of order"));
        }
        match &self.hashes {
            None => {
                if manifest_digest(chunk) != self.expected {
                    return Err(refuse("EVM manifest does not have the expected digest"));
                }
                let count = chunk
                    .get(..4)
                    .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
                    .ok_or_else(|| refuse("EVM manifest shorter than its count"))?;
                let body = &chunk[4..];
                if body.len() != count.saturating_mul(32) {
                    return Err(refuse("EVM manifest length does not match its count"));
                }
                self.hashes = Some(
                    body.chunks_exact(32)
                        .map(|h| h.try_into().expect("32 bytes"))
                        .collect(),
                );
            }
            Some(hashes) => {
                let want = hashes
                    .get(index - 1)
                    .ok_or_else(|| refuse("EVM chunk beyond the manifest"))?;
                if chunk_hash(chunk) != *want {
                    return Err(refuse("EVM chunk does not match the manifest"));
                }
                self.decode(chunk)?;
            }
        }
        self.next += 1;
        Ok(())
    }

    /// Whether the manifest and every data chunk were kept.
    pub fn is_complete(&self) -> bool {
        self.hashes
            .as_ref()
            .is_some_and(|h| self.next == h.len() + 1)
    }

    /// The restored state, if complete.
    pub fn finish(self) -> Result<EvmState, Error> {
        if !self.is_complete() {
            return Err(refuse("EVM restore incomplete"));
        }
        Ok(self.state)
    }

    fn advance(&mut self, next: Last) -> Result<(), Error> {
        if next <= self.last {
            return Err(refuse("EVM entries not in canonical order"));
        }
        self.last = next;
        Ok(())
    }

    fn decode(&mut self, mut chunk: &[u8]) -> Result<(), Error> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
            if bytes.len() < n {
                return Err(refuse("EVM chunk ends inside an entry"));
            }
            let (head, tail) = bytes.split_at(n);
            *bytes = tail;
            Ok(head)
        }
        let word = |b: &[u8]| U256::from_be_slice(b);
        while let Some(&tag) = chunk.first() {
            chunk = &chunk[1..];
            match tag {
                b'A' => {
                    let e = take(&mut chunk, ACCOUNT_LEN - 1)?;
                    let address = Address::from_slice(&e[..20]);
                    let account = EvmAccount {
                        balance: word(&e[20..52]),
                        nonce: u64::from_be_bytes(e[52..60].try_into().expect("8 bytes")),
                        code_hash: B256::from_slice(&e[60..92]),
                    };
                    if account.balance.is_zero()
                        && account.nonce == 0
                        && account.code_hash == KECCAK_EMPTY
                    {
                        return Err(refuse("EVM snapshot holds an empty account"));
                    }
                    self.advance(Last::Account(address))?;
                    self.state.shards[account_shard(address)]
                        .accounts
                        .insert(address, account);
                }
                b'C' => {
                    let head = take(&mut chunk, 36)?;
                    let hash = B256::from_slice(&head[..32]);
                    let len =
                        u32::from_be_bytes(head[32..36].try_into().expect("4 bytes")) as usize;
                    if len > MAX_CODE {
                        return Err(refuse("EVM snapshot code too long"));
                    }
                    let code = take(&mut chunk, len)?;
                    if keccak256(code) != hash || hash == KECCAK_EMPTY {
                        return Err(refuse("EVM snapshot code does not match its hash"));
                    }
                    self.advance(Last::Code(hash))?;
                    self.state
                        .code
                        .insert(hash, Bytecode::new_raw(Bytes::copy_from_slice(code)));
                }
                b'S' => {
                    let e = take(&mut chunk, SLOT_LEN - 1)?;
                    let address = Address::from_slice(&e[..20]);
                    let slot = word(&e[20..52]);
                    let value = word(&e[52..84]);
                    if value.is_zero() {
                        return Err(refuse("EVM snapshot holds a zero slot"));
                    }
                    self.advance(Last::Slot(address, slot))?;
                    self.state.set_storage(address, slot, value);
                }
                _ => return Err(refuse("EVM snapshot entry with an unknown tag")),
            }
        }
        Ok(())
    }
}

impl EvmState {
    /// Decodes [`EvmChunks::encode`]'s output, verified against `expected`.
    pub fn restore_chunks(bytes: &[u8], expected: [u8; 32]) -> Result<EvmState, Error> {
        let mut restore = EvmChunkedRestore::new(expected);
        let mut rest = bytes;
        let mut index = 0;
        while !rest.is_empty() {
            let len = rest
                .get(..4)
                .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
                .ok_or_else(|| refuse("EVM snapshot ends inside a length"))?;
            let chunk = rest
                .get(4..4 + len)
                .ok_or_else(|| refuse("EVM snapshot ends inside a chunk"))?;
            restore.apply(index, chunk)?;
            rest = &rest[4 + len..];
            index += 1;
        }
        restore.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evm::{EvmWorkloadKind, EvmWorkloadSpec};

    #[test]
    fn evm_chunks_restore_exactly_and_refuse_tampering() {
        let spec = EvmWorkloadSpec {
            accounts: 300,
            ..EvmWorkloadSpec::new(EvmWorkloadKind::Uniswap)
        };
        let (state, _) = spec.genesis().unwrap();
        let chunks = state.chunks();
        assert!(chunks.data.len() > 2, "{} chunks", chunks.data.len());
        assert!(
            chunks
                .data
                .iter()
                .all(|c| c.len() < EVM_CHUNK_TARGET + MAX_CODE)
        );
        let digest = chunks.digest();
        let restored = EvmState::restore_chunks(&chunks.encode(), digest).unwrap();
        assert_eq!(restored, state);
        assert_eq!(restored.digest(), state.digest());
        let transfer = chunks.transfer();
        // A flipped byte in any chunk is refused at that chunk.
        for bad in [0, 1, transfer.len() - 1] {
            let mut r = EvmChunkedRestore::new(digest);
            for (i, c) in transfer.iter().enumerate() {
                let mut c = c.clone();
                if i == bad {
                    let mid = c.len() / 2;
                    c[mid] ^= 1;
                    assert!(r.apply(i, &c).is_err());
                    break;
                }
                r.apply(i, &c).unwrap();
            }
            assert!(!r.is_complete());
        }
        // Out of order and omission.
        let mut r = EvmChunkedRestore::new(digest);
        r.apply(0, &transfer[0]).unwrap();
        assert!(r.apply(2, &transfer[2]).is_err());
        assert!(r.finish().is_err());
        // Another state's digest.
        assert!(EvmState::restore_chunks(&chunks.encode(), [0; 32]).is_err());
    }
}
