//! Tandem's testbed (`tandem-experiments`): everything around the replicas that makes a
//! run an experiment. The `tandem` command is a thin shell over this crate.
//!
//! - [`cluster`]: the cluster file and key files; [`cluster_params`]: the parameters a
//!   cluster file is generated from; [`replica_address`]: IPs or host names.
//! - [`frames`]: the frames clients and replicas exchange; [`payload`]: the ledger's
//!   request payload; [`metrics`]: the metrics line replicas write.
//! - [`load`]: the load client and its statistics; [`acknowledged`]: what clients
//!   acknowledged and the check that no replica lost any of it.
//! - [`runner`]: a cluster on this machine under load, its process backend, faults,
//!   progress and saturation sweeps; [`aggregate`]: what a run recorded → summary and
//!   timeline.
//! - [`compare`]: `tandem compare`, a matrix of settings run cell by cell,
//!   interleaved, with its table, CSV and bar charts.
//! - [`scenario`]: scenario files (cluster, workload, load, timed faults,
//!   expectations), the fault vocabulary and targets.
//! - [`scenario_sim`]: a scenario in the deterministic simulator over many seeds.
//! - [`report`]: the results folder, the summary table and the plots.
//! - [`deploy`]: beyond one machine: the container image, Docker and Compose.
//!
//! Dependencies: `tandem-consensus`, `tandem-network`, `tandem-executor`; none of them
//! depends on this crate.

pub mod acknowledged;
pub mod aggregate;
pub mod cluster;
pub mod cluster_params;
pub mod compare;
pub mod cpu_budget;
pub mod deploy;
pub mod frames;
pub mod load;
pub mod metrics;
pub mod payload;
pub mod protocol_section;
pub mod replica_address;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scenario_sim;
