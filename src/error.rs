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
    /// Blocked: a plan with blockers (missing secrets, a protected resource), a failed check.
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

/// Everything that can make a command fail: exit 3 for a refusal, 1 for the rest.
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
    /// The answer to the confirmation prompt could not be read.
    #[error("could not read the answer from the terminal")]
    Answer {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Data could not be written to stdout (a closed pipe is not an error).
    #[error("could not write to stdout")]
    Stdout {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// apply was asked to carry out a plan with blockers; the plan above names them.
    #[error("apply refused before any change: {blockers} blocker{} above", if *blockers == 1 { "" } else { "s" })]
    PlanBlocked {
        /// How many blockers the plan has.
        blockers: usize,
    },
    /// `apply --plan FILE` was given a plan that no longer says what apply would do.
    #[error("the plan in {} is stale: {stale}", path.display())]
    #[diagnostic(help("run `lmsinfra plan {environment} --out FILE` again and review it"))]
    PlanStale {
        /// The saved plan.
        path: PathBuf,
        /// The environment being applied.
        environment: String,
        /// What moved since the plan was made.
        stale: crate::plan::Stale,
    },
    /// The answer at the confirmation prompt was not `yes`.
    #[error("apply cancelled; nothing was changed")]
    ApplyCancelled,
    /// apply's steps failed, or did not make the account equal to the manifest.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Apply(#[from] crate::apply::Error),
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
    /// The sandbox could not start (address, runtime, thread).
    #[error("could not start the sandbox: {reason}")]
    SandboxStart {
        /// Why.
        reason: String,
    },
    /// A wrangler configuration could not be imported, written or compared.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Wrangler(#[from] crate::wrangler::Error),
    /// A sandbox state or seed file does not describe a valid account.
    #[error("{} is not a valid sandbox account file: {reason}", path.display())]
    #[diagnostic(help(
        "the seed format is the state format; see examples/sandbox/audited-account.json"
    ))]
    SandboxState {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the JSON path.
        reason: String,
    },
}

impl Error {
    /// The process exit code: 3 when apply refused a plan (as `plan` exits on a blocked plan),
    /// 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::PlanBlocked { .. } | Self::PlanStale { .. } => Outcome::Blocked.code(),
            _ => 1,
        }
    }
}
