//! Saved plans (`plan --out FILE`, `apply --plan FILE`).
//!
//! A saved plan is the JSON plan, which carries what it was computed from: a hash of the
//! manifest (its meaning, not its bytes, so a comment edit does not make a plan stale) and the
//! live fingerprint. `apply --plan` gathers again and refuses when either moved. Secret values
//! never enter a plan, so a saved plan is safe to keep as a CI artifact.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{FORMAT_VERSION, Plan};
use crate::manifest::model::Manifest;

/// Why a saved plan cannot be applied.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SavedPlanError {
    /// The file could not be read.
    #[error("could not read {}", path.display())]
    FileRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a plan.
    #[error("{} is not a plan lmsinfra can apply", path.display())]
    #[diagnostic(help("make a new one with `lmsinfra plan ENV --out FILE`"))]
    PlanUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The plan was written in another format version.
    #[error(
        "{} is not a plan lmsinfra can apply: format_version {found} is not {FORMAT_VERSION}, the version this lmsinfra writes",
        path.display()
    )]
    #[diagnostic(help("make a new one with `lmsinfra plan ENV --out FILE`"))]
    FormatVersionUnknown {
        /// The file.
        path: PathBuf,
        /// The version the file declares.
        found: String,
    },
}

/// SHA-256 of the manifest's canonical JSON form, hex.
pub fn manifest_hash(manifest: &Manifest) -> String {
    let canonical = serde_json::to_vec(manifest).expect("a manifest always serializes");
    hex::encode(Sha256::digest(canonical))
}

/// Read a plan written by `plan --out`.
pub fn read_saved(path: &Path) -> Result<Plan, SavedPlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::FileRead {
        path: path.to_owned(),
        source,
    })?;
    let plan: Plan =
        serde_json::from_str(&text).map_err(|source| SavedPlanError::PlanUnreadable {
            path: path.to_owned(),
            source,
        })?;
    if plan.format_version != FORMAT_VERSION {
        return Err(SavedPlanError::FormatVersionUnknown {
            path: path.to_owned(),
            found: plan.format_version,
        });
    }
    Ok(plan)
}
