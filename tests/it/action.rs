//! The GitHub Action's install script (`scripts/install.sh`) run by bash against a local
//! directory laid out like a release: it installs the binary for this machine after checking
//! its checksum, refuses a binary whose checksum does not match, and says "no release" (exit 3,
//! so the action builds from source) for a version or platform it cannot find.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::{Run, root};

const VERSION: &str = "v9.8.7";

/// Every target the release workflow builds. Each asset holds the same stand-in `lmsinfra`, a
/// shell script that prints a version (a real binary is tens of megabytes to pack), so
/// whichever the script picks for this machine runs.
const TARGETS: [&str; 4] = [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
];

/// A release directory: `VERSION/lmsinfra-VERSION-TARGET.tar.gz` and its `.sha256`, the
/// checksum replaced by `checksum` when given.
fn release(dir: &Path, checksum: Option<&str>) -> PathBuf {
    let base = dir.join("releases");
    let tag = base.join(VERSION);
    let staging = dir.join("staging");
    std::fs::create_dir_all(&tag).expect("release dir");
    std::fs::create_dir_all(&staging).expect("staging dir");
    std::fs::write(
        staging.join("lmsinfra"),
        "#!/bin/sh\necho \"lmsinfra 9.8.7 (stand-in)\"\n",
    )
    .expect("stand-in binary");
    let packed = dir.join("packed.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&packed)
        .arg("-C")
        .arg(&staging)
        .arg("lmsinfra")
        .status()
        .expect("tar runs");
    assert!(status.success());
    for target in TARGETS {
        let asset = format!("lmsinfra-{VERSION}-{target}.tar.gz");
        std::fs::copy(&packed, tag.join(&asset)).expect("asset");
        let bytes = std::fs::read(tag.join(&asset)).expect("asset");
        let sum = checksum.map_or_else(|| hex::encode(Sha256::digest(&bytes)), str::to_owned);
        std::fs::write(
            tag.join(format!("{asset}.sha256")),
            format!("{sum}  {asset}\n"),
        )
        .expect("checksum");
    }
    base
}

fn install(base: &Path, version: &str, dir: &Path) -> Run {
    Command::new("bash")
        .arg(root().join("scripts/install.sh"))
        .env("LMSINFRA_VERSION", version)
        .env("LMSINFRA_RELEASE_BASE", base)
        .env("LMSINFRA_INSTALL_DIR", dir.join("bin"))
        .env("GITHUB_PATH", dir.join("github_path"))
        .output()
        .expect("bash runs")
        .into()
}

#[test]
fn a_release_is_installed_once_its_checksum_matches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = release(dir.path(), None);
    let run = install(&base, VERSION, dir.path());
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.is_empty(), "{run}");
    let installed = dir.path().join("bin/lmsinfra");
    let version = Command::new(&installed)
        .arg("--version")
        .output()
        .expect("the installed binary runs");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        "lmsinfra 9.8.7 (stand-in)\n"
    );
    let path = std::fs::read_to_string(dir.path().join("github_path")).expect("GITHUB_PATH");
    assert_eq!(path.trim_end(), dir.path().join("bin").to_string_lossy());
}

#[test]
fn a_binary_whose_checksum_does_not_match_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = release(dir.path(), Some(&"0".repeat(64)));
    let run = install(&base, VERSION, dir.path());
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("the checksum of lmsinfra-"), "{run}");
    assert!(run.stderr.contains("not installed"), "{run}");
    assert!(!dir.path().join("bin/lmsinfra").exists());
    assert!(!dir.path().join("github_path").exists());
}

#[test]
fn a_missing_release_or_a_branch_asks_for_a_build_from_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = release(dir.path(), None);
    for version in ["v1.0.0", "main", ""] {
        let run = install(&base, version, dir.path());
        assert_eq!(run.code, 3, "{version}: {run}");
        assert!(!dir.path().join("bin/lmsinfra").exists(), "{version}");
    }
}
