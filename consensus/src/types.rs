//! Identifiers and plain values shared by every protocol: replica and client ids,
//! views, sequence numbers, digests and virtual time.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A replica's index in the cluster, `0..n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId(pub u32);

impl ReplicaId {
    /// The index as a `usize`, for indexing per-replica tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A client's identity. Clients are authenticated by the transport, so a client id in a
/// request is trusted only as far as the channel it arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u32);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A view number. The primary of view `v` is replica `v mod n`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct View(pub u64);

impl View {
    /// The view after this one (saturating: view numbers come from peers, and no
    /// arithmetic on a peer's number may overflow).
    pub fn next(self) -> View {
        View(self.0.saturating_add(1))
    }

    /// The primary of this view in a cluster of `n` replicas.
    pub fn primary(self, n: usize) -> ReplicaId {
        ReplicaId((self.0 % n as u64) as u32)
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A sequence number in the total order. Sequence 0 is the genesis checkpoint; the first
/// batch is ordered at 1.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

impl Seq {
    /// The sequence number after this one (saturating: sequence numbers come from
    /// peers, and no arithmetic on a peer's number may overflow).
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }

    /// Whether a checkpoint is taken after executing this sequence number.
    pub fn is_checkpoint(self, interval: u64) -> bool {
        self.0 > 0 && self.0.is_multiple_of(interval)
    }
}

impl Add<u64> for Seq {
    type Output = Seq;
    fn add(self, rhs: u64) -> Seq {
        Seq(self.0.saturating_add(rhs))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A SHA-256 digest.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest(#[serde(with = "crate::byte_arrays")] pub [u8; 32]);

impl Digest {
    /// SHA-256 of `parts`, concatenated.
    pub fn of(parts: &[&[u8]]) -> Digest {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in parts {
            ctx.update(part);
        }
        Digest::from_ring(ctx.finish())
    }

    /// Converts a finished ring SHA-256 context.
    pub fn from_ring(d: ring::digest::Digest) -> Digest {
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Digest(out)
    }

    /// The first bytes as hex, for logs.
    pub fn short(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The whole digest as lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

/// A point in time, in nanoseconds since an origin chosen by the driver (process start
/// for a real node, zero for the simulator). The protocol never reads a clock: the
/// driver passes `now` with every event.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    /// Time zero.
    pub const ZERO: Time = Time(0);

    /// Nanoseconds since the origin.
    pub fn nanos(self) -> u64 {
        self.0
    }

    /// Time since `earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        Time(
            self.0
                .saturating_add(rhs.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, rhs: Time) -> Duration {
        self.since(rhs)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0 as f64 / 1e9)
    }
}

/// The `k`-th highest of `views` (k ≥ 1), if there are at least `k`: with k = f+1,
/// a view at least one correct replica vouches for.
pub fn kth_highest_view(views: impl Iterator<Item = View>, k: usize) -> Option<View> {
    let mut views: Vec<View> = views.collect();
    if k == 0 || views.len() < k {
        return None;
    }
    let (_, kth, _) = views.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    Some(*kth)
}

/// Largest tolerated number of faulty replicas for a cluster of `n`.
pub fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// Size of a Byzantine quorum for `n` replicas: any two quorums intersect in at least
/// one correct replica. Equals 2f+1 when n = 3f+1.
pub fn quorum_size(n: usize) -> usize {
    let f = max_faulty(n);
    (n + f + 1).div_ceil(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kth_highest_view_needs_k_reports() {
        let views = || [3, 1, 4, 1].into_iter().map(View);
        assert_eq!(kth_highest_view(views(), 1), Some(View(4)));
        assert_eq!(kth_highest_view(views(), 2), Some(View(3)));
        assert_eq!(kth_highest_view(views(), 4), Some(View(1)));
        assert_eq!(kth_highest_view(views(), 5), None);
        assert_eq!(kth_highest_view(views(), 0), None);
    }

    #[test]
    fn quorum_is_two_f_plus_one_for_three_f_plus_one() {
        for f in 1..10 {
            let n = 3 * f + 1;
            assert_eq!(max_faulty(n), f);
            assert_eq!(quorum_size(n), 2 * f + 1);
        }
    }

    #[test]
    fn quorums_intersect_in_a_correct_replica_for_any_n() {
        for n in 1..40 {
            let q = quorum_size(n);
            let f = max_faulty(n);
            // Two quorums overlap in 2q - n replicas; at least f+1 of them for safety.
            assert!(2 * q > n + f, "n={n}");
            // A quorum is reachable with f replicas silent.
            assert!(q <= n - f, "n={n}");
        }
    }

    #[test]
    fn primary_rotates() {
        assert_eq!(View(0).primary(4), ReplicaId(0));
        assert_eq!(View(5).primary(4), ReplicaId(1));
    }

    #[test]
    fn successors_saturate_at_the_largest_number() {
        assert_eq!(Seq(u64::MAX).next(), Seq(u64::MAX));
        assert_eq!(View(u64::MAX).next(), View(u64::MAX));
        assert_eq!(Seq(u64::MAX - 1) + 5, Seq(u64::MAX));
        assert_eq!(Seq(3).next(), Seq(4));
    }

    #[test]
    fn checkpoint_sequence_numbers() {
        assert!(!Seq(0).is_checkpoint(8));
        assert!(Seq(8).is_checkpoint(8));
        assert!(!Seq(9).is_checkpoint(8));
    }
}
