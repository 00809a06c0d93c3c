//! tandem-consensus: BFT protocols as pure, deterministic state machines.
