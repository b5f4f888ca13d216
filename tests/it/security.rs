//! Edge rules against the sandbox: apply writes the owned header and rate-limit rules into the
//! zone's rulesets, keeps everyone else's rules, converges, and does not overwrite a change made
//! between its read and its write.

use std::path::Path;

use lmsinfra_sandbox::Interleave;
use serde_json::{Value, json};

use crate::support::{Body, Lmsinfra, Run, TestSandbox, lmsinfra_snapshot};

const RULESET: &str = "/zones/023e105f4ecef8ad9ca31a8372d0c353/rulesets/phases/{phase}/entrypoint";
const RULESET_ROUTE: &str = "/zones/{zone_id}/rulesets/phases/{ruleset_phase}/entrypoint";

/// The routed production example: the api Worker on example.com, rate limited.
pub fn routed_production() -> String {
    let path = crate::support::root().join("examples/edge/environments/production.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A project folder holding `environments/production.yaml` with `manifest`, its probe URL
/// replaced by `probe_url`.
pub fn project(manifest: &str, probe_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let environments = dir.path().join("environments");
    std::fs::create_dir(&environments).expect("environments folder");
    std::fs::write(
        environments.join("production.yaml"),
        manifest.replace("https://api.example.com/health", probe_url),
    )
    .expect("manifest written");
    dir
}

fn run(sandbox: &TestSandbox, dir: &Path, args: &[&str]) -> Run {
    Lmsinfra::new(sandbox)
        .args(["--dir".as_ref(), dir.as_os_str()])
        .args(args)
        .run()
}

fn refs(sandbox: &TestSandbox, phase: &str) -> Vec<String> {
    sandbox.get(&RULESET.replace("{phase}", phase))["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["ref"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn calls(sandbox: &TestSandbox, method: &str) -> u64 {
    let stats = sandbox.sandbox().stats();
    stats
        .routes
        .get(&format!("{method} {RULESET_ROUTE}"))
        .copied()
        .unwrap_or(0)
}

fn puts(sandbox: &TestSandbox) -> u64 {
    calls(sandbox, "PUT")
}

fn foreign_rate_limit() -> Value {
    json!({
        "ref": "dashboard-abuse",
        "description": "added in the dashboard",
        "action": "block",
        "expression": "(ip.src eq 192.0.2.1)",
        "ratelimit": { "characteristics": ["cf.colo.id", "ip.src"], "period": 10, "requests_per_period": 5, "mitigation_timeout": 10 },
    })
}

#[test]
fn apply_adds_owned_rules_keeps_foreign_ones_and_converges() {
    let sandbox = TestSandbox::new();
    let foreign = json!({
        "ref": "dashboard-cache",
        "description": "added in the dashboard",
        "action": "rewrite",
        "expression": "(http.host eq \"www.example.com\")",
        "action_parameters": { "headers": { "Cache-Control": { "operation": "set", "value": "no-store" } } },
    });
    let put = sandbox.send(
        "PUT",
        &RULESET.replace("{phase}", "http_response_headers_transform"),
        Body::Json(json!({ "rules": [foreign] })),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let dir = project(
        &routed_production(),
        "https://lms-api.example.workers.dev/health",
    );

    lmsinfra_snapshot!(
        "edge_rules_planned",
        run(&sandbox, dir.path(), &["plan", "production", "--no-probe"])
    );

    let apply = run(
        &sandbox,
        dir.path(),
        &["apply", "production", "--auto-approve"],
    );
    assert_eq!(apply.code, 0, "{apply}");
    assert_eq!(
        refs(&sandbox, "http_response_headers_transform"),
        ["dashboard-cache", "lmsinfra:production:api:headers"]
    );
    assert_eq!(
        refs(&sandbox, "http_ratelimit"),
        ["lmsinfra:production:api:ratelimit"]
    );
    let rules = sandbox.get(&RULESET.replace("{phase}", "http_ratelimit"))["rules"].clone();
    assert_eq!(
        rules[0]["action_parameters"]["response"]["status_code"],
        429
    );
    assert_eq!(rules[0]["ratelimit"]["requests_per_period"], 100);
    assert_eq!(
        rules[0]["expression"],
        r#"(http.host eq "api.example.com" and starts_with(http.request.uri.path, "/")) and (starts_with(http.request.uri.path, "/api/"))"#
    );

    let patched = sandbox
        .sandbox()
        .stats()
        .routes
        .contains_key("PATCH /accounts/{account_id}/workers/scripts/{script_name}/settings");
    assert!(
        !patched,
        "rule changes alone must not touch the Worker's settings"
    );

    let written = puts(&sandbox);
    let again = run(
        &sandbox,
        dir.path(),
        &["apply", "production", "--auto-approve"],
    );
    assert_eq!(again.code, 0, "{again}");
    let plan = run(
        &sandbox,
        dir.path(),
        &["plan", "production", "--no-probe", "--detailed-exitcode"],
    );
    assert_eq!(plan.code, 0, "{plan}");
    assert_eq!(puts(&sandbox), written, "a second apply wrote a ruleset");
}

#[test]
fn a_ruleset_changed_between_read_and_write_is_recomputed_not_overwritten() {
    // The dashboard adds a rate-limit rule right after apply's first read of the phase, so
    // apply's re-read before the PUT sees a new version.
    let sandbox = TestSandbox::with(|config| {
        config.interleave = Some(Interleave {
            phase: "http_ratelimit".to_owned(),
            after_read: 1,
            rule: foreign_rate_limit(),
        });
    });
    let dir = project(
        &routed_production(),
        "https://lms-api.example.workers.dev/health",
    );
    let apply = run(
        &sandbox,
        dir.path(),
        &["apply", "production", "--auto-approve"],
    );
    assert_eq!(apply.code, 0, "{apply}");
    // Reads: the plan's two phases, one re-read for the header ruleset and two for the moved
    // rate-limit ruleset; one write per phase, whose answer is what the convergence check
    // reads.
    assert_eq!(
        (calls(&sandbox, "GET"), puts(&sandbox)),
        (5, 2),
        "{:?}",
        sandbox.sandbox().stats()
    );
    assert_eq!(
        refs(&sandbox, "http_ratelimit"),
        ["dashboard-abuse", "lmsinfra:production:api:ratelimit"]
    );
}

#[test]
fn a_write_that_lands_between_the_last_read_and_the_put_is_reported() {
    // The concurrent write lands right after the re-read before the PUT, where only the
    // version of the PUT's answer can tell.
    let sandbox = TestSandbox::with(|config| {
        config.interleave = Some(Interleave {
            phase: "http_ratelimit".to_owned(),
            after_read: 2,
            rule: foreign_rate_limit(),
        });
    });
    let dir = project(
        &routed_production(),
        "https://lms-api.example.workers.dev/health",
    );
    let apply = run(
        &sandbox,
        dir.path(),
        &["apply", "production", "--auto-approve"],
    );
    lmsinfra_snapshot!(apply);
}
