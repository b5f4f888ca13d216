//! The sandbox's Worker traffic and its versions and deployments, over HTTP.
//!
//! Each script's serving deployment answers on the sandbox's listener (by workers.dev `Host` and
//! by `/__sandbox/workers/<script>/…`), naming the answering version in `x-sandbox-version-id`.
//! The deployment rules follow Cloudflare's: the 100-version window, deployments by id, the
//! annotations and who triggered each change.

use serde_json::{Value, json};

use crate::support::{Answer, Body, TestSandbox, form};

const SCRIPTS: &str = "/accounts/{account}/workers/scripts";
const VERSION: &str = "x-sandbox-version-id";

/// A request to the sandbox's listener outside `/client/v4`, with no token.
fn worker(sandbox: &TestSandbox, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("http://{}{path}", sandbox.sandbox().addr());
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = reqwest::Client::new().request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    runtime.block_on(async {
        let response = request.send().await.expect("the sandbox answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            body,
            headers,
        }
    })
}

fn host(script: &str) -> String {
    format!("{script}.example.workers.dev")
}

fn answered_by(answer: &Answer) -> String {
    answer
        .headers
        .get(VERSION)
        .and_then(|v| v.to_str().ok())
        .expect("every Worker answer names its version")
        .to_owned()
}

fn serving(sandbox: &TestSandbox, script: &str) -> Value {
    sandbox.get(&format!("{SCRIPTS}/{script}/deployments"))["deployments"][0].clone()
}

fn serving_version(sandbox: &TestSandbox, script: &str) -> String {
    serving(sandbox, script)["versions"][0]["version_id"]
        .as_str()
        .expect("version id")
        .to_owned()
}

/// Upload a version of `script` (not deployed) with these modules and metadata; its id.
fn upload_version(
    sandbox: &TestSandbox,
    script: &str,
    metadata: &Value,
    modules: &[(&str, &str)],
) -> String {
    let metadata = metadata.to_string();
    let mut parts: Vec<(&str, Option<&str>, &str)> =
        vec![("metadata", Some("application/json"), &metadata)];
    for (name, content) in modules {
        let content_type = if name.ends_with(".js") {
            "application/javascript+module"
        } else {
            "text/plain"
        };
        parts.push((name, Some(content_type), content));
    }
    let answer = sandbox.send(
        "POST",
        &format!("{SCRIPTS}/{script}/versions"),
        form(&parts),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["result"]["id"]
        .as_str()
        .expect("version id")
        .to_owned()
}

const WORKER_JS: &str = "export default { fetch() { return new Response('x') } }";

fn deploy(sandbox: &TestSandbox, script: &str, versions: &[(&str, f64)]) -> Answer {
    let versions: Vec<Value> = versions
        .iter()
        .map(|(id, pct)| json!({"version_id": id, "percentage": pct}))
        .collect();
    sandbox.send(
        "POST",
        &format!("{SCRIPTS}/{script}/deployments"),
        Body::Json(json!({"strategy": "percentage", "versions": versions})),
    )
}

#[test]
fn the_audited_seed_serves_the_audits_reality() {
    let sandbox = TestSandbox::new();
    let production = serving_version(&sandbox, "lms-api");
    for answer in [
        worker(&sandbox, "GET", "/health", &[("host", &host("lms-api"))]),
        worker(&sandbox, "GET", "/__sandbox/workers/lms-api/health", &[]),
    ] {
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, json!({"version": production, "db": "ok"}));
        assert_eq!(answered_by(&answer), production);
        for header in ["content-security-policy", "strict-transport-security"] {
            assert!(answer.headers.get(header).is_none(), "{header}");
        }
    }
    let viewer = worker(&sandbox, "GET", "/", &[("host", &host("lms-viewer"))]);
    assert_eq!(viewer.status, 200);
    assert!(viewer.headers.get("x-frame-options").is_none());

    let staging = worker(
        &sandbox,
        "GET",
        "/health",
        &[("host", &host("lms-api-staging"))],
    );
    assert_eq!(staging.status, 500, "{}", staging.body);
    assert_eq!(staging.body["db"], "error");
    assert!(
        staging.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("DB")),
        "{}",
        staging.body
    );

    // Binding the database is what heals staging, in a new version.
    let created = sandbox.send(
        "POST",
        "/accounts/{account}/d1/database",
        Body::Json(json!({"name": "lms-db-staging"})),
    );
    let uuid = created.body["result"]["uuid"].as_str().expect("uuid");
    let settings = json!({"bindings": [{"type": "d1", "name": "DB", "id": uuid}]}).to_string();
    let patched = sandbox.send(
        "PATCH",
        &format!("{SCRIPTS}/lms-api-staging/settings"),
        form(&[("settings", Some("application/json"), &settings)]),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let healed = worker(
        &sandbox,
        "GET",
        "/__sandbox/workers/lms-api-staging/health",
        &[],
    );
    assert_eq!(healed.status, 200, "{}", healed.body);
    assert_eq!(
        healed.body["version"],
        serving_version(&sandbox, "lms-api-staging")
    );

    let preflight = worker(
        &sandbox,
        "OPTIONS",
        "/api/courses",
        &[("host", &host("lms-api"))],
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        "https://lms-viewer.example.workers.dev"
    );
    let unknown = worker(&sandbox, "GET", "/", &[("host", &host("no-such-worker"))]);
    assert_eq!(unknown.status, 404);
    assert!(unknown.headers.get(VERSION).is_none());
    // Another account's subdomain is not this sandbox's Worker traffic.
    let elsewhere = worker(
        &sandbox,
        "GET",
        "/client/v4/user",
        &[("host", "lms-api.other.workers.dev")],
    );
    assert!(elsewhere.headers.get(VERSION).is_none());
    assert_eq!(
        elsewhere.body["success"], false,
        "an API answer: {}",
        elsewhere.body
    );
}

#[test]
fn a_disabled_workers_dev_route_answers_nothing_by_host() {
    let sandbox = TestSandbox::new();
    let disabled = sandbox.send(
        "DELETE",
        &format!("{SCRIPTS}/lms-viewer/subdomain"),
        Body::None,
    );
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    let by_host = worker(&sandbox, "GET", "/", &[("host", &host("lms-viewer"))]);
    assert_eq!(by_host.status, 404);
    let by_prefix = worker(&sandbox, "GET", "/__sandbox/workers/lms-viewer/", &[]);
    assert_eq!(by_prefix.status, 200);
}

/// Which of `old` and `new` answered each of `n` requests.
fn split(sandbox: &TestSandbox, old: &str, new: &str, n: usize) -> Vec<bool> {
    (0..n)
        .map(|_| {
            let answer = worker(sandbox, "GET", "/__sandbox/workers/lms-viewer/health", &[]);
            let by = answered_by(&answer);
            assert!(by == old || by == new, "{by} is not in the deployment");
            by == new
        })
        .collect()
}

fn thirty_seventy() -> (TestSandbox, String, String) {
    let sandbox = TestSandbox::new();
    let old = serving_version(&sandbox, "lms-viewer");
    let new = upload_version(
        &sandbox,
        "lms-viewer",
        &json!({"main_module": "index.js"}),
        &[("index.js", WORKER_JS)],
    );
    let deployed = deploy(&sandbox, "lms-viewer", &[(&old, 30.0), (&new, 70.0)]);
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    (sandbox, old, new)
}

#[test]
fn percentages_split_traffic_the_same_way_on_every_run() {
    let (first, old, new) = thirty_seventy();
    let picks = split(&first, &old, &new, 200);
    let to_new = picks.iter().filter(|p| **p).count();
    assert!(
        (110..=170).contains(&to_new),
        "{to_new} of 200 went to 70 %"
    );
    let (second, old, new) = thirty_seventy();
    assert_eq!(split(&second, &old, &new, 200), picks);

    // The same version key always lands on the same version.
    let keyed: Vec<String> = (0..10)
        .map(|_| {
            answered_by(&worker(
                &first,
                "GET",
                "/__sandbox/workers/lms-viewer/",
                &[("cloudflare-workers-version-key", "learner-42")],
            ))
        })
        .collect();
    assert!(keyed.iter().all(|v| *v == keyed[0]), "{keyed:?}");
}

#[test]
fn overrides_pick_only_versions_in_the_deployment() {
    let sandbox = TestSandbox::new();
    let first = serving_version(&sandbox, "lms-viewer");
    let outside = upload_version(
        &sandbox,
        "lms-viewer",
        &json!({"main_module": "index.js"}),
        &[("index.js", WORKER_JS)],
    );
    let canary = upload_version(
        &sandbox,
        "lms-viewer",
        &json!({"main_module": "index.js"}),
        &[("index.js", WORKER_JS)],
    );
    let deployed = deploy(&sandbox, "lms-viewer", &[(&first, 100.0), (&canary, 0.0)]);
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    for _ in 0..20 {
        let plain = worker(&sandbox, "GET", "/", &[("host", &host("lms-viewer"))]);
        assert_eq!(answered_by(&plain), first, "0 % gets no traffic");
        let overridden = worker(
            &sandbox,
            "GET",
            "/",
            &[
                ("host", &host("lms-viewer")),
                (
                    "cloudflare-workers-version-overrides",
                    &format!("lms-viewer=\"{canary}\""),
                ),
            ],
        );
        assert_eq!(answered_by(&overridden), canary);
        let ignored = worker(
            &sandbox,
            "GET",
            "/__sandbox/workers/lms-viewer/",
            &[(
                "cloudflare-workers-version-overrides",
                &format!("lms-viewer=\"{outside}\""),
            )],
        );
        assert_eq!(answered_by(&ignored), first, "not in the deployment");
    }
}

#[test]
fn worker_faults_hit_worker_traffic_only() {
    let sandbox = TestSandbox::with(|config| {
        config.faults = Some(
            "worker_5xx@lms-viewer=1,override_delay=3600s"
                .parse()
                .unwrap(),
        );
    });
    let failed = worker(&sandbox, "GET", "/__sandbox/workers/lms-viewer/", &[]);
    assert_eq!(failed.status, 500);
    assert_eq!(failed.body, "error code: 1101");
    assert_eq!(
        answered_by(&failed),
        serving_version(&sandbox, "lms-viewer")
    );
    let api = worker(&sandbox, "GET", "/__sandbox/workers/lms-api/health", &[]);
    assert_eq!(api.status, 200, "the scope names lms-viewer only");
    sandbox.get(SCRIPTS);

    let first = serving_version(&sandbox, "lms-api");
    let canary = upload_version(
        &sandbox,
        "lms-api",
        &json!({"main_module": "index.js", "keep_bindings": ["d1", "plain_text", "secret_text"]}),
        &[("index.js", WORKER_JS)],
    );
    let deployed = deploy(&sandbox, "lms-api", &[(&first, 100.0), (&canary, 0.0)]);
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    let early = worker(
        &sandbox,
        "GET",
        "/__sandbox/workers/lms-api/health",
        &[(
            "cloudflare-workers-version-overrides",
            &format!("lms-api=\"{canary}\""),
        )],
    );
    assert_eq!(
        answered_by(&early),
        first,
        "overrides wait for the deployment to settle"
    );
}

#[test]
fn declared_behaviour_needs_its_secrets_and_breaks_on_a_binding_value() {
    let sandbox = TestSandbox::new();
    let behaviour = json!({
        "routes": [{"path": "/version", "headers": {"x-version": "{{version}}"}, "body": "v={{version}}"}],
        "requires": {"secrets": ["API_KEY"]},
        "breaks": [{"path": "/health", "binding": "MODE", "equals": "broken"}]
    })
    .to_string();
    let metadata = json!({
        "main_module": "index.js",
        "bindings": [{"type": "plain_text", "name": "MODE", "text": "fine"}]
    })
    .to_string();
    let uploaded = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/canary"),
        form(&[
            ("metadata", Some("application/json"), &metadata),
            ("index.js", Some("application/javascript+module"), WORKER_JS),
            ("sandbox-behaviour.json", Some("text/plain"), &behaviour),
        ]),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    let health = || worker(&sandbox, "GET", "/__sandbox/workers/canary/health", &[]);
    let missing = health();
    assert_eq!(missing.status, 500);
    assert_eq!(missing.body["db"], "ok");
    assert!(
        missing.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("API_KEY")),
        "{}",
        missing.body
    );

    let value = "canary-secret-value-71c2";
    let put = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/canary/secrets"),
        Body::Json(json!({"name": "API_KEY", "text": value, "type": "secret_text"})),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let healthy = health();
    assert_eq!(healthy.status, 200, "{}", healthy.body);
    assert!(!healthy.body.to_string().contains(value));
    let version = worker(&sandbox, "GET", "/__sandbox/workers/canary/version", &[]);
    let id = answered_by(&version);
    assert_eq!(version.body, format!("v={id}"));
    assert_eq!(version.headers["x-version"], id.as_str());

    let settings = json!({"bindings": [
        {"type": "plain_text", "name": "MODE", "text": "broken"},
        {"type": "inherit", "name": "API_KEY"}
    ]})
    .to_string();
    let patched = sandbox.send(
        "PATCH",
        &format!("{SCRIPTS}/canary/settings"),
        form(&[("settings", Some("application/json"), &settings)]),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let broken = health();
    assert_eq!(broken.status, 500, "{}", broken.body);
    assert!(
        broken.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("MODE"))
    );
    let other = worker(&sandbox, "GET", "/__sandbox/workers/canary/version", &[]);
    assert_eq!(other.status, 200, "only /health breaks");
}

#[test]
fn the_traffic_log_names_request_headers_never_their_values() {
    let sandbox = TestSandbox::new();
    let token = "Bearer worker-traffic-token-9d1";
    worker(
        &sandbox,
        "GET",
        "/health",
        &[("host", &host("lms-api")), ("authorization", token)],
    );
    worker(&sandbox, "GET", "/__sandbox/workers/lms-viewer/", &[]);
    let log = worker(&sandbox, "GET", "/__sandbox/traffic", &[]);
    assert_eq!(log.status, 200);
    assert!(!log.body.to_string().contains("worker-traffic-token"));
    let entries = log.body.as_array().expect("a list");
    assert_eq!(entries.len(), 2, "{}", log.body);
    assert_eq!(entries[0]["script"], "lms-api");
    assert_eq!(entries[0]["path"], "/health");
    assert_eq!(entries[0]["status"], 200);
    assert!(
        entries[0]["request_headers"]
            .as_array()
            .is_some_and(|h| h.contains(&json!("authorization")))
    );
    assert!(
        !entries[1]["request_headers"]
            .as_array()
            .is_some_and(|h| h.contains(&json!("authorization")))
    );
    assert_eq!(
        sandbox.sandbox().stats().total,
        0,
        "Worker traffic is not API traffic"
    );
}

#[test]
fn only_the_newest_hundred_versions_are_deployable() {
    let sandbox = TestSandbox::new();
    let oldest = serving_version(&sandbox, "lms-viewer");
    let mut uploaded = Vec::new();
    for _ in 0..100 {
        uploaded.push(upload_version(
            &sandbox,
            "lms-viewer",
            &json!({"main_module": "index.js"}),
            &[("index.js", WORKER_JS)],
        ));
    }
    let deployable = sandbox.get(&format!("{SCRIPTS}/lms-viewer/versions?deployable=true"));
    let ids: Vec<&str> = deployable["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 100);
    assert_eq!(ids[0], uploaded[99], "newest first");
    assert!(!ids.contains(&oldest.as_str()));
    let refused = deploy(&sandbox, "lms-viewer", &[(&oldest, 100.0)]);
    assert_eq!((refused.status, refused.code()), (400, Some(10021)));
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("100")),
        "{}",
        refused.body
    );
    let inside = deploy(&sandbox, "lms-viewer", &[(&uploaded[0], 100.0)]);
    assert_eq!(inside.status, 200, "{}", inside.body);
}

#[test]
fn annotations_are_capped_and_triggers_recorded() {
    let sandbox = TestSandbox::new();
    let long_tag = "t".repeat(101);
    let metadata =
        json!({"main_module": "index.js", "annotations": {"workers/tag": long_tag}}).to_string();
    let refused = sandbox.send(
        "POST",
        &format!("{SCRIPTS}/lms-viewer/versions"),
        form(&[
            ("metadata", Some("application/json"), &metadata),
            ("index.js", Some("application/javascript+module"), WORKER_JS),
        ]),
    );
    assert_eq!((refused.status, refused.code()), (400, Some(10021)));

    sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/lms-viewer/secrets"),
        Body::Json(json!({"name": "K", "text": "v", "type": "secret_text"})),
    );
    assert_eq!(
        serving(&sandbox, "lms-viewer")["annotations"]["workers/triggered_by"],
        "secret"
    );

    let message = format!("{}é", "m".repeat(999));
    let first = serving_version(&sandbox, "lms-viewer");
    let version = upload_version(
        &sandbox,
        "lms-viewer",
        &json!({
            "main_module": "index.js",
            "keep_bindings": ["plain_text", "secret_text"],
            "annotations": {"workers/message": message, "workers/tag": "abc1234"}
        }),
        &[("index.js", WORKER_JS)],
    );
    let listed = sandbox.get(&format!("{SCRIPTS}/lms-viewer/versions"))["items"][0].clone();
    assert_eq!(listed["id"], version.as_str());
    assert_eq!(
        listed["annotations"],
        json!({"workers/message": "m".repeat(999), "workers/tag": "abc1234", "workers/triggered_by": "upload"}),
        "cut at 1000 bytes on a character boundary"
    );

    let forward = deploy(&sandbox, "lms-viewer", &[(&version, 100.0)]);
    assert_eq!(
        forward.body["result"]["annotations"]["workers/triggered_by"],
        "deployment"
    );
    let back = deploy(&sandbox, "lms-viewer", &[(&first, 100.0)]);
    assert_eq!(
        back.body["result"]["annotations"]["workers/triggered_by"],
        "rollback"
    );
}

#[test]
fn deployments_are_read_and_deleted_by_id_but_not_the_serving_one() {
    let sandbox = TestSandbox::new();
    let first = serving(&sandbox, "lms-viewer");
    let first_id = first["id"].as_str().expect("id").to_owned();
    let path = |id: &str| format!("{SCRIPTS}/lms-viewer/deployments/{id}");
    assert_eq!(sandbox.get(&path(&first_id)), first);
    let refused = sandbox.send("DELETE", &path(&first_id), Body::None);
    assert_eq!((refused.status, refused.code()), (400, Some(10021)));

    sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/lms-viewer/secrets"),
        Body::Json(json!({"name": "K", "text": "v", "type": "secret_text"})),
    );
    let deleted = sandbox.send("DELETE", &path(&first_id), Body::None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let gone = sandbox.send("GET", &path(&first_id), Body::None);
    assert_eq!((gone.status, gone.code()), (404, Some(10007)));
    let left = sandbox.get(&format!("{SCRIPTS}/lms-viewer/deployments"))["deployments"].clone();
    assert_eq!(left.as_array().map(Vec::len), Some(1));
}

#[test]
fn a_deployment_binding_a_deleted_database_is_refused() {
    let sandbox = TestSandbox::new();
    let created = sandbox.send(
        "POST",
        "/accounts/{account}/d1/database",
        Body::Json(json!({"name": "lms-db-staging"})),
    );
    let uuid = created.body["result"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let bound = upload_version(
        &sandbox,
        "lms-api-staging",
        &json!({"main_module": "index.js", "bindings": [{"type": "d1", "name": "DB", "id": uuid}]}),
        &[("index.js", WORKER_JS)],
    );
    let deleted = sandbox.send(
        "DELETE",
        &format!("/accounts/{{account}}/d1/database/{uuid}"),
        Body::None,
    );
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let refused = deploy(&sandbox, "lms-api-staging", &[(&bound, 100.0)]);
    assert_eq!((refused.status, refused.code()), (400, Some(10021)));
    let message = refused.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("DB") && message.contains(&uuid),
        "{message}"
    );
}

#[test]
fn the_service_view_answers_for_wrangler() {
    let sandbox = TestSandbox::new();
    let service = sandbox.get("/accounts/{account}/workers/services/lms-api");
    assert_eq!(service["id"], "lms-api");
    let script = &service["default_environment"]["script"];
    assert_eq!(script["tag"].as_str().map(str::len), Some(32));
    assert_eq!(script["last_deployed_from"], "api");
    let missing = sandbox.send(
        "GET",
        "/accounts/{account}/workers/services/no-such-worker",
        Body::None,
    );
    assert_eq!((missing.status, missing.code()), (404, Some(10090)));
}

#[test]
fn non_versioned_settings_change_without_a_version() {
    let sandbox = TestSandbox::new();
    let path = format!("{SCRIPTS}/lms-viewer/script-settings");
    let before = sandbox.get(&format!("{SCRIPTS}/lms-viewer/versions"))["items"]
        .as_array()
        .map(Vec::len);
    let patched = sandbox.send(
        "PATCH",
        &path,
        Body::Json(json!({"logpush": true, "tail_consumers": null})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(sandbox.get(&path)["logpush"], true);
    let after = sandbox.get(&format!("{SCRIPTS}/lms-viewer/versions"))["items"]
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after);
    let versioned = sandbox.send(
        "PATCH",
        &path,
        Body::Json(json!({"compatibility_date": "2025-01-01"})),
    );
    assert_eq!((versioned.status, versioned.code()), (400, Some(10021)));
}

#[test]
fn a_deployment_across_a_secret_change_is_refused_in_cloudflares_words() {
    let sandbox = TestSandbox::new();
    let first = serving_version(&sandbox, "lms-viewer");
    sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/lms-viewer/secrets"),
        Body::Json(json!({"name": "K", "text": "v", "type": "secret_text"})),
    );
    let refused = deploy(&sandbox, "lms-viewer", &[(&first, 100.0)]);
    assert_eq!((refused.status, refused.code()), (400, Some(10220)));
    assert_eq!(
        refused.body["errors"][0]["message"],
        "A secret has changed since this version was active. If you are sure this is ok, add a ?force=true query parameter to allow the rollback. The following secrets have changed: K"
    );
}
