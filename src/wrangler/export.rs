//! One Worker of a manifest → a wrangler configuration whose bindings, vars and compatibility
//! settings are the manifest's, so that `wrangler deploy --env ENV` keeps what apply set.
//!
//! Production is written at the top level; another environment under `env.NAME`, where
//! `wrangler deploy --env NAME` reads it. D1 bindings need the databases' ids, read from the
//! live account.

use serde_json::{Map, Value, json};

use super::{Error, TOP_LEVEL_ENVIRONMENT};
use crate::live::LiveDatabase;
use crate::manifest::model::{Binding, Manifest};

/// What wrangler's own configurations name as their schema.
const SCHEMA: &str = "./node_modules/wrangler/config-schema.json";

/// The configuration of worker `key` of `manifest`, with the ids of `databases`; `main` is the
/// entry point to name, when one is given.
pub(crate) fn export(
    manifest: &Manifest,
    key: &str,
    databases: &[LiveDatabase],
    main: Option<&str>,
) -> Result<Value, Error> {
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
    if !worker.routes.is_empty() {
        let routes: Vec<Value> = worker
            .routes
            .iter()
            .map(|r| json!({ "pattern": r.pattern, "zone_name": r.zone }))
            .collect();
        section.insert("routes".into(), Value::Array(routes));
    }

    let mut config = Map::new();
    config.insert("$schema".into(), json!(SCHEMA));
    if let Some(main) = main {
        config.insert("main".into(), json!(main));
    }
    if manifest.environment == TOP_LEVEL_ENVIRONMENT {
        config.extend(section);
    } else {
        config.insert(
            "env".into(),
            json!({ manifest.environment.clone(): section }),
        );
    }
    Ok(Value::Object(config))
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
        let config = export(&staging(), "api", &live, None).unwrap();
        let section = &config["env"]["staging"];
        assert_eq!(section["name"], "lms-api-staging");
        assert_eq!(section["vars"], json!({ "MODE": "staging" }));
        assert_eq!(
            section["d1_databases"],
            json!([{ "binding": "DB", "database_name": "lms-db-staging", "database_id": "1111" }])
        );
        assert_eq!(config["$schema"], SCHEMA);
    }

    #[test]
    fn a_database_not_yet_created_says_to_apply_first() {
        let err = export(&staging(), "api", &[], None).unwrap_err();
        assert!(matches!(err, Error::DatabaseMissing { .. }), "{err:?}");
    }
}
