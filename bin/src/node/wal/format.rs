//! The on-disk format of the write-ahead log and its snapshot files (all integers
//! little-endian; CRC-32 is the IEEE/zlib polynomial, `crc32fast`).
//!
//! A segment `wal-<n, 16 digits>.log` is a 56-byte header followed by records:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `TNDMWAL\0` |
//! | 4 | format version ([`VERSION`]) |
//! | 32 | cluster id (SHA-256 of the cluster's replica keys) |
//! | 8 | segment number `n` |
//! | 4 | CRC-32 of the 52 bytes before |
//!
//! and each record is `u32 length | u32 CRC-32 of (length bytes ‖ payload) | payload`
//! (a bincode-encoded protocol record), at most [`MAX_RECORD`] bytes of payload.
//!
//! A snapshot `snapshot-<n>.bin` holds the application state of the compaction point
//! whose base record opens segment `n`: magic `TNDMSNAP`, version, cluster id, the
//! stable checkpoint's sequence number (8), its application digest (32), the state's
//! length (8), a CRC-32 of the header and the state, then the state: a chunk list
//! (`tandem_consensus::state_chunks`), restored chunk by chunk, each verified against
//! the digest.
//!
//! Versions: 4 writes digests, signatures and MAC authenticators inside records as
//! length-prefixed byte strings (`tandem_consensus`'s `byte_arrays`), where 3 wrote
//! them byte by byte; 2 introduced the chunked snapshot (1 held the state as one
//! encoding). A log of another version is refused at start with both versions named.

use std::fmt;
use std::path::PathBuf;

/// Segment magic.
pub const SEGMENT_MAGIC: &[u8; 8] = b"TNDMWAL\0";
/// Snapshot magic.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"TNDMSNAP";
/// The format version this build writes and reads.
pub const VERSION: u32 = 4;
/// Bytes of a segment header.
pub const SEGMENT_HEADER: usize = 56;
/// Bytes of a snapshot header (before the state).
pub const SNAPSHOT_HEADER: usize = 8 + 4 + 32 + 8 + 32 + 8 + 4;
/// Bytes before a record's payload.
pub const RECORD_HEADER: usize = 8;
/// Largest record payload accepted (a larger length is corruption): 256 MiB.
pub const MAX_RECORD: usize = 256 << 20;

/// A cluster's identity in log headers: a log from another cluster is refused.
pub type ClusterId = [u8; 32];

/// What is wrong with a log or snapshot file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WalErrorKind {
    /// Shorter than its header.
    #[error("truncated header ({0} bytes)")]
    TruncatedHeader(usize),
    /// Not a Tandem log or snapshot.
    #[error("not a Tandem write-ahead log or snapshot (bad magic)")]
    NotALog,
    /// Written by a newer (or unknown) format version.
    #[error("format version {found}, this build reads {VERSION}")]
    Version {
        /// The version in the file.
        found: u32,
    },
    /// Written by a replica of another cluster.
    #[error("written by another cluster (cluster id {found}…, ours {ours}…)")]
    OtherCluster {
        /// Start of the file's cluster id, hex.
        found: String,
        /// Start of ours, hex.
        ours: String,
    },
    /// Header checksum mismatch.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// The segment number in the header differs from the file name's.
    #[error("header says segment {found}, the file name {expected}")]
    SegmentNumber {
        /// In the header.
        found: u64,
        /// In the name.
        expected: u64,
    },
    /// A record fails its checksum or claims an impossible length, and valid data
    /// follows: not a torn tail.
    #[error("corrupt record in the middle of the log: {0}")]
    Corrupt(String),
    /// Segments are missing between two that exist, or the log starts without a
    /// snapshot after segment 0.
    #[error("{0}")]
    Gap(String),
    /// The snapshot's state fails its checksum or is shorter than it says.
    #[error("snapshot state damaged: {0}")]
    Snapshot(String),
    /// A record does not decode, or the protocol refused to replay it.
    #[error("record refused: {0}")]
    Record(String),
    /// An I/O error.
    #[error("I/O: {0}")]
    Io(String),
}

/// A problem with a log or snapshot file, naming the file and the byte offset.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub struct WalError {
    /// The file.
    pub file: PathBuf,
    /// Byte offset in it.
    pub offset: u64,
    /// What is wrong.
    pub kind: WalErrorKind,
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.file.display(),
            self.offset,
            self.kind
        )
    }
}

impl WalError {
    /// An error in `file` at `offset`.
    pub fn at(file: impl Into<PathBuf>, offset: u64, kind: WalErrorKind) -> WalError {
        WalError {
            file: file.into(),
            offset,
            kind,
        }
    }

    /// Whether the file is damaged (as opposed to foreign, newer or unreadable): the
    /// replica then recovers from its peers.
    pub fn is_damage(&self) -> bool {
        matches!(
            self.kind,
            WalErrorKind::Corrupt(_)
                | WalErrorKind::HeaderChecksum
                | WalErrorKind::TruncatedHeader(_)
                | WalErrorKind::Snapshot(_)
                | WalErrorKind::Gap(_)
                | WalErrorKind::Record(_)
        )
    }
}

/// The file name of segment `n`.
pub fn segment_name(n: u64) -> String {
    format!("wal-{n:016}.log")
}

/// The file name of the snapshot that goes with segment `n`.
pub fn snapshot_name(n: u64) -> String {
    format!("snapshot-{n:016}.bin")
}

/// Parses `wal-<n>.log` or `snapshot-<n>.bin`: (is a snapshot, n).
pub fn parse_name(name: &str) -> Option<(bool, u64)> {
    let (snapshot, digits) = if let Some(rest) = name.strip_prefix("wal-") {
        (false, rest.strip_suffix(".log")?)
    } else {
        (true, name.strip_prefix("snapshot-")?.strip_suffix(".bin")?)
    };
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((snapshot, digits.parse().ok()?))
}

/// A segment header.
pub fn segment_header(cluster: &ClusterId, n: u64) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..44].copy_from_slice(cluster);
    h[44..52].copy_from_slice(&n.to_le_bytes());
    let crc = crc32fast::hash(&h[..52]);
    h[52..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends one framed record to `buf`.
pub fn frame_record(payload: &[u8], buf: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("records are far below 4 GiB");
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&h.finalize().to_le_bytes());
    buf.extend_from_slice(payload);
}

/// A snapshot file's bytes.
pub fn snapshot_file(
    cluster: &ClusterId,
    seq: u64,
    app_digest: &[u8; 32],
    state: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(SNAPSHOT_HEADER + state.len());
    f.extend_from_slice(SNAPSHOT_MAGIC);
    f.extend_from_slice(&VERSION.to_le_bytes());
    f.extend_from_slice(cluster);
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend_from_slice(app_digest);
    f.extend_from_slice(&(state.len() as u64).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&f);
    h.update(state);
    f.extend_from_slice(&h.finalize().to_le_bytes());
    f.extend_from_slice(state);
    f
}

/// Checks magic, version and cluster id shared by both headers.
fn check_common(
    bytes: &[u8],
    magic: &[u8; 8],
    cluster: &ClusterId,
    file: &std::path::Path,
) -> Result<(), WalError> {
    let err = |offset, kind| Err(WalError::at(file, offset, kind));
    if &bytes[..8] != magic {
        return err(0, WalErrorKind::NotALog);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return err(8, WalErrorKind::Version { found: version });
    }
    if &bytes[12..44] != cluster {
        let hex = |b: &[u8]| b[..4].iter().map(|x| format!("{x:02x}")).collect();
        return err(
            12,
            WalErrorKind::OtherCluster {
                found: hex(&bytes[12..44]),
                ours: hex(cluster),
            },
        );
    }
    Ok(())
}

/// Validates a segment header (the first [`SEGMENT_HEADER`] bytes of `bytes`).
pub fn check_segment_header(
    bytes: &[u8],
    cluster: &ClusterId,
    n: u64,
    file: &std::path::Path,
) -> Result<(), WalError> {
    if bytes.len() < SEGMENT_HEADER {
        // A header shorter than 8 bytes cannot even show its magic.
        if bytes.len() >= 8 && &bytes[..8] != SEGMENT_MAGIC {
            return Err(WalError::at(file, 0, WalErrorKind::NotALog));
        }
        return Err(WalError::at(
            file,
            0,
            WalErrorKind::TruncatedHeader(bytes.len()),
        ));
    }
    check_common(bytes, SEGMENT_MAGIC, cluster, file)?;
    let crc = u32::from_le_bytes(bytes[52..56].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..52]) != crc {
        return Err(WalError::at(file, 52, WalErrorKind::HeaderChecksum));
    }
    let found = u64::from_le_bytes(bytes[44..52].try_into().expect("8 bytes"));
    if found != n {
        return Err(WalError::at(
            file,
            44,
            WalErrorKind::SegmentNumber { found, expected: n },
        ));
    }
    Ok(())
}

/// A snapshot read back: (seq, app digest, state).
pub type SnapshotParts = (u64, [u8; 32], Vec<u8>);

/// Parses a snapshot file.
pub fn read_snapshot(
    bytes: &[u8],
    cluster: &ClusterId,
    file: &std::path::Path,
) -> Result<SnapshotParts, WalError> {
    if bytes.len() < SNAPSHOT_HEADER {
        if bytes.len() >= 8 && &bytes[..8] != SNAPSHOT_MAGIC {
            return Err(WalError::at(file, 0, WalErrorKind::NotALog));
        }
        return Err(WalError::at(
            file,
            0,
            WalErrorKind::TruncatedHeader(bytes.len()),
        ));
    }
    check_common(bytes, SNAPSHOT_MAGIC, cluster, file)?;
    let seq = u64::from_le_bytes(bytes[44..52].try_into().expect("8 bytes"));
    let digest: [u8; 32] = bytes[52..84].try_into().expect("32 bytes");
    let len = u64::from_le_bytes(bytes[84..92].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[92..96].try_into().expect("4 bytes"));
    let state = &bytes[SNAPSHOT_HEADER..];
    if state.len() as u64 != len {
        return Err(WalError::at(
            file,
            SNAPSHOT_HEADER as u64,
            WalErrorKind::Snapshot(format!(
                "{} bytes of state, the header says {len}",
                state.len()
            )),
        ));
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..92]);
    h.update(state);
    if h.finalize() != crc {
        return Err(WalError::at(
            file,
            92,
            WalErrorKind::Snapshot("checksum mismatch".into()),
        ));
    }
    Ok((seq, digest, state.to_vec()))
}
