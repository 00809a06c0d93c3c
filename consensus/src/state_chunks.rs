//! The chunked form of a checkpoint's application state, and the restore steps a
//! driver carries out on the application for a chunked state transfer.
//!
//! A replica's snapshot at a checkpoint is a *chunk list*: the chunks
//! [`FrozenState::chunks`] cut (each verifiable on its own against the application
//! digest), packed into one buffer so the protocol can keep it, log it and serve chunk
//! `i` without copying ([`chunk_at`] slices the buffer). Format (integers big-endian):
//!
//! ```text
//! magic   "TNDMSNP1"                 8 bytes
//! count   number of chunks (≥ 1)     4 bytes
//! chunks  count × (length 4 bytes, then the chunk's bytes)
//! ```
//!
//! A state transfer moves one chunk per message (see `state_transfer.rs`): the
//! receiving protocol asks its driver to begin a restore towards the certified
//! digest ([`RestoreStep::Begin`]), to verify and keep each chunk as it arrives
//! ([`RestoreStep::Chunk`], answered by [`RestoreOutcome::Chunk`]) and finally to
//! install the state ([`RestoreStep::Finish`], answered by
//! [`RestoreOutcome::Installed`]). [`RestoreStep::apply`] is that protocol for any
//! [`Application`], so every driver runs it the same way.

use std::ops::Range;

use bytes::Bytes;

use crate::application::{Application, FrozenState};
use crate::types::{Digest, Seq};

const MAGIC: &[u8; 8] = b"TNDMSNP1";
const HEADER: usize = 8 + 4;

/// The default bound on one state chunk's bytes (4 MiB): a chunk travels in one
/// frame, far below the transport's 64 MiB frame limit, and a receiver verifies and
/// keeps one at a time.
pub const DEFAULT_STATE_CHUNK_BYTES: usize = 4 << 20;

/// The chunk list of `frozen`, cut at `max_chunk_bytes` per chunk.
pub fn chunk_list_of(frozen: &dyn FrozenState, max_chunk_bytes: usize) -> Bytes {
    encode_chunk_list(&frozen.chunks(max_chunk_bytes))
}

/// Packs `chunks` into a chunk list.
///
/// # Panics
/// If there are more than `u32::MAX` chunks or one is longer than `u32::MAX` bytes
/// (our own state, cut by our own bound: a bug, not input).
pub fn encode_chunk_list(chunks: &[Bytes]) -> Bytes {
    let body: usize = chunks.iter().map(|c| 4 + c.len()).sum();
    let mut out = Vec::with_capacity(HEADER + body);
    out.extend_from_slice(MAGIC);
    let count = u32::try_from(chunks.len()).expect("chunk count fits u32");
    out.extend_from_slice(&count.to_be_bytes());
    for chunk in chunks {
        let len = u32::try_from(chunk.len()).expect("chunk length fits u32");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(chunk);
    }
    Bytes::from(out)
}

/// The byte ranges of the chunks of `list`, read lazily in order: `None` if the
/// header is bad (magic, or no chunks); otherwise one item per declared chunk, `None`
/// from the first length that runs past the end. The one reader of the format.
fn walk(list: &[u8]) -> Option<impl Iterator<Item = Option<Range<usize>>> + '_> {
    if list.len() < HEADER || &list[..8] != MAGIC {
        return None;
    }
    let count = u32::from_be_bytes(list[8..12].try_into().ok()?);
    if count == 0 {
        return None;
    }
    let mut at = Some(HEADER);
    Some((0..count).map(move |_| {
        let start = at?;
        let len_end = start.checked_add(4)?;
        let len = u32::from_be_bytes(list.get(start..len_end)?.try_into().ok()?) as usize;
        let end = len_end.checked_add(len).filter(|end| *end <= list.len());
        at = end;
        Some(len_end..end?)
    }))
}

/// The ranges of the chunks of `list` in order, or `None` if it is not a
/// well-formed chunk list (bad magic, no chunks, a length past the end, bytes after
/// the last chunk).
fn chunk_ranges(list: &[u8]) -> Option<Vec<Range<usize>>> {
    let ranges = walk(list)?.collect::<Option<Vec<_>>>()?;
    (ranges.last().map(|r| r.end) == Some(list.len())).then_some(ranges)
}

/// Chunk `index` of `list` (sharing its buffer), if `list` has that chunk. Reads the
/// lengths up to `index` only, allocating nothing: a chunk fetch costs at most the
/// number of chunks, and an index past the count is refused without a walk. `list`
/// is our own (checked when it was made).
pub fn chunk_at(list: &Bytes, index: u64) -> Option<Bytes> {
    let range = walk(list)?.nth(usize::try_from(index).ok()?)??;
    Some(list.slice(range))
}

/// Restores `app` from a whole chunk list (a log's snapshot at start), each chunk
/// verified against `expected` as in a state transfer. Whether the state was
/// installed; the application is untouched otherwise.
pub fn restore_from_chunk_list<A: Application + ?Sized>(
    app: &mut A,
    list: &[u8],
    expected: &Digest,
) -> bool {
    let Some(ranges) = chunk_ranges(list) else {
        return false;
    };
    app.restore_begin(expected);
    for (index, range) in ranges.into_iter().enumerate() {
        if app.restore_chunk(index as u64, &list[range]).is_err() {
            app.restore_begin(expected); // forget the partial restore
            return false;
        }
    }
    app.restore_complete() && app.restore_finish()
}

/// A step of a chunked restore the protocol asks its driver to carry out on the
/// application, in order with deliveries ([`crate::Action::Restore`]).
#[derive(Clone, Debug)]
pub enum RestoreStep {
    /// Start restoring towards the state whose application digest is `app_digest`
    /// (the stable checkpoint `seq`'s), forgetting any restore in progress. No answer.
    Begin {
        /// The checkpoint.
        seq: Seq,
        /// The application digest the checkpoint certificate vouches for.
        app_digest: Digest,
    },
    /// Verify chunk `index` against the digest and keep it if it verifies; answer with
    /// [`RestoreOutcome::Chunk`].
    Chunk {
        /// The checkpoint.
        seq: Seq,
        /// The chunk's position, from 0.
        index: u64,
        /// The chunk, as the peer sent it.
        chunk: Bytes,
    },
    /// Install the restored state; answer with [`RestoreOutcome::Installed`].
    Finish {
        /// The checkpoint.
        seq: Seq,
    },
}

/// The application's answer to a [`RestoreStep`] ([`crate::Event::Restored`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// Chunk `index` was verified and kept (`ok`) or refused; `complete` once every
    /// chunk of the state is kept.
    Chunk {
        /// The checkpoint.
        seq: Seq,
        /// The chunk's position.
        index: u64,
        /// Whether it verified and was kept.
        ok: bool,
        /// Whether the restore now holds the whole state.
        complete: bool,
    },
    /// The restored state was installed (`ok`), or refused.
    Installed {
        /// The checkpoint.
        seq: Seq,
        /// Whether the state is now the application's.
        ok: bool,
    },
}

impl RestoreStep {
    /// Carries the step out on `app`; the outcome to report back, if the step has one.
    pub fn apply<A: Application + ?Sized>(self, app: &mut A) -> Option<RestoreOutcome> {
        match self {
            RestoreStep::Begin { app_digest, .. } => {
                app.restore_begin(&app_digest);
                None
            }
            RestoreStep::Chunk { seq, index, chunk } => {
                let ok = match app.restore_chunk(index, &chunk) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(%seq, index, error = %e, "state chunk refused");
                        false
                    }
                };
                Some(RestoreOutcome::Chunk {
                    seq,
                    index,
                    ok,
                    complete: ok && app.restore_complete(),
                })
            }
            RestoreStep::Finish { seq } => Some(RestoreOutcome::Installed {
                seq,
                ok: app.restore_finish(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::HashChainApp;
    use crate::request::{Batch, Request};
    use crate::types::ClientId;

    /// The number of chunks in `list`, if it is well formed.
    fn chunk_count(list: &[u8]) -> Option<u64> {
        chunk_ranges(list).map(|r| r.len() as u64)
    }

    fn app_after(requests: u64) -> HashChainApp {
        let mut app = HashChainApp::default();
        let batch = Batch::new(
            (1..=requests)
                .map(|n| Request::new(ClientId(1), n, Bytes::from(vec![n as u8])))
                .collect(),
        );
        app.execute(Seq(1), &batch);
        app
    }

    #[test]
    fn a_chunk_list_round_trips_and_serves_each_chunk() {
        let chunks = vec![
            Bytes::from_static(b"a"),
            Bytes::new(),
            Bytes::from_static(b"ccc"),
        ];
        let list = encode_chunk_list(&chunks);
        assert_eq!(chunk_count(&list), Some(3));
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(chunk_at(&list, i as u64).as_ref(), Some(c));
        }
        assert_eq!(chunk_at(&list, 3), None);
        assert_eq!(chunk_at(&list, u64::MAX), None);
    }

    #[test]
    fn malformed_chunk_lists_are_refused() {
        let list = encode_chunk_list(&[Bytes::from_static(b"abc")]);
        assert_eq!(chunk_count(b""), None);
        assert_eq!(chunk_count(&list[..list.len() - 1]), None, "truncated");
        let mut longer = list.to_vec();
        longer.push(0);
        assert_eq!(chunk_count(&longer), None, "trailing bytes");
        let mut magic = list.to_vec();
        magic[0] ^= 1;
        assert_eq!(chunk_count(&magic), None);
        let mut huge = list.to_vec();
        huge[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(chunk_count(&huge), None, "a length past the end");
        assert_eq!(
            chunk_count(&encode_chunk_list(&[])),
            None,
            "a state has at least one chunk"
        );
    }

    #[test]
    fn restore_from_a_chunk_list_checks_the_digest() {
        let mut a = app_after(5);
        let list = chunk_list_of(a.freeze().as_ref(), DEFAULT_STATE_CHUNK_BYTES);
        let mut b = HashChainApp::default();
        assert!(!restore_from_chunk_list(&mut b, &list, &Digest::default()));
        assert_ne!(b.digest(), a.digest(), "a refused restore changes nothing");
        assert!(!restore_from_chunk_list(&mut b, b"junk", &a.digest()));
        assert!(restore_from_chunk_list(&mut b, &list, &a.digest()));
        assert_eq!(b.digest(), a.digest());
    }

    #[test]
    fn restore_steps_report_each_chunk_and_the_install() {
        let mut a = app_after(3);
        let list = chunk_list_of(a.freeze().as_ref(), DEFAULT_STATE_CHUNK_BYTES);
        let chunk = chunk_at(&list, 0).unwrap();
        let mut b = HashChainApp::default();
        let seq = Seq(4);
        let begin = RestoreStep::Begin {
            seq,
            app_digest: a.digest(),
        };
        assert_eq!(begin.apply(&mut b), None);
        let mut bad = chunk.to_vec();
        bad[0] ^= 1;
        let refused = RestoreStep::Chunk {
            seq,
            index: 0,
            chunk: Bytes::from(bad),
        };
        assert_eq!(
            refused.apply(&mut b),
            Some(RestoreOutcome::Chunk {
                seq,
                index: 0,
                ok: false,
                complete: false
            })
        );
        let kept = RestoreStep::Chunk {
            seq,
            index: 0,
            chunk,
        };
        assert_eq!(
            kept.apply(&mut b),
            Some(RestoreOutcome::Chunk {
                seq,
                index: 0,
                ok: true,
                complete: true
            })
        );
        assert_eq!(
            RestoreStep::Finish { seq }.apply(&mut b),
            Some(RestoreOutcome::Installed { seq, ok: true })
        );
        assert_eq!(b.digest(), a.digest());
    }
}
