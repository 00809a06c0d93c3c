//! The fault layer: [`FaultyTransport`] wraps any [`Transport`] and applies, on the
//! sending side, the [`FaultRules`] of a [`FaultHandle`] that can be changed at run
//! time.
//!
//! The words are the fault vocabulary Tandem uses everywhere (scenario files, the
//! simulator's fault plans, this layer); scenario actions are the kebab-case forms of
//! the names here:
//! - per directed link `(from, to)`, or for every link without a rule of its own
//!   ([`FaultRules::default`]), [`LinkFaults`]: `loss`, `duplicate` and `reorder`
//!   probabilities, a `delay` ([`Delay`]: fixed, uniform, normal, exponential, or a
//!   `ramp` that rises over time) and a `flap` ([`Flap`]: the link goes down for part
//!   of every period);
//! - `partition` (groups of nodes that cannot reach each other), `isolate` (a node
//!   cut off from every other), `one_way_cuts` (a directed link that carries nothing,
//!   the reverse direction untouched), all undone by `heal`.
//!
//! Where faults apply: at the sender. A rule for `from → to` is applied by the
//! `FaultyTransport` whose local id is `from`, so wrap every node's transport; one
//! handle can be shared by all the nodes of a process (in-process tests, a process of
//! load clients) or each process can hold its own and be given the same rules
//! ([`FaultHandle::replace`] takes a whole [`FaultRules`], which serializes, so a
//! launcher can send it over a control channel). Frames a node sends to itself are
//! never faulted, and neither are frames to or from a node the transport exempts
//! ([`FaultyTransport::exempt`]: a replica exempts the launcher, so no rule — not a
//! catch-all `default`, an isolation or a partition — can cut or drop the control
//! traffic that installs and heals the rules).
//!
//! Time: a ramp's delay and a flap's phase count from the moment they were installed
//! on their link; [`FaultHandle::replace`] keeps that moment for each link whose
//! `delay` (or `flap`) did not change — whatever else changed, on that link (a loss
//! merged into a ramping link) or on others (another link's fault added) — so
//! re-sending the rules with one fault more does not restart a ramp or a flap.
//!
//! Ordering: delays never reorder frames on a link (each link has a FIFO delay line
//! whose release times never go backwards, as on an ordered QUIC stream); reordering
//! happens only through the `reorder` probability, which holds a frame back until the
//! next frame on that link has been sent (or `reorder_max_hold` has passed).
//!
//! Randomness: each `FaultyTransport` draws from its own generator seeded from the seed
//! given at construction and its node id, so a run is reproducible when each node's
//! sends happen in a reproducible order.
//!
//! Memory: rules are bounded by the caller (at most one per directed link); each link
//! holds at most one held-back frame, and a delay line holds the frames sent on its
//! link during one delay.

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
    /// Uniform in `[min, max]` (a delay of `(min + max) / 2` with jitter).
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
    /// A delay that moves linearly from `from` to `to` over `over` after its rule was
    /// installed, then stays at `to`; each frame's delay is drawn uniformly within
    /// `jitter` of that level (never below zero). Rising delays model a network before
    /// its global stabilisation time (GST) in partial-synchrony experiments.
    Ramp {
        /// Delay when the rule is installed.
        from: Duration,
        /// Delay from `over` onwards.
        to: Duration,
        /// How long the ramp takes.
        over: Duration,
        /// Half-width of the uniform draw around the ramp's level.
        jitter: Duration,
    },
}

impl Delay {
    /// A delay drawn for a frame sent `elapsed` after the rule was installed.
    fn sample(&self, rng: &mut StdRng, elapsed: Duration) -> Duration {
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
            Delay::Ramp {
                from,
                to,
                over,
                jitter,
            } => {
                let level = ramp_level(from, to, over, elapsed).as_secs_f64();
                let j = jitter.as_secs_f64();
                if j > 0.0 {
                    seconds(rng.random_range(level - j..=level + j))
                } else {
                    seconds(level)
                }
            }
        }
    }
}

/// The level of a ramp from `from` to `to` over `over`, `elapsed` after it started.
fn ramp_level(from: Duration, to: Duration, over: Duration, elapsed: Duration) -> Duration {
    if over.is_zero() || elapsed >= over {
        return to;
    }
    let progress = elapsed.as_secs_f64() / over.as_secs_f64();
    let (a, b) = (from.as_secs_f64(), to.as_secs_f64());
    seconds(a + (b - a) * progress)
}

/// A duration from seconds, clamped to `[0, 1 hour]` (and zero for NaN).
fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.clamp(0.0, 3600.0)).unwrap_or(Duration::ZERO)
}

/// A link that goes down for `down` at the start of every `period` (counted from when
/// its rule was installed) and carries frames the rest of the time. Frames sent while
/// it is down are lost and counted as blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flap {
    /// Length of one down-and-up cycle.
    pub period: Duration,
    /// How long the link is down in each cycle.
    pub down: Duration,
}

impl Flap {
    /// Whether the link is down `elapsed` after the rule was installed.
    pub fn is_down(&self, elapsed: Duration) -> bool {
        let period = self.period.as_nanos();
        period > 0 && elapsed.as_nanos() % period < self.down.as_nanos()
    }
}

/// The faults of one directed link. Probabilities are clamped to `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkFaults {
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is sent twice.
    pub duplicate: f64,
    /// Probability that a frame is held back and sent after the next one.
    pub reorder: f64,
    /// Longest a held-back frame waits for a next frame before it is sent anyway.
    pub reorder_max_hold: Duration,
    /// Delay of every frame.
    pub delay: Delay,
    /// The link goes down periodically.
    pub flap: Option<Flap>,
}

impl Default for LinkFaults {
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_max_hold: Duration::from_millis(50),
            delay: Delay::None,
            flap: None,
        }
    }
}

impl LinkFaults {
    fn clamped(mut self) -> Self {
        let unit = |p: f64| if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.loss = unit(self.loss);
        self.duplicate = unit(self.duplicate);
        self.reorder = unit(self.reorder);
        self
    }
}

/// The rule of one directed link.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkRule {
    /// The sender, which applies the rule.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// What happens to frames on the link.
    pub faults: LinkFaults,
}

/// Every rule of the fault layer at one moment, as plain data: what
/// [`FaultHandle::replace`] installs and [`FaultHandle::rules`] reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultRules {
    /// Faults of every link without a rule of its own.
    pub default: Option<LinkFaults>,
    /// Per directed link (at most one rule per link; a later one wins).
    pub links: Vec<LinkRule>,
    /// Groups of nodes that cannot reach each other; nodes in no group reach everyone.
    pub partition: Vec<Vec<NodeId>>,
    /// Nodes cut off from every other node.
    pub isolated: Vec<NodeId>,
    /// Directed links `(from, to)` that carry nothing (the reverse direction is not
    /// affected).
    pub one_way_cuts: Vec<(NodeId, NodeId)>,
}

impl FaultRules {
    /// True when there is no rule at all.
    pub fn is_empty(&self) -> bool {
        *self == FaultRules::default()
    }
}

/// What the fault layer did, summed over the transports sharing a handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounters {
    /// Frames lost to a `loss` probability.
    pub lost: u64,
    /// Frames not sent because a partition, isolation, one-way cut or flapping link
    /// separated the two nodes.
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
    lost: AtomicU64,
    blocked: AtomicU64,
    delayed: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

fn bump(cell: &AtomicU64) {
    cell.fetch_add(1, Ordering::Relaxed);
}

/// A link rule and when its delay and its flap were installed (a ramp counts from
/// `delay_since`, a flap's phase from `flap_since`).
#[derive(Clone, Copy)]
struct Installed {
    faults: LinkFaults,
    delay_since: Instant,
    flap_since: Instant,
}

impl Installed {
    fn now(faults: LinkFaults) -> Self {
        let now = Instant::now();
        Installed {
            faults: faults.clamped(),
            delay_since: now,
            flap_since: now,
        }
    }

    /// An unchanged delay keeps its start time, and so does an unchanged flap, even
    /// when other fields of the rule changed; a changed one starts now.
    fn replacing(faults: LinkFaults, old: Option<&Installed>) -> Self {
        let mut new = Installed::now(faults);
        if let Some(old) = old {
            if old.faults.delay == new.faults.delay {
                new.delay_since = old.delay_since;
            }
            if old.faults.flap == new.faults.flap {
                new.flap_since = old.flap_since;
            }
        }
        new
    }
}

#[derive(Default)]
struct ActiveRules {
    default: Option<Installed>,
    links: HashMap<(NodeId, NodeId), Installed>,
    partition: Vec<Vec<NodeId>>,
    group_of: HashMap<NodeId, usize>,
    isolated: BTreeSet<NodeId>,
    cuts: BTreeSet<(NodeId, NodeId)>,
}

/// What happens to one frame, decided under the rules' lock.
enum Verdict {
    Blocked,
    Clean,
    Faulty(LinkFaults, Duration),
}

impl ActiveRules {
    fn set_partition(&mut self, groups: Vec<Vec<NodeId>>) {
        self.group_of.clear();
        for (index, group) in groups.iter().enumerate() {
            for node in group {
                self.group_of.insert(*node, index);
            }
        }
        self.partition = groups;
    }

    fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        if self.isolated.contains(&from) || self.isolated.contains(&to) {
            return true;
        }
        if self.cuts.contains(&(from, to)) {
            return true;
        }
        match (self.group_of.get(&from), self.group_of.get(&to)) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        }
    }

    fn verdict(&self, from: NodeId, to: NodeId) -> Verdict {
        if self.blocked(from, to) {
            return Verdict::Blocked;
        }
        let Some(rule) = self.links.get(&(from, to)).or(self.default.as_ref()) else {
            return Verdict::Clean;
        };
        if rule
            .faults
            .flap
            .is_some_and(|f| f.is_down(rule.flap_since.elapsed()))
        {
            return Verdict::Blocked;
        }
        Verdict::Faulty(rule.faults, rule.delay_since.elapsed())
    }

    fn to_rules(&self) -> FaultRules {
        let mut links: Vec<LinkRule> = self
            .links
            .iter()
            .map(|((from, to), rule)| LinkRule {
                from: *from,
                to: *to,
                faults: rule.faults,
            })
            .collect();
        links.sort_by_key(|l| (l.from, l.to));
        FaultRules {
            default: self.default.map(|d| d.faults),
            links,
            partition: self.partition.clone(),
            isolated: self.isolated.iter().copied().collect(),
            one_way_cuts: self.cuts.iter().copied().collect(),
        }
    }
}

/// Changes the fault rules at run time. Clones share the rules and the counters.
#[derive(Clone, Default)]
pub struct FaultHandle {
    rules: Arc<RwLock<ActiveRules>>,
    cells: Arc<FaultCells>,
}

impl FaultHandle {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ActiveRules> {
        self.rules.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the faults of the link `from → to` (that direction only).
    pub fn set_link(&self, from: NodeId, to: NodeId, faults: LinkFaults) {
        self.write()
            .links
            .insert((from, to), Installed::now(faults));
    }

    /// Sets the faults of both directions between `a` and `b`.
    pub fn set_link_both_ways(&self, a: NodeId, b: NodeId, faults: LinkFaults) {
        let rule = Installed::now(faults);
        let mut rules = self.write();
        rules.links.insert((a, b), rule);
        rules.links.insert((b, a), rule);
    }

    /// Removes the rule of the link `from → to` (the default rule, if any, applies).
    pub fn clear_link(&self, from: NodeId, to: NodeId) {
        self.write().links.remove(&(from, to));
    }

    /// Sets the faults of every link that has no rule of its own (`None` removes them).
    pub fn set_default(&self, faults: Option<LinkFaults>) {
        self.write().default = faults.map(Installed::now);
    }

    /// Splits the listed nodes into groups that cannot reach each other (replacing any
    /// earlier partition). Nodes not listed still reach everyone.
    pub fn partition<G, I>(&self, groups: G)
    where
        G: IntoIterator<Item = I>,
        I: IntoIterator<Item = NodeId>,
    {
        let groups = groups
            .into_iter()
            .map(|g| g.into_iter().collect())
            .collect();
        self.write().set_partition(groups);
    }

    /// Cuts `node` off from every other node until [`FaultHandle::heal`].
    pub fn isolate(&self, node: NodeId) {
        self.write().isolated.insert(node);
    }

    /// Stops every frame from `from` to `to` (not the other way) until
    /// [`FaultHandle::heal`].
    pub fn one_way_cut(&self, from: NodeId, to: NodeId) {
        self.write().cuts.insert((from, to));
    }

    /// Removes partitions, isolations and one-way cuts (link rules stay).
    pub fn heal(&self) {
        let mut rules = self.write();
        rules.set_partition(Vec::new());
        rules.isolated.clear();
        rules.cuts.clear();
    }

    /// Removes every rule: no faults at all.
    pub fn clear(&self) {
        *self.write() = ActiveRules::default();
    }

    /// Installs `rules` in place of every current rule. On each link (and for the
    /// default rule) a delay equal to the one it replaces keeps its start time, and so
    /// does a flap: a ramp or flap continues where it was even when the link's other
    /// faults, or other links' rules, changed.
    pub fn replace(&self, rules: FaultRules) {
        let mut active = self.write();
        let default = rules
            .default
            .map(|d| Installed::replacing(d, active.default.as_ref()));
        let mut links = HashMap::with_capacity(rules.links.len());
        for rule in rules.links {
            let key = (rule.from, rule.to);
            links.insert(
                key,
                Installed::replacing(rule.faults, active.links.get(&key)),
            );
        }
        active.default = default;
        active.links = links;
        active.set_partition(rules.partition);
        active.isolated = rules.isolated.into_iter().collect();
        active.cuts = rules.one_way_cuts.into_iter().collect();
    }

    /// The rules in force now.
    pub fn rules(&self) -> FaultRules {
        self.rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .to_rules()
    }

    /// What the fault layer has done so far.
    pub fn counters(&self) -> FaultCounters {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FaultCounters {
            lost: load(&self.cells.lost),
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
    /// Nodes whose frames are never faulted, to them or from them.
    exempt: Vec<NodeId>,
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
            exempt: Vec::new(),
        })
    }

    /// Never faults frames between this node and `node`, in either direction: sent to
    /// `node`, or sent by this transport if it is `node`'s own. A replica exempts the
    /// launcher (`[control]` of the cluster file), so the launcher's control requests
    /// and the replica's replies pass whatever rules are installed — the launcher can
    /// always heal what it made.
    pub fn exempt(mut self, node: NodeId) -> Self {
        if !self.exempt.contains(&node) {
            self.exempt.push(node);
        }
        self
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
        if to == from || self.exempt.contains(&to) || self.exempt.contains(&from) {
            self.inner.send(to, frame);
            return;
        }
        let verdict = self
            .handle
            .rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .verdict(from, to);
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let (faults, elapsed) = match verdict {
            Verdict::Blocked => {
                bump(&self.handle.cells.blocked);
                return;
            }
            Verdict::Clean => {
                // No rule, but frames may still wait in the delay line or be held back.
                let held = links.get_mut(&to).and_then(|link| link.held.take());
                self.dispatch(&mut links, to, frame, Duration::ZERO);
                if let Some(held) = held {
                    self.dispatch(&mut links, to, held.frame, Duration::ZERO);
                }
                return;
            }
            Verdict::Faulty(faults, elapsed) => (faults, elapsed),
        };
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        if rng.random_bool(faults.loss) {
            bump(&self.handle.cells.lost);
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
                let first = faults.delay.sample(&mut rng, elapsed);
                self.dispatch(&mut links, to, frame.clone(), first);
                let second = faults.delay.sample(&mut rng, elapsed);
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
                let delay = faults.delay.sample(&mut rng, elapsed);
                self.dispatch(&mut links, to, frame.clone(), delay);
            }
        }
    }

    fn is_connected(&self, peer: NodeId) -> bool {
        self.inner.is_connected(peer)
    }

    /// The wrapped transport's counters; what the fault layer lost, blocked, delayed or
    /// duplicated is in [`FaultHandle::counters`].
    fn counters(&self) -> Counters {
        self.inner.counters()
    }

    fn shutdown(&self) -> ShutdownFuture<'_> {
        self.inner.shutdown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_flap_is_down_at_the_start_of_each_period() {
        let flap = Flap {
            period: ms(1000),
            down: ms(300),
        };
        assert!(flap.is_down(ms(0)));
        assert!(flap.is_down(ms(299)));
        assert!(!flap.is_down(ms(300)));
        assert!(!flap.is_down(ms(999)));
        assert!(flap.is_down(ms(2100)));
        let no_period = Flap {
            period: Duration::ZERO,
            down: ms(5),
        };
        assert!(!no_period.is_down(ms(1)));
    }

    #[test]
    fn a_ramp_rises_linearly_then_holds() {
        assert_eq!(ramp_level(ms(0), ms(1000), ms(10_000), ms(0)), ms(0));
        assert_eq!(ramp_level(ms(0), ms(1000), ms(10_000), ms(5000)), ms(500));
        assert_eq!(
            ramp_level(ms(0), ms(1000), ms(10_000), ms(60_000)),
            ms(1000)
        );
        assert_eq!(ramp_level(ms(800), ms(200), ms(1000), ms(500)), ms(500));
        assert_eq!(ramp_level(ms(1), ms(2), Duration::ZERO, ms(0)), ms(2));
        let mut rng = StdRng::seed_from_u64(1);
        let ramp = Delay::Ramp {
            from: ms(0),
            to: ms(100),
            over: ms(1000),
            jitter: ms(10),
        };
        for _ in 0..100 {
            let d = ramp.sample(&mut rng, ms(500));
            assert!(d >= ms(40) && d <= ms(60), "{d:?}");
            assert!(ramp.sample(&mut rng, ms(0)) <= ms(10));
        }
    }

    #[test]
    fn replacing_with_the_same_rule_keeps_its_start_time() {
        let handle = FaultHandle::new();
        let a = NodeId::Replica(0);
        let b = NodeId::Replica(1);
        let ramp = LinkFaults {
            delay: Delay::Ramp {
                from: ms(0),
                to: ms(100),
                over: ms(1000),
                jitter: Duration::ZERO,
            },
            ..LinkFaults::default()
        };
        handle.set_link(a, b, ramp);
        let since = |h: &FaultHandle| h.rules.read().unwrap().links[&(a, b)].delay_since;
        let first = since(&handle);
        std::thread::sleep(ms(5));
        let mut rules = handle.rules();
        rules.partition = vec![vec![a], vec![b]];
        handle.replace(rules.clone());
        assert_eq!(since(&handle), first, "unchanged rule keeps its start");
        rules.links[0].faults.delay = Delay::Fixed(ms(3));
        handle.replace(rules);
        assert!(since(&handle) > first, "a changed delay starts again");
    }

    /// The delay level of `from → to` now (jitter-free ramps only).
    fn level(handle: &FaultHandle, from: NodeId, to: NodeId) -> Duration {
        let verdict = handle.rules.read().unwrap().verdict(from, to);
        let Verdict::Faulty(faults, elapsed) = verdict else {
            panic!("a faulty link");
        };
        faults.delay.sample(&mut StdRng::seed_from_u64(0), elapsed)
    }

    /// The launcher re-sends the whole rule set whenever a fault starts: a ramp on
    /// r0 → r1 keeps rising when another link's fault is added, and when a loss is
    /// merged into the ramping link's own rule; a flap keeps its phase likewise. (The
    /// second and third failed before the fix: any change to the link's rule restarted
    /// its ramp and flap.)
    #[test]
    fn a_ramp_keeps_rising_across_a_replace_that_changes_something_else() {
        let handle = FaultHandle::new();
        let (a, b) = (NodeId::Replica(0), NodeId::Replica(1));
        let (c, d) = (NodeId::Replica(2), NodeId::Replica(3));
        let ramp = LinkFaults {
            // 1 ms of delay per ms since installed.
            delay: Delay::Ramp {
                from: Duration::ZERO,
                to: ms(100_000),
                over: ms(100_000),
                jitter: Duration::ZERO,
            },
            ..LinkFaults::default()
        };
        let mut rules = FaultRules {
            links: vec![LinkRule {
                from: a,
                to: b,
                faults: ramp,
            }],
            ..FaultRules::default()
        };
        handle.replace(rules.clone());
        std::thread::sleep(ms(40));
        let before = level(&handle, a, b);
        assert!(before >= ms(40), "{before:?}");

        rules.links.push(LinkRule {
            from: c,
            to: d,
            faults: LinkFaults {
                loss: 0.1,
                ..LinkFaults::default()
            },
        });
        handle.replace(rules.clone());
        let after_other = level(&handle, a, b);
        assert!(after_other >= before, "{after_other:?} < {before:?}");

        rules.links[0].faults.loss = 0.2;
        handle.replace(rules.clone());
        let after_loss = level(&handle, a, b);
        assert!(
            after_loss >= after_other,
            "{after_loss:?} < {after_other:?}"
        );

        // A flap keeps its phase across a change of the link's delay.
        let flap = Flap {
            period: ms(100_000),
            down: ms(30),
        };
        rules.links[0].faults.flap = Some(flap);
        handle.replace(rules.clone());
        assert!(matches!(
            handle.rules.read().unwrap().verdict(a, b),
            Verdict::Blocked
        ));
        std::thread::sleep(ms(40));
        rules.links[0].faults.delay = Delay::Fixed(ms(1));
        handle.replace(rules);
        assert!(
            !matches!(handle.rules.read().unwrap().verdict(a, b), Verdict::Blocked),
            "the flap's down phase is not restarted"
        );
    }

    #[test]
    fn probabilities_are_clamped() {
        let handle = FaultHandle::new();
        handle.set_default(Some(LinkFaults {
            loss: 7.0,
            duplicate: f64::NAN,
            reorder: -1.0,
            ..LinkFaults::default()
        }));
        let d = handle.rules().default.unwrap();
        assert_eq!((d.loss, d.duplicate, d.reorder), (1.0, 0.0, 0.0));
    }
}
