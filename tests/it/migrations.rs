//! D1 migrations: the client's import protocol against the sandbox, and lmsinfra's migrations
//! through the real binary (plan, apply, `migrate`, validate), with wrangler's ledger.

use lmsinfra::cloudflare::{Client, Error};
use serde_json::{Value, json};

use crate::client::{block_on, client_for};
use crate::support::{Body, TestSandbox};

fn create_db(sandbox: &TestSandbox, name: &str) -> String {
    let answer = sandbox.send(
        "POST",
        "/accounts/{account}/d1/database",
        Body::Json(json!({ "name": name })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["result"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned()
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
    let id = create_db(&sandbox, "import-client");
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
    let id = create_db(&sandbox, "import-rollback");
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
