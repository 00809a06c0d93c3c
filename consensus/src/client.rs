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
//! Like the replica, it never reads a clock or touches a socket: the caller passes the
//! time and carries out [`ClientAction`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;

use crate::client_auth::ClientMacs;
use crate::crypto::verify_signature;
use crate::request::{Reply, ReplyResult, Request};
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
}

/// A request whose result f+1 replicas agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The request number.
    pub number: u64,
    /// The agreed result.
    pub result: Bytes,
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
    /// Busy refusals ignored because they came from a replica the request is not
    /// routed to (only the route's replicas decide whether it queues).
    pub ignored_busy: u64,
}

/// The first back-off after a busy refusal; it doubles with every further refusal up
/// to [`MAX_BUSY_BACKOFF`] and starts over once a request completes.
pub const MIN_BUSY_BACKOFF: Duration = Duration::from_millis(5);
/// The longest back-off after busy refusals.
pub const MAX_BUSY_BACKOFF: Duration = Duration::from_millis(320);

#[derive(Debug)]
struct Outstanding {
    request: Request,
    /// [`Request::digest`]: what a result must name to be accepted.
    digest: Digest,
    sent_at: Time,
    /// When it was last sent (after a busy refusal it is sent again): what tells a
    /// queued request from an overtaken one.
    last_sent_at: Time,
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
    deadlines: BTreeSet<(Time, u64)>,
    routing: Box<dyn ClientRouting>,
    macs: ClientMacs,
    counters: ClientCounters,
    /// The current busy back-off, and until when new requests wait.
    busy_backoff: Duration,
    busy_until: Option<Time>,
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
            retransmit_after,
            rtt: RttEstimate::default(),
            last_completion_at: None,
            latest_completed_sent_at: None,
            replica_keys,
            window: window.max(1),
            next_number: 1,
            outstanding: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            routing,
            macs: ClientMacs::default(),
            counters: ClientCounters::default(),
            busy_backoff: MIN_BUSY_BACKOFF,
            busy_until: None,
        }
    }

    /// Whether the cluster refused this client's requests as busy and its back-off
    /// has not passed: new requests should wait (an open-loop driver sheds them).
    pub fn backing_off(&self, now: Time) -> bool {
        self.busy_until.is_some_and(|t| now < t)
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

    /// Requests sent and not yet completed.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Counters.
    pub fn counters(&self) -> &ClientCounters {
        &self.counters
    }

    /// Whether a new request can be numbered without its oldest outstanding request
    /// falling out of the replicas' exactly-once window.
    pub fn can_submit(&self) -> bool {
        self.outstanding
            .keys()
            .next()
            .is_none_or(|oldest| self.next_number < oldest + self.window)
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
        let number = self.next_number;
        self.next_number += 1;
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
                sent_at: now,
                last_sent_at: now,
                retransmit_at,
                retransmitted: false,
                busy_retry_at: None,
                busy_from: Vec::new(),
                deadline: retransmit_at,
                replies: BTreeMap::new(),
            },
        );
        self.deadlines.insert((retransmit_at, number));
        self.counters.submitted += 1;
        Some(number)
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
    /// again after the current back-off (which doubles, up to [`MAX_BUSY_BACKOFF`]),
    /// and new requests wait for it too ([`ClientCore::backing_off`]); its
    /// resend-to-all deadline stays where it was.
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
        let mut refused_any = false;
        for number in numbers {
            let Some(entry) = self.outstanding.get_mut(number) else {
                continue;
            };
            self.counters.busy_refusals += 1;
            if entry.busy_retry_at.is_some() || entry.busy_from.contains(&from) {
                continue; // already backing off, or this replica already refused it
            }
            entry.busy_from.push(from);
            if entry.busy_from.len() < needed {
                continue;
            }
            refused_any = true;
            entry.busy_retry_at = Some(now + self.busy_backoff);
            Self::reschedule(&mut self.deadlines, *number, entry);
        }
        if refused_any {
            let until = now + self.busy_backoff;
            if self.busy_until.is_none_or(|t| t < until) {
                self.busy_until = Some(until);
                self.busy_backoff = (self.busy_backoff * 2).min(MAX_BUSY_BACKOFF);
            }
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
                // Measured from the first send even if retransmitted: an over-estimate,
                // never an under-estimate (Karn's ambiguity), and a cluster slower
                // than the time-out still teaches the client to wait longer.
                self.rtt.sample(now.since(entry.sent_at));
                self.last_completion_at = Some(now);
                self.latest_completed_sent_at =
                    self.latest_completed_sent_at.max(Some(entry.last_sent_at));
                done.push(Completed {
                    number: *number,
                    result: result.clone(),
                    sent_at: entry.sent_at,
                    latency: now.since(entry.sent_at),
                    retransmitted: entry.retransmitted,
                });
            }
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

    /// Retransmits every request whose time-out passed and that looks lost (see the
    /// module comment), to all replicas, doubling its time-out (up to 8× the
    /// configured one); the others wait another time-out.
    pub fn on_tick(&mut self, now: Time, out: &mut Vec<ClientAction>) {
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
                if !overtaken && now.since(quiet_since) < timeout {
                    entry.retransmit_at = now + timeout;
                    self.counters.postponed_retransmissions += 1;
                } else {
                    let waited = now.since(entry.sent_at);
                    entry.retransmit_at = now + waited.max(timeout).min(max_timeout);
                    entry.retransmitted = true;
                    entry.busy_from.clear();
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
        self.deadlines.first().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pbft::PrimaryRouting;

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
            signature: None,
        }
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
