//! `lmsinfra plan` through the real binary against the sandbox seeded with the audited account,
//! and `lmsinfra diff --base`, which needs no account at all.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{Lmsinfra, Run, TestSandbox, lmsinfra_snapshot, root};

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// A copy of the project (environments and the sandbox seed), staging edited by `edit`.
fn project(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("environments")).unwrap();
    std::fs::create_dir_all(dir.path().join("examples/sandbox")).unwrap();
    let read = |name: &str| std::fs::read_to_string(root().join("environments").join(name));
    let environments = dir.path().join("environments");
    std::fs::write(
        environments.join("production.yaml"),
        read("production.yaml").unwrap(),
    )
    .unwrap();
    std::fs::write(
        environments.join("staging.yaml"),
        edit(read("staging.yaml").unwrap()),
    )
    .unwrap();
    std::fs::copy(
        root().join("examples/sandbox/audited-account.json"),
        dir.path().join("examples/sandbox/audited-account.json"),
    )
    .unwrap();
    dir
}

fn plan(sandbox: &TestSandbox, args: &[&str]) -> Output {
    Lmsinfra::new(sandbox).args(["plan"]).args(args).output()
}

/// Filters for what differs between runs: the live fingerprint.
fn filtered() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r#""live_fingerprint": "[^"]+""#,
        r#""live_fingerprint": "[fingerprint]""#,
    );
    settings
}

#[test]
fn plan_staging_creates_the_database_binds_it_and_blocks_on_the_four_secrets() {
    let sandbox = TestSandbox::new();
    let run = Lmsinfra::new(&sandbox)
        .args(["plan", "staging", "--no-probe"])
        .code(3)
        .stderr("")
        .run();
    insta::assert_snapshot!("plan_staging_text", run.stdout);
}

#[test]
fn plan_staging_as_json_and_markdown() {
    let sandbox = TestSandbox::new();
    let json = plan(&sandbox, &["staging", "--no-probe", "--format", "json"]);
    assert_eq!(json.status.code(), Some(3));
    let markdown = plan(&sandbox, &["staging", "--no-probe", "--format", "markdown"]);
    assert_eq!(markdown.status.code(), Some(3));
    filtered().bind(|| {
        insta::assert_snapshot!("plan_staging_json", stdout(&json));
        insta::assert_snapshot!("plan_staging_markdown", stdout(&markdown));
    });
}

#[test]
fn plan_production_has_no_changes_with_or_without_detailed_exitcode() {
    let sandbox = TestSandbox::new();
    for args in [
        &["production", "--no-probe"][..],
        &["production", "--no-probe", "--detailed-exitcode"][..],
    ] {
        Lmsinfra::new(&sandbox)
            .arg("plan")
            .args(args)
            .code(0)
            .stdout("No changes. Live infrastructure matches the manifest.\n")
            .stderr("")
            .run();
    }
}

#[test]
fn detailed_exitcode_is_two_for_changes_that_are_not_blocked() {
    let sandbox = TestSandbox::new();
    let dir = project(|s| s);
    let production = dir.path().join("environments/production.yaml");
    let text = std::fs::read_to_string(&production).unwrap();
    std::fs::write(
        &production,
        text.replace("\"2024-12-01\"", "\"2025-01-15\""),
    )
    .unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let args = ["--dir", dir_arg, "plan", "production", "--no-probe"];
    let plain = lmsinfra_snapshot!(Lmsinfra::new(&sandbox).args(args).code(0).run());
    Lmsinfra::new(&sandbox)
        .args(args)
        .args(["--detailed-exitcode"])
        .code(2)
        .stdout(plain.stdout)
        .run();
}

/// `lmsinfra --sandbox --dir DIR ARGS…`, with no Cloudflare settings in the environment.
fn with_sandbox_flag(dir: &Path, args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .args(["--color", "never", "--sandbox", "--dir"])
        .arg(dir)
        .args(args)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_API_BASE_URL")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .output()
        .expect("lmsinfra runs")
        .into()
}

#[test]
fn the_sandbox_flag_plans_against_a_seeded_local_account() {
    let dir = project(|s| s);
    lmsinfra_snapshot!(with_sandbox_flag(dir.path(), &["plan", "staging"]));
    assert!(dir.path().join(".lmsinfra/sandbox.json").exists());
    // Production's settings match; its Workers, probed through the sandbox's own Worker
    // traffic, serve none of the required headers (the audit's finding).
    for (detailed, code) in [(&[][..], 0), (&["--detailed-exitcode"][..], 2)] {
        let args = [&["plan", "production"][..], detailed].concat();
        let run = with_sandbox_flag(dir.path(), &args);
        assert_eq!(run.code, code, "{run}");
        assert!(
            run.stdout.ends_with(
                "Plan: 0 to add, 0 to change, 0 to destroy. 10 drifted headers apply cannot fix.\n"
            ),
            "{run}"
        );
    }
}

#[test]
fn the_sandbox_flag_without_a_seed_starts_from_an_empty_account() {
    let dir = project(|s| s);
    std::fs::remove_dir_all(dir.path().join("examples")).unwrap();
    lmsinfra_snapshot!(with_sandbox_flag(dir.path(), &["plan", "production"]));
}

#[test]
fn a_saved_plan_is_the_json_plan_and_satisfies_the_plan_schema() {
    let sandbox = TestSandbox::new();
    let out = sandbox.dir.path().join("staging.plan.json");
    let output = plan(
        &sandbox,
        &["staging", "--no-probe", "--out", out.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(3));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/plan.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the plan schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&saved)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(saved["format_version"], "1");
    assert_eq!(saved["blockers"].as_array().unwrap().len(), 4);
    assert!(!saved["live_fingerprint"].as_str().unwrap().is_empty());
}

/// A local stand-in for a deployed Worker, answering every GET with these headers.
struct Site {
    url: String,
    _runtime: tokio::runtime::Runtime,
}

fn site(headers: &'static [(&'static str, &'static str)]) -> Site {
    use axum::http::HeaderName;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move {
        let mut response = axum::response::IntoResponse::into_response("ok");
        for (name, value) in headers {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        response
    });
    runtime.spawn(async move { axum::serve(listener, app).await });
    Site {
        url,
        _runtime: runtime,
    }
}

#[test]
fn plan_reports_each_missing_or_different_header_as_drift() {
    let sandbox = TestSandbox::new();
    let worker = site(&[
        ("x-frame-options", "SAMEORIGIN"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ]);
    let url = worker.url.clone();
    // The viewer's probe points at a closed loopback port: unreachable, never off this machine.
    let dir = project(|s| {
        s.replace("https://lms-api-staging.example.workers.dev/health", &url)
            .replace(
                "https://lms-viewer-staging.example.workers.dev/",
                "http://127.0.0.1:9/",
            )
    });
    // An unreachable probe URL is a warning, not a failure of the plan; a header served as
    // the manifest says is not drift.
    let run = lmsinfra_snapshot!(
        Lmsinfra::new(&sandbox)
            .args(["--dir", dir.path().to_str().unwrap(), "plan", "staging"])
            .run()
    );
    assert!(
        !run.stdout
            .contains("worker.api.headers.X-Content-Type-Options"),
        "{run}"
    );
}

/// Run git in `dir`, quietly, as a test author.
fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=lmsinfra tests",
            "-c",
            "user.email=tests@example.invalid",
        ])
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn diff_base_shows_a_binding_added_since_the_base_commit_without_network() {
    let dir = project(|s| s);
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "environments"]);
    git(dir.path(), &["commit", "-q", "-m", "manifests as audited"]);
    let staging = dir.path().join("environments/staging.yaml");
    let text = std::fs::read_to_string(&staging).unwrap();
    let text = text.replace(
        "      DB: { type: d1, database: main }\n",
        "      DB: { type: d1, database: main }\n      FEATURE_FLAGS: { type: plain_text, text: \"beta\" }\n",
    );
    std::fs::write(&staging, text).unwrap();
    git(dir.path(), &["commit", "-q", "-am", "add a feature flag"]);

    let output = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .current_dir(dir.path())
        .args(["--color", "never", "diff", "--base", "HEAD~1"])
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env("CLOUDFLARE_API_BASE_URL", "http://127.0.0.1:9/client/v4")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .output()
        .expect("lmsinfra runs");
    lmsinfra_snapshot!(Run::from(output));
}

#[test]
fn diff_base_of_a_new_environment_creates_everything() {
    let dir = project(|s| s);
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "environments/production.yaml"]);
    git(dir.path(), &["commit", "-q", "-m", "production only"]);
    let output = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .current_dir(dir.path())
        .args([
            "--color",
            "never",
            "diff",
            "--base",
            "HEAD",
            "staging",
            "--format",
            "markdown",
            "--detailed-exitcode",
        ])
        .output()
        .expect("lmsinfra runs");
    lmsinfra_snapshot!(Run::from(output));
}

#[test]
fn diff_base_names_a_revision_that_does_not_exist() {
    let dir = project(|s| s);
    git(dir.path(), &["init", "-q"]);
    let output = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .current_dir(dir.path())
        .args(["--color", "never", "diff", "--base", "no-such-branch"])
        .output()
        .expect("lmsinfra runs");
    lmsinfra_snapshot!(Run::from(output));
}

#[test]
fn an_invalid_manifest_prints_its_problems_before_the_summary_that_points_above() {
    let sandbox = TestSandbox::new();
    let project = crate::support::Project::new();
    project.edit("staging", |text| {
        text.replacen("database: main", "databse: main", 1)
    });
    let run = lmsinfra_snapshot!(
        Lmsinfra::new(&sandbox)
            .project(&project)
            .args(["plan", "staging", "--no-probe"])
            .run()
    );
    let problem = run
        .stderr
        .find("unknown field `databse`")
        .expect("the problem");
    let summary = run
        .stderr
        .find("fix the problems above")
        .expect("the summary");
    assert!(problem < summary, "{run}");
    assert_eq!(sandbox.sandbox().stats().total, 0, "it called the API");
}
