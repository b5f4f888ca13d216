//! The mutable heart of the sandbox: the account state, the open D1 files, and where to save.

use std::path::PathBuf;

use axum::http::StatusCode;

use super::d1::Files;
use super::envelope::ApiError;
use super::lifecycle::Lifecycle;
use super::state::State;
use super::variants::Variants;
use super::zones::Interleave;

/// Everything a handler may read or change, behind one lock.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) state: State,
    pub(crate) d1: Files,
    pub(crate) state_path: Option<PathBuf>,
    /// The pending concurrent write, with how many reads of its phase were answered so far.
    pub(crate) interleave: Option<(Interleave, u64)>,
    /// The variant of each unsettled behaviour this sandbox plays.
    pub(crate) variants: Variants,
    /// Time Travel, exports, imports, R2 and the clock.
    pub(crate) lifecycle: Lifecycle,
}

impl World {
    /// Save the state file after a change; a failure to save is the sandbox's fault (500).
    pub(crate) fn save(&self) -> Result<(), ApiError> {
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        self.state.save(path).map_err(|e| {
            tracing::error!("could not save sandbox state to {}: {e}", path.display());
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                10002,
                "Internal error: the sandbox could not save its state",
            )
        })
    }
}
