//! Saved plans (`plan --out FILE`, `apply --plan FILE`).
//!
//! A saved plan is the JSON plan, which carries what it was computed from: a hash of the
//! manifest (its meaning, not its bytes, so a comment edit does not make a plan stale) and the
//! live fingerprint. `apply --plan` gathers again and refuses when either moved. Secret values
//! never enter a plan, so a saved plan is safe to keep as a CI artifact.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{FORMAT_VERSION, Plan};
use crate::error::Error;
use crate::manifest::model::Manifest;

/// SHA-256 of the manifest's canonical JSON form, hex.
pub fn manifest_hash(manifest: &Manifest) -> String {
    let canonical = serde_json::to_vec(manifest).expect("a manifest always serializes");
    hex::encode(Sha256::digest(canonical))
}

/// Read a plan written by `plan --out`.
pub fn read_saved(path: &Path) -> Result<Plan, Error> {
    let text = crate::manifest::read_text(
        path,
        &crate::manifest::SAVED_PLAN,
        crate::manifest::Accept::Regular,
    )
    .map_err(|source| Error::FileRead {
        path: path.to_owned(),
        source,
    })?;
    let plan: Plan = serde_json::from_str(&text).map_err(|source| Error::SavedPlan {
        path: path.to_owned(),
        reason: source.to_string(),
    })?;
    if plan.format_version != FORMAT_VERSION {
        return Err(Error::SavedPlan {
            path: path.to_owned(),
            reason: format!(
                "format_version {} is not {FORMAT_VERSION}, the version this lmsinfra writes",
                plan.format_version
            ),
        });
    }
    Ok(plan)
}
