//! Smoke checks through the real binary: `verify`, apply's verify and its rollback, and
//! `check` with `--sandbox`, all against the sandbox's own Worker traffic (no site started here).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::apply::with_secrets;
use crate::support::{
    Body, Lmsinfra, Project, Run, TestSandbox, audited_seed, form, lmsinfra_snapshot, root,
};

const SCRIPTS: &str = "/accounts/{account}/workers/scripts";

/// `lmsinfra --sandbox ARGS` in `dir`, with no API settings from the environment.
fn with_sandbox_flag(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lmsinfra"));
    command
        .args(["--color", "never", "--sandbox", "--dir"])
        .arg(dir)
        .args(args)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_API_BASE_URL")
        .env_remove("CLOUDFLARE_ACCOUNT_ID");
    command
}

fn run(mut command: Command) -> Run {
    command.output().expect("lmsinfra runs").into()
}

/// The LMS's manifests and the audited seed in a temporary project.
fn sandbox_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["environments", "examples/sandbox"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("folders");
    }
    for name in ["staging.yaml", "production.yaml"] {
        std::fs::copy(
            root().join("environments").join(name),
            dir.path().join("environments").join(name),
        )
        .expect("a manifest is copied");
    }
    std::fs::copy(
        audited_seed(),
        dir.path().join("examples/sandbox/audited-account.json"),
    )
    .expect("the seed is copied");
    dir
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

/// The sandbox's log of Worker requests.
fn traffic(sandbox: &TestSandbox) -> Vec<Value> {
    let url = format!("http://{}/__sandbox/traffic", sandbox.sandbox().addr());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let log: Value = reqwest::get(url)
            .await
            .expect("the traffic log answers")
            .json()
            .await
            .expect("json");
        log.as_array().expect("a list").clone()
    })
}

#[test]
fn sandbox_check_grades_the_api_worker_low_through_the_sandboxs_worker_traffic() {
    let dir = sandbox_project();
    let check = run(with_sandbox_flag(
        dir.path(),
        &["check", "staging", "--format", "json"],
    ));
    assert_eq!(check.code, 3, "{check}");
    let report: Value = serde_json::from_str(&check.stdout).expect("a json report");
    let api = &report["urls"][0];
    assert_eq!(api["address"], "worker.api");
    assert_eq!(
        api["status"], 500,
        "staging's /health fails until DB is bound"
    );
    assert_eq!(api["score"]["grade"], "D", "{api}");
    assert!(api["unreachable"].is_null(), "{api}");
}

#[test]
fn verify_staging_fails_health_before_apply_and_passes_after() {
    let dir = sandbox_project();
    let before = run(with_sandbox_flag(dir.path(), &["verify", "staging"]));
    assert_eq!(before.code, 4, "{before}");
    assert!(
        before.stdout.contains("✗ worker.api health  GET /health")
            && before.stdout.contains("D1 binding DB is not bound"),
        "{before}"
    );
    assert!(
        before
            .stdout
            .contains("✓ worker.api unsigned-tally-webhook")
    );

    let mut apply = with_sandbox_flag(dir.path(), &["apply", "staging", "--auto-approve"]);
    for (i, name) in crate::apply::SECRETS.iter().enumerate() {
        let var = format!("LMSINFRA_TEST_SECRET_{i}");
        apply
            .env(&var, format!("value of {name}"))
            .args(["--secret", &format!("{name}=env:{var}")]);
    }
    let applied = run(apply);
    assert_eq!(applied.code, 0, "{applied}");
    assert!(
        applied.stdout.contains("✓ worker.api health"),
        "apply verified what it deployed: {applied}"
    );

    let after = run(with_sandbox_flag(dir.path(), &["verify", "staging"]));
    assert_eq!(after.code, 0, "{after}");
    assert!(
        after.stdout.ends_with("Passed: 0 of 4 checks failed.\n"),
        "{after}"
    );
}

#[test]
fn verify_sends_no_token_follows_no_redirect_and_refuses_a_version_outside_the_deployment() {
    let sandbox = TestSandbox::new();
    let production = serving_version(&sandbox, "lms-api");
    let verified = Lmsinfra::new(&sandbox)
        .args([
            "verify",
            "production",
            "--worker",
            "api",
            "--version",
            &production,
        ])
        .run();
    assert_eq!(verified.code, 0, "{verified}");
    let log = traffic(&sandbox);
    assert!(!log.is_empty());
    for entry in &log {
        let headers = entry["request_headers"].as_array().expect("header names");
        assert!(!headers.contains(&json!("authorization")), "{entry}");
        assert!(
            headers.contains(&json!("cloudflare-workers-version-overrides")),
            "{entry}"
        );
        assert_eq!(entry["version"], json!(production), "{entry}");
    }

    let before = traffic(&sandbox).len();
    let outside = Lmsinfra::new(&sandbox)
        .args([
            "verify",
            "production",
            "--version",
            "00000000-0000-4000-8000-000000000000",
        ])
        .run();
    assert_eq!(outside.code, 1, "{outside}");
    assert!(
        outside
            .stderr
            .contains("version 00000000-0000-4000-8000-000000000000 is in no serving"),
        "{outside}"
    );
    assert_eq!(traffic(&sandbox).len(), before, "no check was sent");

    // A Worker that answers /health with a redirect fails the check: it is not followed.
    let seed = seed_with(|scripts| {
        scripts["lms-api"]["behaviour"]["routes"]
            .as_array_mut()
            .expect("routes")
            .push(json!({
                "path": "/health",
                "status": 302,
                "headers": {"location": "https://lms-api.example.workers.dev/elsewhere"}
            }));
    });
    let redirecting = TestSandbox::with(|config| config.seed = Some(seed.1.clone()));
    let moved = Lmsinfra::new(&redirecting)
        .args(["verify", "production", "--worker", "api"])
        .run();
    assert_eq!(moved.code, 4, "{moved}");
    assert!(moved.stdout.contains("not followed"), "{moved}");
    let log = traffic(&redirecting);
    assert!(log.iter().all(|e| e["path"] != "/elsewhere"), "{log:?}");
    let health: Vec<&Value> = log.iter().filter(|e| e["path"] == "/health").collect();
    assert_eq!(health.len(), 3, "each attempt got the redirect: {log:?}");
}

/// The audited seed with `edit` applied to its scripts, written to a temporary file.
fn seed_with(edit: impl FnOnce(&mut Value)) -> (tempfile::TempDir, PathBuf) {
    let mut seed: Value =
        serde_json::from_str(&std::fs::read_to_string(audited_seed()).expect("the seed"))
            .expect("json");
    edit(&mut seed["account"]["scripts"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("seed.json");
    std::fs::write(&path, seed.to_string()).expect("the seed is written");
    (dir, path)
}

/// A sandbox whose staging API breaks `/health` while `DB_DRIVER` is `experimental`, with
/// staging applied and converged.
fn breakable_staging() -> (TestSandbox, tempfile::TempDir) {
    let (dir, seed) = seed_with(|scripts| {
        scripts["lms-api-staging"]["behaviour"]["breaks"] = json!([
            {"path": "/health", "binding": "DB_DRIVER", "equals": "experimental"}
        ]);
    });
    let sandbox = TestSandbox::with(|config| config.seed = Some(seed));
    let first =
        with_secrets(Lmsinfra::new(&sandbox).args(["apply", "staging", "--auto-approve"])).run();
    assert_eq!(first.code, 0, "{first}");
    (sandbox, dir)
}

/// Staging with the breaking binding set, and `on_failure` as given.
fn breaking_project(on_failure: &str) -> Project {
    let project = Project::new();
    project.edit("staging", |text| {
        text.replace(
            "      DB: { type: d1, database: main }\n",
            "      DB: { type: d1, database: main }\n      DB_DRIVER: { type: plain_text, text: experimental }\n",
        )
        .replacen(
            "      on_failure: rollback\n",
            &format!("      on_failure: {on_failure}\n"),
            1,
        )
    });
    project
}

#[test]
fn a_deploy_that_breaks_health_is_rolled_back_and_exits_4() {
    let (sandbox, _seed) = breakable_staging();
    let good = serving_version(&sandbox, "lms-api-staging");
    let project = breaking_project("rollback");
    let applied = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["apply", "staging", "--auto-approve"])
        .run();
    assert_eq!(applied.code, 4, "{applied}");
    assert!(applied.stdout.contains("✗ worker.api health"), "{applied}");
    assert!(applied.stderr.contains("rolled back to"), "{applied}");
    let deployment = serving(&sandbox, "lms-api-staging");
    assert_eq!(
        deployment["versions"],
        json!([{"version_id": good, "percentage": 100.0}])
    );
    assert_eq!(
        deployment["annotations"]["workers/message"],
        "lmsinfra auto-rollback: health"
    );
    let verified = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["verify", "staging"])
        .run();
    assert_eq!(verified.code, 0, "{verified}");
}

#[test]
fn a_deploy_that_breaks_health_with_on_failure_stop_keeps_serving_and_exits_4() {
    let (sandbox, _seed) = breakable_staging();
    let good = serving_version(&sandbox, "lms-api-staging");
    let project = breaking_project("stop");
    let applied = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["apply", "staging", "--auto-approve"])
        .run();
    assert_eq!(applied.code, 4, "{applied}");
    assert!(
        applied.stderr.contains("the new version keeps serving"),
        "{applied}"
    );
    let now = serving_version(&sandbox, "lms-api-staging");
    assert_ne!(now, good, "the new version serves");
    let verified = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["verify", "staging", "--worker", "api"])
        .run();
    assert_eq!(verified.code, 4, "{verified}");

    let (unverified, _seed) = breakable_staging();
    let before = traffic(&unverified).len();
    let skipped = Lmsinfra::new(&unverified)
        .project(&breaking_project("stop"))
        .args(["apply", "staging", "--auto-approve", "--no-verify"])
        .run();
    assert_eq!(skipped.code, 0, "{skipped}");
    assert_eq!(
        traffic(&unverified).len(),
        before,
        "no smoke check was sent"
    );
}

#[test]
fn verify_reports_each_check_and_why_it_failed() {
    let sandbox = TestSandbox::new();
    lmsinfra_snapshot!(Lmsinfra::new(&sandbox).args(["verify", "staging"]).run());
}

/// Upload a version of `script` that keeps its D1, plain-text and secret bindings, and deploy
/// it at 0 % beside the serving version; its id and the serving version's.
fn canary(sandbox: &TestSandbox, script: &str) -> (String, String) {
    let first = serving_version(sandbox, script);
    let metadata = json!({
        "main_module": "index.js",
        "keep_bindings": ["d1", "plain_text", "secret_text"]
    })
    .to_string();
    let uploaded = sandbox.send(
        "POST",
        &format!("{SCRIPTS}/{script}/versions"),
        form(&[
            ("metadata", Some("application/json"), &metadata),
            (
                "index.js",
                Some("application/javascript+module"),
                "export default { fetch() { return new Response('x') } }",
            ),
        ]),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    let canary = uploaded.body["result"]["id"]
        .as_str()
        .expect("version id")
        .to_owned();
    let deployed = sandbox.send(
        "POST",
        &format!("{SCRIPTS}/{script}/deployments"),
        Body::Json(json!({
            "strategy": "percentage",
            "versions": [
                {"version_id": first, "percentage": 100.0},
                {"version_id": canary, "percentage": 0.0}
            ]
        })),
    );
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    (canary, first)
}

#[test]
fn verify_version_checks_a_canary_at_0_percent_and_fails_when_another_version_answers() {
    let sandbox = TestSandbox::new();
    let (canary_id, _) = canary(&sandbox, "lms-api");
    let verified = Lmsinfra::new(&sandbox)
        .args([
            "verify",
            "production",
            "--worker",
            "api",
            "--version",
            &canary_id,
        ])
        .run();
    assert_eq!(verified.code, 0, "{verified}");
    let log = traffic(&sandbox);
    assert!(
        log.iter().all(|e| e["version"] == json!(canary_id)),
        "{log:?}"
    );

    // While overrides are ignored (a deployment still spreading), the serving version answers.
    let ignoring = TestSandbox::with(|config| {
        config.faults = Some("override_delay=3600s".parse().expect("a fault spec"));
    });
    let (canary_id, first) = canary(&ignoring, "lms-api");
    let refused = Lmsinfra::new(&ignoring)
        .args([
            "verify",
            "production",
            "--worker",
            "api",
            "--version",
            &canary_id,
        ])
        .run();
    assert_eq!(refused.code, 4, "{refused}");
    assert!(
        refused.stdout.contains(&format!(
            "`/version` is \"{first}\", expected \"{canary_id}\" (another version answered)"
        )),
        "{refused}"
    );
}

#[test]
fn a_deploy_that_breaks_health_with_on_failure_warn_warns_and_exits_0() {
    let (sandbox, _seed) = breakable_staging();
    let good = serving_version(&sandbox, "lms-api-staging");
    let applied = Lmsinfra::new(&sandbox)
        .project(&breaking_project("warn"))
        .args(["apply", "staging", "--auto-approve"])
        .run();
    assert_eq!(applied.code, 0, "{applied}");
    assert!(
        applied
            .stderr
            .contains("warning: worker.api failed its smoke checks (health)"),
        "{applied}"
    );
    assert_ne!(serving_version(&sandbox, "lms-api-staging"), good);
}

#[test]
fn an_auto_rollback_across_a_secret_change_is_refused_and_the_new_version_keeps_serving() {
    let (sandbox, _seed) = breakable_staging();
    let good = serving_version(&sandbox, "lms-api-staging");
    let applied = Lmsinfra::new(&sandbox)
        .project(&breaking_project("rollback"))
        .env("LMSINFRA_TEST_ROTATED", "a rotated webhook secret")
        .args(["apply", "staging", "--auto-approve", "--force-secrets"])
        .args(["--secret", "TALLY_WEBHOOK_SECRET=env:LMSINFRA_TEST_ROTATED"])
        .run();
    assert_eq!(applied.code, 4, "{applied}");
    assert!(
        applied
            .stderr
            .contains("was refused, so the new version keeps serving")
            && applied.stderr.contains("TALLY_WEBHOOK_SECRET (10220)"),
        "{applied}"
    );
    assert!(!applied.stderr.contains("a rotated webhook secret"));
    assert_ne!(serving_version(&sandbox, "lms-api-staging"), good);
}
