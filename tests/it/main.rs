//! Integration tests: the real binary and the real HTTP client against an in-process sandbox.
//! One test binary with a module per area keeps link time down.

mod apply;
mod check;
mod client;
mod convergence;
mod crash;
mod d1_lifecycle;
mod fidelity;
mod first_contact;
mod fuzz_corpus;
mod gather;
mod hostile;
mod inputs;
mod load;
mod plan;
mod probe;
mod proxy;
mod races;
mod rulesets;
mod safe_apply;
mod sandbox;
mod sandbox_hardening;
mod schema;
mod security;
mod support;
mod traffic;
mod validate;
mod workflow;
mod wrangler;
