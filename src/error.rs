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
    /// A subcommand whose implementation has not landed yet.
    #[error("`{0}` is not available in this build")]
    Unfinished(&'static str),
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
