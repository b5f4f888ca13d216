//! The sandbox itself: the audited seed, the envelope and error codes, Workers and D1
//! semantics, persistence, faults and the rate limit. Every answer is also schema-checked by
//! `TestSandbox`.

use std::time::Duration;

use lmsinfra_sandbox::{RateLimit, Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::support::{ACCOUNT_ID, Body, Lmsinfra, TestSandbox, form, validate};

const SCRIPTS: &str = "/accounts/{account}/workers/scripts";
const D1: &str = "/accounts/{account}/d1/database";
const LMS_DB: &str = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f";
const MODULE: &str = "export default { async fetch() { return new Response('ok'); } };";

fn names(items: &Value, key: &str) -> Vec<String> {
    items
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i[key].as_str().expect("string").to_owned())
        .collect()
}

fn settings_patch(settings: Value) -> Body {
    form(&[("settings", Some("application/json"), &settings.to_string())])
}

fn upload(metadata: Value) -> Body {
    form(&[
        ("metadata", None, &metadata.to_string()),
        ("worker.js", Some("application/javascript+module"), MODULE),
    ])
}

#[test]
fn seed_reproduces_the_audited_account() {
    let sandbox = TestSandbox::new();
    let scripts = sandbox.get(SCRIPTS);
    assert_eq!(
        names(&scripts, "id"),
        [
            "lms-api",
            "lms-api-staging",
            "lms-viewer",
            "lms-viewer-staging"
        ]
    );
    let api = sandbox.get(&format!("{SCRIPTS}/lms-api/settings"));
    assert_eq!(api["compatibility_date"], "2024-12-01");
    assert_eq!(api["compatibility_flags"], json!(["nodejs_compat"]));
    assert_eq!(
        api["bindings"][0],
        json!({"name": "DB", "type": "d1", "database_id": LMS_DB})
    );
    assert_eq!(
        api["bindings"][1],
        json!({"name": "ALLOWED_ORIGINS", "type": "plain_text", "text": "https://lms-viewer.example.workers.dev"})
    );
    assert_eq!(
        names(&sandbox.get(&format!("{SCRIPTS}/lms-api/secrets")), "name"),
        [
            "TALLY_WEBHOOK_SECRET",
            "TALLY_SIGNING_SECRET",
            "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM"
        ]
    );
    let staging = sandbox.get(&format!("{SCRIPTS}/lms-api-staging/settings"));
    assert_eq!(staging["bindings"], json!([]));
    assert_eq!(staging["compatibility_flags"], json!(["nodejs_compat"]));
    let viewer = sandbox.get(&format!("{SCRIPTS}/lms-viewer-staging/settings"));
    assert_eq!(
        viewer["bindings"][0]["text"],
        "https://lms-api-staging.example.workers.dev"
    );
    assert_eq!(names(&sandbox.get(D1), "name"), ["lms-db"]);
    assert_eq!(
        sandbox.get("/accounts/{account}/workers/subdomain")["subdomain"],
        "example"
    );
    assert_eq!(
        sandbox.get(&format!("{SCRIPTS}/lms-api/deployments"))["deployments"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn an_account_kept_in_memory_creates_databases_with_their_time_travel() {
    // `lmsinfra sandbox --seed FILE` without `--state`: no directory for Time Travel's copies.
    let sandbox = TestSandbox::with(|config| config.state = None);
    let uuid = sandbox.create_d1("lms-db-memory");
    let bookmark = sandbox.send(
        "GET",
        &format!("/accounts/{{account}}/d1/database/{uuid}/time_travel/bookmark"),
        Body::None,
    );
    assert_eq!(bookmark.status, 200, "{}", bookmark.body);
}

#[test]
fn a_busy_account_is_given_as_used_and_seconds() {
    let sandbox = TestSandbox::new();
    let run = Lmsinfra::new(&sandbox)
        .args(["sandbox", "--busy-account", "600"])
        .code(1)
        .run();
    assert!(run.stderr.contains("USED/SECONDS"), "{run}");
}

#[test]
fn errors_come_in_the_envelope_with_cloudflare_codes() {
    let sandbox = TestSandbox::with(|c| c.token = Some("right".to_owned()));
    let cases = [
        (
            sandbox.send_as(Some("right"), "GET", "/nowhere", Body::None),
            404,
            7003,
        ),
        (
            sandbox.send_as(Some("right"), "POST", "/user/tokens/verify", Body::None),
            405,
            7001,
        ),
        (sandbox.send_as(None, "GET", D1, Body::None), 400, 9106),
        (
            sandbox.send_as(Some("wrong"), "GET", D1, Body::None),
            403,
            7403,
        ),
        (
            sandbox.send_as(
                Some("right"),
                "GET",
                "/accounts/ffffffffffffffffffffffffffffffff/d1/database",
                Body::None,
            ),
            403,
            7403,
        ),
        (
            sandbox.send_as(
                Some("right"),
                "GET",
                &format!("{SCRIPTS}/nope/settings"),
                Body::None,
            ),
            404,
            10007,
        ),
        (
            sandbox.send_as(
                Some("right"),
                "POST",
                D1,
                Body::Raw("application/json", b"{not json".to_vec()),
            ),
            400,
            10001,
        ),
        (
            sandbox.send_as(
                Some("right"),
                "PATCH",
                &format!("{SCRIPTS}/lms-api/settings"),
                Body::Raw(
                    "multipart/form-data; boundary=xyz",
                    b"--xyz\r\nbroken".to_vec(),
                ),
            ),
            400,
            10001,
        ),
        (
            sandbox.send_as(
                Some("right"),
                "PUT",
                &format!("{SCRIPTS}/Bad_Name"),
                upload(json!({"main_module": "worker.js", "compatibility_date": "2024-12-01"})),
            ),
            400,
            10016,
        ),
        (
            sandbox.send_as(
                Some("right"),
                "PUT",
                &format!("{SCRIPTS}/big"),
                form(&[
                    ("metadata", None, "{}"),
                    (
                        "worker.js",
                        Some("application/javascript+module"),
                        &"x".repeat(11 * 1024 * 1024),
                    ),
                ]),
            ),
            413,
            10027,
        ),
        (
            sandbox.send_as(
                Some("right"),
                "GET",
                &format!("{D1}?per_page=9"),
                Body::None,
            ),
            400,
            7400,
        ),
    ];
    for (i, (answer, status, code)) in cases.iter().enumerate() {
        assert_eq!(answer.status, *status, "case {i}: {}", answer.body);
        assert_eq!(answer.code(), Some(*code), "case {i}: {}", answer.body);
        assert_eq!(answer.body["success"], false, "case {i}");
        assert_eq!(answer.body["result"], Value::Null, "case {i}");
    }
}

#[test]
fn bindings_are_validated_strictly() {
    let sandbox = TestSandbox::new();
    let path = format!("{SCRIPTS}/lms-api/settings");
    for bindings in [
        json!([{"name": "X", "type": "secret_text"}]),
        json!([{"name": "DB", "type": "d1", "database_id": "00000000-0000-0000-0000-000000000000"}]),
        json!([{"name": "A", "type": "plain_text", "text": "1"}, {"name": "A", "type": "plain_text", "text": "2"}]),
        json!([{"name": "not valid", "type": "plain_text", "text": "1"}]),
    ] {
        let answer = sandbox.send(
            "PATCH",
            &path,
            settings_patch(json!({"bindings": bindings})),
        );
        assert_eq!(answer.status, 400, "{bindings}: {}", answer.body);
        assert_eq!(answer.code(), Some(10021));
    }
    assert_eq!(
        sandbox
            .get(&format!("{SCRIPTS}/lms-api/secrets"))
            .as_array()
            .map(Vec::len),
        Some(4)
    );
}

#[test]
fn patch_with_bindings_drops_unlisted_secrets_and_keeps_inherited_ones() {
    let sandbox = TestSandbox::new();
    let path = format!("{SCRIPTS}/lms-api/settings");
    let answer = sandbox.send(
        "PATCH",
        &path,
        settings_patch(json!({"bindings": [
            {"name": "DB", "type": "d1", "database_id": LMS_DB},
            {"name": "TALLY_WEBHOOK_SECRET", "type": "inherit"},
            {"name": "NEW_VAR", "type": "plain_text", "text": "v"},
        ]})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        names(&answer.body["result"]["bindings"], "name"),
        ["DB", "TALLY_WEBHOOK_SECRET", "NEW_VAR"]
    );
    assert_eq!(
        names(&sandbox.get(&format!("{SCRIPTS}/lms-api/secrets")), "name"),
        ["TALLY_WEBHOOK_SECRET"]
    );
    let answer = sandbox.send(
        "PATCH",
        &path,
        settings_patch(json!({"compatibility_date": "2025-01-01"})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        names(&sandbox.get(&format!("{SCRIPTS}/lms-api/secrets")), "name"),
        ["TALLY_WEBHOOK_SECRET"]
    );
    assert_eq!(sandbox.get(&path)["compatibility_date"], "2025-01-01");
}

#[test]
fn every_settings_or_secret_change_is_a_new_version_and_deployment() {
    let sandbox = TestSandbox::new();
    let script = format!("{SCRIPTS}/lms-api-staging");
    let put = sandbox.send(
        "PUT",
        &format!("{script}/secrets"),
        Body::Json(
            json!({"name": "TALLY_WEBHOOK_SECRET", "text": "s3cret", "type": "secret_text"}),
        ),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(
        put.body["result"],
        json!({"name": "TALLY_WEBHOOK_SECRET", "type": "secret_text"})
    );
    assert_eq!(
        sandbox.get(&format!("{script}/secrets/TALLY_WEBHOOK_SECRET")),
        json!({"name": "TALLY_WEBHOOK_SECRET", "type": "secret_text"})
    );
    let patch = sandbox.send(
        "PATCH",
        &format!("{script}/settings"),
        settings_patch(json!({"compatibility_flags": []})),
    );
    assert_eq!(patch.status, 200, "{}", patch.body);
    let delete = sandbox.send(
        "DELETE",
        &format!("{script}/secrets/TALLY%5FWEBHOOK%5FSECRET?url_encoded=true"),
        Body::None,
    );
    assert_eq!(delete.status, 200, "{}", delete.body);
    let versions = sandbox.get(&format!("{script}/versions"));
    let numbers: Vec<i64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3, 2, 1]);
    let deployments = sandbox.get(&format!("{script}/deployments"))["deployments"].clone();
    assert_eq!(deployments.as_array().map(Vec::len), Some(4));
    let newest = deployments[0]["versions"][0]["version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(newest, versions["items"][0]["id"]);
    let version = sandbox.get(&format!("{script}/versions/{newest}"));
    assert_eq!(
        version["resources"]["script_runtime"]["compatibility_flags"],
        json!([])
    );
    let missing = sandbox.send(
        "GET",
        &format!("{script}/secrets/TALLY_WEBHOOK_SECRET"),
        Body::None,
    );
    assert_eq!(missing.status, 404);
}

#[test]
fn rollback_to_a_version_with_other_secrets_needs_force() {
    let sandbox = TestSandbox::new();
    let script = format!("{SCRIPTS}/lms-viewer");
    let first = sandbox.get(&format!("{script}/versions"))["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = sandbox.send(
        "PUT",
        &format!("{script}/secrets"),
        Body::Json(json!({"name": "K", "text": "v", "type": "secret_text"})),
    );
    assert_eq!(put.status, 200);
    let body =
        json!({"strategy": "percentage", "versions": [{"version_id": first, "percentage": 100}]});
    let refused = sandbox.send(
        "POST",
        &format!("{script}/deployments"),
        Body::Json(body.clone()),
    );
    assert_eq!(
        (refused.status, refused.code()),
        (400, Some(10220)),
        "{}",
        refused.body
    );
    let message = refused.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.ends_with("The following secrets have changed: K"),
        "{message}"
    );
    let forced = sandbox.send(
        "POST",
        &format!("{script}/deployments?force=true"),
        Body::Json(body),
    );
    assert_eq!(forced.status, 200, "{}", forced.body);
    // The secret list describes the newest version, which still has K; the serving one has not.
    assert_eq!(
        sandbox.get(&format!("{script}/secrets")),
        json!([{"name": "K", "type": "secret_text"}])
    );
    let serving = sandbox.get(&format!("{script}/versions/{first}"));
    assert!(
        !serving["resources"]["bindings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == "K"),
        "{serving}"
    );
}

#[test]
fn upload_keeps_bindings_of_the_listed_types() {
    let sandbox = TestSandbox::new();
    let answer = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/lms-api"),
        upload(json!({
            "main_module": "worker.js",
            "compatibility_date": "2024-12-01",
            "bindings": [{"name": "DB", "type": "d1", "database_id": LMS_DB}],
            "keep_bindings": ["secret_text"],
        })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["result"]["id"], "lms-api");
    let bindings = sandbox.get(&format!("{SCRIPTS}/lms-api/settings"))["bindings"].clone();
    assert_eq!(
        names(&bindings, "name"),
        [
            "DB",
            "TALLY_WEBHOOK_SECRET",
            "TALLY_SIGNING_SECRET",
            "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM"
        ]
    );
    let created = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/brand-new"),
        upload(json!({"main_module": "worker.js", "compatibility_date": "2024-12-01"})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let deleted = sandbox.send("DELETE", &format!("{SCRIPTS}/brand-new"), Body::None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        sandbox
            .send("GET", &format!("{SCRIPTS}/brand-new/settings"), Body::None)
            .code(),
        Some(10007)
    );
}

#[test]
fn secret_values_never_reach_the_state_file_or_an_answer() {
    let sandbox = TestSandbox::new();
    let canary = "canary-5f0c1e7a-never-store-me";
    let put = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/lms-api/secrets"),
        Body::Json(json!({"name": "CANARY", "text": canary, "type": "secret_text"})),
    );
    assert_eq!(put.status, 200);
    let patch = sandbox.send(
        "PATCH",
        &format!("{SCRIPTS}/lms-viewer/settings"),
        settings_patch(
            json!({"bindings": [{"name": "CANARY2", "type": "secret_text", "text": canary}]}),
        ),
    );
    assert_eq!(patch.status, 200, "{}", patch.body);
    for path in [
        "lms-api/secrets",
        "lms-api/settings",
        "lms-viewer/settings",
        "lms-viewer/versions",
    ] {
        let answer = sandbox.send("GET", &format!("{SCRIPTS}/{path}"), Body::None);
        assert!(!answer.body.to_string().contains(canary), "{path}");
    }
    let state = std::fs::read_to_string(sandbox.state_path()).unwrap();
    assert!(state.contains("CANARY2"));
    assert!(!state.contains(canary));
}

#[test]
fn state_and_d1_rows_survive_a_restart() {
    let mut sandbox = TestSandbox::new();
    let created = sandbox.send(
        "POST",
        D1,
        Body::Json(json!({"name": "lms-db-staging", "primary_location_hint": "weur"})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["result"]["uuid"].as_str().unwrap().to_owned();
    let sql = json!({"sql": "CREATE TABLE courses (id INTEGER PRIMARY KEY, title TEXT); INSERT INTO courses (title) VALUES (?)", "params": ["Rust"]});
    let run = sandbox.send("POST", &format!("{D1}/{id}/query"), Body::Json(sql));
    assert_eq!(
        run.status, 400,
        "params with several statements are refused: {}",
        run.body
    );
    for sql in [
        json!({"sql": "CREATE TABLE courses (id INTEGER PRIMARY KEY, title TEXT)"}),
        json!({"sql": "INSERT INTO courses (title) VALUES (?)", "params": ["Rust"]}),
    ] {
        let run = sandbox.send("POST", &format!("{D1}/{id}/query"), Body::Json(sql));
        assert_eq!(run.status, 200, "{}", run.body);
    }
    sandbox.restart(|_| {});
    assert_eq!(
        names(&sandbox.get(D1), "name"),
        ["lms-db", "lms-db-staging"]
    );
    let rows = sandbox.send(
        "POST",
        &format!("{D1}/{id}/raw"),
        Body::Json(json!({"sql": "SELECT id, title FROM courses"})),
    );
    assert_eq!(rows.status, 200, "{}", rows.body);
    assert_eq!(
        rows.body["result"][0]["results"],
        json!({"columns": ["id", "title"], "rows": [[1, "Rust"]]})
    );
    let details = sandbox.get(&format!("{D1}/{id}"));
    assert_eq!(details["num_tables"], 1);
}

#[test]
fn d1_lists_page_filter_and_refuse_duplicates() {
    let sandbox = TestSandbox::new();
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(
            sandbox
                .send("POST", D1, Body::Json(json!({"name": name})))
                .status,
            200
        );
    }
    let duplicate = sandbox.send("POST", D1, Body::Json(json!({"name": "alpha"})));
    assert_eq!((duplicate.status, duplicate.code()), (400, Some(7502)));
    let page = sandbox.send("GET", &format!("{D1}?per_page=10&page=1"), Body::None);
    assert_eq!(
        names(&page.body["result"], "name"),
        ["lms-db", "alpha", "beta", "gamma"]
    );
    assert_eq!(
        page.body["result_info"],
        json!({"page": 1, "per_page": 10, "count": 4, "total_count": 4})
    );
    let filtered = sandbox.send("GET", &format!("{D1}?name=amm"), Body::None);
    assert_eq!(names(&filtered.body["result"], "name"), ["gamma"]);
    let id = filtered.body["result"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        sandbox
            .send("DELETE", &format!("{D1}/{id}"), Body::None)
            .status,
        200
    );
    let gone = sandbox.send("GET", &format!("{D1}/{id}"), Body::None);
    assert_eq!((gone.status, gone.code()), (404, Some(7404)));
}

#[test]
fn ruleset_put_replaces_rules_and_bumps_the_version() {
    let sandbox = TestSandbox::new();
    let zone = sandbox.get("/zones?name=example.com")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/zones/{zone}/rulesets/phases/http_response_headers_transform/entrypoint");
    assert_eq!(sandbox.send("GET", &path, Body::None).status, 404);
    let rule = |value: &str| json!({"action": "rewrite", "expression": "true", "action_parameters": {"headers": {"X-Frame-Options": {"operation": "set", "value": value}}}});
    let first = sandbox.send(
        "PUT",
        &path,
        Body::Json(json!({"rules": [rule("DENY"), rule("SAMEORIGIN")]})),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let second = sandbox.send("PUT", &path, Body::Json(json!({"rules": [rule("DENY")]})));
    assert_eq!(second.body["result"]["version"], "2");
    assert_eq!(
        second.body["result"]["rules"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(second.body["result"]["rules"][0]["id"].is_string());
    assert_eq!(sandbox.get(&path)["version"], "2");
    let bad = sandbox.send(
        "PUT",
        &path,
        Body::Json(json!({"rules": [{"action": "block", "expression": "true"}]})),
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn identity_models_account_and_user_tokens() {
    let sandbox = TestSandbox::new();
    let account = sandbox.send("GET", "/user/tokens/verify", Body::None);
    assert_eq!(account.code(), Some(1000));
    assert_eq!(
        sandbox.get("/accounts/{account}/tokens/verify")["status"],
        "active"
    );
    assert_eq!(sandbox.send("GET", "/user", Body::None).code(), Some(9109));
    assert_eq!(
        sandbox.send("GET", "/memberships", Body::None).code(),
        Some(10000)
    );
    let accounts = sandbox.send("GET", "/accounts", Body::None);
    assert_eq!(accounts.body["result"][0]["id"], ACCOUNT_ID);
    assert_eq!(accounts.body["result_info"]["total_count"], 1);
    let user = Some("user_abc");
    assert_eq!(
        sandbox
            .send_as(user, "GET", "/user/tokens/verify", Body::None)
            .status,
        200
    );
    assert_eq!(
        sandbox.send_as(user, "GET", "/user", Body::None).body["result"]["email"],
        "ops@example.com"
    );
    assert_eq!(
        sandbox
            .send_as(user, "GET", "/memberships", Body::None)
            .body["result"][0]["account"]["id"],
        ACCOUNT_ID
    );
}

#[test]
fn two_sandboxes_do_not_interfere() {
    let one = TestSandbox::new();
    let two = TestSandbox::new();
    assert_ne!(one.base_url(), two.base_url());
    assert_eq!(
        one.send("POST", D1, Body::Json(json!({"name": "only-in-one"})))
            .status,
        200
    );
    assert_eq!(names(&two.get(D1), "name"), ["lms-db"]);
    assert_eq!(two.sandbox().stats().total, 1);
}

#[test]
fn the_same_fault_seed_gives_the_same_faults() {
    let statuses = |seed: u64| {
        let sandbox = TestSandbox::with(|c| {
            c.faults = Some(
                format!("seed={seed},429=0.2,500=0.2,503=0.1")
                    .parse()
                    .unwrap(),
            )
        });
        let statuses: Vec<u16> = (0..40)
            .map(|_| sandbox.send("GET", D1, Body::None).status)
            .collect();
        statuses
    };
    let first = statuses(11);
    assert_eq!(first, statuses(11));
    assert_ne!(first, statuses(12));
    assert!(
        first.contains(&200) && first.contains(&429) && first.contains(&500),
        "{first:?}"
    );
}

#[test]
fn a_create_can_fail_after_it_took_effect() {
    let sandbox = TestSandbox::with(|c| c.faults = Some("after_create@d1=1".parse().unwrap()));
    let answer = sandbox.send("POST", D1, Body::Json(json!({"name": "half-made"})));
    assert_eq!((answer.status, answer.code()), (500, Some(10002)));
    assert_eq!(names(&sandbox.get(D1), "name"), ["lms-db", "half-made"]);
    let dropped = TestSandbox::with(|c| {
        c.faults = Some(
            "after_create@cloudflare-d1-create=1:drop,drop@scripts=1"
                .parse()
                .unwrap(),
        )
    });
    assert_eq!(
        dropped
            .send("POST", D1, Body::Json(json!({"name": "dropped"})))
            .status,
        0
    );
    assert_eq!(dropped.send("GET", SCRIPTS, Body::None).status, 0);
    assert_eq!(names(&dropped.get(D1), "name"), ["lms-db", "dropped"]);
    assert_eq!(dropped.sandbox().stats().statuses.get(&0), Some(&2));
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let sandbox = TestSandbox::with(|c| {
        c.rate_limit = RateLimit {
            requests: 4,
            window: Duration::from_secs(30),
        };
        c.variants.rate_limit = lmsinfra_sandbox::variants::RateLimitRegime::Sliding;
    });
    for _ in 0..3 {
        assert_eq!(sandbox.send("GET", D1, Body::None).status, 200);
    }
    let admitted = sandbox.send("GET", "/accounts/{account}/workers/subdomain", Body::None);
    assert_eq!(admitted.status, 200);
    assert_eq!(admitted.headers["ratelimit-policy"], "\"default\";q=4;w=30");
    assert!(
        admitted.headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"default\";r=0;t=")
    );
    let limited = sandbox.send("GET", D1, Body::None);
    assert_eq!((limited.status, limited.code()), (429, Some(1015)));
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // The limit is the user's: another token of the same user is refused too.
    assert_eq!(
        sandbox
            .send_as(Some("another-token"), "GET", D1, Body::None)
            .status,
        429
    );
}

#[test]
fn stats_count_per_route_and_status_and_reset() {
    let sandbox = TestSandbox::new();
    sandbox.get(D1);
    sandbox.get(D1);
    sandbox.send("GET", "/nowhere", Body::None);
    let stats = sandbox.sandbox().stats();
    assert_eq!(stats.total, 3);
    assert_eq!(stats.routes["GET /accounts/{account_id}/d1/database"], 2);
    assert_eq!(stats.statuses[&404], 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = sandbox.base_url().replace("/client/v4", "");
    let over_http: Value = runtime.block_on(async {
        reqwest::get(format!("{base}/__sandbox/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(over_http["total"], 3);
    runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/__sandbox/stats/reset"))
            .send()
            .await
            .unwrap();
    });
    assert_eq!(sandbox.sandbox().stats().total, 0);
}

#[test]
fn the_schema_check_catches_a_wrong_body() {
    let good = json!({"success": true, "errors": [], "messages": [], "result": [], "result_info": {"page": 1, "per_page": 20, "count": 0, "total_count": 0}});
    assert_eq!(
        validate(Some("cloudflare-d1-list-databases"), 200, &good),
        Ok(())
    );
    let wrong_result = json!({"success": true, "errors": [], "messages": [], "result": "lms-db"});
    assert!(validate(Some("cloudflare-d1-list-databases"), 200, &wrong_result).is_err());
    let null_secret_type = json!({"success": true, "errors": [], "messages": [], "result": [{"name": "A", "type": "plain_text"}]});
    assert!(validate(Some("worker-script-list-secrets"), 200, &null_secret_type).is_err());
    let failure_without_errors =
        json!({"success": false, "errors": [{"code": 12}], "messages": [], "result": null});
    assert!(validate(None, 404, &failure_without_errors).is_err());
}

#[test]
fn the_project_sandbox_starts_from_the_seed_and_keeps_state_under_dot_lmsinfra() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("examples/sandbox")).unwrap();
    std::fs::copy(
        crate::support::audited_seed(),
        dir.path().join("examples/sandbox/audited-account.json"),
    )
    .unwrap();
    let sandbox = Sandbox::start(SandboxConfig::for_project(dir.path())).unwrap();
    assert!(sandbox.base_url().starts_with("http://127.0.0.1:"));
    assert!(dir.path().join(".lmsinfra/sandbox.json").exists());
}

#[test]
fn a_non_loopback_address_is_refused() {
    let config = SandboxConfig {
        listen: Some("0.0.0.0:0".parse().unwrap()),
        ..Default::default()
    };
    let error = Sandbox::start(config).unwrap_err().to_string();
    assert!(error.contains("loopback"), "{error}");
}

#[test]
fn the_command_line_rejects_a_bad_fault_spec_clearly() {
    let sandbox = TestSandbox::new();
    let output = Lmsinfra::new(&sandbox)
        .args(["sandbox", "--faults", "500=3"])
        .output();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("from 0 to 1"), "{stderr}");
}

#[test]
fn uploaded_versions_deploy_gradually_and_roll_back() {
    let sandbox = TestSandbox::new();
    let script = format!("{SCRIPTS}/lms-viewer");
    let serving = sandbox.get(&format!("{script}/versions"))["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uploaded = sandbox.send(
        "POST",
        &format!("{script}/versions"),
        upload(json!({
            "main_module": "worker.js",
            "compatibility_date": "2025-01-15",
            "bindings": [{"name": "API_ORIGIN", "type": "inherit"}],
            "annotations": {"workers/message": "canary"},
        })),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    let candidate = uploaded.body["result"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        sandbox.get(&format!("{script}/settings"))["compatibility_date"],
        "2025-01-15",
        "settings describe the newest version"
    );
    assert_eq!(
        sandbox.get(&format!("{script}/deployments"))["deployments"][0]["versions"][0]["version_id"],
        serving,
        "an uploaded version is not deployed"
    );
    let blocked = sandbox.send(
        "PUT",
        &format!("{script}/secrets"),
        Body::Json(json!({"name": "K", "text": "v", "type": "secret_text"})),
    );
    assert_eq!(
        (blocked.status, blocked.code()),
        (400, Some(10215)),
        "{}",
        blocked.body
    );
    let split = json!({"strategy": "percentage", "versions": [{"version_id": candidate, "percentage": 10}, {"version_id": serving, "percentage": 90}]});
    let deployed = sandbox.send("POST", &format!("{script}/deployments"), Body::Json(split));
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    assert_eq!(
        sandbox.get(&format!("{script}/deployments"))["deployments"][0]["versions"][0]["percentage"],
        10.0
    );
    let full = json!({"strategy": "percentage", "versions": [{"version_id": candidate, "percentage": 100}]});
    assert_eq!(
        sandbox
            .send("POST", &format!("{script}/deployments"), Body::Json(full))
            .status,
        200
    );
    let settings = sandbox.get(&format!("{script}/settings"));
    assert_eq!(settings["compatibility_date"], "2025-01-15");
    assert_eq!(
        settings["bindings"][0]["text"],
        "https://lms-api.example.workers.dev"
    );
    for bad in [
        json!({"strategy": "percentage", "versions": [{"version_id": candidate, "percentage": 60}]}),
        json!({"strategy": "immediate", "versions": [{"version_id": candidate, "percentage": 100}]}),
        json!({"strategy": "percentage", "versions": [{"version_id": "nope", "percentage": 100}]}),
    ] {
        assert_eq!(
            sandbox
                .send(
                    "POST",
                    &format!("{script}/deployments"),
                    Body::Json(bad.clone())
                )
                .status,
            400,
            "{bad}"
        );
    }
}

#[test]
fn workers_dev_subdomains_can_be_read_and_switched() {
    let sandbox = TestSandbox::new();
    let path = format!("{SCRIPTS}/lms-api/subdomain");
    assert_eq!(
        sandbox.get(&path),
        json!({"enabled": true, "previews_enabled": true})
    );
    let off = sandbox.send("POST", &path, Body::Json(json!({"enabled": false})));
    assert_eq!(
        off.body["result"],
        json!({"enabled": false, "previews_enabled": true})
    );
    assert_eq!(sandbox.send("DELETE", &path, Body::None).status, 200);
    assert_eq!(
        sandbox.get(&path),
        json!({"enabled": false, "previews_enabled": false})
    );
    let renamed = sandbox.send(
        "PUT",
        "/accounts/{account}/workers/subdomain",
        Body::Json(json!({"subdomain": "lms-example"})),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        sandbox.get("/accounts/{account}/workers/subdomain")["subdomain"],
        "lms-example"
    );
}

#[test]
fn d1_refuses_attach_and_reports_sql_errors_in_the_envelope() {
    let sandbox = TestSandbox::new();
    let path = format!("{D1}/{LMS_DB}/query");
    for sql in [
        "ATTACH DATABASE '/tmp/elsewhere.db' AS other",
        "SELEKT 1",
        "SELECT * FROM missing_table",
    ] {
        let answer = sandbox.send("POST", &path, Body::Json(json!({"sql": sql})));
        assert_eq!(
            (answer.status, answer.code()),
            (400, Some(7500)),
            "{sql}: {}",
            answer.body
        );
    }
    let answer = sandbox.send(
        "POST",
        &path,
        Body::Json(json!({"sql": "SELECT 1 AS one", "params": []})),
    );
    assert_eq!(answer.body["result"][0]["results"], json!([{"one": 1}]));
}

#[test]
fn the_sandbox_command_serves_the_seed_in_the_foreground() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .args([
            "--color",
            "never",
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--token",
            "only-this",
        ])
        .arg("--seed")
        .arg(crate::support::audited_seed())
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("CLOUDFLARE_API_BASE_URL="));
    let base = line
        .as_deref()
        .and_then(|l| l.split('=').nth(1))
        .map(str::to_owned);
    let answers = base.map(|base| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = reqwest::Client::new();
            let url = format!("{base}/accounts/{ACCOUNT_ID}/d1/database");
            let right = client
                .get(&url)
                .bearer_auth("only-this")
                .send()
                .await
                .unwrap()
                .status();
            let wrong = client
                .get(&url)
                .bearer_auth("other")
                .send()
                .await
                .unwrap()
                .status();
            (right.as_u16(), wrong.as_u16())
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(answers, Some((200, 403)));
    assert!(dir.path().join("state.json").exists());
}

#[test]
fn a_broken_state_or_seed_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"account": {"id": 7}}"#).unwrap();
    let config = SandboxConfig {
        state: Some(broken.clone()),
        ..Default::default()
    };
    let error = Sandbox::start(config).unwrap_err();
    assert!(error.to_string().contains("broken.json"), "{error}");
    let mut seed: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::support::audited_seed()).unwrap())
            .unwrap();
    seed["account"]["scripts"]["lms-api"]["secrets"]
        .as_object_mut()
        .unwrap()
        .remove("TALLY_SIGNING_SECRET");
    let seed_path = dir.path().join("seed.json");
    std::fs::write(&seed_path, seed.to_string()).unwrap();
    let config = SandboxConfig {
        seed: Some(seed_path),
        ..Default::default()
    };
    let error = format!(
        "{:?}",
        miette::Report::new(Sandbox::start(config).unwrap_err())
    );
    assert!(
        error.contains("TALLY_SIGNING_SECRET has no digest"),
        "{error}"
    );
}

#[test]
fn latency_and_slow_faults_still_answer_in_full() {
    let sandbox = TestSandbox::with(|c| {
        c.latency = Duration::from_millis(5);
        c.faults = Some("seed=1,slow=1:5ms".parse().unwrap());
    });
    assert_eq!(names(&sandbox.get(D1), "name"), ["lms-db"]);
    let stats = sandbox.sandbox().stats();
    assert_eq!(stats.statuses.get(&200), Some(&1));
}

#[test]
fn concurrent_changes_all_land_and_the_state_file_stays_whole() {
    let sandbox = TestSandbox::new();
    let base = sandbox.base_url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let statuses: Vec<u16> = runtime.block_on(async {
        let client = reqwest::Client::new();
        let requests = (0..40).map(|i| {
            let url = format!("{base}/accounts/{ACCOUNT_ID}/workers/scripts/lms-viewer/secrets");
            let request = client
                .put(url)
                .bearer_auth(crate::support::TOKEN)
                .json(&json!({"name": format!("S{i}"), "text": "v", "type": "secret_text"}));
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        });
        futures::future::join_all(requests).await
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        sandbox
            .get(&format!("{SCRIPTS}/lms-viewer/secrets"))
            .as_array()
            .map(Vec::len),
        Some(40)
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.state_path()).unwrap()).unwrap();
    assert_eq!(
        state["account"]["scripts"]["lms-viewer"]["versions"]
            .as_array()
            .map(Vec::len),
        Some(41)
    );
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn garbage_bodies_get_a_4xx_envelope_on_every_write_route() {
    let sandbox = TestSandbox::new();
    let zone = sandbox.get("/zones")[0]["id"].as_str().unwrap().to_owned();
    let version = sandbox.get(&format!("{SCRIPTS}/lms-api/versions"))["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let routes = [
        ("PUT", format!("{SCRIPTS}/lms-api")),
        ("PATCH", format!("{SCRIPTS}/lms-api/settings")),
        ("PUT", format!("{SCRIPTS}/lms-api/secrets")),
        ("POST", format!("{SCRIPTS}/lms-api/versions")),
        ("POST", format!("{SCRIPTS}/lms-api/deployments")),
        ("POST", format!("{SCRIPTS}/lms-api/subdomain")),
        ("PUT", "/accounts/{account}/workers/subdomain".to_owned()),
        ("POST", D1.to_owned()),
        ("POST", format!("{D1}/{LMS_DB}/query")),
        ("POST", format!("{D1}/{LMS_DB}/raw")),
        (
            "PUT",
            format!("/zones/{zone}/rulesets/phases/http_ratelimit/entrypoint"),
        ),
        ("GET", format!("{D1}?page=0")),
        ("GET", format!("{SCRIPTS}/lms-api/versions?per_page=1000")),
    ];
    let bodies = || {
        vec![
            Body::None,
            Body::Raw("application/json", b"null".to_vec()),
            Body::Raw("application/json", b"[]".to_vec()),
            Body::Raw("application/json", b"\"x\"".to_vec()),
            Body::Raw("application/json", vec![0xff, 0xfe, 0x00]),
            Body::Json(json!({"name": 5, "sql": 7, "rules": {}, "versions": "all", "subdomain": ["a"], "enabled": "yes", "text": null, "params": [[1]]})),
            Body::Json(json!({"strategy": "percentage", "versions": [{"version_id": version, "percentage": 1e308}]})),
            Body::Raw("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"main_module\": 1}\r\n--b--\r\n".to_vec()),
            form(&[("settings", None, "{\"bindings\": [{\"type\": \"inherit\"}], \"compatibility_date\": \"2024-13-45\"}")]),
            form(&[("metadata", None, "{\"main_module\": \"a.js\", \"bindings\": {}}"), ("a.js", Some("application/javascript+module"), "x")]),
            form(&[("metadata", None, "{\"main_module\": \"a.js\"}"), ("a.js", Some("image/png"), "x")]),
        ]
    };
    for (method, path) in &routes {
        for body in bodies() {
            let answer = sandbox.send(method, path, body);
            assert!(
                (400..500).contains(&answer.status),
                "{method} {path}: {} {}",
                answer.status,
                answer.body
            );
            assert_eq!(answer.body["success"], false, "{method} {path}");
        }
    }
}
