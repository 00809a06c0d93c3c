//! The simulator over many seeds for every fault mix: no safety violation, and every
//! request commits after the faults heal. A failure names the seed and the command
//! that replays it.

use std::ops::Range;

use tandem_consensus::ProtocolKind;
use tandem_consensus::sim::faults::FaultMix;
use tandem_consensus::sim::{SimConfig, SimReport, run};

const PBFT: ProtocolKind = ProtocolKind::Pbft;

/// Runs `seeds` seeds of `protocol` under `mix` with `n` replicas and fails with
/// every violation found.
fn sweep_protocol(
    protocol: ProtocolKind,
    mix: FaultMix,
    n: usize,
    seeds: Range<u64>,
) -> Vec<SimReport> {
    sweep_with(protocol, mix, n, seeds, &[])
}

/// [`sweep_protocol`] with some of the protocol's own parameters set by name.
fn sweep_with(
    protocol: ProtocolKind,
    mix: FaultMix,
    n: usize,
    seeds: Range<u64>,
    params: &[(&str, &str)],
) -> Vec<SimReport> {
    let mut failures = Vec::new();
    let mut reports = Vec::new();
    for seed in seeds {
        let mut cfg = SimConfig::new(protocol, seed, mix, n);
        for (k, v) in params {
            cfg = cfg.with_protocol_param(k, v);
        }
        let report = run(&cfg);
        if !report.ok() {
            failures.push(format!(
                "seed {seed}: {}\n    replay: {}",
                report
                    .violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
                report.replay_command()
            ));
        }
        reports.push(report);
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs of {protocol} {} with n={n} failed:\n{}",
        failures.len(),
        reports.len(),
        mix.name(),
        failures.join("\n")
    );
    reports
}

/// How a protocol's fault mixes are swept: the seeds at n = 4 (every request must
/// complete), and at n = 7 and n = 10 for mixes that run larger.
struct MixSweep {
    protocol: ProtocolKind,
    n4: Range<u64>,
    n7: Range<u64>,
    n10: Range<u64>,
    /// The protocol's own parameters set by name over its simulator defaults.
    params: &'static [(&'static str, &'static str)],
}

impl MixSweep {
    /// Sweeps `mix` at n = 4 and, if `larger`, at n = 7 and n = 10.
    fn run(&self, mix: FaultMix, larger: bool) {
        let reports = sweep_with(self.protocol, mix, 4, self.n4.clone(), self.params);
        let completed: u64 = reports.iter().map(|r| r.requests_completed).sum();
        let planned: u64 = reports.iter().map(|r| r.requests_planned).sum();
        assert_eq!(completed, planned, "liveness is checked per run too");
        if larger {
            sweep_with(self.protocol, mix, 7, self.n7.clone(), self.params);
            sweep_with(self.protocol, mix, 10, self.n10.clone(), self.params);
        }
    }
}

/// Seed 7 of `protocol` under `mix`, run twice, gives the same trace (and its hash).
fn assert_replays(protocol: ProtocolKind, mix: FaultMix) {
    let mut cfg = SimConfig::new(protocol, 7, mix, 4);
    cfg.record_trace = true;
    let a = run(&cfg);
    let b = run(&cfg);
    assert_eq!(a.trace_hash, b.trace_hash, "{}", mix.name());
    assert_eq!(a.trace, b.trace, "{}", mix.name());
    assert!(a.trace.len() > 100);
}

/// One test per mix that `plan` sweeps: `plan; name => mix, ...` (every mix swept
/// larger too), or `@sized plan; name => mix, larger, ...`.
macro_rules! mix_tests {
    (@sized $plan:expr; $($name:ident => $mix:expr, $larger:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $plan.run($mix, $larger);
            }
        )*
    };
    ($plan:expr; $($name:ident => $mix:expr),* $(,)?) => {
        mix_tests! { @sized $plan; $($name => $mix, true),* }
    };
}

/// Runs `seeds` seeds of PBFT under `mix` with `n` replicas.
fn sweep(mix: FaultMix, n: usize, seeds: Range<u64>) -> Vec<SimReport> {
    sweep_protocol(PBFT, mix, n, seeds)
}

/// Seeds per PBFT mix at n = 4 in the debug suite (120 × 17 mixes keeps CI within its
/// budget); `tandem sim --faults all --seeds 10000` is the long sweep (README).
const SEEDS: u64 = 120;

/// PBFT's sweep: 120 seeds at n = 4, 15 at n = 7, 6 at n = 10.
const PBFT_SWEEP: MixSweep = MixSweep {
    protocol: PBFT,
    n4: 0..SEEDS,
    n7: 10_000..10_000 + SEEDS / 8,
    n10: 20_000..20_000 + SEEDS / 20,
    params: &[],
};

use tandem_consensus::pbft::ByzantineMode as B;

mix_tests! {
    PBFT_SWEEP;
    no_faults => FaultMix::None,
    primary_crash => FaultMix::Crash,
    partitions => FaultMix::Partition,
    lossy_duplicating_reordering_links => FaultMix::Lossy,
    byzantine_silent => FaultMix::byzantine(B::Silent),
    byzantine_equivocating_primary => FaultMix::byzantine(B::Equivocate),
    byzantine_slow_primary => FaultMix::byzantine(B::SlowPrimary),
    byzantine_bad_signatures => FaultMix::byzantine(B::BadSignatures),
    byzantine_replay => FaultMix::byzantine(B::Replay),
    byzantine_corrupt_digests => FaultMix::byzantine(B::CorruptDigests),
    byzantine_view_change_storm => FaultMix::byzantine(B::ViewChangeStorm),
    byzantine_censoring_primary => FaultMix::byzantine(B::Censor),
    byzantine_censoring_primary_answering_busy => FaultMix::byzantine(B::CensorBusy),
    byzantine_censoring_primary_proposing_empty_batches => FaultMix::byzantine(B::CensorEmpty),
    byzantine_forge_requests => FaultMix::byzantine(B::ForgeRequests),
    byzantine_forge_stale => FaultMix::byzantine(B::ForgeStale),
    everything_mixed => FaultMix::Mixed,
}

/// The flood mixes cost about four times as much per seed (every seed carries a
/// Byzantine replica's flood through the whole simulated network): 40 seeds at n = 4,
/// 5 at n = 7, 2 at n = 10, so each costs what the other mixes do.
const FLOOD_SWEEP: MixSweep = MixSweep {
    n4: 0..SEEDS / 3,
    n7: 10_000..10_000 + SEEDS / 24,
    n10: 20_000..20_000 + SEEDS / 60,
    ..PBFT_SWEEP
};

mix_tests! {
    FLOOD_SWEEP;
    byzantine_flood => FaultMix::byzantine(B::Flood),
    byzantine_status_flood => FaultMix::byzantine(B::StatusFlood),
}

// Alone, a replica serving corrupt state chunks only matters when a correct one lags,
// which this mix does not cause (`everything_mixed` adds partitions and lossy links
// to it): n = 4 only, to keep the suite quick.
mix_tests! {
    @sized PBFT_SWEEP;
    byzantine_corrupt_state => FaultMix::byzantine(B::CorruptState), false,
}

/// The overload mix (issue 13 item 1): every run executes 1,200 requests under
/// overload, so a few seeds at n = 4 keep the suite quick (`tandem sim --faults
/// overload --seeds 200` is the long sweep).
const OVERLOAD_SWEEP: MixSweep = MixSweep {
    n4: 0..6,
    ..PBFT_SWEEP
};

mix_tests! {
    @sized OVERLOAD_SWEEP;
    overload_never_changes_view_or_transfers_state => FaultMix::Overload, false,
}

/// The client-rerun mix (every replica restarts from its disk between two runs of a
/// client key): 30 seeds at n = 4, 4 at n = 7, 2 at n = 10.
const RERUN_SWEEP: MixSweep = MixSweep {
    n4: 0..30,
    n7: 10_000..10_004,
    n10: 20_000..20_002,
    ..PBFT_SWEEP
};

mix_tests! {
    RERUN_SWEEP;
    client_rerun_after_the_replicas_restarted => FaultMix::ClientRerun,
}

/// Every PBFT mix has its test above: a mode added to PBFT without a sweep fails here.
#[test]
fn every_mix_of_the_protocol_is_swept() {
    assert_eq!(FaultMix::all(PBFT).len(), 22);
}

#[test]
fn faults_actually_exercise_recovery() {
    // Guard against a simulator that "passes" because nothing happens: over a few
    // seeds, crashes and partitions must cause view changes and state transfers.
    let crash = sweep(FaultMix::Crash, 4, 0..20);
    assert!(crash.iter().map(|r| r.view_changes).sum::<u64>() > 0);
    let partition = sweep(FaultMix::Partition, 4, 0..20);
    assert!(partition.iter().map(|r| r.state_transfers).sum::<u64>() > 0);
    let equivocation = sweep(FaultMix::byzantine(B::Equivocate), 4, 0..20);
    assert!(equivocation.iter().all(|r| r.view_changes > 0));
}

#[test]
fn same_seed_same_trace() {
    for mix in FaultMix::all(PBFT) {
        assert_replays(PBFT, mix);
    }
    let other = run(&SimConfig::new(PBFT, 8, FaultMix::Mixed, 4));
    let base = run(&SimConfig::new(PBFT, 7, FaultMix::Mixed, 4));
    assert_ne!(other.trace_hash, base.trace_hash, "different seeds differ");
}

/// Seeds that once found bugs (with the light load they were found with), kept so the
/// bugs stay fixed. Each line says what the seed exposed.
#[test]
fn regression_seeds() {
    let cases: &[(u64, FaultMix, &str)] = &[
        // A primary whose view-1 proposals could not commit (its peer had moved on to
        // view 2 alone, the other backup had delivered and answered from its reply
        // cache) ran no view timer: every correct replica stopped waiting while the
        // clients still waited. Primaries now time out like backups.
        (839, FaultMix::Mixed, "primary without a view timer"),
        (1115, FaultMix::Mixed, "primary without a view timer"),
        (1403, FaultMix::Mixed, "primary without a view timer"),
        (1499, FaultMix::Mixed, "primary without a view timer"),
        (1799, FaultMix::Mixed, "primary without a view timer"),
        // A replica that timed out of a view alone kept moving to higher views, so the
        // others never caught up with it (view chasing). The view-change timer now starts
        // only once a quorum asked for the view.
        (31, FaultMix::Mixed, "view chasing"),
        // A restarted primary proposed at sequence numbers already decided.
        (
            13,
            FaultMix::Crash,
            "stale next sequence number after restart",
        ),
    ];
    for (seed, mix, what) in cases {
        let report = run(&SimConfig::light(PBFT, *seed, *mix, 4));
        assert!(
            report.ok(),
            "regression {what} (seed {seed}): {:?}\n    replay: {}",
            report.violations,
            report.replay_command()
        );
    }
    // A replica timed out of view 2 after a quorum asked for it, but its view change
    // never reached view 2's primary (lost in a partition); it waited alone in view 3
    // while the other two waited in view 2 for a quorum, forever. Replicas now resend
    // a peer stuck in an older view change the view change they sent for that view.
    // (The seed's draw changes whenever a Byzantine mode is added to the mixes; the
    // direct test is pbft::tests::a_replica_resends_its_old_view_change_to_a_peer_left_in_that_view.)
    let mut cfg = SimConfig::new(PBFT, 110, FaultMix::Mixed, 4);
    cfg.disks = true;
    let report = run(&cfg);
    assert!(
        report.ok(),
        "regression view-change resend gap (seed 110, disks): {:?}\n    replay: {}",
        report.violations,
        report.replay_command()
    );
}

/// An equivocating primary under a heavy load: requests lost in the equivocated batches
/// must still execute when retransmitted, although later requests of the same client
/// completed meanwhile (clients keep their numbering within the exactly-once window).
#[test]
fn lost_requests_still_execute_after_the_window_moved_on() {
    for seed in 0..6 {
        let mut cfg = SimConfig::new(PBFT, seed, FaultMix::byzantine(B::Equivocate), 4);
        cfg.clients = 2;
        cfg.requests_per_client = 400;
        cfg.client_window = 16;
        cfg.exactly_once_window = 32;
        let report = run(&cfg);
        assert!(report.ok(), "seed {seed}: {:?}", report.violations);
        assert_eq!(report.requests_completed, 800);
    }
}

/// HotStuff (2-chain Jolteon) under every fault mix of its own: a modest number of
/// seeds per mix so the debug suite stays quick; `long_sweep` (ignored) runs 200 per
/// mix at n = 4 plus n = 7 and 10.
mod hotstuff {
    use std::ops::Range;

    use super::MixSweep;
    use tandem_consensus::ProtocolKind;
    use tandem_consensus::hotstuff::ByzantineMode as H;
    use tandem_consensus::sim::faults::FaultMix;
    use tandem_consensus::sim::{SimConfig, SimReport, run};

    const HOTSTUFF: ProtocolKind = ProtocolKind::HotStuff;
    const SEEDS: u64 = 4;

    /// HotStuff's sweep: 4 seeds at n = 4, one at n = 7 and one at n = 10.
    const HOTSTUFF_SWEEP: MixSweep = MixSweep {
        protocol: HOTSTUFF,
        n4: 0..SEEDS,
        n7: 10_000..10_001,
        n10: 20_000..20_001,
        params: &[],
    };

    /// Leader reputation instead of round-robin (`leaders.rs`).
    const REPUTATION: &[(&str, &str)] = &[("leader_election", "reputation")];

    /// The same seeds with leader reputation.
    const REPUTATION_SWEEP: MixSweep = MixSweep {
        params: REPUTATION,
        ..HOTSTUFF_SWEEP
    };

    /// Runs `cfg` and fails, with its replay command, unless it found no violation
    /// and completed every request.
    fn run_to_completion(cfg: &SimConfig) -> SimReport {
        let report = run(cfg);
        assert!(
            report.ok() && report.requests_completed == report.requests_planned,
            "seed {} ({}): {:?}\n    replay: {}",
            cfg.seed,
            cfg.faults.name(),
            report.violations,
            report.replay_command()
        );
        report
    }

    /// Runs `seeds` seeds of HotStuff under `mix` with `n` replicas.
    fn sweep(mix: FaultMix, n: usize, seeds: Range<u64>) -> Vec<SimReport> {
        super::sweep_protocol(HOTSTUFF, mix, n, seeds)
    }

    // With round-robin (the default) `silent` runs at n = 4 only: with f = 2 or 3
    // silent leaders in the rotation (n = 7, 10), every round led by one costs a round
    // time-out and the simulator's load does not finish within its 40 s liveness bound
    // (seeds 10000 and 10001 at n = 7 complete about half their requests). With leader
    // reputation it runs at n = 4, 7 and 10 (`silent_leaders_with_reputation`).
    mix_tests! {
        @sized HOTSTUFF_SWEEP;
        no_faults => FaultMix::None, true,
        leader_crash => FaultMix::Crash, true,
        partitions => FaultMix::Partition, true,
        lossy_duplicating_reordering_links => FaultMix::Lossy, true,
        byzantine_silent => FaultMix::byzantine(H::Silent), false,
        byzantine_equivocating_leader => FaultMix::byzantine(H::Equivocate), true,
        byzantine_slow_leader => FaultMix::byzantine(H::SlowLeader), true,
        byzantine_bad_signatures => FaultMix::byzantine(H::BadSignatures), true,
        byzantine_replay => FaultMix::byzantine(H::Replay), true,
        byzantine_corrupt_digests => FaultMix::byzantine(H::CorruptDigests), true,
        byzantine_timeout_storm => FaultMix::byzantine(H::TimeoutStorm), true,
        twins => FaultMix::byzantine(H::Twins), true,
        byzantine_forge_requests => FaultMix::byzantine(H::ForgeRequests), true,
        byzantine_forge_stale => FaultMix::byzantine(H::ForgeStale), true,
        client_rerun_after_the_replicas_restarted => FaultMix::ClientRerun, true,
        everything_mixed => FaultMix::Mixed, true,
    }

    /// The `overload` mix (issue 13 item 1): clients offer 1.2× what execution
    /// carries. No round may time out and no replica transfer state (the mix's own
    /// check), every request completes, and admission control did the work: replicas
    /// refused requests as busy and the clients backed off and sent them again.
    /// (Before, this was a plain sweep of the mix, which passed just as well with
    /// back-pressure off: without it nothing is refused here, as the last run
    /// shows, so this test fails with `max_unexecuted = 1 << 20`.) Round time-outs
    /// of a throttled leader are caught by
    /// `hotstuff::tests::a_throttled_leader_keeps_the_round_alive_with_an_empty_block`:
    /// in this mix every replica executes at the same pace, so none lags long.
    #[test]
    fn overload_is_met_by_busy_refusals_and_back_off_without_time_outs() {
        for seed in 0..4 {
            let report = run_to_completion(&SimConfig::new(HOTSTUFF, seed, FaultMix::Overload, 4));
            assert!(
                report.refused_busy > 0 && report.client_busy_retries > 0,
                "seed {seed}: refused {}, clients sent {} again after a back-off",
                report.refused_busy,
                report.client_busy_retries
            );
        }
        let mut unbounded = SimConfig::new(HOTSTUFF, 0, FaultMix::Overload, 4);
        unbounded.max_unexecuted = 1 << 20;
        let report = run_to_completion(&unbounded);
        assert_eq!(
            report.refused_busy, 0,
            "admission control without back-pressure"
        );
    }

    // Leader reputation under the silent-leader mix at n = 4, 7 and 10, and under the
    // mixes with most leader failures.
    mix_tests! {
        @sized REPUTATION_SWEEP;
        silent_leaders_with_reputation => FaultMix::byzantine(H::Silent), true,
        leader_crash_with_reputation => FaultMix::Crash, true,
        partitions_with_reputation => FaultMix::Partition, false,
        everything_mixed_with_reputation => FaultMix::Mixed, false,
        twins_with_reputation => FaultMix::byzantine(H::Twins), true,
    }

    /// Twins with leader reputation and disks. The twin (the second instance of the
    /// faulty identity) executes nothing itself and used to be held back by
    /// `max_unexecuted` for good, so it proposed only empty blocks and voted for
    /// none that carried requests; reputation then made the faulty identity lead
    /// nearly every round (the correct leaders' blocks with requests failed more
    /// than 10% of their rounds without its votes), and seed 30 completed 105 of 222
    /// requests by the bound (5 of seeds 0..60 failed). The twin now follows the
    /// first instance's execution reports with no back-pressure of its own: an
    /// honest instance, as Twins means. Seed 30 and a sweep complete every request.
    #[test]
    fn twins_with_reputation_and_disks() {
        let mut failures = Vec::new();
        for seed in std::iter::once(30).chain(0..TWINS_REPUTATION_SEEDS) {
            let mut cfg = SimConfig::new(HOTSTUFF, seed, FaultMix::byzantine(H::Twins), 4)
                .with_protocol_param("leader_election", "reputation");
            cfg.disks = true;
            let report = run(&cfg);
            if !(report.ok() && report.requests_completed == report.requests_planned) {
                failures.push(format!(
                    "seed {seed}: {:?}\n    replay: {}",
                    report.violations,
                    report.replay_command()
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Seeds of `twins_with_reputation_and_disks` (`tandem sim --protocol hotstuff
    /// --faults twins --durability wal --protocol-param leader_election=reputation
    /// --seeds 60` is the longer sweep).
    const TWINS_REPUTATION_SEEDS: u64 = 20;

    /// `tandem sim --protocol hotstuff --faults all --seeds 300 --durability wal`
    /// missed the liveness bound on seeds 30, 186 and 212 with round-robin (when the
    /// mixes were 13, all three ran `silent`; with 14 mixes, as here, 30 and 212 run
    /// `partition` and 186 `silent`). With leader reputation the same runs, and the
    /// three seeds under `silent`, complete every request within the bound. (The mixes
    /// are named here: with 17, `--faults all` gives seed 30 `twins`, which missed the
    /// bound with reputation and disks — 105 of 222 requests — until the twin was made
    /// honest: `twins_with_reputation_and_disks`.)
    #[test]
    fn silent_leader_seeds_with_reputation_and_disks() {
        let partition = FaultMix::Partition;
        let silent = FaultMix::byzantine(H::Silent);
        for (seed, exact) in [(30, partition), (186, silent), (212, partition)] {
            for mix in [exact, silent] {
                let mut cfg = SimConfig::new(HOTSTUFF, seed, mix, 4)
                    .with_protocol_param("leader_election", "reputation");
                cfg.disks = true;
                run_to_completion(&cfg);
            }
        }
    }

    /// Leader reputation after state transfers: a replica that installed a checkpoint
    /// used to reset its reputation history and elect round-robin for ~440 rounds;
    /// two such replicas at n = 4 split every round's votes with the other two, and
    /// the cluster crawled by round time-outs (seed 44, `partition`: 44 of 112
    /// requests by the bound; seed 391, `mixed`: 84 of 432). The checkpoint now binds
    /// the history and a transfer installs it, so leaders agree at once. Both seeds
    /// transfer state; both complete every request.
    #[test]
    fn leaders_agree_after_state_transfers_with_reputation() {
        for (seed, mix) in [(44, FaultMix::Partition), (391, FaultMix::Mixed)] {
            let mut cfg = SimConfig::new(HOTSTUFF, seed, mix, 4)
                .with_protocol_param("leader_election", "reputation");
            cfg.disks = true;
            let report = run_to_completion(&cfg);
            assert!(
                report.state_transfers > 0,
                "seed {seed} transferred no state"
            );
        }
    }

    /// `tandem sim --protocol hotstuff --durability wal` over crashes and the mixed
    /// faults, storage faults included: logs compact at stable checkpoints, so
    /// restarts replay a snapshot, the base record and the records after it. Every
    /// request completes, and the checker's rules hold across the restarts (nothing a
    /// client accepted is lost or changes its result, no correct replica contradicts a
    /// vote or timeout it sent before a crash).
    #[test]
    fn restarts_from_compacted_logs() {
        let mut from_snapshot = 0;
        for mix in [FaultMix::Crash, FaultMix::Mixed] {
            for seed in 0..4 {
                let mut cfg = SimConfig::new(HOTSTUFF, seed, mix, 4);
                cfg.disks = true;
                let report = run_to_completion(&cfg);
                from_snapshot += report.restarts_from_snapshot;
            }
        }
        assert!(from_snapshot > 0, "no restart found a compacted log");
    }

    /// Every HotStuff mix has its test above.
    #[test]
    fn every_mix_of_the_protocol_is_swept() {
        assert_eq!(FaultMix::all(HOTSTUFF).len(), 17);
    }

    #[test]
    fn faults_actually_exercise_recovery() {
        let crash = sweep(FaultMix::Crash, 4, 100..104);
        assert!(crash.iter().map(|r| r.view_changes).sum::<u64>() > 0);
        let partition = sweep(FaultMix::Partition, 4, 100..106);
        assert!(partition.iter().map(|r| r.state_transfers).sum::<u64>() > 0);
    }

    #[test]
    fn same_seed_same_trace() {
        for mix in [FaultMix::Mixed, FaultMix::byzantine(H::Twins)] {
            super::assert_replays(HOTSTUFF, mix);
        }
    }

    /// The full sweep the issue asks of CI machines with time to spare:
    /// `cargo test --release -p tandem-consensus --test simulator -- --ignored`.
    #[test]
    #[ignore]
    fn long_sweep() {
        for mix in FaultMix::all(HOTSTUFF) {
            sweep(mix, 4, 0..200);
            super::sweep_with(HOTSTUFF, mix, 4, 0..200, REPUTATION);
            super::sweep_with(HOTSTUFF, mix, 7, 10_000..10_025, REPUTATION);
            super::sweep_with(HOTSTUFF, mix, 10, 20_000..20_010, REPUTATION);
            if mix == FaultMix::byzantine(H::Silent) {
                continue;
            }
            sweep(mix, 7, 10_000..10_025);
            sweep(mix, 10, 20_000..20_010);
        }
    }
}
