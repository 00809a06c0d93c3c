//! CPU budgets per replica (issue 13 item 3): what a run may give each replica process
//! of this machine, so that four replicas do not simply fight over the same cores.
//!
//! A budget has two parts, either or both:
//!
//! - a **share**, `--cpus-per-replica X` / `[cluster] cpus_per_replica = X`: X CPUs per
//!   replica (0.5, 1, 2, …);
//! - **CPU sets**, `--cpu-sets "0;1;0;1"` / `[cluster] cpu_sets = ["0", "1", "0", "1"]`:
//!   one Linux CPU list (`0-3,6`) per replica, in replica order; sets may overlap
//!   (`"0;1;0;1"` puts two replicas on each of two CPUs).
//!
//! What is enforced, by backend:
//!
//! - **process**: CPU sets, by `sched_setaffinity` in the child before it runs the
//!   replica (every thread it starts inherits the set). A whole-number share `k`
//!   without sets becomes disjoint sets of `k` CPUs, replica `i` on the `i`-th `k`
//!   usable CPUs. A fractional share is *refused*: holding a process to half a CPU
//!   needs a CFS quota (cgroup v2 `cpu.max`), which this backend does not use; two
//!   replicas pinned to one CPU get about half of it each while both are busy
//!   (scheduler fairness), but either may use all of it while the other idles.
//! - **docker**: the share is `docker run --cpus` (a CFS quota: a cap, enforced), the
//!   sets are `--cpuset-cpus`.
//!
//! Budgets that cannot be met are errors naming the flag or field: a share that is not
//! a finite number ≥ 0.01, an empty set, a set naming a CPU this process may not run
//! on, more sets than replicas (or fewer), a share larger than a replica's set, or
//! replicas × share more CPUs than the machine has. The load clients and the launcher
//! run in the runner's process, outside every budget.

use std::fmt;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::scenario::BackendKind;

/// The highest CPU number a set may name (the kernel's `CPU_SETSIZE` is 1024).
const MAX_CPU: usize = 1023;
/// The smallest share (Docker's own minimum for `--cpus`).
const MIN_SHARE: f64 = 0.01;

/// Executor threads per replica when neither `--threads` nor a budget says: the
/// whole CPUs each of `replicas` replicas gets of `cpus` (`cpus / replicas`, at least
/// one). The replicas of a one-machine run share its CPUs, so more executor threads
/// than that only oversubscribe it: on 2 CPUs, four replicas with two threads each
/// ran `tandem local` at 69,561 tx/s where one thread each ran 89,504 (d50ccc4 plus
/// the byte-string commit, one run each, back to back), the difference being
/// threads waiting for a core, not execution.
pub fn machine_share_threads(cpus: usize, replicas: usize) -> usize {
    (cpus / replicas.max(1)).clamp(1, MAX_SHARE_THREADS)
}

/// The most executor threads the machine share gives a replica: the largest `threads`
/// a scenario file accepts.
pub const MAX_SHARE_THREADS: usize = 256;

/// The CPUs this process may run on (its affinity and cgroup quota, as
/// `std::thread::available_parallelism` sees them; 1 if that fails).
pub fn usable_cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A non-empty set of CPU numbers, kept sorted without duplicates; written and read as
/// a Linux CPU list (`0-3,6`, as in `/proc/<pid>/status` `Cpus_allowed_list`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuSet(Vec<usize>);

impl CpuSet {
    /// The set of `cpus` (sorted, duplicates dropped); `None` if empty.
    pub fn from_cpus(cpus: impl IntoIterator<Item = usize>) -> Option<CpuSet> {
        let mut v: Vec<usize> = cpus.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        (!v.is_empty()).then_some(CpuSet(v))
    }

    /// Parses a CPU list: comma-separated CPU numbers and ranges `a-b` (`0`, `0-3,6`).
    ///
    /// # Errors
    /// A message saying what is wrong with `text` (empty, not a number, a range
    /// backwards, a CPU above 1023).
    pub fn parse(text: &str) -> Result<CpuSet, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty CPU set".to_string());
        }
        let number = |s: &str| -> Result<usize, String> {
            let n: usize = s
                .trim()
                .parse()
                .map_err(|_| format!("`{}` in `{text}` is not a CPU number", s.trim()))?;
            if n > MAX_CPU {
                return Err(format!("CPU {n} in `{text}` is above {MAX_CPU}"));
            }
            Ok(n)
        };
        let mut cpus = Vec::new();
        for part in text.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(format!(
                            "the range `{}` in `{text}` is backwards",
                            part.trim()
                        ));
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(number(part)?),
            }
        }
        Ok(CpuSet::from_cpus(cpus).expect("at least one CPU was parsed"))
    }

    /// The CPUs, ascending.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true (a set holds at least one CPU); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether it holds `cpu`.
    pub fn contains(&self, cpu: usize) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }

    /// The CPUs this process may run on (`sched_getaffinity`): the machine a run can
    /// budget.
    ///
    /// # Errors
    /// When the kernel refuses the call (or reports no CPU).
    pub fn this_process() -> Result<CpuSet> {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at
        // most size_of::<cpu_set_t>() bytes into it.
        let set = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                bail!(
                    "cannot read this process's CPUs (sched_getaffinity): {}",
                    std::io::Error::last_os_error()
                );
            }
            set
        };
        let cpus = (0..=MAX_CPU).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) });
        CpuSet::from_cpus(cpus).ok_or_else(|| anyhow::anyhow!("sched_getaffinity reports no CPU"))
    }

    /// The kernel's form of the set, for `sched_setaffinity`.
    pub fn to_libc(&self) -> libc::cpu_set_t {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; every CPU is ≤ MAX_CPU, in
        // the set's range.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &cpu in &self.0 {
                libc::CPU_SET(cpu, &mut set);
            }
            set
        }
    }
}

impl fmt::Display for CpuSet {
    /// The canonical CPU list: ascending, runs of two or more as ranges (`0-3,6`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let mut first = true;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end > start {
                write!(f, "{start}-{end}")?;
            } else {
                write!(f, "{start}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

/// How errors name the budget's two parts: the flags, or a scenario file's fields.
#[derive(Clone, Copy, Debug)]
pub struct BudgetNames {
    /// The share's name.
    pub share: &'static str,
    /// The sets' name.
    pub sets: &'static str,
    /// Two replicas per CPU on two CPUs, as the sets are written there.
    pub sets_example: &'static str,
}

/// The flags of `tandem local` and `tandem compare`.
pub const FLAGS: BudgetNames = BudgetNames {
    share: "--cpus-per-replica",
    sets: "--cpu-sets",
    sets_example: "\"0;1;0;1\"",
};

/// The fields of a scenario file's `[cluster]`.
pub const FIELDS: BudgetNames = BudgetNames {
    share: "[cluster] cpus_per_replica",
    sets: "[cluster] cpu_sets",
    sets_example: "[\"0\", \"1\", \"0\", \"1\"]",
};

/// A run's CPU budget per replica; the default is none (replicas share the machine).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuBudget {
    /// CPUs per replica (a share), if given.
    pub cpus_per_replica: Option<f64>,
    /// One CPU set per replica, in replica order, if given.
    pub cpu_sets: Option<Vec<CpuSet>>,
}

/// What one replica gets, resolved for a backend and this machine (the default:
/// nothing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaBudget {
    /// The CPUs it is pinned to (process: `sched_setaffinity`; docker:
    /// `--cpuset-cpus`).
    pub set: Option<CpuSet>,
    /// Its cap in CPUs (docker: `--cpus`; the process backend has none).
    pub limit: Option<f64>,
    /// The CPUs it can count on while every replica is busy: its cap, or its set's
    /// CPUs each divided among the replicas pinned to it, whichever is less.
    pub cpus: Option<f64>,
}

/// What `summary.json` records of a replica's budget (`replicas[i].cpu`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ReplicaCpu {
    /// The CPU list it was pinned to, if any.
    pub cpu_set: Option<String>,
    /// Its cap in CPUs (docker `--cpus`), if any.
    pub cpus_limit: Option<f64>,
    /// The CPUs it could count on while every replica was busy (see
    /// [`ReplicaBudget::cpus`]); `null` without a budget.
    pub cpus: Option<f64>,
    /// Executor threads it ran.
    pub executor_threads: usize,
    /// What enforced the budget: `sched_setaffinity`, `docker --cpus --cpuset-cpus`,
    /// or `none`.
    pub enforced_by: String,
}

impl CpuBudget {
    /// Whether no budget is given.
    pub fn is_none(&self) -> bool {
        self.cpus_per_replica.is_none() && self.cpu_sets.is_none()
    }

    /// Checks a share as given: finite, at least 0.01, at most 1024 CPUs.
    ///
    /// # Errors
    /// A message saying what is wrong (without the name of the flag or field).
    pub fn check_share(share: f64) -> Result<f64, String> {
        if !share.is_finite() || !(MIN_SHARE..=(MAX_CPU + 1) as f64).contains(&share) {
            return Err(format!(
                "{share} is not a CPU share: a number of CPUs from {MIN_SHARE} up, e.g. 0.5 or 2"
            ));
        }
        Ok(share)
    }

    /// Parses the flag form of the sets: one CPU list per replica, separated by `;`
    /// (`0;1;0;1`, `0-1;2-3`).
    ///
    /// # Errors
    /// A message naming the set at fault (1-based).
    pub fn parse_sets(text: &str) -> Result<Vec<CpuSet>, String> {
        text.split(';')
            .enumerate()
            .map(|(i, s)| {
                CpuSet::parse(s).map_err(|e| format!("set {} (replica r{i}): {e}", i + 1))
            })
            .collect()
    }

    /// The budget `tandem local` and `tandem compare` flags give, checked as far as
    /// possible without a machine; errors name the flag.
    ///
    /// # Errors
    /// A bad share, a bad set, or a number of sets other than `replicas`.
    pub fn from_flags(
        share: Option<f64>,
        sets: Option<&str>,
        replicas: usize,
    ) -> Result<CpuBudget> {
        let cpus_per_replica = match share {
            None => None,
            Some(s) => {
                Some(Self::check_share(s).map_err(|e| anyhow::anyhow!("{}: {e}", FLAGS.share))?)
            }
        };
        let cpu_sets = match sets {
            None => None,
            Some(text) => {
                Some(Self::parse_sets(text).map_err(|e| anyhow::anyhow!("{}: {e}", FLAGS.sets))?)
            }
        };
        let budget = CpuBudget {
            cpus_per_replica,
            cpu_sets,
        };
        budget.check_count(replicas, FLAGS)?;
        Ok(budget)
    }

    /// Checks that there is one set per replica, if sets are given.
    ///
    /// # Errors
    /// Naming `names.sets`.
    pub fn check_count(&self, replicas: usize, names: BudgetNames) -> Result<()> {
        if let Some(sets) = &self.cpu_sets
            && sets.len() != replicas
        {
            bail!(
                "{}: {} CPU sets for {replicas} replicas: give one set per replica, in \
                 replica order (sets may repeat, e.g. {})",
                names.sets,
                sets.len(),
                names.sets_example
            );
        }
        Ok(())
    }

    /// Executor threads per replica when `--threads` is not given: the budget rounded
    /// up (the share, or the CPUs of the largest set, the smaller of the two when both
    /// are given); `None` without a budget.
    pub fn default_threads(&self) -> Option<usize> {
        let largest_set = self
            .cpu_sets
            .as_ref()
            .and_then(|sets| sets.iter().map(CpuSet::len).max());
        let cpus = match (self.cpus_per_replica, largest_set) {
            (None, None) => return None,
            (Some(s), None) => s,
            (None, Some(n)) => n as f64,
            (Some(s), Some(n)) => s.min(n as f64),
        };
        Some((cpus.ceil() as usize).max(1))
    }

    /// Executor threads per replica: `given` (`--threads`, `threads`) if any, else the
    /// budget rounded up ([`CpuBudget::default_threads`]), else the replica's share of
    /// this machine ([`machine_share_threads`] of the CPUs this process may use).
    pub fn threads(&self, given: Option<usize>, replicas: usize) -> usize {
        given
            .or(self.default_threads())
            .unwrap_or_else(|| machine_share_threads(usable_cpu_count(), replicas))
    }

    /// The budget in a few words, for the parameters line and `tandem compare`'s
    /// header: `none (replicas share every CPU)`, `0.5 CPU per replica`, `sets 0;1;0;1`
    /// or both.
    pub fn label(&self) -> String {
        let share = self
            .cpus_per_replica
            .map(|s| format!("{s} CPU per replica"));
        let sets = self.cpu_sets.as_ref().map(|sets| {
            let list: Vec<String> = sets.iter().map(CpuSet::to_string).collect();
            format!("sets {}", list.join(";"))
        });
        match (share, sets) {
            (None, None) => "none (replicas share every CPU)".to_string(),
            (Some(s), None) => s,
            (None, Some(s)) => s,
            (Some(a), Some(b)) => format!("{a}, {b}"),
        }
    }

    /// What enforces this budget on `backend`.
    pub fn enforced_by(&self, backend: BackendKind) -> String {
        if self.is_none() {
            return "none".to_string();
        }
        match backend {
            BackendKind::Process => "sched_setaffinity".to_string(),
            BackendKind::Docker => {
                let mut words = vec!["docker"];
                if self.cpus_per_replica.is_some() {
                    words.push("--cpus");
                }
                if self.cpu_sets.is_some() {
                    words.push("--cpuset-cpus");
                }
                words.join(" ")
            }
        }
    }

    /// Resolves the budget for `replicas` replicas on `backend`, on a machine whose
    /// usable CPUs are `available` (see [`CpuSet::this_process`]); errors name the
    /// flag or field through `names`.
    ///
    /// # Errors
    /// A budget the machine or the backend cannot meet (see the module docs).
    pub fn resolve(
        &self,
        replicas: usize,
        backend: BackendKind,
        available: &CpuSet,
        names: BudgetNames,
    ) -> Result<Vec<ReplicaBudget>> {
        self.check_count(replicas, names)?;
        let machine = available.len();
        if let Some(sets) = &self.cpu_sets {
            for (i, set) in sets.iter().enumerate() {
                if let Some(cpu) = set.cpus().iter().find(|c| !available.contains(**c)) {
                    bail!(
                        "{}: replica r{i}'s set `{set}` names CPU {cpu}, but this machine's \
                         usable CPUs are {available}",
                        names.sets
                    );
                }
            }
        }
        if let Some(share) = self.cpus_per_replica {
            let total = share * replicas as f64;
            if share > machine as f64 || total > machine as f64 + 1e-9 {
                bail!(
                    "{}: {replicas} replicas × {share} CPU = {total} CPUs, but this machine \
                     has {machine} ({available}); at most {} CPU per replica fits",
                    names.share,
                    (machine as f64 / replicas as f64 * 100.0).floor() / 100.0
                );
            }
            if let Some(sets) = &self.cpu_sets
                && let Some((i, set)) = sets
                    .iter()
                    .enumerate()
                    .find(|(_, s)| share > s.len() as f64)
            {
                bail!(
                    "{}: {share} CPU per replica, but replica r{i}'s set `{set}` ({}) holds \
                     only {} CPU(s)",
                    names.share,
                    names.sets,
                    set.len()
                );
            }
        }
        let sets: Vec<Option<CpuSet>> = match (backend, self.cpus_per_replica, &self.cpu_sets) {
            (_, _, Some(sets)) => sets.iter().cloned().map(Some).collect(),
            (BackendKind::Docker, _, None) | (BackendKind::Process, None, None) => {
                vec![None; replicas]
            }
            (BackendKind::Process, Some(share), None) => {
                let k = whole_cpus(share, names)?;
                (0..replicas)
                    .map(|i| {
                        CpuSet::from_cpus(available.cpus()[i * k..(i + 1) * k].iter().copied())
                    })
                    .collect()
            }
        };
        let limit = match backend {
            BackendKind::Docker => self.cpus_per_replica,
            BackendKind::Process => {
                if let Some(share) = self.cpus_per_replica {
                    let k = whole_cpus(share, names)?;
                    if let Some((i, set)) = sets
                        .iter()
                        .enumerate()
                        .find_map(|(i, s)| s.as_ref().filter(|s| s.len() != k).map(|s| (i, s)))
                    {
                        bail!(
                            "{}: {share} CPU per replica, but replica r{i}'s set `{set}` ({}) \
                             holds {} CPUs: the process backend enforces a share by pinning, \
                             so each set must hold exactly {k}",
                            names.share,
                            names.sets,
                            set.len()
                        );
                    }
                }
                None
            }
        };
        let pinned_to = |cpu: usize| sets.iter().flatten().filter(|s| s.contains(cpu)).count();
        Ok(sets
            .iter()
            .map(|set| {
                let fair = set.as_ref().map(|s| {
                    s.cpus()
                        .iter()
                        .map(|&c| 1.0 / pinned_to(c) as f64)
                        .sum::<f64>()
                });
                let cpus = match (fair, limit) {
                    (Some(f), Some(l)) => Some(f.min(l)),
                    (f, l) => f.or(l),
                };
                ReplicaBudget {
                    set: set.clone(),
                    limit,
                    cpus,
                }
            })
            .collect())
    }
}

/// A share the process backend can enforce: a whole number of CPUs.
fn whole_cpus(share: f64, names: BudgetNames) -> Result<usize> {
    if share.fract() != 0.0 {
        bail!(
            "{}: {share} CPU per replica cannot be enforced on the process backend: it pins \
             replicas to CPU sets (sched_setaffinity) and holds none to a fraction of a CPU \
             (that needs a CFS quota, cgroup v2 cpu.max, which it does not use). Give whole \
             CPUs; or {} to share CPUs between replicas, e.g. {} (two replicas per CPU: \
             about half of it each while both are busy — scheduler fairness, not a cap); or \
             the docker backend, where the share is `docker run --cpus`, a cap",
            names.share,
            names.sets,
            names.sets_example
        );
    }
    Ok(share as usize)
}

impl ReplicaBudget {
    /// What `summary.json` records of it, with the replica's executor threads.
    pub fn record(&self, executor_threads: usize, enforced_by: &str) -> ReplicaCpu {
        ReplicaCpu {
            cpu_set: self.set.as_ref().map(CpuSet::to_string),
            cpus_limit: self.limit,
            cpus: self.cpus,
            executor_threads,
            enforced_by: enforced_by.to_string(),
        }
    }

    /// The `docker run` arguments that impose it: `--cpus X` and/or
    /// `--cpuset-cpus LIST`.
    pub fn docker_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(limit) = self.limit {
            args.extend(["--cpus".to_string(), limit.to_string()]);
        }
        if let Some(set) = &self.set {
            args.extend(["--cpuset-cpus".to_string(), set.to_string()]);
        }
        args
    }
}

/// Pins the calling process (and every thread it starts from now on) to `set`. Only
/// async-signal-safe calls: usable in a `pre_exec` hook between fork and exec, with
/// `set` converted ([`CpuSet::to_libc`]) before the fork.
///
/// # Errors
/// The kernel's refusal (e.g. a CPU that is offline).
pub fn pin_current_process(set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> CpuSet {
        CpuSet::parse(text).unwrap()
    }

    #[test]
    fn cpu_lists_parse_and_print_canonically() {
        assert_eq!(set("0").cpus(), &[0]);
        assert_eq!(set("3,0-2,2").cpus(), &[0, 1, 2, 3]);
        assert_eq!(set(" 0-1 , 4 ").to_string(), "0-1,4");
        assert_eq!(set("5,1,2,3,7,8").to_string(), "1-3,5,7-8");
        for bad in ["", " ", "a", "1-", "3-1", "0,,1", "1024", "-1"] {
            assert!(CpuSet::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(CpuSet::parse("3-1").unwrap_err().contains("backwards"));
    }

    #[test]
    fn flags_are_checked_and_errors_name_the_flag() {
        let b = CpuBudget::from_flags(Some(0.5), Some("0;1;0;1"), 4).unwrap();
        assert_eq!(b.cpu_sets.as_ref().unwrap()[3], set("1"));
        assert_eq!(b.label(), "0.5 CPU per replica, sets 0;1;0;1");
        let cases: [(Option<f64>, Option<&str>, &str); 6] = [
            (Some(0.0), None, "--cpus-per-replica"),
            (Some(f64::NAN), None, "--cpus-per-replica"),
            (Some(-1.0), None, "--cpus-per-replica"),
            (
                None,
                Some("0;;1;1"),
                "--cpu-sets: set 2 (replica r1): an empty CPU set",
            ),
            (None, Some("0;1;x;1"), "--cpu-sets: set 3"),
            (None, Some("0;1"), "--cpu-sets: 2 CPU sets for 4 replicas"),
        ];
        for (share, sets, want) in cases {
            let err = format!("{:#}", CpuBudget::from_flags(share, sets, 4).unwrap_err());
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn threads_default_to_the_budget_rounded_up() {
        let b = |share, sets: Option<&str>| CpuBudget::from_flags(share, sets, 4).unwrap();
        assert_eq!(b(None, None).default_threads(), None);
        assert_eq!(b(Some(0.5), None).default_threads(), Some(1));
        assert_eq!(b(Some(1.5), None).default_threads(), Some(2));
        assert_eq!(b(Some(2.0), None).default_threads(), Some(2));
        assert_eq!(b(None, Some("0;1;0;1")).default_threads(), Some(1));
        assert_eq!(b(None, Some("0-1;2-3;0;1")).default_threads(), Some(2));
        assert_eq!(
            b(Some(1.0), Some("0-1;2-3;0-1;2-3")).default_threads(),
            Some(1)
        );
        assert_eq!(b(Some(0.5), None).threads(Some(4), 4), 4, "--threads wins");
        assert_eq!(b(Some(0.5), None).threads(None, 4), 1);
        assert_eq!(b(Some(2.0), None).threads(None, 4), 2, "the budget wins");
        assert_eq!(
            b(None, None).threads(None, 4),
            machine_share_threads(usable_cpu_count(), 4)
        );
    }

    #[test]
    fn without_a_budget_threads_are_the_replicas_share_of_the_machine() {
        assert_eq!(machine_share_threads(2, 4), 1, "never zero");
        assert_eq!(machine_share_threads(8, 4), 2);
        assert_eq!(machine_share_threads(10, 4), 2, "whole CPUs only");
        assert_eq!(machine_share_threads(64, 4), 16);
        assert_eq!(
            machine_share_threads(4, 0),
            4,
            "no replicas: no division by zero"
        );
        assert_eq!(machine_share_threads(4096, 4), MAX_SHARE_THREADS, "capped");
    }

    #[test]
    fn budgets_the_machine_cannot_meet_are_refused_naming_flag_or_field() {
        let two = set("0-1");
        let resolve = |share, sets: Option<&str>, backend, names| {
            let budget = CpuBudget {
                cpus_per_replica: share,
                cpu_sets: sets.map(|s| CpuBudget::parse_sets(s).unwrap()),
            };
            budget
                .resolve(4, backend, &two, names)
                .map_err(|e| format!("{e:#}"))
        };
        use BackendKind::{Docker, Process};
        let cases = [
            (
                Some(1.0),
                None,
                Docker,
                FLAGS,
                "--cpus-per-replica: 4 replicas × 1 CPU = 4 CPUs, but this machine has 2 (0-1); at most 0.5",
            ),
            (
                Some(3.0),
                None,
                Docker,
                FIELDS,
                "[cluster] cpus_per_replica: 4 replicas × 3 CPU",
            ),
            (
                None,
                Some("0;1;2;1"),
                Process,
                FLAGS,
                "--cpu-sets: replica r2's set `2` names CPU 2, but this machine's usable CPUs are 0-1",
            ),
            (
                None,
                Some("0;1;0;0-5"),
                Docker,
                FIELDS,
                "[cluster] cpu_sets: replica r3's set `0-5` names CPU 2",
            ),
            (
                Some(0.5),
                None,
                Process,
                FLAGS,
                "--cpus-per-replica: 0.5 CPU per replica cannot be enforced on the process backend",
            ),
            (
                Some(0.5),
                Some("0;1;0;1"),
                Process,
                FIELDS,
                "[cluster] cpus_per_replica: 0.5 CPU per replica cannot be enforced",
            ),
            (Some(0.5), Some("0;1;0-1;1"), Docker, FLAGS, ""),
        ];
        for (share, sets, backend, names, want) in cases {
            match resolve(share, sets, backend, names) {
                Err(e) => assert!(!want.is_empty() && e.contains(want), "{want}: {e}"),
                Ok(r) => assert!(want.is_empty(), "{want}: resolved to {r:?}"),
            }
        }
        let err = CpuBudget {
            cpus_per_replica: Some(2.0),
            cpu_sets: Some(CpuBudget::parse_sets("0-1;0-1;0-1;0").unwrap()),
        }
        .resolve(4, Process, &set("0-7"), FLAGS)
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("replica r3's set `0` (--cpu-sets) holds only 1 CPU"),
            "{err:#}"
        );
        let err = CpuBudget {
            cpus_per_replica: Some(1.0),
            cpu_sets: Some(CpuBudget::parse_sets("0-1;2-3;4-5;6-7").unwrap()),
        }
        .resolve(4, Process, &set("0-7"), FLAGS)
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("each set must hold exactly 1"),
            "{err:#}"
        );
    }

    #[test]
    fn budgets_resolve_to_sets_caps_and_fair_shares() {
        let sets = CpuBudget {
            cpus_per_replica: None,
            cpu_sets: Some(CpuBudget::parse_sets("0;1;0;1").unwrap()),
        };
        let r = sets
            .resolve(4, BackendKind::Process, &set("0-1"), FLAGS)
            .unwrap();
        assert_eq!(r[2].set, Some(set("0")));
        assert_eq!((r[2].limit, r[2].cpus), (None, Some(0.5)));
        assert!(r[2].docker_args().iter().all(|a| a != "--cpus"));

        // A whole share on processes: disjoint sets from the usable CPUs, in order.
        let whole = CpuBudget {
            cpus_per_replica: Some(2.0),
            cpu_sets: None,
        };
        let r = whole
            .resolve(4, BackendKind::Process, &set("2-9"), FLAGS)
            .unwrap();
        let got: Vec<String> = r
            .iter()
            .map(|b| b.set.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(got, ["2-3", "4-5", "6-7", "8-9"]);
        assert_eq!(r[0].cpus, Some(2.0));
        assert_eq!(r[0].limit, None);

        // On containers a share is a cap of its own, beside any set.
        let half = CpuBudget {
            cpus_per_replica: Some(0.5),
            cpu_sets: None,
        };
        let r = half
            .resolve(4, BackendKind::Docker, &set("0-1"), FLAGS)
            .unwrap();
        assert_eq!(r[1].set, None);
        assert_eq!((r[1].limit, r[1].cpus), (Some(0.5), Some(0.5)));
        assert_eq!(r[1].docker_args(), ["--cpus", "0.5"]);
        let both = CpuBudget {
            cpus_per_replica: Some(0.5),
            cpu_sets: Some(CpuBudget::parse_sets("0-1;0-1;0-1;0-1").unwrap()),
        };
        let r = both
            .resolve(4, BackendKind::Docker, &set("0-1"), FLAGS)
            .unwrap();
        assert_eq!(
            r[3].docker_args(),
            ["--cpus", "0.5", "--cpuset-cpus", "0-1"]
        );
        assert_eq!(r[3].cpus, Some(0.5));
        let rec = r[3].record(1, &both.enforced_by(BackendKind::Docker));
        assert_eq!(rec.enforced_by, "docker --cpus --cpuset-cpus");
        assert_eq!(rec.cpu_set.as_deref(), Some("0-1"));

        // No budget: nothing pinned, nothing passed.
        let none = CpuBudget::default()
            .resolve(4, BackendKind::Docker, &set("0-1"), FLAGS)
            .unwrap();
        assert!(
            none.iter()
                .all(|b| b.docker_args().is_empty() && b.cpus.is_none())
        );
        assert_eq!(
            CpuBudget::default().enforced_by(BackendKind::Process),
            "none"
        );
    }

    #[test]
    fn this_process_has_a_cpu() {
        let cpus = CpuSet::this_process().unwrap();
        assert!(!cpus.is_empty());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap();
        assert_eq!(cpus, set(line));
    }
}
