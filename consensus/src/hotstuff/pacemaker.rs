//! The pacemaker: the current round, the round time-out with exponential back-off,
//! the collection of timeout messages and the timeout certificates they form
//! (Jolteon §4, DiemBFT v4 "pacemaker").
//!
//! A replica enters round r+1 when it sees a QC or a TC of round r (whichever first);
//! rounds never go back. A round that ended by a TC doubles the next round's time-out
//! (up to a cap); one that ended by a QC resets it; a replica restarted from its log
//! resumes after the rounds the log names with the base time-out. Timeout messages
//! carry the sender's highest QC; f+1 timeouts of the current round make a replica
//! time out too (so a TC forms even if only some replicas were waiting), 2f+1 form a
//! TC.
//!
//! Memory: timeouts are kept for rounds in [round, round + [`MAX_ROUNDS_AHEAD`]], one
//! per sender and round, so a faulty peer's far-future rounds cost nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::crypto::{Signed, SignedBody};
use crate::hotstuff::block::Round;
use crate::hotstuff::durable::HotStuffRecord;
use crate::hotstuff::message::{HotStuffTimer, Message};
use crate::hotstuff::qc::{Tc, TimeoutBody, TimeoutMsg};
use crate::hotstuff::replica::{HotStuff, HotStuffAction};
use crate::protocol::Action;
use crate::types::{ReplicaId, Time, View};

/// Timeouts for rounds further ahead than this are dropped.
pub const MAX_ROUNDS_AHEAD: u64 = 64;

/// What adding a timeout did.
#[derive(Debug)]
pub enum TimeoutOutcome {
    /// Not kept: a round behind, too far ahead, or a second one from the sender.
    Dropped,
    /// Kept.
    Recorded {
        /// Whether f+1 replicas timed out in the current round (join them).
        join: bool,
    },
    /// A quorum formed this TC.
    Certificate(Arc<Tc>),
}

/// The round, its time-out and the timeouts collected.
#[derive(Debug)]
pub struct Pacemaker {
    round: Round,
    /// Rounds that ended by a TC since the last that ended by a QC.
    consecutive_timeouts: u32,
    base: Duration,
    cap: Duration,
    timeouts: BTreeMap<Round, BTreeMap<ReplicaId, TimeoutMsg>>,
    last_tc: Option<Arc<Tc>>,
}

impl Pacemaker {
    /// Starts in round 1 with the time-out `base`, doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Pacemaker {
        Pacemaker {
            round: View(1),
            consecutive_timeouts: 0,
            base,
            cap,
            timeouts: BTreeMap::new(),
            last_tc: None,
        }
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.round
    }

    /// The latest TC seen (it justifies a proposal when it is of round − 1).
    pub fn last_tc(&self) -> Option<&Arc<Tc>> {
        self.last_tc.as_ref()
    }

    /// The current round's time-out: `base × 2^consecutive_timeouts`, capped.
    pub fn timeout(&self) -> Duration {
        let factor = 1u32
            .checked_shl(self.consecutive_timeouts.min(20))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Enters `round` if it is higher (after a QC of `round − 1` when `by_qc`, else a
    /// TC). Returns whether the round changed.
    pub fn advance(&mut self, round: Round, by_qc: bool) -> bool {
        if round <= self.round {
            return false;
        }
        self.round = round;
        if by_qc {
            self.consecutive_timeouts = 0;
        } else {
            self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
        }
        self.timeouts = self.timeouts.split_off(&round);
        debug_assert!(self.timeouts.keys().all(|r| *r >= self.round));
        true
    }

    /// Enters `round` if it is higher, leaving the back-off as it is: a restarted
    /// replica resuming after the rounds its log names (replaying a log is no run of
    /// failed rounds, so it starts from the base time-out).
    pub fn resume(&mut self, round: Round) {
        if round > self.round {
            self.round = round;
            self.timeouts = self.timeouts.split_off(&round);
        }
    }

    /// Records a TC (verified); the caller advances to its round + 1.
    pub fn note_tc(&mut self, tc: Arc<Tc>) {
        if self.last_tc.as_ref().is_none_or(|t| t.round < tc.round) {
            self.last_tc = Some(tc);
        }
    }

    /// Adds a timeout (its signature and QC verified) from `from`; `f` and `quorum`
    /// of the cluster.
    pub fn add_timeout(
        &mut self,
        from: ReplicaId,
        msg: TimeoutMsg,
        f: usize,
        quorum: usize,
    ) -> TimeoutOutcome {
        let round = msg.timeout.body.round;
        if round < self.round || round.0 > self.round.0.saturating_add(MAX_ROUNDS_AHEAD) {
            return TimeoutOutcome::Dropped;
        }
        let of_round = self.timeouts.entry(round).or_default();
        if of_round.contains_key(&from) {
            return TimeoutOutcome::Dropped;
        }
        of_round.insert(from, msg);
        if of_round.len() >= quorum {
            let mut high_qc = None;
            for m in of_round.values() {
                if high_qc
                    .as_ref()
                    .is_none_or(|q: &crate::hotstuff::qc::Qc| q.round < m.high_qc.round)
                {
                    high_qc = Some(m.high_qc.clone());
                }
            }
            let tc = Arc::new(Tc {
                round,
                timeouts: of_round.values().map(|m| m.timeout.clone()).collect(),
                high_qc: high_qc.expect("a quorum is not empty"),
            });
            return TimeoutOutcome::Certificate(tc);
        }
        TimeoutOutcome::Recorded {
            join: round == self.round && of_round.len() > f,
        }
    }

    /// Timeouts held, over all rounds (for bounds in tests).
    pub fn held(&self) -> usize {
        self.timeouts.values().map(BTreeMap::len).sum()
    }
}

/// The pacemaker's part of the replica: the round timer, timeouts, TCs.
impl HotStuff {
    /// Keeps the round timer armed while this replica waits for progress (queued
    /// requests, uncommitted requests, or its own timeout to resend), restarting it in
    /// every new round.
    pub(crate) fn update_round_timer(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        let changed = std::mem::take(&mut self.round_changed);
        let waiting =
            !self.pending.is_empty() || self.my_timeout.is_some() || self.uncommitted_payload();
        let armed = self.timer_armed(HotStuffTimer::Round);
        if waiting && (changed || !armed) {
            let at = now + self.pacemaker.timeout();
            self.set_timer(HotStuffTimer::Round, at, out);
        } else if !waiting && armed {
            self.cancel_timer(HotStuffTimer::Round, out);
        }
    }

    /// The round timer fired: time out in the round (or resend our timeout).
    pub(crate) fn on_round_timer(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        match &self.my_timeout {
            Some(t) if t.timeout.body.round == self.round() => {
                let msg = Message::Timeout(Box::new(t.clone()));
                self.broadcast(msg, out);
                self.broadcast_vote_of_round(out);
            }
            _ => self.local_timeout(now, out),
        }
    }

    /// Gives up on the current round: no vote in it any more, and a signed timeout
    /// with our highest QC to everyone.
    pub(crate) fn local_timeout(&mut self, now: Time, out: &mut Vec<HotStuffAction>) {
        let round = self.round();
        if self
            .my_timeout
            .as_ref()
            .is_some_and(|t| t.timeout.body.round == round)
        {
            return;
        }
        self.safety.record_timeout(round);
        self.counters.round_timeouts += 1;
        out.push(Action::Persist(HotStuffRecord::TimedOut {
            round,
            high_qc: self.high_qc.clone(),
        }));
        self.logged_qc_round = self.logged_qc_round.max(self.high_qc.round);
        let body = TimeoutBody {
            round,
            hqc_round: self.high_qc.round,
        };
        let msg = TimeoutMsg {
            timeout: Signed {
                signature: self.keys.sign(&body.signing_bytes()),
                body,
                signer: self.me,
            },
            high_qc: self.high_qc.clone(),
        };
        self.my_timeout = Some(msg.clone());
        self.broadcast_vote_of_round(out);
        self.broadcast(Message::Timeout(Box::new(msg.clone())), out);
        self.add_timeout(now, self.me, msg, out);
        // Count our own vote of the round with the ones peers broadcast.
        if let Some(v) = self.last_vote.clone()
            && v.body.round == self.round()
            && self.leader(round.next()) != self.me
        {
            self.add_own_vote(now, v, out);
        }
    }

    /// Broadcasts our vote of the current round, if we voted in it: if the next leader
    /// is faulty, the others still form the round's QC from the broadcast votes.
    fn broadcast_vote_of_round(&self, out: &mut Vec<HotStuffAction>) {
        if let Some(v) = &self.last_vote
            && v.body.round == self.round()
        {
            self.broadcast(Message::Vote(v.clone()), out);
        }
    }

    /// A peer's timeout.
    pub(crate) fn on_timeout(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: TimeoutMsg,
        out: &mut Vec<HotStuffAction>,
    ) {
        let body = msg.timeout.body;
        if msg.timeout.signer != from {
            self.counters.dropped_wrong_sender += 1;
            return;
        }
        if body.hqc_round != msg.high_qc.round || body.hqc_round >= body.round {
            self.counters.dropped_malformed += 1;
            return;
        }
        if body.round < self.round() {
            // The sender is behind: show it how we got here.
            self.counters.dropped_stale_round += 1;
            self.send_certificates(from, out);
            return;
        }
        if body.round.0 > self.round().0.saturating_add(MAX_ROUNDS_AHEAD) {
            self.counters.dropped_future += 1;
            return;
        }
        if !self
            .keys
            .verify(from, &body.signing_bytes(), &msg.timeout.signature)
            || !self.verify_qc(&msg.high_qc)
        {
            self.counters.dropped_bad_signature += 1;
            return;
        }
        self.process_qc(now, msg.high_qc.clone(), Some(from), out);
        self.add_timeout(now, from, msg, out);
    }

    fn add_timeout(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: TimeoutMsg,
        out: &mut Vec<HotStuffAction>,
    ) {
        match self.pacemaker.add_timeout(from, msg, self.f, self.quorum) {
            TimeoutOutcome::Dropped => self.counters.dropped_duplicate += 1,
            TimeoutOutcome::Recorded { join } => {
                if join {
                    self.local_timeout(now, out);
                }
            }
            TimeoutOutcome::Certificate(tc) => {
                self.counters.tcs_formed += 1;
                self.process_tc(now, tc, out);
            }
        }
    }

    /// A verified TC: enter the round after it, extending its highest QC.
    pub(crate) fn process_tc(&mut self, now: Time, tc: Arc<Tc>, out: &mut Vec<HotStuffAction>) {
        if tc.round < self.round() {
            return;
        }
        self.pacemaker.note_tc(tc.clone());
        self.process_qc(now, tc.high_qc.clone(), None, out);
        self.advance_round(now, tc.round.next(), false, out);
    }

    /// Sends a peer that is behind our highest QC and the TC that justified our round.
    pub(crate) fn send_certificates(&self, to: ReplicaId, out: &mut Vec<HotStuffAction>) {
        let tc = self
            .pacemaker
            .last_tc()
            .filter(|tc| tc.round >= self.high_qc.round)
            .cloned();
        let msg = Message::Certificates {
            qc: self.high_qc.clone(),
            tc,
        };
        self.send(to, msg, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keyring;
    use crate::crypto::{Signed, SignedBody};
    use crate::hotstuff::qc::{Qc, TimeoutBody};

    fn timeout(k: &Keyring, round: u64) -> TimeoutMsg {
        let body = TimeoutBody {
            round: View(round),
            hqc_round: View(0),
        };
        TimeoutMsg {
            timeout: Signed {
                signature: k.sign(&body.signing_bytes()),
                body,
                signer: k.me(),
            },
            high_qc: Qc::genesis(),
        }
    }

    #[test]
    fn back_off_doubles_on_timeouts_and_resets_on_a_qc() {
        let mut p = Pacemaker::new(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(p.round(), View(1));
        assert!(p.advance(View(2), false));
        assert_eq!(p.timeout(), Duration::from_millis(200));
        assert!(p.advance(View(3), false));
        assert_eq!(p.timeout(), Duration::from_millis(350), "capped");
        assert!(!p.advance(View(2), true), "rounds never go back");
        assert!(p.advance(View(4), true));
        assert_eq!(p.timeout(), Duration::from_millis(100));
        p.resume(View(9));
        assert_eq!(p.round(), View(9));
        assert_eq!(p.timeout(), Duration::from_millis(100), "no back-off");
        p.resume(View(5));
        assert_eq!(p.round(), View(9), "rounds never go back");
    }

    #[test]
    fn f_plus_one_timeouts_join_and_a_quorum_certifies() {
        let keys = Keyring::test_cluster(4, 1);
        let mut p = Pacemaker::new(Duration::from_millis(100), Duration::from_millis(800));
        let r = |k| ReplicaId(k);
        assert!(matches!(
            p.add_timeout(r(0), timeout(&keys[0], 1), 1, 3),
            TimeoutOutcome::Recorded { join: false }
        ));
        assert!(matches!(
            p.add_timeout(r(0), timeout(&keys[0], 1), 1, 3),
            TimeoutOutcome::Dropped
        ));
        assert!(matches!(
            p.add_timeout(r(1), timeout(&keys[1], 1), 1, 3),
            TimeoutOutcome::Recorded { join: true }
        ));
        let TimeoutOutcome::Certificate(tc) = p.add_timeout(r(2), timeout(&keys[2], 1), 1, 3)
        else {
            panic!("three timeouts are a quorum");
        };
        let mut k = keys[3].clone();
        assert!(tc.verify(&mut k, 3));
        assert!(matches!(
            p.add_timeout(r(3), timeout(&keys[3], 1 + MAX_ROUNDS_AHEAD + 1), 1, 3),
            TimeoutOutcome::Dropped
        ));
        p.advance(View(2), false);
        assert_eq!(p.held(), 0, "older rounds are forgotten");
    }
}
