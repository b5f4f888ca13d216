//! D1 migrations: the client's import protocol against the sandbox, and lmsinfra's migrations
//! through the real binary (plan, apply, `migrate`, validate), with wrangler's ledger.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use lmsinfra::cloudflare::{Client, Error};
use lmsinfra_sandbox::Exchange;
use serde_json::{Value, json};

use crate::apply::with_secrets;
use crate::client::{block_on, client_for};
use crate::support::{Body, Lmsinfra, Project, Run, TestSandbox, lmsinfra_snapshot};

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

fn tables(sandbox: &TestSandbox, id: &str) -> Vec<String> {
    rows(
        sandbox,
        id,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .iter()
    .map(|r| r["name"].as_str().expect("name").to_owned())
    .collect()
}

fn client(sandbox: &TestSandbox) -> Client {
    client_for(sandbox, |_| {})
}

#[test]
fn an_import_runs_the_whole_file_and_reports_its_bookmarks() {
    let sandbox = TestSandbox::new();
    let id = sandbox.create_d1("import-client");
    let client = client(&sandbox);
    let before = block_on(client.d1_bookmark(&id)).expect("bookmark");
    let sql =
        b"CREATE TABLE IF NOT EXISTS t (name TEXT);\nINSERT INTO t VALUES ('a');\nINSERT INTO t VALUES ('b');\n";
    let imported = block_on(client.import_d1(&id, sql)).expect("import");
    assert_eq!(imported.at_bookmark, before);
    assert_eq!(imported.num_queries, 3);
    assert!(imported.final_bookmark > before);
    assert_eq!(
        block_on(client.d1_bookmark(&id)).expect("bookmark"),
        imported.final_bookmark
    );
    assert_eq!(
        rows(&sandbox, &id, "SELECT count(*) AS n FROM t")[0]["n"],
        2
    );

    // The same file again: init finds the upload and ingests it at once, without a new upload.
    let again = block_on(client.import_d1(&id, sql)).expect("import again");
    assert_eq!(again.at_bookmark, imported.final_bookmark);
    assert_eq!(
        rows(&sandbox, &id, "SELECT count(*) AS n FROM t")[0]["n"],
        4
    );
}

#[test]
fn a_failing_statement_rolls_the_whole_import_back() {
    let sandbox = TestSandbox::with(|c| c.d1_query_non_atomic = true);
    let id = sandbox.create_d1("import-rollback");
    let client = client(&sandbox);
    let before = block_on(client.d1_bookmark(&id)).expect("bookmark");
    let sql = b"CREATE TABLE made (x);\nINSERT INTO missing VALUES (1);\n";
    let err = block_on(client.import_d1(&id, sql)).expect_err("the second statement fails");
    match &err {
        Error::ImportRolledBack { database, message } => {
            assert_eq!(database, &id);
            assert!(message.contains("missing"), "{message}");
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert_eq!(tables(&sandbox, &id), Vec::<String>::new());
    assert_eq!(block_on(client.d1_bookmark(&id)).expect("bookmark"), before);
}

#[test]
fn an_import_into_a_missing_database_fails_with_the_apis_error() {
    let sandbox = TestSandbox::new();
    let err =
        block_on(client(&sandbox).import_d1("00000000-0000-0000-0000-000000000000", b"SELECT 1;"))
            .expect_err("no such database");
    assert!(matches!(err, Error::Api { status: 404, .. }), "{err:?}");
}

/// A copy of the LMS project whose staging database takes its migrations from `db/` (holding
/// `files`) over `transport`.
fn project(files: &[(&str, &str)], transport: &str) -> Project {
    let project = Project::new();
    let config = format!("    migrations: {{ directory: db, transport: {transport} }}\n");
    project.edit("staging", |text| {
        let kept: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("migrations:"))
            .map(|line| format!("{line}\n"))
            .collect();
        let at = kept
            .find("    protect: true\n")
            .expect("staging's database")
            + 18;
        format!("{}{config}{}", &kept[..at], &kept[at..])
    });
    for (name, text) in files {
        write(&project, name, text);
    }
    project
}

fn write(project: &Project, name: &str, text: &str) {
    let path = project.path().join("db").join(name);
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("db/ is made");
    std::fs::write(path, text).expect("the migration is written");
}

fn lmsinfra(sandbox: &TestSandbox, project: &Project, args: &[&str]) -> Lmsinfra {
    Lmsinfra::new(sandbox).project(project).args(args)
}

fn apply(sandbox: &TestSandbox, project: &Project) -> Run {
    with_secrets(lmsinfra(
        sandbox,
        project,
        &["apply", "staging", "--auto-approve"],
    ))
    .run()
}

fn plan(sandbox: &TestSandbox, project: &Project) -> Run {
    lmsinfra(
        sandbox,
        project,
        &["plan", "staging", "--detailed-exitcode", "--no-probe"],
    )
    .run()
}

fn staging_db(sandbox: &TestSandbox) -> String {
    let found = sandbox.get("/accounts/{account}/d1/database?name=lms-db-staging");
    found[0]["uuid"]
        .as_str()
        .expect("lms-db-staging exists")
        .to_owned()
}

fn column(sandbox: &TestSandbox, id: &str, sql: &str, name: &str) -> Vec<Value> {
    rows(sandbox, id, sql)
        .iter()
        .map(|row| row[name].clone())
        .collect()
}

fn ledger(sandbox: &TestSandbox, id: &str) -> Vec<Value> {
    column(
        sandbox,
        id,
        "SELECT name FROM d1_migrations ORDER BY id",
        "name",
    )
}

const WRANGLER_LEDGER: &str = "CREATE TABLE d1_migrations(\n\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\t\tname       TEXT UNIQUE,\n\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n)";

const TWO: [(&str, &str); 2] = [
    ("0001_a.sql", "CREATE TABLE a (x);\n"),
    (
        "0002_b.sql",
        "CREATE TABLE b (y);\nCREATE INDEX b_y ON b (y);\n",
    ),
];

#[test]
fn apply_runs_pending_migrations_before_worker_settings_on_wranglers_ledger() {
    let sandbox = TestSandbox::new();
    let project = project(&TWO, "import");
    // Blocked only by staging's secrets, which this plan is not given.
    let planned = plan(&sandbox, &project);
    assert!(planned.stdout.contains("migration.0001_a"), "{planned}");
    assert!(planned.stdout.contains("migration.0002_b"), "{planned}");

    let applied = apply(&sandbox, &project);
    assert_eq!(applied.code, 0, "{applied}");
    let at = |needle: &str| {
        applied
            .stderr
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in\n{applied}"))
    };
    assert!(at("d1.main.migration.0001_a:") < at("d1.main.migration.0002_b:"));
    assert!(at("d1.main.migration.0002_b:") < at("worker.api:"));
    assert!(
        applied.stderr.contains(
            "to undo them with their data: lmsinfra restore staging --db main --bookmark "
        ),
        "{applied}"
    );

    let id = staging_db(&sandbox);
    assert_eq!(ledger(&sandbox, &id), ["0001_a.sql", "0002_b.sql"]);
    assert_eq!(
        column(
            &sandbox,
            &id,
            "SELECT sql FROM sqlite_schema WHERE name = 'd1_migrations'",
            "sql"
        ),
        [WRANGLER_LEDGER]
    );
    let sha = hex_sha256(TWO[1].1);
    assert_eq!(
        column(
            &sandbox,
            &id,
            "SELECT sha256 FROM lmsinfra_migrations WHERE name = '0002_b.sql'",
            "sha256"
        ),
        [sha]
    );
    assert_eq!(
        tables(&sandbox, &id),
        ["a", "b", "d1_migrations", "lmsinfra_migrations"]
    );
    let queries = |sandbox: &TestSandbox| {
        let stats = sandbox.sandbox().stats();
        stats
            .routes
            .get("POST /accounts/{account_id}/d1/database/{database_id}/query")
            .copied()
            .unwrap_or_default()
    };
    let before = queries(&sandbox);
    let again = plan(&sandbox, &project);
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(
        queries(&sandbox) - before,
        1,
        "one ledger read per database"
    );
}

fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

const FAILING: [(&str, &str); 1] = [(
    "0001_bad.sql",
    "CREATE TABLE made (x);\nINSERT INTO missing VALUES (1);\n",
)];

#[test]
fn a_failing_migration_leaves_no_schema_change_and_no_ledger_row_even_over_non_atomic_query() {
    for non_atomic in [false, true] {
        let sandbox = TestSandbox::with(|c| c.d1_query_non_atomic = non_atomic);
        let project = project(&FAILING, "import");
        let applied = apply(&sandbox, &project);
        assert_eq!(applied.code, 1, "{applied}");
        assert!(applied.stderr.contains("rolled back"), "{applied}");
        assert!(applied.stderr.contains("missing"), "{applied}");
        assert_eq!(
            tables(&sandbox, &staging_db(&sandbox)),
            Vec::<String>::new()
        );
    }
}

#[test]
fn a_partial_query_transport_run_is_reported_by_status_and_blocks_apply() {
    let sandbox = TestSandbox::with(|c| c.d1_query_non_atomic = true);
    let project = project(&FAILING, "query");
    let applied = apply(&sandbox, &project);
    assert_eq!(applied.code, 1, "{applied}");
    let id = staging_db(&sandbox);
    assert!(tables(&sandbox, &id).contains(&"made".to_owned()));
    assert_eq!(ledger(&sandbox, &id), Vec::<Value>::new());

    let status = lmsinfra(
        &sandbox,
        &project,
        &["migrate", "status", "staging", "--db", "main"],
    )
    .run();
    assert_eq!(status.code, 3, "{status}");
    assert!(
        status.stdout.contains("PARTIAL      0001_bad.sql"),
        "{status}"
    );
    assert!(status.stdout.contains("partially applied"), "{status}");
    let json = lmsinfra(
        &sandbox,
        &project,
        &["migrate", "status", "staging", "--format", "json"],
    )
    .run();
    assert_eq!(json.code, 3, "{json}");
    let document: Value = serde_json::from_str(&json.stdout).expect("JSON");
    let partial = &document["databases"][0]["migrations"][0];
    assert_eq!(
        (&partial["name"], &partial["state"]),
        (&json!("0001_bad.sql"), &json!("partial")),
        "{document:#}"
    );
    assert!(partial["bookmark_before"].is_string(), "{document:#}");
    let again = apply(&sandbox, &project);
    assert_eq!(again.code, 3, "{again}");
    assert!(again.stdout.contains("0001_bad.sql"), "{again}");
}

#[test]
fn an_edited_applied_migration_blocks_plan_naming_the_file() {
    let sandbox = TestSandbox::new();
    let project = project(&TWO, "import");
    assert_eq!(apply(&sandbox, &project).code, 0);
    write(&project, "0001_a.sql", "CREATE TABLE a (x, extra);\n");
    let planned = plan(&sandbox, &project);
    assert_eq!(planned.code, 3, "{planned}");
    assert!(
        planned
            .stdout
            .contains("0001_a.sql was edited after it was applied"),
        "{planned}"
    );
}

#[test]
fn two_applies_started_together_apply_each_migration_once_and_both_succeed() {
    let base_url: Arc<OnceLock<String>> = Arc::default();
    let armed = Arc::new(AtomicBool::new(false));
    let second: Arc<Mutex<Option<Run>>> = Arc::default();
    let first_project = project(&TWO, "import");
    let second_project = Arc::new(project(&TWO, "import"));
    let observer = {
        let (base_url, armed, second, project) = (
            base_url.clone(),
            armed.clone(),
            second.clone(),
            second_project.clone(),
        );
        move |exchange: &Exchange| {
            let bookmark_read = exchange.route.as_deref() == Some(BOOKMARK_ROUTE);
            if !bookmark_read || !armed.swap(false, Ordering::SeqCst) {
                return;
            }
            let url = base_url.get().expect("the sandbox's address is known");
            let run = tokio::task::block_in_place(|| crate::races::apply_at(url, &project));
            *second.lock().expect("not poisoned") = Some(run);
        }
    };
    let sandbox = TestSandbox::with(|config| config.observer = Some(Arc::new(observer)));
    base_url.set(sandbox.base_url()).expect("set once");
    // Converged without migrations first, so neither apply needs the secrets.
    let plain = project_without_migrations();
    assert_eq!(apply(&sandbox, &plain).code, 0);
    armed.store(true, Ordering::SeqCst);

    let first = lmsinfra(
        &sandbox,
        &first_project,
        &["apply", "staging", "--auto-approve"],
    )
    .run();
    let second = second
        .lock()
        .expect("not poisoned")
        .take()
        .expect("the second apply ran while the first one read its bookmark");
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(first.code, 0, "{first}");
    assert!(first.stderr.contains("already applied"), "{first}");
    let id = staging_db(&sandbox);
    assert_eq!(ledger(&sandbox, &id), ["0001_a.sql", "0002_b.sql"]);
    assert_eq!(
        column(
            &sandbox,
            &id,
            "SELECT count(*) AS n FROM lmsinfra_migrations",
            "n"
        ),
        [2]
    );
}

const BOOKMARK_ROUTE: &str =
    "/accounts/{account_id}/d1/database/{database_id}/time_travel/bookmark";

fn project_without_migrations() -> Project {
    let project = Project::new();
    project.edit("staging", |text| {
        text.lines()
            .filter(|line| !line.trim_start().starts_with("migrations:"))
            .map(|line| format!("{line}\n"))
            .collect()
    });
    project
}

#[test]
fn migrate_down_undoes_the_last_migration_or_refuses_with_the_bookmark() {
    let sandbox = TestSandbox::new();
    let project = project(&TWO, "import");
    write(
        &project,
        "down/0002_b.down.sql",
        "DROP INDEX b_y;\nDROP TABLE b;\n",
    );
    assert_eq!(apply(&sandbox, &project).code, 0);
    let id = staging_db(&sandbox);

    let down = lmsinfra(
        &sandbox,
        &project,
        &[
            "migrate",
            "down",
            "staging",
            "--db",
            "main",
            "--to",
            "1",
            "--auto-approve",
        ],
    )
    .run();
    assert_eq!(down.code, 0, "{down}");
    assert!(down.stderr.contains("undid 0002_b.sql"), "{down}");
    assert_eq!(ledger(&sandbox, &id), ["0001_a.sql"]);
    assert!(!tables(&sandbox, &id).contains(&"b".to_owned()));
    let planned = plan(&sandbox, &project);
    assert_eq!(planned.code, 2, "{planned}");
    assert!(planned.stdout.contains("migration.0002_b"), "{planned}");

    assert_eq!(apply(&sandbox, &project).code, 0);
    let bookmark = column(
        &sandbox,
        &id,
        "SELECT bookmark_before FROM lmsinfra_migrations WHERE name = '0002_b.sql'",
        "bookmark_before",
    );
    let bookmark = bookmark[0]
        .as_str()
        .expect("a bookmark was recorded")
        .to_owned();
    std::fs::remove_file(project.path().join("db/down/0002_b.down.sql")).expect("removed");
    let refused = lmsinfra(
        &sandbox,
        &project,
        &[
            "migrate",
            "down",
            "staging",
            "--db",
            "main",
            "--to",
            "1",
            "--auto-approve",
        ],
    )
    .run();
    assert_eq!(refused.code, 3, "{refused}");
    assert!(
        refused.stderr.contains("0002_b.sql has no down file"),
        "{refused}"
    );
    // The help is wrapped to the terminal's width; its words are what count.
    let words = refused
        .stderr
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains(&format!("--bookmark {bookmark}")),
        "{refused}"
    );
    assert_eq!(ledger(&sandbox, &id), ["0001_a.sql", "0002_b.sql"]);
}

#[test]
fn validate_refuses_a_transaction_statement_naming_file_and_line_before_any_request() {
    let project = project(
        &[(
            "0001_a.sql",
            "CREATE TABLE a (x);\nBEGIN TRANSACTION;\nCOMMIT;\n",
        )],
        "import",
    );
    let run = Lmsinfra::new(&TestSandbox::new())
        .project(&project)
        .args(["validate", "staging"])
        .run();
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("0001_a.sql:2"), "{run}");
    assert!(run.stderr.contains("BEGIN"), "{run}");
}

#[test]
fn validate_refuses_a_ledger_table_wrangler_cannot_name_and_a_directory_outside_the_project() {
    let project = project(&TWO, "import");
    project.edit("staging", |text| {
        text.replace(
            "    migrations: { directory: migrations }\n",
            "    migrations: { directory: ../elsewhere, table: \"d1-migrations\" }\n",
        )
    });
    let run = Lmsinfra::new(&TestSandbox::new())
        .project(&project)
        .args(["validate", "staging"])
        .run();
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("manifest::migrations-table"), "{run}");
    assert!(
        run.stderr.contains("manifest::migrations-directory"),
        "{run}"
    );
}

#[test]
fn baseline_records_a_hand_made_schema_without_running_it_or_refuses_with_the_differences() {
    let sandbox = TestSandbox::new();
    assert_eq!(apply(&sandbox, &project_without_migrations()).code, 0);
    let id = staging_db(&sandbox);
    let schema = "CREATE TABLE a (x);\nCREATE INDEX a_x ON a (x);\n";
    rows(&sandbox, &id, schema);
    let project = project(&[], "import");
    std::fs::write(
        project.path().join("schema.sql"),
        "CREATE TABLE a (x, y);\n",
    )
    .expect("written");
    let args = [
        "migrate",
        "baseline",
        "staging",
        "--db",
        "main",
        "--schema",
        "schema.sql",
    ];
    let refused = lmsinfra(&sandbox, &project, &args).run();
    assert_eq!(refused.code, 3, "{refused}");
    assert!(refused.stderr.contains("~ table a"), "{refused}");
    assert!(refused.stderr.contains("+ index a_x"), "{refused}");
    assert_eq!(tables(&sandbox, &id), ["a"]);

    std::fs::write(project.path().join("schema.sql"), schema).expect("written");
    let recorded = lmsinfra(&sandbox, &project, &args).run();
    assert_eq!(recorded.code, 0, "{recorded}");
    assert_eq!(ledger(&sandbox, &id), ["0001_baseline.sql"]);
    assert_eq!(
        std::fs::read_to_string(project.path().join("db/0001_baseline.sql")).expect("written"),
        schema
    );
    let planned = plan(&sandbox, &project);
    assert_eq!(planned.code, 0, "{planned}");

    let new = lmsinfra(
        &sandbox,
        &project,
        &["migrate", "new", "staging", "--db", "main", "add quiz"],
    )
    .run();
    assert_eq!(new.code, 0, "{new}");
    let written = std::fs::read_to_string(project.path().join("db/0002_add_quiz.sql"))
        .expect("migrate new writes the next file");
    assert!(
        written.starts_with("-- Migration number: 0002 \t "),
        "{written}"
    );
}

#[test]
fn migrate_status_shows_each_file_with_what_blocks() {
    let sandbox = TestSandbox::new();
    let project = project(&TWO, "import");
    assert_eq!(apply(&sandbox, &project).code, 0);
    write(&project, "0002_b.sql", "CREATE TABLE b (y, z);\n");
    write(&project, "0003_c.sql", "CREATE TABLE c (z);\n");
    std::fs::rename(
        project.path().join("db/0001_a.sql"),
        project.path().join("db/0001_first.sql"),
    )
    .expect("renamed");
    let status = lmsinfra(&sandbox, &project, &["migrate", "status", "staging"]).run();
    assert_eq!(status.code, 3, "{status}");
    lmsinfra_snapshot!(status);
}

#[test]
fn a_saved_plan_whose_migrations_ran_since_is_refused_before_any_write() {
    let sandbox = TestSandbox::new();
    assert_eq!(apply(&sandbox, &project_without_migrations()).code, 0);
    let project = project(&TWO, "import");
    let saved = project.path().join("staging.plan.json");
    lmsinfra(
        &sandbox,
        &project,
        &["plan", "staging", "--no-probe", "--out"],
    )
    .arg(&saved)
    .code(0)
    .run();
    // Another apply runs the two migrations after the plan was saved.
    assert_eq!(apply(&sandbox, &project).code, 0);
    let id = staging_db(&sandbox);
    let bookmark = sandbox.get(&format!(
        "/accounts/{{account}}/d1/database/{id}/time_travel/bookmark"
    ));

    let refused = with_secrets(
        lmsinfra(
            &sandbox,
            &project,
            &["apply", "staging", "--auto-approve", "--plan"],
        )
        .arg(&saved),
    )
    .run();
    assert_eq!(refused.code, 3, "{refused}");
    assert!(
        refused.stderr.contains("is stale: the migrations"),
        "{refused}"
    );
    assert_eq!(ledger(&sandbox, &id), ["0001_a.sql", "0002_b.sql"]);
    let after = sandbox.get(&format!(
        "/accounts/{{account}}/d1/database/{id}/time_travel/bookmark"
    ));
    assert_eq!(after, bookmark, "the database was written");
}
