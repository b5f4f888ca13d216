//! Where a wrangler configuration in the repository disagrees with the manifest: each difference
//! is a plan warning, because the next `wrangler deploy` sets the Worker's bindings to the
//! configuration's, undoing what apply set.
//!
//! Where plan looks: `wrangler.{json,jsonc,toml}` in the project root, matched to a Worker by the
//! name it resolves to, and in `workers/<key>/` for the Worker with that key.

use std::path::Path;

use super::{Config, ConfigBinding, TOP_LEVEL_ENVIRONMENT};
use crate::manifest::model::{Binding, Manifest};
use crate::plan::{Address, Setting, Warning};

/// The warnings for every wrangler configuration of the project in `dir`.
pub(crate) fn check_project(dir: &Path, manifest: &Manifest) -> Vec<Warning> {
    let mut places: Vec<(std::path::PathBuf, Option<&str>)> = Vec::new();
    if let Some(path) = super::find(dir) {
        places.push((path, None));
    }
    for key in manifest.workers.keys() {
        if let Some(path) = super::find(&dir.join("workers").join(key)) {
            places.push((path, Some(key)));
        }
    }
    let mut warnings = Vec::new();
    for (path, key) in places {
        match super::read(&path) {
            Ok(config) => warnings.extend(compare(&config, manifest, key)),
            Err(err) => warnings.push(Warning {
                address: Address::Wrangler,
                message: err.to_string(),
            }),
        }
    }
    warnings
}

/// How `config` disagrees with `manifest`'s environment. `key` is the Worker it describes; when
/// `None`, the Worker whose name the configuration resolves to.
pub(crate) fn compare(config: &Config, manifest: &Manifest, key: Option<&str>) -> Vec<Warning> {
    let file = config
        .path
        .strip_prefix(".")
        .unwrap_or(&config.path)
        .display()
        .to_string();
    let environment = manifest.environment.as_str();
    let section = if environment == TOP_LEVEL_ENVIRONMENT {
        "its top level".to_owned()
    } else {
        format!("[env.{environment}]")
    };
    let warn = |address: Address, message: String| Warning {
        address,
        message: format!("{file}: {message}"),
    };
    let worker_config = match config.resolve(environment) {
        Ok(Some(worker)) => worker,
        Ok(None) => {
            return vec![warn(
                Address::Wrangler,
                format!(
                    "has no [env.{environment}] section, so `wrangler deploy --env {environment}` does not deploy what the manifest says; `lmsinfra wrangler-config {environment} --write {file}` adds one and keeps the file's other environments"
                ),
            )];
        }
        Err(err) => return vec![warn(Address::Wrangler, err.to_string())],
    };
    let found = match key {
        Some(key) => manifest.workers.get_key_value(key),
        None => manifest
            .workers
            .iter()
            .find(|(_, w)| Some(&w.name) == worker_config.name.as_ref()),
    };
    let Some((key, worker)) = found else {
        let name = worker_config.name.as_deref().unwrap_or("(no name)");
        return vec![warn(
            Address::Wrangler,
            format!(
                "{section} deploys Worker {name}, which the manifest of {environment} does not declare"
            ),
        )];
    };
    let worker_address = || Address::Worker { key: key.clone() };
    let setting_address = |setting| Address::Setting {
        worker: key.clone(),
        setting,
    };
    let binding_address = |name: &str| Address::Binding {
        worker: key.clone(),
        name: name.to_owned(),
    };
    let mut warnings = Vec::new();
    if worker_config.name.as_ref() != Some(&worker.name) {
        warnings.push(warn(
            worker_address(),
            format!(
                "{section} deploys {}, the manifest names {}",
                worker_config.name.as_deref().unwrap_or("(no name)"),
                worker.name
            ),
        ));
    }
    if worker_config.compatibility_date.as_ref() != Some(&worker.compatibility_date) {
        warnings.push(warn(
            setting_address(Setting::CompatibilityDate),
            format!(
                "{section} sets compatibility_date {}, the manifest {}",
                worker_config
                    .compatibility_date
                    .as_deref()
                    .unwrap_or("(none)"),
                worker.compatibility_date
            ),
        ));
    }
    let mut theirs = worker_config.compatibility_flags.clone();
    let mut ours = worker.compatibility_flags.clone();
    theirs.sort();
    ours.sort();
    if theirs != ours {
        warnings.push(warn(
            setting_address(Setting::CompatibilityFlags),
            format!(
                "{section} sets compatibility_flags [{}], the manifest [{}]",
                theirs.join(", "),
                ours.join(", ")
            ),
        ));
    }
    if let Some(wanted) = &worker.observability {
        let (enabled, rate) = worker_config.deployed_logs();
        let wanted_rate = wanted.head_sampling_rate.unwrap_or(1.0);
        if enabled != wanted.enabled || (wanted.enabled && rate != wanted_rate) {
            let theirs = if worker_config.sets_observability() {
                format!("leaves Workers Logs {}", logs(enabled, rate))
            } else {
                "sets no observability, and `wrangler deploy` then turns Workers Logs off"
                    .to_owned()
            };
            warnings.push(warn(
                setting_address(Setting::Observability),
                format!(
                    "{section} {theirs}; the manifest wants them {}",
                    logs(wanted.enabled, wanted_rate)
                ),
            ));
        }
    }
    let (bindings, _) = worker_config.bindings();
    for (name, binding) in &worker.bindings {
        let expected = match binding {
            Binding::D1 { database } => match manifest.d1_databases.get(database) {
                Some(db) => ConfigBinding::D1(db.name.clone()),
                None => continue,
            },
            other => ConfigBinding::Other(other.clone()),
        };
        match bindings.get(name) {
            None => warnings.push(warn(
                binding_address(name),
                format!(
                    "{section} lacks binding {name}, so the next `wrangler deploy` removes it; add {}",
                    describe(&expected)
                ),
            )),
            Some(found) if *found != expected => warnings.push(warn(
                binding_address(name),
                format!(
                    "{section} has binding {name} as {}, the manifest as {}",
                    describe(found),
                    describe(&expected)
                ),
            )),
            Some(_) => {}
        }
    }
    for (name, found) in &bindings {
        if !worker.bindings.contains_key(name) && !worker.secrets.contains(name) {
            warnings.push(warn(
                binding_address(name),
                format!(
                    "{section} adds binding {name} ({}), which the manifest does not declare",
                    describe(found)
                ),
            ));
        }
    }
    warnings
}

/// Workers Logs as a warning words them.
fn logs(enabled: bool, rate: f64) -> String {
    if enabled {
        format!("on at head_sampling_rate {rate}")
    } else {
        "off".to_owned()
    }
}

/// A binding as a wrangler configuration would write it.
fn describe(binding: &ConfigBinding) -> String {
    match binding {
        ConfigBinding::D1(name) => format!("a d1_databases entry for database {name}"),
        ConfigBinding::Other(Binding::PlainText { text }) => format!("a var {text:?}"),
        ConfigBinding::Other(Binding::KvNamespace { namespace_id }) => {
            format!("a kv_namespaces entry with id {namespace_id}")
        }
        ConfigBinding::Other(Binding::R2Bucket { bucket_name, .. }) => {
            format!("an r2_buckets entry for bucket {bucket_name}")
        }
        ConfigBinding::Other(Binding::Service { service, .. }) => {
            format!("a services entry for Worker {service}")
        }
        ConfigBinding::Other(Binding::D1 { database }) => format!("database {database}"),
        ConfigBinding::Other(Binding::Ratelimit { namespace_id, .. }) => {
            format!("a ratelimits entry in namespace {namespace_id}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        yaml_serde::from_str(text).unwrap()
    }

    const STAGING: &str = r#"
environment: staging
account_id: 0123456789abcdef0123456789abcdef
d1_databases:
  main: { name: lms-db-staging }
workers:
  api:
    name: lms-api-staging
    compatibility_date: "2024-12-01"
    bindings:
      DB: { type: d1, database: main }
      MODE: { type: plain_text, text: staging }
"#;

    fn config(toml: &str) -> Config {
        Config {
            path: "wrangler.toml".into(),
            table: toml::from_str(toml).unwrap(),
        }
    }

    #[test]
    fn a_staging_section_without_bindings_warns_for_each_one() {
        let config = config(
            "name = \"lms-api\"\ncompatibility_date = \"2024-12-01\"\n[env.staging]\nname = \"lms-api-staging\"\n",
        );
        let warnings = compare(&config, &manifest(STAGING), None);
        let addresses: Vec<String> = warnings.iter().map(|w| w.address.to_string()).collect();
        assert_eq!(
            addresses,
            ["worker.api.binding.DB", "worker.api.binding.MODE"]
        );
        assert!(
            warnings[0].message.contains("lacks binding DB"),
            "{}",
            warnings[0].message
        );
    }

    #[test]
    fn an_agreeing_configuration_has_no_warnings() {
        let config = config(
            r#"
            compatibility_date = "2024-12-01"
            [env.staging]
            name = "lms-api-staging"
            vars = { MODE = "staging" }
            d1_databases = [{ binding = "DB", database_name = "lms-db-staging", database_id = "x" }]
            "#,
        );
        assert_eq!(compare(&config, &manifest(STAGING), None), []);
    }

    #[test]
    fn workers_logs_the_next_deploy_would_change_are_a_warning() {
        let declared = manifest(&format!(
            "{STAGING}    observability: {{ enabled: true, head_sampling_rate: 0.5 }}\n"
        ));
        let agreeing = r#"
            compatibility_date = "2024-12-01"
            [env.staging]
            name = "lms-api-staging"
            vars = { MODE = "staging" }
            d1_databases = [{ binding = "DB", database_name = "lms-db-staging", database_id = "x" }]
            "#;
        let warned = |extra: &str| -> Vec<String> {
            compare(&config(&format!("{agreeing}{extra}")), &declared, None)
                .into_iter()
                .map(|w| format!("{}: {}", w.address, w.message))
                .collect()
        };
        assert_eq!(
            warned(""),
            [
                "worker.api.observability: wrangler.toml: [env.staging] sets no observability, and `wrangler deploy` then turns Workers Logs off; the manifest wants them on at head_sampling_rate 0.5"
            ]
        );
        assert_eq!(
            warned("observability = { enabled = true, head_sampling_rate = 1.0 }\n"),
            [
                "worker.api.observability: wrangler.toml: [env.staging] leaves Workers Logs on at head_sampling_rate 1; the manifest wants them on at head_sampling_rate 0.5"
            ]
        );
        // `logs.enabled` decides over `enabled`, as wrangler reads it.
        let logs_off = "observability = { enabled = true, head_sampling_rate = 0.5, logs = { enabled = false } }\n";
        assert_eq!(warned(logs_off).len(), 1);
        assert_eq!(
            warned("observability = { enabled = true, head_sampling_rate = 0.5 }\n"),
            Vec::<String>::new()
        );
        // Inherited from the top level, as wrangler does.
        let top = r#"observability = { enabled = true, head_sampling_rate = 0.5 }
"#;
        let inherited = compare(&config(&format!("{top}{agreeing}")), &declared, None);
        assert_eq!(inherited, []);
        // A manifest that does not declare Workers Logs leaves them to the file.
        assert_eq!(compare(&config(agreeing), &manifest(STAGING), None), []);
    }

    #[test]
    fn a_configuration_in_a_worker_folder_is_compared_with_that_worker() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("workers/api");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("wrangler.jsonc"),
            r#"{ "name": "other-name", "compatibility_date": "2024-12-01",
                 // staging as the team deploys it
                 "env": { "staging": { "name": "lms-api-staging", "vars": { "MODE": "staging" } } } }"#,
        )
        .unwrap();
        let warnings = check_project(dir.path(), &manifest(STAGING));
        let addresses: Vec<String> = warnings.iter().map(|w| w.address.to_string()).collect();
        assert_eq!(addresses, ["worker.api.binding.DB"]);
    }

    #[test]
    fn a_different_value_and_an_extra_binding_are_named() {
        let config = config(
            r#"
            compatibility_date = "2024-11-01"
            [env.staging]
            name = "lms-api-staging"
            vars = { MODE = "prod", EXTRA = "1" }
            d1_databases = [{ binding = "DB", database_name = "lms-db-staging" }]
            "#,
        );
        let warnings = compare(&config, &manifest(STAGING), None);
        let addresses: Vec<String> = warnings.iter().map(|w| w.address.to_string()).collect();
        assert_eq!(
            addresses,
            [
                "worker.api.compatibility_date",
                "worker.api.binding.MODE",
                "worker.api.binding.EXTRA"
            ]
        );
    }
}
