//! Integration tests: the real binary and the real HTTP client against an in-process sandbox.
//! One test binary with a module per area keeps link time down.

mod client;
mod convergence;
mod crash;
mod fuzz_corpus;
mod gather;
mod load;
mod plan;
mod probe;
mod sandbox;
mod schema;
mod support;
mod validate;
mod wrangler;
