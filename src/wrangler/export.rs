//! One Worker of a manifest → the section of a wrangler configuration whose bindings, vars and
//! compatibility settings are the manifest's, so that `wrangler deploy --env ENV` keeps what apply
//! set.
//!
//! Production is the top level; another environment is `env.NAME`, where
//! `wrangler deploy --env NAME` reads it. D1 bindings need the databases' ids, read from the
//! live account. [`super::merge`] places sections into a configuration file.

use serde_json::{Map, Value, json};

use super::{Error, TOP_LEVEL_ENVIRONMENT};
use crate::live::LiveDatabase;
use crate::manifest::model::{Binding, Manifest};

/// The keys of a section that lmsinfra writes. Writing a section replaces these (and removes
/// those the manifest leaves out) and keeps every other key of the file.
pub(crate) const MANAGED: [&str; 11] = [
    "name",
    "compatibility_date",
    "compatibility_flags",
    "vars",
    "d1_databases",
    "kv_namespaces",
    "r2_buckets",
    "services",
    "ratelimits",
    "routes",
    "route",
];

/// Keys a section writes only when the manifest declares them, and otherwise leaves as the file
/// has them: a manifest that says nothing of Workers Logs leaves them to the file.
pub(crate) const WHEN_DECLARED: [&str; 1] = ["observability"];

/// One environment's part of a wrangler configuration.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    /// The environment: `production` is the top level, any other `env.NAME`.
    pub(crate) environment: String,
    /// The managed keys the manifest sets; a managed key missing here is removed.
    pub(crate) fields: Map<String, Value>,
}

impl Section {
    /// Whether this section is the configuration's top level.
    pub(crate) fn is_top_level(&self) -> bool {
        self.environment == TOP_LEVEL_ENVIRONMENT
    }
}

/// The section of worker `key` of `manifest`, with the ids of `databases`.
pub(crate) fn export(
    manifest: &Manifest,
    key: &str,
    databases: &[LiveDatabase],
) -> Result<Section, Error> {
    let worker = &manifest.workers[key];
    let mut section = Map::new();
    section.insert("name".into(), json!(worker.name));
    section.insert(
        "compatibility_date".into(),
        json!(worker.compatibility_date),
    );
    section.insert(
        "compatibility_flags".into(),
        json!(worker.compatibility_flags),
    );
    let mut vars = Map::new();
    let mut d1 = Vec::new();
    let mut kv = Vec::new();
    let mut r2 = Vec::new();
    let mut services = Vec::new();
    let mut ratelimits = Vec::new();
    for (name, binding) in &worker.bindings {
        match binding {
            Binding::PlainText { text } => {
                vars.insert(name.clone(), json!(text));
            }
            Binding::D1 { database } => {
                let declared = &manifest.d1_databases[database];
                let Some(live) = databases.iter().find(|d| d.name == declared.name) else {
                    return Err(Error::DatabaseMissing {
                        key: database.clone(),
                        name: declared.name.clone(),
                        environment: manifest.environment.clone(),
                    });
                };
                d1.push(json!({
                    "binding": name,
                    "database_name": declared.name,
                    "database_id": live.uuid,
                }));
            }
            Binding::KvNamespace { namespace_id } => {
                kv.push(json!({ "binding": name, "id": namespace_id }));
            }
            Binding::R2Bucket {
                bucket_name,
                jurisdiction,
            } => {
                let mut bucket = json!({ "binding": name, "bucket_name": bucket_name });
                if let Some(jurisdiction) = jurisdiction {
                    bucket["jurisdiction"] = json!(jurisdiction);
                }
                r2.push(bucket);
            }
            Binding::Service {
                service,
                entrypoint,
            } => {
                let mut bound = json!({ "binding": name, "service": service });
                if let Some(entrypoint) = entrypoint {
                    bound["entrypoint"] = json!(entrypoint);
                }
                services.push(bound);
            }
            Binding::Ratelimit {
                namespace_id,
                simple,
            } => {
                ratelimits.push(json!({
                    "name": name,
                    "namespace_id": namespace_id,
                    "simple": { "limit": simple.limit, "period": simple.period },
                }));
            }
        }
    }
    section.insert("vars".into(), Value::Object(vars));
    for (field, list) in [
        ("d1_databases", d1),
        ("kv_namespaces", kv),
        ("r2_buckets", r2),
        ("services", services),
        ("ratelimits", ratelimits),
    ] {
        if !list.is_empty() {
            section.insert(field.into(), Value::Array(list));
        }
    }
    // Written because `wrangler deploy` turns Workers Logs off when the file has no
    // `observability` (workers-sdk#6776), undoing what apply set.
    if let Some(observability) = &worker.observability {
        let mut set = json!({ "enabled": observability.enabled });
        if let Some(rate) = observability.head_sampling_rate {
            set["head_sampling_rate"] = json!(rate);
        }
        section.insert("observability".into(), set);
    }
    // An `[env.NAME]` section without `routes` inherits the top level's, so a staging Worker
    // would be deployed on production's routes: another environment always says its own.
    if !worker.routes.is_empty() || manifest.environment != TOP_LEVEL_ENVIRONMENT {
        let routes: Vec<Value> = worker
            .routes
            .iter()
            .map(|r| json!({ "pattern": r.pattern, "zone_name": r.zone }))
            .collect();
        section.insert("routes".into(), Value::Array(routes));
    }
    Ok(Section {
        environment: manifest.environment.clone(),
        fields: section,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::model::{Bindings, D1Database, Parity, Worker};
    use indexmap::IndexMap;

    fn staging() -> Manifest {
        Manifest {
            environment: "staging".into(),
            account_id: "0123456789abcdef0123456789abcdef".into(),
            d1_databases: IndexMap::from([(
                "main".to_owned(),
                D1Database {
                    name: "lms-db-staging".into(),
                    location_hint: None,
                    protect: true,
                    absent: false,
                    migrations: None,
                    backup: None,
                },
            )]),
            workers: IndexMap::from([(
                "api".to_owned(),
                Worker {
                    name: "lms-api-staging".into(),
                    compatibility_date: "2024-12-01".into(),
                    compatibility_flags: vec!["nodejs_compat".into()],
                    bindings: Bindings::from([
                        (
                            "DB".to_owned(),
                            Binding::D1 {
                                database: "main".into(),
                            },
                        ),
                        (
                            "MODE".to_owned(),
                            Binding::PlainText {
                                text: "staging".into(),
                            },
                        ),
                    ]),
                    secrets: vec!["TOKEN".to_owned()].into(),
                    headers: None,
                    routes: Vec::new(),
                    rate_limits: None,
                    smoke: None,
                    observability: None,
                },
            )]),
            parity: Parity::default(),
            capacity: Default::default(),
        }
    }

    #[test]
    fn staging_goes_under_env_with_the_live_database_id() {
        let live = [LiveDatabase {
            uuid: "1111".into(),
            name: "lms-db-staging".into(),
        }];
        let section = export(&staging(), "api", &live).unwrap();
        assert!(!section.is_top_level());
        let fields = &section.fields;
        assert_eq!(fields["name"], "lms-api-staging");
        assert_eq!(fields["vars"], json!({ "MODE": "staging" }));
        assert_eq!(
            fields["d1_databases"],
            json!([{ "binding": "DB", "database_name": "lms-db-staging", "database_id": "1111" }])
        );
        assert_eq!(
            fields["routes"],
            json!([]),
            "staging does not inherit routes"
        );
        assert!(fields.keys().all(|k| MANAGED.contains(&k.as_str())));
        assert!(!fields.contains_key("observability"), "not declared");
    }

    #[test]
    fn declared_workers_logs_are_written_as_wrangler_reads_them() {
        let mut manifest = staging();
        manifest.workers["api"].observability = Some(crate::manifest::model::Observability {
            enabled: true,
            head_sampling_rate: Some(0.5),
        });
        let live = [LiveDatabase {
            uuid: "1111".into(),
            name: "lms-db-staging".into(),
        }];
        let section = export(&manifest, "api", &live).unwrap();
        assert_eq!(
            section.fields["observability"],
            json!({ "enabled": true, "head_sampling_rate": 0.5 })
        );
    }

    #[test]
    fn a_database_not_yet_created_says_to_apply_first() {
        let err = export(&staging(), "api", &[]).unwrap_err();
        assert!(matches!(err, Error::DatabaseMissing { .. }), "{err:?}");
    }
}
