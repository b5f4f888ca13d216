//! Capacity findings of `lmsinfra check` through the real binary against the sandbox: database
//! sizes as SQLite counts them against the plan's limit, the deployable-version window, and
//! the API requests a plan and an apply spend, measured by the sandbox's own counters.

use serde_json::{Value, json};

use crate::apply::with_secrets;
use crate::support::{Body, Lmsinfra, Project, Run, TestSandbox};

const D1: &str = "/accounts/{account}/d1/database";

fn check_json(sandbox: &TestSandbox, project: Option<&Project>, environment: &str) -> (Run, Value) {
    let mut command =
        Lmsinfra::new(sandbox).args(["check", environment, "--format", "json", "--no-probe"]);
    if let Some(project) = project {
        command = command.project(project);
    }
    let run = command.run();
    let report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"));
    (run, report)
}

fn uuid(sandbox: &TestSandbox, name: &str) -> String {
    let list = sandbox.get(D1);
    list.as_array()
        .expect("databases")
        .iter()
        .find(|db| db["name"] == name)
        .and_then(|db| db["uuid"].as_str())
        .unwrap_or_else(|| panic!("{name} is on the account: {list}"))
        .to_owned()
}

/// Requests the sandbox answers while `run` runs.
fn requests(sandbox: &TestSandbox, run: impl FnOnce()) -> u64 {
    let before = sandbox.sandbox().stats().total;
    run();
    sandbox.sandbox().stats().total - before
}

#[test]
fn production_reports_database_sizes_version_windows_and_the_api_cost() {
    let sandbox = TestSandbox::new();
    let (run, report) = check_json(&sandbox, None, "production");
    assert_eq!(run.code, 0, "{run}");
    let capacity = &report["capacity"];
    let details = sandbox.get(&format!("{D1}/{}", uuid(&sandbox, "lms-db")));
    let db = &capacity["databases"][0];
    assert_eq!(db["address"], "d1.main");
    assert_eq!(db["size_bytes"], details["file_size"], "{report:#}");
    assert_eq!(db["limit_bytes"], 10_000_000_000u64);
    assert_eq!(db["time_travel_days"], 30);
    assert_eq!(db["level"], "ok");
    let workers = capacity["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 2, "{report:#}");
    for worker in workers {
        let oldest = worker["oldest_deployed_position"]
            .as_u64()
            .expect("deployed");
        assert_eq!(worker["window"], 100);
        assert_eq!(worker["remaining"], 100 - oldest, "{worker:#}");
        assert!(worker["versions"].as_u64().expect("versions") >= oldest);
    }
    let plan_requests = capacity["api"]["plan_requests"]
        .as_u64()
        .expect("plan cost");
    let measured = requests(&sandbox, || {
        let run = Lmsinfra::new(&sandbox)
            .args(["plan", "production", "--no-probe"])
            .run();
        assert_eq!(run.code, 0, "{run}");
    });
    assert_eq!(plan_requests, measured, "{report:#}");
    assert_eq!(capacity["api"]["limit"], 1200);
    assert_eq!(capacity["passed"], true);
}

#[test]
fn a_database_filled_past_the_warning_threshold_fails_check_naming_it() {
    let sandbox = TestSandbox::new();
    let id = uuid(&sandbox, "lms-db");
    for sql in [
        "CREATE TABLE recordings (blob BLOB)",
        "INSERT INTO recordings SELECT randomblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) SELECT i FROM n)",
    ] {
        let answer = sandbox.send(
            "POST",
            &format!("{D1}/{id}/query"),
            Body::Json(json!({ "sql": sql })),
        );
        assert_eq!(answer.status, 200, "{sql}: {}", answer.body);
    }
    // On Workers Free a database holds 500 MB; 1.5 MB is past a 0.2 % warning threshold (as
    // the version windows and the API budget are, at a few percent each).
    let project = Project::new();
    project.edit("production", |text| {
        text + "\ncapacity:\n  plan: free\n  warn_percent: 0.2\n  fail_percent: 50\n"
    });
    let (run, report) = check_json(&sandbox, Some(&project), "production");
    assert_eq!(run.code, 3, "{run}");
    let db = &report["capacity"]["databases"][0];
    assert_eq!(db["level"], "warn", "{report:#}");
    assert_eq!(db["limit_bytes"], 500_000_000);
    assert_eq!(db["time_travel_days"], 7);
    assert_eq!(db["tables"], 1);
    let text = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["check", "production", "--no-probe"])
        .run();
    assert_eq!(text.code, 3, "{text}");
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("  ! d1-size") && l.contains("d1.main: lms-db holds 1.")),
        "{text}"
    );
    assert!(
        text.stdout
            .contains("Capacity (Workers Free; warns at 0.2 %, fails at 50 %):"),
        "{text}"
    );
    assert!(
        text.stdout.trim_end().ends_with(
            "Failed: 0 of 0 URLs and 0 of 4 checks failed; 4 of 4 capacity findings at or above a threshold."
        ),
        "{text}"
    );
}

#[test]
fn thresholds_out_of_order_are_a_manifest_error() {
    let project = Project::new();
    project.edit("production", |text| {
        text + "\ncapacity:\n  warn_percent: 90\n  fail_percent: 80\n"
    });
    let sandbox = TestSandbox::new();
    let run = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["validate", "production"])
        .run();
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("manifest::capacity-thresholds"),
        "{run}"
    );
}

#[test]
fn the_apply_cost_check_reports_bounds_what_apply_sends() {
    let sandbox = TestSandbox::new();
    let (_, report) = check_json(&sandbox, None, "staging");
    let api = &report["capacity"]["api"];
    let apply_requests = api["apply_requests"].as_u64().expect("apply cost");
    let sent = requests(&sandbox, || {
        let run =
            with_secrets(Lmsinfra::new(&sandbox).args(["apply", "staging", "--auto-approve"]))
                .run();
        assert_eq!(run.code, 0, "{run}");
    });
    assert!(
        sent <= apply_requests,
        "apply sent {sent} requests, check said at most {apply_requests}: {report:#}"
    );
    assert!(
        sent > api["plan_requests"].as_u64().expect("plan cost"),
        "{report:#}"
    );
}
