//! Saved plans (`plan --out FILE`, `apply --plan FILE`).
//!
//! A saved plan is the JSON plan, which carries what it was computed from: a hash of the
//! manifest (its meaning, not its bytes, so a comment edit does not make a plan stale) and the
//! live fingerprint, and the account as it was read. `apply --plan` refuses when the manifest
//! moved, or when the changes the file lists are not the ones it would make now, so what runs
//! is what was reviewed. For the account, when the plan creates, changes and migrates but deletes
//! no database and writes no zone rules, apply takes the file's read and checks it with a few
//! reads (the newest version and deployment of each Worker it writes, the D1 list, the
//! migration ledgers: [`crate::live::changed_since`]) before its first write; otherwise it
//! gathers again and compares fingerprints. Secret values never enter a plan, so a saved plan is
//! safe to keep as a CI artifact.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Action, Address, FORMAT_VERSION, Plan};
use crate::live::Live;
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
    let text = crate::manifest::read_text(
        path,
        &crate::manifest::SAVED_PLAN,
        crate::manifest::Accept::Regular,
    )
    .map_err(|source| SavedPlanError::FileRead {
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

/// `plan` as `plan --out` saves it: with the account as it was read, probes left out (they are
/// not state apply changes).
pub fn with_read(plan: &Plan, live: &Live) -> Plan {
    let read = Live {
        probes: Default::default(),
        ..live.clone()
    };
    Plan {
        read: Some(serde_json::to_value(read).expect("a live state always serializes")),
        ..plan.clone()
    }
}

/// The account as a saved plan read it, when the file carries a read this lmsinfra can use.
pub fn saved_read(plan: &Plan) -> Option<Live> {
    serde_json::from_value(plan.read.clone()?).ok()
}

/// Why a saved plan no longer says what apply would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// It is a plan of another environment, the one named.
    Environment(String),
    /// The manifest's meaning changed since the plan was made.
    Manifest,
    /// The live account changed since the plan was made.
    Live,
    /// The changes in the file are not the ones apply would make now (the file was edited).
    Changes,
    /// Something the plan writes moved on the account since the plan read it (what, in words).
    Moved(String),
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Environment(environment) => write!(f, "it is a plan of {environment}"),
            Self::Manifest => f.write_str("the manifest changed since"),
            Self::Live => f.write_str("the live account changed since"),
            Self::Changes => {
                f.write_str("the changes it lists differ from the ones apply would make now")
            }
            Self::Moved(what) => f.write_str(what),
        }
    }
}

/// What a reviewer of a plan saw of each change: where, what, and the value after apply.
fn reviewed(plan: &Plan) -> impl Iterator<Item = (&Address, Action, Option<&serde_json::Value>)> {
    plan.changes
        .iter()
        .map(|c| (&c.address, c.action, c.after.as_ref()))
}

/// Whether `saved` is stale against `fresh`, the plan made now from the same environment.
pub fn stale(saved: &Plan, fresh: &Plan) -> Option<Stale> {
    if saved.environment != fresh.environment {
        Some(Stale::Environment(saved.environment.clone()))
    } else if saved.manifest_sha256 != fresh.manifest_sha256 {
        Some(Stale::Manifest)
    } else if saved.live_fingerprint != fresh.live_fingerprint {
        Some(Stale::Live)
    } else if reviewed(saved).ne(reviewed(fresh)) {
        Some(Stale::Changes)
    } else {
        None
    }
}
