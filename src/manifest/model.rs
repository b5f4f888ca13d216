//! The desired state of one environment, as written in `environments/<env>.yaml`.
//!
//! Everything is keyed by logical names (`api`, `main`) that stay the same across
//! environments; the physical Cloudflare names live in `name` fields. References inside a
//! manifest (a `d1` binding's `database`) use keys. Unknown fields are rejected everywhere so a
//! typo is a diagnostic, not a silently ignored setting.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::rotation::{DEFAULT_STUCK_AFTER, Rotation, Strategy, UnknownAge, parse_duration};

/// One environment's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lmsinfra environment manifest")]
pub struct Manifest {
    /// The environment's name; must equal the file name (`staging` for `staging.yaml`).
    pub environment: String,
    /// The Cloudflare account id (32 hex characters). `CLOUDFLARE_ACCOUNT_ID` overrides it.
    pub account_id: String,
    /// D1 databases, by key.
    #[serde(default)]
    pub d1_databases: IndexMap<String, D1Database>,
    /// Workers, by key.
    #[serde(default)]
    pub workers: IndexMap<String, Worker>,
    /// Intended differences from the other environments.
    #[serde(default, skip_serializing_if = "Parity::is_empty")]
    pub parity: Parity,
    /// What `check` measures the environment's capacity against.
    #[serde(default, skip_serializing_if = "Capacity::is_default")]
    pub capacity: Capacity,
}

impl Manifest {
    /// The JSON Schema of a manifest file. Top-level keys starting with `x-` are allowed, as in
    /// docker compose: they hold YAML anchors and the loader ignores them.
    pub fn json_schema() -> serde_json::Value {
        let mut schema = serde_json::to_value(schemars::schema_for!(Manifest))
            .expect("a JSON Schema serialises to JSON");
        if let Some(root) = schema.as_object_mut() {
            root.insert(
                "patternProperties".to_owned(),
                serde_json::json!({ "^x-": { "description": "Extension field for YAML anchors; ignored." } }),
            );
        }
        schema
    }
}

/// A D1 database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct D1Database {
    /// The database's name on Cloudflare.
    pub name: String,
    /// Where Cloudflare should place the primary; only used when the database is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_hint: Option<LocationHint>,
    /// When true (the default), apply never deletes this database.
    #[serde(default = "default_true")]
    pub protect: bool,
    /// The database should not exist. Apply deletes it only when `protect` is false and the
    /// command says `--allow-destroy`; removing a database from the manifest never deletes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
    /// Schema migrations, applied by `apply` after the database exists and before any Worker
    /// changes, on wrangler's ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<Migrations>,
    /// Backups of this database: where `lmsinfra backup` uploads them, and how old the newest
    /// may be before `check` fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<Backup>,
}

/// Where a database's backups go and how fresh they must be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Upload each backup to this R2 bucket (instead of a local file, unless `--out` is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<R2Backup>,
    /// `check` fails when the newest backup in `r2` is older than this many hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_hours: Option<u32>,
}

/// An R2 bucket and key prefix for backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct R2Backup {
    /// The bucket's name on Cloudflare; it must exist (lmsinfra does not create buckets).
    pub bucket: String,
    /// The start of every backup's object key, e.g. `d1/lms-db-production/`
    /// (default: `d1/<database name>/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

fn default_true() -> bool {
    true
}

/// A database's migrations: `NNNN_name.sql` files, as `wrangler d1 migrations` names them, with
/// optional down files in `down/NNNN_name.down.sql`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migrations {
    /// The folder of migration files, relative to the project root (wrangler's
    /// `migrations_dir`).
    pub directory: String,
    /// wrangler's ledger table (`migrations_table`): a plain SQL name.
    #[serde(default = "default_migrations_table")]
    pub table: String,
    /// How migrations are sent: `import` (the default: the migration and its ledger rows in
    /// one atomic import, which blocks the database while it runs) or `query` (D1's query
    /// endpoint, which may leave a failed migration half applied).
    #[serde(default)]
    pub transport: Transport,
}

/// lmsinfra's own table of facts about the migrations it ran, beside wrangler's ledger: no
/// manifest may name it as the ledger.
pub const FACTS_TABLE: &str = "lmsinfra_migrations";

fn default_migrations_table() -> String {
    "d1_migrations".to_owned()
}

/// How migrations reach D1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// D1's import: one transaction per migration.
    #[default]
    Import,
    /// D1's query endpoint: possibly not atomic.
    Query,
}

/// Cloudflare's `primary_location_hint` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LocationHint {
    /// Western North America.
    Wnam,
    /// Eastern North America.
    Enam,
    /// Western Europe.
    Weur,
    /// Eastern Europe.
    Eeur,
    /// Asia-Pacific.
    Apac,
    /// Oceania.
    Oc,
}

impl LocationHint {
    /// The value Cloudflare's API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wnam => "wnam",
            Self::Enam => "enam",
            Self::Weur => "weur",
            Self::Eeur => "eeur",
            Self::Apac => "apac",
            Self::Oc => "oc",
        }
    }
}

/// A Worker script. lmsinfra manages its settings, never its code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// The script's name on Cloudflare: lowercase letters, digits and dashes, at most 63.
    pub name: String,
    /// The Workers runtime compatibility date, `YYYY-MM-DD`.
    pub compatibility_date: String,
    /// Workers runtime compatibility flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compatibility_flags: Vec<String>,
    /// Bindings, by the name the code sees (`env.DB`); `NAME: { absent: true }` removes one.
    #[serde(default)]
    pub bindings: Bindings,
    /// Secrets that must exist on the live Worker (names only, never values);
    /// `{ name: NAME, absent: true }` removes one.
    #[serde(default)]
    pub secrets: Secrets,
    /// Workers Logs, so errors after a deploy can be seen; left as it is when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<Observability>,
    /// Security headers that responses must carry, checked by probing a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    /// Routes on zones, for headers and rate limits that Cloudflare enforces at the edge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Per-client rate limiting of the Worker's routes, enforced at the edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
    /// Requests that must answer as expected after a deploy (`verify`, and apply after it
    /// changed this Worker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<Smoke>,
}

/// A Worker's smoke checks: requests sent without the API token, redirects not followed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    /// Where the Worker answers: https (http only for localhost and 127.0.0.1); each check's
    /// `path` is appended to it.
    pub base_url: String,
    /// How many times a failing check is tried before it counts as failed (at least 1).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Seconds between two attempts of a check.
    #[serde(default = "default_interval")]
    pub interval_seconds: f64,
    /// Seconds one request may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// Seconds to wait after a deploy before the first check, while the new version spreads.
    #[serde(default)]
    pub settle_seconds: f64,
    /// What apply does when a check fails after it changed this Worker.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The checks, run in order.
    pub checks: Vec<SmokeCheck>,
}

fn default_attempts() -> u32 {
    3
}

fn default_interval() -> f64 {
    2.0
}

fn default_timeout() -> f64 {
    10.0
}

/// What apply does when a smoke check fails after it deployed a change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Deploy the versions that served before, at their percentages, check again, exit 4.
    #[default]
    Rollback,
    /// Exit 4 and leave the new version serving.
    Stop,
    /// Warn and finish as apply would.
    Warn,
}

/// One smoke check. `{{version}}` in an expected value stands for the version under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    /// The check's name, as reports and rollback annotations show it.
    pub name: String,
    /// The request method.
    #[serde(default)]
    pub method: Method,
    /// The path (with query) after `base_url`, starting with `/`.
    pub path: String,
    /// Request headers to send (never a credential: the manifest is not secret).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub request_headers: IndexMap<String, String>,
    /// The statuses that pass (200 when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<u16>,
    /// Response header name → exact value.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Response header name → regular expression its value must match.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers_match: IndexMap<String, String>,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// JSON pointer (RFC 6901) into the JSON body → the value it must equal.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub json: IndexMap<String, serde_json::Value>,
}

/// The HTTP methods a smoke check may send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET.
    #[default]
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// OPTIONS.
    Options,
}

impl Method {
    /// The method as HTTP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
        }
    }
}

/// A Worker's bindings as the manifest lists them: each one declared, or marked absent.
///
/// Iterating, `get` and `contains_key` see the declared bindings only, so code that reads what
/// a Worker should have never meets a removal by mistake; [`Bindings::absent`] lists the
/// removals and [`Bindings::mentions`] asks about both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Bindings(IndexMap<String, BindingEntry>);

/// One entry under a Worker's `bindings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BindingEntry {
    /// `{ absent: true }`: apply removes the binding from the live Worker.
    Absent(AbsentBinding),
    /// A binding the Worker must have.
    Declared(Binding),
}

/// A binding marked for removal: `NAME: { absent: true }`, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbsentBinding {
    /// Always `true`: the Worker must not have this binding.
    pub absent: bool,
}

impl Bindings {
    /// The declared bindings, in manifest order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Binding)> {
        self.0.iter().filter_map(|(name, entry)| match entry {
            BindingEntry::Declared(binding) => Some((name, binding)),
            BindingEntry::Absent(_) => None,
        })
    }

    /// The names of the declared bindings, in manifest order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.iter().map(|(name, _)| name)
    }

    /// The names marked `absent: true`, in manifest order.
    pub fn absent(&self) -> impl Iterator<Item = &String> {
        self.0
            .iter()
            .filter(|(_, entry)| matches!(entry, BindingEntry::Absent(_)))
            .map(|(name, _)| name)
    }

    /// Every entry, declared or absent, in manifest order.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &BindingEntry)> {
        self.0.iter()
    }

    /// The declared binding named `name`.
    pub fn get(&self, name: &str) -> Option<&Binding> {
        match self.0.get(name)? {
            BindingEntry::Declared(binding) => Some(binding),
            BindingEntry::Absent(_) => None,
        }
    }

    /// Whether a binding named `name` is declared.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether the manifest says anything about `name`: declared or marked absent.
    pub fn mentions(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Whether `name` is marked absent.
    pub fn is_absent(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(BindingEntry::Absent(_)))
    }

    /// How many bindings are declared.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no binding is declared.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Declare `binding` under `name`, replacing what was there.
    pub fn insert(&mut self, name: String, binding: Binding) {
        self.0.insert(name, BindingEntry::Declared(binding));
    }

    /// Mark `name` absent, replacing what was there.
    pub fn insert_absent(&mut self, name: String) {
        self.0
            .insert(name, BindingEntry::Absent(AbsentBinding { absent: true }));
    }

    /// Forget `name`, keeping the order of the others.
    pub fn shift_remove(&mut self, name: &str) -> Option<BindingEntry> {
        self.0.shift_remove(name)
    }
}

impl std::ops::Index<&str> for Bindings {
    type Output = Binding;

    fn index(&self, name: &str) -> &Binding {
        self.get(name)
            .unwrap_or_else(|| panic!("no declared binding named {name}"))
    }
}

impl std::ops::IndexMut<&str> for Bindings {
    fn index_mut(&mut self, name: &str) -> &mut Binding {
        match self.0.get_mut(name) {
            Some(BindingEntry::Declared(binding)) => binding,
            _ => panic!("no declared binding named {name}"),
        }
    }
}

impl<'a> IntoIterator for &'a Bindings {
    type Item = (&'a String, &'a Binding);
    type IntoIter = Box<dyn Iterator<Item = (&'a String, &'a Binding)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl FromIterator<(String, Binding)> for Bindings {
    fn from_iter<I: IntoIterator<Item = (String, Binding)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(name, binding)| (name, BindingEntry::Declared(binding)))
                .collect(),
        )
    }
}

impl FromIterator<(String, BindingEntry)> for Bindings {
    fn from_iter<I: IntoIterator<Item = (String, BindingEntry)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, Binding); N]> for Bindings {
    fn from(bindings: [(String, Binding); N]) -> Self {
        bindings.into_iter().collect()
    }
}

impl From<IndexMap<String, Binding>> for Bindings {
    fn from(bindings: IndexMap<String, Binding>) -> Self {
        bindings.into_iter().collect()
    }
}

/// A Worker's secrets as the manifest lists them: names that must exist, and names marked
/// absent. Like [`Bindings`], iterating and `contains` see the required names only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Secrets(Vec<SecretEntry>);

/// One entry under a Worker's `secrets`: a name, or a mapping that says more about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretEntry {
    /// A secret the Worker must have, by name.
    Name(String),
    /// `{ name: NAME, … }`.
    Spec(SecretSpec),
}

/// A secret written as a mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// The secret's name.
    pub name: String,
    /// The Worker must not have this secret: apply removes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
    /// How the secret is rotated and how old it may get (see `lmsinfra rotate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

impl SecretEntry {
    /// The secret's name.
    pub fn name(&self) -> &String {
        match self {
            Self::Name(name) => name,
            Self::Spec(spec) => &spec.name,
        }
    }

    /// Whether the secret is marked `absent: true`.
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Spec(spec) if spec.absent)
    }
}

impl Secrets {
    /// The names of the required secrets, in manifest order.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0
            .iter()
            .filter(|entry| !entry.is_absent())
            .map(SecretEntry::name)
    }

    /// The names marked `absent: true`, in manifest order.
    pub fn absent(&self) -> impl Iterator<Item = &String> {
        self.0
            .iter()
            .filter(|entry| entry.is_absent())
            .map(SecretEntry::name)
    }

    /// Every entry, required or absent, in manifest order.
    pub fn entries(&self) -> impl Iterator<Item = &SecretEntry> {
        self.0.iter()
    }

    /// Whether `name` is required.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|s| s == name)
    }

    /// Whether `name` is marked absent.
    pub fn is_absent(&self, name: &str) -> bool {
        self.absent().any(|s| s == name)
    }

    /// How many secrets are required.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no secret is required.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Require `name`.
    pub fn push(&mut self, name: String) {
        self.0.push(SecretEntry::Name(name));
    }

    /// Mark `name` absent.
    pub fn push_absent(&mut self, name: String) {
        self.push_entry(SecretEntry::Spec(SecretSpec {
            name,
            absent: true,
            rotation: None,
        }));
    }

    /// Add `entry` at the end.
    pub fn push_entry(&mut self, entry: SecretEntry) {
        self.0.push(entry);
    }

    /// The rotation policy of the required secret `name`, if it has one.
    pub fn rotation(&self, name: &str) -> Option<&Rotation> {
        self.rotated()
            .find(|(_, rotated, _)| *rotated == name)
            .map(|(_, _, rotation)| rotation)
    }

    /// Every required secret with a rotation policy, in manifest order, with its index in the
    /// list as written.
    pub fn rotated(&self) -> impl Iterator<Item = (usize, &str, &Rotation)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| match entry {
                SecretEntry::Spec(SecretSpec {
                    name,
                    absent: false,
                    rotation: Some(rotation),
                }) => Some((index, name.as_str(), rotation)),
                _ => None,
            })
    }
}

impl<'a> IntoIterator for &'a Secrets {
    type Item = &'a String;
    type IntoIter = Box<dyn Iterator<Item = &'a String> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl FromIterator<String> for Secrets {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Self(iter.into_iter().map(SecretEntry::Name).collect())
    }
}

impl From<Vec<String>> for Secrets {
    fn from(names: Vec<String>) -> Self {
        names.into_iter().collect()
    }
}

/// Workers Logs (observability), a script-level setting: it belongs to the script, not to a
/// version, so changing it deploys nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observability {
    /// Whether the Worker's logs are kept.
    pub enabled: bool,
    /// The share of requests logged, from 0 to 1 (1 when absent: every request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sampling_rate: Option<f64>,
}

/// A binding, as the manifest writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Binding {
    /// A D1 database declared in this manifest.
    D1 {
        /// The database's key in `d1_databases`.
        database: String,
    },
    /// A plain-text variable. Never a credential: those belong under `secrets`.
    PlainText {
        /// The value.
        text: String,
    },
    /// A Workers KV namespace.
    KvNamespace {
        /// The namespace id.
        namespace_id: String,
    },
    /// An R2 bucket.
    R2Bucket {
        /// The bucket's name.
        bucket_name: String,
        /// The bucket's jurisdiction, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jurisdiction: Option<String>,
    },
    /// Another Worker (a service binding).
    Service {
        /// The Worker's script name.
        service: String,
        /// The named entrypoint, when not the default export.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entrypoint: Option<String>,
    },
    /// A Workers rate-limiting binding: the Worker's code counts requests by any key it
    /// chooses (a client IP, a user id), with no zone needed.
    Ratelimit {
        /// The namespace, a positive integer as a string, unique on the account; Workers that
        /// share one share their counters.
        namespace_id: String,
        /// The limit.
        simple: SimpleLimit,
    },
}

/// The limit of a rate-limiting binding: `limit` requests per key within `period` seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimpleLimit {
    /// Requests allowed per key within one period.
    pub limit: u32,
    /// The period in seconds: 10 or 60.
    pub period: u32,
}

impl Binding {
    /// The Cloudflare binding type this becomes.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::D1 { .. } => "d1",
            Self::PlainText { .. } => "plain_text",
            Self::KvNamespace { .. } => "kv_namespace",
            Self::R2Bucket { .. } => "r2_bucket",
            Self::Service { .. } => "service",
            Self::Ratelimit { .. } => "ratelimit",
        }
    }
}

/// Headers a Worker's responses must carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Headers {
    /// The URL to probe: https (http only for localhost and 127.0.0.1).
    pub url: String,
    /// Header name → exact value the response must carry.
    pub require: IndexMap<String, String>,
}

/// A route of a Worker on a zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The zone's name, e.g. `example.com`.
    pub zone: String,
    /// The route pattern, e.g. `api.example.com/*`.
    pub pattern: String,
}

/// A rate limit on a Worker's routes: more than `requests` requests from one client IP within
/// `period` seconds are answered 429 for `mitigation_timeout` seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Requests allowed per client IP within one period.
    pub requests: u32,
    /// The counting period in seconds: one of Cloudflare's values (10, 15, 20, 30, 40, 45, 60,
    /// 90, 120, 180, 240, 300, 480, 600, 900, 1200, 1800, 2400, 3600, 65535), within the zone
    /// plan's limit (Free: 10, Pro: 60, Business: 600).
    pub period: u32,
    /// How long, in seconds, a client that went over the limit is answered 429: one of the
    /// period values or 86400, within the zone plan's limit (Free: 10, Pro: 3600, Business:
    /// 86400).
    pub mitigation_timeout: u32,
    /// Path prefixes the limit covers (each starts with `/`); every path of the routes when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// Intended differences between this environment and the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parity {
    /// Addresses (`worker.api.binding.DEBUG`, `worker.api.secret.X`, `d1.analytics`,
    /// `worker.api.headers.X-Robots-Tag`, or a whole `worker.api`) that may exist here and not
    /// elsewhere, or elsewhere and not here.
    #[serde(default)]
    pub ignore: Vec<String>,
}

impl Parity {
    fn is_empty(&self) -> bool {
        self.ignore.is_empty()
    }
}

/// What `check` measures capacity against: the account's Workers plan, which the API does not
/// report, and when a use of a limit warns or fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// The account's Workers plan: `paid` (a D1 database holds 10 GB, Time Travel covers 30
    /// days) or `free` (500 MB, 7 days). `paid` when absent.
    #[serde(default)]
    pub plan: AccountPlan,
    /// The use of a limit, in percent, from which a capacity finding warns (80 when absent).
    #[serde(default = "default_warn_percent")]
    pub warn_percent: f64,
    /// The use of a limit, in percent, from which a capacity finding fails (95 when absent).
    #[serde(default = "default_fail_percent")]
    pub fail_percent: f64,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            plan: AccountPlan::default(),
            warn_percent: default_warn_percent(),
            fail_percent: default_fail_percent(),
        }
    }
}

impl Capacity {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_warn_percent() -> f64 {
    80.0
}

fn default_fail_percent() -> f64 {
    95.0
}

/// A Cloudflare Workers plan, as far as capacity is concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountPlan {
    /// Workers Paid.
    #[default]
    Paid,
    /// Workers Free.
    Free,
}
