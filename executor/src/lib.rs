//! tandem-executor: the DeFi ledger, its transactions, executors and workloads.
//!
//! Being built under issue 4.
