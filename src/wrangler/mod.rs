//! wrangler's configuration (`wrangler.toml`, `wrangler.json`, `wrangler.jsonc`), the other
//! description of a Worker's bindings.
//!
//! It matters because `wrangler deploy` sets a Worker's bindings to what its configuration says:
//! a binding apply added that the configuration lacks disappears at the next code deploy. So
//! lmsinfra imports a configuration into manifests ([`import()`]), writes one from a manifest
//! ([`export()`]), and warns in `plan` when the two disagree ([`compare()`]).
//!
//! One configuration describes one Worker. Its top level is the production environment and each
//! `[env.NAME]` another one; as in wrangler, an environment inherits the top level's name,
//! compatibility settings and routes, but not its bindings or vars.

mod compare;
mod export;
mod import;
mod merge;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

pub(crate) use compare::check_project;
pub(crate) use export::{Section, export};
pub(crate) use import::{Import, ImportOptions, import};
pub(crate) use merge::{Existing, Syntax, merge};

use crate::manifest::model::{Binding, Observability, Route};

/// The file names wrangler looks for, in the order it prefers them.
pub(crate) const FILE_NAMES: [&str; 3] = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"];

/// The environment a configuration's top level stands for.
pub(crate) const TOP_LEVEL_ENVIRONMENT: &str = "production";

/// The keys an `[env.NAME]` section inherits from the top level when it does not set them
/// (wrangler's `environmentInheritableKeys`).
const INHERITED: [&str; 33] = [
    "name",
    "account_id",
    "compatibility_date",
    "compatibility_flags",
    "main",
    "find_additional_modules",
    "preserve_file_names",
    "base_dir",
    "workers_dev",
    "preview_urls",
    "routes",
    "route",
    "tsconfig",
    "jsx_factory",
    "jsx_fragment",
    "migrations",
    "triggers",
    "usage_model",
    "limits",
    "rules",
    "build",
    "no_bundle",
    "minify",
    "node_compat",
    "first_party_worker",
    "zone_id",
    "logfwdr",
    "logpush",
    "upload_source_maps",
    "placement",
    "assets",
    "observability",
    "tail_consumers",
];

/// Keys about the code and its build, which `wrangler deploy` owns and a manifest does not
/// describe; import passes over them silently.
const ABOUT_THE_CODE: [&str; 22] = [
    "$schema",
    "main",
    "env",
    "legacy_env",
    "workers_dev",
    "preview_urls",
    "build",
    "rules",
    "no_bundle",
    "minify",
    "keep_names",
    "find_additional_modules",
    "base_dir",
    "preserve_file_names",
    "tsconfig",
    "jsx_factory",
    "jsx_fragment",
    "upload_source_maps",
    "node_compat",
    "dev",
    "alias",
    "keep_vars",
];

/// Why a wrangler configuration could not be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// The file could not be read or parsed.
    #[error("could not read the wrangler configuration {}: {reason}", path.display())]
    #[diagnostic(help(
        "wrangler configurations are wrangler.toml, wrangler.json or wrangler.jsonc"
    ))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The configuration lacks something a manifest needs.
    #[error("{}: {reason}", path.display())]
    #[diagnostic(help("{hint}"))]
    Incomplete {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
        /// What to do.
        hint: String,
    },
    /// Import would overwrite manifests.
    #[error("import would overwrite {}", paths.join(", "))]
    #[diagnostic(help("pass --force to replace them"))]
    WouldOverwrite {
        /// The manifests that exist.
        paths: Vec<String>,
    },
    /// Writing a configuration would clobber what its file says.
    #[error("{} {reason}", path.display())]
    #[diagnostic(help(
        "pass --force to replace the file with lmsinfra's configuration alone, or --write another path"
    ))]
    WouldClobber {
        /// The file.
        path: PathBuf,
        /// What would be lost.
        reason: String,
    },
    /// `--worker` is needed, or names no Worker of the manifest.
    #[error("{reason}")]
    #[diagnostic(help("pass --worker with one of: {available}"))]
    WorkerChoice {
        /// What is wrong.
        reason: String,
        /// The manifest's worker keys.
        available: String,
    },
    /// A database the Worker binds does not exist on the account yet.
    #[error("the D1 database {name} (`d1_databases.{key}`) does not exist on the account yet")]
    #[diagnostic(help(
        "run `lmsinfra apply {environment}` first: the wrangler configuration needs the database's id"
    ))]
    DatabaseMissing {
        /// The database's key.
        key: String,
        /// Its name.
        name: String,
        /// The environment.
        environment: String,
    },
}

/// A whole configuration file, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The file it was read from.
    pub(crate) path: PathBuf,
    /// Its top-level table.
    pub(crate) table: Map<String, Value>,
}

/// Read a wrangler configuration; TOML for `.toml`, JSON with comments otherwise.
pub(crate) fn read(path: &Path) -> Result<Config, Error> {
    let fail = |reason: String| Error::Read {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let value: Value = if path.extension().is_some_and(|ext| ext == "toml") {
        toml::from_str(&text).map_err(|e| fail(e.to_string()))?
    } else {
        jsonc_parser::parse_to_serde_value(&text, &Default::default())
            .map_err(|e| fail(e.to_string()))?
    };
    match value {
        Value::Object(table) => Ok(Config {
            path: path.to_owned(),
            table,
        }),
        _ => Err(fail("the top level is not a table".to_owned())),
    }
}

/// The first wrangler configuration in `dir`, in wrangler's order of preference.
pub(crate) fn find(dir: &Path) -> Option<PathBuf> {
    FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

impl Config {
    /// The environments the file describes: `production` (the top level), then each `env.NAME`.
    pub(crate) fn environments(&self) -> Vec<String> {
        let mut names = vec![TOP_LEVEL_ENVIRONMENT.to_owned()];
        if let Some(Value::Object(envs)) = self.table.get("env") {
            names.extend(envs.keys().filter(|k| *k != TOP_LEVEL_ENVIRONMENT).cloned());
        }
        names
    }

    /// One environment after wrangler's inheritance rules, or `None` when the file has no
    /// section for it.
    pub(crate) fn resolve(&self, environment: &str) -> Result<Option<WorkerConfig>, Error> {
        let table = if environment == TOP_LEVEL_ENVIRONMENT && !self.has_section(environment) {
            self.table.clone()
        } else {
            let Some(Value::Object(own)) = self.table.get("env").and_then(|e| e.get(environment))
            else {
                return Ok(None);
            };
            let mut table = own.clone();
            for key in INHERITED {
                if let (false, Some(value)) = (table.contains_key(key), self.table.get(key)) {
                    let value = match (key, value) {
                        ("name", Value::String(name)) => {
                            Value::String(format!("{name}-{environment}"))
                        }
                        _ => value.clone(),
                    };
                    table.insert(key.to_owned(), value);
                }
            }
            table
        };
        let config = serde_path_to_error::deserialize(Value::Object(table)).map_err(|e| {
            let at = e.path().to_string();
            let section = if environment == TOP_LEVEL_ENVIRONMENT {
                String::new()
            } else {
                format!("env.{environment}.")
            };
            Error::Read {
                path: self.path.clone(),
                reason: format!("{section}{at}: {}", e.into_inner()),
            }
        })?;
        Ok(Some(config))
    }

    /// Whether `environment` is an `[env.NAME]` section that sets none of `keys` while the top
    /// level sets one, so wrangler gives it the top level's.
    pub(crate) fn inherits(&self, environment: &str, keys: &[&str]) -> bool {
        let Some(Value::Object(own)) = self.table.get("env").and_then(|e| e.get(environment))
        else {
            return false;
        };
        !keys.iter().any(|k| own.contains_key(*k))
            && keys.iter().any(|k| self.table.contains_key(*k))
    }

    fn has_section(&self, environment: &str) -> bool {
        self.table
            .get("env")
            .and_then(|e| e.get(environment))
            .is_some()
    }
}

/// One environment of a configuration: the part lmsinfra maps, and the rest by key.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct WorkerConfig {
    pub(crate) name: Option<String>,
    pub(crate) account_id: Option<String>,
    pub(crate) compatibility_date: Option<String>,
    #[serde(default)]
    pub(crate) compatibility_flags: Vec<String>,
    #[serde(default)]
    vars: IndexMap<String, Value>,
    #[serde(default)]
    d1_databases: Vec<D1Config>,
    #[serde(default)]
    kv_namespaces: Vec<KvConfig>,
    #[serde(default)]
    r2_buckets: Vec<R2Config>,
    #[serde(default)]
    services: Vec<ServiceConfig>,
    route: Option<RouteConfig>,
    #[serde(default)]
    routes: Vec<RouteConfig>,
    #[serde(flatten)]
    other: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct D1Config {
    binding: String,
    database_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct KvConfig {
    binding: String,
    id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct R2Config {
    binding: String,
    bucket_name: Option<String>,
    jurisdiction: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ServiceConfig {
    binding: String,
    service: String,
    entrypoint: Option<String>,
    environment: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RouteConfig {
    Pattern(String),
    Detailed {
        pattern: String,
        zone_name: Option<String>,
        custom_domain: Option<bool>,
    },
}

/// A binding of a wrangler configuration, in manifest terms; a D1 binding names its database
/// by its Cloudflare name here, not by a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConfigBinding {
    /// A D1 binding to the database with this name.
    D1(String),
    /// Anything else the manifest can say.
    Other(Binding),
}

/// What lmsinfra could not map, one line each.
pub(crate) type Unmapped = Vec<String>;

impl WorkerConfig {
    /// The bindings a manifest can hold, by name, and what it cannot.
    pub(crate) fn bindings(&self) -> (IndexMap<String, ConfigBinding>, Unmapped) {
        let mut bindings = IndexMap::new();
        let mut unmapped = Vec::new();
        for (name, value) in &self.vars {
            match value {
                Value::String(text) => {
                    let text = text.clone();
                    bindings.insert(
                        name.clone(),
                        ConfigBinding::Other(Binding::PlainText { text }),
                    );
                }
                _ => unmapped.push(format!(
                    "vars.{name}: a JSON variable (manifests hold text variables only)"
                )),
            }
        }
        for d1 in &self.d1_databases {
            match &d1.database_name {
                Some(name) => {
                    bindings.insert(d1.binding.clone(), ConfigBinding::D1(name.clone()));
                }
                None => unmapped.push(format!("d1_databases {}: no database_name", d1.binding)),
            }
        }
        for kv in &self.kv_namespaces {
            match &kv.id {
                Some(id) => {
                    let binding = Binding::KvNamespace {
                        namespace_id: id.clone(),
                    };
                    bindings.insert(kv.binding.clone(), ConfigBinding::Other(binding));
                }
                None => unmapped.push(format!("kv_namespaces {}: no id", kv.binding)),
            }
        }
        for r2 in &self.r2_buckets {
            match &r2.bucket_name {
                Some(bucket) => {
                    let binding = Binding::R2Bucket {
                        bucket_name: bucket.clone(),
                        jurisdiction: r2.jurisdiction.clone(),
                    };
                    bindings.insert(r2.binding.clone(), ConfigBinding::Other(binding));
                }
                None => unmapped.push(format!("r2_buckets {}: no bucket_name", r2.binding)),
            }
        }
        for service in &self.services {
            if let Some(environment) = &service.environment {
                unmapped.push(format!(
                    "services {}: the service environment `{environment}` (bound without it)",
                    service.binding
                ));
            }
            let binding = Binding::Service {
                service: service.service.clone(),
                entrypoint: service.entrypoint.clone(),
            };
            bindings.insert(service.binding.clone(), ConfigBinding::Other(binding));
        }
        (bindings, unmapped)
    }

    /// The routes a manifest can hold (those with a `zone_name`), and what it cannot.
    pub(crate) fn routes(&self) -> (Vec<Route>, Unmapped) {
        let mut routes = Vec::new();
        let mut unmapped = Vec::new();
        for route in self.route.iter().chain(&self.routes) {
            match route {
                RouteConfig::Detailed {
                    pattern,
                    zone_name: Some(zone),
                    custom_domain: None | Some(false),
                } => routes.push(Route {
                    zone: zone.clone(),
                    pattern: pattern.clone(),
                }),
                RouteConfig::Detailed {
                    pattern,
                    custom_domain: Some(true),
                    ..
                } => unmapped.push(format!("routes {pattern}: a custom domain")),
                RouteConfig::Pattern(pattern) | RouteConfig::Detailed { pattern, .. } => {
                    unmapped.push(format!("routes {pattern}: no zone_name"));
                }
            }
        }
        (routes, unmapped)
    }

    /// Keys that are neither mapped nor about the code: durable objects, queues, crons, ….
    /// `observability` is mapped when it is only `enabled` and `head_sampling_rate`.
    pub(crate) fn unmapped_keys(&self) -> Unmapped {
        self.other
            .keys()
            .filter(|key| !ABOUT_THE_CODE.contains(&key.as_str()))
            .filter(|key| *key != "observability" || self.observability().is_none())
            .map(|key| match key.as_str() {
                "observability" => "observability: logs, traces or destinations, which a manifest does not describe".to_owned(),
                key => format!("{key}: not something a manifest describes"),
            })
            .collect()
    }

    /// The Workers Logs settings as a manifest writes them, when the configuration's
    /// `observability` says no more than `enabled` and `head_sampling_rate`.
    pub(crate) fn observability(&self) -> Option<Observability> {
        let Value::Object(set) = self.other.get("observability")? else {
            return None;
        };
        if set
            .keys()
            .any(|key| key != "enabled" && key != "head_sampling_rate")
        {
            return None;
        }
        Some(Observability {
            enabled: set.get("enabled").and_then(Value::as_bool)?,
            head_sampling_rate: set.get("head_sampling_rate").and_then(Value::as_f64),
        })
    }

    /// Whether the configuration has an `observability` key.
    pub(crate) fn sets_observability(&self) -> bool {
        self.other.contains_key("observability")
    }

    /// Whether `wrangler deploy` of this configuration leaves Workers Logs on, and at which
    /// sampling rate: wrangler turns them off when the configuration has no `observability`
    /// (workers-sdk#6776), and `logs.enabled` overrides `enabled`.
    pub(crate) fn deployed_logs(&self) -> (bool, f64) {
        let set = self.other.get("observability");
        let logs = set.and_then(|o| o.get("logs"));
        let field = |name: &str| {
            logs.and_then(|l| l.get(name))
                .or_else(|| set.and_then(|o| o.get(name)))
        };
        let enabled = field("enabled").and_then(Value::as_bool).unwrap_or(false);
        let rate = field("head_sampling_rate")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        (enabled, rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config {
            path: "wrangler.toml".into(),
            table: toml::from_str(toml).unwrap(),
        }
    }

    #[test]
    fn an_environment_inherits_the_name_but_not_the_bindings() {
        let config = config(
            r#"
            name = "lms-api"
            compatibility_date = "2024-12-01"
            [vars]
            MODE = "prod"
            [env.staging]
            workers_dev = true
            "#,
        );
        let staging = config.resolve("staging").unwrap().unwrap();
        assert_eq!(staging.name.as_deref(), Some("lms-api-staging"));
        assert_eq!(staging.compatibility_date.as_deref(), Some("2024-12-01"));
        assert!(staging.bindings().0.is_empty());
        assert_eq!(config.environments(), ["production", "staging"]);
        assert!(config.resolve("preview").unwrap().is_none());
    }

    #[test]
    fn json_vars_and_durable_objects_are_reported_unmapped() {
        let config = config(
            r#"
            name = "api"
            main = "src/index.js"
            [vars]
            LIMITS = { max = 3 }
            [durable_objects]
            bindings = []
            "#,
        );
        let worker = config.resolve("production").unwrap().unwrap();
        assert_eq!(worker.bindings().1.len(), 1);
        assert_eq!(
            worker.unmapped_keys(),
            ["durable_objects: not something a manifest describes"]
        );
    }
}
