//! The fault layer: [`FaultyTransport`] wraps any [`Transport`] and applies, on the
//! sending side, the rules of a [`FaultHandle`] that can be changed at run time: per
//! directed link `(from, to)`, drop / duplicate / reorder probabilities and a delay
//! (fixed or drawn from a distribution); and partitions (groups of nodes that cannot
//! reach each other) and isolated nodes, undone by [`FaultHandle::heal`].
//!
//! Where faults apply: at the sender. A rule for `from → to` is applied by the
//! `FaultyTransport` whose local id is `from`, so wrap every node's transport; one
//! handle can be shared by all the nodes of a process (in-process tests) or each process
//! can hold its own and apply the same schedule. Frames a node sends to itself are never
//! faulted.
//!
//! Ordering: delays never reorder frames on a link (each link has a FIFO delay line
//! whose release times never go backwards, as on an ordered QUIC stream); reordering
//! happens only through the `reorder` probability, which holds a frame back until the
//! next frame on that link has been sent (or `reorder_max_hold` has passed).
//!
//! Randomness: each `FaultyTransport` draws from its own generator seeded from the seed
//! given at construction and its node id, so a run is reproducible when each node's
//! sends happen in a reproducible order.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Normal};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::transport::ShutdownFuture;
use crate::{Counters, NodeId, Transport};

/// How long a link delays each frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Delay {
    /// No delay.
    #[default]
    None,
    /// Always this long.
    Fixed(Duration),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
    /// Normal with this mean and standard deviation, negative draws taken as zero.
    Normal {
        /// Mean.
        mean: Duration,
        /// Standard deviation.
        std_dev: Duration,
    },
    /// Exponential with this mean.
    Exponential {
        /// Mean.
        mean: Duration,
    },
}

impl Delay {
    fn sample(&self, rng: &mut StdRng) -> Duration {
        match *self {
            Delay::None => Duration::ZERO,
            Delay::Fixed(d) => d,
            Delay::Uniform { min, max } if min < max => rng.random_range(min..=max),
            Delay::Uniform { min, .. } => min,
            Delay::Normal { mean, std_dev } => {
                match Normal::new(mean.as_secs_f64(), std_dev.as_secs_f64()) {
                    Ok(normal) => seconds(normal.sample(rng)),
                    Err(_) => mean,
                }
            }
            Delay::Exponential { mean } if !mean.is_zero() => {
                match Exp::new(1.0 / mean.as_secs_f64()) {
                    Ok(exp) => seconds(exp.sample(rng)),
                    Err(_) => mean,
                }
            }
            Delay::Exponential { .. } => Duration::ZERO,
        }
    }
}

/// A duration from seconds, clamped to `[0, 1 hour]` (and zero for NaN).
fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.clamp(0.0, 3600.0)).unwrap_or(Duration::ZERO)
}

/// The faults of one directed link. Probabilities are clamped to `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkFaults {
    /// Probability that a frame is dropped.
    pub drop: f64,
    /// Probability that a frame is sent twice.
    pub duplicate: f64,
    /// Probability that a frame is held back and sent after the next one.
    pub reorder: f64,
    /// Longest a held-back frame waits for a next frame before it is sent anyway.
    pub reorder_max_hold: Duration,
    /// Delay of every frame.
    pub delay: Delay,
}

impl Default for LinkFaults {
    fn default() -> Self {
        Self {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_max_hold: Duration::from_millis(50),
            delay: Delay::None,
        }
    }
}

impl LinkFaults {
    fn clamped(mut self) -> Self {
        let unit = |p: f64| if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.drop = unit(self.drop);
        self.duplicate = unit(self.duplicate);
        self.reorder = unit(self.reorder);
        self
    }
}

/// What the fault layer did, summed over the transports sharing a handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounters {
    /// Frames dropped by a `drop` probability.
    pub dropped: u64,
    /// Frames dropped because a partition or isolation separated the two nodes.
    pub blocked: u64,
    /// Frames sent with a non-zero delay.
    pub delayed: u64,
    /// Extra copies sent by a `duplicate` probability.
    pub duplicated: u64,
    /// Frames held back by a `reorder` probability.
    pub reordered: u64,
}

#[derive(Default)]
struct FaultCells {
    dropped: AtomicU64,
    blocked: AtomicU64,
    delayed: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

fn bump(cell: &AtomicU64) {
    cell.fetch_add(1, Ordering::Relaxed);
}

#[derive(Default)]
struct FaultRules {
    default: Option<LinkFaults>,
    links: HashMap<(NodeId, NodeId), LinkFaults>,
    group_of: HashMap<NodeId, usize>,
    isolated: BTreeSet<NodeId>,
}

impl FaultRules {
    fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        if self.isolated.contains(&from) || self.isolated.contains(&to) {
            return true;
        }
        match (self.group_of.get(&from), self.group_of.get(&to)) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        }
    }

    fn faults(&self, from: NodeId, to: NodeId) -> Option<LinkFaults> {
        self.links.get(&(from, to)).copied().or(self.default)
    }
}

/// Changes the fault rules at run time. Clones share the rules and the counters.
#[derive(Clone, Default)]
pub struct FaultHandle {
    rules: Arc<RwLock<FaultRules>>,
    cells: Arc<FaultCells>,
}

impl FaultHandle {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    fn rules(&self) -> std::sync::RwLockWriteGuard<'_, FaultRules> {
        self.rules.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the faults of the link `from → to` (that direction only).
    pub fn set_link(&self, from: NodeId, to: NodeId, faults: LinkFaults) {
        self.rules().links.insert((from, to), faults.clamped());
    }

    /// Sets the faults of both directions between `a` and `b`.
    pub fn set_link_both_ways(&self, a: NodeId, b: NodeId, faults: LinkFaults) {
        let faults = faults.clamped();
        let mut rules = self.rules();
        rules.links.insert((a, b), faults);
        rules.links.insert((b, a), faults);
    }

    /// Removes the rule of the link `from → to` (the default rule, if any, applies).
    pub fn clear_link(&self, from: NodeId, to: NodeId) {
        self.rules().links.remove(&(from, to));
    }

    /// Sets the faults of every link that has no rule of its own (`None` removes them).
    pub fn set_default(&self, faults: Option<LinkFaults>) {
        self.rules().default = faults.map(LinkFaults::clamped);
    }

    /// Splits the listed nodes into groups that cannot reach each other (replacing any
    /// earlier partition). Nodes not listed still reach everyone.
    pub fn partition<G, I>(&self, groups: G)
    where
        G: IntoIterator<Item = I>,
        I: IntoIterator<Item = NodeId>,
    {
        let mut group_of = HashMap::new();
        for (index, group) in groups.into_iter().enumerate() {
            for node in group {
                group_of.insert(node, index);
            }
        }
        self.rules().group_of = group_of;
    }

    /// Cuts `node` off from every other node until [`FaultHandle::heal`].
    pub fn isolate(&self, node: NodeId) {
        self.rules().isolated.insert(node);
    }

    /// Removes partitions and isolations (link rules stay).
    pub fn heal(&self) {
        let mut rules = self.rules();
        rules.group_of.clear();
        rules.isolated.clear();
    }

    /// Removes every rule: no faults at all.
    pub fn clear(&self) {
        *self.rules() = FaultRules::default();
    }

    /// What the fault layer has done so far.
    pub fn counters(&self) -> FaultCounters {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FaultCounters {
            dropped: load(&self.cells.dropped),
            blocked: load(&self.cells.blocked),
            delayed: load(&self.cells.delayed),
            duplicated: load(&self.cells.duplicated),
            reordered: load(&self.cells.reordered),
        }
    }
}

/// The fault layer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// Not created inside a tokio runtime (delays need its timers).
    #[error("the fault layer must be created inside a tokio runtime")]
    NoRuntime,
}

/// A frame held back to be sent after the next one.
struct Held {
    frame: Bytes,
    epoch: u64,
}

/// Per destination: the delay line and the held-back frame.
#[derive(Default)]
struct LinkState {
    line: Option<DelayLine>,
    held: Option<Held>,
    next_epoch: u64,
}

struct DelayLine {
    queue: mpsc::UnboundedSender<(Instant, Bytes)>,
    pending: Arc<AtomicUsize>,
    last_release: Instant,
}

type LinkStates = Mutex<HashMap<NodeId, LinkState>>;

/// A transport with faults injected on its sends (see the module docs).
pub struct FaultyTransport<T: Transport> {
    inner: Arc<T>,
    handle: FaultHandle,
    rng: Mutex<StdRng>,
    links: Arc<LinkStates>,
    runtime: tokio::runtime::Handle,
}

impl<T: Transport> FaultyTransport<T> {
    /// Wraps `inner`, applying `handle`'s rules with randomness seeded by `seed` (and
    /// this node's id). Must be called inside a tokio runtime.
    pub fn new(inner: T, handle: FaultHandle, seed: u64) -> Result<Self, FaultError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FaultError::NoRuntime)?;
        let salt = match inner.local_id() {
            NodeId::Replica(i) => u64::from(i),
            NodeId::Client(i) => (1 << 32) | u64::from(i),
        };
        let rng = StdRng::seed_from_u64(seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Ok(Self {
            inner: Arc::new(inner),
            handle,
            rng: Mutex::new(rng),
            links: Arc::default(),
            runtime,
        })
    }

    /// The handle changing this transport's rules.
    pub fn handle(&self) -> &FaultHandle {
        &self.handle
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Sends `frame` to `to` after `delay`, behind any frame already in the link's
    /// delay line.
    fn dispatch(
        &self,
        links: &mut HashMap<NodeId, LinkState>,
        to: NodeId,
        frame: Bytes,
        delay: Duration,
    ) {
        let link = links.entry(to).or_default();
        let busy = link
            .line
            .as_ref()
            .is_some_and(|line| line.pending.load(Ordering::Acquire) > 0);
        if delay.is_zero() && !busy {
            self.inner.send(to, frame);
            return;
        }
        if !delay.is_zero() {
            bump(&self.handle.cells.delayed);
        }
        let now = Instant::now();
        let line = link.line.get_or_insert_with(|| {
            let (queue, rx) = mpsc::unbounded_channel();
            let pending = Arc::new(AtomicUsize::new(0));
            self.runtime.spawn(run_delay_line(
                Arc::clone(&self.inner),
                to,
                rx,
                Arc::clone(&pending),
            ));
            DelayLine {
                queue,
                pending,
                last_release: now,
            }
        });
        let release = (now + delay).max(line.last_release);
        line.last_release = release;
        line.pending.fetch_add(1, Ordering::AcqRel);
        if line.queue.send((release, frame)).is_err() {
            line.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

async fn run_delay_line<T: Transport>(
    inner: Arc<T>,
    to: NodeId,
    mut queue: mpsc::UnboundedReceiver<(Instant, Bytes)>,
    pending: Arc<AtomicUsize>,
) {
    while let Some((release, frame)) = queue.recv().await {
        tokio::time::sleep_until(release).await;
        inner.send(to, frame);
        pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sends a held-back frame if no later frame has released it within `hold`.
async fn release_held_after<T: Transport>(
    transport: Weak<LinkStates>,
    inner: Weak<T>,
    to: NodeId,
    epoch: u64,
    hold: Duration,
) {
    tokio::time::sleep(hold).await;
    let (Some(links), Some(inner)) = (transport.upgrade(), inner.upgrade()) else {
        return;
    };
    let frame = {
        let mut links = links.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(link) = links.get_mut(&to) else {
            return;
        };
        if link.held.as_ref().is_none_or(|h| h.epoch != epoch) {
            return;
        }
        let Some(held) = link.held.take() else {
            return;
        };
        let busy = link
            .line
            .as_ref()
            .is_some_and(|line| line.pending.load(Ordering::Acquire) > 0);
        if busy {
            // Behind the frames already in the delay line.
            if let Some(line) = link.line.as_mut() {
                line.pending.fetch_add(1, Ordering::AcqRel);
                if line.queue.send((line.last_release, held.frame)).is_err() {
                    line.pending.fetch_sub(1, Ordering::AcqRel);
                }
            }
            return;
        }
        held.frame
    };
    inner.send(to, frame);
}

impl<T: Transport> Transport for FaultyTransport<T> {
    fn local_id(&self) -> NodeId {
        self.inner.local_id()
    }

    fn send(&self, to: NodeId, frame: Bytes) {
        let from = self.inner.local_id();
        if to == from {
            self.inner.send(to, frame);
            return;
        }
        let faults = {
            let rules = self
                .handle
                .rules
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if rules.blocked(from, to) {
                bump(&self.handle.cells.blocked);
                return;
            }
            rules.faults(from, to)
        };
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(faults) = faults else {
            // No rule, but frames may still wait in the delay line or be held back.
            let held = links.get_mut(&to).and_then(|link| link.held.take());
            self.dispatch(&mut links, to, frame, Duration::ZERO);
            if let Some(held) = held {
                self.dispatch(&mut links, to, held.frame, Duration::ZERO);
            }
            return;
        };
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        if rng.random_bool(faults.drop) {
            bump(&self.handle.cells.dropped);
            return;
        }
        let copies = if rng.random_bool(faults.duplicate) {
            bump(&self.handle.cells.duplicated);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let link = links.entry(to).or_default();
            if let Some(held) = link.held.take() {
                let first = faults.delay.sample(&mut rng);
                self.dispatch(&mut links, to, frame.clone(), first);
                let second = faults.delay.sample(&mut rng);
                self.dispatch(&mut links, to, held.frame, second);
            } else if rng.random_bool(faults.reorder) {
                bump(&self.handle.cells.reordered);
                let epoch = link.next_epoch;
                link.next_epoch += 1;
                link.held = Some(Held {
                    frame: frame.clone(),
                    epoch,
                });
                self.runtime.spawn(release_held_after(
                    Arc::downgrade(&self.links),
                    Arc::downgrade(&self.inner),
                    to,
                    epoch,
                    faults.reorder_max_hold,
                ));
            } else {
                let delay = faults.delay.sample(&mut rng);
                self.dispatch(&mut links, to, frame.clone(), delay);
            }
        }
    }

    fn is_connected(&self, peer: NodeId) -> bool {
        self.inner.is_connected(peer)
    }

    /// The wrapped transport's counters; what the fault layer dropped, delayed or
    /// duplicated is in [`FaultHandle::counters`].
    fn counters(&self) -> Counters {
        self.inner.counters()
    }

    fn shutdown(&self) -> ShutdownFuture<'_> {
        self.inner.shutdown()
    }
}
