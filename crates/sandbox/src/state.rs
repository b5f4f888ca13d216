//! The emulated account, its JSON file, and how it is saved.
//!
//! The state file and the seed file share one format, so a seed is simply a state file someone
//! wrote by hand: versions and deployments may be left out and are created on load. Secret values
//! never reach this model: a secret is its name (a `secret_text` binding) plus a salted digest
//! of its value, SHA-256(salt ‖ SHA-256(value)) in hex, where the salt is random per state
//! (`account.secret_salt`), so equal values in two states, or a guessable value, cannot be
//! recognised by comparing files. The value is hashed once before salting so that a file from
//! before salts (or a hand-written seed), whose digests are SHA-256(value), migrates exactly on
//! load: it gets a fresh salt and each old digest `d` becomes SHA-256(salt ‖ d), and the next
//! save writes it that way. Saving is [`state_file::replace`](super::state_file::replace): a
//! private temporary file renamed over the state, so a crash leaves the old state or the new
//! one, never half of either.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::secret_values;
use super::stream::StreamKey;

/// Everything the sandbox remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct State {
    pub(crate) account: Account,
    pub(crate) user: User,
    #[serde(default)]
    pub(crate) zones: Vec<Zone>,
}

/// The one account the sandbox serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created_on: String,
    /// The account's workers.dev subdomain (`<script>.<subdomain>.workers.dev`).
    pub(crate) subdomain: Option<String>,
    #[serde(default)]
    pub(crate) scripts: BTreeMap<String, Script>,
    #[serde(default)]
    pub(crate) d1_databases: Vec<Database>,
    /// Mixed into every secret digest (hex); empty in files from before salts.
    #[serde(default)]
    pub(crate) secret_salt: String,
    /// Stream signing keys (never their material).
    #[serde(default)]
    pub(crate) stream_keys: Vec<StreamKey>,
}

/// Who owns user-scoped tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) email: String,
}

/// A Worker script: what is deployed now, and its history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Script {
    pub(crate) created_on: String,
    pub(crate) modified_on: String,
    pub(crate) main_module: String,
    pub(crate) modules: Vec<Module>,
    pub(crate) settings: Settings,
    /// Bindings as the API shows them: `secret_text` entries carry no value.
    pub(crate) bindings: Vec<Value>,
    /// The salted digest of each secret's value ([`Account::secret_digest`]), by secret name.
    #[serde(default)]
    pub(crate) secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) workers_dev: ScriptSubdomain,
    /// Oldest first.
    #[serde(default)]
    pub(crate) versions: Vec<Version>,
    /// Oldest first; the last one serves traffic.
    #[serde(default)]
    pub(crate) deployments: Vec<Deployment>,
    /// What the script's versions answer on Worker traffic (a seed field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) behaviour: Option<Behaviour>,
}

/// One uploaded module part.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Module {
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) content: String,
}

/// The versioned settings other than bindings. An empty `compatibility_date` means none was
/// ever set (wrangler creates draft Workers without one); the API then leaves the field out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    #[serde(default)]
    pub(crate) compatibility_date: String,
    #[serde(default)]
    pub(crate) compatibility_flags: Vec<String>,
    #[serde(default = "bundled")]
    pub(crate) usage_model: String,
    #[serde(default)]
    pub(crate) logpush: bool,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) tail_consumers: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) placement: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limits: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) observability: Option<Value>,
}

fn bundled() -> String {
    "bundled".to_owned()
}

/// A script's workers.dev route switches.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScriptSubdomain {
    pub(crate) enabled: bool,
    pub(crate) previews_enabled: bool,
}

impl Default for ScriptSubdomain {
    fn default() -> Self {
        ScriptSubdomain {
            enabled: true,
            previews_enabled: true,
        }
    }
}

/// An immutable snapshot of code and settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Version {
    pub(crate) id: String,
    pub(crate) number: u64,
    pub(crate) created_on: String,
    pub(crate) source: String,
    pub(crate) etag: String,
    pub(crate) main_module: String,
    /// The code, so deploying an older version restores it.
    #[serde(default)]
    pub(crate) modules: Vec<Module>,
    pub(crate) settings: Settings,
    pub(crate) bindings: Vec<Value>,
    pub(crate) secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// The `workers/tag` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tag: Option<String>,
    /// The `workers/triggered_by` annotation the API sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) triggered_by: Option<String>,
}

/// What a script's versions answer on Worker traffic, as declared (the rules are in
/// `workers/behaviour.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Behaviour {
    #[serde(default)]
    pub(crate) routes: Vec<RouteSpec>,
    #[serde(default)]
    pub(crate) requires: Requires,
    #[serde(default)]
    pub(crate) breaks: Vec<Break>,
    #[serde(default)]
    pub(crate) webhooks: Vec<Webhook>,
    #[serde(default)]
    pub(crate) stream_tokens: Vec<StreamToken>,
}

/// A route that accepts a body signed with a secret or its successor: `header` must be
/// base64(HMAC-SHA256(value, body)) for the value of `secret` or of `secret`_NEXT in the
/// answering version (Tally's `Tally-Signature`); 401 otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Webhook {
    pub(crate) path: String,
    pub(crate) secret: String,
    #[serde(default = "signature_header")]
    pub(crate) header: String,
}

fn signature_header() -> String {
    "tally-signature".to_owned()
}

/// A route that issues Stream tokens: 200 only while the answering version's `key_id_secret`
/// names an existing Stream signing key and `pem_secret` is that key's PEM; 401 otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamToken {
    pub(crate) path: String,
    pub(crate) key_id_secret: String,
    pub(crate) pem_secret: String,
}

/// One declared answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) method: Option<String>,
    pub(crate) path: String,
    #[serde(default = "status_ok")]
    pub(crate) status: u16,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) body: String,
}

/// What the default `/health` needs from the serving version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Requires {
    #[serde(default)]
    pub(crate) d1: Vec<String>,
    #[serde(default)]
    pub(crate) secrets: Vec<String>,
}

/// A route that fails while a plain-text binding has a given value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Break {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
    pub(crate) binding: String,
    pub(crate) equals: String,
    #[serde(default = "status_server_error")]
    pub(crate) status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<String>,
}

fn status_ok() -> u16 {
    200
}

fn status_server_error() -> u16 {
    500
}

/// Which versions serve traffic, from when.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Deployment {
    pub(crate) id: String,
    pub(crate) created_on: String,
    pub(crate) source: String,
    /// `(version id, percentage)`.
    pub(crate) versions: Vec<(String, f64)>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    pub(crate) triggered_by: String,
}

/// A D1 database; its rows live in a SQLite file, not here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Database {
    pub(crate) uuid: String,
    pub(crate) name: String,
    pub(crate) created_at: String,
    #[serde(default)]
    pub(crate) primary_location_hint: Option<String>,
    #[serde(default)]
    pub(crate) jurisdiction: Option<String>,
}

/// A zone and its phase entrypoint rulesets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Zone {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created_on: String,
    /// The zone's plan as Cloudflare's zone object has it; its `legacy_id` (free, pro,
    /// business, enterprise) decides which rate-limiting rules the zone can hold. Free when
    /// left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<Value>,
    /// The account that owns the zone (`{id, name}`); the sandbox's own when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) account: Option<Value>,
    /// By phase.
    #[serde(default)]
    pub(crate) rulesets: BTreeMap<String, Ruleset>,
}

/// A zone entrypoint ruleset (its rules as the API returns them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ruleset {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) version: u64,
    pub(crate) last_updated: String,
    pub(crate) rules: Vec<Value>,
}

/// The current time as the API writes it.
pub(crate) fn now() -> String {
    let now = super::clock::stamp_now();
    now.round(jiff::Unit::Microsecond)
        .unwrap_or(now)
        .to_string()
}

/// A fresh random identifier in the 32-hex-digit form Cloudflare uses for tags.
pub(crate) fn new_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// SHA-256 of `bytes`, as lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn salted(salt: &str, digest: &str) -> String {
    sha256_hex(format!("{salt}{digest}").as_bytes())
}

impl Account {
    /// The digest kept for a secret's value.
    /// The digest kept for a secret's value; the value is remembered in memory only (see
    /// [`crate::secret_values`]).
    pub(crate) fn secret_digest(&self, value: &str) -> String {
        let digest = salted(&self.secret_salt, &sha256_hex(value.as_bytes()));
        secret_values::remember(&digest, value);
        digest
    }

    /// Give a state from before salts its salt, salting its digests of bare values.
    fn salt_secrets(&mut self) {
        if !self.secret_salt.is_empty() {
            return;
        }
        self.secret_salt = hex::encode(rand::random::<[u8; 32]>());
        let salt = self.secret_salt.clone();
        for script in self.scripts.values_mut() {
            let versions = script.versions.iter_mut().map(|v| &mut v.secrets);
            for secrets in std::iter::once(&mut script.secrets).chain(versions) {
                for digest in secrets.values_mut() {
                    *digest = salted(&salt, digest);
                }
            }
        }
    }
}

/// Why a state or seed file is not a valid account.
#[derive(Debug, thiserror::Error)]
pub enum InvalidAccount {
    /// It is not JSON of the state's shape (the message names the JSON path).
    #[error(transparent)]
    Shape(#[from] serde_path_to_error::Error<serde_json::Error>),
    /// Its parts contradict each other, e.g. a secret binding without a secret.
    #[error("{0}")]
    Inconsistent(String),
}

impl State {
    /// An empty account, for a sandbox started with neither state nor seed.
    pub(crate) fn empty() -> State {
        State {
            account: Account {
                id: "0123456789abcdef0123456789abcdef".to_owned(),
                name: "Sandbox Account".to_owned(),
                created_on: now(),
                subdomain: None,
                scripts: BTreeMap::new(),
                d1_databases: Vec::new(),
                secret_salt: hex::encode(rand::random::<[u8; 32]>()),
                stream_keys: Vec::new(),
            },
            user: User {
                id: "fedcba9876543210fedcba9876543210".to_owned(),
                email: "sandbox@example.com".to_owned(),
            },
            zones: Vec::new(),
        }
    }

    /// Parse a state or seed file, then fill in what a hand-written seed may leave out.
    pub(crate) fn parse(text: &str) -> Result<State, InvalidAccount> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut state: State = serde_path_to_error::deserialize(&mut de)?;
        state.complete().map_err(InvalidAccount::Inconsistent)?;
        Ok(state)
    }

    fn complete(&mut self) -> Result<(), String> {
        self.account.salt_secrets();
        for zone in &self.zones {
            crate::zone_plan::Plan::of(zone.plan.as_ref())
                .map_err(|e| format!("zone {}: {e}", zone.name))?;
        }
        for (name, script) in &mut self.account.scripts {
            for binding in &script.bindings {
                if binding["type"] == "secret_text" {
                    let secret = binding["name"].as_str().unwrap_or_default();
                    if !script.secrets.contains_key(secret) {
                        return Err(format!(
                            "script {name}: secret binding {secret} has no digest in `secrets`"
                        ));
                    }
                }
            }
            for secret in script.secrets.keys() {
                let listed = script
                    .bindings
                    .iter()
                    .any(|b| b["type"] == "secret_text" && b["name"] == secret.as_str());
                if !listed {
                    return Err(format!(
                        "script {name}: secret {secret} has no `secret_text` binding"
                    ));
                }
            }
            if script.versions.is_empty() {
                let seeded_on = script.modified_on.clone();
                script.record_version("api", "upload", None);
                script.modified_on.clone_from(&seeded_on);
                if let Some(version) = script.versions.last_mut() {
                    version.created_on.clone_from(&seeded_on);
                }
                if let Some(deployment) = script.deployments.last_mut() {
                    deployment.created_on = seeded_on;
                }
            }
        }
        Ok(())
    }

    /// Write the state to `path` atomically: a temporary file in the same folder, then a rename.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        super::state_file::replace(path, &temp_path(path), &text)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{}.tmp", std::process::id(), new_tag()));
    path.with_file_name(name)
}

impl Script {
    /// The etag of the current code: a digest over the module names, types and contents.
    pub(crate) fn code_etag(modules: &[Module]) -> String {
        let mut hasher = Sha256::new();
        for module in modules {
            hasher.update(module.name.as_bytes());
            hasher.update([0]);
            hasher.update(module.content_type.as_bytes());
            hasher.update([0]);
            hasher.update(module.content.as_bytes());
            hasher.update([0]);
        }
        hex::encode(hasher.finalize())
    }

    /// Snapshot the current code and settings as a new version and deploy it at 100 %, as
    /// Cloudflare does for every upload, settings change and secret change.
    pub(crate) fn record_version(
        &mut self,
        source: &str,
        triggered_by: &str,
        message: Option<String>,
    ) {
        let created_on = now();
        let mut version = self.snapshot(source, message.clone(), &created_on);
        version.triggered_by = Some(triggered_by.to_owned());
        let id = version.id.clone();
        self.versions.push(version);
        // A deployment's message is at most 50 characters in Cloudflare's schema, a version's
        // 1000 bytes: the deployment gets the start of the version's.
        let message = message.map(|m| m.chars().take(50).collect());
        self.deployments.push(Deployment {
            id: uuid::Uuid::new_v4().to_string(),
            created_on: created_on.clone(),
            source: source.to_owned(),
            versions: vec![(id, 100.0)],
            message,
            triggered_by: triggered_by.to_owned(),
        });
        self.modified_on = created_on;
    }

    /// The current code and settings as the next version, not yet recorded or deployed.
    pub(crate) fn snapshot(
        &self,
        source: &str,
        message: Option<String>,
        created_on: &str,
    ) -> Version {
        Version {
            id: uuid::Uuid::new_v4().to_string(),
            number: self.versions.last().map_or(1, |v| v.number + 1),
            created_on: created_on.to_owned(),
            source: source.to_owned(),
            etag: Script::code_etag(&self.modules),
            main_module: self.main_module.clone(),
            modules: self.modules.clone(),
            settings: self.settings.clone(),
            bindings: self.bindings.clone(),
            secrets: self.secrets.clone(),
            message,
            tag: None,
            triggered_by: None,
        }
    }

    /// The version serving 100 % of traffic, if any.
    pub(crate) fn deployed_version(&self) -> Option<&str> {
        let deployment = self.deployments.last()?;
        deployment
            .versions
            .iter()
            .find(|(_, pct)| *pct >= 100.0)
            .map(|(id, _)| id.as_str())
    }
}
