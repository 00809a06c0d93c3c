//! The client side of any protocol as a state machine: number requests, send them
//! where the protocol's [`ClientRouting`] says (PBFT: the primary of the view replicas
//! report), accept a result once f+1 replicas sent the same one, and retransmit to
//! every replica on time-out.
//!
//! Replicas remember, per client, only the request numbers within the protocol's
//! `client_window` of the highest one they delivered (older numbers count as done). So
//! a client never numbers a request `client_window` or more above its oldest
//! outstanding one: [`ClientCore::submit`] refuses until that request completes. That
//! is what guarantees a lost request is still executed when it is retransmitted.
//!
//! A request is retransmitted when its time-out passes and it looks lost: a request
//! sent after it already completed (requests from one client are queued in order, so
//! it was dropped), or nothing at all completed for a time-out (where it went may be
//! faulty). While the cluster keeps completing this client's older requests, a late
//! request is only queued behind them, and retransmitting it to every replica would
//! add load exactly when the cluster has none to spare. The time-out itself adapts to
//! the round trips the client sees (RFC 6298).
//!
//! A client's numbering restarts at 1 with every run, but replicas remember the
//! numbers a previous run under the same key used. A replica answers a request whose
//! number it holds as delivered without this request's result with a
//! [`StaleNumber`] notice; once f+1 replicas witness that the number is spent
//! ([`StaleNumber::witnesses`]: another request's result is cached under it, or a
//! number a whole window above it is done, which this run cannot have sent while the
//! request was outstanding) the client numbers the request again, above the (f+1)-th
//! highest low mark the replicas reported (so above at least one correct replica's:
//! every number up to it is done, and none above is refused as too far). A request is
//! renumbered only on f+1 witnesses, so at least one correct replica saw its number
//! spent by another request: one Byzantine replica can neither make it run twice nor
//! make the client skip a number it could still use (which would leave a gap no
//! request fills, and the window's low mark stuck below it). A renumbered request keeps
//! its payload; its result is accepted only under its new number's digest.
//!
//! Stale-number notices need a witness, and after the replicas restarted between two
//! runs (or took a state transfer) their reply caches are empty, so the only one left
//! is a done number a whole window above. A run therefore starts with a *marks query*
//! ([`ClientCore::query_marks`], usable again whenever nothing is outstanding): every
//! replica answers with its row of the replicated exactly-once table
//! ([`ClientMarks`]: low mark, high mark, done numbers above the low mark), and the
//! client numbers nothing until f+1 distinct replicas answered (and 2f+1, or a
//! time-out passed). It then numbers above the (f+1)-th highest low mark and skips the
//! numbers above it that f+1 answers hold done (see [`ClientCore::query_marks`] for
//! why f Byzantine replicas can make it neither skip a usable number nor reuse a spent
//! one).
//!
//! Like the replica, it never reads a clock or touches a socket: the caller passes the
//! time and carries out [`ClientAction`]s.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use crate::client_auth::ClientMacs;
use crate::crypto::verify_signature;
use crate::request::{ClientMarks, Reply, ReplyResult, Request, StaleNumber};
use crate::types::{ClientId, Digest, ReplicaId, Time, View, max_faulty};

/// Where a client sends a new request: a policy each protocol supplies
/// (`Protocol::client_routing`), fed with the view or round every accepted reply
/// reports. PBFT follows the primary of the (f+1)-th highest reported view; a
/// rotating-leader protocol may send to the next few leaders, or to all.
pub trait ClientRouting: std::fmt::Debug + Send {
    /// Replica `replica` (an index below n, its reply's signature checked when
    /// replies are signed) reported `view` in a reply.
    fn on_reply(&mut self, replica: ReplicaId, view: View);

    /// Where a new request goes now.
    fn destination(&self) -> Destination;
}

/// The replicas a new request goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// One replica.
    One(ReplicaId),
    /// Several replicas (each gets its own [`ClientAction::Send`]).
    Several(Vec<ReplicaId>),
    /// Every replica (one [`ClientAction::Broadcast`]).
    All,
}

/// What the client asks its driver to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Send a request to one replica (where the routing policy points).
    Send {
        /// Destination.
        to: ReplicaId,
        /// Request.
        request: Request,
    },
    /// Send a request to every replica (a retransmission).
    Broadcast {
        /// Request.
        request: Request,
    },
    /// Ask every replica for this client's marks in its exactly-once table
    /// (`Event::MarksQuery` at the replica; [`ClientCore::query_marks`]).
    QueryMarks,
}

/// A request whose result f+1 replicas agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The request number.
    pub number: u64,
    /// The agreed result.
    pub result: Bytes,
    /// The request's payload (what the result answers, whatever number it ran under).
    pub payload: Bytes,
    /// When the request was first sent.
    pub sent_at: Time,
    /// From first send to the (f+1)-th matching reply.
    pub latency: Duration,
    /// Whether it had to be retransmitted.
    pub retransmitted: bool,
}

/// Client counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Requests submitted.
    pub submitted: u64,
    /// Requests completed.
    pub completed: u64,
    /// Retransmissions (each a broadcast).
    pub retransmissions: u64,
    /// Time-outs that passed while older requests were still completing: the
    /// request was queued, not lost, and its retransmission was postponed.
    pub postponed_retransmissions: u64,
    /// Replies dropped: wrong client, unknown replica, or a bad signature.
    pub rejected_replies: u64,
    /// Results that answered a request other than the one this client sent under
    /// that number (its digest differs): a request forged in its name was executed.
    /// Never accepted, however many replicas send them.
    pub foreign_results: u64,
    /// Replies for requests no longer outstanding.
    pub late_replies: u64,
    /// Submissions refused because the oldest outstanding request would fall out of
    /// the replicas' exactly-once window.
    pub window_full: u64,
    /// Busy refusals received ([`Reply::busy`]): a replica did not queue the request
    /// because its queue was full. Not a failure: the request is sent again after a
    /// back-off.
    pub busy_refusals: u64,
    /// Requests sent again after a busy refusal's back-off.
    pub busy_retries: u64,
    /// Stale-number notices received for outstanding requests ([`StaleNumber`]).
    pub stale_notices: u64,
    /// Requests numbered again after f+1 replicas witnessed their number spent.
    pub renumbered: u64,
    /// Busy refusals ignored because they came from a replica the request is not
    /// routed to (only the route's replicas decide whether it queues).
    pub ignored_busy: u64,
    /// Marks queries sent to every replica ([`ClientCore::query_marks`], and again
    /// after each time-out while fewer than f+1 replicas answered).
    pub marks_queries: u64,
    /// Marks answers dropped: malformed ([`ClientMarks::is_well_formed`]), or
    /// arriving when no query was open (late), or a replica's second answer.
    pub marks_dropped: u64,
    /// Numbers passed over as spent: at or below the floor (the (f+1)-th highest low
    /// mark reported) or held done by f+1 marks answers.
    pub skipped_spent: u64,
}

/// The first back-off after a busy refusal; it doubles with every further refusal of
/// a request sent at or after the moment the back-off began, up to [`MAX_BUSY_BACKOFF`], and starts
/// over once a request completes.
pub const MIN_BUSY_BACKOFF: Duration = Duration::from_millis(5);
/// The longest back-off after busy refusals.
pub const MAX_BUSY_BACKOFF: Duration = Duration::from_millis(320);
/// The smallest congestion window ([`ClientCore::congestion_room`]): requests a
/// client may keep outstanding however often it is refused.
pub const MIN_CONGESTION_WINDOW: usize = 4;
// The additive increase loop ends only because the window is never zero.
const _: () = assert!(MIN_CONGESTION_WINDOW > 0);
/// Additive increase of the congestion window: requests it grows by per window's
/// worth of completions (about one round trip). A request is small against a TCP
/// segment, so one per round trip would take thousands of round trips to refill a
/// window halved from a few thousand.
pub const CONGESTION_WINDOW_INCREASE: usize = 64;

#[derive(Debug)]
struct Outstanding {
    request: Request,
    /// [`Request::digest`]: what a result must name to be accepted.
    digest: Digest,
    sent_at: Time,
    /// When it was first sent under its number (a busy retry does not move it, so
    /// a proposer that refuses it forever cannot postpone its resend to every
    /// replica): what tells a queued request from an overtaken one.
    last_sent_at: Time,
    /// When it was last sent to its route (first send or busy retry): a busy
    /// refusal of it escalates the back-off only if this is not older than the
    /// back-off (`ClientCore::busy_since`).
    routed_at: Time,
    /// When it is resent to every replica if it still looks lost. A busy refusal
    /// never moves it: a primary that refuses a request forever must not keep it
    /// from the backups, whose request timers are what replace a censoring primary.
    retransmit_at: Time,
    retransmitted: bool,
    /// Refused as busy and not sent again yet: at this time it goes again where new
    /// requests go (not to every replica, which would make backups wait for it).
    busy_retry_at: Option<Time>,
    /// Replicas of the request's route that refused it as busy since it was last
    /// sent (at most n, each once).
    busy_from: Vec<ReplicaId>,
    /// Its key in `ClientCore::deadlines`: the earlier of `retransmit_at` and
    /// `busy_retry_at`.
    deadline: Time,
    replies: BTreeMap<ReplicaId, Bytes>,
    /// When it got its current number (its first send, or its renumbering): what its
    /// round trip is measured from.
    numbered_at: Time,
    /// Replicas whose stale-number notice witnessed its number spent (each once).
    stale_from: Vec<ReplicaId>,
    /// A witness came (from its route, typically): it is sent to every replica at
    /// the next tick, so f+1 can answer without waiting for its time-out. Once per
    /// number, so notices from a Byzantine replica buy at most one broadcast each.
    stale_probe: StaleProbe,
}

/// Whether an outstanding request was sent to every replica because a replica
/// witnessed its number spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StaleProbe {
    /// No witness yet.
    None,
    /// A witness came: broadcast at the next tick.
    Due,
    /// Broadcast already.
    Sent,
}

/// A request whose number f+1 replicas witnessed spent, waiting for a new number.
#[derive(Debug)]
struct Parked {
    payload: Bytes,
    sent_at: Time,
    retransmitted: bool,
}

/// An open marks query: when it was sent, when it goes out again if fewer than f+1
/// replicas answered, and the first well-formed answer of each replica.
#[derive(Debug)]
struct MarksQuery {
    asked_at: Time,
    retry_at: Time,
    answers: BTreeMap<ReplicaId, ClientMarks>,
}

impl Outstanding {
    /// The earlier of the resend-to-all deadline and the busy retry: its key in
    /// `ClientCore::deadlines`.
    fn earliest_deadline(&self) -> Time {
        self.busy_retry_at
            .map_or(self.retransmit_at, |t| t.min(self.retransmit_at))
    }
}

/// A smoothed round-trip estimate (RFC 6298): `srtt` and `rttvar` in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
struct RttEstimate {
    srtt: Option<u64>,
    rttvar: u64,
}

impl RttEstimate {
    fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_nanos().min(u64::MAX as u128) as u64;
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                self.rttvar = (3 * (self.rttvar / 4)).saturating_add(srtt.abs_diff(r) / 4);
                self.srtt = Some((7 * (srtt / 8)).saturating_add(r / 8));
            }
        }
    }

    /// `srtt + 4·rttvar`, zero before the first sample.
    fn timeout(&self) -> Duration {
        let srtt = self.srtt.unwrap_or(0);
        Duration::from_nanos(srtt.saturating_add(self.rttvar.saturating_mul(4)))
    }
}

/// A client of any protocol: its [`ClientRouting`] decides where new requests go.
#[derive(Debug)]
pub struct ClientCore {
    id: ClientId,
    replicas: usize,
    weak: usize,
    /// How many distinct replicas' stale-number notices or marks answers the client
    /// needs before it renumbers, skips or moves its floor: f+1 ([`ClientCore::weak`]
    /// in value); 1 only under the test-only broken rule.
    trusted: usize,
    retransmit_after: Duration,
    rtt: RttEstimate,
    /// When a request last completed, and when the latest-sent completed request
    /// was sent: what tells a lost request from a queued one.
    last_completion_at: Option<Time>,
    latest_completed_sent_at: Option<Time>,
    replica_keys: Option<Vec<[u8; 32]>>,
    window: u64,
    next_number: u64,
    outstanding: BTreeMap<u64, Outstanding>,
    /// The highest low mark each replica reported in a stale-number notice.
    lows: BTreeMap<ReplicaId, u64>,
    /// Requests to number again, in the order their numbers were found spent.
    parked: VecDeque<Parked>,
    /// When [`ClientCore::on_tick`] has work no timer stands for: parked requests to
    /// number again, or a marks query that can be closed.
    renumber_at: Option<Time>,
    /// The open marks query, if any.
    marks_query: Option<MarksQuery>,
    /// Numbers above the floor that f+1 marks answers held done, as inclusive runs
    /// (first → last), never numbered.
    spent: BTreeMap<u64, u64>,
    deadlines: BTreeSet<(Time, u64)>,
    routing: Box<dyn ClientRouting>,
    macs: ClientMacs,
    counters: ClientCounters,
    /// The current busy back-off, and until when new requests wait.
    busy_backoff: Duration,
    busy_until: Option<Time>,
    /// When the current back-off began: a refusal of a request sent before it says
    /// nothing new about the cluster (that request was already in the queue that made
    /// the proposer refuse), so it neither extends nor doubles the back-off.
    busy_since: Option<Time>,
    /// The congestion window: how many requests may be outstanding, `None` until
    /// the first busy refusal (then only the caller's own window limits it).
    /// Halved on a busy refusal that starts a back-off, grown by
    /// [`CONGESTION_WINDOW_INCREASE`] per window of completions (AIMD).
    congestion_window: Option<usize>,
    /// Completions' credit towards the next increase of `congestion_window`.
    window_credit: usize,
}

impl ClientCore {
    /// A client of an `replicas`-replica cluster whose replicas keep an exactly-once
    /// window of `window` request numbers per client (the protocol's
    /// `client_window`), retransmitting after `retransmit_after` and routing new
    /// requests with `routing` (the protocol's `Protocol::client_routing`). With
    /// `replica_keys` (signed-all mode) it verifies reply signatures.
    pub fn new(
        id: ClientId,
        replicas: usize,
        window: u64,
        retransmit_after: Duration,
        replica_keys: Option<Vec<[u8; 32]>>,
        routing: Box<dyn ClientRouting>,
    ) -> ClientCore {
        ClientCore {
            id,
            replicas,
            weak: max_faulty(replicas) + 1,
            trusted: max_faulty(replicas) + 1,
            retransmit_after,
            rtt: RttEstimate::default(),
            last_completion_at: None,
            latest_completed_sent_at: None,
            replica_keys,
            window: window.max(1),
            next_number: 1,
            outstanding: BTreeMap::new(),
            lows: BTreeMap::new(),
            parked: VecDeque::new(),
            renumber_at: None,
            marks_query: None,
            spent: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            routing,
            macs: ClientMacs::default(),
            counters: ClientCounters::default(),
            busy_backoff: MIN_BUSY_BACKOFF,
            busy_until: None,
            busy_since: None,
            congestion_window: None,
            window_credit: 0,
        }
    }

    /// The same client started again (a new run under the same key): its id, cluster,
    /// keys, time-out and trust rule, routed by `routing`; nothing outstanding,
    /// nothing learned, and numbering from 1 again.
    pub fn restarted(&self, routing: Box<dyn ClientRouting>) -> ClientCore {
        ClientCore {
            trusted: self.trusted,
            ..ClientCore::new(
                self.id,
                self.replicas,
                self.window,
                self.retransmit_after,
                self.replica_keys.clone(),
                routing,
            )
        }
        .with_macs(self.macs.clone())
    }

    /// Test-only: believes one replica's stale-number notice or marks answer, as if
    /// f = 0 (the broken rule the simulator must catch with `forge-stale` replicas).
    #[cfg(test)]
    pub(crate) fn trusting_one_replica(mut self) -> ClientCore {
        self.trusted = 1;
        self
    }

    /// Whether the cluster refused this client's requests as busy and its back-off
    /// has not passed: new requests should wait (an open-loop driver sheds them).
    pub fn backing_off(&self, now: Time) -> bool {
        self.busy_until.is_some_and(|t| now < t)
    }

    /// How many more requests the congestion window lets this client have
    /// outstanding (`usize::MAX` before any busy refusal). An open-loop driver sheds
    /// the offered load beyond it, a closed-loop one waits: so a client offering more
    /// than the cluster admits settles near what it admits, instead of alternating
    /// between silence and a burst of refused requests (whose receipt, MAC checks
    /// and refusals cost the proposer what it needs for ordering).
    pub fn congestion_room(&self) -> usize {
        self.congestion_window
            .map_or(usize::MAX, |w| w.saturating_sub(self.outstanding()))
    }

    /// Authenticates every request with `macs` (one key per replica, `client_auth.rs`);
    /// without them requests go out unauthenticated and replicas refuse them.
    pub fn with_macs(mut self, macs: ClientMacs) -> ClientCore {
        self.macs = macs;
        self
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Where a new request would go now.
    pub fn destination(&self) -> Destination {
        self.routing.destination()
    }

    /// Requests sent and not yet completed (those waiting to be numbered again
    /// included).
    pub fn outstanding(&self) -> usize {
        self.outstanding.len() + self.parked.len()
    }

    /// Counters.
    pub fn counters(&self) -> &ClientCounters {
        &self.counters
    }

    /// Whether a new request can be numbered without its oldest outstanding request
    /// falling out of the replicas' exactly-once window (requests waiting to be
    /// numbered again go first), and no marks query is open.
    pub fn can_submit(&self) -> bool {
        self.parked.is_empty() && self.marks_query.is_none() && self.can_number()
    }

    /// Every number up to this is done at some correct replica: the (f+1)-th highest
    /// low mark replicas reported (0 before f+1 reported one).
    fn floor(&self) -> u64 {
        let mut lows: Vec<u64> = self.lows.values().copied().collect();
        lows.sort_unstable_by(|a, b| b.cmp(a));
        lows.get(self.trusted - 1).copied().unwrap_or(0)
    }

    /// The number the next request gets: the next of this run's, or above the floor,
    /// past any run of numbers f+1 marks answers held done.
    fn candidate(&self) -> u64 {
        let mut n = self.next_number.max(self.floor().saturating_add(1));
        while let Some((_, &last)) = self.spent.range(..=n).next_back()
            && last >= n
        {
            if last == u64::MAX {
                return u64::MAX; // never used: `can_number` refuses it
            }
            n = last + 1;
        }
        n
    }

    /// Whether [`ClientCore::candidate`] may be used: below `u64::MAX` and less than
    /// the window above the oldest outstanding request.
    fn can_number(&self) -> bool {
        let n = self.candidate();
        n < u64::MAX
            && self
                .outstanding
                .keys()
                .next()
                .is_none_or(|oldest| n < oldest.saturating_add(self.window))
    }

    /// Takes the next number ([`ClientCore::can_number`] said yes).
    fn take_number(&mut self) -> u64 {
        let n = self.candidate();
        self.counters.skipped_spent += n - self.next_number;
        self.next_number = n.saturating_add(1);
        n
    }

    /// Opens a marks query: asks every replica for this client's row of its
    /// exactly-once table ([`ClientAction::QueryMarks`]), and numbers nothing until it
    /// closes — once f+1 distinct replicas answered and either 2f+1 did or a
    /// retransmission time-out passed since it was sent (sent again after each
    /// time-out while fewer than f+1 answered). It then numbers above the (f+1)-th
    /// highest low mark the answers (and earlier stale-number notices) reported, and
    /// skips every number above that f+1 answers hold done (below their low mark or
    /// in one of their runs of done numbers, [`ClientMarks`]). Returns whether the
    /// query is open; refused (`false`, nothing sent) while requests are outstanding
    /// or waiting to be numbered again, so a run asks before its first request, and
    /// may ask again whenever it is idle.
    ///
    /// Why f Byzantine replicas can do neither harm:
    /// - *No spent number is reused because of them.* The floor is the (f+1)-th
    ///   highest low mark, so at least one of the f+1 answers at or above it is a
    ///   correct replica's, and a correct replica's table is that of a prefix of the
    ///   committed sequence: every number up to the floor was delivered, for good. A
    ///   faulty replica reporting a low (or high) mark of 0 only lowers its own
    ///   entry, which is not among the f+1 highest unless f+1 others are lower.
    /// - *No usable number is skipped because of them.* A number is skipped only when
    ///   f+1 answers hold it done, so at least one correct replica delivered it: it is
    ///   spent whatever the faulty ones say, and a faulty replica reporting a huge low
    ///   mark or runs up to `u64::MAX` moves nothing alone (its answer is one vote of
    ///   the f+1 needed; at or below the floor only if f correct ones are that high).
    ///   Every answer counted arrived before this query closed, and nothing was
    ///   numbered while it was open, so no correct replica's "done" can be a request
    ///   of this query's numbering: it was a previous run's (or, on a later query,
    ///   this run's completed ones, all below its next number anyway).
    /// - *The high mark* bounds what an answer may claim (every run lies at or below
    ///   it, [`ClientMarks::is_well_formed`]); numbers between the floor and the high
    ///   marks that fewer than f+1 answers hold done are numbered as usual: a
    ///   faulty or lagging replica can make the client try such a number, never
    ///   skip it, and if it was in fact spent, its stale-number notices renumber it as
    ///   before. Skipping never breaks the window rule: a skipped run ends where a
    ///   correct replica had a done number, so at most the window above its low
    ///   mark, and [`ClientCore::can_number`] still keeps every new number under the
    ///   window above the oldest outstanding request.
    pub fn query_marks(&mut self, now: Time, out: &mut Vec<ClientAction>) -> bool {
        if !self.outstanding.is_empty() || !self.parked.is_empty() {
            return false;
        }
        if self.marks_query.is_none() {
            self.marks_query = Some(MarksQuery {
                asked_at: now,
                retry_at: now + self.retransmit_timeout(),
                answers: BTreeMap::new(),
            });
            self.counters.marks_queries += 1;
            out.push(ClientAction::QueryMarks);
        }
        true
    }

    /// Whether a marks query is open (nothing is numbered until it closes).
    pub fn querying_marks(&self) -> bool {
        self.marks_query.is_some()
    }

    /// A marks answer from `from`: kept if a query is open, the answer well formed
    /// and the replica's first; a query that can close is closed on the next tick.
    fn on_marks(&mut self, now: Time, from: ReplicaId, marks: &ClientMarks) {
        let Some(query) = self.marks_query.as_mut() else {
            self.counters.marks_dropped += 1;
            return;
        };
        if !marks.is_well_formed() || query.answers.contains_key(&from) {
            self.counters.marks_dropped += 1;
            return;
        }
        query.answers.insert(from, marks.clone());
        if self.marks_ready(now) {
            self.renumber_at.get_or_insert(now);
        }
    }

    /// When the open marks query next needs the tick: at its close if f+1 answered,
    /// else at its resend.
    fn marks_deadline(&self) -> Option<Time> {
        let q = self.marks_query.as_ref()?;
        Some(if q.answers.len() >= self.trusted {
            q.asked_at + self.retransmit_timeout()
        } else {
            q.retry_at
        })
    }

    /// Whether the open marks query may close: f+1 answered, and 2f+1 did or its
    /// time-out passed.
    fn marks_ready(&self, now: Time) -> bool {
        let Some(q) = &self.marks_query else {
            return false;
        };
        let answered = q.answers.len();
        let all_correct = self.replicas - (self.weak - 1);
        answered >= self.trusted
            && (answered >= all_correct || now >= q.asked_at + self.retransmit_timeout())
    }

    /// Closes the marks query: each answer's low mark joins the reported lows (so the
    /// floor is the (f+1)-th highest), and the numbers above the floor that f+1
    /// answers hold done join [`ClientCore::spent`] (see
    /// [`ClientCore::query_marks`]).
    fn close_marks(&mut self) {
        let Some(query) = self.marks_query.take() else {
            return;
        };
        for (r, m) in &query.answers {
            let low = self.lows.entry(*r).or_insert(m.low);
            *low = (*low).max(m.low);
        }
        let floor = self.floor();
        let Some(above) = floor.checked_add(1) else {
            return;
        };
        // Coverage sweep over the answers' done intervals above the floor: each
        // answer's intervals are disjoint, so the depth at a number is how many
        // answers hold it done. Ends are exclusive, in u128 (`last` may be u64::MAX).
        let mut edges: Vec<(u128, i64)> = Vec::new();
        for m in query.answers.values() {
            let low_part = (m.low >= above).then_some((above, m.low));
            for (first, last) in low_part.into_iter().chain(m.runs.iter().copied()) {
                let first = first.max(above);
                if first <= last {
                    edges.push((u128::from(first), 1));
                    edges.push((u128::from(last) + 1, -1));
                }
            }
        }
        edges.sort_unstable();
        let mut runs: Vec<(u64, u64)> = self.spent.iter().map(|(f, l)| (*f, *l)).collect();
        let (mut depth, mut start, mut i) = (0i64, None, 0);
        while i < edges.len() {
            let point = edges[i].0;
            while i < edges.len() && edges[i].0 == point {
                depth += edges[i].1;
                i += 1;
            }
            match (start, depth >= self.trusted as i64) {
                (None, true) => start = Some(point),
                (Some(first), false) => {
                    // `point - 1` and `first` are numbers (u64) by construction.
                    runs.push((first as u64, (point - 1) as u64));
                    start = None;
                }
                _ => {}
            }
        }
        runs.sort_unstable();
        self.spent.clear();
        for (first, last) in runs {
            if last < above {
                continue;
            }
            match self.spent.last_entry() {
                Some(mut prev) if first <= prev.get().saturating_add(1) => {
                    let end = prev.get_mut();
                    *end = (*end).max(last);
                }
                _ => {
                    self.spent.insert(first, last);
                }
            }
        }
    }

    /// Numbers and sends a new request and returns its number, or returns `None` (and
    /// counts it) when [`ClientCore::can_submit`] says no.
    pub fn submit(
        &mut self,
        now: Time,
        payload: Bytes,
        out: &mut Vec<ClientAction>,
    ) -> Option<u64> {
        if !self.can_submit() {
            self.counters.window_full += 1;
            return None;
        }
        let number = self.number_and_send(now, payload, now, false, out);
        self.counters.submitted += 1;
        Some(number)
    }

    /// Numbers `payload` (first sent at `sent_at`) and sends it where new requests go.
    fn number_and_send(
        &mut self,
        now: Time,
        payload: Bytes,
        sent_at: Time,
        retransmitted: bool,
        out: &mut Vec<ClientAction>,
    ) -> u64 {
        let number = self.take_number();
        let mut request = Request::new(self.id, number, payload);
        let digest = request.digest();
        request.auth = self.macs.authenticate(&digest);
        let retransmit_at = now + self.retransmit_timeout();
        self.send_routed(&request, out);
        self.outstanding.insert(
            number,
            Outstanding {
                request,
                digest,
                sent_at,
                last_sent_at: now,
                routed_at: now,
                retransmit_at,
                retransmitted,
                busy_retry_at: None,
                busy_from: Vec::new(),
                deadline: retransmit_at,
                replies: BTreeMap::new(),
                numbered_at: now,
                stale_from: Vec::new(),
                stale_probe: StaleProbe::None,
            },
        );
        self.deadlines.insert((retransmit_at, number));
        number
    }

    /// Stale-number notices from `from` (see the module docs): each notes the
    /// replica's low mark; a notice for an outstanding request, naming its digest and
    /// witnessing its number spent, counts once per replica, and f+1 of them park the
    /// request to be numbered again.
    fn on_stale(&mut self, now: Time, from: ReplicaId, notices: &[StaleNumber]) {
        for notice in notices {
            let low = self.lows.entry(from).or_insert(notice.low);
            *low = (*low).max(notice.low);
            let Some(entry) = self.outstanding.get_mut(&notice.number) else {
                self.counters.late_replies += 1;
                continue;
            };
            if notice.request != entry.digest {
                continue; // about a request this client did not send under the number
            }
            self.counters.stale_notices += 1;
            if !notice.witnesses(self.window) || entry.stale_from.contains(&from) {
                continue;
            }
            entry.stale_from.push(from);
            if entry.stale_from.len() < self.trusted {
                if entry.stale_probe == StaleProbe::None {
                    entry.stale_probe = StaleProbe::Due;
                    entry.retransmit_at = now;
                    Self::reschedule(&mut self.deadlines, notice.number, entry);
                }
                continue;
            }
            let entry = self.outstanding.remove(&notice.number).expect("present");
            self.deadlines.remove(&(entry.deadline, notice.number));
            self.parked.push_back(Parked {
                payload: entry.request.payload,
                sent_at: entry.sent_at,
                retransmitted: entry.retransmitted,
            });
        }
    }

    /// Numbers parked requests again and sends them, while the window allows.
    fn renumber_parked(&mut self, now: Time, out: &mut Vec<ClientAction>) {
        self.renumber_at = None;
        while !self.parked.is_empty() && self.can_number() {
            let p = self.parked.pop_front().expect("not empty");
            self.number_and_send(now, p.payload, p.sent_at, p.retransmitted, out);
            self.counters.renumbered += 1;
        }
    }

    /// Sends `request` where the routing policy points.
    fn send_routed(&self, request: &Request, out: &mut Vec<ClientAction>) {
        match self.routing.destination() {
            Destination::One(to) => out.push(ClientAction::Send {
                to,
                request: request.clone(),
            }),
            Destination::Several(targets) => {
                out.extend(targets.into_iter().map(|to| ClientAction::Send {
                    to,
                    request: request.clone(),
                }))
            }
            Destination::All => out.push(ClientAction::Broadcast {
                request: request.clone(),
            }),
        }
    }

    /// Busy refusals by `from` of outstanding requests. A refusal counts only from a
    /// replica the request is routed to (PBFT: the primary; HotStuff: the next
    /// leaders), and the request backs off only once every replica of its route
    /// refused it (f+1 of them when it goes to all): one Byzantine replica naming
    /// request numbers cannot make a client back off. A backed-off request is sent
    /// again after the current back-off, and new requests wait for it too
    /// ([`ClientCore::backing_off`]); its resend-to-all deadline stays where it was.
    ///
    /// The back-off grows once per round trip, as TCP's congestion window shrinks
    /// once per window of losses: only a refusal of a request sent at or after the
    /// current back-off began (`busy_since`) starts a new back-off, twice as long
    /// (up to [`MAX_BUSY_BACKOFF`]). A proposer refuses a whole burst of queued
    /// requests in several replies; letting each of them double the back-off took
    /// it from 5 to 320 ms within milliseconds and starved the proposer (at 120,000
    /// tx/s offered, 512 B, its queue was empty for tens of milliseconds at a time
    /// and throughput fell from 90,000 to about 70,000 tx/s).
    fn on_busy(&mut self, now: Time, from: ReplicaId, numbers: &[u64]) {
        let route = self.routing.destination();
        let (on_route, needed) = match &route {
            Destination::One(to) => (*to == from, 1),
            Destination::Several(targets) => (targets.contains(&from), targets.len()),
            Destination::All => (true, self.weak),
        };
        if !on_route {
            self.counters.ignored_busy += 1;
            return;
        }
        let mut fresh_refusal = false;
        for number in numbers {
            let Some(entry) = self.outstanding.get_mut(number) else {
                continue;
            };
            self.counters.busy_refusals += 1;
            if entry.busy_retry_at.is_some() || entry.busy_from.contains(&from) {
                continue; // already backing off, or this replica already refused it
            }
            entry.busy_from.push(from);
            // Only refusals from the current route count: one from a replica that
            // was a target before the client's view of the round moved would let a
            // Byzantine new target complete "every target refused" alone.
            let refused_by_route = match &route {
                Destination::One(_) | Destination::All => entry.busy_from.len(),
                Destination::Several(targets) => entry
                    .busy_from
                    .iter()
                    .filter(|r| targets.contains(r))
                    .count(),
            };
            if refused_by_route < needed {
                continue;
            }
            fresh_refusal |= self.busy_since.is_none_or(|since| entry.routed_at >= since);
            entry.busy_retry_at = Some(now + self.busy_backoff);
            Self::reschedule(&mut self.deadlines, *number, entry);
        }
        if fresh_refusal {
            // Multiplicative decrease, from what was actually outstanding.
            let base = self
                .congestion_window
                .map_or(self.outstanding(), |w| w.min(self.outstanding()));
            self.congestion_window = Some((base / 2).max(MIN_CONGESTION_WINDOW));
            self.window_credit = 0;
            self.busy_since = Some(now);
            // Never shortens a back-off already running (a completion may have
            // reset `busy_backoff` meanwhile).
            let until = now + self.busy_backoff;
            self.busy_until = Some(self.busy_until.map_or(until, |t| t.max(until)));
            self.busy_backoff = (self.busy_backoff * 2).min(MAX_BUSY_BACKOFF);
        }
    }

    /// Additive increase: [`CONGESTION_WINDOW_INCREASE`] requests per window's worth
    /// of completions.
    fn grow_congestion_window(&mut self) {
        let Some(window) = self.congestion_window.as_mut() else {
            return;
        };
        self.window_credit = self
            .window_credit
            .saturating_add(CONGESTION_WINDOW_INCREASE);
        while self.window_credit >= *window {
            self.window_credit -= *window;
            *window = window.saturating_add(1);
        }
    }

    /// Moves `entry`'s key in `deadlines` to the earlier of its deadlines.
    fn reschedule(deadlines: &mut BTreeSet<(Time, u64)>, number: u64, entry: &mut Outstanding) {
        deadlines.remove(&(entry.deadline, number));
        entry.deadline = entry.earliest_deadline();
        deadlines.insert((entry.deadline, number));
    }

    /// Handles a reply; pushes requests it completes to `done`.
    pub fn on_reply(&mut self, now: Time, reply: &Reply, done: &mut Vec<Completed>) {
        if reply.client != self.id || reply.replica.index() >= self.replicas {
            self.counters.rejected_replies += 1;
            return;
        }
        if let Some(keys) = &self.replica_keys {
            let valid = reply.signature.is_some_and(|sig| {
                verify_signature(&keys[reply.replica.index()], &reply.signing_bytes(), &sig)
            });
            if !valid {
                self.counters.rejected_replies += 1;
                return;
            }
        }
        self.routing.on_reply(reply.replica, reply.view);
        if !reply.busy.is_empty() {
            self.on_busy(now, reply.replica, &reply.busy);
        }
        if !reply.stale.is_empty() {
            self.on_stale(now, reply.replica, &reply.stale);
        }
        if let Some(marks) = &reply.marks {
            self.on_marks(now, reply.replica, marks);
        }
        for ReplyResult {
            number,
            request,
            result,
        } in &reply.results
        {
            let Some(entry) = self.outstanding.get_mut(number) else {
                self.counters.late_replies += 1;
                continue;
            };
            if *request != entry.digest {
                self.counters.foreign_results += 1;
                continue;
            }
            entry
                .replies
                .entry(reply.replica)
                .or_insert_with(|| result.clone());
            let matching = entry.replies.values().filter(|r| *r == result).count();
            if matching >= self.weak {
                let entry = self.outstanding.remove(number).expect("present");
                self.deadlines.remove(&(entry.deadline, *number));
                self.counters.completed += 1;
                self.busy_backoff = MIN_BUSY_BACKOFF;
                self.grow_congestion_window();
                // Measured from the first send even if retransmitted: an over-estimate,
                // never an under-estimate (Karn's ambiguity), and a cluster slower
                // than the time-out still teaches the client to wait longer.
                self.rtt.sample(now.since(entry.numbered_at));
                self.last_completion_at = Some(now);
                self.latest_completed_sent_at =
                    self.latest_completed_sent_at.max(Some(entry.last_sent_at));
                done.push(Completed {
                    number: *number,
                    result: result.clone(),
                    payload: entry.request.payload.clone(),
                    sent_at: entry.sent_at,
                    latency: now.since(entry.sent_at),
                    retransmitted: entry.retransmitted,
                });
            }
        }
        if !self.parked.is_empty() && self.can_number() {
            self.renumber_at.get_or_insert(now);
        }
    }

    /// The current retransmission time-out: the configured one, or more when replies
    /// take longer (RFC 6298's smoothed round trip plus four deviations), at most 8×
    /// the configured one. Retransmitting to all replicas while a loaded cluster is
    /// merely slow would multiply its load just when it has none to spare.
    pub fn retransmit_timeout(&self) -> Duration {
        self.rtt
            .timeout()
            .max(self.retransmit_after)
            .min(self.max_retransmit_timeout())
    }

    fn max_retransmit_timeout(&self) -> Duration {
        self.retransmit_after * 8
    }

    /// Closes a marks query that may close, or asks again when its time-out passed
    /// with fewer than f+1 answers. Numbers again the requests f+1 replicas witnessed
    /// spent, as far as the window allows, and sends them where new requests go. Retransmits every request whose
    /// time-out passed and that looks lost (see the module comment), or that a
    /// replica witnessed spent, to all replicas, doubling its time-out (up to 8× the
    /// configured one); the others wait another time-out.
    pub fn on_tick(&mut self, now: Time, out: &mut Vec<ClientAction>) {
        self.renumber_at = None;
        if self.marks_ready(now) {
            self.close_marks();
        } else if let timeout = self.retransmit_timeout()
            && let Some(q) = self.marks_query.as_mut()
            && q.retry_at <= now
            && q.answers.len() < self.trusted
        {
            q.retry_at = now + timeout;
            self.counters.marks_queries += 1;
            out.push(ClientAction::QueryMarks);
        }
        if !self.parked.is_empty() {
            self.renumber_parked(now, out);
        }
        let (timeout, max_timeout) = (self.retransmit_timeout(), self.max_retransmit_timeout());
        while let Some(&(at, number)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(entry) = self.outstanding.get_mut(&number) else {
                continue;
            };
            let mut busy_retry = None;
            if entry.busy_retry_at.is_some_and(|t| t <= now) {
                // Refused as busy: its back-off passed; send it where new requests
                // go. Its resend-to-all deadline is left as it was.
                entry.busy_retry_at = None;
                entry.busy_from.clear();
                entry.routed_at = now;
                self.counters.busy_retries += 1;
                busy_retry = Some(entry.request.clone());
            }
            if entry.retransmit_at <= now {
                let overtaken = self
                    .latest_completed_sent_at
                    .is_some_and(|t| t > entry.last_sent_at);
                let quiet_since = self
                    .last_completion_at
                    .map_or(entry.last_sent_at, |t| t.max(entry.last_sent_at));
                let probe = entry.stale_probe == StaleProbe::Due;
                if !overtaken && !probe && now.since(quiet_since) < timeout {
                    entry.retransmit_at = now + timeout;
                    self.counters.postponed_retransmissions += 1;
                } else {
                    let waited = now.since(entry.numbered_at);
                    entry.retransmit_at = now + waited.max(timeout).min(max_timeout);
                    entry.retransmitted = true;
                    entry.busy_from.clear();
                    if probe {
                        entry.stale_probe = StaleProbe::Sent;
                    }
                    self.counters.retransmissions += 1;
                    out.push(ClientAction::Broadcast {
                        request: entry.request.clone(),
                    });
                }
            }
            entry.deadline = entry.earliest_deadline();
            self.deadlines.insert((entry.deadline, number));
            if let Some(request) = busy_retry {
                self.send_routed(&request, out);
            }
        }
    }

    /// When [`ClientCore::on_tick`] next has work.
    pub fn next_deadline(&self) -> Option<Time> {
        let timer = self.deadlines.first().map(|(t, _)| *t);
        [timer, self.renumber_at, self.marks_deadline()]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pbft::PrimaryRouting;
    use crate::request::MAX_MARK_RUNS;

    fn routing() -> Box<dyn ClientRouting> {
        Box::new(PrimaryRouting::new(4))
    }

    /// Replica `replica`'s reply with `result` for `c`'s outstanding request `number`
    /// (naming that request's digest).
    fn reply(c: &ClientCore, replica: u32, number: u64, result: &'static [u8], view: u64) -> Reply {
        let request = c
            .outstanding
            .get(&number)
            .map(|o| o.digest)
            .unwrap_or_default();
        Reply {
            view: View(view),
            replica: ReplicaId(replica),
            client: ClientId(3),
            results: vec![ReplyResult {
                number,
                request,
                result: Bytes::from_static(result),
            }],
            busy: Vec::new(),
            stale: Vec::new(),
            marks: None,
            signature: None,
        }
    }

    /// Replica `replica`'s stale-number notice for `c`'s outstanding request `number`.
    fn stale(
        c: &ClientCore,
        replica: u32,
        number: u64,
        executed_other: bool,
        low: u64,
        high: u64,
    ) -> Reply {
        let notice = StaleNumber {
            number,
            request: c.outstanding[&number].digest,
            executed_other,
            low,
            high,
        };
        Reply::stale_notice(View(0), ReplicaId(replica), ClientId(3), notice, None)
    }

    /// The requests `out` sends, as (number, payload, broadcast).
    fn sent(out: &[ClientAction]) -> Vec<(u64, Bytes, bool)> {
        out.iter()
            .filter_map(|a| match a {
                ClientAction::Send { request, .. } => {
                    Some((request.number, request.payload.clone(), false))
                }
                ClientAction::Broadcast { request } => {
                    Some((request.number, request.payload.clone(), true))
                }
                ClientAction::QueryMarks => None,
            })
            .collect()
    }

    /// A new run under a key whose numbers a previous run spent: its request 1 is
    /// answered with stale-number notices; the first witness sends it to every
    /// replica at once, the (f+1)-th numbers it again above the reported low mark,
    /// and it completes there with its own payload. Before, replicas answered with the
    /// previous run's cached result (refused as foreign) or not at all, and the client
    /// never completed anything numbered at or below the previous run's numbers.
    #[test]
    fn a_request_whose_number_is_spent_is_numbered_again_above_the_low_mark() {
        let ms = |m: u64| Time(m * 1_000_000);
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let n = c
            .submit(ms(0), Bytes::from_static(b"mine"), &mut out)
            .unwrap();
        assert_eq!(n, 1);
        out.clear();
        c.on_reply(ms(1), &stale(&c, 0, 1, true, 500, 510), &mut done);
        assert_eq!(c.next_deadline(), Some(ms(1)), "the probe is due at once");
        c.on_tick(ms(1), &mut out);
        assert_eq!(sent(&out), [(1, Bytes::from_static(b"mine"), true)]);
        out.clear();
        c.on_reply(ms(2), &stale(&c, 2, 1, true, 505, 510), &mut done);
        assert!(done.is_empty(), "a stale notice is never a result");
        assert_eq!(c.outstanding(), 1, "parked, not given up");
        assert_eq!(c.next_deadline(), Some(ms(2)));
        c.on_tick(ms(2), &mut out);
        // The (f+1)-th highest low mark is 500 (r2's 505 is the highest).
        assert_eq!(sent(&out), [(501, Bytes::from_static(b"mine"), false)]);
        assert_eq!(c.counters().renumbered, 1);
        c.on_reply(ms(3), &reply(&c, 0, 501, b"ok", 0), &mut done);
        c.on_reply(ms(3), &reply(&c, 1, 501, b"ok", 0), &mut done);
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].number, done[0].sent_at), (501, ms(0)));
        assert_eq!(
            c.submit(ms(4), Bytes::from_static(b"next"), &mut out),
            Some(502)
        );
    }

    /// Notices that do not witness a spent number (no other result cached, nothing a
    /// window above it done: a replica that skipped the request's result by state
    /// transfer) and one replica repeating itself renumber nothing; f Byzantine
    /// replicas reporting a far low mark move the numbering by nothing.
    #[test]
    fn f_replicas_or_non_witnesses_cannot_renumber_or_move_the_numbering() {
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let n = c
            .submit(Time(0), Bytes::from_static(b"a"), &mut out)
            .unwrap();
        for _ in 0..3 {
            c.on_reply(
                Time(1),
                &stale(&c, 1, n, true, u64::MAX, u64::MAX),
                &mut done,
            );
        }
        for r in [0, 2, 3] {
            // High is 64 above 1, not more: this run may have sent it.
            c.on_reply(Time(2), &stale(&c, r, n, false, 0, n + 63), &mut done);
        }
        out.clear();
        c.on_tick(Time(3), &mut out);
        assert_eq!(c.counters().renumbered, 0);
        assert!(
            c.outstanding.contains_key(&n),
            "still outstanding under its number"
        );
        // The floor is the (f+1)-th highest low: r1's u64::MAX alone does not count.
        assert_eq!(c.floor(), 0);
        c.on_reply(Time(4), &reply(&c, 0, n, b"r", 0), &mut done);
        c.on_reply(Time(4), &reply(&c, 2, n, b"r", 0), &mut done);
        assert_eq!(done.len(), 1);
        assert_eq!(
            c.submit(Time(5), Bytes::from_static(b"b"), &mut out),
            Some(2)
        );
    }

    /// A number a whole window below a done number is witnessed spent without any
    /// cached result (the previous run went on far past it); a renumbered request
    /// waits while an older outstanding one would fall out of the window.
    #[test]
    fn a_far_spent_number_is_witnessed_and_renumbering_keeps_the_window() {
        let mut c = ClientCore::new(ClientId(3), 4, 4, Duration::from_secs(1), None, routing());
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let first = c
            .submit(Time(0), Bytes::from_static(b"a"), &mut out)
            .unwrap();
        let second = c
            .submit(Time(0), Bytes::from_static(b"b"), &mut out)
            .unwrap();
        for r in 0..2 {
            c.on_reply(
                Time(1),
                &stale(&c, r, second, false, 1_000, second + 4),
                &mut done,
            );
        }
        assert_eq!(c.parked.len(), 1);
        assert!(!c.can_submit());
        out.clear();
        c.on_tick(Time(2), &mut out);
        assert!(
            sent(&out).iter().all(|s| s.0 != 1_001),
            "1,001 is more than the window above request {first}, still outstanding"
        );
        c.on_reply(Time(3), &reply(&c, 0, first, b"r", 0), &mut done);
        c.on_reply(Time(3), &reply(&c, 1, first, b"r", 0), &mut done);
        assert_eq!(c.next_deadline(), Some(Time(3)));
        out.clear();
        c.on_tick(Time(3), &mut out);
        assert_eq!(sent(&out), [(1_001, Bytes::from_static(b"b"), false)]);
        assert!(c.can_submit());
    }

    /// Issue 10 item 1: f+1 (here all) replicas executed a request forged in the
    /// client's name under its number and answer with its result. Before replies named
    /// the request they answer, the client accepted that result as its own.
    #[test]
    fn results_of_a_payload_the_client_did_not_send_are_refused() {
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let mut out = Vec::new();
        let n = c
            .submit(Time(0), Bytes::from_static(b"mine"), &mut out)
            .unwrap();
        let forged = Request::new(ClientId(3), n, Bytes::from_static(b"evil")).digest();
        let mut done = Vec::new();
        for r in 0..4 {
            let mut reply = reply(&c, r, n, b"evil's result", 0);
            reply.results[0].request = forged;
            c.on_reply(Time(5), &reply, &mut done);
        }
        assert!(done.is_empty(), "accepted a result of a forged request");
        assert_eq!(c.counters().foreign_results, 4);
        assert_eq!(c.outstanding(), 1);
        c.on_reply(Time(6), &reply(&c, 0, n, b"ok", 0), &mut done);
        c.on_reply(Time(7), &reply(&c, 1, n, b"ok", 0), &mut done);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].result, Bytes::from_static(b"ok"));
    }

    #[test]
    fn accepts_after_f_plus_one_matching_replies() {
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let mut out = Vec::new();
        let n = c
            .submit(Time(0), Bytes::from_static(b"op"), &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        let mut done = Vec::new();
        c.on_reply(Time(5), &reply(&c, 0, n, b"good", 0), &mut done);
        c.on_reply(Time(6), &reply(&c, 1, n, b"evil", 0), &mut done);
        assert!(done.is_empty());
        c.on_reply(Time(7), &reply(&c, 2, n, b"good", 0), &mut done);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].result, Bytes::from_static(b"good"));
        assert_eq!(done[0].latency, Duration::from_nanos(7));
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn never_numbers_a_request_beyond_the_window_of_the_oldest_outstanding_one() {
        let mut c = ClientCore::new(ClientId(3), 4, 3, Duration::from_secs(1), None, routing());
        let mut out = Vec::new();
        let first = c
            .submit(Time(0), Bytes::from_static(b"a"), &mut out)
            .unwrap();
        let mut done = Vec::new();
        for _ in 0..2 {
            let n = c
                .submit(Time(0), Bytes::from_static(b"b"), &mut out)
                .unwrap();
            c.on_reply(Time(1), &reply(&c, 0, n, b"r", 0), &mut done);
            c.on_reply(Time(1), &reply(&c, 1, n, b"r", 0), &mut done);
        }
        // Requests 2 and 3 completed, 1 is still outstanding: number 4 would leave it
        // out of a window of 3.
        assert!(!c.can_submit());
        assert_eq!(c.submit(Time(2), Bytes::from_static(b"c"), &mut out), None);
        assert_eq!(c.counters().window_full, 1);
        c.on_reply(Time(3), &reply(&c, 0, first, b"r", 0), &mut done);
        c.on_reply(Time(3), &reply(&c, 1, first, b"r", 0), &mut done);
        assert_eq!(
            c.submit(Time(4), Bytes::from_static(b"d"), &mut out),
            Some(4)
        );
    }

    #[test]
    fn a_busy_refusal_backs_off_then_resends_where_new_requests_go() {
        let ms = |m: u64| Time(m * 1_000_000);
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let mut out = Vec::new();
        let n = c
            .submit(ms(0), Bytes::from_static(b"op"), &mut out)
            .unwrap();
        out.clear();
        let refusal = Reply::refusal(View(0), ReplicaId(0), ClientId(3), vec![n], None);
        let mut done = Vec::new();
        c.on_reply(ms(1), &refusal, &mut done);
        assert!(done.is_empty(), "a refusal completes nothing");
        assert_eq!(c.outstanding(), 1, "and gives nothing up");
        assert_eq!(c.counters().busy_refusals, 1);
        assert!(c.backing_off(ms(2)));
        assert!(!c.backing_off(ms(1) + MIN_BUSY_BACKOFF));
        c.on_tick(ms(3), &mut out);
        assert!(out.is_empty(), "still backing off");
        c.on_tick(ms(1) + MIN_BUSY_BACKOFF, &mut out);
        assert_eq!(
            out,
            vec![ClientAction::Send {
                to: ReplicaId(0),
                request: c.outstanding[&n].request.clone()
            }],
            "resent to the primary, not broadcast (backups would wait for it)"
        );
        assert_eq!(c.counters().busy_retries, 1);
        assert_eq!(c.counters().retransmissions, 0);
        // Refused again: the back-off doubled.
        let at = ms(20);
        c.on_reply(at, &refusal, &mut done);
        assert!(c.backing_off(at + MIN_BUSY_BACKOFF));
        assert!(!c.backing_off(at + MIN_BUSY_BACKOFF * 2));
        // A completion resets it.
        c.on_reply(ms(50), &reply(&c, 0, n, b"r", 0), &mut done);
        c.on_reply(ms(50), &reply(&c, 1, n, b"r", 0), &mut done);
        assert_eq!(done.len(), 1);
        let m = c
            .submit(ms(60), Bytes::from_static(b"op2"), &mut out)
            .unwrap();
        let refusal = Reply::refusal(View(0), ReplicaId(0), ClientId(3), vec![m], None);
        c.on_reply(ms(61), &refusal, &mut done);
        assert!(!c.backing_off(ms(61) + MIN_BUSY_BACKOFF));
    }

    /// Regression: a proposer refuses a burst of queued requests in several replies,
    /// and each reply used to double the back-off (5 to 320 ms within milliseconds),
    /// starving the proposer. Refusals of requests sent before the back-off began
    /// neither extend nor double it; one of a request sent after it does.
    #[test]
    fn refusals_of_requests_sent_before_the_back_off_do_not_escalate_it() {
        let ms = |m: u64| Time(m * 1_000_000);
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let mut out = Vec::new();
        let numbers: Vec<u64> = (0..6)
            .map(|i| {
                c.submit(ms(0), Bytes::from(vec![i]), &mut out)
                    .expect("room in the window")
            })
            .collect();
        let mut done = Vec::new();
        for (i, n) in numbers.iter().enumerate() {
            let refusal = Reply::refusal(View(0), ReplicaId(0), ClientId(3), vec![*n], None);
            c.on_reply(ms(1 + i as u64), &refusal, &mut done);
        }
        assert_eq!(c.counters().busy_refusals, 6);
        assert!(c.backing_off(Time((ms(1) + MIN_BUSY_BACKOFF).0 - 1)));
        assert!(
            !c.backing_off(ms(1) + MIN_BUSY_BACKOFF),
            "the burst's later refusals did not extend the first back-off"
        );
        // A request sent after the back-off began and refused doubles it.
        let after = ms(1) + MIN_BUSY_BACKOFF;
        let m = c
            .submit(after, Bytes::from_static(b"late"), &mut out)
            .expect("room in the window");
        let refusal = Reply::refusal(View(0), ReplicaId(0), ClientId(3), vec![m], None);
        let at = after + Duration::from_millis(1);
        c.on_reply(at, &refusal, &mut done);
        assert!(c.backing_off(Time((at + MIN_BUSY_BACKOFF * 2).0 - 1)));
        assert!(!c.backing_off(at + MIN_BUSY_BACKOFF * 2));
    }

    #[test]
    fn the_congestion_window_halves_on_a_refusal_and_grows_with_completions() {
        let ms = |m: u64| Time(m * 1_000_000);
        let mut c = ClientCore::new(
            ClientId(3),
            4,
            1024,
            Duration::from_secs(1),
            None,
            routing(),
        );
        let mut out = Vec::new();
        assert_eq!(
            c.congestion_room(),
            usize::MAX,
            "unlimited before any refusal"
        );
        let numbers: Vec<u64> = (0..200u32)
            .map(|i| {
                c.submit(ms(0), Bytes::from(i.to_le_bytes().to_vec()), &mut out)
                    .expect("room in the window")
            })
            .collect();
        let mut done = Vec::new();
        let refusal = Reply::refusal(View(0), ReplicaId(0), ClientId(3), vec![numbers[199]], None);
        c.on_reply(ms(1), &refusal, &mut done);
        assert_eq!(c.congestion_room(), 0, "window 100 with 200 outstanding");
        // A second refusal of a request sent before the back-off: no second halving.
        let refusal = Reply::refusal(View(0), ReplicaId(0), ClientId(3), vec![numbers[198]], None);
        c.on_reply(ms(2), &refusal, &mut done);
        for n in &numbers[..150] {
            c.on_reply(ms(3), &reply(&c, 0, *n, b"r", 0), &mut done);
            c.on_reply(ms(3), &reply(&c, 1, *n, b"r", 0), &mut done);
        }
        assert_eq!(done.len(), 150);
        // 64 per window of completions: 150 completions from window 100 grow it by
        // about 75, so 50 outstanding leave about 125 of room.
        let room = c.congestion_room();
        assert!((100..=130).contains(&room), "room {room}");
        // Refused again, fresh (sent after the back-off began): halved from what
        // is outstanding, never below the minimum.
        let m = c
            .submit(ms(30), Bytes::from_static(b"new"), &mut out)
            .expect("room");
        let refusal = Reply::refusal(View(0), ReplicaId(0), ClientId(3), vec![m], None);
        c.on_reply(ms(31), &refusal, &mut done);
        assert_eq!(c.outstanding(), 51);
        assert_eq!(c.congestion_room(), 0, "window max(51 / 2, 4) = 25");
    }

    /// Regression (review of 9f188dc): busy refusals used to move the resend-to-all
    /// deadline, so a primary refusing one client forever kept its request from
    /// every backup, no request timer ran, and the primary was never replaced.
    #[test]
    fn a_primary_refusing_forever_cannot_keep_a_request_from_the_backups() {
        let ms = |m: u64| Time(m * 1_000_000);
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let mut out = Vec::new();
        let n = c
            .submit(ms(0), Bytes::from_static(b"op"), &mut out)
            .unwrap();
        let refusal = Reply::refusal(View(0), ReplicaId(0), ClientId(3), vec![n], None);
        let mut done = Vec::new();
        let mut broadcast_at = None;
        for step in 1..=2_000u64 {
            let now = ms(step);
            out.clear();
            c.on_reply(now, &refusal, &mut done);
            c.on_tick(now, &mut out);
            if out
                .iter()
                .any(|a| matches!(a, ClientAction::Broadcast { .. }))
            {
                broadcast_at = Some(step);
                break;
            }
        }
        assert!(c.counters().busy_retries > 0, "it did back off and retry");
        let at = broadcast_at.expect("resent to every replica despite the refusals");
        assert!(at <= 1_000, "at its time-out (1 s), not later: {at} ms");
    }

    /// Regression (review of 9f188dc): any one replica naming request numbers as busy
    /// made the client back off; only the request's route decides.
    #[test]
    fn a_busy_refusal_from_off_the_route_is_ignored() {
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let mut out = Vec::new();
        let n = c
            .submit(Time(0), Bytes::from_static(b"op"), &mut out)
            .unwrap();
        let mut done = Vec::new();
        for backup in 1..4 {
            let refusal = Reply::refusal(View(0), ReplicaId(backup), ClientId(3), vec![n], None);
            c.on_reply(Time(1), &refusal, &mut done);
        }
        assert_eq!(c.counters().ignored_busy, 3);
        assert_eq!(c.counters().busy_refusals, 0);
        assert!(!c.backing_off(Time(2)), "backups do not queue the request");
        out.clear();
        c.on_tick(Time(2), &mut out);
        assert!(out.is_empty(), "nothing resent early");
    }

    #[test]
    fn one_replica_repeating_itself_is_not_enough() {
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let mut out = Vec::new();
        let n = c
            .submit(Time(0), Bytes::from_static(b"op"), &mut out)
            .unwrap();
        let mut done = Vec::new();
        for _ in 0..5 {
            c.on_reply(Time(1), &reply(&c, 1, n, b"x", 0), &mut done);
        }
        assert!(done.is_empty());
    }

    #[test]
    fn retransmits_to_all_and_follows_the_view() {
        let mut c = ClientCore::new(
            ClientId(3),
            4,
            64,
            Duration::from_millis(10),
            None,
            routing(),
        );
        let mut out = Vec::new();
        let n = c
            .submit(Time(0), Bytes::from_static(b"op"), &mut out)
            .unwrap();
        out.clear();
        c.on_tick(Time(5_000_000), &mut out);
        assert!(out.is_empty());
        c.on_tick(Time(10_000_000), &mut out);
        assert!(matches!(out[0], ClientAction::Broadcast { .. }));
        let mut done = Vec::new();
        c.on_reply(Time(11_000_000), &reply(&c, 1, n, b"r", 1), &mut done);
        assert_eq!(
            c.destination(),
            Destination::One(ReplicaId(0)),
            "one report is not enough"
        );
        c.on_reply(Time(11_000_000), &reply(&c, 2, n, b"r", 1), &mut done);
        assert_eq!(c.destination(), Destination::One(ReplicaId(1)));
        assert!(done[0].retransmitted);
    }

    #[test]
    fn a_slow_cluster_stretches_the_retransmission_timeout_up_to_eight_times() {
        let base = Duration::from_millis(10);
        let mut c = ClientCore::new(ClientId(3), 4, 1 << 20, base, None, routing());
        assert_eq!(c.retransmit_timeout(), base, "no sample yet");
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let mut now = Time(0);
        for _ in 0..20 {
            let n = c.submit(now, Bytes::from_static(b"op"), &mut out).unwrap();
            now = now + Duration::from_millis(30);
            c.on_tick(now, &mut out);
            c.on_reply(now, &reply(&c, 0, n, b"r", 0), &mut done);
            c.on_reply(now, &reply(&c, 1, n, b"r", 0), &mut done);
        }
        assert_eq!(done.len(), 20);
        let rto = c.retransmit_timeout();
        assert!(
            rto >= Duration::from_millis(30),
            "learned the 30 ms round trip: {rto:?}"
        );
        // The next request waits the learned time-out, not the configured one.
        out.clear();
        c.submit(now, Bytes::from_static(b"op"), &mut out).unwrap();
        out.clear();
        c.on_tick(now + Duration::from_millis(20), &mut out);
        assert!(out.is_empty(), "retransmitted before the learned time-out");
        c.on_tick(now + rto, &mut out);
        assert_eq!(out.len(), 1);
        // Never beyond 8× the configured time-out, however slow the replies.
        for _ in 0..50 {
            c.rtt.sample(Duration::from_secs(10));
        }
        assert_eq!(c.retransmit_timeout(), base * 8);
    }

    #[test]
    fn a_queued_request_waits_while_older_ones_complete_but_an_overtaken_one_is_resent() {
        let ms = Duration::from_millis;
        let mut c = ClientCore::new(ClientId(3), 4, 64, ms(10), None, routing());
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let complete = |c: &mut ClientCore, at: Time, n: u64, done: &mut Vec<Completed>| {
            c.on_reply(at, &reply(c, 0, n, b"r", 0), done);
            c.on_reply(at, &reply(c, 1, n, b"r", 0), done);
        };
        let a = c
            .submit(Time(0), Bytes::from_static(b"a"), &mut out)
            .unwrap();
        let b = c
            .submit(Time(0) + ms(1), Bytes::from_static(b"b"), &mut out)
            .unwrap();
        let late = c
            .submit(Time(0) + ms(2), Bytes::from_static(b"c"), &mut out)
            .unwrap();
        out.clear();
        // `a` completes just before the others' time-outs: they are queued, not lost.
        complete(&mut c, Time(0) + ms(9), a, &mut done);
        c.on_tick(Time(0) + ms(12), &mut out);
        assert!(
            out.is_empty(),
            "retransmitted a request the cluster is still serving"
        );
        assert_eq!(c.counters().postponed_retransmissions, 2);
        // `late` completes before `b`: `b` was overtaken, so it was dropped somewhere.
        complete(&mut c, Time(0) + ms(13), late, &mut done);
        c.on_tick(Time(0) + ms(40), &mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0], ClientAction::Broadcast { request } if request.number == b));
    }

    /// Replica `replica`'s answer to `c`'s marks query.
    fn marks(replica: u32, low: u64, high: u64, runs: &[(u64, u64)]) -> Reply {
        let marks = ClientMarks {
            low,
            high,
            runs: runs.to_vec(),
            truncated: false,
        };
        Reply::marks_answer(View(0), ReplicaId(replica), ClientId(3), marks, None)
    }

    /// A new run asks for its marks before its first request and numbers above the
    /// (f+1)-th highest low mark, skipping the numbers f+1 answers hold done: the
    /// replicas restarted since the previous run, so no stale-number notice could
    /// witness those numbers (their reply caches are empty) and a run numbering from 1
    /// stalled. One Byzantine answer claiming everything up to 10,000 done moves
    /// nothing alone.
    #[test]
    fn a_new_run_numbers_past_what_f_plus_one_marks_answers_hold_done() {
        let ms = |m: u64| Time(m * 1_000_000);
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let (mut out, mut done) = (Vec::new(), Vec::new());
        assert!(c.query_marks(ms(0), &mut out));
        assert_eq!(out, [ClientAction::QueryMarks]);
        assert!(
            !c.can_submit(),
            "nothing is numbered while the query is open"
        );
        assert_eq!(c.submit(ms(0), Bytes::from_static(b"a"), &mut out), None);
        c.on_reply(ms(1), &marks(0, 100, 110, &[(105, 110)]), &mut done);
        c.on_reply(
            ms(1),
            &marks(1, 100, 112, &[(105, 110), (112, 112)]),
            &mut done,
        );
        assert!(
            c.querying_marks(),
            "f+1 answered: waits for 2f+1 or the time-out"
        );
        assert_eq!(c.next_deadline(), Some(ms(1_000)));
        c.on_reply(ms(2), &marks(3, 10_000, 10_000, &[]), &mut done);
        assert_eq!(c.next_deadline(), Some(ms(2)), "closes on the next tick");
        out.clear();
        c.on_tick(ms(2), &mut out);
        assert!(out.is_empty() && !c.querying_marks());
        assert_eq!(
            c.floor(),
            100,
            "r3's 10,000 is the highest low, not the (f+1)-th"
        );
        let numbers: Vec<u64> = (0..6)
            .map(|_| c.submit(ms(3), Bytes::from_static(b"x"), &mut out).unwrap())
            .collect();
        // 101..=104 only r3 holds done: used. 105..=110 r0, r1 and r3 do, and 112
        // r1 and r3 (f+1, so a correct replica among them): skipped.
        assert_eq!(numbers, [101, 102, 103, 104, 111, 113]);
        assert_eq!(
            c.counters().skipped_spent,
            100 + 7,
            "1..=100, 105..=110, 112"
        );
        // A second answer from a replica, or one after the query closed, is dropped.
        c.on_reply(ms(4), &marks(2, 100, 100, &[]), &mut done);
        assert_eq!(c.counters().marks_dropped, 1);
        assert!(
            !c.query_marks(ms(4), &mut out),
            "refused while requests are outstanding"
        );
    }

    /// Only f+1 answers, a time-out after the query: it closes then (2f+1 may never
    /// answer). With fewer than f+1 it is sent again each time-out. Malformed answers
    /// are dropped and counted; a faulty answer reaching `u64::MAX` makes nothing
    /// overflow.
    #[test]
    fn a_marks_query_closes_on_f_plus_one_after_its_time_out_and_drops_bad_answers() {
        let ms = |m: u64| Time(m * 1_000_000);
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing());
        let (mut out, mut done) = (Vec::new(), Vec::new());
        c.query_marks(ms(0), &mut out);
        out.clear();
        let bad = [
            marks(0, 5, 4, &[]),               // high below low
            marks(0, 5, 9, &[(6, 9)]),         // starts at low + 1 (folded)
            marks(0, 5, 9, &[(8, 9), (7, 7)]), // descending
            marks(0, 5, 9, &[(7, 8), (9, 9)]), // runs that touch
            marks(0, 5, 9, &[(7, 12)]),        // above high
            marks(0, u64::MAX, u64::MAX, &[(u64::MAX, u64::MAX)]),
        ];
        for reply in &bad {
            c.on_reply(ms(1), reply, &mut done);
        }
        assert_eq!(c.counters().marks_dropped, bad.len() as u64);
        let long = ClientMarks {
            runs: (0..=MAX_MARK_RUNS as u64)
                .map(|i| (10 + 3 * i, 10 + 3 * i))
                .collect(),
            high: u64::MAX,
            ..ClientMarks::default()
        };
        let long = Reply::marks_answer(View(0), ReplicaId(0), ClientId(3), long, None);
        c.on_reply(ms(1), &long, &mut done);
        assert_eq!(
            c.counters().marks_dropped,
            bad.len() as u64 + 1,
            "too many runs"
        );
        c.on_reply(
            ms(1),
            &marks(1, 7, u64::MAX, &[(u64::MAX - 5, u64::MAX)]),
            &mut done,
        );
        c.on_tick(ms(1_000), &mut out);
        assert_eq!(out, [ClientAction::QueryMarks], "one answer: asked again");
        assert_eq!(c.counters().marks_queries, 2);
        out.clear();
        c.on_reply(
            ms(1_001),
            &marks(2, 3, u64::MAX, &[(u64::MAX - 9, u64::MAX)]),
            &mut done,
        );
        c.on_tick(ms(1_001), &mut out);
        assert!(
            out.is_empty() && !c.querying_marks(),
            "f+1 after the time-out: closed"
        );
        assert_eq!(c.floor(), 3);
        assert_eq!(
            c.submit(ms(1_002), Bytes::from_static(b"a"), &mut out),
            Some(4)
        );
        assert_eq!(
            c.spent.iter().map(|(f, l)| (*f, *l)).collect::<Vec<_>>(),
            [(u64::MAX - 5, u64::MAX)],
            "held done by both"
        );
        c.next_number = u64::MAX - 5;
        assert_eq!(c.candidate(), u64::MAX);
        assert!(!c.can_submit(), "u64::MAX is never used");
    }

    /// A rotating-leader policy: the next two leaders after the highest round
    /// reported.
    #[derive(Debug, Default)]
    struct NextTwoLeaders {
        round: u64,
    }

    impl ClientRouting for NextTwoLeaders {
        fn on_reply(&mut self, _: ReplicaId, view: View) {
            self.round = self.round.max(view.0);
        }

        fn destination(&self) -> Destination {
            let leader = |k: u64| ReplicaId(((self.round + k) % 4) as u32);
            Destination::Several(vec![leader(1), leader(2)])
        }
    }

    /// Review of 5b9a7bb: a refusal from a replica that was a target before the
    /// client's view of the round moved counted towards "every target refused", so
    /// one Byzantine new target completed it alone. Only the current route counts.
    #[test]
    fn a_refusal_from_a_former_target_does_not_count_for_the_current_route() {
        let routing = Box::new(NextTwoLeaders::default());
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let n = c
            .submit(Time(0), Bytes::from_static(b"a"), &mut out)
            .unwrap();
        // Round 0: targets 1 and 2; replica 1 (busy) refuses.
        let refusal =
            |r: u32, v: u64| Reply::refusal(View(v), ReplicaId(r), ClientId(3), vec![n], None);
        c.on_reply(Time(1), &refusal(1, 0), &mut done);
        assert!(!c.backing_off(Time(2)), "one of two targets refused");
        // Replica 3 reports round 1 (targets 2 and 3) and refuses: 1 is off the route.
        c.on_reply(Time(2), &refusal(3, 1), &mut done);
        assert!(!c.backing_off(Time(3)), "one current target refused");
        assert_eq!(c.congestion_room(), usize::MAX, "the window untouched");
        // Replica 2 refuses too: every current target refused.
        c.on_reply(Time(3), &refusal(2, 1), &mut done);
        assert!(c.backing_off(Time(4)));
        assert_eq!(c.congestion_room(), MIN_CONGESTION_WINDOW - 1);
    }

    #[derive(Debug)]
    struct Everyone;

    impl ClientRouting for Everyone {
        fn on_reply(&mut self, _: ReplicaId, _: View) {}

        fn destination(&self) -> Destination {
            Destination::All
        }
    }

    #[test]
    fn new_requests_go_where_the_protocols_routing_says() {
        let routing = Box::new(NextTwoLeaders::default());
        let mut c = ClientCore::new(ClientId(3), 4, 64, Duration::from_secs(1), None, routing);
        let (mut out, mut done) = (Vec::new(), Vec::new());
        let n = c
            .submit(Time(0), Bytes::from_static(b"a"), &mut out)
            .unwrap();
        let to: Vec<_> = out
            .iter()
            .map(|a| match a {
                ClientAction::Send { to, .. } => *to,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(to, [ReplicaId(1), ReplicaId(2)]);
        c.on_reply(Time(1), &reply(&c, 0, n, b"r", 2), &mut done);
        assert_eq!(
            c.destination(),
            Destination::Several(vec![ReplicaId(3), ReplicaId(0)])
        );

        let mut c = ClientCore::new(
            ClientId(3),
            4,
            64,
            Duration::from_secs(1),
            None,
            Box::new(Everyone),
        );
        out.clear();
        c.submit(Time(0), Bytes::from_static(b"a"), &mut out)
            .unwrap();
        assert!(matches!(&out[..], [ClientAction::Broadcast { .. }]));
    }
}
