//! apply is safe under every plausible answer of the real API (`cloudflare-api/FIDELITY.md`):
//! it refuses before writing to a Worker whose rollout is unsettled, and it stops at once when
//! a settings write loses a binding.

use serde_json::{Value, json};

use std::time::Duration;

use lmsinfra_sandbox::{RateLimit, Variant, Variants};

use crate::support::{Body, Lmsinfra, Run, TestSandbox, form, lmsinfra_snapshot};

const API: &str = "/accounts/{account}/workers/scripts/lms-api-staging";

/// The secrets staging's API Worker requires.
const SECRETS: [&str; 4] = [
    "TALLY_WEBHOOK_SECRET",
    "TALLY_SIGNING_SECRET",
    "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
    "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
];

const MODULE: &str = "export default { async fetch() { return new Response('ok'); } };";

/// `apply staging --auto-approve` with every required secret.
fn apply_staging(sandbox: &TestSandbox) -> Run {
    apply_staging_with(sandbox, &[])
}

/// `apply staging` with every secret, and `extra` arguments.
fn apply_staging_with(sandbox: &TestSandbox, extra: &[&str]) -> Run {
    let mut command = Lmsinfra::new(sandbox)
        .args(["apply", "staging", "--auto-approve"])
        .args(extra);
    for (i, name) in SECRETS.iter().enumerate() {
        let var = format!("LMSINFRA_TEST_SECRET_{i}");
        command = command
            .env(&var, format!("value of {name}"))
            .args(["--secret", &format!("{name}=env:{var}")]);
    }
    command.run()
}

fn plan_staging(sandbox: &TestSandbox) -> Run {
    Lmsinfra::new(sandbox)
        .args(["plan", "staging", "--detailed-exitcode", "--no-probe"])
        .run()
}

fn state(sandbox: &TestSandbox) -> Vec<u8> {
    std::fs::read(sandbox.state_path()).expect("the sandbox state file is readable")
}

/// Upload a version of the staging API Worker with `POST …/versions`, not deployed; its id.
fn upload_undeployed(sandbox: &TestSandbox) -> String {
    let bindings: Vec<Value> = sandbox.get(&format!("{API}/settings"))["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| json!({"name": b["name"], "type": "inherit"}))
        .collect();
    let metadata = json!({"main_module": "worker.js", "compatibility_date": "2024-12-01", "bindings": bindings});
    let uploaded = sandbox.send(
        "POST",
        &format!("{API}/versions"),
        form(&[
            ("metadata", None, &metadata.to_string()),
            ("worker.js", Some("application/javascript+module"), MODULE),
        ]),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    uploaded.body["result"]["id"]
        .as_str()
        .expect("a version id")
        .to_owned()
}

fn deployed_version(sandbox: &TestSandbox) -> String {
    sandbox.get(&format!("{API}/deployments"))["deployments"][0]["versions"][0]["version_id"]
        .as_str()
        .expect("a deployed version")
        .to_owned()
}

/// Plan shows the rollout blocker naming both versions, and apply exits 3 without changing
/// the sandbox's state file by one byte.
fn assert_blocked_naming(sandbox: &TestSandbox, name: &str, versions: [&str; 2]) {
    let before = state(sandbox);
    let planned = plan_staging(sandbox);
    for version in versions {
        assert!(planned.stdout.contains(version), "{version}: {planned}");
    }
    lmsinfra_snapshot!(format!("{name}_plan"), planned);
    let applied = apply_staging(sandbox);
    assert_eq!(applied.code, 3, "{applied}");
    assert!(
        applied.stdout.contains("serves version"),
        "the blocker is not shown: {applied}"
    );
    assert!(state(sandbox) == before, "the state file changed");
}

#[test]
fn an_undeployed_newest_version_blocks_plan_and_apply() {
    let sandbox = TestSandbox::new();
    let deployed = deployed_version(&sandbox);
    let newest = upload_undeployed(&sandbox);
    assert_blocked_naming(&sandbox, "undeployed_newest", [&deployed, &newest]);
}

#[test]
fn a_gradual_deployment_blocks_plan_and_apply() {
    let sandbox = TestSandbox::new();
    let deployed = deployed_version(&sandbox);
    let newest = upload_undeployed(&sandbox);
    let split = sandbox.send(
        "POST",
        &format!("{API}/deployments"),
        Body::Json(json!({
            "strategy": "percentage",
            "versions": [
                {"version_id": deployed, "percentage": 90},
                {"version_id": newest, "percentage": 10},
            ],
        })),
    );
    assert_eq!(split.status, 200, "{}", split.body);
    assert_blocked_naming(&sandbox, "gradual_deployment", [&deployed, &newest]);
}

fn with_variants(variants: &[&str]) -> TestSandbox {
    let variants: Variants = variants
        .iter()
        .map(|v| v.parse::<Variant>().expect("variant"))
        .collect();
    TestSandbox::with(|c| c.variants = variants)
}

/// Put a secret on the staging API Worker behind lmsinfra's back.
fn put_unmanaged_secret(sandbox: &TestSandbox, name: &str) {
    let put = sandbox.send(
        "PUT",
        &format!("{API}/secrets"),
        Body::Json(json!({"name": name, "text": "kept", "type": "secret_text"})),
    );
    assert_eq!(put.status, 200, "{}", put.body);
}

#[test]
fn a_settings_write_that_drops_an_inherited_secret_stops_apply_at_once() {
    let sandbox = with_variants(&["drop-inherited-secret=DASHBOARD_SECRET"]);
    put_unmanaged_secret(&sandbox, "DASHBOARD_SECRET");
    let applied = lmsinfra_snapshot!(apply_staging(&sandbox));
    assert_eq!(applied.code, 1, "{applied}");
    let stats = sandbox.sandbox().stats();
    let puts = stats
        .routes
        .get("PUT /accounts/{account_id}/workers/scripts/{script_name}/secrets")
        .copied();
    // The one PUT is the test's own: apply wrote no secret after the loss.
    assert_eq!(puts, Some(1), "{stats:?}");
}

#[test]
fn a_dropped_inherited_secret_stops_apply_before_any_other_worker_is_written() {
    let sandbox = with_variants(&["drop-inherited-secret=DASHBOARD_SECRET"]);
    for script in ["lms-api-staging", "lms-viewer-staging"] {
        let put = sandbox.send(
            "PUT",
            &format!("/accounts/{{account}}/workers/scripts/{script}/secrets"),
            Body::Json(json!({"name": "DASHBOARD_SECRET", "text": "kept", "type": "secret_text"})),
        );
        assert_eq!(put.status, 200, "{}", put.body);
    }
    // Both Workers change and both keep DASHBOARD_SECRET by reference; with the database there
    // and no migrations or Workers Logs to wait for, both writes could start at once.
    sandbox.create_d1("lms-db-staging");
    let project = crate::support::Project::new();
    project.edit("staging", |text| {
        text.replace("    migrations: { directory: migrations }\n", "")
            .replace(
                "    observability: { enabled: true, head_sampling_rate: 1 }\n",
                "",
            )
            .replace(
                "      API_ORIGIN:",
                "      FLAG: { type: plain_text, text: \"on\" }\n      API_ORIGIN:",
            )
    });
    let mut command = Lmsinfra::new(&sandbox).project(&project).args([
        "apply",
        "staging",
        "--auto-approve",
        "--concurrency",
        "16",
    ]);
    for (i, name) in SECRETS.iter().enumerate() {
        let var = format!("LMSINFRA_TEST_SECRET_{i}");
        command = command
            .env(&var, format!("value of {name}"))
            .args(["--secret", &format!("{name}=env:{var}")]);
    }
    let applied = command.run();
    assert_eq!(applied.code, 1, "{applied}");
    assert!(applied.stderr.contains("no longer has"), "{applied}");
    let stats = sandbox.sandbox().stats();
    let patches = stats
        .routes
        .get("PATCH /accounts/{account_id}/workers/scripts/{script_name}/settings")
        .copied();
    // The first Worker write is read back before any other starts: one Worker lost the
    // secret, the other was never written.
    assert_eq!(patches, Some(1), "{stats:?}");
}

/// Every variant the sandbox can play of what the real API has not been seen to settle.
pub const VARIANTS: [&str; 12] = [
    "settings-patch-base=deployed",
    "settings-patch-base=newest",
    "settings-patch-base=refuse",
    "inherit=drop-unresolvable",
    "inherit=accepted",
    "inherit=refused",
    "drop-inherited-secret=TALLY_WEBHOOK_SECRET",
    "patch-answer=full",
    "patch-answer=no-bindings",
    "rate-limit=block",
    "rate-limit=sliding",
    "rate-limit-headers=absent",
];

fn binding_names(sandbox: &TestSandbox) -> Vec<String> {
    let mut names: Vec<String> = sandbox.get(&format!("{API}/settings"))["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| b["name"].as_str().expect("a name").to_owned())
        .collect();
    names.sort_unstable();
    names
}

#[test]
fn apply_core_cases_hold_under_every_variant() {
    for variant in VARIANTS {
        // With every secret: converges, and a fresh plan is empty.
        let sandbox = with_variants(&[variant]);
        let applied = apply_staging(&sandbox);
        assert_eq!(applied.code, 0, "{variant}: {applied}");
        let planned = plan_staging(&sandbox);
        assert_eq!(planned.code, 0, "{variant}: {planned}");
        let mut expected = vec!["ALLOWED_ORIGINS", "DB", "RATE_LIMITER"];
        expected.extend(SECRETS);
        expected.sort_unstable();
        assert_eq!(binding_names(&sandbox), expected, "{variant}");

        // Without the secrets: blocked, and the state file is untouched.
        let sandbox = with_variants(&[variant]);
        let before = state(&sandbox);
        let blocked = Lmsinfra::new(&sandbox)
            .args(["apply", "staging", "--auto-approve"])
            .run();
        assert_eq!(blocked.code, 3, "{variant}: {blocked}");
        assert!(
            state(&sandbox) == before,
            "{variant}: the state file changed"
        );

        // Unmanaged bindings and secrets are kept.
        let sandbox = with_variants(&[variant]);
        put_unmanaged_secret(&sandbox, "DASHBOARD_SECRET");
        let applied = apply_staging(&sandbox);
        assert_eq!(applied.code, 0, "{variant}: {applied}");
        let names = binding_names(&sandbox);
        assert!(
            names.iter().any(|n| n == "DASHBOARD_SECRET"),
            "{variant}: {names:?}"
        );
        assert_eq!(plan_staging(&sandbox).code, 0, "{variant}");
    }
}

#[test]
fn a_five_minute_rate_limit_block_stops_apply_cleanly_saying_what_is_done() {
    // Enough requests for the plan's reads (the account's zone and its two rulesets among
    // them), the database create and its two migrations (a bookmark read, then three import
    // calls each); the Workers Logs write that follows, and so the settings step after it, is
    // blocked for five minutes, longer than the client waits. One step at a time
    // (`--concurrency 1`), so which request meets the block is always the same. The answers do not say how
    // much of the budget is left (a proxy strips the headers), as when another user of the
    // account spends it unseen: with them, apply waits for the window instead
    // (`load::a_plan_past_the_reported_budget_waits_for_the_reset_and_says_so`).
    let sandbox = TestSandbox::with(|c| {
        c.rate_limit = RateLimit {
            requests: 20,
            window: Duration::from_secs(300),
        };
        c.variants = Variants::from_iter(["rate-limit-headers=absent"
            .parse::<Variant>()
            .expect("variant")]);
    });
    let applied = lmsinfra_snapshot!(apply_staging_with(&sandbox, &["--concurrency", "1"]));
    assert_eq!(applied.code, 1, "{applied}");
    let stats = sandbox.sandbox().stats();
    let writes: Vec<(&String, &u64)> = stats
        .routes
        .iter()
        .filter(|(route, _)| !route.starts_with("GET "))
        .collect();
    // The create and the migrations went through; the Workers Logs write was sent and refused
    // (the one 429), so the settings step after it was never started.
    assert_eq!(stats.statuses.get(&429), Some(&1), "{stats:?}");
    assert_eq!(
        writes,
        [
            (
                &"PATCH /accounts/{account_id}/workers/scripts/{script_name}/script-settings"
                    .to_owned(),
                &1
            ),
            (&"POST /accounts/{account_id}/d1/database".to_owned(), &1),
            (
                &"POST /accounts/{account_id}/d1/database/{database_id}/import".to_owned(),
                &6
            )
        ],
        "{stats:?}"
    );
    assert_eq!(stats.statuses.get(&429).copied(), Some(1), "{stats:?}");
}

/// A sandbox of the audited account whose zone is on `plan`; the seed's folder goes with it.
fn zone_on_plan(plan: &str) -> (TestSandbox, tempfile::TempDir) {
    let mut seed: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::audited_seed()).expect("the seed"),
    )
    .expect("seed JSON");
    seed["zones"][0]["plan"]["legacy_id"] = json!(plan);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("seed.json");
    std::fs::write(&path, seed.to_string()).expect("seed written");
    (TestSandbox::with(|c| c.seed = Some(path)), dir)
}

#[test]
fn a_rate_limit_a_free_zone_cannot_hold_is_a_plan_blocker() {
    let (sandbox, _seed) = zone_on_plan("free");
    let routed = crate::security::routed_production();
    assert!(
        routed.contains("period: 60"),
        "the example limits per minute"
    );
    let dir = crate::security::project(&routed, "https://lms-api.example.workers.dev/health");
    let before = state(&sandbox);
    let planned = Lmsinfra::new(&sandbox)
        .args(["--dir".as_ref(), dir.path().as_os_str()])
        .args(["plan", "production", "--detailed-exitcode", "--no-probe"])
        .run();
    let planned = lmsinfra_snapshot!(planned);
    assert!(
        planned
            .stdout
            .contains("a period of 60 s is over the plan's limit of 10 s"),
        "{planned}"
    );
    let applied = Lmsinfra::new(&sandbox)
        .args(["--dir".as_ref(), dir.path().as_os_str()])
        .args(["apply", "production", "--auto-approve"])
        .run();
    assert_eq!(applied.code, 3, "{applied}");
    assert!(state(&sandbox) == before, "the state file changed");

    let (business, _seed) = zone_on_plan("business");
    let applied = Lmsinfra::new(&business)
        .args(["--dir".as_ref(), dir.path().as_os_str()])
        .args(["apply", "production", "--auto-approve"])
        .run();
    assert_eq!(applied.code, 0, "{applied}");
}

#[test]
fn the_sandbox_takes_a_ratelimit_binding_only_with_a_period_of_10_or_60() {
    let sandbox = TestSandbox::new();
    let patch = |period: u64| {
        let settings = json!({"bindings": [
            {"name": "LIMITER", "type": "ratelimit", "namespace_id": "1003", "simple": {"limit": 5, "period": period}},
        ]});
        sandbox.send(
            "PATCH",
            &format!("{API}/settings"),
            form(&[("settings", Some("application/json"), &settings.to_string())]),
        )
    };
    let refused = patch(30);
    assert_eq!(refused.status, 400, "{}", refused.body);
    let kept = patch(10);
    assert_eq!(kept.status, 200, "{}", kept.body);
    let limiter = sandbox.get(&format!("{API}/settings"))["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .find(|b| b["name"] == "LIMITER")
        .cloned();
    assert_eq!(
        limiter,
        Some(
            json!({"name": "LIMITER", "type": "ratelimit", "namespace_id": "1003", "simple": {"limit": 5, "period": 10}})
        )
    );
}
