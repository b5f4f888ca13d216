//! Manifests as they were at a git revision, for `lmsinfra diff --base REV`.
//!
//! Read with `git show`, so nothing is checked out and the work tree is untouched.

use std::path::Path;
use std::process::Command;

use super::{Manifest, parse_valid};
use crate::error::Error;

/// The manifest of `env` at `revision`, or `None` when the file did not exist there.
pub fn load_at_revision(dir: &Path, revision: &str, env: &str) -> Result<Option<Manifest>, Error> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .map_err(|source| Error::Git {
                revision: revision.to_owned(),
                reason: format!("could not run git: {source}"),
            })
    };
    let commit = format!("{revision}^{{commit}}");
    let verified = git(&["rev-parse", "--verify", "--quiet", &commit])?;
    if !verified.status.success() {
        return Err(Error::Git {
            revision: revision.to_owned(),
            reason: "not a commit in this repository".to_owned(),
        });
    }
    let spec = format!("{revision}:./environments/{env}.yaml");
    let exists = git(&["cat-file", "-e", &spec])?;
    if !exists.status.success() {
        return Ok(None);
    }
    let shown = git(&["show", &spec])?;
    if !shown.status.success() {
        return Err(Error::Git {
            revision: revision.to_owned(),
            reason: String::from_utf8_lossy(&shown.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8(shown.stdout).map_err(|_| Error::Git {
        revision: revision.to_owned(),
        reason: format!("environments/{env}.yaml is not UTF-8 there"),
    })?;
    let label = format!("{revision}:environments/{env}.yaml");
    parse_valid(&label, env, &text).map(Some)
}
