//! What a load client measured: latency (HdrHistogram, microseconds) after the warm-up,
//! per-second completions and latency for the timeline, outcome counts, and every
//! acknowledged request (as ranges per client). Stats of several clients merge.

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::acknowledged::Acknowledged;

/// Highest latency recorded, in microseconds (larger values are clamped).
const MAX_LATENCY_MICROS: u64 = 120_000_000;

/// How a completed transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied to the ledger.
    Applied,
    /// Ordered, but aborted by its own checks (the receipt says why).
    Aborted,
    /// Its payload did not decode.
    Malformed,
}

/// One second of the run.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Requests completed in this second.
    pub completed: u64,
    /// Their latency, microseconds.
    pub latency: Histogram<u64>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            completed: 0,
            latency: new_histogram(),
        }
    }
}

/// A latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).expect("valid histogram bounds")
}

/// A load client's (or several merged clients') measurements.
#[derive(Clone, Debug)]
pub struct LoadStats {
    run_start: Instant,
    warmup: Duration,
    /// Latency of requests completed after the warm-up, microseconds.
    pub latency: Histogram<u64>,
    /// Per second since the run started.
    pub buckets: Vec<Bucket>,
    /// Requests submitted.
    pub submitted: u64,
    /// Requests completed.
    pub completed: u64,
    /// Completed and applied.
    pub applied: u64,
    /// Completed but aborted by the ledger.
    pub aborted: u64,
    /// Completed but malformed.
    pub malformed: u64,
    /// Retransmissions to all replicas.
    pub retransmissions: u64,
    /// Replies rejected (bad signature, wrong client).
    pub rejected_replies: u64,
    /// Frames that did not decode or came from a non-replica.
    pub bad_frames: u64,
    /// Requests still outstanding at the end.
    pub unfinished: u64,
    /// Offered requests not sent because too many were outstanding, or while the
    /// client backed off after busy refusals (open loop).
    pub shed: u64,
    /// Busy refusals received (a replica's queue was full; the request was sent
    /// again after a back-off): admission control at work, not a failure.
    pub busy_refusals: u64,
    /// Requests numbered again because f+1 replicas witnessed their numbers spent
    /// by an earlier run under the client's key (`ClientCounters::renumbered`).
    pub renumbered: u64,
    /// Request numbers passed over as spent by an earlier run under the key (from
    /// the marks query or stale-number notices: `ClientCounters::skipped_spent`).
    pub skipped: u64,
    /// Every request whose result was accepted (f+1 matching replies), per client id,
    /// warm-up included: what the acknowledged-loss check looks for in the replicas.
    pub acknowledged: Acknowledged,
}

/// What a client knows only when it stops (see [`LoadStats::finish`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct FinalCounts {
    /// Requests submitted.
    pub submitted: u64,
    /// Retransmissions (each to every replica).
    pub retransmissions: u64,
    /// Replies rejected (wrong client, unknown replica, bad signature).
    pub rejected_replies: u64,
    /// Requests still without a result.
    pub unfinished: u64,
    /// Offered requests never sent because too many were outstanding.
    pub shed: u64,
    /// Busy refusals received.
    pub busy_refusals: u64,
    /// Requests numbered again (their numbers spent by an earlier run).
    pub renumbered: u64,
    /// Numbers skipped as spent by an earlier run (from the marks query).
    pub skipped: u64,
}

impl LoadStats {
    /// Empty stats for a run that started at `run_start`.
    pub fn new(run_start: Instant, warmup: Duration) -> LoadStats {
        LoadStats {
            run_start,
            warmup,
            latency: new_histogram(),
            buckets: Vec::new(),
            submitted: 0,
            completed: 0,
            applied: 0,
            aborted: 0,
            malformed: 0,
            retransmissions: 0,
            rejected_replies: 0,
            bad_frames: 0,
            unfinished: 0,
            shed: 0,
            busy_refusals: 0,
            renumbered: 0,
            skipped: 0,
            acknowledged: Acknowledged::new(),
        }
    }

    /// Records that `client` accepted the result of its request `number`.
    pub fn acknowledge(&mut self, client: u32, number: u64) {
        self.acknowledged.entry(client).or_default().insert(number);
    }

    /// Records a completion now.
    pub fn completed(&mut self, latency: Duration, outcome: Outcome) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_MICROS);
        let since = self.run_start.elapsed();
        let second = since.as_secs() as usize;
        while self.buckets.len() <= second {
            self.buckets.push(Bucket::new());
        }
        let bucket = &mut self.buckets[second];
        bucket.completed += 1;
        bucket.latency.saturating_record(micros);
        if since >= self.warmup {
            self.latency.saturating_record(micros);
        }
        self.completed += 1;
        match outcome {
            Outcome::Applied => self.applied += 1,
            Outcome::Aborted => self.aborted += 1,
            Outcome::Malformed => self.malformed += 1,
        }
    }

    /// Records the client state machine's final counters.
    pub fn finish(&mut self, counts: FinalCounts) {
        self.submitted = counts.submitted;
        self.retransmissions = counts.retransmissions;
        self.rejected_replies = counts.rejected_replies;
        self.unfinished = counts.unfinished;
        self.shed = counts.shed;
        self.busy_refusals = counts.busy_refusals;
        self.renumbered = counts.renumbered;
        self.skipped = counts.skipped;
    }

    /// Adds another client's stats (same run start).
    pub fn merge(&mut self, other: &LoadStats) {
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        while self.buckets.len() < other.buckets.len() {
            self.buckets.push(Bucket::new());
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.completed += theirs.completed;
            mine.latency
                .add(&theirs.latency)
                .expect("same histogram bounds");
        }
        self.submitted += other.submitted;
        self.completed += other.completed;
        self.applied += other.applied;
        self.aborted += other.aborted;
        self.malformed += other.malformed;
        self.retransmissions += other.retransmissions;
        self.rejected_replies += other.rejected_replies;
        self.bad_frames += other.bad_frames;
        self.unfinished += other.unfinished;
        self.shed += other.shed;
        self.busy_refusals += other.busy_refusals;
        self.renumbered += other.renumbered;
        self.skipped += other.skipped;
        for (client, ranges) in &other.acknowledged {
            self.acknowledged.entry(*client).or_default().merge(ranges);
        }
    }

    /// Completions in whole seconds `[from, to)` of the run.
    pub fn completed_between(&self, from: usize, to: usize) -> u64 {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(i, _)| *i >= from && *i < to)
            .map(|(_, b)| b.completed)
            .sum()
    }
}

impl LoadStats {
    /// The three lines `tandem client` prints: throughput over the whole seconds from
    /// `warmup` to `duration`, latency percentiles (ms) and outcome counts.
    pub fn render_client_summary(&self, duration: Duration, warmup: Duration) -> String {
        let measured = duration.saturating_sub(warmup).as_secs_f64().max(1e-9);
        let from = warmup.as_secs() as usize;
        let to = duration.as_secs() as usize;
        let tps = self.completed_between(from, to) as f64 / to.saturating_sub(from).max(1) as f64;
        let h = &self.latency;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "submitted {}  completed {}  ({:.0} tx/s over {:.0} s)\n\
             latency ms  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}\n\
             outcomes    applied {}  aborted {}  malformed {}  unfinished {}  shed {}  busy {}  retransmissions {}  renumbered {}  skipped {}",
            self.submitted,
            self.completed,
            tps,
            measured,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1000.0,
            self.applied,
            self.aborted,
            self.malformed,
            self.unfinished,
            self.shed,
            self.busy_refusals,
            self.retransmissions,
            self.renumbered,
            self.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_and_merges() {
        let start = Instant::now();
        let mut a = LoadStats::new(start, Duration::ZERO);
        a.completed(Duration::from_millis(5), Outcome::Applied);
        a.completed(Duration::from_millis(7), Outcome::Aborted);
        let mut b = LoadStats::new(start, Duration::ZERO);
        b.completed(Duration::from_millis(9), Outcome::Malformed);
        a.merge(&b);
        assert_eq!(a.completed, 3);
        assert_eq!((a.applied, a.aborted, a.malformed), (1, 1, 1));
        assert_eq!(a.latency.len(), 3);
        assert_eq!(a.completed_between(0, 1), 3);
        assert!(a.latency.max() >= 9_000);
    }

    #[tokio::test]
    async fn warmup_is_left_out_of_the_summary_histogram() {
        let mut s = LoadStats::new(Instant::now(), Duration::from_secs(60));
        s.completed(Duration::from_millis(1), Outcome::Applied);
        assert_eq!(s.latency.len(), 0);
        assert_eq!(s.buckets[0].completed, 1);
    }

    #[tokio::test]
    async fn client_summary_names_every_figure() {
        let mut s = LoadStats::new(Instant::now(), Duration::ZERO);
        for _ in 0..4 {
            s.completed(Duration::from_millis(3), Outcome::Applied);
        }
        s.finish(FinalCounts {
            submitted: 6,
            retransmissions: 1,
            rejected_replies: 0,
            unfinished: 1,
            shed: 1,
            busy_refusals: 2,
            renumbered: 3,
            skipped: 5,
        });
        let text = s.render_client_summary(Duration::from_secs(1), Duration::ZERO);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "submitted 6  completed 4  (4 tx/s over 1 s)");
        assert!(
            lines[1].starts_with("latency ms  p50 3.0  p90 3.0"),
            "{text}"
        );
        assert_eq!(
            lines[2],
            "outcomes    applied 4  aborted 0  malformed 0  unfinished 1  shed 1  busy 2  retransmissions 1  renumbered 3  skipped 5"
        );
    }
}
