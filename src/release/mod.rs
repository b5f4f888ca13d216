//! What lmsinfra writes on the Worker versions and deployments it makes, and reads back.
//!
//! A Worker's version history is what `releases` shows and what `rollback` chooses from, so
//! every version lmsinfra makes says which command made it, for which environment, from which
//! git revision of the manifests and (for apply) which plan: `workers/message` carries all of
//! it, `workers/tag` the short git sha alone. The revision is read once per command with `git`;
//! manifests outside a repository, or a machine without git, say so in the message rather than
//! fail, since the write itself does not depend on it.

pub mod history;
pub mod rollback;

use std::path::Path;
use std::process::Command;

use crate::cloudflare::Annotations;

/// The start of `workers/message` on a deployment `lmsinfra rollback` made.
pub const ROLLBACK_PREFIX: &str = crate::plan::ROLLBACK_MESSAGE;

/// What follows an apply's message on a version that set secrets: their names, never values.
const SECRETS_SET: &str = "; secrets set: ";

/// Which git revision the manifests are at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    /// A commit, with whether the work tree differs from it.
    Commit {
        /// The short sha.
        sha: String,
        /// Whether the work tree has changes the commit does not.
        dirty: bool,
    },
    /// No revision could be read, and why (not a repository, no git).
    Unknown {
        /// Why, in a few words.
        reason: String,
    },
}

impl Revision {
    /// The revision of the repository holding `dir`.
    pub fn of(dir: &Path) -> Self {
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
        };
        let head = match git(&["rev-parse", "--short", "--verify", "--quiet", "HEAD"]) {
            Ok(out) if out.status.success() => {
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
            Ok(_) => {
                return Self::Unknown {
                    reason: "not a git repository with a commit".to_owned(),
                };
            }
            Err(_) => {
                return Self::Unknown {
                    reason: "git is not installed".to_owned(),
                };
            }
        };
        let dirty = git(&["status", "--porcelain", "--", "."])
            .map(|out| !out.status.success() || !out.stdout.is_empty())
            .unwrap_or(true);
        Self::Commit { sha: head, dirty }
    }

    /// `workers/tag`: the short sha, `-dirty` when the tree differs; `None` without one.
    pub fn tag(&self) -> Option<String> {
        match self {
            Self::Commit { sha, dirty: false } => Some(sha.clone()),
            Self::Commit { sha, dirty: true } => Some(format!("{sha}-dirty")),
            Self::Unknown { .. } => None,
        }
    }
}

/// The short sha (`-dirty` when the tree differs), or `no-git`.
impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag().as_deref().unwrap_or("no-git"))
    }
}

/// The annotations of a version `lmsinfra apply ENVIRONMENT` makes from the plan whose digest
/// is `plan_digest`. The message starts with what fits a deployment's 50 characters (command,
/// environment, revision, plan), and says why there is no revision after that.
pub fn apply_annotations(environment: &str, revision: &Revision, plan_digest: &str) -> Annotations {
    let why = match revision {
        Revision::Unknown { reason } => format!("; no git revision: {reason}"),
        Revision::Commit { .. } => String::new(),
    };
    Annotations {
        message: Some(format!(
            "lmsinfra apply {environment} {revision} plan {plan_digest}{why}"
        )),
        tag: revision.tag(),
        triggered_by: None,
    }
}

/// The annotations of a deployment `lmsinfra rollback ENVIRONMENT` makes of `version`: the
/// start of the version's id, so the message fits a deployment's 50 characters.
pub fn rollback_annotations(environment: &str, version: &str) -> Annotations {
    let short: String = version.chars().take(8).collect();
    Annotations {
        message: Some(format!("{ROLLBACK_PREFIX} {environment} to {short}")),
        tag: None,
        triggered_by: None,
    }
}

/// `annotations` for a version that also sets the secrets `names`: the message names them, so
/// a later rollback across that version knows which secrets it would revert.
pub fn naming_secrets(annotations: &Annotations, names: &[String]) -> Annotations {
    let mut named = annotations.clone();
    if !names.is_empty() {
        let message = named.message.take().unwrap_or_default();
        named.message = Some(format!("{message}{SECRETS_SET}{}", names.join(", ")));
    }
    named
}

/// The secrets a version's `workers/message` says it set (`None`: it does not say).
pub fn secrets_set(message: Option<&str>) -> Option<Vec<String>> {
    let (_, names) = message?.split_once(SECRETS_SET)?;
    Some(names.split(", ").map(str::to_owned).collect())
}

/// Whether a `workers/message` is one `lmsinfra rollback` wrote.
pub fn is_rollback(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.starts_with(ROLLBACK_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_outside_any_repository_has_no_revision_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let revision = Revision::of(dir.path());
        assert!(matches!(revision, Revision::Unknown { .. }), "{revision:?}");
        assert_eq!(revision.tag(), None);
        let annotations = apply_annotations("staging", &revision, "5d6e7f80");
        let message = annotations.message.unwrap();
        assert!(
            message.starts_with("lmsinfra apply staging no-git plan 5d6e7f80; no git revision: "),
            "{message}"
        );
    }

    #[test]
    fn a_commit_is_tagged_with_its_short_sha_and_dirty_when_the_tree_differs() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .output()
                .unwrap();
            assert!(status.status.success(), "{status:?}");
            String::from_utf8(status.stdout).unwrap()
        };
        git(&["init", "-q"]);
        std::fs::write(dir.path().join("staging.yaml"), "a").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "one"]);
        let sha = git(&["rev-parse", "--short", "HEAD"]).trim().to_owned();
        let clean = Revision::of(dir.path());
        assert_eq!(clean.tag(), Some(sha.clone()));
        std::fs::write(dir.path().join("staging.yaml"), "b").unwrap();
        let dirty = Revision::of(dir.path());
        assert_eq!(dirty.tag(), Some(format!("{sha}-dirty")));
        let applied = apply_annotations("production", &dirty, "5d6e7f80").message;
        assert_eq!(
            applied,
            Some(format!(
                "lmsinfra apply production {sha}-dirty plan 5d6e7f80"
            ))
        );
        let message = rollback_annotations("production", "9ca84e35-28fe-4d02").message;
        assert_eq!(
            message.as_deref(),
            Some("lmsinfra rollback production to 9ca84e35")
        );
        assert!(is_rollback(message.as_deref()));
        let named = naming_secrets(
            &apply_annotations("staging", &dirty, "5d6e7f80"),
            &["A".to_owned(), "B".to_owned()],
        );
        assert_eq!(
            secrets_set(named.message.as_deref()),
            Some(vec!["A".to_owned(), "B".to_owned()])
        );
        assert_eq!(named.tag, Some(format!("{sha}-dirty")));
        assert!(!is_rollback(Some("lmsinfra apply production")));
    }
}
