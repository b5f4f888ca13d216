//! Fidelity: the sandbox does what the real Cloudflare API is known to do, and plays each
//! variant of what nobody outside Cloudflare can settle (`cloudflare-api/FIDELITY.md`), all
//! over HTTP with every answer checked against the schema subset.

use std::time::Duration;

use lmsinfra_sandbox::variants::{PatchBase, RateLimitRegime};
use lmsinfra_sandbox::{RateLimit, Sandbox, SandboxConfig, Variant, Variants};
use serde_json::{Value, json};

use crate::support::{Body, TOKEN, TestSandbox, audited_seed, form};

const SCRIPTS: &str = "/accounts/{account}/workers/scripts";
const API: &str = "/accounts/{account}/workers/scripts/lms-api";
const D1: &str = "/accounts/{account}/d1/database";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const MODULE: &str = "export default { async fetch() { return new Response('ok'); } };";

fn settings_patch(settings: Value) -> Body {
    form(&[("settings", Some("application/json"), &settings.to_string())])
}

fn upload(metadata: Value) -> Body {
    form(&[
        ("metadata", None, &metadata.to_string()),
        ("worker.js", Some("application/javascript+module"), MODULE),
    ])
}

fn names(bindings: &Value) -> Vec<String> {
    let mut names: Vec<String> = bindings
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| b["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

fn with_variants(variants: &[&str]) -> TestSandbox {
    let variants: Variants = variants
        .iter()
        .map(|v| v.parse::<Variant>().expect("variant"))
        .collect();
    TestSandbox::with(|c| c.variants = variants)
}

/// The lms-api's bindings, each re-sent as `{name, type}` or `{type: inherit}`.
fn resend(sandbox: &TestSandbox, inherit: bool) -> Vec<Value> {
    sandbox.get(&format!("{API}/settings"))["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            if inherit {
                json!({"name": b["name"], "type": "inherit"})
            } else {
                json!({"name": b["name"], "type": b["type"]})
            }
        })
        .collect()
}

/// Upload a version of lms-api with an extra var, not deployed; returns its id.
fn upload_undeployed(sandbox: &TestSandbox) -> String {
    let mut bindings = resend(sandbox, true);
    bindings.push(json!({"name": "CANDIDATE", "type": "plain_text", "text": "yes"}));
    let uploaded = sandbox.send(
        "POST",
        &format!("{API}/versions"),
        upload(json!({"main_module": "worker.js", "compatibility_date": "2024-12-01", "bindings": bindings})),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    uploaded.body["result"]["id"].as_str().unwrap().to_owned()
}

fn deployed_version(sandbox: &TestSandbox) -> String {
    let deployments = sandbox.get(&format!("{API}/deployments"));
    deployments["deployments"][0]["versions"][0]["version_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn name_and_type_alone_keep_every_existing_binding() {
    let sandbox = TestSandbox::new();
    let before = sandbox.get(&format!("{API}/settings"))["bindings"].clone();
    let mut bindings = resend(&sandbox, false);
    bindings.push(json!({"name": "NEW", "type": "secret_text", "text": "s"}));
    let answer = sandbox.send(
        "PATCH",
        &format!("{API}/settings"),
        settings_patch(json!({ "bindings": bindings })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let after = sandbox.get(&format!("{API}/settings"))["bindings"].clone();
    for binding in before.as_array().unwrap() {
        assert!(
            after.as_array().unwrap().contains(binding),
            "{binding} lost: {after}"
        );
    }
    assert_eq!(
        names(&sandbox.get(&format!("{API}/secrets"))),
        [
            "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
            "NEW",
            "TALLY_SIGNING_SECRET",
            "TALLY_WEBHOOK_SECRET"
        ]
    );
    let unknown = sandbox.send(
        "PATCH",
        &format!("{API}/settings"),
        settings_patch(json!({"bindings": [{"name": "NOPE", "type": "secret_text"}]})),
    );
    assert_eq!((unknown.status, unknown.code()), (400, Some(10021)));
}

#[test]
fn unknown_binding_types_are_kept() {
    // The schema subset lists only the binding kinds lmsinfra models, so this sandbox runs
    // without the schema observer.
    let sandbox = Sandbox::start(SandboxConfig {
        seed: Some(audited_seed()),
        ..SandboxConfig::default()
    })
    .expect("sandbox starts");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!(
        "{}/accounts/{}/workers/scripts/lms-viewer/settings",
        sandbox.base_url(),
        crate::support::ACCOUNT_ID
    );
    let http = reqwest::Client::new();
    let bindings = json!([
        {"name": "API_ORIGIN", "type": "inherit"},
        {"name": "AI", "type": "ai"},
        {"name": "HYPER", "type": "hyperdrive", "id": "abc"},
    ]);
    let (status, after) = runtime.block_on(async {
        let form = reqwest::multipart::Form::new().part(
            "settings",
            reqwest::multipart::Part::text(json!({ "bindings": bindings }).to_string()),
        );
        let status = http
            .patch(&url)
            .bearer_auth(TOKEN)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status();
        let after: Value = http
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (status, after)
    });
    assert_eq!(status, 200);
    let kept = &after["result"]["bindings"];
    assert!(
        kept.as_array()
            .unwrap()
            .contains(&json!({"name": "HYPER", "type": "hyperdrive", "id": "abc"})),
        "{kept}"
    );
    assert_eq!(names(kept), ["AI", "API_ORIGIN", "HYPER"]);
}

#[test]
fn settings_and_secrets_describe_the_newest_version() {
    let sandbox = TestSandbox::new();
    let serving = deployed_version(&sandbox);
    let candidate = upload_undeployed(&sandbox);
    assert_eq!(deployed_version(&sandbox), serving);
    assert_ne!(serving, candidate);
    assert!(
        names(&sandbox.get(&format!("{API}/settings"))["bindings"]).contains(&"CANDIDATE".into())
    );
    let dropped = sandbox.send(
        "POST",
        &format!("{SCRIPTS}/lms-viewer/versions"),
        upload(json!({"main_module": "worker.js", "bindings": []})),
    );
    assert_eq!(dropped.status, 200, "{}", dropped.body);
    assert_eq!(
        sandbox.get(&format!("{SCRIPTS}/lms-viewer/settings"))["bindings"],
        json!([])
    );
    assert_eq!(
        sandbox
            .get(&format!("{API}/secrets"))
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn d1_lists_page_on_total_count_and_take_names_in_the_path() {
    let sandbox = TestSandbox::new();
    let page = sandbox.send("GET", &format!("{D1}?per_page=20000"), Body::None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body["result_info"],
        json!({"page": 1, "per_page": 10000, "count": 1, "total_count": 1})
    );
    let small = sandbox.send("GET", &format!("{D1}?per_page=5"), Body::None);
    assert_eq!(small.status, 400, "{}", small.body);
    let by_name = sandbox.get(&format!("{D1}/lms-db"));
    assert_eq!(by_name["uuid"], "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f");
    let query = sandbox.send(
        "POST",
        &format!("{D1}/lms-db/query"),
        Body::Json(json!({"sql": "SELECT 1 AS one"})),
    );
    assert_eq!(query.status, 200, "{}", query.body);
}

#[test]
fn auth_refusals_use_cloudflare_codes() {
    let sandbox = TestSandbox::new();
    let missing = sandbox.send_as(None, "GET", SCRIPTS, Body::None);
    assert_eq!((missing.status, missing.code()), (400, Some(9106)));
    let guarded = TestSandbox::with(|c| c.token = Some("right".into()));
    let d1 = guarded.send_as(Some("wrong"), "GET", D1, Body::None);
    assert_eq!((d1.status, d1.code()), (403, Some(7403)));
    let workers = guarded.send_as(Some("wrong"), "GET", SCRIPTS, Body::None);
    assert_eq!((workers.status, workers.code()), (403, Some(10000)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!(
        "{}/accounts/{}/workers/scripts",
        sandbox.base_url(),
        crate::support::ACCOUNT_ID
    );
    let malformed: Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(url)
            .header("authorization", "Token abc")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(malformed["errors"][0]["code"], 6003);
}

fn ruleset(phase: &str) -> String {
    format!("/zones/{ZONE}/rulesets/phases/{phase}/entrypoint")
}

fn rate_rule(expression: &str, period: u64, timeout: u64, characteristics: Value) -> Value {
    json!({
        "action": "block",
        "expression": expression,
        "ratelimit": {"characteristics": characteristics, "period": period, "requests_per_period": 10, "mitigation_timeout": timeout},
    })
}

#[test]
fn rule_ids_survive_a_put_and_ref_defaults_to_the_id() {
    let sandbox = TestSandbox::new();
    let path = ruleset("http_ratelimit");
    let rule = rate_rule(
        "(http.request.uri.path eq \"/login\")",
        10,
        10,
        json!(["cf.colo.id", "ip.src"]),
    );
    let first = sandbox.send("PUT", &path, Body::Json(json!({ "rules": [rule] })));
    assert_eq!(first.status, 200, "{}", first.body);
    let stored = first.body["result"]["rules"][0].clone();
    assert_eq!(stored["ref"], stored["id"]);
    let again = sandbox.send("PUT", &path, Body::Json(json!({ "rules": [stored] })));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["result"]["rules"][0]["id"], stored["id"]);
    assert_ne!(
        again.body["result"]["version"],
        first.body["result"]["version"]
    );
}

/// A sandbox whose zone is on `plan`.
fn on_plan(plan: &str) -> TestSandbox {
    let mut seed: Value =
        serde_json::from_str(&std::fs::read_to_string(audited_seed()).unwrap()).unwrap();
    seed["zones"][0]["plan"]["legacy_id"] = json!(plan);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.json");
    std::fs::write(&path, seed.to_string()).unwrap();
    let sandbox = TestSandbox::with(|c| c.seed = Some(path.clone()));
    drop(dir);
    sandbox
}

#[test]
fn rate_limiting_rules_must_fit_the_zone_plan() {
    let colo_ip = json!(["cf.colo.id", "ip.src"]);
    let path_only = "(starts_with(http.request.uri.path, \"/api/\"))";
    let host = "(http.host eq \"api.example.com\")";
    let cases = [
        (
            "free",
            vec![rate_rule(path_only, 10, 10, colo_ip.clone())],
            true,
        ),
        (
            "free",
            vec![rate_rule(path_only, 10, 10, json!(["ip.src"]))],
            false,
        ),
        (
            "free",
            vec![rate_rule(host, 10, 10, colo_ip.clone())],
            false,
        ),
        (
            "free",
            vec![rate_rule(path_only, 60, 10, colo_ip.clone())],
            false,
        ),
        (
            "free",
            vec![rate_rule(path_only, 10, 60, colo_ip.clone())],
            false,
        ),
        (
            "free",
            vec![rate_rule(path_only, 10, 10, colo_ip.clone()); 2],
            false,
        ),
        (
            "pro",
            vec![rate_rule(host, 60, 3600, colo_ip.clone())],
            true,
        ),
        (
            "pro",
            vec![rate_rule(host, 120, 60, colo_ip.clone())],
            false,
        ),
        ("pro", vec![rate_rule(host, 50, 60, colo_ip.clone())], false),
        (
            "pro",
            vec![rate_rule("(ip.src eq 192.0.2.1)", 60, 60, colo_ip.clone())],
            false,
        ),
        (
            "business",
            vec![rate_rule(
                "(ip.src eq 192.0.2.1)",
                600,
                86400,
                colo_ip.clone(),
            )],
            true,
        ),
        (
            "business",
            vec![rate_rule(host, 900, 60, colo_ip.clone())],
            false,
        ),
        (
            "business",
            vec![rate_rule(host, 10, 10, colo_ip.clone()); 6],
            false,
        ),
        (
            "enterprise",
            vec![rate_rule(
                "(http.cookie contains \"a\")",
                3600,
                86400,
                json!(["cf.colo.id", "http.request.headers[\"x\"]"]),
            )],
            true,
        ),
    ];
    for (plan, rules, accepted) in cases {
        let sandbox = on_plan(plan);
        let answer = sandbox.send(
            "PUT",
            &ruleset("http_ratelimit"),
            Body::Json(json!({ "rules": rules })),
        );
        let expected = if accepted { 200 } else { 400 };
        assert_eq!(answer.status, expected, "{plan} {rules:?}: {}", answer.body);
        if !accepted {
            let message = answer.body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains(&format!("{plan} plan")), "{message}");
        }
    }
}

#[test]
fn zones_carry_their_plan_and_account() {
    let sandbox = TestSandbox::new();
    let zones = sandbox.get("/zones?name=example.com");
    assert_eq!(zones[0]["plan"]["legacy_id"], "business");
    assert_eq!(zones[0]["account"]["id"], crate::support::ACCOUNT_ID);
    let other = sandbox.send(
        "GET",
        "/zones?account.id=ffffffffffffffffffffffffffffffff",
        Body::None,
    );
    assert_eq!(other.body["result"], json!([]));
    let unknown = sandbox.send(
        "GET",
        "/zones/ffffffffffffffffffffffffffffffff/rulesets/phases/http_ratelimit/entrypoint",
        Body::None,
    );
    assert_eq!((unknown.status, unknown.code()), (404, Some(7003)));
}

#[test]
fn script_settings_change_observability_and_keep_every_binding() {
    let sandbox = TestSandbox::new();
    let before = sandbox.get(&format!("{API}/settings"));
    let versions = sandbox.get(&format!("{API}/versions"))["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        sandbox.get(&format!("{API}/script-settings")),
        json!({"logpush": false, "tail_consumers": [], "tags": [], "observability": {"enabled": true, "head_sampling_rate": 1}})
    );
    let change = json!({
        "logpush": true,
        "observability": {"enabled": true, "head_sampling_rate": 0.1},
        "tail_consumers": [{"service": "lms-tail"}],
    });
    let answer = sandbox.send(
        "PATCH",
        &format!("{API}/script-settings"),
        Body::Json(change.clone()),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut expected = change.clone();
    expected["tags"] = json!([]);
    assert_eq!(answer.body["result"], expected);
    let after = sandbox.get(&format!("{API}/settings"));
    assert_eq!(after["bindings"], before["bindings"]);
    assert_eq!(after["observability"], change["observability"]);
    assert_eq!(
        sandbox.get(&format!("{API}/versions"))["items"]
            .as_array()
            .unwrap()
            .len(),
        versions,
        "script-level settings make no version"
    );
    let bad = sandbox.send(
        "PATCH",
        &format!("{API}/script-settings"),
        Body::Json(json!({"observability": {"enabled": true, "head_sampling_rate": 2}})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[test]
fn patch_while_the_newest_version_is_undeployed_plays_each_variant() {
    for (variant, expected) in [
        (PatchBase::Deployed, "deployed"),
        (PatchBase::Newest, "newest"),
        (PatchBase::Refuse, "refuse"),
    ] {
        let sandbox = with_variants(&[&format!("settings-patch-base={expected}")]);
        let candidate = upload_undeployed(&sandbox);
        let bindings = resend(&sandbox, true);
        let answer = sandbox.send(
            "PATCH",
            &format!("{API}/settings"),
            settings_patch(json!({ "bindings": bindings, "compatibility_date": "2025-01-15" })),
        );
        let served = sandbox.get(&format!("{API}/settings"));
        match variant {
            PatchBase::Refuse => {
                assert_eq!((answer.status, answer.code()), (400, Some(10215)));
                assert_eq!(served["compatibility_date"], "2024-12-01");
            }
            PatchBase::Newest => {
                assert_eq!(answer.status, 200, "{}", answer.body);
                assert!(names(&served["bindings"]).contains(&"CANDIDATE".into()));
                assert_eq!(served["compatibility_date"], "2025-01-15");
            }
            PatchBase::Deployed => {
                assert_eq!(answer.status, 200, "{}", answer.body);
                // Inherit resolves against the deployed version, which never had CANDIDATE.
                assert!(!names(&served["bindings"]).contains(&"CANDIDATE".into()));
            }
        }
        if variant != PatchBase::Refuse {
            assert_ne!(deployed_version(&sandbox), candidate);
        }
    }
}

#[test]
fn inherit_plays_each_variant() {
    let patch = |sandbox: &TestSandbox| {
        let mut bindings = resend(sandbox, true);
        bindings.push(json!({"name": "GHOST", "type": "inherit"}));
        sandbox.send(
            "PATCH",
            &format!("{API}/settings"),
            settings_patch(json!({ "bindings": bindings })),
        )
    };
    let dropped = with_variants(&[]);
    let answer = patch(&dropped);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(names(&dropped.get(&format!("{API}/secrets"))).len(), 4);
    assert!(!names(&answer.body["result"]["bindings"]).contains(&"GHOST".into()));

    for mode in ["accepted", "refused"] {
        let sandbox = with_variants(&[&format!("inherit={mode}")]);
        let before = sandbox.get(&format!("{API}/settings"));
        let answer = patch(&sandbox);
        assert_eq!((answer.status, answer.code()), (400, Some(10021)), "{mode}");
        assert_eq!(sandbox.get(&format!("{API}/settings")), before, "{mode}");
    }
    let refused = with_variants(&["inherit=refused"]);
    let plain = refused.send(
        "PATCH",
        &format!("{API}/settings"),
        settings_patch(json!({ "bindings": resend(&refused, false) })),
    );
    assert_eq!(
        plain.status, 200,
        "{{name, type}} is not `inherit`: {}",
        plain.body
    );
    let accepted = with_variants(&["inherit=accepted"]);
    let kept = accepted.send(
        "PATCH",
        &format!("{API}/settings"),
        settings_patch(json!({ "bindings": resend(&accepted, true) })),
    );
    assert_eq!(kept.status, 200, "{}", kept.body);
}

#[test]
fn a_named_inherited_secret_can_be_lost() {
    let sandbox = with_variants(&["drop-inherited-secret=TALLY_WEBHOOK_SECRET"]);
    let answer = sandbox.send(
        "PATCH",
        &format!("{API}/settings"),
        settings_patch(json!({ "bindings": resend(&sandbox, true) })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let secrets = names(&sandbox.get(&format!("{API}/secrets")));
    assert_eq!(secrets.len(), 3, "{secrets:?}");
    assert!(!secrets.contains(&"TALLY_WEBHOOK_SECRET".into()));
}

#[test]
fn patch_answer_can_leave_the_bindings_out() {
    let full = with_variants(&["patch-answer=full"]);
    let bare = with_variants(&["patch-answer=no-bindings"]);
    for (sandbox, has_bindings) in [(&full, true), (&bare, false)] {
        let answer = sandbox.send(
            "PATCH",
            &format!("{API}/settings"),
            settings_patch(json!({ "bindings": resend(sandbox, true) })),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.body["result"].get("bindings").is_some(),
            has_bindings
        );
        assert_eq!(names(&sandbox.get(&format!("{API}/secrets"))).len(), 4);
    }
}

#[test]
fn rate_limit_blocks_for_the_whole_window_by_default() {
    let limit = RateLimit {
        requests: 2,
        window: Duration::from_secs(300),
    };
    let blocked = TestSandbox::with(|c| c.rate_limit = limit);
    let sliding = TestSandbox::with(|c| {
        c.rate_limit = limit;
        c.variants.rate_limit = RateLimitRegime::Sliding;
    });
    for sandbox in [&blocked, &sliding] {
        for _ in 0..2 {
            assert_eq!(sandbox.send("GET", D1, Body::None).status, 200);
        }
    }
    let first = blocked.send("GET", D1, Body::None);
    assert_eq!((first.status, first.code()), (429, Some(10100)));
    assert_eq!(first.headers["retry-after"], "300");
    let message = first.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("More than 2 requests per 300 seconds"),
        "{message}"
    );
    let again = blocked.send("GET", D1, Body::None);
    assert_eq!(again.status, 429);
    let slid = sliding.send("GET", D1, Body::None);
    assert_eq!((slid.status, slid.code()), (429, Some(1015)));
}

#[test]
fn durable_object_bindings_fail_the_patch_under_the_fault() {
    let sandbox = TestSandbox::with(|c| c.faults = Some("do_binding=1".parse().unwrap()));
    let mut bindings = resend(&sandbox, true);
    let without = sandbox.send(
        "PATCH",
        &format!("{API}/settings"),
        settings_patch(json!({ "bindings": bindings.clone() })),
    );
    assert_eq!(without.status, 200, "{}", without.body);
    bindings
        .push(json!({"name": "ROOMS", "type": "durable_object_namespace", "class_name": "Room"}));
    let before = sandbox.get(&format!("{API}/settings"));
    let with = sandbox.send(
        "PATCH",
        &format!("{API}/settings"),
        settings_patch(json!({ "bindings": bindings })),
    );
    assert_eq!(
        (with.status, with.code()),
        (400, Some(10061)),
        "{}",
        with.body
    );
    assert_eq!(sandbox.get(&format!("{API}/settings")), before);
}

#[test]
fn sandbox_help_documents_the_variants() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .args(["sandbox", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--variant <KEY=VALUE>",
        "settings-patch-base=deployed|newest|refuse",
        "inherit=drop-unresolvable|accepted|refused",
        "drop-inherited-secret=NAME",
        "patch-answer=full|no-bindings",
        "rate-limit=block|sliding",
        "rate-limit-headers=sent|absent",
        "do_binding",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .args(["sandbox", "--variant", "inherit=maybe"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("drop-unresolvable, accepted, refused")
    );
}

#[test]
fn a_secret_of_the_newest_version_is_found_by_name() {
    let sandbox = TestSandbox::new();
    let mut bindings = resend(&sandbox, true);
    bindings.push(json!({"name": "STAGED", "type": "secret_text", "text": "s"}));
    let uploaded = sandbox.send(
        "POST",
        &format!("{API}/versions"),
        upload(json!({"main_module": "worker.js", "bindings": bindings})),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    assert_eq!(
        sandbox.get(&format!("{API}/secrets/STAGED")),
        json!({"name": "STAGED", "type": "secret_text"})
    );
}
