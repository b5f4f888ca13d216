//! The errors lmsinfra reports, and the outcomes that map to exit codes.

use std::path::PathBuf;

use crate::manifest::Diagnostic;

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
    /// A manifest could not be read at a git revision.
    #[error("could not read the manifests at `{revision}`: {reason}")]
    #[diagnostic(help(
        "name a commit, branch or tag of the repository that holds `environments/`, e.g. `--base origin/main`"
    ))]
    Git {
        /// The revision asked for.
        revision: String,
        /// Why.
        reason: String,
    },
    /// A `--secret` argument cannot be used. Never carries the value.
    #[error("--secret {name}: {reason}")]
    #[diagnostic(help(
        "give each required secret once, as NAME=env:VAR, NAME=file:PATH or NAME=stdin"
    ))]
    SecretArgument {
        /// The secret's name.
        name: String,
        /// What is wrong.
        reason: String,
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
    /// A saved plan could not be used.
    #[error("{} is not a plan lmsinfra can apply: {reason}", path.display())]
    #[diagnostic(help("make a new one with `lmsinfra plan ENV --out FILE`"))]
    SavedPlan {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The project has no environment manifests.
    #[error("no environment manifests in {}", dir.display())]
    #[diagnostic(help(
        "run lmsinfra from the project root, or pass `--dir` with the folder that holds `environments/`"
    ))]
    EnvironmentsMissing {
        /// The `environments` folder that was searched.
        dir: PathBuf,
    },
    /// An environment was named that has no manifest.
    #[error("there is no environment `{name}`: {} does not exist", path.display())]
    #[diagnostic(help("the environments are {available}"))]
    EnvironmentUnknown {
        /// The name given.
        name: String,
        /// Where its manifest would be.
        path: PathBuf,
        /// The environments that exist, as a list for the hint.
        available: String,
    },
    /// A manifest has errors; the related diagnostics say which.
    #[error("{file} is not a valid manifest ({summary})")]
    #[diagnostic(help("fix the problems above; `lmsinfra validate` checks every environment"))]
    ManifestInvalid {
        /// The file, as diagnostics name it.
        file: String,
        /// How many errors, e.g. "2 errors".
        summary: String,
        /// Every diagnostic of the file.
        #[related]
        diagnostics: Vec<Diagnostic>,
    },
    /// `validate` found errors; they were printed before this summary.
    #[error("{0}")]
    ValidationFailed(String),
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
