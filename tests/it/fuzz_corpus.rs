//! The fuzz corpus, replayed on stable: no input makes the manifest loader or `validate` panic.
//!
//! cargo-fuzz needs nightly, which CI does not have, so `fuzz/corpus/manifest/` (every invalid
//! fixture, the LMS manifests, generated edge cases and whatever fuzzing finds) is committed and
//! run here through the fuzz target's entry point in-process, and through the real binary's
//! `validate`, which reads raw bytes (invalid UTF-8 included) and checks parity too.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::Command;

use crate::support::root;

fn corpus() -> Vec<PathBuf> {
    let dir = root().join("fuzz/corpus/manifest");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn the_corpus_holds_every_invalid_fixture_and_both_lms_manifests() {
    let names: Vec<String> = corpus()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    let fixtures = std::fs::read_dir(root().join("tests/fixtures/invalid")).expect("fixtures");
    for fixture in fixtures {
        let name = fixture.expect("fixture").file_name();
        let name = name.to_string_lossy();
        assert!(
            names.iter().any(|n| *n == name),
            "{name} is not in the corpus"
        );
    }
    for lms in ["lms-staging.yaml", "lms-production.yaml"] {
        assert!(names.iter().any(|n| n == lms), "{lms} is not in the corpus");
    }
}

#[test]
fn no_corpus_input_makes_the_manifest_parser_panic() {
    let mut panicked = Vec::new();
    for path in corpus() {
        let bytes = std::fs::read(&path).expect("corpus file");
        let text = String::from_utf8_lossy(&bytes);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _ = lmsinfra::manifest::parse_valid("fuzz.yaml", "staging", &text);
        }));
        if outcome.is_err() {
            panicked.push(path.display().to_string());
        }
    }
    assert!(panicked.is_empty(), "parse_valid panicked on {panicked:?}");
}

#[test]
fn no_corpus_input_makes_validate_panic() {
    let lms = std::fs::read(root().join("environments/production.yaml")).expect("production");
    for path in corpus() {
        let project = tempfile::tempdir().expect("temp dir");
        let environments = project.path().join("environments");
        std::fs::create_dir(&environments).expect("environments");
        std::fs::copy(&path, environments.join("staging.yaml")).expect("copy");
        std::fs::write(environments.join("production.yaml"), &lms).expect("production");
        let output = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
            .args(["--color", "never", "--dir"])
            .arg(project.path())
            .args(["validate", "--format", "json"])
            .output()
            .expect("lmsinfra runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            matches!(output.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
            "validate of {} ended with {:?}:\n{stderr}",
            path.display(),
            output.status
        );
    }
}
