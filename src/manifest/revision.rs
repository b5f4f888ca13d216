//! Manifests as they were at a git revision, for `lmsinfra diff --base REV`.
//!
//! Read with `git show`, so nothing is checked out and the work tree is untouched.

use std::path::Path;
use std::process::Command;

use super::{Error, Manifest, parse_valid};

/// The manifest of `env` at `revision`, or `None` when the file did not exist there.
pub fn load_at_revision(dir: &Path, revision: &str, env: &str) -> Result<Option<Manifest>, Error> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .map_err(|source| Error::GitRun {
                revision: revision.to_owned(),
                source,
            })
    };
    let commit = format!("{revision}^{{commit}}");
    let verified = git(&["rev-parse", "--verify", "--quiet", &commit])?;
    if !verified.status.success() {
        return Err(Error::RevisionUnknown {
            revision: revision.to_owned(),
        });
    }
    let spec = format!("{revision}:./environments/{env}.yaml");
    let exists = git(&["cat-file", "-e", &spec])?;
    if !exists.status.success() {
        return Ok(None);
    }
    let shown = git(&["show", &spec])?;
    if !shown.status.success() {
        return Err(Error::GitShowFailed {
            revision: revision.to_owned(),
            message: String::from_utf8_lossy(&shown.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8(shown.stdout).map_err(|source| Error::RevisionNotUtf8 {
        revision: revision.to_owned(),
        file: format!("environments/{env}.yaml"),
        source,
    })?;
    let label = format!("{revision}:environments/{env}.yaml");
    parse_valid(&label, env, &text).map(Some)
}
