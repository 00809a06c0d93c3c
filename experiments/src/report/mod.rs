//! Results reporting: what a run writes into its results folder and the summary table
//! it prints.
//!
//! The cluster runner fills a [`RunSummary`], one [`TimelineRow`] per interval and a
//! latency histogram in microseconds, then calls [`results_dir`] for a fresh folder,
//! [`write_results`] to fill it and [`render_table`] for the terminal. The folder holds
//! `summary.json`, `timeline.csv`, `latency.hgrm`, `throughput.svg` and `latency.svg`
//! (the README's "Results format" describes each); [`rewrite_plots`] redraws the SVGs
//! from the folder alone.

mod folder;
mod hgrm;
mod model;
mod plot;
#[cfg(test)]
pub(crate) mod sample_run;
mod summary;
mod table;
mod timeline;
mod utc;

pub use folder::{results_dir, rewrite_plots, write_results};
pub use model::{
    AcknowledgedCheck, ConsensusStats, ExecutorStats, ExpectationOutcome, FaultSpan, LatencyStats,
    LivenessObserved, Machine, Phase, PhaseKind, Recovery, ReplicaSummary, RunSummary,
    SafetyVerdict, ScenarioRecord, Throughput, TimelineRow,
};
pub use summary::{git_revision, now_rfc3339};
pub use table::render_table;

/// The run's figures, pretty JSON ([`RunSummary`]).
pub const SUMMARY_JSON: &str = "summary.json";
/// One line per interval ([`TimelineRow`]).
pub const TIMELINE_CSV: &str = "timeline.csv";
/// The latency histogram as a percentile distribution, in milliseconds.
pub const LATENCY_HGRM: &str = "latency.hgrm";
/// Completed and committed tx/s over time.
pub const THROUGHPUT_SVG: &str = "throughput.svg";
/// p50 and p99 latency over time.
pub const LATENCY_SVG: &str = "latency.svg";
