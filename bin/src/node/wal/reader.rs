//! Reading a segment's records back: every record's length and checksum is checked;
//! a damaged record at the very end of the newest segment is a torn tail (a write the
//! crash interrupted, never fsynced, so nothing depended on it) and is cut off; any
//! other damage is corruption and refused, naming the file and offset. The reader
//! never panics on any input (fuzzed below).

use std::path::Path;

use crate::node::wal::format::{
    ClusterId, MAX_RECORD, RECORD_HEADER, SEGMENT_HEADER, WalError, WalErrorKind,
    check_segment_header,
};

/// A segment's records.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// The payloads, in order.
    pub records: Vec<Vec<u8>>,
    /// Bytes of the file that hold the header and whole, valid records.
    pub valid_len: u64,
    /// The torn tail cut off, if any: its offset and what was wrong.
    pub torn: Option<(u64, String)>,
}

/// Reads segment `n` (`bytes` is the whole file). In the newest segment (`newest`) a
/// damaged last record is a torn tail; anywhere else damage is an error.
pub fn scan_segment(
    bytes: &[u8],
    cluster: &ClusterId,
    n: u64,
    newest: bool,
    file: &Path,
) -> Result<Scan, WalError> {
    check_segment_header(bytes, cluster, n, file)?;
    let mut records = Vec::new();
    let mut pos = SEGMENT_HEADER;
    let end = bytes.len();
    let damaged = |pos: usize, problem: String, records: Vec<Vec<u8>>, tail: bool| {
        if newest && tail {
            Ok(Scan {
                records,
                valid_len: pos as u64,
                torn: Some((pos as u64, problem)),
            })
        } else {
            Err(WalError::at(
                file,
                pos as u64,
                WalErrorKind::Corrupt(problem),
            ))
        }
    };
    while pos < end {
        let left = end - pos;
        if left < RECORD_HEADER {
            return damaged(
                pos,
                format!("record header cut at {left} bytes"),
                records,
                true,
            );
        }
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len > MAX_RECORD {
            // No way to find the next record: only a tail can be cut here.
            return damaged(
                pos,
                format!("record length {len} above {MAX_RECORD}"),
                records,
                true,
            );
        }
        let body = pos + RECORD_HEADER;
        if len > end - body {
            return damaged(
                pos,
                format!("record of {len} bytes runs past the end of the file"),
                records,
                true,
            );
        }
        let payload = &bytes[body..body + len];
        let mut h = crc32fast::Hasher::new();
        h.update(&(len as u32).to_le_bytes());
        h.update(payload);
        if h.finalize() != crc {
            let last = body + len == end;
            return damaged(pos, "record checksum mismatch".into(), records, last);
        }
        records.push(payload.to_vec());
        pos = body + len;
    }
    Ok(Scan {
        records,
        valid_len: pos as u64,
        torn: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::wal::format::{frame_record, segment_header};
    use proptest::prelude::*;

    const CLUSTER: ClusterId = [7; 32];

    fn segment(records: &[Vec<u8>]) -> Vec<u8> {
        let mut f = segment_header(&CLUSTER, 3).to_vec();
        for r in records {
            frame_record(r, &mut f);
        }
        f
    }

    fn scan(bytes: &[u8], newest: bool) -> Result<Scan, WalError> {
        scan_segment(bytes, &CLUSTER, 3, newest, Path::new("wal-3.log"))
    }

    #[test]
    fn records_read_back() {
        let recs = vec![b"one".to_vec(), vec![], vec![9; 1000]];
        let s = scan(&segment(&recs), true).unwrap();
        assert_eq!(s.records, recs);
        assert_eq!(s.torn, None);
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported() {
        let recs = vec![b"one".to_vec(), b"two".to_vec()];
        let full = segment(&recs);
        let whole_first = segment(&recs[..1]).len();
        for cut in whole_first + 1..full.len() {
            let s = scan(&full[..cut], true).unwrap();
            assert_eq!(s.records, recs[..1].to_vec(), "cut at {cut}");
            assert_eq!(s.valid_len, whole_first as u64);
            assert!(s.torn.is_some());
            let e = scan(&full[..cut], false).unwrap_err();
            assert!(
                matches!(e.kind, WalErrorKind::Corrupt(_)),
                "older segments are not torn"
            );
        }
        // A flipped byte in the last record: a torn tail too.
        let mut flipped = full.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(scan(&flipped, true).unwrap().records, recs[..1].to_vec());
    }

    #[test]
    fn corruption_in_the_middle_is_refused_with_file_and_offset() {
        let recs = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        let mut f = segment(&recs);
        let second = segment(&recs[..1]).len();
        f[second + RECORD_HEADER] ^= 0xff;
        let e = scan(&f, true).unwrap_err();
        assert_eq!(e.offset, second as u64);
        assert!(matches!(e.kind, WalErrorKind::Corrupt(_)));
        assert!(e.to_string().contains("wal-3.log at offset"));
    }

    #[test]
    fn bad_headers_are_named() {
        let good = segment(&[b"x".to_vec()]);
        let kind = |b: &[u8]| scan(b, true).unwrap_err().kind;
        assert_eq!(kind(&good[..10]), WalErrorKind::TruncatedHeader(10));
        assert_eq!(
            kind(b"hello, this is not a log at all, not even close........"),
            WalErrorKind::NotALog
        );
        let mut newer = good.clone();
        newer[8] = 5;
        assert_eq!(kind(&newer), WalErrorKind::Version { found: 5 });
        let mut older = good.clone();
        older[8] = 1; // version 1 held snapshots as one encoding, not a chunk list
        assert_eq!(kind(&older), WalErrorKind::Version { found: 1 });
        // Version 2's HotStuff compaction record lacks the checkpoint's reputation
        // history: refused by version, never decoded and moved aside.
        older[8] = 2;
        assert_eq!(kind(&older), WalErrorKind::Version { found: 2 });
        // Version 3 wrote digests and MACs byte by byte: refused, not misread.
        older[8] = 3;
        assert_eq!(kind(&older), WalErrorKind::Version { found: 3 });
        let other = scan_segment(&good, &[8; 32], 3, true, Path::new("f")).unwrap_err();
        assert!(matches!(other.kind, WalErrorKind::OtherCluster { .. }));
        let mut crc = good.clone();
        crc[44] ^= 1;
        assert_eq!(kind(&crc), WalErrorKind::HeaderChecksum);
        let wrong_n = scan_segment(&good, &CLUSTER, 4, true, Path::new("f")).unwrap_err();
        assert!(matches!(
            wrong_n.kind,
            WalErrorKind::SegmentNumber {
                found: 3,
                expected: 4
            }
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random bytes after a valid header never panic, and whatever is read back
        /// is a prefix of what the bytes frame.
        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), newest: bool) {
            let mut f = segment_header(&CLUSTER, 3).to_vec();
            f.extend_from_slice(&body);
            if let Ok(s) = scan(&f, newest) {
                prop_assert!(s.valid_len as usize <= f.len());
            }
        }

        /// A valid log with bytes flipped, cut or appended: never a panic; either the
        /// records read back are a prefix of those written, or an error names an
        /// offset inside the file.
        #[test]
        fn mutated_logs_read_a_prefix_or_fail_cleanly(
            recs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..3),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            extra in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let mut f = segment(&recs);
            for (at, x) in &flips {
                let i = at.index(f.len());
                f[i] ^= x;
            }
            if let Some(c) = cut {
                f.truncate(c.index(f.len() + 1));
            }
            f.extend_from_slice(&extra);
            match scan(&f, true) {
                Ok(s) => {
                    prop_assert!(s.records.len() <= recs.len() + extra.len());
                    if flips.is_empty() {
                        let n = s.records.len().min(recs.len());
                        prop_assert_eq!(&s.records[..n], &recs[..n]);
                    }
                }
                Err(e) => prop_assert!(e.offset as usize <= f.len()),
            }
        }
    }
}
