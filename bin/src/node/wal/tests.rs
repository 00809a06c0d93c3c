//! The log end to end on a temporary directory: group-committed appends read back,
//! segments roll over, compaction drops what the snapshot replaces, a torn tail is
//! cut and appending continues after it, and damaged or foreign files are refused with
//! the file and offset.

use super::*;

const CLUSTER: ClusterId = [1; 32];

fn cfg(dir: &Path) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        cluster: CLUSTER,
        segment_bytes: 300,
        compact_bytes: 1 << 20,
    }
}

/// Appends `records` and waits until all are durable.
fn write(cfg: &WalConfig, records: &[&[u8]], compact: Option<(u64, &[u8], &[u8])>) {
    let recovered = open(cfg).unwrap();
    let (mut wal, mut synced) = WalHandle::start(cfg.clone(), &recovered).unwrap();
    for r in records {
        wal.append(r.to_vec());
    }
    if let Some((seq, state, base)) = compact {
        wal.compact(seq, [9; 32], Bytes::copy_from_slice(state), base.to_vec());
        wal.append(b"after".to_vec());
    }
    let target = wal.written();
    loop {
        let n = synced.blocking_recv().unwrap().unwrap();
        if n >= target {
            break;
        }
    }
}

fn records(r: &Recovered) -> Vec<Vec<u8>> {
    r.records.clone()
}

#[test]
fn appends_survive_reopening_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let many: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 20]).collect();
    let refs: Vec<&[u8]> = many.iter().map(|r| r.as_slice()).collect();
    write(&c, &refs[..20], None);
    write(&c, &refs[20..], None);
    let r = open(&c).unwrap();
    assert_eq!(records(&r), many);
    assert!(r.snapshot.is_none());
    let segments = fs::read_dir(dir.path()).unwrap().count();
    assert!(
        segments > 2,
        "300-byte segments roll over ({segments} files)"
    );
}

#[test]
fn compaction_replaces_older_segments_by_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let many: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i; 20]).collect();
    let refs: Vec<&[u8]> = many.iter().map(|r| r.as_slice()).collect();
    write(&c, &refs, Some((16, b"state", b"base")));
    let r = open(&c).unwrap();
    let snap = r.snapshot.clone().unwrap();
    assert_eq!((snap.seq, &snap.state[..]), (16, &b"state"[..]));
    assert_eq!(records(&r), vec![b"base".to_vec(), b"after".to_vec()]);
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "one snapshot, one segment: {names:?}");
}

fn newest_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

#[test]
fn a_torn_tail_is_truncated_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes = 1 << 20;
    write(&c, &[b"one", b"two", b"three"], None);
    let seg = newest_segment(dir.path());
    let len = fs::metadata(&seg).unwrap().len();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 2).unwrap();
    let r = open(&c).unwrap();
    assert_eq!(records(&r), vec![b"one".to_vec(), b"two".to_vec()]);
    assert!(
        r.torn
            .as_ref()
            .unwrap()
            .contains("wal-0000000000000000.log at offset")
    );
    write(&c, &[b"four"], None);
    let r = open(&c).unwrap();
    assert_eq!(
        records(&r),
        vec![b"one".to_vec(), b"two".to_vec(), b"four".to_vec()]
    );
    assert!(r.torn.is_none());
}

#[test]
fn corruption_in_the_middle_is_refused_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes = 1 << 20;
    write(&c, &[b"one", b"two", b"three"], None);
    let seg = newest_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    let second = format::SEGMENT_HEADER + format::RECORD_HEADER + 3;
    bytes[second + format::RECORD_HEADER] ^= 0x55;
    fs::write(&seg, &bytes).unwrap();
    let e = open(&c).unwrap_err();
    assert_eq!(e.offset, second as u64);
    assert!(e.is_damage());
    assert!(e.to_string().contains("wal-0000000000000000.log"), "{e}");
}

#[test]
fn foreign_newer_and_non_log_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    write(&c, &[b"one"], None);
    let mut other = c.clone();
    other.cluster = [2; 32];
    let e = open(&other).unwrap_err();
    assert!(matches!(e.kind, WalErrorKind::OtherCluster { .. }), "{e}");
    assert!(!e.is_damage());

    let seg = newest_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes[8] = 7;
    fs::write(&seg, &bytes).unwrap();
    let e = open(&c).unwrap_err();
    assert_eq!(e.kind, WalErrorKind::Version { found: 7 });

    fs::write(&seg, b"#!/bin/sh\necho this is a script, not a log\n").unwrap();
    assert_eq!(open(&c).unwrap_err().kind, WalErrorKind::NotALog);
    fs::write(&seg, b"TND").unwrap();
    assert_eq!(open(&c).unwrap_err().kind, WalErrorKind::TruncatedHeader(3));
}

#[test]
fn a_damaged_snapshot_or_a_missing_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let many: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i; 20]).collect();
    let refs: Vec<&[u8]> = many.iter().map(|r| r.as_slice()).collect();
    write(&c, &refs, Some((16, b"state", b"base")));
    for chunk in refs.chunks(10) {
        write(&c, chunk, None); // one group each: every group rolls a 300-byte segment
    }
    let snap = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .unwrap();
    let mut bytes = fs::read(&snap).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(&snap, &bytes).unwrap();
    let e = open(&c).unwrap_err();
    assert!(matches!(e.kind, WalErrorKind::Snapshot(_)), "{e}");
    if let Some(b) = bytes.last_mut() {
        *b ^= 1;
    }
    fs::write(&snap, &bytes).unwrap();
    assert!(open(&c).is_ok());

    let mut segs: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    fs::remove_file(&segs[1]).unwrap();
    let e = open(&c).unwrap_err();
    assert!(matches!(e.kind, WalErrorKind::Gap(_)), "{e}");
}
