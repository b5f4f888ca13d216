//! Plans: what apply would change, in the order it would change it, and what forbids it.
//!
//! A plan is produced by [`diff`] (desired × live → plan), a pure function, or by [`intent`]
//! (manifest at a git revision × manifest in the work tree → plan) for reviews without
//! credentials. Renderers and `apply` only ever read a `Plan`.

pub(crate) mod diff;
pub(crate) mod edge;
mod intent;
mod saved;
#[cfg(test)]
pub(crate) mod tests;

pub use diff::{DiffOptions, diff};
pub use intent::intent;
pub use saved::{SavedPlanError, manifest_hash, read_saved};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the JSON plan format; bumped when a field changes meaning or goes away.
pub const FORMAT_VERSION: &str = "1";

/// Shown where a value will only exist once apply has run (a new database's id).
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// Shown in place of a secret's value. Values never enter a plan.
pub const SENSITIVE: &str = "(sensitive value)";

/// Everything `apply` would do to one environment, and what stops it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lmsinfra plan")]
pub struct Plan {
    /// The plan format's version (`"1"`).
    pub format_version: String,
    /// The environment planned.
    pub environment: String,
    /// The Cloudflare account planned.
    pub account_id: String,
    /// Changes in the order apply makes them, no-ops included.
    pub changes: Vec<Change>,
    /// Differences apply cannot remove (headers served by the Worker's code).
    pub drift: Vec<Drift>,
    /// Reasons apply must refuse.
    pub blockers: Vec<Blocker>,
    /// Things worth knowing that never block.
    pub warnings: Vec<Warning>,
    /// SHA-256 of the manifest's canonical JSON form: what `apply --plan` checks the manifest
    /// against.
    pub manifest_sha256: String,
    /// A digest of the live state read (empty for a plan between two manifests): what
    /// `apply --plan` checks the account against.
    pub live_fingerprint: String,
    /// For a plan between two manifests (`lmsinfra diff`), the git revision of the older one;
    /// `null` for a plan against the live account.
    pub base: Option<String>,
}

/// One address with what apply will do to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// What the change is to: `d1.main`, `worker.api.binding.DB`, `worker.api.secret.NAME`, …
    pub address: String,
    /// What apply will do.
    pub action: Action,
    /// The live value, when there is one.
    pub before: Option<serde_json::Value>,
    /// The value after apply, when there is one.
    pub after: Option<serde_json::Value>,
    /// Why this change is needed.
    pub reason: String,
}

impl Change {
    /// The resource this change belongs to: the first two segments of its address
    /// (`worker.api` for `worker.api.binding.DB`).
    pub fn resource(&self) -> &str {
        resource_of(&self.address)
    }
}

/// The resource part of an address.
pub fn resource_of(address: &str) -> &str {
    match address.match_indices('.').nth(1) {
        Some((at, _)) => &address[..at],
        None => address,
    }
}

/// What apply does at one address.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Checked; live already matches.
    NoOp,
    /// Made where nothing was.
    Create,
    /// Changed in place.
    Update,
    /// Removed and made again (a binding that changes type).
    Replace,
    /// Removed.
    Delete,
}

impl Action {
    /// Terraform's symbol for the action.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::NoOp => " ",
            Self::Create => "+",
            Self::Update => "~",
            Self::Replace => "-/+",
            Self::Delete => "-",
        }
    }
}

/// A live value that differs from the manifest and that apply cannot change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// `worker.api.headers.Strict-Transport-Security`.
    pub address: String,
    /// What the manifest requires.
    pub expected: String,
    /// What live has (`None`: missing).
    pub actual: Option<String>,
    /// Where it was seen and how to fix it.
    pub reason: String,
}

/// Something that forbids apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blocker {
    /// What it is about.
    pub address: String,
    /// Which kind of blocker.
    pub kind: BlockerKind,
    /// What is wrong.
    pub message: String,
    /// The ways out, one per line.
    pub hints: Vec<String>,
}

/// The kinds of blocker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockerKind {
    /// A required secret is missing from a live Worker and was not supplied.
    MissingSecret,
    /// A Worker does not exist yet; lmsinfra does not upload code.
    MissingWorker,
    /// The plan would delete a database the manifest protects, or `--allow-destroy` is absent.
    ProtectedDatabase,
    /// A database to delete is still bound by a Worker.
    DatabaseInUse,
    /// A route names a zone the account does not have (or the token cannot read).
    MissingZone,
}

/// Something worth knowing that never blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// What it is about.
    pub address: String,
    /// What was noticed.
    pub message: String,
}

/// How many resources a plan adds, changes and destroys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Resources created.
    pub add: usize,
    /// Resources changed in place (any change below them).
    pub change: usize,
    /// Resources destroyed.
    pub destroy: usize,
}

impl Plan {
    /// The changes that do something.
    pub fn effective_changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action != Action::NoOp)
    }

    /// Whether apply would do nothing and nothing drifted.
    pub fn is_empty(&self) -> bool {
        self.effective_changes().next().is_none() && self.drift.is_empty()
    }

    /// Whether apply must refuse.
    pub fn is_blocked(&self) -> bool {
        !self.blockers.is_empty()
    }

    /// Counts by resource, the way Terraform's summary line counts them.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for (resource, changes) in self.resources() {
            let own = changes.iter().find(|c| c.address == resource);
            match own.map(|c| c.action) {
                Some(Action::Create) => summary.add += 1,
                Some(Action::Delete) => summary.destroy += 1,
                Some(Action::Replace) => {
                    summary.add += 1;
                    summary.destroy += 1;
                }
                _ if changes.iter().any(|c| c.action != Action::NoOp) => summary.change += 1,
                _ => {}
            }
        }
        summary
    }

    /// Changes grouped by resource, resources in the order their first change appears.
    pub fn resources(&self) -> Vec<(&str, Vec<&Change>)> {
        let mut groups: Vec<(&str, Vec<&Change>)> = Vec::new();
        for change in &self.changes {
            let resource = change.resource();
            match groups.iter_mut().find(|(r, _)| *r == resource) {
                Some((_, changes)) => changes.push(change),
                None => groups.push((resource, vec![change])),
            }
        }
        groups
    }
}

/// The JSON Schema of the plan format, as `lmsinfra schema plan` prints it.
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(Plan)
}
