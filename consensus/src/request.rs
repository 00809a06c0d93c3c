//! Client requests, the batches the primary orders, and the replies clients collect.
//!
//! The protocol treats a request's payload as opaque bytes; what it means is the
//! application's business. A batch is identified by a SHA-256 digest over a canonical
//! encoding of its requests, so prepares and commits carry 32 bytes, not the batch.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::client_auth::{Authenticator, request_digest};
use crate::crypto::{Keyring, Signature};
use crate::types::{ClientId, Digest, ReplicaId, View};

/// A client's request: `(client, number)` names it for exactly-once execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Who sent it.
    pub client: ClientId,
    /// The client's request number; a client numbers its requests 1, 2, 3, ...
    pub number: u64,
    /// The operation, opaque to the protocol.
    pub payload: Bytes,
    /// One MAC per replica over [`Request::digest`] (`client_auth.rs`): what lets a
    /// replica check that the client sent it, whoever forwarded or proposed it. Not
    /// part of the batch digest.
    pub auth: Authenticator,
    /// [`Request::digest`] as first computed on this value (a clone taken after
    /// carries it); not sent, not part of equality.
    #[serde(skip)]
    digest_memo: DigestMemo,
}

/// A request's digest remembered with what it was computed over: the client, the
/// number and the payload (a clone of its `Bytes`, so the buffer cannot be freed and
/// reused while the memo holds it). A memo that no longer matches the request's
/// fields (one was replaced after the first [`Request::digest`]) is ignored, so
/// replacing a field never yields a stale digest.
///
/// Why: a replica hashes every request's payload when it checks the request's MAC,
/// and again for the reply that names it; a 512-byte request's SHA-256 was the
/// largest item of a HotStuff replica's consensus thread (`perf`, 80,000 tx/s
/// offered). With the memo each decoded request is hashed once per replica.
#[derive(Clone, Default)]
struct DigestMemo(OnceLock<DigestMemoEntry>);

#[derive(Clone)]
struct DigestMemoEntry {
    client: ClientId,
    number: u64,
    payload: Bytes,
    digest: Digest,
}

impl DigestMemo {
    /// The remembered digest of `req`, if it was computed over `req`'s fields.
    fn get(&self, req: &Request) -> Option<Digest> {
        let e = self.0.get()?;
        let same = e.client == req.client
            && e.number == req.number
            && e.payload.as_ptr() == req.payload.as_ptr()
            && e.payload.len() == req.payload.len();
        same.then_some(e.digest)
    }
}

impl PartialEq for DigestMemo {
    fn eq(&self, _: &DigestMemo) -> bool {
        true // a cache: never part of a request's identity
    }
}

impl Eq for DigestMemo {}

impl fmt::Debug for DigestMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DigestMemo")
    }
}

impl Request {
    /// An unauthenticated request (its authenticator empty until a client's
    /// [`ClientMacs`](crate::client_auth::ClientMacs) signs it).
    pub fn new(client: ClientId, number: u64, payload: Bytes) -> Request {
        Request {
            client,
            number,
            payload,
            auth: Authenticator::default(),
            digest_memo: DigestMemo::default(),
        }
    }

    /// `(client, number)`, the request's identity.
    pub fn key(&self) -> (ClientId, u64) {
        (self.client, self.number)
    }

    /// SHA-256 over `(client, number, payload)`: what its MACs cover and what a reply
    /// names so a client accepts only the result of its own payload.
    /// Computed once per request value; a clone taken after that carries it (see
    /// `DigestMemo`).
    pub fn digest(&self) -> Digest {
        if let Some(d) = self.digest_memo.get(self) {
            return d;
        }
        let digest = request_digest(self.client, self.number, &self.payload);
        let _ = self.digest_memo.0.set(DigestMemoEntry {
            client: self.client,
            number: self.number,
            payload: self.payload.clone(),
            digest,
        });
        digest
    }

    /// Whether its authenticator has a shape a correct client sends in a cluster of
    /// `replicas`: none, or one MAC per replica. The authenticator is outside the batch
    /// digest and the payload limits, so this is what bounds it (at `replicas` × 16
    /// bytes per request) in batches a peer proposes, fetches or vouches for.
    pub fn authenticator_well_formed(&self, replicas: usize) -> bool {
        self.auth.is_empty() || self.auth.len() == replicas
    }
}

/// An ordered list of requests proposed at one sequence number. An empty batch is the
/// "null request" that fills gaps after a view change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The requests, in execution order.
    pub requests: Vec<Request>,
}

impl Batch {
    /// A batch of these requests.
    pub fn new(requests: Vec<Request>) -> Batch {
        Batch { requests }
    }

    /// The null batch.
    pub fn null() -> Arc<Batch> {
        Arc::new(Batch::default())
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether this is the null batch.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Total payload bytes.
    pub fn payload_bytes(&self) -> usize {
        self.requests.iter().map(|r| r.payload.len()).sum()
    }

    /// The batch digest: SHA-256 over a canonical, length-prefixed encoding of every
    /// request. Computed field by field, without serialising the batch.
    pub fn digest(&self) -> Digest {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"tandem-batch-v1");
        ctx.update(&(self.requests.len() as u64).to_le_bytes());
        for r in &self.requests {
            ctx.update(&r.client.0.to_le_bytes());
            ctx.update(&r.number.to_le_bytes());
            ctx.update(&(r.payload.len() as u64).to_le_bytes());
            ctx.update(&r.payload);
        }
        Digest::from_ring(ctx.finish())
    }
}

/// The digest of the null batch.
pub fn null_digest() -> Digest {
    Batch::default().digest()
}

/// The result of one executed request, naming the request it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyResult {
    /// The request number.
    pub number: u64,
    /// [`Request::digest`] of the request executed under that number: a client accepts
    /// only results of its own payload (issue 10 item 1), whatever was ordered in its
    /// name.
    pub request: Digest,
    /// The application's result.
    pub result: Bytes,
}

/// A replica's answer to a request whose number was already delivered, and not with
/// this request's payload as far as the replica knows: the number is spent. It never
/// carries a result (the result under that number, if any, is another request's), only
/// what the client needs to number the request again: the replica's marks of the
/// client's exactly-once window. A client renumbers a request only once f+1 replicas
/// witness that its number is spent ([`StaleNumber::witnesses`]), and numbers above
/// the (f+1)-th highest low mark reported (`client.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleNumber {
    /// The request number.
    pub number: u64,
    /// [`Request::digest`] of the request this answers (the client's own): a notice
    /// counts only for the request the client sent under that number.
    pub request: Digest,
    /// Whether this replica's cached result under `number` names another request's
    /// digest: that other request executed under the number, so this one did not.
    pub executed_other: bool,
    /// The replica's low mark of the client's window: every number up to it is done.
    pub low: u64,
    /// The highest number the replica holds as done for the client.
    pub high: u64,
}

impl StaleNumber {
    /// Whether this notice, if a correct replica sent it, proves that the request
    /// numbered `number` with digest `request` did not execute and never will, for a
    /// client that never numbers a request `window` or more above an outstanding one:
    /// either another request executed under the number (`executed_other`), or a
    /// number at least `window` above it is done (`high ≥ number + window`), which the
    /// client cannot have sent while this request was outstanding — so a previous run
    /// under its key did, after its own request under `number` had completed, and this
    /// one found the number spent. `false` when `number + window` overflows.
    pub fn witnesses(&self, window: u64) -> bool {
        self.executed_other
            || self
                .number
                .checked_add(window)
                .is_some_and(|far| self.high >= far)
    }
}

/// Most runs of done numbers above the low mark a [`ClientMarks`] answer lists: 256
/// runs of 16 bytes, about 4 KiB encoded. A replica lists the lowest runs and sets
/// [`ClientMarks::truncated`] when more remain.
pub const MAX_MARK_RUNS: usize = 256;

/// A replica's answer to a client's marks query (`Event::MarksQuery`): the client's
/// row of its replicated exactly-once table as of the answer — the low mark, the
/// highest done number, and the done numbers above the low mark as runs. Replicated
/// state (part of the checkpoint digest, restored by log replay and state transfer),
/// so unlike the reply cache it survives restarts. A client starting a run takes
/// answers from f+1 distinct replicas and numbers above the (f+1)-th highest low mark,
/// skipping numbers f+1 answers hold done (`client.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMarks {
    /// Every number up to it is done.
    pub low: u64,
    /// The highest done number (`low` when none is done above it).
    pub high: u64,
    /// Done numbers above `low`, as inclusive runs `(first, last)`, ascending and
    /// apart (each starts at least two above the previous one's end), at most
    /// [`MAX_MARK_RUNS`] of them.
    pub runs: Vec<(u64, u64)>,
    /// Whether done numbers above the last run were left out (more than
    /// [`MAX_MARK_RUNS`] runs): nothing is said about numbers above it.
    pub truncated: bool,
}

impl ClientMarks {
    /// Whether the answer has a shape a correct replica sends: at most
    /// [`MAX_MARK_RUNS`] runs, each `first ≤ last ≤ high`, each starting at least two
    /// above the previous one's end (the first at least two above `low`: a done
    /// `low + 1` is folded into the low mark), and `high ≥ low`. Any values up to
    /// `u64::MAX` are checked without overflow (a faulty replica could send anything).
    pub fn is_well_formed(&self) -> bool {
        if self.runs.len() > MAX_MARK_RUNS || self.high < self.low {
            return false;
        }
        let mut previous = self.low;
        for &(first, last) in &self.runs {
            if first <= previous || first - previous < 2 || first > last || last > self.high {
                return false;
            }
            previous = last;
        }
        true
    }
}

/// A replica's answer to one client for the requests of that client executed in one
/// batch. The client accepts a result once f+1 replicas sent the same one for the
/// request it sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The replica's current view, so the client learns who the primary is.
    pub view: View,
    /// The replica that executed the requests.
    pub replica: ReplicaId,
    /// The client the results are for.
    pub client: ClientId,
    /// One result per request of the client in the batch.
    pub results: Vec<ReplyResult>,
    /// Request numbers this replica refused without queueing them because it is
    /// busy (its queue holds what it can order before execution catches up): the
    /// client backs off and sends them again. A hint only — it proves nothing, and
    /// a client never gives a request up because of it.
    pub busy: Vec<u64>,
    /// Requests whose number this replica holds as already delivered without this
    /// request's result (see [`StaleNumber`]): the client renumbers them once f+1
    /// replicas witness it.
    pub stale: Vec<StaleNumber>,
    /// The answer to a marks query (`Event::MarksQuery`): the client's row of this
    /// replica's exactly-once table ([`ClientMarks`]).
    pub marks: Option<ClientMarks>,
    /// Set in signed-all mode: the replica's signature over the reply.
    pub signature: Option<Signature>,
}

impl Reply {
    /// `replica`'s reply to `client` reporting `view`, signed with `signer` if given
    /// (signed-all mode).
    pub fn new(
        view: View,
        replica: ReplicaId,
        client: ClientId,
        results: Vec<ReplyResult>,
        signer: Option<&Keyring>,
    ) -> Reply {
        Reply {
            results,
            ..Reply::empty(view, replica, client)
        }
        .signed_by(signer)
    }

    /// An unsigned reply from `replica` to `client` in `view` carrying nothing yet.
    fn empty(view: View, replica: ReplicaId, client: ClientId) -> Reply {
        Reply {
            view,
            replica,
            client,
            results: Vec::new(),
            busy: Vec::new(),
            stale: Vec::new(),
            marks: None,
            signature: None,
        }
    }

    /// This reply, signed with `signer` if given (signed-all mode).
    fn signed_by(mut self, signer: Option<&Keyring>) -> Reply {
        if let Some(keys) = signer {
            self.signature = Some(keys.sign(&self.signing_bytes()));
        }
        self
    }

    /// `replica`'s refusal of `client`'s requests `numbers` as busy (see
    /// [`Reply::busy`]), reporting `view`, signed with `signer` if given.
    pub fn refusal(
        view: View,
        replica: ReplicaId,
        client: ClientId,
        numbers: Vec<u64>,
        signer: Option<&Keyring>,
    ) -> Reply {
        Reply {
            busy: numbers,
            ..Reply::empty(view, replica, client)
        }
        .signed_by(signer)
    }

    /// `replica`'s notice to `client` that a request's number is spent (see
    /// [`StaleNumber`]), reporting `view`, signed with `signer` if given.
    pub fn stale_notice(
        view: View,
        replica: ReplicaId,
        client: ClientId,
        stale: StaleNumber,
        signer: Option<&Keyring>,
    ) -> Reply {
        Reply {
            stale: vec![stale],
            ..Reply::empty(view, replica, client)
        }
        .signed_by(signer)
    }

    /// `replica`'s answer to `client`'s marks query (see [`ClientMarks`]), reporting
    /// `view`, signed with `signer` if given.
    pub fn marks_answer(
        view: View,
        replica: ReplicaId,
        client: ClientId,
        marks: ClientMarks,
        signer: Option<&Keyring>,
    ) -> Reply {
        Reply {
            marks: Some(marks),
            ..Reply::empty(view, replica, client)
        }
        .signed_by(signer)
    }

    /// About how many bytes the reply takes encoded (for cutting replies into frames).
    pub fn size_hint(&self) -> usize {
        32 + 8 * self.busy.len()
            + 64 * self.stale.len()
            + self.marks.as_ref().map_or(0, |m| 24 + 16 * m.runs.len())
            + self
                .results
                .iter()
                .map(|r| r.result.len() + 44)
                .sum::<usize>()
    }

    /// The bytes a signature on this reply covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"tandem-reply-v1");
        ctx.update(&self.view.0.to_le_bytes());
        ctx.update(&self.replica.0.to_le_bytes());
        ctx.update(&self.client.0.to_le_bytes());
        for r in &self.results {
            ctx.update(&r.number.to_le_bytes());
            ctx.update(&r.request.0);
            ctx.update(&(r.result.len() as u64).to_le_bytes());
            ctx.update(&r.result);
        }
        if !self.busy.is_empty() {
            ctx.update(b"busy");
            ctx.update(&(self.busy.len() as u64).to_le_bytes());
            for n in &self.busy {
                ctx.update(&n.to_le_bytes());
            }
        }
        if !self.stale.is_empty() {
            ctx.update(b"stale");
            ctx.update(&(self.stale.len() as u64).to_le_bytes());
            for s in &self.stale {
                ctx.update(&s.number.to_le_bytes());
                ctx.update(&s.request.0);
                ctx.update(&[u8::from(s.executed_other)]);
                ctx.update(&s.low.to_le_bytes());
                ctx.update(&s.high.to_le_bytes());
            }
        }
        if let Some(m) = &self.marks {
            ctx.update(b"marks");
            ctx.update(&m.low.to_le_bytes());
            ctx.update(&m.high.to_le_bytes());
            ctx.update(&[u8::from(m.truncated)]);
            ctx.update(&(m.runs.len() as u64).to_le_bytes());
            for (first, last) in &m.runs {
                ctx.update(&first.to_le_bytes());
                ctx.update(&last.to_le_bytes());
            }
        }
        ctx.finish().as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(client: u32, number: u64, payload: &'static [u8]) -> Request {
        Request::new(ClientId(client), number, Bytes::from_static(payload))
    }

    /// Issue 10 item 5: request numbers are client-supplied, so `number + window`
    /// must not overflow; a number whose window reaches past `u64::MAX` is never
    /// witnessed spent by the high mark alone.
    #[test]
    fn a_stale_notice_witnesses_without_overflow() {
        let notice = |number, executed_other, high| StaleNumber {
            number,
            request: Digest::default(),
            executed_other,
            low: 0,
            high,
        };
        assert!(notice(1, false, 65).witnesses(64));
        assert!(!notice(1, false, 64).witnesses(64));
        assert!(notice(1, true, 1).witnesses(64));
        assert!(!notice(u64::MAX - 1, false, u64::MAX).witnesses(64));
        assert!(notice(u64::MAX - 64, false, u64::MAX).witnesses(64));
        assert!(!notice(5, false, u64::MAX).witnesses(u64::MAX));
    }

    #[test]
    fn a_remembered_digest_follows_every_field_change() {
        let mut r = req(1, 7, b"payload");
        let first = r.digest();
        assert_eq!(r.clone().digest(), first, "a clone shares the memo");
        r.payload = Bytes::from_static(b"other");
        assert_eq!(r.digest(), request_digest(ClientId(1), 7, b"other"));
        let mut r = req(1, 7, b"payload");
        r.digest();
        r.number = 8;
        assert_eq!(r.digest(), request_digest(ClientId(1), 8, b"payload"));
        let mut r = req(1, 7, b"payload");
        r.digest();
        r.client = ClientId(2);
        assert_eq!(r.digest(), request_digest(ClientId(2), 7, b"payload"));
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(req(1, 7, b"payload"), config).unwrap();
        let (decoded, _): (Request, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(
            decoded,
            req(1, 7, b"payload"),
            "the memo is not part of equality"
        );
        assert_eq!(decoded.digest(), first, "nor of the encoding");
    }

    #[test]
    fn digest_depends_on_order_and_content() {
        let a = Batch::new(vec![req(1, 1, b"x"), req(2, 1, b"y")]);
        let b = Batch::new(vec![req(2, 1, b"y"), req(1, 1, b"x")]);
        let c = Batch::new(vec![req(1, 1, b"x"), req(2, 1, b"z")]);
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
        assert_eq!(a.digest(), a.clone().digest());
    }

    #[test]
    fn digest_is_unambiguous_across_field_boundaries() {
        let a = Batch::new(vec![req(1, 1, b"ab")]);
        let b = Batch::new(vec![req(1, 1, b"a"), req(1, 1, b"b")]);
        assert_ne!(a.digest(), b.digest());
        assert_ne!(null_digest(), a.digest());
    }
}
