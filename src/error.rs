//! The errors lmsinfra reports, and the outcomes that map to exit codes.

use std::path::PathBuf;

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for `plan`, nothing to change.
    Success,
    /// `plan --detailed-exitcode` found changes.
    Changes,
    /// Blocked: a plan with blockers (missing secrets, a protected resource), a failed check.
    Blocked,
    /// A smoke check failed; with `on_failure: rollback`, apply rolled the change back.
    SmokeFailed,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Changes => 2,
            Self::Blocked => 3,
            Self::SmokeFailed => 4,
        }
    }
}

/// A command line clap could not parse, shown like every other error.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(help("{help}"))]
pub(crate) struct UsageError {
    /// What clap said is wrong, without its `error:` prefix.
    pub(crate) message: String,
    /// The usage, clap's tip and any note.
    pub(crate) help: String,
}

/// Everything that can make a command fail: exit 3 for a refusal, 1 for the rest.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
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
    /// A command that writes was run without a terminal to confirm on and without
    /// `--auto-approve`.
    #[error("{command} needs approval, and there is no terminal to ask on")]
    #[diagnostic(help(
        "run it with --auto-approve (as CI does), or --dry-run to see what it would do"
    ))]
    ApprovalNeededFor {
        /// The command.
        command: &'static str,
    },
    /// Ctrl-C or SIGTERM stopped a command between two of its writes.
    #[error("{command} interrupted after {done}; not started: {rest}")]
    #[diagnostic(help("{finish}"))]
    Interrupted {
        /// The command.
        command: &'static str,
        /// What was done.
        done: String,
        /// What was not started.
        rest: String,
        /// How to finish the job.
        finish: String,
    },
    /// `--worker KEY` names no Worker of the manifest.
    #[error("{environment} has no Worker {key} (its Workers: {known})")]
    WorkerUnknown {
        /// The key given.
        key: String,
        /// The environment.
        environment: String,
        /// The keys it has.
        known: String,
    },
    /// A command that acts on one Worker was not told which.
    #[error(
        "{environment} has several Workers ({known}); name one with --worker KEY, or use --all"
    )]
    WorkerNeeded {
        /// The environment.
        environment: String,
        /// The keys it has.
        known: String,
    },
    /// A rollback did not happen.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rollback(#[from] crate::release::rollback::Error),
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
    /// `graph --plan FILE` was given another environment's plan.
    #[error("{} is a plan of {planned}, not of {environment}", path.display())]
    #[diagnostic(help("run `lmsinfra plan {environment} --out FILE` and draw that plan"))]
    GraphPlanEnvironment {
        /// The saved plan.
        path: PathBuf,
        /// The environment the plan is of.
        planned: String,
        /// The environment drawn.
        environment: String,
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
    /// A `migrate` command refused before any write.
    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    MigrateRefused {
        /// Why.
        message: String,
        /// What to do instead.
        help: String,
    },
    /// A migrations directory could not be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Migrations(#[from] crate::migrations::ReadError),
    /// A Cloudflare API call failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cloudflare(#[from] crate::cloudflare::Error),
    /// The sandbox could not start, or this build has none.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sandbox(#[from] crate::sandbox::Error),
    /// `verify --worker` named a Worker the manifest lacks, or one without smoke checks.
    #[error("{environment} has no smoke checks for Worker `{key}`")]
    #[diagnostic(help(
        "smoke checks are declared under `workers.KEY.smoke`; Workers with them: {with}"
    ))]
    NoSmokeChecks {
        /// The environment.
        environment: String,
        /// The key given.
        key: String,
        /// The keys of the Workers that have smoke checks.
        with: String,
    },
    /// `verify --version` named a version no serving deployment has.
    #[error("version {version} is in no serving deployment: {serving}")]
    #[diagnostic(help(
        "Cloudflare answers with a version through the override header only when the serving deployment has it (at any percentage)"
    ))]
    VersionNotDeployed {
        /// The version asked for.
        version: String,
        /// What each Worker's deployment serves.
        serving: String,
    },
    /// A backup, restore or restore drill refused or failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Backup(#[from] crate::backup::Error),
    /// `rotate` cannot start, or left something to clean up.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rotate(#[from] crate::rotation::RotateError),
    /// A wrangler configuration could not be imported, written or compared.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Wrangler(#[from] crate::wrangler::Error),
}

impl Error {
    /// The diagnostics of an invalid manifest, taken out of the error so they can be printed
    /// before it: its summary ends with "fix the problems above", so it must come last.
    pub fn take_problems(&mut self) -> Vec<crate::manifest::Diagnostic> {
        match self {
            Self::Manifest(crate::manifest::Error::ManifestInvalid { diagnostics, .. }) => {
                std::mem::take(diagnostics)
            }
            _ => Vec::new(),
        }
    }

    /// The process exit code: 3 when apply refused a plan (as `plan` exits on a blocked plan),
    /// 130 after an interrupt, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::PlanBlocked { .. } | Self::PlanStale { .. } | Self::MigrateRefused { .. } => {
                Outcome::Blocked.code()
            }
            Self::Rollback(err) if err.is_refusal() => Outcome::Blocked.code(),
            Self::Backup(err) => err.exit_code(),
            Self::Apply(crate::apply::Error::Interrupted { .. }) | Self::Interrupted { .. } => {
                crate::interrupt::EXIT_CODE
            }
            _ => 1,
        }
    }
}
