//! Tandem's testbed (`tandem-experiments`): everything around the replicas that makes a
//! run an experiment. The cluster file and key files, the request and reply frames
//! clients and replicas exchange, the request payload, the metrics line replicas write;
//! the runner that starts a cluster (its process backend), injects faults and drives
//! load clients; aggregation of what they recorded; and the results folder with its
//! summary table and plots. The `tandem` command is a thin shell over this crate.

pub mod aggregate;
pub mod cluster;
pub mod cluster_params;
pub mod frames;
pub mod load;
pub mod metrics;
pub mod payload;
pub mod report;
pub mod runner;
