//! Rules lmsinfra does not own survive its read-modify-write of a ruleset byte for byte,
//! including the fields it does not model: a leaked-credential rate-limit rule must keep its
//! `exposed_credential_check`, or it would block every matching request.

use serde_json::{Value, json};

use crate::security::{project, routed_production};
use crate::support::{Body, Lmsinfra, TestSandbox};

const RATE_LIMITS: &str =
    "/zones/023e105f4ecef8ad9ca31a8372d0c353/rulesets/phases/http_ratelimit/entrypoint";

/// A dashboard rule with fields lmsinfra's client does not model, one of them unknown to anyone.
fn leaked_credential_rule() -> Value {
    json!({
        "ref": "dashboard-leaked-credentials",
        "description": "added in the dashboard",
        "action": "block",
        "expression": "(http.request.uri.path eq \"/login\")",
        "ratelimit": {
            "characteristics": ["cf.colo.id", "ip.src"],
            "period": 10,
            "requests_per_period": 5,
            "mitigation_timeout": 10
        },
        "logging": { "enabled": false },
        "exposed_credential_check": {
            "username_expression": "url_decode(http.request.body.form[\"user\"][0])",
            "password_expression": "url_decode(http.request.body.form[\"pass\"][0])"
        },
        "x_field_from_the_future": { "kept": [1, "two", null] }
    })
}

/// The rule with `ref`, without the fields every write stamps anew.
fn rule(sandbox: &TestSandbox, reference: &str) -> Value {
    let rules = sandbox.get(RATE_LIMITS)["rules"].clone();
    let mut rule = rules
        .as_array()
        .expect("rules")
        .iter()
        .find(|rule| rule["ref"] == reference)
        .unwrap_or_else(|| panic!("no rule {reference} in {rules}"))
        .clone();
    let fields = rule.as_object_mut().expect("a rule is an object");
    fields.remove("version");
    fields.remove("last_updated");
    rule
}

#[test]
fn a_foreign_rule_is_written_back_unchanged_when_an_owned_rule_changes() {
    let sandbox = TestSandbox::new();
    let seeded = sandbox.send(
        "PUT",
        RATE_LIMITS,
        Body::Json(json!({ "rules": [leaked_credential_rule()] })),
    );
    assert_eq!(seeded.status, 200, "{}", seeded.body);
    let foreign = rule(&sandbox, "dashboard-leaked-credentials");
    assert_eq!(foreign["logging"], json!({ "enabled": false }), "{foreign}");

    let dir = project(
        &routed_production(),
        "https://lms-api.example.workers.dev/health",
    );
    let manifest = dir.path().join("environments/production.yaml");
    let apply = || {
        Lmsinfra::new(&sandbox)
            .args(["--dir".as_ref(), dir.path().as_os_str()])
            .args(["apply", "production", "--auto-approve"])
            .output()
    };
    let added = apply();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert_eq!(rule(&sandbox, "dashboard-leaked-credentials"), foreign);

    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("requests: 100", "requests: 50")).expect("edited");
    let changed = apply();
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let owned = rule(&sandbox, "lmsinfra:production:api:ratelimit");
    assert_eq!(owned["ratelimit"]["requests_per_period"], 50, "{owned}");
    assert_eq!(rule(&sandbox, "dashboard-leaked-credentials"), foreign);
}

#[test]
fn a_saved_plan_that_writes_rules_is_refused_when_a_foreign_rule_moved_since() {
    // A zone's entrypoint holds others' rules too, so a saved plan that writes one is checked
    // by reading the account again, not by its own read: a rule changed since is not undone.
    let sandbox = TestSandbox::new();
    let foreign = |log: bool| {
        let mut rule = leaked_credential_rule();
        rule["logging"] = json!({ "enabled": log });
        Body::Json(json!({ "rules": [rule] }))
    };
    let seeded = sandbox.send("PUT", RATE_LIMITS, foreign(false));
    assert_eq!(seeded.status, 200, "{}", seeded.body);
    let dir = project(
        &routed_production(),
        "https://lms-api.example.workers.dev/health",
    );
    let saved = dir.path().join("production.plan.json");
    Lmsinfra::new(&sandbox)
        .args(["--dir".as_ref(), dir.path().as_os_str()])
        .args(["plan", "production", "--no-probe", "--out"])
        .arg(&saved)
        .run();
    assert!(saved.exists(), "the plan is saved");
    let moved = sandbox.send("PUT", RATE_LIMITS, foreign(true));
    assert_eq!(moved.status, 200, "{}", moved.body);
    let moved = rule(&sandbox, "dashboard-leaked-credentials");

    let applied = Lmsinfra::new(&sandbox)
        .args(["--dir".as_ref(), dir.path().as_os_str()])
        .args(["apply", "production", "--auto-approve", "--plan"])
        .arg(&saved)
        .output();
    let stderr = String::from_utf8_lossy(&applied.stderr);
    assert_eq!(applied.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("is stale: the live"), "{stderr}");
    assert_eq!(rule(&sandbox, "dashboard-leaked-credentials"), moved);
}
