//! The errors lmsinfra reports, and the outcomes that map to exit codes.

use std::path::PathBuf;

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for `plan`, nothing to change.
    Success,
    /// `plan --detailed-exitcode` found changes.
    Changes,
    /// Blocked: missing secrets, a protected resource, a stale plan, a failed check.
    Blocked,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Changes => 2,
            Self::Blocked => 3,
        }
    }
}

/// Everything that can make a command fail (exit 1).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// A file could not be read.
    #[error("could not read {}", path.display())]
    FileRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("could not write {}", path.display())]
    FileWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// apply was run without a terminal to confirm on and without `--auto-approve`.
    #[error("apply needs approval, and there is no terminal to ask on")]
    #[diagnostic(help(
        "review the plan with `lmsinfra plan ENV`, then run apply with --auto-approve (as CI does)"
    ))]
    ApprovalNeeded,
    /// The answer at the confirmation prompt was not `yes`.
    #[error("apply cancelled; nothing was changed")]
    ApplyCancelled,
    /// A step failed; the ones before it were done, the ones after it not started.
    #[error(transparent)]
    #[diagnostic(transparent)]
    ApplyFailed(Box<ApplyFailure>),
    /// After apply, a fresh plan still had changes.
    #[error("apply did not converge: a fresh plan still changes {}", addresses.join(", "))]
    #[diagnostic(help(
        "something else changed the account while apply ran, or Cloudflare ignored part of a change; run `lmsinfra plan ENV` to see it"
    ))]
    NotConverged {
        /// What a fresh plan still changes or blocks on.
        addresses: Vec<String>,
    },
    /// The async runtime could not start.
    #[error("could not start the async runtime")]
    Runtime {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `validate` found errors; they were printed before this summary.
    #[error("{0}")]
    ValidationFailed(String),
    /// A `--secret` argument cannot be used. Never carries the value.
    #[error(transparent)]
    #[diagnostic(transparent)]
    SecretArgument(#[from] crate::apply::SecretError),
    /// A saved plan could not be used.
    #[error(transparent)]
    #[diagnostic(transparent)]
    SavedPlan(#[from] crate::plan::SavedPlanError),
    /// No valid manifest could be loaded.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] crate::manifest::Error),
    /// A Cloudflare API call failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cloudflare(#[from] crate::cloudflare::Error),
    /// The sandbox could not start, or this build has none.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sandbox(#[from] crate::sandbox::Error),
    /// A wrangler configuration could not be imported, written or compared.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Wrangler(#[from] crate::wrangler::Error),
}

/// Where an apply stopped: the steps done, the one that failed and why, the ones not started.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("apply stopped at {failed}: {} step{} done, {} not started", done.len(), if done.len() == 1 { "" } else { "s" }, not_started.len())]
#[diagnostic(help(
    "done: {}; not started: {}. Fix the cause and run apply again: it picks up where this stopped",
    if done.is_empty() { "none".to_owned() } else { done.join(", ") },
    if not_started.is_empty() { "none".to_owned() } else { not_started.join(", ") }
))]
pub struct ApplyFailure {
    /// Addresses of the steps done.
    pub done: Vec<String>,
    /// The address of the step that failed.
    pub failed: String,
    /// Addresses of the steps not started.
    pub not_started: Vec<String>,
    /// Why it failed.
    #[source]
    #[diagnostic_source]
    pub source: crate::apply::StepError,
}
