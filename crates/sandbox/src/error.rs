//! Why a sandbox could not start: its own errors, so the emulator depends on nothing of lmsinfra.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can keep a sandbox from starting.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// The address to listen on is not a loopback address.
    #[error(
        "could not start the sandbox: {addr} is not a loopback address; the sandbox only listens on 127.0.0.1 or ::1"
    )]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be listened on.
    #[error("could not start the sandbox: could not listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The listener, runtime or thread could not be set up.
    #[error("could not start the sandbox")]
    Start {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A state or seed file could not be read.
    #[error("could not read {}", path.display())]
    StateRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file (or its folder) could not be written.
    #[error("could not write {}", path.display())]
    StateWrite {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another sandbox holds the state file.
    #[error(
        "another sandbox is using the state file {} (it holds the lock on {})",
        state.display(),
        lock.display()
    )]
    #[diagnostic(help("stop it, or give this sandbox another state file"))]
    StateLocked {
        /// The state file.
        state: PathBuf,
        /// The lock file beside it.
        lock: PathBuf,
    },
    /// A state or seed file does not describe a valid account.
    #[error("{} is not a valid sandbox account file", path.display())]
    #[diagnostic(help(
        "the seed format is the state format; see examples/sandbox/audited-account.json"
    ))]
    StateInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: crate::state::InvalidAccount,
    },
}
