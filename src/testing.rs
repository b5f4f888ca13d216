//! Fixtures shared by the unit tests of plan, apply, check and render: staging's manifest, the
//! live account it describes, and variations of both.

use std::collections::BTreeMap;

use serde_json::json;

use crate::cloudflare;
use crate::live::{Live, LiveDatabase, LiveWorker, Probe};
use crate::manifest::model::Manifest;
use crate::plan::DiffOptions;

pub(crate) const STAGING: &str = r#"
environment: staging
account_id: 0123456789abcdef0123456789abcdef
d1_databases:
  main: { name: lms-db-staging, location_hint: weur }
workers:
  api:
    name: lms-api-staging
    compatibility_date: "2024-12-01"
    compatibility_flags: [nodejs_compat]
    bindings:
      DB: { type: d1, database: main }
      ALLOWED_ORIGINS: { type: plain_text, text: "https://lms-viewer-staging.example.workers.dev" }
    secrets: [TALLY_WEBHOOK_SECRET, TALLY_SIGNING_SECRET]
    headers:
      url: https://lms-api-staging.example.workers.dev/health
      require:
        X-Frame-Options: DENY
        X-Content-Type-Options: nosniff
"#;

pub(crate) fn manifest(yaml: &str) -> Manifest {
    yaml_serde::from_str(yaml).expect("test manifest parses")
}

/// A live binding of type `kind` with `fields` besides its name and type, as Cloudflare would
/// send it.
pub(crate) fn binding(name: &str, kind: &str, fields: serde_json::Value) -> cloudflare::Binding {
    let mut wire = json!({ "name": name, "type": kind });
    if let (Some(wire), Some(fields)) = (wire.as_object_mut(), fields.as_object()) {
        wire.extend(fields.clone());
    }
    serde_json::from_value(wire).expect("a binding Cloudflare could send")
}

pub(crate) fn secret(name: &str) -> cloudflare::Binding {
    cloudflare::Binding::SecretText {
        name: name.to_owned(),
    }
}

/// The account as staging's manifest describes it.
pub(crate) fn converged() -> Live {
    let mut live = Live {
        account_id: "0123456789abcdef0123456789abcdef".to_owned(),
        ..Live::default()
    };
    live.d1_databases.push(LiveDatabase {
        uuid: "uuid-staging".to_owned(),
        name: "lms-db-staging".to_owned(),
    });
    live.scripts.insert("lms-api-staging".to_owned());
    live.workers.insert(
        "lms-api-staging".to_owned(),
        LiveWorker {
            name: "lms-api-staging".to_owned(),
            compatibility_date: Some("2024-12-01".to_owned()),
            compatibility_flags: vec!["nodejs_compat".to_owned()],
            bindings: vec![
                binding("DB", "d1", json!({ "database_id": "uuid-staging" })),
                binding(
                    "ALLOWED_ORIGINS",
                    "plain_text",
                    json!({ "text": "https://lms-viewer-staging.example.workers.dev" }),
                ),
                secret("TALLY_WEBHOOK_SECRET"),
                secret("TALLY_SIGNING_SECRET"),
            ],
            ..LiveWorker::default()
        },
    );
    live
}

/// Staging as audited: no database, no bindings, no secrets.
pub(crate) fn audited() -> Live {
    let mut live = converged();
    live.d1_databases.clear();
    live.workers
        .get_mut("lms-api-staging")
        .unwrap()
        .bindings
        .clear();
    live
}

pub(crate) fn api(live: &mut Live) -> &mut LiveWorker {
    live.workers.get_mut("lms-api-staging").unwrap()
}

pub(crate) fn supplied(names: &[&str]) -> DiffOptions {
    DiffOptions {
        supplied_secrets: names.iter().map(|n| n.to_string()).collect(),
        ..DiffOptions::default()
    }
}

/// The converged account, but `TALLY_SIGNING_SECRET` is a plain-text binding, not a secret.
pub(crate) fn with_secret_as_plain_text() -> Live {
    let mut live = converged();
    let worker = api(&mut live);
    worker
        .bindings
        .retain(|b| b.name() != "TALLY_SIGNING_SECRET");
    worker.bindings.push(binding(
        "TALLY_SIGNING_SECRET",
        "plain_text",
        json!({ "text": "oops" }),
    ));
    live
}

pub(crate) fn with_absent_database(protect: bool) -> Manifest {
    let mut desired = manifest(STAGING);
    desired.d1_databases.insert(
        "old".to_owned(),
        yaml_serde::from_str(&format!(
            "{{ name: lms-old-staging, protect: {protect}, absent: true }}"
        ))
        .unwrap(),
    );
    desired
}

pub(crate) fn live_with_old_database() -> Live {
    let mut live = converged();
    live.d1_databases.push(LiveDatabase {
        uuid: "uuid-old".to_owned(),
        name: "lms-old-staging".to_owned(),
    });
    live
}

pub(crate) fn probed(headers: &[(&str, &str)], redirect: Option<&str>) -> Live {
    let mut live = converged();
    live.probes.insert(
        "api".to_owned(),
        Probe::Answered {
            status: if redirect.is_some() { 301 } else { 200 },
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            redirect: redirect.map(str::to_owned),
        },
    );
    live
}
