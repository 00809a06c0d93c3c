//! The replica's write-ahead log: an append-only, segmented log of the protocol's
//! `Persist` records under the replica's data directory, with group commit, snapshots
//! at stable checkpoints, and recovery at start (`format.rs` has the byte layout,
//! `reader.rs` the checks).
//!
//! Writing: the driver hands encoded records to [`WalHandle::append`]; a writer thread
//! takes every record queued since its last fsync, writes them with one `write` and
//! one `fdatasync` (group commit), and reports how many records are durable. The
//! driver holds back every message sent after a record until that count covers it.
//! A segment over [`WalConfig::segment_bytes`] is closed (fsynced) and the next one
//! started. [`WalHandle::compact`] writes a stable checkpoint's application snapshot
//! (`snapshot-<n>.bin`, written to a temporary name, fsynced, renamed) and opens
//! segment `n` with the protocol's base record; only then are older segments and
//! snapshots removed.
//!
//! Recovery ([`open`]): the newest snapshot whose segment holds its base record, then
//! every record of that segment and the following ones. A torn tail of the newest
//! segment is cut off, and a newest segment whose header is incomplete (a rollover
//! or compaction the crash interrupted — the segment before it is full, or its
//! snapshot is there; it holds no records) is removed — both reported in
//! [`Recovered::torn`]. Corruption anywhere else, a missing segment, a foreign or newer
//! file is an error naming the file and offset — the node then moves the log aside and
//! recovers from its peers by state transfer. New segments are written under a
//! temporary name and renamed once their header is durable.
//!
//! Bounds: a segment is about [`WalConfig::segment_bytes`] (64 MiB by default; one
//! record may overshoot it); a record is at most 256 MiB (a larger one is refused at append). Replay holds every record
//! since the last snapshot in memory at once: about [`WalConfig::compact_bytes`] plus
//! the records written while no stable checkpoint was available to compact at.

pub mod format;
pub mod reader;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::node::wal::format::{
    ClusterId, WalError, WalErrorKind, frame_record, parse_name, read_snapshot, segment_header,
    segment_name, snapshot_file, snapshot_name,
};
use crate::node::wal::reader::scan_segment;

/// Where and how a replica logs.
#[derive(Clone, Debug)]
pub struct WalConfig {
    /// The log's directory (created if missing).
    pub dir: PathBuf,
    /// The cluster's id, written in every header.
    pub cluster: ClusterId,
    /// A segment is closed once it holds this many bytes.
    pub segment_bytes: u64,
    /// The driver compacts once this many bytes were logged since the last snapshot
    /// (and the protocol offers a newer stable checkpoint).
    pub compact_bytes: u64,
}

/// A snapshot read back at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The stable checkpoint's sequence number.
    pub seq: u64,
    /// Its application digest.
    pub app_digest: [u8; 32],
    /// The serialised application state.
    pub state: Bytes,
}

/// What [`open`] found.
#[derive(Debug)]
pub struct Recovered {
    /// The snapshot the records start from, if the log was compacted.
    pub snapshot: Option<Snapshot>,
    /// The records to replay, in order (the first is the base record if there is a
    /// snapshot).
    pub records: Vec<Vec<u8>>,
    /// The torn tails cut off or removed (a partial last record; a newest segment
    /// whose header is incomplete): file, offset and what was wrong, one per tail.
    pub torn: Vec<String>,
    /// Where appending continues.
    tail: Tail,
}

#[derive(Debug, Clone, Copy)]
struct Tail {
    segment: u64,
    len: u64,
}

fn io_err(path: &Path, e: std::io::Error) -> WalError {
    WalError::at(path, 0, WalErrorKind::Io(e.to_string()))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Opens (or creates) the log in `cfg.dir` and reads everything to replay.
///
/// # Errors
/// A [`WalError`] naming the file and offset: corruption before the tail, a missing
/// segment, a snapshot that fails its checksum, a file from another cluster or a newer
/// format, a file that is not a log, or an I/O error.
pub fn open(cfg: &WalConfig) -> Result<Recovered, WalError> {
    fs::create_dir_all(&cfg.dir).map_err(|e| io_err(&cfg.dir, e))?;
    let mut segments = Vec::new();
    let mut snapshots = Vec::new();
    for entry in fs::read_dir(&cfg.dir).map_err(|e| io_err(&cfg.dir, e))? {
        let entry = entry.map_err(|e| io_err(&cfg.dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            // An unfinished snapshot or segment: never renamed, so never relied on.
            let _ = fs::remove_file(entry.path());
            continue;
        }
        match parse_name(&name) {
            Some((false, n)) => segments.push(n),
            Some((true, n)) => snapshots.push(n),
            None => {}
        }
    }
    segments.sort_unstable();
    snapshots.sort_unstable();
    let mut torn = Vec::new();
    // The newest segment's header may never have reached the disk whole (a rollover
    // or compaction interrupted by a crash, by a build that wrote it in place): it
    // holds no records, so it is a torn tail, removed — never damage that costs the
    // whole log. Only with evidence that such a creation was under way: its
    // compaction's snapshot is there, or the segment before it is full (the only
    // reason the writer rolls over). Without (the only segment, or one after a short
    // segment) a short newest segment may have lost fsynced records to a lying disk:
    // damage, refused as before.
    let rolled_over = |segments: &[u64]| -> Result<bool, WalError> {
        let [.., prev, _] = segments else {
            return Ok(false);
        };
        let path = cfg.dir.join(segment_name(*prev));
        let len = fs::metadata(&path).map_err(|e| io_err(&path, e))?.len();
        Ok(len >= cfg.segment_bytes)
    };
    if let Some(&n) = segments.last()
        && (snapshots.last() == Some(&n) || rolled_over(&segments)?)
    {
        let path = cfg.dir.join(segment_name(n));
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        if let Some(problem) = torn_header(&bytes, &cfg.cluster, n) {
            fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            if snapshots.last() == Some(&n) {
                // Its compaction never finished: the older segments are all there.
                let snap = cfg.dir.join(snapshot_name(n));
                fs::remove_file(&snap).map_err(|e| io_err(&snap, e))?;
                snapshots.pop();
            }
            sync_dir(&cfg.dir)?;
            segments.pop();
            torn.push(format!(
                "{} at offset 0: {problem}; removed",
                path.display()
            ));
        }
    }
    let Some(&newest) = segments.last() else {
        if let Some(n) = snapshots.last() {
            let path = cfg.dir.join(snapshot_name(*n));
            return Err(WalError::at(
                path,
                0,
                WalErrorKind::Gap(format!("snapshot without its segment {}", segment_name(*n))),
            ));
        }
        create_segment(cfg, 0)?;
        return Ok(Recovered {
            snapshot: None,
            records: Vec::new(),
            torn,
            tail: Tail {
                segment: 0,
                len: format::SEGMENT_HEADER as u64,
            },
        });
    };
    // The newest snapshot whose segment exists and holds its base record; a
    // compaction that crashed before its segment was durable is undone.
    let mut start = None;
    for &k in snapshots.iter().rev() {
        if !segments.contains(&k) {
            continue;
        }
        if k == newest {
            let path = cfg.dir.join(segment_name(k));
            let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let scan = scan_segment(&bytes, &cfg.cluster, k, true, &path)?;
            if scan.records.is_empty() && segments.len() > 1 {
                let _ = fs::remove_file(&path);
                let _ = fs::remove_file(cfg.dir.join(snapshot_name(k)));
                segments.pop();
                continue;
            }
        }
        start = Some(k);
        break;
    }
    let first = match start {
        Some(k) => k,
        None => {
            let lowest = segments[0];
            if lowest != 0 {
                let path = cfg.dir.join(segment_name(lowest));
                return Err(WalError::at(
                    path,
                    0,
                    WalErrorKind::Gap(format!(
                        "the log starts at segment {lowest} without a snapshot"
                    )),
                ));
            }
            0
        }
    };
    let newest = *segments.last().expect("at least one segment");
    let used: Vec<u64> = segments.iter().copied().filter(|n| *n >= first).collect();
    for (i, n) in used.iter().enumerate() {
        if *n != first + i as u64 {
            let path = cfg.dir.join(segment_name(*n));
            return Err(WalError::at(
                path,
                0,
                WalErrorKind::Gap(format!("segment {} is missing", first + i as u64)),
            ));
        }
    }
    let snapshot = match start {
        Some(k) => {
            let path = cfg.dir.join(snapshot_name(k));
            let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let (seq, app_digest, state) = read_snapshot(&bytes, &cfg.cluster, &path)?;
            Some(Snapshot {
                seq,
                app_digest,
                state: Bytes::from(state),
            })
        }
        None => None,
    };
    let mut records = Vec::new();
    let mut tail_len = 0;
    for &n in &used {
        let path = cfg.dir.join(segment_name(n));
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let scan = scan_segment(&bytes, &cfg.cluster, n, n == newest, &path)?;
        if let Some((offset, problem)) = scan.torn {
            torn.push(format!("{} at offset {offset}: {problem}", path.display()));
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            f.set_len(scan.valid_len).map_err(|e| io_err(&path, e))?;
            f.sync_all().map_err(|e| io_err(&path, e))?;
        }
        records.extend(scan.records);
        tail_len = scan.valid_len;
    }
    if start.is_some() && records.is_empty() {
        let path = cfg.dir.join(segment_name(first));
        return Err(WalError::at(
            path,
            format::SEGMENT_HEADER as u64,
            WalErrorKind::Corrupt("the segment after a snapshot lacks its base record".into()),
        ));
    }
    // Leftovers of a compaction that crashed before removing them.
    for n in segments.iter().filter(|n| **n < first) {
        let _ = fs::remove_file(cfg.dir.join(segment_name(*n)));
    }
    for n in snapshots.iter().filter(|n| **n < first) {
        let _ = fs::remove_file(cfg.dir.join(snapshot_name(*n)));
    }
    Ok(Recovered {
        snapshot,
        records,
        torn,
        tail: Tail {
            segment: newest,
            len: tail_len,
        },
    })
}

/// If `bytes` (a whole segment file) is an incomplete header of segment `n` — a
/// prefix of the header this log would write, possibly followed by zeros (space the
/// file system allocated but the crash never filled), and no more than a header long —
/// what is missing; `None` for a complete header or anything else.
fn torn_header(bytes: &[u8], cluster: &ClusterId, n: u64) -> Option<String> {
    if bytes.len() > format::SEGMENT_HEADER {
        return None;
    }
    let expected = segment_header(cluster, n);
    let written = bytes
        .iter()
        .zip(expected.iter())
        .take_while(|(a, b)| a == b)
        .count();
    if written == format::SEGMENT_HEADER || bytes[written..].iter().any(|b| *b != 0) {
        return None;
    }
    Some(format!(
        "segment header incomplete ({written} of {} bytes), no records",
        format::SEGMENT_HEADER
    ))
}

/// Creates segment `n` with its header, durable: written and fsynced under a
/// temporary name, then renamed and the directory fsynced, so a crash leaves either
/// no segment `n` or a whole header (an unrenamed `.tmp` is removed by [`open`]).
fn create_segment(cfg: &WalConfig, n: u64) -> Result<File, WalError> {
    let path = cfg.dir.join(segment_name(n));
    let tmp = cfg.dir.join(format!("{}.tmp", segment_name(n)));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    f.write_all(&segment_header(&cfg.cluster, n))
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(&cfg.dir)?;
    Ok(f)
}

/// Work for the writer thread.
enum Op {
    Append(Bytes),
    Compact {
        seq: u64,
        app_digest: [u8; 32],
        state: Bytes,
        base: Bytes,
    },
}

/// A record the log refuses to take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppendError {
    /// Over the largest record the log's reader accepts ([`format::MAX_RECORD`]):
    /// written, it would make the log unreadable at the next start.
    #[error("a log record of {len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// The record's payload, bytes.
        len: usize,
        /// The limit, bytes.
        max: usize,
    },
}

/// The driver's end of the log.
pub struct WalHandle {
    tx: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
    /// Records handed to the writer so far.
    written: u64,
    /// Bytes appended since the last compaction.
    since_compaction: u64,
    compact_bytes: u64,
    /// Largest record accepted ([`format::MAX_RECORD`]; lowered in tests).
    max_record: usize,
}

/// How many records are durable (or why the log failed: the replica must stop).
pub type SyncReport = Result<u64, String>;

impl WalHandle {
    /// Starts the writer thread appending after what [`open`] recovered. Returns the
    /// handle and the stream of durability reports.
    pub fn start(
        cfg: WalConfig,
        recovered: &Recovered,
    ) -> Result<(WalHandle, UnboundedReceiver<SyncReport>), WalError> {
        let tail = recovered.tail;
        let path = cfg.dir.join(segment_name(tail.segment));
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        let (tx, rx) = mpsc::channel();
        let (synced_tx, synced_rx) = unbounded_channel();
        let compact_bytes = cfg.compact_bytes;
        let mut writer = Writer {
            cfg,
            file,
            segment: tail.segment,
            len: tail.len,
            durable: 0,
            buf: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("wal".into())
            .spawn(move || writer.run(rx, synced_tx))
            .map_err(|e| io_err(&path, e))?;
        Ok((
            WalHandle {
                tx: Some(tx),
                thread: Some(thread),
                written: 0,
                since_compaction: 0,
                compact_bytes,
                max_record: format::MAX_RECORD,
            },
            synced_rx,
        ))
    }

    /// Queues a record (the bytes are shared, not copied); it is durable once a
    /// [`SyncReport`] reaches the returned count.
    ///
    /// # Errors
    /// [`AppendError::TooLarge`] for a record over [`format::MAX_RECORD`] bytes, which
    /// the reader would refuse: nothing is queued and the count does not move.
    pub fn append(&mut self, record: Bytes) -> Result<u64, AppendError> {
        self.check_size(&record)?;
        self.since_compaction += record.len() as u64 + format::RECORD_HEADER as u64;
        self.written += 1;
        if let Some(tx) = &self.tx {
            let _ = tx.send(Op::Append(record));
        }
        Ok(self.written)
    }

    fn check_size(&self, record: &[u8]) -> Result<(), AppendError> {
        if record.len() > self.max_record {
            return Err(AppendError::TooLarge {
                len: record.len(),
                max: self.max_record,
            });
        }
        Ok(())
    }

    /// Lowers the record limit, so tests reach it without 256 MiB records.
    #[cfg(test)]
    pub(crate) fn limit_records(&mut self, max: usize) {
        self.max_record = max.min(format::MAX_RECORD);
    }

    /// Records queued so far: a message sent now waits until this many are durable.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether enough was logged since the last snapshot to compact.
    pub fn wants_compaction(&self) -> bool {
        self.since_compaction >= self.compact_bytes
    }

    /// Replaces everything logged so far by a stable checkpoint's snapshot and the
    /// protocol's base record (queued after every record appended before).
    ///
    /// # Errors
    /// [`AppendError::TooLarge`] for a base record over [`format::MAX_RECORD`] bytes:
    /// nothing is queued and the log keeps its records.
    pub fn compact(
        &mut self,
        seq: u64,
        app_digest: [u8; 32],
        state: Bytes,
        base: Bytes,
    ) -> Result<(), AppendError> {
        self.check_size(&base)?;
        self.since_compaction = 0;
        if let Some(tx) = &self.tx {
            let _ = tx.send(Op::Compact {
                seq,
                app_digest,
                state,
                base,
            });
        }
        Ok(())
    }
}

impl Drop for WalHandle {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Writer {
    cfg: WalConfig,
    file: File,
    segment: u64,
    len: u64,
    durable: u64,
    buf: Vec<u8>,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Op>, synced: UnboundedSender<SyncReport>) {
        while let Ok(op) = rx.recv() {
            let mut ops = vec![op];
            ops.extend(rx.try_iter());
            let mut appended = 0;
            let result = (|| -> Result<(), WalError> {
                for op in ops {
                    match op {
                        Op::Append(record) => {
                            frame_record(&record, &mut self.buf);
                            appended += 1;
                        }
                        Op::Compact {
                            seq,
                            app_digest,
                            state,
                            base,
                        } => self.compact(seq, &app_digest, &state, &base)?,
                    }
                }
                self.flush()?;
                self.sync()
            })();
            match result {
                Ok(()) => {
                    self.durable += appended;
                    if synced.send(Ok(self.durable)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = synced.send(Err(e.to_string()));
                    return;
                }
            }
        }
    }

    fn path(&self) -> PathBuf {
        self.cfg.dir.join(segment_name(self.segment))
    }

    /// Writes the buffered records, starting a new segment if this one is full.
    fn flush(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = self.path();
        self.file
            .write_all(&self.buf)
            .map_err(|e| WalError::at(&path, self.len, WalErrorKind::Io(e.to_string())))?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        if self.len >= self.cfg.segment_bytes {
            self.sync()?;
            self.segment += 1;
            self.file = create_segment(&self.cfg, self.segment)?;
            self.len = format::SEGMENT_HEADER as u64;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), WalError> {
        let path = self.path();
        self.file
            .sync_data()
            .map_err(|e| WalError::at(&path, self.len, WalErrorKind::Io(e.to_string())))
    }

    fn compact(
        &mut self,
        seq: u64,
        app_digest: &[u8; 32],
        state: &[u8],
        base: &[u8],
    ) -> Result<(), WalError> {
        self.flush()?;
        self.sync()?;
        let next = self.segment + 1;
        let dir = self.cfg.dir.clone();
        let snap = dir.join(snapshot_name(next));
        let tmp = dir.join(format!("{}.tmp", snapshot_name(next)));
        let bytes = snapshot_file(&self.cfg.cluster, seq, app_digest, state);
        (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &snap)
        })()
        .map_err(|e| io_err(&snap, e))?;
        sync_dir(&dir)?;
        let mut file = create_segment(&self.cfg, next)?;
        let mut framed = Vec::with_capacity(base.len() + format::RECORD_HEADER);
        frame_record(base, &mut framed);
        let seg = dir.join(segment_name(next));
        file.write_all(&framed)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err(&seg, e))?;
        let old = self.segment;
        self.file = file;
        self.segment = next;
        self.len = (format::SEGMENT_HEADER + framed.len()) as u64;
        // The new snapshot and segment are durable: older ones can go.
        for entry in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?.flatten() {
            if let Some((_, n)) = parse_name(&entry.file_name().to_string_lossy())
                && n <= old
            {
                let _ = fs::remove_file(entry.path());
            }
        }
        sync_dir(&dir)
    }
}

#[cfg(test)]
mod tests;
