//! A wrangler configuration → one manifest per environment.
//!
//! Keys: the Worker's key is its production name without the first dash-separated part, the
//! project prefix (`lms-api` → `api`; a name without a dash is kept whole), unless
//! `--worker-key` says otherwise. A D1 database's key is its binding's name in lowercase
//! (`DB` → `db`): the binding name is what stays the same across environments while the
//! database's name does not.

use indexmap::IndexMap;

use super::{Config, ConfigBinding, Error, TOP_LEVEL_ENVIRONMENT};
use crate::manifest::credential_suffix;
use crate::manifest::model::{Binding, D1Database, Manifest, Parity, Worker};

/// The first line of every manifest import writes, so editors find the schema.
pub(crate) const SCHEMA_LINE: &str =
    "# yaml-language-server: $schema=../schemas/environment.schema.json";

/// What `import` needs besides the configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImportOptions {
    /// The environments to import (all the file describes when empty).
    pub(crate) environments: Vec<String>,
    /// The account id, over the configuration's (`--account-id`, else `CLOUDFLARE_ACCOUNT_ID`).
    pub(crate) account_id: Option<String>,
    /// The Worker's key, instead of the one derived from its name.
    pub(crate) worker_key: Option<String>,
}

/// The manifests made from a configuration, and what could not be carried over.
#[derive(Debug, Clone)]
pub(crate) struct Import {
    /// One manifest per environment.
    pub(crate) manifests: Vec<Manifest>,
    /// (environment, what) for everything left out.
    pub(crate) unmapped: Vec<(String, String)>,
    /// (environment, what) for what was carried over differently from the configuration.
    pub(crate) notes: Vec<(String, String)>,
}

impl Import {
    /// A manifest as import writes it: the schema line, then YAML. Compatibility dates are
    /// quoted, so YAML 1.1 tools read them as strings, not dates.
    pub(crate) fn render(manifest: &Manifest) -> String {
        let yaml = yaml_serde::to_string(manifest).expect("a manifest serialises to YAML");
        let mut text = format!("{SCHEMA_LINE}\n");
        for line in yaml.lines() {
            match line.split_once("compatibility_date: ") {
                Some((indent, date))
                    if indent.trim().is_empty() && !date.starts_with(['"', '\'']) =>
                {
                    text.push_str(&format!("{indent}compatibility_date: \"{date}\"\n"));
                }
                _ => {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        text
    }
}

/// The key of a Worker called `name`.
pub(crate) fn worker_key(name: &str) -> &str {
    match name.split_once('-') {
        Some((_, rest)) if !rest.is_empty() => rest,
        _ => name,
    }
}

/// Turn `config` into manifests.
pub(crate) fn import(config: &Config, options: &ImportOptions) -> Result<Import, Error> {
    let incomplete = |reason: String, hint: &str| Error::Incomplete {
        path: config.path.clone(),
        reason,
        hint: hint.to_owned(),
    };
    let environments = if options.environments.is_empty() {
        config.environments()
    } else {
        options.environments.clone()
    };
    for environment in &environments {
        if let Err(why) = crate::manifest::environment_name(environment) {
            return Err(incomplete(
                format!("the environment name {environment:?} cannot name a manifest: {why}"),
                "import writes environments/<name>.yaml; rename the [env.…] section, or pass --env with the environments to import",
            ));
        }
    }
    let mut resolved = Vec::new();
    for environment in &environments {
        let Some(worker) = config.resolve(environment)? else {
            return Err(incomplete(
                format!("there is no [env.{environment}] section"),
                &format!(
                    "the environments it describes are {}",
                    config.environments().join(", ")
                ),
            ));
        };
        resolved.push((environment.clone(), worker));
    }
    let production_name = config
        .resolve(TOP_LEVEL_ENVIRONMENT)?
        .and_then(|w| w.name)
        .or_else(|| resolved.iter().find_map(|(_, w)| w.name.clone()));
    let key = match (&options.worker_key, &production_name) {
        (Some(key), _) => key.clone(),
        (None, Some(name)) => worker_key(name).to_owned(),
        (None, None) => {
            return Err(incomplete(
                "the Worker has no name".to_owned(),
                "add `name` to the configuration, or pass --worker-key",
            ));
        }
    };
    let undated: Vec<&str> = resolved
        .iter()
        .filter(|(_, w)| w.compatibility_date.is_none())
        .map(|(env, _)| env.as_str())
        .collect();
    if !undated.is_empty() {
        return Err(incomplete(
            format!("no compatibility_date for {}", undated.join(", ")),
            "add `compatibility_date = \"YYYY-MM-DD\"` at the top level: a manifest requires one",
        ));
    }

    let mut import = Import {
        manifests: Vec::new(),
        unmapped: Vec::new(),
        notes: Vec::new(),
    };
    for (environment, worker) in resolved {
        let Some(account_id) = options.account_id.clone().or(worker.account_id.clone()) else {
            return Err(incomplete(
                "no account_id".to_owned(),
                "add `account_id` to the configuration, set CLOUDFLARE_ACCOUNT_ID, or pass --account-id",
            ));
        };
        let Some(name) = worker.name.clone() else {
            return Err(incomplete(
                format!("the Worker of {environment} has no name"),
                "add `name` to the configuration",
            ));
        };
        let (found, mut unmapped) = worker.bindings();
        let (mut routes, unmapped_routes) = worker.routes();
        unmapped.extend(unmapped_routes);
        if config.inherits(&environment, &["routes", "route"]) && !routes.is_empty() {
            routes.clear();
            import.notes.push((
                environment.clone(),
                format!(
                    "routes: [env.{environment}] sets none, so wrangler deploys it on the top level's (production's) routes; not imported: give [env.{environment}] its own `routes`"
                ),
            ));
        }
        let mut secrets = Vec::new();
        unmapped.extend(worker.unmapped_keys());
        let mut d1_databases = IndexMap::new();
        let mut bindings = IndexMap::new();
        for (binding, found) in found {
            let binding_value = match found {
                ConfigBinding::D1(database_name) => {
                    let database = binding.to_ascii_lowercase();
                    d1_databases.insert(
                        database.clone(),
                        D1Database {
                            name: database_name,
                            location_hint: None,
                            protect: true,
                            absent: false,
                            migrations: None,
                            backup: None,
                        },
                    );
                    Binding::D1 { database }
                }
                ConfigBinding::Other(Binding::PlainText { .. })
                    if credential_suffix(&binding).is_some() =>
                {
                    import.notes.push((
                        environment.clone(),
                        format!(
                            "vars.{binding}: looks like a credential, so it is a required secret; its value was dropped (supply it with `lmsinfra apply {environment} --secret {binding}=env:{binding}`)"
                        ),
                    ));
                    secrets.push(binding);
                    continue;
                }
                ConfigBinding::Other(other) => other,
            };
            bindings.insert(binding, binding_value);
        }
        let manifest = Manifest {
            environment: environment.clone(),
            account_id,
            d1_databases,
            workers: IndexMap::from([(
                key.clone(),
                Worker {
                    name,
                    compatibility_date: worker.compatibility_date.clone().unwrap_or_default(),
                    compatibility_flags: worker.compatibility_flags.clone(),
                    bindings: bindings.into(),
                    secrets: secrets.into(),
                    headers: None,
                    routes,
                    rate_limits: None,
                    smoke: None,
                    observability: worker.observability(),
                },
            )]),
            parity: Parity::default(),
            capacity: Default::default(),
        };
        import
            .unmapped
            .extend(unmapped.into_iter().map(|u| (environment.clone(), u)));
        import.manifests.push(manifest);
    }
    Ok(import)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_keys_drop_the_project_prefix() {
        assert_eq!(worker_key("lms-api"), "api");
        assert_eq!(worker_key("lms-api-gateway"), "api-gateway");
        assert_eq!(worker_key("api"), "api");
        assert_eq!(worker_key("api-"), "api-");
    }

    #[test]
    fn rendered_manifests_quote_dates_and_load_back() {
        let config = Config {
            path: "wrangler.toml".into(),
            table: toml::from_str(
                "name = \"lms-api\"\naccount_id = \"0123456789abcdef0123456789abcdef\"\ncompatibility_date = \"2024-12-01\"\n[vars]\nMODE = \"prod\"\n",
            )
            .unwrap(),
        };
        let imported = import(&config, &ImportOptions::default()).unwrap();
        let text = Import::render(&imported.manifests[0]);
        assert!(text.starts_with(SCHEMA_LINE), "{text}");
        assert!(
            text.contains("compatibility_date: \"2024-12-01\"\n"),
            "{text}"
        );
        let loaded = crate::manifest::parse_valid("production.yaml", "production", &text).unwrap();
        assert_eq!(loaded, imported.manifests[0]);
    }

    #[test]
    fn a_credential_in_vars_becomes_a_secret_name_and_staging_does_not_take_production_routes() {
        let config = Config {
            path: "wrangler.toml".into(),
            table: toml::from_str(
                r#"
                name = "lms-api"
                account_id = "0123456789abcdef0123456789abcdef"
                compatibility_date = "2024-12-01"
                routes = [{ pattern = "api.example.com/*", zone_name = "example.com" }]
                [vars]
                MODE = "prod"
                STRIPE_API_KEY = "sk_live_canary_4f2a"
                [env.staging]
                "#,
            )
            .unwrap(),
        };
        let imported = import(&config, &ImportOptions::default()).unwrap();
        let production = &imported.manifests[0].workers["api"];
        assert_eq!(
            production.secrets.iter().collect::<Vec<_>>(),
            ["STRIPE_API_KEY"]
        );
        assert!(!production.bindings.contains_key("STRIPE_API_KEY"));
        assert_eq!(production.routes.len(), 1);
        assert!(imported.manifests[1].workers["api"].routes.is_empty());
        let text = Import::render(&imported.manifests[0]);
        assert!(!text.contains("sk_live_canary_4f2a"), "{text}");
        crate::manifest::parse_valid("production.yaml", "production", &text).unwrap();
        let notes: Vec<&str> = imported.notes.iter().map(|(_, n)| n.as_str()).collect();
        assert!(
            notes.iter().any(|n| n.starts_with("vars.STRIPE_API_KEY")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.starts_with("routes: [env.staging]")),
            "{notes:?}"
        );
        assert!(!notes.concat().contains("sk_live_canary_4f2a"));
    }

    #[test]
    fn simple_workers_logs_are_imported_and_richer_ones_reported() {
        let imported = |observability: &str| {
            let config = Config {
                path: "wrangler.toml".into(),
                table: toml::from_str(&format!(
                    "name = \"lms-api\"\naccount_id = \"0123456789abcdef0123456789abcdef\"\ncompatibility_date = \"2024-12-01\"\n{observability}"
                ))
                .unwrap(),
            };
            import(&config, &ImportOptions::default()).unwrap()
        };
        let simple = imported("observability = { enabled = true, head_sampling_rate = 0.25 }");
        assert_eq!(
            simple.manifests[0].workers["api"].observability,
            Some(crate::manifest::model::Observability {
                enabled: true,
                head_sampling_rate: Some(0.25),
            })
        );
        assert!(simple.unmapped.is_empty(), "{:?}", simple.unmapped);
        let text = Import::render(&simple.manifests[0]);
        let loaded = crate::manifest::parse_valid("production.yaml", "production", &text).unwrap();
        assert_eq!(loaded, simple.manifests[0]);

        let richer =
            imported("observability = { enabled = true, logs = { invocation_logs = true } }");
        assert_eq!(richer.manifests[0].workers["api"].observability, None);
        let unmapped: Vec<&str> = richer.unmapped.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(
            unmapped,
            ["observability: logs, traces or destinations, which a manifest does not describe"]
        );
    }

    #[test]
    fn a_missing_compatibility_date_is_reported() {
        let config = Config {
            path: "wrangler.toml".into(),
            table: toml::from_str("name = \"lms-api\"\naccount_id = \"x\"").unwrap(),
        };
        let err = import(&config, &ImportOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("no compatibility_date for production"),
            "{err}"
        );
    }
}
