//! The simulator's judge: safety (correct replicas deliver the same batch at every
//! sequence number, execute each request once, agree on the state digest and on every
//! result, execute only requests their clients sent — the payload a client submitted
//! under that number — and clients only accept results correct replicas produced) and
//! liveness
//! (every request completes within the bound after the faults heal).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;

use crate::protocol::Delivery;
use crate::types::{ClientId, Digest, ReplicaId, Seq, Time};

/// Something the checker found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Correct replicas disagreed, or a request ran twice, or a client accepted a
    /// result no correct replica produced.
    Safety(String),
    /// Requests did not complete within the bound after the faults healed.
    Liveness(String),
    /// The protocol panicked.
    Panic(String),
    /// Overload alone (the `overload` mix: no fault, clients offering more than
    /// execution carries) made a correct replica give up on its leader (a view change,
    /// a round time-out) or fetch state: an overload violation.
    Overload(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Safety(s) => write!(f, "safety: {s}"),
            Violation::Liveness(s) => write!(f, "liveness: {s}"),
            Violation::Panic(s) => write!(f, "panic: {s}"),
            Violation::Overload(s) => write!(f, "overload: {s}"),
        }
    }
}

/// The most a correct replica may send one Byzantine peer in one second of virtual
/// time, in encoded bytes (issue 10 item 4: a peer's status and fetch messages must
/// not buy it unbounded answers). The simulator's own traffic is a few KiB a second
/// per link; PBFT's simulator resend budget is 160 KiB a second.
pub const MAX_BYTES_TO_ONE_PEER_PER_SECOND: u64 = 1 << 20;

/// Collects what correct replicas and clients did and compares it.
#[derive(Debug, Default)]
pub struct Checker {
    /// Per (correct sender, Byzantine receiver): the current second and the bytes
    /// sent in it.
    sent_to_faulty: BTreeMap<(ReplicaId, ReplicaId), (u64, u64)>,
    delivered: BTreeMap<Seq, (Digest, ReplicaId)>,
    executed_digest: BTreeMap<Seq, (Digest, ReplicaId)>,
    results: BTreeMap<(ClientId, u64), Bytes>,
    /// What each client submitted under each number: the requests' digests (more
    /// than one when a restarted client used the number again).
    submitted: BTreeMap<(ClientId, u64), BTreeSet<Digest>>,
    seen: BTreeMap<(ReplicaId, u32), BTreeSet<(ClientId, u64)>>,
    /// Every payload of each client a correct replica executed, under which number
    /// and by which replica first: a payload a client numbered again must run under
    /// one number only — across replicas and their incarnations (a replica restarted
    /// from its log, or by state transfer, executes some numbers again, under the
    /// same numbers).
    seen_payloads: BTreeMap<(ClientId, Bytes), (u64, ReplicaId)>,
    violations: Vec<Violation>,
}

impl Checker {
    /// What went wrong so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Records a violation found outside the checker.
    pub fn report(&mut self, v: Violation) {
        if self.violations.len() < 32 {
            self.violations.push(v);
        }
    }

    /// Client `client` submitted the request whose digest is `digest` under `number`.
    pub fn submitted(&mut self, client: ClientId, number: u64, digest: Digest) {
        self.submitted
            .entry((client, number))
            .or_default()
            .insert(digest);
    }

    /// A correct replica (in `incarnation`) delivered `d`. Every request in it must be
    /// one its client submitted (issue 10 item 1: a request forged in a client's name
    /// — by a forwarding backup or a primary — must never run).
    pub fn delivery(&mut self, replica: ReplicaId, incarnation: u32, d: &Delivery) {
        let forged: Vec<String> = d
            .batch
            .requests
            .iter()
            .filter(|req| {
                !self
                    .submitted
                    .get(&req.key())
                    .is_some_and(|digests| digests.contains(&req.digest()))
            })
            .map(|req| {
                format!(
                    "{replica} executed request ({}, {}) at {} that its client did not send",
                    req.client, req.number, d.seq
                )
            })
            .collect();
        for msg in forged {
            self.report(Violation::Safety(msg));
        }
        let digest = d.batch.digest();
        match self.delivered.get(&d.seq) {
            Some((first, by)) if *first != digest => {
                let msg = format!(
                    "{replica} delivered {} at {} but {by} delivered {}",
                    digest, d.seq, first
                );
                self.report(Violation::Safety(msg));
            }
            Some(_) => {}
            None => {
                self.delivered.insert(d.seq, (digest, replica));
            }
        }
        let seen = self.seen.entry((replica, incarnation)).or_default();
        let twice: Vec<String> = d
            .batch
            .requests
            .iter()
            .filter(|req| !seen.insert(req.key()))
            .map(|req| {
                format!(
                    "{replica} executed request ({}, {}) twice (again at {})",
                    req.client, req.number, d.seq
                )
            })
            .collect();
        let submitted = &self.submitted;
        let payloads = &mut self.seen_payloads;
        let renumbered_twice: Vec<String> = d
            .batch
            .requests
            .iter()
            // A forged request is reported above; this is about the client's own.
            .filter(|req| {
                submitted
                    .get(&req.key())
                    .is_some_and(|digests| digests.contains(&req.digest()))
            })
            .filter_map(|req| {
                let (first, by) = *payloads
                    .entry((req.client, req.payload.clone()))
                    .or_insert((req.number, replica));
                (first != req.number).then(|| {
                    format!(
                        "{replica} executed a payload of {} twice (again as {} at {}; {by} \
                         executed it as {first})",
                        req.client, req.number, d.seq
                    )
                })
            })
            .collect();
        for msg in twice.into_iter().chain(renumbered_twice) {
            self.report(Violation::Safety(msg));
        }
    }

    /// A correct replica executed `d` with these results and state digest.
    pub fn execution(
        &mut self,
        replica: ReplicaId,
        d: &Delivery,
        results: &[Bytes],
        app_digest: Digest,
    ) {
        match self.executed_digest.get(&d.seq) {
            Some((first, by)) if *first != app_digest => {
                let msg = format!(
                    "{replica} reached state {} after {} but {by} reached {}",
                    app_digest, d.seq, first
                );
                self.report(Violation::Safety(msg));
            }
            Some(_) => {}
            None => {
                self.executed_digest.insert(d.seq, (app_digest, replica));
            }
        }
        for (req, result) in d.batch.requests.iter().zip(results) {
            match self.results.get(&req.key()) {
                Some(first) if first != result => {
                    let msg = format!(
                        "{replica} computed a different result for ({}, {})",
                        req.client, req.number
                    );
                    self.report(Violation::Safety(msg));
                }
                Some(_) => {}
                None => {
                    self.results.insert(req.key(), result.clone());
                }
            }
        }
    }

    /// A client accepted `result` for its request `number`.
    pub fn accepted(&mut self, client: ClientId, number: u64, result: &Bytes, now: Time) {
        match self.results.get(&(client, number)) {
            Some(r) if r == result => {}
            Some(_) => self.report(Violation::Safety(format!(
                "client {client} accepted a wrong result for request {number} at {now}"
            ))),
            None => self.report(Violation::Safety(format!(
                "client {client} accepted a result for request {number} at {now} that no correct replica produced"
            ))),
        }
    }

    /// A correct replica sent `bytes` (encoded) to a Byzantine peer at `now`; more
    /// than [`MAX_BYTES_TO_ONE_PEER_PER_SECOND`] in one second is a violation
    /// (reported once per link and second).
    pub fn sent_to_faulty(&mut self, from: ReplicaId, to: ReplicaId, bytes: u64, now: Time) {
        let second = now.0 / 1_000_000_000;
        let entry = self.sent_to_faulty.entry((from, to)).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        let before = entry.1;
        entry.1 = entry.1.saturating_add(bytes);
        if before <= MAX_BYTES_TO_ONE_PEER_PER_SECOND && entry.1 > MAX_BYTES_TO_ONE_PEER_PER_SECOND
        {
            self.report(Violation::Safety(format!(
                "{from} sent Byzantine {to} more than {MAX_BYTES_TO_ONE_PEER_PER_SECOND} bytes in second {second} (amplification)"
            )));
        }
    }

    /// Liveness for every client, not just in total (issue 10 item 2: a censoring
    /// primary starves one client while the others finish): each `(client,
    /// completed, planned)` with requests left is a violation naming the client.
    pub fn client_liveness(&mut self, per_client: &[(ClientId, u64, u64)]) {
        for (client, completed, planned) in per_client {
            if completed < planned {
                self.report(Violation::Liveness(format!(
                    "client {client} completed {completed} of its {planned} requests"
                )));
            }
        }
    }

    /// Highest sequence number any correct replica delivered.
    pub fn highest_delivered(&self) -> Seq {
        self.delivered
            .keys()
            .next_back()
            .copied()
            .unwrap_or_default()
    }

    /// A digest over everything correct replicas delivered, for determinism checks.
    pub fn delivered_digest(&self) -> Digest {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for (seq, (d, _)) in &self.delivered {
            ctx.update(&seq.0.to_le_bytes());
            ctx.update(&d.0);
        }
        Digest::from_ring(ctx.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Batch, Request};
    use crate::types::View;
    use std::sync::Arc;

    fn delivery(seq: u64, payload: &'static [u8], number: u64) -> Delivery {
        Delivery {
            view: View(0),
            seq: Seq(seq),
            batch: Arc::new(Batch::new(vec![Request::new(
                ClientId(0),
                number,
                Bytes::from_static(payload),
            )])),
            checkpoint: false,
        }
    }

    /// A checker that saw client 0 submit `payload` as requests `numbers`.
    fn submitted(numbers: std::ops::RangeInclusive<u64>, payload: &'static [u8]) -> Checker {
        let mut c = Checker::default();
        for n in numbers {
            let req = Request::new(ClientId(0), n, Bytes::from_static(payload));
            c.submitted(ClientId(0), n, req.digest());
        }
        c
    }

    #[test]
    fn conflicting_deliveries_are_violations() {
        let mut c = submitted(1..=1, b"a");
        c.delivery(ReplicaId(0), 0, &delivery(1, b"a", 1));
        c.delivery(ReplicaId(1), 0, &delivery(1, b"a", 1));
        assert!(c.violations().is_empty());
        c.delivery(ReplicaId(2), 0, &delivery(1, b"a", 2));
        assert_eq!(c.violations().len(), 2, "{:?}", c.violations());
    }

    /// Issue 10 item 1: a correct replica executing a request forged in a client's
    /// name (another payload under a number the client used, or a number it never
    /// used) is a safety violation; the checker used to compare results by (client,
    /// number) only, so all correct replicas executing the same forgery passed.
    #[test]
    fn executing_a_request_the_client_did_not_send_is_a_violation() {
        let mut c = submitted(1..=2, b"a");
        c.delivery(ReplicaId(0), 0, &delivery(1, b"a", 1));
        assert!(c.violations().is_empty());
        c.delivery(ReplicaId(0), 0, &delivery(2, b"evil", 2));
        c.delivery(ReplicaId(0), 0, &delivery(3, b"a", 1_000_000));
        assert_eq!(c.violations().len(), 2, "{:?}", c.violations());
        assert!(
            c.violations()
                .iter()
                .all(|v| v.to_string().contains("did not send"))
        );
    }

    #[test]
    fn double_execution_and_unvouched_results_are_violations() {
        let mut c = submitted(1..=1, b"a");
        c.delivery(ReplicaId(0), 0, &delivery(1, b"a", 1));
        c.delivery(ReplicaId(0), 0, &delivery(2, b"a", 1));
        assert!(matches!(c.violations()[0], Violation::Safety(_)));
        c.accepted(ClientId(0), 9, &Bytes::from_static(b"r"), Time(0));
        assert_eq!(c.violations().len(), 2);
    }

    /// A payload the client submitted under two numbers (numbered again after a
    /// stale-number notice) must run under one of them only.
    #[test]
    fn a_renumbered_payload_executed_under_both_numbers_is_a_violation() {
        let mut c = submitted(1..=1, b"a");
        let again = Request::new(ClientId(0), 40, Bytes::from_static(b"a"));
        c.submitted(ClientId(0), 40, again.digest());
        c.delivery(ReplicaId(0), 0, &delivery(1, b"a", 1));
        assert!(c.violations().is_empty());
        c.delivery(ReplicaId(0), 0, &delivery(2, b"a", 40));
        assert_eq!(c.violations().len(), 1, "{:?}", c.violations());
        assert!(
            c.violations()[0]
                .to_string()
                .contains("payload of c0 twice")
        );
    }

    /// Review of 87007e6: the payload check was per replica incarnation, so a payload
    /// a replica executed under one number before a crash and under another after it
    /// (or two replicas under two numbers) went unseen. Executing it again under the
    /// same number after a restart (log replay, state transfer) is no violation.
    #[test]
    fn a_payload_under_two_numbers_across_a_restart_or_replicas_is_a_violation() {
        let mut c = submitted(1..=1, b"a");
        let again = Request::new(ClientId(0), 40, Bytes::from_static(b"a"));
        c.submitted(ClientId(0), 40, again.digest());
        c.delivery(ReplicaId(0), 0, &delivery(1, b"a", 1));
        c.delivery(ReplicaId(0), 1, &delivery(1, b"a", 1));
        c.delivery(ReplicaId(1), 0, &delivery(1, b"a", 1));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        c.delivery(ReplicaId(0), 2, &delivery(7, b"a", 40));
        assert_eq!(c.violations().len(), 1, "{:?}", c.violations());
        c.delivery(ReplicaId(2), 0, &delivery(7, b"a", 40));
        assert_eq!(c.violations().len(), 2, "{:?}", c.violations());
        assert!(
            c.violations()[1]
                .to_string()
                .contains("r0 executed it as 1")
        );
    }

    #[test]
    fn amplification_towards_a_faulty_peer_is_a_violation() {
        let mut c = Checker::default();
        let at = |s: u64| Time(s * 1_000_000_000);
        c.sent_to_faulty(
            ReplicaId(1),
            ReplicaId(0),
            MAX_BYTES_TO_ONE_PEER_PER_SECOND,
            at(0),
        );
        c.sent_to_faulty(
            ReplicaId(1),
            ReplicaId(0),
            MAX_BYTES_TO_ONE_PEER_PER_SECOND,
            at(1),
        );
        assert!(c.violations().is_empty(), "a new second starts from zero");
        c.sent_to_faulty(ReplicaId(1), ReplicaId(0), 1, at(1));
        c.sent_to_faulty(ReplicaId(1), ReplicaId(0), 1, at(1));
        assert_eq!(c.violations().len(), 1);
    }

    #[test]
    fn a_starved_client_is_named() {
        let mut c = Checker::default();
        c.client_liveness(&[(ClientId(0), 3, 10), (ClientId(1), 10, 10)]);
        assert_eq!(c.violations().len(), 1);
        assert!(c.violations()[0].to_string().contains("client c0"));
    }
}
