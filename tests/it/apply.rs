//! `lmsinfra apply` through the real binary against the sandbox: it converges, it refuses
//! while secrets are missing or a plan is stale, it keeps what the manifest does not mention,
//! it deletes a database only when told twice, it survives faults, it never leaks a secret
//! value or the token, and it never waits for input without a terminal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lmsinfra_sandbox::Stats;
use serde_json::{Value, json};

use crate::client::faults;
use crate::support::{
    Body, Lmsinfra, Project, Run, TestSandbox, form, lmsinfra_snapshot, secret_digest,
};

const SCRIPTS: &str = "/accounts/{account}/workers/scripts";
const D1: &str = "/accounts/{account}/d1/database";

/// The secrets staging's API Worker requires.
pub(crate) const SECRETS: [&str; 4] = [
    "TALLY_WEBHOOK_SECRET",
    "TALLY_SIGNING_SECRET",
    "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
    "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
];

/// `--secret NAME=env:VAR` for every required secret, with the variables set on the child.
pub(crate) fn with_secrets(mut command: Lmsinfra) -> Lmsinfra {
    for (i, name) in SECRETS.iter().enumerate() {
        let var = format!("LMSINFRA_TEST_SECRET_{i}");
        command = command
            .env(&var, format!("value of {name}"))
            .args(["--secret", &format!("{name}=env:{var}")]);
    }
    command
}

/// `apply staging --auto-approve` with every secret, plus `extra`.
fn apply_staging(sandbox: &TestSandbox, project: Option<&Project>, extra: &[&str]) -> Run {
    let mut command = Lmsinfra::new(sandbox).args(["apply", "staging", "--auto-approve"]);
    if let Some(project) = project {
        command = command.project(project);
    }
    with_secrets(command.args(extra)).run()
}

/// `plan staging --detailed-exitcode --no-probe`.
fn plan_staging_command(sandbox: &TestSandbox, project: Option<&Project>) -> Lmsinfra {
    let command =
        Lmsinfra::new(sandbox).args(["plan", "staging", "--detailed-exitcode", "--no-probe"]);
    match project {
        Some(project) => command.project(project),
        None => command,
    }
}

/// `plan staging --detailed-exitcode --no-probe`, run.
fn plan_staging(sandbox: &TestSandbox, project: Option<&Project>) -> Run {
    plan_staging_command(sandbox, project).run()
}

/// A fresh plan of staging has nothing to do.
fn assert_converged(sandbox: &TestSandbox, project: Option<&Project>) {
    plan_staging_command(sandbox, project)
        .code(0)
        .stdout("No changes. Live infrastructure matches the manifest.\n")
        .stderr("")
        .run();
}

/// `plan ENV --no-probe --out FILE` in `project`: where the plan was saved, and the run.
fn save_plan(sandbox: &TestSandbox, project: &Project, environment: &str) -> (PathBuf, Run) {
    let saved = project.path().join(format!("{environment}.plan.json"));
    let planned = Lmsinfra::new(sandbox)
        .project(project)
        .args(["plan", environment, "--no-probe", "--out"])
        .arg(&saved)
        .run();
    (saved, planned)
}

/// `apply staging --plan SAVED` is refused as stale (snapshot `name`), and changes nothing.
fn assert_refused_as_stale(sandbox: &TestSandbox, project: &Project, saved: &Path, name: &str) {
    let before = state(sandbox);
    lmsinfra_snapshot!(
        name,
        apply_staging(
            sandbox,
            Some(project),
            &["--plan", saved.to_str().expect("UTF-8 path")],
        )
    );
    assert!(state(sandbox) == before, "the state file changed");
}

fn state(sandbox: &TestSandbox) -> Vec<u8> {
    std::fs::read(sandbox.state_path()).expect("the sandbox state file is readable")
}

fn database_names(sandbox: &TestSandbox) -> Vec<String> {
    names(&sandbox.get(D1))
}

fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(|i| i["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn bindings(sandbox: &TestSandbox, script: &str) -> Vec<String> {
    names(&sandbox.get(&format!("{SCRIPTS}/{script}/settings"))["bindings"])
}

/// Requests that change something, by route, as counted by the sandbox. D1's `/query` is left
/// out: plans read the migration ledgers through it (SQL has no GET); a write through it moves
/// the database's bookmark, which [`staging_bookmark`] shows.
pub(crate) fn writes(stats: &Stats) -> Vec<(String, u64)> {
    stats
        .routes
        .iter()
        .filter(|(route, _)| !route.starts_with("GET ") && !route.ends_with("/query"))
        .map(|(route, n)| (route.clone(), *n))
        .collect()
}

/// The staging database's Time Travel bookmark, which every committed write moves.
fn staging_bookmark(sandbox: &TestSandbox) -> String {
    let found = sandbox.get(&format!("{D1}?name=lms-db-staging"));
    let id = found[0]["uuid"].as_str().expect("lms-db-staging exists");
    sandbox.get(&format!("{D1}/{id}/time_travel/bookmark"))["bookmark"]
        .as_str()
        .expect("a bookmark")
        .to_owned()
}

fn add_plain_text_binding(sandbox: &TestSandbox, script: &str, name: &str) {
    let mut kept: Vec<Value> = bindings(sandbox, script)
        .into_iter()
        .map(|b| json!({"type": "inherit", "name": b}))
        .collect();
    kept.push(json!({"type": "plain_text", "name": name, "text": "on"}));
    let settings = json!({"bindings": kept}).to_string();
    let answer = sandbox.send(
        "PATCH",
        &format!("{SCRIPTS}/{script}/settings"),
        form(&[("settings", Some("application/json"), &settings)]),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Staging with two more databases: the API Worker binds one, the viewer the other and a new
/// variable. Three creates, two migrations, the API's Workers Logs and two Worker writes, most
/// of them independent of each other.
fn wider_staging() -> Project {
    let project = Project::new();
    project.edit("staging", |text| {
        text.replace(
            "    protect: true\n",
            "    protect: true\n  reports: { name: lms-reports-staging }\n  events: { name: lms-events-staging }\n",
        )
        .replace(
            "      DB: { type: d1, database: main }\n",
            "      DB: { type: d1, database: main }\n      REPORTS: { type: d1, database: reports }\n",
        )
        .replace(
            "      API_ORIGIN:",
            "      EVENTS: { type: d1, database: events }\n      FLAG: { type: plain_text, text: \"on\" }\n      API_ORIGIN:",
        )
    });
    project
}

/// An apply's stderr, line by line, without durations and bookmarks (which differ per run).
fn step_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|line| {
            let line = line
                .split_once(" was at bookmark ")
                .map_or(line, |(kept, _)| kept);
            match line.starts_with('[') {
                true => line.rsplit_once(" (").map_or(line, |(kept, _)| kept),
                false => line,
            }
            .to_owned()
        })
        .collect()
}

#[test]
fn a_parallel_apply_prints_its_steps_in_plan_order_on_a_non_terminal() {
    let project = wider_staging();
    let sandbox = TestSandbox::new();
    let run = lmsinfra_snapshot!(apply_staging(
        &sandbox,
        Some(&project),
        &["--no-verify", "--concurrency", "16"]
    ));
    assert_eq!(run.code, 0, "{run}");
    assert_converged(&sandbox, Some(&project));
    // Steps end in whatever order the answers come; the lines do not.
    for _ in 0..3 {
        let again = apply_staging(
            &TestSandbox::new(),
            Some(&project),
            &["--no-verify", "--concurrency", "16"],
        );
        assert_eq!(
            step_lines(&again.stderr),
            step_lines(&run.stderr),
            "{again}"
        );
    }
    // One write per Worker, the database creations included once each.
    let stats = sandbox.sandbox().stats();
    assert_eq!(
        writes(&stats)
            .into_iter()
            .filter(|(route, _)| !route.ends_with("/import"))
            .collect::<Vec<_>>(),
        [
            (
                "PATCH /accounts/{account_id}/workers/scripts/{script_name}/script-settings"
                    .to_owned(),
                1
            ),
            (
                "PATCH /accounts/{account_id}/workers/scripts/{script_name}/settings".to_owned(),
                2
            ),
            ("POST /accounts/{account_id}/d1/database".to_owned(), 3),
        ],
        "{stats:?}"
    );
}

#[test]
fn the_convergence_check_reads_again_only_with_full_check() {
    let scripts_lists = |sandbox: &TestSandbox| sandbox.sandbox().stats().routes["GET /accounts/{account_id}/workers/scripts"];
    let sandbox = TestSandbox::new();
    let run = apply_staging(&sandbox, None, &["--no-verify"]);
    assert_eq!(run.code, 0, "{run}");
    // One gather: the check afterwards uses what each step read back of its own write.
    assert_eq!(scripts_lists(&sandbox), 1);

    let sandbox = TestSandbox::new();
    let run = apply_staging(&sandbox, None, &["--no-verify", "--full-check"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("A fresh plan of staging is empty."),
        "{run}"
    );
    assert_eq!(scripts_lists(&sandbox), 2);
}

#[test]
fn apply_with_every_secret_converges_and_a_fresh_plan_is_empty() {
    let sandbox = TestSandbox::new();
    lmsinfra_snapshot!(apply_staging(&sandbox, None, &[]));
    assert_converged(&sandbox, None);

    let stats = sandbox.sandbox().stats();
    assert_eq!(
        writes(&stats),
        [
            (
                "PATCH /accounts/{account_id}/workers/scripts/{script_name}/script-settings"
                    .to_owned(),
                1
            ),
            (
                "PATCH /accounts/{account_id}/workers/scripts/{script_name}/settings".to_owned(),
                1
            ),
            ("POST /accounts/{account_id}/d1/database".to_owned(), 1),
            // Two migrations, each one import: init, ingest, poll.
            (
                "POST /accounts/{account_id}/d1/database/{database_id}/import".to_owned(),
                6
            ),
        ],
        "{stats:?}"
    );
    assert_eq!(database_names(&sandbox), ["lms-db", "lms-db-staging"]);
    let mut api = bindings(&sandbox, "lms-api-staging");
    api.sort_unstable();
    let mut expected = vec!["ALLOWED_ORIGINS", "DB", "RATE_LIMITER"];
    expected.extend(SECRETS);
    expected.sort_unstable();
    assert_eq!(api, expected);
}

#[test]
fn quiet_apply_prints_the_plan_and_no_progress() {
    let sandbox = TestSandbox::new();
    let applied =
        with_secrets(Lmsinfra::new(&sandbox).args(["-q", "apply", "staging", "--auto-approve"]))
            .code(0)
            .stderr("")
            .run();
    assert!(
        applied
            .stdout
            .starts_with("lmsinfra will perform the following actions on staging"),
        "{applied}"
    );
    assert_converged(&sandbox, None);
}

#[test]
fn apply_without_the_secrets_is_blocked_and_changes_nothing() {
    let sandbox = TestSandbox::new();
    let before = state(&sandbox);
    lmsinfra_snapshot!(
        Lmsinfra::new(&sandbox)
            .args(["apply", "staging", "--auto-approve"])
            .run()
    );
    assert!(state(&sandbox) == before, "the state file changed");
    assert!(writes(&sandbox.sandbox().stats()).is_empty());
}

#[test]
fn apply_keeps_unmanaged_secrets_and_bindings() {
    let sandbox = TestSandbox::new();
    add_plain_text_binding(&sandbox, "lms-api-staging", "FEATURE_FLAG");
    let put = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/lms-api-staging/secrets"),
        Body::Json(json!({"name": "DASHBOARD_SECRET", "text": "kept", "type": "secret_text"})),
    );
    assert_eq!(put.status, 200, "{}", put.body);

    let applied = apply_staging(&sandbox, None, &[]);
    assert_eq!(applied.code, 0, "{applied}");
    let api = bindings(&sandbox, "lms-api-staging");
    for kept in ["FEATURE_FLAG", "DASHBOARD_SECRET", "DB", "ALLOWED_ORIGINS"] {
        assert!(api.iter().any(|b| b == kept), "{kept} is gone: {api:?}");
    }
    let secrets = names(&sandbox.get(&format!("{SCRIPTS}/lms-api-staging/secrets")));
    assert!(
        secrets.iter().any(|s| s == "DASHBOARD_SECRET"),
        "{secrets:?}"
    );
    // The secret kept its value, not just its name.
    let text = String::from_utf8(state(&sandbox)).expect("state is UTF-8");
    let digest = secret_digest(&serde_json::from_str(&text).expect("state"), "kept");
    assert!(text.contains(&digest), "DASHBOARD_SECRET's value changed");
    assert_eq!(plan_staging(&sandbox, None).code, 0);
}

#[test]
fn apply_deletes_a_database_only_when_unprotected_absent_and_allowed() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let with_scratch = |extra: &'static str| {
        move |text: String| {
            text.replace(
                "\nworkers:\n",
                &format!("  scratch:\n    name: lms-scratch-staging\n{extra}\nworkers:\n"),
            )
        }
    };
    let has_scratch = |sandbox: &TestSandbox| {
        database_names(sandbox)
            .iter()
            .any(|n| n == "lms-scratch-staging")
    };

    project.edit("staging", with_scratch(""));
    let created = apply_staging(&sandbox, Some(&project), &[]);
    assert_eq!(created.code, 0, "{created}");
    assert!(has_scratch(&sandbox));

    // Removed from the manifest: kept, and reported as unmanaged.
    project.edit("staging", |text| text);
    let removed = apply_staging(&sandbox, Some(&project), &[]);
    assert_eq!(removed.code, 0, "{removed}");
    assert!(has_scratch(&sandbox), "{removed}");
    lmsinfra_snapshot!(
        "absent_database_unmanaged",
        plan_staging(&sandbox, Some(&project))
    );

    // Absent but protected (the default): blocked, even with --allow-destroy.
    project.edit("staging", with_scratch("    absent: true\n"));
    let before = state(&sandbox);
    lmsinfra_snapshot!(
        "absent_database_protected",
        apply_staging(&sandbox, Some(&project), &["--allow-destroy"])
    );
    assert!(state(&sandbox) == before, "the state file changed");

    // Unprotected and absent, without --allow-destroy: blocked, and the blocker says why.
    project.edit(
        "staging",
        with_scratch("    protect: false\n    absent: true\n"),
    );
    lmsinfra_snapshot!(
        "absent_database_not_allowed",
        apply_staging(&sandbox, Some(&project), &[])
    );
    assert!(state(&sandbox) == before, "the state file changed");
    assert!(has_scratch(&sandbox));

    lmsinfra_snapshot!(
        "absent_database_destroyed",
        apply_staging(&sandbox, Some(&project), &["--allow-destroy"])
    );
    assert!(!has_scratch(&sandbox));
    assert_eq!(database_names(&sandbox), ["lms-db", "lms-db-staging"]);
    assert_converged(&sandbox, Some(&project));
}

/// Apply under `spec`, then check against a fault-free restart that staging has exactly one
/// database and a fresh plan is empty.
fn apply_converges_under(spec: &str) -> Stats {
    let mut sandbox = TestSandbox::with(faults(spec));
    let applied = apply_staging(&sandbox, None, &[]);
    assert_eq!(applied.code, 0, "{spec}: {applied}");
    let stats = sandbox.sandbox().stats();
    sandbox.restart(|_| {});
    let staging: Vec<String> = database_names(&sandbox)
        .into_iter()
        .filter(|n| n.ends_with("-staging"))
        .collect();
    assert_eq!(staging, ["lms-db-staging"], "{spec}");
    let planned = plan_staging(&sandbox, None);
    assert_eq!(planned.code, 0, "{spec}: {planned}");
    stats
}

#[test]
fn apply_converges_through_throttling_server_errors_and_lost_create_answers() {
    let status = |stats: &Stats, code: u16| stats.statuses.get(&code).copied().unwrap_or(0);
    // The create succeeds, then the client gets a 500: it must find the database, not make
    // a second one.
    let creates = |stats: &Stats| stats.routes["POST /accounts/{account_id}/d1/database"];
    let stats = apply_converges_under("seed=5,429=0.2:1s,500=0.2,after_create@d1=1");
    assert!(
        status(&stats, 429) > 0 && status(&stats, 500) > 0,
        "{stats:?}"
    );
    assert_eq!(creates(&stats), 1, "the create was sent again: {stats:?}");
    // The same with the connection dropped after the create took effect, and before others.
    let stats = apply_converges_under("seed=9,drop=0.15,after_create@d1=1:drop");
    assert!(status(&stats, 0) > 0, "{stats:?}");
    assert_eq!(creates(&stats), 1, "the create was sent again: {stats:?}");
    // Secrets go with the settings in one write: apply puts no secret on its own.
    let secret_puts = "PUT /accounts/{account_id}/workers/scripts/{script_name}/secrets";
    assert_eq!(stats.routes.get(secret_puts), None, "{stats:?}");
}

#[test]
fn apply_converges_when_a_create_times_out_after_taking_effect() {
    // The sandbox answers 31 s after creating the database; the client gives up after 30 s,
    // looks the database up and must not create it again. (The late answer may or may not
    // be counted by the time apply ends, so at most one create is seen.)
    let stats = apply_converges_under("after_create@d1=1:31s");
    let creates = stats
        .routes
        .get("POST /accounts/{account_id}/d1/database")
        .copied()
        .unwrap_or(0);
    assert!(creates <= 1, "the create was sent again: {stats:?}");
}

#[test]
fn apply_reports_where_it_stopped_and_a_second_apply_finishes() {
    // Every settings PATCH is throttled for longer than the client waits: a permanent failure.
    // One step at a time, so what is done when it stops does not depend on which answer came
    // first.
    let mut sandbox = TestSandbox::with(faults("429@patch-settings=1:600s"));
    lmsinfra_snapshot!(
        "stopped",
        apply_staging(&sandbox, None, &["--concurrency", "1"])
    );
    sandbox.restart(|_| {});
    assert_eq!(database_names(&sandbox), ["lms-db", "lms-db-staging"]);
    lmsinfra_snapshot!("finished", apply_staging(&sandbox, None, &[]));
    assert_converged(&sandbox, None);
}

#[test]
fn steps_failing_side_by_side_are_all_reported_and_nothing_after_them_starts() {
    // The database's creation and the Workers Logs write start together; both are throttled for
    // longer than the client waits.
    let sandbox = TestSandbox::with(faults(
        "429@create-database=1:600s,429@script-settings-patch=1:600s",
    ));
    let run = lmsinfra_snapshot!(apply_staging(&sandbox, None, &[]));
    assert_eq!(run.code, 1, "{run}");
    let stats = sandbox.sandbox().stats();
    assert!(
        !stats
            .routes
            .contains_key("PATCH /accounts/{account_id}/workers/scripts/{script_name}/settings"),
        "a Worker write started after the failures: {stats:?}"
    );
}

#[test]
fn apply_on_a_converged_account_makes_no_write() {
    let sandbox = TestSandbox::new();
    assert_eq!(apply_staging(&sandbox, None, &[]).code, 0);
    let before = writes(&sandbox.sandbox().stats());
    let state_before = state(&sandbox);
    let bookmark_before = staging_bookmark(&sandbox);
    Lmsinfra::new(&sandbox)
        .args(["apply", "staging", "--auto-approve"])
        .code(0)
        .stdout("No changes. Live infrastructure matches the manifest.\n")
        .stderr("")
        .run();
    assert_eq!(writes(&sandbox.sandbox().stats()), before);
    assert_eq!(staging_bookmark(&sandbox), bookmark_before);
    assert!(state(&sandbox) == state_before, "the state file changed");
}

#[test]
fn apply_of_a_fresh_saved_plan_goes_ahead() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let (saved, planned) = save_plan(&sandbox, &project, "staging");
    // Blocked until the secrets are supplied, which apply does.
    assert_eq!(planned.code, 3, "{planned}");
    let applied = apply_staging(
        &sandbox,
        Some(&project),
        &["--plan", saved.to_str().expect("UTF-8 path")],
    );
    assert_eq!(applied.code, 0, "{applied}");
    assert_converged(&sandbox, Some(&project));
}

#[test]
fn apply_refuses_a_saved_plan_after_a_worker_it_writes_changed() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let (saved, _) = save_plan(&sandbox, &project, "staging");
    add_plain_text_binding(&sandbox, "lms-api-staging", "SOMEONE_ELSE");
    assert_refused_as_stale(&sandbox, &project, &saved, "stale_live");
}

#[test]
fn apply_refuses_a_saved_plan_after_the_databases_changed() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let (saved, _) = save_plan(&sandbox, &project, "staging");
    let created = sandbox.send(
        "POST",
        D1,
        Body::Json(json!({"name": "lms-db-staging", "primary_location_hint": "weur"})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    assert_refused_as_stale(&sandbox, &project, &saved, "stale_databases");
}

#[test]
fn apply_refuses_a_saved_plan_on_another_account() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let (saved, _) = save_plan(&sandbox, &project, "staging");
    let before = state(&sandbox);
    let other = "fedcba9876543210fedcba9876543210";
    let refused = with_secrets(
        Lmsinfra::new(&sandbox)
            .project(&project)
            .env("CLOUDFLARE_ACCOUNT_ID", other)
            .args(["apply", "staging", "--auto-approve", "--plan"])
            .arg(&saved),
    )
    .run();
    assert_eq!(refused.code, 3, "{refused}");
    assert!(
        refused.stderr.contains("is stale: it read account"),
        "{refused}"
    );
    assert!(state(&sandbox) == before, "the state file changed");
}

#[test]
fn a_saved_plan_goes_ahead_when_only_what_it_does_not_write_changed() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let (saved, _) = save_plan(&sandbox, &project, "staging");
    // The viewer is not in staging's plan: a binding added to it since does not stale the plan,
    // and apply leaves it where it is.
    add_plain_text_binding(&sandbox, "lms-viewer-staging", "SOMEONE_ELSE");
    let applied = apply_staging(
        &sandbox,
        Some(&project),
        &["--plan", saved.to_str().expect("UTF-8 path"), "--no-verify"],
    );
    assert_eq!(applied.code, 0, "{applied}");
    assert!(
        applied.stderr.contains(
            "Apply complete: 5 steps done. What the saved plan changes now matches the manifest."
        ),
        "{applied}"
    );
    assert!(
        bindings(&sandbox, "lms-viewer-staging").contains(&"SOMEONE_ELSE".to_owned()),
        "the viewer's binding is gone"
    );
    let fresh = plan_staging(&sandbox, Some(&project));
    assert_eq!(fresh.code, 0, "{fresh}");
    assert!(
        fresh
            .stdout
            .ends_with("apply keeps it\n\nNo changes. Live infrastructure matches the manifest.\n"),
        "{fresh}"
    );
}

/// GET requests by route between two readings of the sandbox's counters.
fn reads_between(before: &Stats, after: &Stats) -> BTreeMap<String, u64> {
    after
        .routes
        .iter()
        .filter(|(route, _)| route.starts_with("GET "))
        .map(|(route, n)| {
            (
                route.clone(),
                n - before.routes.get(route).copied().unwrap_or(0),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn apply_from_a_saved_plan_reads_only_what_the_plan_writes() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let (saved, _) = save_plan(&sandbox, &project, "staging");
    let before = sandbox.sandbox().stats();
    let applied = apply_staging(
        &sandbox,
        Some(&project),
        &["--plan", saved.to_str().expect("UTF-8 path"), "--no-verify"],
    );
    assert_eq!(applied.code, 0, "{applied}");
    let reads = reads_between(&before, &sandbox.sandbox().stats());
    // The check of the plan's read: the api Worker's newest version and deployment (the only
    // Worker the plan writes), the D1 list. Then the migrations' bookmark and import polls. No
    // script list, zone list or settings read: neither a second gather nor a re-read.
    let expected: BTreeMap<String, u64> = [
        (
            "GET /accounts/{account_id}/workers/scripts/{script_name}/versions",
            1,
        ),
        (
            "GET /accounts/{account_id}/workers/scripts/{script_name}/deployments",
            1,
        ),
        ("GET /accounts/{account_id}/d1/database", 1),
        (
            "GET /accounts/{account_id}/d1/database/{database_id}/time_travel/bookmark",
            1,
        ),
    ]
    .into_iter()
    .map(|(route, n)| (route.to_owned(), n))
    .collect();
    assert_eq!(reads, expected);
    assert_converged(&sandbox, Some(&project));
}

#[test]
fn apply_refuses_a_saved_plan_after_the_manifest_changed() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let (saved, _) = save_plan(&sandbox, &project, "staging");
    project.edit("staging", |text| {
        text.replace(
            "https://lms-viewer-staging.example.workers.dev\" }",
            "https://viewer.example.org\" }",
        )
    });
    assert_refused_as_stale(&sandbox, &project, &saved, "stale_manifest");
}

#[test]
fn apply_refuses_a_saved_plan_of_another_environment() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let (saved, planned) = save_plan(&sandbox, &project, "production");
    assert!(saved.exists(), "{planned}");
    assert_refused_as_stale(&sandbox, &project, &saved, "stale_environment");
}

#[test]
fn apply_without_a_terminal_or_auto_approve_refuses_without_reading_stdin() {
    let sandbox = TestSandbox::new();
    let before = state(&sandbox);
    // A secret from stdin, and a stdin that never ends: reading it would hang this test.
    lmsinfra_snapshot!(Run::from(
        Lmsinfra::new(&sandbox)
            .args(["apply", "staging", "--secret", "TALLY_WEBHOOK_SECRET=stdin"])
            .output_with_idle_stdin(),
    ));
    assert!(state(&sandbox) == before, "the state file changed");
    // It reads the account (to say "No changes" when there are none) but never writes.
    assert!(writes(&sandbox.sandbox().stats()).is_empty(), "it wrote");
}

#[test]
fn a_second_apply_with_the_same_secrets_writes_nothing_with_or_without_a_terminal() {
    let sandbox = TestSandbox::new();
    apply_staging(&sandbox, None, &[]);
    let before = writes(&sandbox.sandbox().stats());
    let again = apply_staging(&sandbox, None, &[]);
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(
        again.stdout,
        "No changes. Live infrastructure matches the manifest.\n"
    );
    let unapproved = with_secrets(Lmsinfra::new(&sandbox).args(["apply", "staging"]))
        .code(0)
        .run();
    assert_eq!(unapproved.stdout, again.stdout, "{unapproved}");
    assert_eq!(
        writes(&sandbox.sandbox().stats()),
        before,
        "a second apply wrote"
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[test]
fn secret_values_and_the_token_appear_in_no_output_and_no_file() {
    const TOKEN: &str = "canary-token-5f0c1e9d";
    const FROM_ENV: &str = "canary-env-8b2d47aa";
    const FROM_FILE: &str = "canary-file-31c9e0f4";
    const FROM_STDIN: &str = "canary-stdin-a7e65b12";
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\ncanary-pem-4d19c3b7\n-----END PRIVATE KEY-----";
    let canaries = [
        TOKEN,
        FROM_ENV,
        FROM_FILE,
        FROM_STDIN,
        "canary-pem-4d19c3b7",
    ];

    let mut sandbox = TestSandbox::with(|config| config.token = Some(TOKEN.to_owned()));
    let project = Project::new();
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let secret_file = elsewhere.path().join("signing-secret");
    std::fs::write(&secret_file, format!("{FROM_FILE}\n")).expect("secret file");
    let secret_file_arg = format!("TALLY_SIGNING_SECRET=file:{}", secret_file.display());

    let lmsinfra = |sandbox: &TestSandbox| {
        Lmsinfra::new(sandbox)
            .project(&project)
            .env("CLOUDFLARE_API_TOKEN", TOKEN)
            .env("CANARY_ENV", FROM_ENV)
            .env("CANARY_PEM", PEM)
            .arg("-vvv")
    };
    let apply = |sandbox: &TestSandbox| {
        lmsinfra(sandbox)
            // Forced, so the second apply writes the secrets again into a failing PUT.
            .args(["apply", "staging", "--auto-approve", "--force-secrets"])
            .args(["--secret", "TALLY_WEBHOOK_SECRET=env:CANARY_ENV"])
            .args(["--secret", &secret_file_arg])
            .args(["--secret", "CLOUDFLARE_STREAM_SIGNING_KEY_ID=stdin"])
            .args([
                "--secret",
                "CLOUDFLARE_STREAM_SIGNING_KEY_PEM=env:CANARY_PEM",
            ])
            .stdin(format!("{FROM_STDIN}\n"))
            .run()
    };
    let mut runs = Vec::new();

    let applied = apply(&sandbox);
    assert_eq!(applied.code, 0, "{applied}");
    runs.push(applied);
    // The values reached the sandbox (it keeps their digests), exactly as given.
    let text = String::from_utf8(state(&sandbox)).expect("state is UTF-8");
    let parsed = serde_json::from_str(&text).expect("state");
    for value in [FROM_ENV, FROM_FILE, FROM_STDIN, PEM] {
        let digest = secret_digest(&parsed, value);
        assert!(text.contains(&digest), "the sandbox never got {value:?}");
    }

    // A failing write of the secrets: its error must not carry the body either.
    sandbox.restart(|config| {
        config.token = Some(TOKEN.to_owned());
        config.faults = Some(
            "429@script-patch-settings=1:600s"
                .parse()
                .expect("fault spec"),
        );
    });
    let failed = apply(&sandbox);
    assert_eq!(failed.code, 1, "{failed}");
    runs.push(failed);

    sandbox.restart(|config| config.token = Some(TOKEN.to_owned()));
    for format in ["text", "json", "markdown"] {
        let out = project.path().join(format!("plan.{format}.json"));
        let planned = Run::from(
            lmsinfra(&sandbox)
                .args(["plan", "staging", "--no-probe", "--format", format, "--out"])
                .arg(&out)
                .output(),
        );
        assert_eq!(planned.code, 0, "{planned}");
        assert!(out.exists());
        runs.push(planned);
    }
    // A token the sandbox refuses: the refusal must not echo it.
    sandbox.restart(|config| config.token = Some("another-token".to_owned()));
    let refused = Run::from(
        lmsinfra(&sandbox)
            .args(["plan", "staging", "--no-probe"])
            .output(),
    );
    assert_eq!(refused.code, 1, "{refused}");
    runs.push(refused);

    assert!(
        runs.iter()
            .any(|r| r.stderr.contains("TRACE") || r.stderr.contains("DEBUG")),
        "-vvv printed no trace"
    );
    for run in &runs {
        for canary in canaries {
            assert!(!run.stdout.contains(canary), "{canary} on stdout: {run}");
            assert!(!run.stderr.contains(canary), "{canary} on stderr: {run}");
        }
    }
    let mut files = Vec::new();
    files_under(project.path(), &mut files);
    files_under(sandbox.dir.path(), &mut files);
    assert!(files.contains(&sandbox.state_path()));
    for file in &files {
        let bytes = std::fs::read(file).expect("a readable file");
        for canary in canaries {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{canary} in {}",
                file.display()
            );
        }
    }
    let written: BTreeSet<_> = files
        .iter()
        .filter_map(|f| f.file_name()?.to_str().map(str::to_owned))
        .collect();
    assert!(written.contains("plan.json.json"), "{written:?}");
}

#[test]
fn a_secret_value_typed_on_the_command_line_is_refused_without_echoing_it() {
    let sandbox = TestSandbox::new();
    for (name, arg) in [
        (
            "secret_value_typed",
            "TALLY_SIGNING_SECRET=canary-typed-6c0e2f",
        ),
        ("secret_value_alone", "canary-typed-6c0e2f"),
    ] {
        let refused = lmsinfra_snapshot!(
            name,
            Lmsinfra::new(&sandbox)
                .args(["apply", "staging", "--auto-approve", "--secret", arg])
                .run()
        );
        assert!(!refused.stderr.contains("canary-typed"), "{refused}");
        assert!(!refused.stdout.contains("canary-typed"), "{refused}");
    }
    assert_eq!(sandbox.sandbox().stats().total, 0, "it called the API");
}

/// `lmsinfra apply staging` with every secret, on a pseudo-terminal (util-linux `script`, in
/// Debian's essential bsdutils), with `answer` typed at the prompt. stdout and stderr arrive
/// together, as a terminal shows them.
fn apply_staging_on_a_terminal(sandbox: &TestSandbox, answer: &str) -> Run {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut line = format!(
        "'{}' --color never apply staging",
        env!("CARGO_BIN_EXE_lmsinfra")
    );
    let mut command = Command::new("script");
    for (i, name) in SECRETS.iter().enumerate() {
        let var = format!("LMSINFRA_TEST_SECRET_{i}");
        line.push_str(&format!(" --secret {name}=env:{var}"));
        command.env(var, format!("value of {name}"));
    }
    let mut child = command
        .args(["-qec", &line, "/dev/null"])
        .env("CLOUDFLARE_API_BASE_URL", sandbox.base_url())
        .env("CLOUDFLARE_API_TOKEN", crate::support::TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", crate::support::ACCOUNT_ID)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(format!("{answer}\n").as_bytes())
        .expect("the answer is typed");
    drop(stdin);
    Run::from(child.wait_with_output().expect("script(1) ends"))
}

#[test]
fn apply_on_a_terminal_asks_and_goes_ahead_only_on_yes() {
    let sandbox = TestSandbox::new();
    let before = state(&sandbox);
    let declined = apply_staging_on_a_terminal(&sandbox, "no");
    assert_eq!(declined.code, 1, "{declined}");
    assert!(
        declined
            .stdout
            .contains("Apply these changes to staging? Only 'yes' will be accepted:"),
        "{declined}"
    );
    assert!(declined.stdout.contains("+ d1.main {"), "{declined}");
    assert!(
        declined
            .stdout
            .contains("apply cancelled; nothing was changed"),
        "{declined}"
    );
    assert!(state(&sandbox) == before, "the state file changed");

    let accepted = apply_staging_on_a_terminal(&sandbox, "yes");
    assert_eq!(accepted.code, 0, "{accepted}");
    assert!(
        accepted
            .stdout
            .contains("Apply complete: 5 steps done. A fresh plan of staging is empty."),
        "{accepted}"
    );
    let planned = plan_staging(&sandbox, None);
    assert_eq!(planned.code, 0, "{planned}");
}

/// Requests to D1 routes that change something, as counted by the sandbox.
fn d1_writes(stats: &Stats) -> Vec<(String, u64)> {
    writes(stats)
        .into_iter()
        .filter(|(route, _)| route.contains("/d1/"))
        .collect()
}

/// The `ref`s of the rules in one of example.com's entrypoint rulesets.
fn example_com_refs(sandbox: &TestSandbox, phase: &str) -> Vec<String> {
    let path =
        format!("/zones/023e105f4ecef8ad9ca31a8372d0c353/rulesets/phases/{phase}/entrypoint");
    sandbox.get(&path)["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["ref"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn removing_rate_limits_or_headers_from_a_routed_worker_deletes_only_that_rule() {
    let cases = [
        (
            "rate_limits",
            "\n    rate_limits: { requests: 100, period: 60, mitigation_timeout: 600, paths: [\"/api/\"] }",
            "http_ratelimit",
        ),
        (
            "headers",
            "\n    headers:\n      url: https://api.example.com/health\n      require:\n        Strict-Transport-Security: max-age=31536000; includeSubDomains\n        X-Content-Type-Options: nosniff",
            "http_response_headers_transform",
        ),
    ];
    for (what, block, phase) in cases {
        let sandbox = TestSandbox::new();
        let routed = crate::security::routed_production();
        let dir = crate::security::project(&routed, "https://lms-api.example.workers.dev/health");
        let apply = || {
            Lmsinfra::new(&sandbox)
                .args(["--dir".as_ref(), dir.path().as_os_str()])
                .args(["apply", "production", "--auto-approve"])
                .run()
        };
        let first = apply();
        assert_eq!(first.code, 0, "{first}");
        assert_eq!(example_com_refs(&sandbox, phase).len(), 1, "{what}");

        assert!(routed.contains(block), "the example has {what}");
        let manifest = dir.path().join("environments/production.yaml");
        std::fs::write(&manifest, routed.replace(block, "")).expect("the manifest is written");
        let d1_before = d1_writes(&sandbox.sandbox().stats());
        let second = apply();
        assert_eq!(second.code, 0, "without {what}: {second}");
        assert_eq!(
            d1_writes(&sandbox.sandbox().stats()),
            d1_before,
            "without {what}, apply wrote to D1: {second}"
        );
        assert!(example_com_refs(&sandbox, phase).is_empty(), "{what}");
        let other = if phase == "http_ratelimit" {
            "http_response_headers_transform"
        } else {
            "http_ratelimit"
        };
        assert_eq!(example_com_refs(&sandbox, other).len(), 1, "{what}");

        let plan = Lmsinfra::new(&sandbox)
            .args(["--dir".as_ref(), dir.path().as_os_str()])
            .args(["plan", "production", "--detailed-exitcode", "--no-probe"])
            .run();
        assert_eq!(plan.code, 0, "without {what}: {plan}");
    }
}

#[test]
fn removing_a_workers_routes_deletes_its_rules_from_the_zone_no_route_names_any_more() {
    let sandbox = TestSandbox::new();
    let routed = crate::security::routed_production();
    let dir = crate::security::project(&routed, "https://lms-api.example.workers.dev/health");
    let run = |args: &[&str]| {
        Lmsinfra::new(&sandbox)
            .args(["--dir".as_ref(), dir.path().as_os_str()])
            .args(args)
            .run()
    };
    let first = run(&["apply", "production", "--auto-approve"]);
    assert_eq!(first.code, 0, "{first}");
    let phases = ["http_ratelimit", "http_response_headers_transform"];
    for phase in phases {
        assert_eq!(example_com_refs(&sandbox, phase).len(), 1, "{phase}");
    }

    // Rate limits need routes, so both leave together; the headers block stays (it probes).
    let unrouted: String = routed
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            !(line.starts_with("routes:")
                || line.starts_with("- { zone: example.com")
                || line.starts_with("rate_limits:"))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(!unrouted.contains("example.com,"), "{unrouted}");
    let manifest = dir.path().join("environments/production.yaml");
    std::fs::write(&manifest, unrouted).expect("the manifest is written");

    let plan = run(&["plan", "production", "--no-probe"]);
    assert_eq!(plan.code, 0, "{plan}");
    for address in ["- rate_limit.example.com {", "- headers_rule.example.com {"] {
        assert!(plan.stdout.contains(address), "{address} in:\n{plan}");
    }
    let d1_before = d1_writes(&sandbox.sandbox().stats());
    let second = run(&["apply", "production", "--auto-approve"]);
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(
        d1_writes(&sandbox.sandbox().stats()),
        d1_before,
        "apply wrote to D1: {second}"
    );
    for phase in phases {
        assert!(example_com_refs(&sandbox, phase).is_empty(), "{phase}");
    }
    let again = run(&["plan", "production", "--detailed-exitcode", "--no-probe"]);
    assert_eq!(again.code, 0, "{again}");
}

#[test]
fn unbinding_and_deleting_a_database_converge_in_one_apply() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let created = apply_staging(&sandbox, Some(&project), &[]);
    assert_eq!(created.code, 0, "{created}");
    assert!(database_names(&sandbox).contains(&"lms-db-staging".to_owned()));

    project.edit("staging", |text| {
        text.replacen(
            "      DB: { type: d1, database: main }\n",
            "      DB: { absent: true }\n",
            1,
        )
        .replacen(
            "    protect: true\n",
            "    protect: false\n    absent: true\n",
            1,
        )
    });
    let planned = lmsinfra_snapshot!(
        "unbind_then_delete_plan",
        plan_staging(&sandbox, Some(&project))
    );
    let binding = planned.stdout.find("- binding.DB").expect("the unbinding");
    let database = planned.stdout.find("- d1.main").expect("the deletion");
    assert!(binding < database, "{planned}");

    // The manifest's health check wants a working DB, which this apply removes on purpose.
    let applied = apply_staging(
        &sandbox,
        Some(&project),
        &["--allow-destroy", "--no-verify"],
    );
    assert_eq!(applied.code, 0, "{applied}");
    assert!(!database_names(&sandbox).contains(&"lms-db-staging".to_owned()));
    let kept = bindings(&sandbox, "lms-api-staging");
    assert!(!kept.contains(&"DB".to_owned()), "{kept:?}");
    assert!(
        kept.contains(&"TALLY_SIGNING_SECRET".to_owned()),
        "{kept:?}"
    );
    assert_converged(&sandbox, Some(&project));
}
