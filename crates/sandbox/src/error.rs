//! Why a sandbox could not start: its own errors, so the emulator depends on nothing of lmsinfra.

use std::path::PathBuf;

/// Everything that can keep a sandbox from starting.
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
