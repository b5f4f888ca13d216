//! Plans: what apply would change, in the order it would change it, and what forbids it.
//!
//! A plan is produced by [`diff`] (desired × live → plan), a pure function, or by [`intent`]
//! (manifest at a git revision × manifest in the work tree → plan) for reviews without
//! credentials. Renderers and `apply` only ever read a `Plan`.

pub(crate) mod diff;
pub(crate) mod edge;
pub(crate) mod headers;
mod intent;
mod migrations;
mod saved;
#[cfg(test)]
mod tests;
mod zone_plan;

pub use crate::address::{Address, AddressError, Setting, Unmanaged};
pub(crate) use diff::wire_binding;
pub use diff::{DiffOptions, diff};
pub use intent::intent;
pub use saved::{SavedPlanError, Stale, manifest_hash, read_saved, saved_read, stale, with_read};

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cloudflare::{Phase, Rule, Ruleset};
use crate::manifest::model::{Binding, LocationHint, Transport};
use crate::migrations::Migration;

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
    /// How many resources apply adds, changes and destroys, as the summary line counts them.
    /// Plans written before it was added have none, and read as zeros.
    #[serde(default)]
    pub counts: Summary,
    /// SHA-256 of the manifest's canonical JSON form: what `apply --plan` checks the manifest
    /// against.
    pub manifest_sha256: String,
    /// A digest of the live state read (empty for a plan between two manifests): what
    /// `apply --plan` checks the account against.
    pub live_fingerprint: String,
    /// In a saved plan (`plan --out`) only: the account as the plan read it, which `apply
    /// --plan` checks against the account with a few reads instead of reading it all again.
    /// lmsinfra's own shape, which may change between versions; never a secret's value (the
    /// API does not return them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<serde_json::Value>,
    /// For a plan between two manifests (`lmsinfra diff`), the git revision of the older one;
    /// `null` for a plan against the live account.
    pub base: Option<String>,
}

/// One address with what apply will do to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// What the change is to: `d1.main`, `worker.api.binding.DB`, `worker.api.secret.NAME`, …
    pub address: Address,
    /// What apply will do.
    pub action: Action,
    /// The live value, when there is one.
    pub before: Option<serde_json::Value>,
    /// The value after apply, when there is one.
    pub after: Option<serde_json::Value>,
    /// Why this change is needed.
    pub reason: String,
    /// What apply does to carry the change out; `before` and `after` only show it. Never saved:
    /// apply plans again from the live account before it changes anything, so a plan read from
    /// a file has none.
    #[serde(skip)]
    pub operation: Operation,
}

impl Change {
    /// The resource this change belongs to (`worker.api` for `worker.api.binding.DB`).
    pub fn resource(&self) -> Cow<'_, Address> {
        self.address.resource()
    }
}

/// What apply does for one change, in typed values. `before` and `after` only show a change;
/// this decides it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Operation {
    /// Nothing for apply to do: the change is a no-op, or only a review of two manifests shows
    /// it (a new Worker, required headers).
    #[default]
    None,
    /// Create a D1 database.
    CreateDatabase {
        /// Its key in the manifest, so later steps can bind its new id.
        key: String,
        /// Its name.
        name: String,
        /// Where to place it.
        location_hint: Option<LocationHint>,
    },
    /// Delete a D1 database.
    DeleteDatabase {
        /// Its name.
        name: String,
        /// Its id.
        uuid: String,
    },
    /// Write a Worker's settings: compatibility date and flags, and the whole binding list.
    Settings(Box<WorkerSettings>),
    /// Put a secret on a Worker; the settings are written first when a binding of another type
    /// holds the secret's name.
    PutSecret {
        /// The Worker's key in the manifest.
        worker: String,
        /// The script.
        script: String,
        /// The secret's name; the value comes from `--secret`.
        name: String,
        /// The settings that free the name, when a binding holds it.
        settings: Option<Box<WorkerSettings>>,
    },
    /// Write the owned rules of one zone's ruleset in one phase.
    Rules(Box<ZoneRules>),
    /// Run a pending migration on a database.
    Migrate(Box<MigrationRun>),
    /// Change a Worker's script-level observability (Workers Logs); no version is made.
    Observability {
        /// The script.
        script: String,
        /// `{enabled, head_sampling_rate?}`, as the API takes it.
        observability: serde_json::Value,
    },
}

impl Operation {
    /// The script whose versioned settings this writes (bindings, secrets), making a version.
    pub fn versioned_script(&self) -> Option<&str> {
        match self {
            Self::Settings(settings) => Some(&settings.script),
            Self::PutSecret { script, .. } => Some(script),
            _ => None,
        }
    }
}

/// A migration as apply runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRun {
    /// The database's key in the manifest, so the step finds its id (it may be created by an
    /// earlier step).
    pub key: String,
    /// The database's name.
    pub database: String,
    /// wrangler's ledger table.
    pub table: String,
    /// How it is sent.
    pub transport: Transport,
    /// The file.
    pub migration: Migration,
}

/// A Worker's settings as apply writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSettings {
    /// The Worker's key in the manifest.
    pub worker: String,
    /// The script.
    pub script: String,
    /// Every binding the Worker will have, in order.
    pub bindings: Vec<SettingsBinding>,
    /// The compatibility date.
    pub compatibility_date: String,
    /// The compatibility flags.
    pub compatibility_flags: Vec<String>,
}

/// A binding in a settings write.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingsBinding {
    /// A binding the manifest declares; a `d1` binding names its database by key, resolved to
    /// an id when the step runs (the database may be created by an earlier step).
    Declared {
        /// The binding's name.
        name: String,
        /// What it binds.
        binding: Binding,
    },
    /// A binding carried over from the live Worker as it is (`{"type": "inherit"}`).
    Inherit {
        /// The binding's name.
        name: String,
    },
}

/// The owned rules one zone's ruleset should hold in one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneRules {
    /// The zone's name.
    pub zone: String,
    /// The zone's id.
    pub zone_id: String,
    /// The phase.
    pub phase: Phase,
    /// The `ref` prefix of the rules this environment owns.
    pub owner: String,
    /// The owned rules the zone should have in this phase, in order.
    pub rules: Vec<Rule>,
    /// The ruleset as the plan read it (`None`: the zone had none in this phase).
    pub basis: Option<Ruleset>,
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
    pub address: Address,
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
    pub address: Address,
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
    /// A Worker to write to serves a version other than its newest one, or splits traffic
    /// between two versions: a write would build on a version nobody chose.
    UnsettledRollout,
    /// A rate-limiting rule the zone's plan cannot hold (expression fields, period, mitigation
    /// timeout, rule count).
    ZonePlanLimit,
    /// `lmsinfra rollback` deployed an earlier version; only `apply --roll-forward` undoes it.
    RolledBack,
    /// A migration the ledger contradicts: an applied file edited, renamed or deleted, a
    /// pending file numbered below an applied one, or a run that stopped half way.
    Migration,
    /// The manifest raised a secret's rotation `generation` and no new value was supplied.
    RotationRequested,
}

/// The start of the `workers/message` of a deployment `lmsinfra rollback` made.
pub const ROLLBACK_MESSAGE: &str = "lmsinfra rollback";

/// The start of the `workers/message` of a deployment apply made when a smoke check failed
/// (`on_failure: rollback`): a rollback too, which plan reports the same way.
pub const AUTO_ROLLBACK_MESSAGE: &str = "lmsinfra auto-rollback";

/// Something worth knowing that never blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// What it is about.
    pub address: Address,
    /// What was noticed.
    pub message: String,
}

/// How many resources a plan adds, changes and destroys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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
    pub fn resources(&self) -> Vec<(Address, Vec<&Change>)> {
        let mut groups: Vec<(Address, Vec<&Change>)> = Vec::new();
        for change in &self.changes {
            let resource = change.resource().into_owned();
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
