//! Any bytes through the manifest loader and validator: a diagnostic or a manifest, never a
//! panic. Run with `cargo +nightly fuzz run manifest fuzz/corpus/manifest`; `cargo test`
//! replays the committed corpus on stable (tests/it/fuzz_corpus.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = lmsinfra::manifest::parse_valid("fuzz.yaml", "staging", &text);
});
