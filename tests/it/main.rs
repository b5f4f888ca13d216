//! Integration tests: the real binary and the real HTTP client against an in-process sandbox.
//! One test binary with a module per area keeps link time down.

mod action;
mod apply;
mod backup;
mod capacity;
mod check;
mod client;
mod convergence;
mod crash;
mod d1_lifecycle;
mod fidelity;
mod fuzz_corpus;
mod gather;
mod graph;
mod hostile;
mod inputs;
mod load;
mod migrations;
mod plan;
mod probe;
mod proxy;
mod races;
mod releases;
mod rotation;
mod rulesets;
mod safe_apply;
mod sandbox;
mod sandbox_hardening;
mod schema;
mod security;
mod support;
mod traffic;
mod validate;
mod verify;
mod workflow;
mod wrangler;
