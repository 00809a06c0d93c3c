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
        wal.append(Bytes::copy_from_slice(r)).unwrap();
    }
    if let Some((seq, state, base)) = compact {
        wal.compact(
            seq,
            [9; 32],
            Bytes::copy_from_slice(state),
            Bytes::copy_from_slice(base),
        )
        .unwrap();
        wal.append(Bytes::from_static(b"after")).unwrap();
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
    assert_eq!(r.torn.len(), 1);
    assert!(r.torn[0].contains("wal-0000000000000000.log at offset"));
    write(&c, &[b"four"], None);
    let r = open(&c).unwrap();
    assert_eq!(
        records(&r),
        vec![b"one".to_vec(), b"two".to_vec(), b"four".to_vec()]
    );
    assert!(r.torn.is_empty());
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
    // Short, and not the start of a header this log writes: refused, not torn.
    fs::write(&seg, b"TNX").unwrap();
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

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    segs
}

/// A crash during rollover leaves the next segment empty, with part of its header,
/// or with part of it and zeros the file system allocated: the log reopens with every
/// earlier record, reports the removed segment as a torn tail, and appending goes on.
/// (Before the fix each case refused the whole log as damaged.)
#[test]
fn a_last_segment_with_an_incomplete_header_is_a_torn_tail() {
    let many: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 20]).collect();
    let refs: Vec<&[u8]> = many.iter().map(|r| r.as_slice()).collect();
    // (what, header bytes written, file length: zeros after the written part)
    let cases = [
        ("empty", 0, 0),
        ("half a header", 28, 28),
        ("a header prefix then zeros", 20, format::SEGMENT_HEADER),
    ];
    for (what, written, len) in cases {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        write(&c, &refs, None);
        let segs = segments(dir.path());
        let last = segs.last().unwrap();
        let (_, n) = parse_name(&last.file_name().unwrap().to_string_lossy()).unwrap();
        let next = dir.path().join(segment_name(n + 1));
        let mut contents = format::segment_header(&CLUSTER, n + 1)[..written].to_vec();
        contents.resize(len, 0);
        fs::write(&next, contents).unwrap();

        // The rule needs evidence of a rollover: the segment before is full for the
        // configuration that reads it.
        let mut full = c.clone();
        full.segment_bytes = fs::metadata(last).unwrap().len();
        let r = open(&full).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(records(&r), many, "{what}");
        assert_eq!(r.torn.len(), 1, "{what}: {:?}", r.torn);
        assert!(
            r.torn[0].contains(&segment_name(n + 1)),
            "{what}: {:?}",
            r.torn
        );
        assert!(!next.exists(), "{what}: the headerless segment is removed");

        write(&c, &[b"more"], None);
        let mut want = many.clone();
        want.push(b"more".to_vec());
        let r = open(&c).unwrap();
        assert_eq!(records(&r), want, "{what}: appending continues");
        assert!(r.torn.is_empty(), "{what}");
    }
}

/// A compaction that crashed while creating its segment: the snapshot is there, its
/// segment has half a header. The compaction is undone (both removed) and the log
/// reopens with every record from before it.
#[test]
fn a_compaction_segment_with_an_incomplete_header_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let many: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 20]).collect();
    let refs: Vec<&[u8]> = many.iter().map(|r| r.as_slice()).collect();
    write(&c, &refs, None);
    let segs = segments(dir.path());
    let (_, n) = parse_name(&segs.last().unwrap().file_name().unwrap().to_string_lossy()).unwrap();
    let snap = dir.path().join(snapshot_name(n + 1));
    fs::write(&snap, snapshot_file(&CLUSTER, 8, &[9; 32], b"state")).unwrap();
    fs::write(
        dir.path().join(segment_name(n + 1)),
        &format::segment_header(&CLUSTER, n + 1)[..10],
    )
    .unwrap();
    let r = open(&c).unwrap();
    assert!(r.snapshot.is_none());
    assert_eq!(records(&r), many);
    assert_eq!(r.torn.len(), 1);
    assert!(!snap.exists());
}

/// A short newest segment without evidence that its creation was under way is damage,
/// not a torn tail: the only segment of a log (the writer creates segments under a
/// temporary name, so a torn first segment means the disk lost what it said was
/// durable), or a segment after one that was not full — refused, so the replica
/// recovers by state transfer instead of replaying a log that lost records. A half
/// header in an older segment stays damage too.
#[test]
fn a_short_newest_segment_without_a_rollover_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    fs::write(
        dir.path().join(segment_name(0)),
        &format::segment_header(&CLUSTER, 0)[..30],
    )
    .unwrap();
    let e = open(&c).unwrap_err();
    assert!(e.is_damage(), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    write(&c, &[b"one", b"two"], None);
    let segs = segments(dir.path());
    let (_, n) = parse_name(&segs.last().unwrap().file_name().unwrap().to_string_lossy()).unwrap();
    fs::write(
        dir.path().join(segment_name(n + 1)),
        &format::segment_header(&CLUSTER, n + 1)[..30],
    )
    .unwrap();
    let e = open(&c).unwrap_err();
    assert!(e.is_damage(), "the segment before is not full: {e}");

    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let many: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 20]).collect();
    let refs: Vec<&[u8]> = many.iter().map(|r| r.as_slice()).collect();
    for chunk in refs.chunks(10) {
        write(&c, chunk, None); // one group each: every group rolls a 300-byte segment
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 2, "{segs:?}");
    fs::write(&segs[1], &format::segment_header(&CLUSTER, 1)[..30]).unwrap();
    let e = open(&c).unwrap_err();
    assert_eq!(e.kind, WalErrorKind::TruncatedHeader(30));
    assert!(e.is_damage());
}

/// Rollover leaves no temporary file behind, and a leftover `.tmp` (a rollover that
/// crashed before its rename) is removed at open.
#[test]
fn rollover_renames_its_segment_and_leftover_temporaries_go() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let many: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 20]).collect();
    let refs: Vec<&[u8]> = many.iter().map(|r| r.as_slice()).collect();
    write(&c, &refs, None);
    let names = || -> Vec<String> {
        fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(
        names().iter().all(|n| !n.ends_with(".tmp")),
        "{:?}",
        names()
    );
    let n = segments(dir.path()).len() as u64;
    let tmp = dir.path().join(format!("{}.tmp", segment_name(n)));
    fs::write(&tmp, &format::segment_header(&CLUSTER, n)[..5]).unwrap();
    assert_eq!(records(&open(&c).unwrap()), many);
    assert!(!tmp.exists());
}

/// A record over the reader's limit is refused at append (the log it would write could
/// not be read back), nothing is queued, and the log stays readable; a base record over
/// it does not compact. (Before the fix the writer logged it and `open` refused the log.)
#[test]
fn a_record_over_the_reader_limit_is_refused_at_append() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let recovered = open(&c).unwrap();
    let (mut wal, mut synced) = WalHandle::start(c.clone(), &recovered).unwrap();
    wal.append(Bytes::from_static(b"one")).unwrap();
    // calloc'd: the 256 MiB are never touched.
    let huge = Bytes::from(vec![0u8; format::MAX_RECORD + 1]);
    assert_eq!(
        wal.append(huge.clone()),
        Err(AppendError::TooLarge {
            len: format::MAX_RECORD + 1,
            max: format::MAX_RECORD
        })
    );
    assert_eq!(wal.written(), 1, "nothing queued");
    assert!(
        wal.compact(4, [9; 32], Bytes::from_static(b"state"), huge)
            .is_err()
    );
    assert_eq!(wal.append(Bytes::from_static(b"two")).unwrap(), 2);
    while synced.blocking_recv().unwrap().unwrap() < 2 {}
    drop(wal);
    let r = open(&c).unwrap();
    assert_eq!(records(&r), vec![b"one".to_vec(), b"two".to_vec()]);
    assert!(r.snapshot.is_none());
}
