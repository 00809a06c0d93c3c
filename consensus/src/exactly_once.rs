//! Exactly-once bookkeeping per client, shared by every protocol: which request
//! numbers were delivered, the filtering of a committed batch against them
//! ([`filter_fresh`]), and the recent results kept to answer retransmissions.
//!
//! The delivered table is replicated state: a deterministic function of the committed
//! sequence, part of the checkpoint digest, and shipped with state transfer. The reply
//! cache is local soft state: it only serves retransmissions, and at least f+1 correct
//! replicas executed every request of a stable checkpoint and hold its result, so it
//! needs no agreement — and the checkpoint costs O(clients), not O(cached results).
//!
//! Clients may keep several requests outstanding, so their requests can commit out of
//! number order. A [`DedupWindow`] therefore remembers every delivered number above a
//! low mark rather than only the highest one. A number more than `client_window` above
//! the low mark is refused ([`Admission::TooFar`]): not delivered, and the window does
//! not move, so the table stays bounded and a request forged with a far number cannot
//! slide a client's window past its genuine requests (issue 10 item 1). A correct
//! client never sends one: it numbers a request at most `client_window - 1` above its
//! oldest outstanding one (`client.rs`), and every number below that one was executed
//! at an earlier sequence number.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::crypto::Keyring;
use crate::protocol::{Action, Event};
use crate::request::{Batch, ClientMarks, MAX_MARK_RUNS, Reply, ReplyResult, Request, StaleNumber};
use crate::types::{ClientId, Digest, ReplicaId, Time, View};

/// Which request numbers of one client were delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupWindow {
    /// Every number ≤ `low` is done.
    low: u64,
    /// Done numbers above `low`; never contains `low + 1` (it is folded into `low`).
    above: BTreeSet<u64>,
}

impl DedupWindow {
    /// The low mark: every number up to it is done.
    pub fn low(&self) -> u64 {
        self.low
    }

    /// The highest delivered number: the last of [`DedupWindow::above`], or the low
    /// mark.
    pub fn high(&self) -> u64 {
        self.above.last().copied().unwrap_or(self.low)
    }

    /// Whether `number` was already delivered (or fell below the window).
    pub fn is_done(&self, number: u64) -> bool {
        number <= self.low || self.above.contains(&number)
    }

    /// The delivered numbers above [`DedupWindow::low`], ascending (at most the
    /// client window of them in a well-formed table).
    pub fn above(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.above.iter().copied()
    }

    /// The delivered numbers above `after` (and above the low mark), ascending.
    pub fn above_after(&self, after: u64) -> impl Iterator<Item = u64> + '_ {
        self.above
            .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .copied()
    }

    /// Whether `number` lies more than `window` above the low mark: refused by
    /// [`DedupWindow::admit`].
    pub fn is_too_far(&self, number: u64, window: u64) -> bool {
        number > self.low.saturating_add(window.max(1))
    }

    /// Marks `number` delivered if it is fresh and within `window` of the low mark.
    /// Any `number` is handled without overflow, up to `u64::MAX` (numbers come from
    /// clients).
    pub fn admit(&mut self, number: u64, window: u64) -> Admission {
        if self.is_done(number) {
            return Admission::Done;
        }
        if self.is_too_far(number, window) {
            return Admission::TooFar;
        }
        self.above.insert(number);
        while let Some(next) = self.low.checked_add(1)
            && self.above.first() == Some(&next)
        {
            self.above.pop_first();
            self.low = next;
        }
        debug_assert!(
            self.low
                .checked_add(1)
                .is_none_or(|next| !self.above.contains(&next))
        );
        Admission::Fresh
    }

    /// This window as a marks answer ([`ClientMarks`]): the low and high marks and the
    /// done numbers above the low mark as runs, the lowest [`MAX_MARK_RUNS`] of them
    /// (`truncated` when more remain). Walks at most the numbers of those runs.
    pub fn marks(&self) -> ClientMarks {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut truncated = false;
        for n in &self.above {
            if let Some(run) = runs.last_mut()
                && run.1.checked_add(1) == Some(*n)
            {
                run.1 = *n;
            } else if runs.len() == MAX_MARK_RUNS {
                truncated = true;
                break;
            } else {
                runs.push((*n, *n));
            }
        }
        ClientMarks {
            low: self.low,
            high: self.high(),
            runs,
            truncated,
        }
    }

    /// A window with arbitrary contents, as a faulty peer could send it (tests only).
    #[cfg(test)]
    pub(crate) fn forged(low: u64, above: impl IntoIterator<Item = u64>) -> DedupWindow {
        DedupWindow {
            low,
            above: above.into_iter().collect(),
        }
    }

    fn hash_into(&self, ctx: &mut ring::digest::Context) {
        ctx.update(&self.low.to_le_bytes());
        ctx.update(&(self.above.len() as u64).to_le_bytes());
        for n in &self.above {
            ctx.update(&n.to_le_bytes());
        }
    }
}

/// What [`DedupWindow::admit`] made of a request number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Not delivered before: now marked delivered.
    Fresh,
    /// Delivered before, or below the window.
    Done,
    /// More than the window above the low mark: refused, the window unchanged.
    TooFar,
}

impl Admission {
    /// Whether the request was admitted.
    pub fn is_fresh(self) -> bool {
        self == Admission::Fresh
    }
}

/// Delivered request numbers per client.
pub type DeliveredTable = BTreeMap<ClientId, DedupWindow>;

/// Whether `client`'s request `number` was delivered (or fell below its window).
pub fn is_delivered(table: &DeliveredTable, client: ClientId, number: u64) -> bool {
    table.get(&client).is_some_and(|w| w.is_done(number))
}

/// Whether `client`'s request `number` lies more than `window` above its low mark
/// (left out at delivery, where every replica decides on the same table).
pub fn is_too_far(table: &DeliveredTable, client: ClientId, number: u64, window: u64) -> bool {
    match table.get(&client) {
        Some(w) => w.is_too_far(number, window),
        None => DedupWindow::default().is_too_far(number, window),
    }
}

/// How many windows above the low mark a request must be for a replica to refuse it at
/// admission. A replica that is behind (restarted, catching up) holds an older table
/// than the cluster's, so a number exactly one window ahead of its low mark may be
/// fine; refusing at one window made a lagging primary refuse every request and cost
/// view changes (seen in the 10-minute kill-anywhere run). Delivery still refuses at
/// one window, deterministically.
pub const ADMISSION_SLACK: u64 = 8;

/// Whether `client`'s request `number` is implausibly far ahead: more than
/// [`ADMISSION_SLACK`] windows above the low mark of this replica's table (refused at
/// admission, not admitted).
pub fn is_implausibly_far(
    table: &DeliveredTable,
    client: ClientId,
    number: u64,
    window: u64,
) -> bool {
    is_too_far(
        table,
        client,
        number,
        window.saturating_mul(ADMISSION_SLACK),
    )
}

/// How a replica answers a client's request, by its exactly-once table and reply
/// cache ([`answer_delivered`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveredAnswer {
    /// Not delivered here: admit it as usual.
    Fresh,
    /// Delivered, and the cached result names this very request: answer with it.
    Result(ReplyResult),
    /// Delivered, but this replica holds no result of this request under the number:
    /// another request's result (never sent as this one's), or none. Answered with a
    /// [`StaleNumber`] notice, so a client whose number is spent — a new run under a
    /// key a previous run used, its numbering restarted at 1 — learns it and numbers
    /// the request again.
    Stale(StaleNumber),
}

/// Whether `req`'s number is delivered in `table`, and what answers it: the cached
/// result if it names `req`'s digest, else a [`StaleNumber`] notice with the client's
/// marks.
pub fn answer_delivered(
    table: &DeliveredTable,
    cache: &ReplyCache,
    req: &Request,
) -> DeliveredAnswer {
    let Some(window) = table.get(&req.client).filter(|w| w.is_done(req.number)) else {
        return DeliveredAnswer::Fresh;
    };
    let digest = req.digest();
    let cached = cache.get(&req.client).and_then(|r| r.get(&req.number));
    match cached {
        Some(result) if result.request == digest => DeliveredAnswer::Result(result.clone()),
        _ => DeliveredAnswer::Stale(StaleNumber {
            number: req.number,
            request: digest,
            executed_other: cached.is_some(),
            low: window.low(),
            high: window.high(),
        }),
    }
}

/// The shortest time between two answers to one client's marks queries
/// ([`MarksDesk`]): a correct client asks once per run (and again after its
/// retransmission time-out, at least this long, while fewer than f+1 answered).
pub const MARKS_QUERY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// The most clients a [`MarksDesk`] remembers a recent answer for. When that many
/// were answered within [`MARKS_QUERY_INTERVAL`], further clients' queries are refused
/// until the oldest answers age out: at most this many answers per interval in all.
pub const MARKS_DESK_CLIENTS: usize = 4096;

/// Why a [`MarksDesk`] did not answer a marks query (each counted by the replica).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarksRefusal {
    /// The client was answered less than [`MARKS_QUERY_INTERVAL`] ago.
    TooSoon,
    /// [`MARKS_DESK_CLIENTS`] other clients were answered within the interval.
    Busy,
}

/// A replica's answers to clients' marks queries (`Event::MarksQuery`), shared by
/// every protocol: the client's row of the exactly-once table ([`DedupWindow::marks`],
/// about 4 KiB at most), at most one answer per client per
/// [`MARKS_QUERY_INTERVAL`] and [`MARKS_DESK_CLIENTS`] answers per interval in all.
/// Its memory is bounded by [`MARKS_DESK_CLIENTS`] entries; it is soft state (a
/// restarted replica starts with none).
#[derive(Clone, Debug, Default)]
pub struct MarksDesk {
    answered: BTreeMap<ClientId, Time>,
}

impl MarksDesk {
    /// `client`'s marks in `table` (zero marks for a client with no row), unless
    /// the bounds above refuse the query now.
    pub fn answer(
        &mut self,
        now: Time,
        client: ClientId,
        table: &DeliveredTable,
    ) -> Result<ClientMarks, MarksRefusal> {
        let recent = |at: &Time| now.since(*at) < MARKS_QUERY_INTERVAL;
        match self.answered.get(&client) {
            Some(at) if recent(at) => return Err(MarksRefusal::TooSoon),
            Some(_) => {}
            None if self.answered.len() >= MARKS_DESK_CLIENTS => {
                self.answered.retain(|_, at| recent(at));
                if self.answered.len() >= MARKS_DESK_CLIENTS {
                    return Err(MarksRefusal::Busy);
                }
            }
            None => {}
        }
        self.answered.insert(client, now);
        Ok(table
            .get(&client)
            .map(DedupWindow::marks)
            .unwrap_or_default())
    }
}

/// How far above the truth a `forge-stale` Byzantine replica claims a client's
/// numbers done ([`forged_stale`], [`forged_marks`]): far more than a simulator
/// window, so a client that believed one such answer would number past what the
/// replicas admit, or give up a request that still runs.
pub(crate) const FORGED_AHEAD: u64 = 1_000;

/// A `forge-stale` replica's answer to `req`: a stale-number notice that witnesses
/// its number spent (another request's result "cached" under it, the low and high
/// marks [`FORGED_AHEAD`] above it), whatever the truth. A client believing it alone
/// would number the request again while it may still run under its own number.
pub(crate) fn forged_stale(req: &Request) -> StaleNumber {
    let far = req.number.saturating_add(FORGED_AHEAD);
    StaleNumber {
        number: req.number,
        request: req.digest(),
        executed_other: true,
        low: far,
        high: far,
    }
}

/// A `forge-stale` replica's answer to `client`'s marks query: every number up to
/// [`FORGED_AHEAD`] above its true low mark done, and a run of "done" numbers up to
/// twice that — well formed, so a client counts it. A client believing it alone
/// would skip numbers no replica delivered, leaving a gap its window never passes.
pub(crate) fn forged_marks(table: &DeliveredTable, client: ClientId) -> ClientMarks {
    let low = table
        .get(&client)
        .map_or(0, DedupWindow::low)
        .saturating_add(FORGED_AHEAD);
    let first = low.saturating_add(2);
    let high = low.saturating_add(FORGED_AHEAD);
    ClientMarks {
        low,
        high,
        runs: if first <= high {
            vec![(first, high)]
        } else {
            Vec::new()
        },
        truncated: false,
    }
}

/// How a `forge-stale` replica (either protocol) answers `event`, as replica `me` in
/// `view` with its delivered `table`, signing with `signer` if given: a client
/// request gets a [`forged_stale`] notice (and the core still handles the request), a
/// marks query gets [`forged_marks`] (and the core must not answer it: returns
/// `true`); any other event is left to the core (`false`).
pub(crate) fn forge_stale_answer<M, T, R>(
    event: &Event<M, T>,
    view: View,
    me: ReplicaId,
    table: &DeliveredTable,
    signer: Option<&Keyring>,
    out: &mut Vec<Action<M, T, R>>,
) -> bool {
    let (client, reply, answered) = match event {
        Event::ClientRequest(req) => (
            req.client,
            Reply::stale_notice(view, me, req.client, forged_stale(req), signer),
            false,
        ),
        Event::MarksQuery(client) => (
            *client,
            Reply::marks_answer(view, me, *client, forged_marks(table, *client), signer),
            true,
        ),
        _ => return false,
    };
    out.push(Action::Reply { client, reply });
    answered
}

/// What [`filter_fresh`] left out of a committed batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Requests delivered before (or below their client's window).
    pub duplicates: u64,
    /// Requests numbered more than the window above their client's low mark.
    pub too_far: u64,
}

/// The requests of a committed `batch` not delivered before and within their client's
/// window, in order, marking each delivered in `table` (window `window`); `seen` is
/// called for every request of the batch, fresh or not. Returns the filtered batch —
/// `batch` itself when every request is fresh (the normal case: no copy) — and what
/// was left out. Every replica runs it on the same committed sequence with the same
/// table, so all deliver the same filtered batches.
pub fn filter_fresh(
    table: &mut DeliveredTable,
    batch: &Arc<Batch>,
    window: u64,
    mut seen: impl FnMut(&Request),
) -> (Arc<Batch>, Filtered) {
    // Built only from the first request left out on.
    let mut fresh: Option<Vec<Request>> = None;
    let mut left_out = Filtered::default();
    for (i, req) in batch.requests.iter().enumerate() {
        seen(req);
        let admission = table
            .entry(req.client)
            .or_default()
            .admit(req.number, window);
        match admission {
            Admission::Fresh => {}
            Admission::Done => left_out.duplicates += 1,
            Admission::TooFar => left_out.too_far += 1,
        }
        match (&mut fresh, admission.is_fresh()) {
            (Some(f), true) => f.push(req.clone()),
            (None, true) => {}
            (Some(_), false) => {}
            (None, false) => fresh = Some(batch.requests[..i].to_vec()),
        }
    }
    let filtered = match fresh {
        None => batch.clone(),
        Some(f) => Arc::new(Batch::new(f)),
    };
    (filtered, left_out)
}

/// Recent results per client, by request number (with the digest of the request they
/// answer).
pub type ReplyCache = BTreeMap<ClientId, BTreeMap<u64, ReplyResult>>;

/// The exactly-once state at a checkpoint: the delivered numbers of every client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTables {
    /// Delivered numbers as of the checkpoint's delivery.
    pub delivered: DeliveredTable,
}

impl ClientTables {
    /// Digest over the table, in client order.
    pub fn digest(&self) -> Digest {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"tandem-client-tables-v2");
        ctx.update(&(self.delivered.len() as u64).to_le_bytes());
        for (client, window) in &self.delivered {
            ctx.update(&client.0.to_le_bytes());
            window.hash_into(&mut ctx);
        }
        Digest::from_ring(ctx.finish())
    }

    /// Whether the table respects the window bound (a peer could send anything, any
    /// number up to `u64::MAX` included).
    pub fn is_well_formed(&self, window: u64) -> bool {
        self.delivered.values().all(|w| {
            w.above.len() as u64 <= window
                && w.above
                    .first()
                    .is_none_or(|first| w.low.checked_add(1).is_some_and(|next| *first > next))
        })
    }
}

/// Records the `results` of executing `batch` (one per request, in order) in the reply
/// cache, and returns them grouped by client, in client order: one reply per client.
pub fn record_batch_results(
    cache: &mut ReplyCache,
    batch: &Batch,
    results: Vec<Bytes>,
    window: u64,
) -> BTreeMap<ClientId, Vec<ReplyResult>> {
    let mut per_client: BTreeMap<ClientId, Vec<ReplyResult>> = BTreeMap::new();
    for (req, result) in batch.requests.iter().zip(results) {
        let result = ReplyResult {
            number: req.number,
            request: req.digest(),
            result,
        };
        record_result(cache, req.client, result.clone(), window);
        per_client.entry(req.client).or_default().push(result);
    }
    per_client
}

/// Records `result` for `client`, keeping only results within `window` of the
/// client's highest recorded number.
pub fn record_result(cache: &mut ReplyCache, client: ClientId, result: ReplyResult, window: u64) {
    let results = cache.entry(client).or_default();
    results.insert(result.number, result);
    let highest = *results.keys().next_back().expect("just inserted");
    let keep_from = highest.saturating_sub(window.saturating_sub(1));
    // One entry leaves per entry recorded in the steady state: popping the oldest is
    // O(log n) where `split_off` rebuilt the map's spine at every batch (9% of a
    // backup's CPU in `tandem local`, d50ccc4).
    while results
        .first_key_value()
        .is_some_and(|(n, _)| *n < keep_from)
    {
        results.pop_first();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn out_of_order_numbers_are_each_admitted_once() {
        let mut w = DedupWindow::default();
        assert!(w.admit(2, 100).is_fresh());
        assert!(w.admit(1, 100).is_fresh());
        assert_eq!(w.admit(2, 100), Admission::Done);
        assert_eq!(w.admit(1, 100), Admission::Done);
        assert_eq!(w.low, 2);
        assert!(w.above.is_empty());
        assert!(w.admit(5, 100).is_fresh());
        assert!(w.is_done(5));
        assert!(!w.is_done(4));
        assert_eq!(w.admit(0, 100), Admission::Done, "number 0 is never valid");
    }

    #[test]
    fn window_stays_bounded_and_numbers_beyond_it_wait() {
        let mut w = DedupWindow::default();
        for n in (2..=10).step_by(2) {
            assert!(w.admit(n, 10).is_fresh(), "{n}");
        }
        assert_eq!(w.admit(12, 10), Admission::TooFar, "low is 0, 12 > 0 + 10");
        assert!(!w.is_done(12));
        assert!(w.admit(1, 10).is_fresh(), "1 never fell below the window");
        assert_eq!(w.low, 2);
        assert!(w.admit(12, 10).is_fresh(), "12 <= 2 + 10");
        for n in (3..=11).step_by(2) {
            assert!(w.admit(n, 10).is_fresh(), "{n}");
        }
        assert_eq!(w.low, 12);
        assert!(w.above.is_empty());
    }

    /// Issue 10 item 1: a request forged with a far number used to slide the window
    /// past the client's genuine requests (`admit(1_000_000)` made 1..=999_990 "done"),
    /// locking the client out. It is refused and the window stays where it was.
    #[test]
    fn a_far_number_is_refused_and_does_not_slide_the_window() {
        let mut w = DedupWindow::default();
        assert!(w.admit(1, 64).is_fresh());
        assert_eq!(w.admit(1_000_000, 64), Admission::TooFar);
        assert!(!w.is_done(1_000_000));
        assert!(!w.is_done(2), "the client's next request is still fresh");
        assert!(w.admit(2, 64).is_fresh());
        assert_eq!(w.low, 2);
        let mut table = DeliveredTable::new();
        table.insert(ClientId(1), w);
        let forged = Request::new(ClientId(1), 1_000_000, Bytes::from_static(b"x"));
        let genuine = Request::new(ClientId(1), 3, Bytes::from_static(b"y"));
        let batch = Arc::new(Batch::new(vec![forged, genuine]));
        let (out, left_out) = filter_fresh(&mut table, &batch, 64, |_| {});
        assert_eq!(
            left_out,
            Filtered {
                duplicates: 0,
                too_far: 1
            }
        );
        let numbers: Vec<u64> = out.requests.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [3]);
        assert!(is_too_far(&table, ClientId(1), 1_000_000, 64));
        assert!(is_too_far(&table, ClientId(9), 65, 64));
        assert!(!is_too_far(&table, ClientId(9), 64, 64));
    }

    /// Issue 10 item 5: `admit` used to compute `low + 1` after folding `u64::MAX`
    /// into the low mark (a panic with overflow checks, a wrap without).
    #[test]
    fn numbers_near_u64_max_are_admitted_without_overflow() {
        for window in [2, 32, u64::MAX] {
            let mut w = DedupWindow::forged(u64::MAX - 2, []);
            assert!(w.admit(u64::MAX, window).is_fresh());
            assert!(w.admit(u64::MAX - 1, window).is_fresh());
            assert_eq!(w.admit(u64::MAX, window), Admission::Done);
            assert_eq!(w.admit(u64::MAX - 1, window), Admission::Done);
            assert_eq!(w.low, u64::MAX, "folded into the low mark");
            assert!(w.above.is_empty());
        }
        let mut w = DedupWindow::forged(u64::MAX - 2, []);
        assert_eq!(w.admit(u64::MAX, 1), Admission::TooFar);
        assert!(w.admit(u64::MAX - 1, 1).is_fresh());
        assert!(w.admit(u64::MAX, 1).is_fresh());
        assert_eq!(w.low, u64::MAX);
        let mut w = DedupWindow::default();
        assert_eq!(w.admit(u64::MAX, u64::MAX), Admission::Fresh);
        assert_eq!(w.admit(u64::MAX, 1), Admission::Done);
        assert_eq!(DedupWindow::default().admit(u64::MAX, 1), Admission::TooFar);
    }

    /// Issue 10 item 5: `is_well_formed` computed `low + 1` on a table a peer sent,
    /// before the table's digest was checked.
    #[test]
    fn tables_with_a_low_mark_at_u64_max_are_checked_without_overflow() {
        let mut t = ClientTables::default();
        t.delivered.insert(
            ClientId(1),
            DedupWindow {
                low: u64::MAX,
                above: BTreeSet::new(),
            },
        );
        assert!(t.is_well_formed(10));
        t.delivered.insert(
            ClientId(2),
            DedupWindow {
                low: u64::MAX,
                above: [u64::MAX].into(),
            },
        );
        assert!(!t.is_well_formed(10), "nothing lies above u64::MAX");
    }

    #[test]
    fn filter_fresh_leaves_out_delivered_requests_and_copies_only_then() {
        let req = |number| Request::new(ClientId(1), number, Bytes::from_static(b"p"));
        let mut table = DeliveredTable::new();
        let batch = Arc::new(Batch::new(vec![req(1), req(2)]));
        let mut seen = 0;
        let (out, left_out) = filter_fresh(&mut table, &batch, 8, |_| seen += 1);
        assert!(Arc::ptr_eq(&out, &batch), "all fresh: no copy");
        assert_eq!((left_out, seen), (Filtered::default(), 2));
        let again = Arc::new(Batch::new(vec![req(3), req(2), req(4), req(1)]));
        let (out, left_out) = filter_fresh(&mut table, &again, 8, |_| {});
        assert_eq!(left_out.duplicates, 2);
        let numbers: Vec<u64> = out.requests.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [3, 4]);
    }

    /// A done number is answered with this request's cached result only if the
    /// cached result names this request; otherwise with a stale-number notice carrying
    /// the client's marks (never another request's result).
    #[test]
    fn a_done_number_is_answered_with_its_own_result_or_a_stale_notice() {
        let mine = Request::new(ClientId(1), 2, Bytes::from_static(b"mine"));
        let other = Request::new(ClientId(1), 2, Bytes::from_static(b"other"));
        let mut table = DeliveredTable::new();
        let mut cache = ReplyCache::new();
        assert_eq!(
            answer_delivered(&table, &cache, &mine),
            DeliveredAnswer::Fresh
        );
        for n in [1, 2, 5] {
            table.entry(ClientId(1)).or_default().admit(n, 64);
        }
        assert_eq!(
            answer_delivered(&table, &cache, &Request::new(ClientId(1), 3, Bytes::new())),
            DeliveredAnswer::Fresh
        );
        let stale = |executed_other| {
            DeliveredAnswer::Stale(StaleNumber {
                number: 2,
                request: mine.digest(),
                executed_other,
                low: 2,
                high: 5,
            })
        };
        assert_eq!(
            answer_delivered(&table, &cache, &mine),
            stale(false),
            "no result held"
        );
        let result = |req: &Request| ReplyResult {
            number: 2,
            request: req.digest(),
            result: Bytes::from_static(b"r"),
        };
        record_result(&mut cache, ClientId(1), result(&other), 64);
        assert_eq!(answer_delivered(&table, &cache, &mine), stale(true));
        record_result(&mut cache, ClientId(1), result(&mine), 64);
        assert_eq!(
            answer_delivered(&table, &cache, &mine),
            DeliveredAnswer::Result(result(&mine))
        );
    }

    /// A window's marks list its done numbers above the low mark as runs, the lowest
    /// `MAX_MARK_RUNS` of them; the desk answers a client once per interval and at
    /// most `MARKS_DESK_CLIENTS` clients per interval.
    #[test]
    fn marks_are_runs_of_the_window_and_the_desk_bounds_answers() {
        let mut w = DedupWindow::default();
        for n in [1, 2, 4, 5, 6, 9] {
            w.admit(n, 1 << 20);
        }
        let m = w.marks();
        assert_eq!((m.low, m.high, m.truncated), (2, 9, false));
        assert_eq!(m.runs, [(4, 6), (9, 9)]);
        assert!(m.is_well_formed());
        let mut w = DedupWindow::default();
        for i in 0..(MAX_MARK_RUNS as u64 + 10) {
            w.admit(10 + 2 * i, 1 << 20);
        }
        let m = w.marks();
        assert_eq!(m.runs.len(), MAX_MARK_RUNS);
        assert!(m.truncated && m.is_well_formed());
        assert_eq!(m.high, 10 + 2 * (MAX_MARK_RUNS as u64 + 9));

        let mut table = DeliveredTable::new();
        table.insert(ClientId(1), w);
        let mut desk = MarksDesk::default();
        let t0 = Time::ZERO;
        assert_eq!(desk.answer(t0, ClientId(1), &table), Ok(m));
        assert_eq!(
            desk.answer(t0, ClientId(1), &table),
            Err(MarksRefusal::TooSoon)
        );
        for c in 2..=MARKS_DESK_CLIENTS as u32 {
            assert_eq!(
                desk.answer(t0, ClientId(c), &table),
                Ok(ClientMarks::default())
            );
        }
        let busy = desk.answer(t0, ClientId(u32::MAX), &table);
        assert_eq!(busy, Err(MarksRefusal::Busy));
        let later = t0 + MARKS_QUERY_INTERVAL;
        assert!(desk.answer(later, ClientId(u32::MAX), &table).is_ok());
        assert!(desk.answered.len() <= MARKS_DESK_CLIENTS);
    }

    #[test]
    fn reply_cache_keeps_recent_results() {
        let mut cache = ReplyCache::new();
        for n in 1..=50 {
            let result = ReplyResult {
                number: n,
                request: Digest::default(),
                result: Bytes::from(vec![n as u8]),
            };
            record_result(&mut cache, ClientId(1), result, 8);
        }
        let r = &cache[&ClientId(1)];
        assert_eq!(r.len(), 8);
        assert_eq!(*r.keys().next().unwrap(), 43);
    }

    #[test]
    fn tables_digest_changes_with_content() {
        let mut t = ClientTables::default();
        let d0 = t.digest();
        t.delivered.entry(ClientId(1)).or_default().admit(1, 10);
        let d1 = t.digest();
        assert_ne!(d0, d1);
        t.delivered.entry(ClientId(1)).or_default().admit(3, 10);
        assert_ne!(d1, t.digest());
        assert!(t.is_well_formed(10));
        t.delivered.entry(ClientId(2)).or_default().above.insert(1);
        assert!(
            !t.is_well_formed(10),
            "1 should have been folded into the low mark"
        );
    }

    /// Admission refuses only implausibly far numbers (8 windows), so a replica whose
    /// table lags the cluster's still admits what its peers deliver; delivery refuses
    /// at one window.
    #[test]
    fn admission_refuses_only_implausibly_far_numbers() {
        let table = DeliveredTable::new();
        assert!(is_too_far(&table, ClientId(1), 65, 64));
        assert!(!is_implausibly_far(&table, ClientId(1), 65, 64));
        assert!(!is_implausibly_far(&table, ClientId(1), 8 * 64, 64));
        assert!(is_implausibly_far(&table, ClientId(1), 8 * 64 + 1, 64));
        // No overflow at the extremes: a window of u64::MAX admits everything.
        assert!(!is_implausibly_far(&table, ClientId(1), u64::MAX, u64::MAX));
    }
}
