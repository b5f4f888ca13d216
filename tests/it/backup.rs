//! Backups, restores and the restore drill: the real binary against the sandbox's D1 export,
//! import, Time Travel and R2.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::proxy::{Proxy, Reply};
use super::support::{Body, Lmsinfra, Project, Run, TestSandbox};

/// A port nothing listens on: a command pointed here that sends any request fails to connect.
const NOWHERE: &str = "http://127.0.0.1:9/client/v4";

fn uuid_of(sandbox: &TestSandbox, name: &str) -> Option<String> {
    let list = sandbox.get("/accounts/{account}/d1/database");
    list.as_array()
        .expect("a list")
        .iter()
        .find(|db| db["name"] == name)
        .map(|db| db["uuid"].as_str().expect("uuid").to_owned())
}

fn database_names(sandbox: &TestSandbox) -> Vec<String> {
    let list = sandbox.get("/accounts/{account}/d1/database");
    let mut names: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|db| db["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

/// The rows of the last statement of `sql`, which must succeed.
fn rows(sandbox: &TestSandbox, id: &str, sql: &str) -> Vec<Value> {
    let answer = sandbox.send(
        "POST",
        &format!("/accounts/{{account}}/d1/database/{id}/query"),
        Body::Json(json!({ "sql": sql })),
    );
    assert_eq!(answer.status, 200, "{sql}: {}", answer.body);
    let results = answer.body["result"].as_array().expect("results");
    results.last().expect("a statement")["results"]
        .as_array()
        .expect("rows")
        .clone()
}

/// The LMS's staging database with a schema (tables, an index, a trigger) and rows.
fn staging_with_data(sandbox: &TestSandbox) -> String {
    staging_with(sandbox, "REFERENCES courses(id)")
}

/// The staging database, with `reference` after the lessons' course id.
fn staging_with(sandbox: &TestSandbox, reference: &str) -> String {
    let id = sandbox.create_d1("lms-db-staging");
    rows(
        sandbox,
        &id,
        &format!("CREATE TABLE courses (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
         CREATE TABLE lessons (id INTEGER PRIMARY KEY, course_id INTEGER {reference}, body TEXT, updated TEXT);
         CREATE INDEX lessons_course ON lessons (course_id);
         CREATE TRIGGER lessons_touch AFTER UPDATE ON lessons BEGIN UPDATE lessons SET updated = 'yes'; END;
         CREATE TABLE empty_table (x);
         INSERT INTO courses VALUES (1, 'Rust; the basics'), (2, 'it''s SQL -- really');
         INSERT INTO lessons VALUES (1, 1, 'one', NULL), (2, 1, 'two', NULL), (3, 2, 'three', NULL),
                                    (4, 2, 'a
multi-line; body', NULL);"),
    );
    id
}

/// Schema and per-table row counts of a database, as its own queries see them.
fn shape(sandbox: &TestSandbox, id: &str) -> (Vec<String>, Vec<(String, i64)>) {
    let schema: Vec<String> = rows(
        sandbox,
        id,
        "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name",
    )
    .iter()
    .map(|r| r["sql"].as_str().expect("sql").to_owned())
    .collect();
    let tables: Vec<String> = rows(
        sandbox,
        id,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name",
    )
    .iter()
    .map(|r| r["name"].as_str().expect("name").to_owned())
    .collect();
    let counts = tables
        .into_iter()
        .map(|table| {
            let n = rows(
                sandbox,
                id,
                &format!("SELECT count(*) AS n FROM \"{table}\""),
            )[0]["n"]
                .as_i64()
                .expect("a count");
            (table, n)
        })
        .collect();
    (schema, counts)
}

fn current_bookmark(sandbox: &TestSandbox, id: &str) -> String {
    sandbox.get(&format!(
        "/accounts/{{account}}/d1/database/{id}/time_travel/bookmark"
    ))["bookmark"]
        .as_str()
        .expect("bookmark")
        .to_owned()
}

fn lmsinfra(sandbox: &TestSandbox, project: &Project) -> Lmsinfra {
    Lmsinfra::new(sandbox).project(project)
}

#[test]
fn a_backup_restored_into_a_new_database_has_the_schema_and_rows_and_its_download_carries_no_token()
{
    let sandbox = TestSandbox::new();
    let source = staging_with_data(&sandbox);
    let project = Project::new();
    // The download goes through a proxy that records what it was sent; the API answers point
    // the signed URL at it.
    let downloads: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = downloads.clone();
    let origin = format!("http://{}", sandbox.sandbox().addr());
    let blob_proxy = Proxy::start(origin.clone(), move |request| {
        let authorization = request.authorization();
        seen.lock()
            .unwrap()
            .push((request.path.clone(), authorization));
        Reply::Forward
    });
    let blob_origin = blob_proxy.base_url().replace("/client/v4", "");
    let api = Proxy::start(sandbox.base_url(), move |request| {
        if !request.path.ends_with("/export") {
            return Reply::Forward;
        }
        let (from, to) = (origin.clone(), blob_origin.clone());
        Reply::Rewrite(Box::new(move |answer: &mut Value| {
            if let Some(url) = answer["result"]["result"]["signed_url"].as_str() {
                answer["result"]["result"]["signed_url"] = url.replace(&from, &to).into();
            }
        }))
    });
    let out = project.path().join("backups");
    std::fs::create_dir(&out).unwrap();
    let run = lmsinfra(&sandbox, &project)
        .env("CLOUDFLARE_API_BASE_URL", api.base_url())
        .args(["backup", "staging", "--out"])
        .arg(&out)
        .code(0)
        .run();
    let bookmark = current_bookmark(&sandbox, &source);
    assert!(
        run.stdout.contains(&format!("at bookmark {bookmark}")),
        "{run}"
    );
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one file and no temporary one: {files:?}");
    let file = &files[0];
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("lms-db-staging-") && name.ends_with(&format!("-{bookmark}.sql")),
        "{name}"
    );
    let downloads = downloads.lock().unwrap().clone();
    assert_eq!(downloads.len(), 1, "{downloads:?}");
    assert!(
        downloads[0].0.starts_with("/__sandbox/blob/"),
        "{downloads:?}"
    );
    assert_eq!(
        downloads[0].1, "",
        "the download carried an Authorization header"
    );

    lmsinfra(&sandbox, &project)
        .args(["restore", "staging", "--db", "main", "--from"])
        .arg(file)
        .args(["--into", "lms-db-restored"])
        .code(0)
        .run();
    let restored = uuid_of(&sandbox, "lms-db-restored").expect("the new database exists");
    assert_eq!(shape(&sandbox, &restored), shape(&sandbox, &source));
    assert_eq!(shape(&sandbox, &source).1[1], ("empty_table".to_owned(), 0));

    // Never into a database that exists.
    let run = lmsinfra(&sandbox, &project)
        .args(["restore", "staging", "--from"])
        .arg(file)
        .args(["--into", "lms-db-staging"])
        .code(1)
        .run();
    assert!(run.stderr.contains("already exists"), "{run}");
    assert_eq!(shape(&sandbox, &source).1[0], ("courses".to_owned(), 2));
}

#[test]
fn restore_by_timestamp_brings_back_the_past_and_the_printed_bookmark_brings_back_the_rest() {
    let sandbox = TestSandbox::new();
    let id = sandbox.create_d1("lms-db-staging");
    rows(
        &sandbox,
        &id,
        "CREATE TABLE t (name TEXT); INSERT INTO t VALUES ('before')",
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    let t = Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    rows(&sandbox, &id, "INSERT INTO t VALUES ('after')");
    let names = |sandbox: &TestSandbox| -> Vec<String> {
        rows(sandbox, &id, "SELECT name FROM t ORDER BY name")
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let project = Project::new();
    let run = lmsinfra(&sandbox, &project)
        .args([
            "restore",
            "staging",
            "--timestamp",
            &t.to_string(),
            "--auto-approve",
        ])
        .code(0)
        .run();
    assert_eq!(names(&sandbox), ["before"], "{run}");
    let undo = run
        .stdout
        .lines()
        .find_map(|line| line.split("--bookmark ").nth(1))
        .unwrap_or_else(|| panic!("no undo command\n{run}"))
        .trim()
        .to_owned();
    assert!(
        run.stdout.contains(&format!(
            "lmsinfra restore staging --db main --bookmark {undo}"
        )),
        "{run}"
    );
    lmsinfra(&sandbox, &project)
        .args(["restore", "staging", "--bookmark", &undo, "--auto-approve"])
        .code(0)
        .run();
    assert_eq!(names(&sandbox), ["after", "before"]);
}

fn refused(run: &Run, reason: &str) {
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains(reason), "{run}");
    assert!(
        !run.stderr.contains("127.0.0.1:9"),
        "a request was sent\n{run}"
    );
}

#[test]
fn bad_restore_input_is_refused_before_anything_is_written() {
    let sandbox = TestSandbox::new();
    let id = staging_with_data(&sandbox);
    let other = sandbox.create_d1("lms-db-other");
    rows(&sandbox, &other, "CREATE TABLE x (y)");
    let project = Project::new();
    let before = (current_bookmark(&sandbox, &id), shape(&sandbox, &id));
    let nowhere = |args: &[&str]| {
        lmsinfra(&sandbox, &project)
            .env("CLOUDFLARE_API_BASE_URL", NOWHERE)
            .args(args)
            .run()
    };
    let future = (Timestamp::now() + SignedDuration::from_hours(1)).to_string();
    refused(
        &nowhere(&[
            "restore",
            "staging",
            "--timestamp",
            &future,
            "--auto-approve",
        ]),
        "is in the future",
    );
    let old = (Timestamp::now() - SignedDuration::from_hours(31 * 24)).to_string();
    refused(
        &nowhere(&["restore", "staging", "--timestamp", &old, "--auto-approve"]),
        "older than Time Travel's 30-day window",
    );
    refused(
        &nowhere(&[
            "restore",
            "staging",
            "--timestamp",
            "last tuesday",
            "--auto-approve",
        ]),
        "is not a time",
    );
    refused(
        &nowhere(&["restore", "staging", "--bookmark", "b"]),
        "no terminal to ask on",
    );
    let text = project.path().join("notes.txt");
    std::fs::write(&text, "Remember to back up the database.\n").unwrap();
    let binary = project.path().join("dump.sql.gz");
    std::fs::write(&binary, [0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, b';', 0x00]).unwrap();
    let statements = project.path().join("cleanup.sql");
    std::fs::write(&statements, "CREATE TABLE t (x);\nDROP TABLE courses;\n").unwrap();
    for file in [&text, &binary, &statements] {
        let file = file.to_str().unwrap();
        refused(
            &nowhere(&["restore", "staging", "--from", file, "--into", "lms-db-new"]),
            "is not a SQL dump",
        );
    }

    // A bookmark of another database: D1 refuses it, and nothing changes.
    let foreign = current_bookmark(&sandbox, &other);
    let run = lmsinfra(&sandbox, &project)
        .args([
            "restore",
            "staging",
            "--bookmark",
            &foreign,
            "--auto-approve",
        ])
        .run();
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("(7400)"), "{run}");
    assert_eq!(
        (current_bookmark(&sandbox, &id), shape(&sandbox, &id)),
        before
    );
    assert_eq!(
        database_names(&sandbox),
        ["lms-db", "lms-db-other", "lms-db-staging"]
    );
}

fn drill_snapshot_settings() -> insta::Settings {
    let mut settings = super::support::snapshot_settings();
    settings.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}\b",
        "[BOOKMARK]",
    );
    settings.add_filter(r"-drill-\d{14}", "-drill-[TIME]");
    settings
}

#[test]
fn the_restore_drill_passes_and_leaves_no_scratch_database() {
    let sandbox = TestSandbox::new();
    staging_with_data(&sandbox);
    let project = Project::new();
    let run = lmsinfra(&sandbox, &project)
        .args(["restore-drill", "staging"])
        .run();
    drill_snapshot_settings().bind(|| insta::assert_snapshot!(run.stdout));
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(database_names(&sandbox), ["lms-db", "lms-db-staging"]);

    let run = lmsinfra(&sandbox, &project)
        .args([
            "restore-drill",
            "staging",
            "--db",
            "main",
            "--format",
            "json",
        ])
        .code(0)
        .run();
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(report["passed"], true);
    assert_eq!(report["scratch_deleted"], true);
    assert_eq!(report["comparison"]["tables"][1]["table"], "empty_table");
    assert_eq!(database_names(&sandbox), ["lms-db", "lms-db-staging"]);
}

#[test]
fn the_restore_drill_fails_when_the_import_loses_rows() {
    let sandbox = TestSandbox::with(|c| c.corrupt_imports = true);
    staging_with(&sandbox, "");
    let project = Project::new();
    let run = lmsinfra(&sandbox, &project)
        .args(["restore-drill", "staging"])
        .run();
    assert_eq!(run.code, 3, "{run}");
    drill_snapshot_settings().bind(|| insta::assert_snapshot!(run.stdout));
    assert_eq!(database_names(&sandbox), ["lms-db", "lms-db-staging"]);
}

#[test]
fn the_restore_drill_fails_when_the_import_fails() {
    // Rows lost from a table other tables point at break a foreign key: D1 refuses the import.
    let sandbox = TestSandbox::with(|c| c.corrupt_imports = true);
    staging_with_data(&sandbox);
    let project = Project::new();
    let run = lmsinfra(&sandbox, &project)
        .args(["restore-drill", "staging", "--format", "json"])
        .code(3)
        .run();
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(report["passed"], false);
    assert!(
        report["import_error"]
            .as_str()
            .unwrap()
            .contains("FOREIGN KEY"),
        "{report}"
    );
    assert_eq!(database_names(&sandbox), ["lms-db", "lms-db-staging"]);
}

#[test]
fn backups_go_to_r2_and_check_fails_when_the_newest_is_too_old() {
    let sandbox = TestSandbox::new();
    staging_with_data(&sandbox);
    let created = sandbox.send(
        "POST",
        "/accounts/{account}/r2/buckets",
        Body::Json(json!({ "name": "lms-backups" })),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let project = Project::new();
    project.edit("staging", |text| {
        text.replace(
            "    name: lms-db-staging\n",
            "    name: lms-db-staging\n    backup:\n      r2: { bucket: lms-backups }\n      max_age_hours: 26\n",
        )
    });
    let clock = sandbox.sandbox().clock();
    clock.set(Timestamp::now() - SignedDuration::from_hours(27));
    let run = lmsinfra(&sandbox, &project)
        .args(["backup", "staging"])
        .code(0)
        .run();
    assert!(
        run.stdout.contains("r2    lms-backups/d1/lms-db-staging/"),
        "{run}"
    );
    let files: Vec<_> = std::fs::read_dir(project.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".sql"))
        .collect();
    assert!(files.is_empty(), "a backup to R2 leaves no file: {files:?}");
    let objects = sandbox.get("/accounts/{account}/r2/buckets/lms-backups/objects");
    assert_eq!(objects.as_array().unwrap().len(), 1, "{objects}");

    clock.set(Timestamp::now());
    let run = lmsinfra(&sandbox, &project)
        .args(["check", "staging", "--no-probe"])
        .code(3)
        .run();
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("backup-age"))
        .unwrap_or_else(|| panic!("no backup-age line\n{run}"));
    assert!(
        line.starts_with("  ✗") && line.contains("is 27 h 00 min old (at most 26 h)"),
        "{line}"
    );

    lmsinfra(&sandbox, &project)
        .args(["backup", "staging"])
        .code(0)
        .run();
    let run = lmsinfra(&sandbox, &project)
        .args(["check", "staging", "--no-probe"])
        .run();
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("backup-age"))
        .unwrap();
    assert!(
        line.starts_with("  ✓") && line.contains("is 0 h 00 min old"),
        "{line}"
    );
}

#[test]
fn an_export_that_lapses_fails_clearly_and_leaves_no_file() {
    let sandbox = TestSandbox::new();
    staging_with_data(&sandbox);
    let project = Project::new();
    // Between two polls, more than the sandbox's 60 s pass on its clock: the export lapses.
    let clock = sandbox.sandbox().clock();
    let api = Proxy::start(sandbox.base_url(), move |request| {
        let polled = String::from_utf8_lossy(&request.body).contains("current_bookmark");
        if request.path.ends_with("/export") && polled {
            clock.advance(SignedDuration::from_secs(61));
        }
        Reply::Forward
    });
    let out = project.path().join("backups");
    std::fs::create_dir(&out).unwrap();
    let run = lmsinfra(&sandbox, &project)
        .env("CLOUDFLARE_API_BASE_URL", api.base_url())
        .args(["backup", "staging", "--out"])
        .arg(&out)
        .code(1)
        .run();
    assert!(run.stderr.contains("Export cancelled"), "{run}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "{run}");
}

#[test]
fn a_drill_interrupted_by_ctrl_c_deletes_its_scratch_database() {
    let sandbox = TestSandbox::with(|c| c.latency = std::time::Duration::from_millis(150));
    staging_with_data(&sandbox);
    let project = Project::new();
    let child = lmsinfra(&sandbox, &project)
        .args(["restore-drill", "staging"])
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !database_names(&sandbox)
        .iter()
        .any(|n| n.contains("-drill-"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no scratch database appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let output = super::support::wait_within(child, std::time::Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted; scratch database"), "{stderr}");
    assert_eq!(database_names(&sandbox), ["lms-db", "lms-db-staging"]);
}
