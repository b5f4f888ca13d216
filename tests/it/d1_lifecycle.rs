//! D1's data lifecycle in the sandbox, over HTTP: the movable clock, Time Travel, export, import,
//! the non-atomic `/query` variant, R2 for backups, and database sizes. These are what lmsinfra's
//! migrations, backups, restores and restore drills are built and tested against.

use jiff::{SignedDuration, Timestamp};
use md5::Digest;
use serde_json::{Value, json};

use super::support::{Answer, Body, TestSandbox};

const START: &str = "2026-03-01T12:00:00Z";

fn at_start(tweak: impl FnOnce(&mut lmsinfra_sandbox::SandboxConfig)) -> TestSandbox {
    TestSandbox::with(|c| {
        c.clock = lmsinfra_sandbox::Clock::fixed(START.parse().unwrap());
        tweak(c);
    })
}

fn db_path(id: &str, rest: &str) -> String {
    format!("/accounts/{{account}}/d1/database/{id}{rest}")
}

fn query(sandbox: &TestSandbox, id: &str, sql: &str) -> Answer {
    sandbox.send(
        "POST",
        &db_path(id, "/query"),
        Body::Json(json!({ "sql": sql })),
    )
}

/// The rows of the last statement, which must succeed.
fn rows(sandbox: &TestSandbox, id: &str, sql: &str) -> Vec<Value> {
    let answer = query(sandbox, id, sql);
    assert_eq!(answer.status, 200, "{sql}: {}", answer.body);
    let results = answer.body["result"].as_array().expect("results");
    results.last().expect("a statement")["results"]
        .as_array()
        .expect("rows")
        .clone()
}

fn names(sandbox: &TestSandbox, id: &str) -> Vec<String> {
    rows(sandbox, id, "SELECT name FROM t ORDER BY name")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
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

fn advance(sandbox: &TestSandbox, secs: i64) {
    sandbox
        .sandbox()
        .clock()
        .advance(SignedDuration::from_secs(secs));
}

fn bookmark(sandbox: &TestSandbox, id: &str, timestamp: Option<Timestamp>) -> Answer {
    let query = timestamp.map_or(String::new(), |t| format!("?timestamp={t}"));
    sandbox.send(
        "GET",
        &db_path(id, &format!("/time_travel/bookmark{query}")),
        Body::None,
    )
}

fn current(sandbox: &TestSandbox, id: &str) -> String {
    let answer = bookmark(sandbox, id, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["result"]["bookmark"]
        .as_str()
        .expect("bookmark")
        .to_owned()
}

fn restore(sandbox: &TestSandbox, id: &str, query: &str) -> Answer {
    sandbox.send(
        "POST",
        &db_path(id, &format!("/time_travel/restore?{query}")),
        Body::None,
    )
}

/// A request to an absolute URL with no token at all, like a download of a signed URL.
fn fetch(method: &str, url: &str, body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = reqwest::Client::new()
            .request(method, url)
            .body(body)
            .send()
            .await
            .expect("the sandbox answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body").to_vec();
        (status, headers, bytes)
    })
}

fn md5_hex(bytes: &[u8]) -> String {
    hex(&md5::Md5::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_clock_is_set_and_advanced_by_route_or_handle() {
    let sandbox = at_start(|_| {});
    let url = format!("http://{}/__sandbox/clock", sandbox.sandbox().addr());
    let (status, _, body) = fetch("GET", &url, Vec::new());
    assert_eq!(status, 200);
    let now: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(now["now"], START);
    let (status, _, _) = fetch("POST", &url, br#"{"advance_secs": 90}"#.to_vec());
    assert_eq!(status, 200);
    assert_eq!(
        sandbox.sandbox().clock().now().to_string(),
        "2026-03-01T12:01:30Z"
    );
    let (status, _, body) = fetch("POST", &url, br#"{"set": "2027-01-01T00:00:00Z"}"#.to_vec());
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["now"],
        "2027-01-01T00:00:00Z"
    );
    let (status, _, _) = fetch("POST", &url, br#"{"set": "yesterday"}"#.to_vec());
    assert_eq!(status, 400);
}

#[test]
fn restore_by_timestamp_brings_back_the_past_and_previous_bookmark_undoes_it() {
    let sandbox = at_start(|_| {});
    let id = sandbox.create_d1("tt");
    advance(&sandbox, 60);
    rows(&sandbox, &id, "CREATE TABLE t (name TEXT)");
    rows(&sandbox, &id, "INSERT INTO t VALUES ('before')");
    let before = current(&sandbox, &id);
    advance(&sandbox, 120);
    let t = sandbox.sandbox().clock().now();
    advance(&sandbox, 120);
    rows(&sandbox, &id, "INSERT INTO t VALUES ('after')");
    let after = current(&sandbox, &id);
    assert!(before < after, "bookmarks sort by time: {before} {after}");
    assert_eq!(current(&sandbox, &id), after, "a read takes no bookmark");
    let at_t = bookmark(&sandbox, &id, Some(t));
    assert_eq!(at_t.body["result"]["bookmark"], before.as_str());

    let restored = restore(&sandbox, &id, &format!("timestamp={t}"));
    assert_eq!(restored.status, 200, "{}", restored.body);
    assert_eq!(names(&sandbox, &id), ["before"]);
    assert_eq!(restored.body["result"]["previous_bookmark"], after.as_str());
    let new = restored.body["result"]["bookmark"].as_str().unwrap();
    assert!(new > after.as_str());
    assert_eq!(current(&sandbox, &id), new);

    let undone = restore(&sandbox, &id, &format!("bookmark={after}"));
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert_eq!(names(&sandbox, &id), ["after", "before"]);

    let to_creation = bookmark(&sandbox, &id, Some(START.parse().unwrap()));
    let empty = to_creation.body["result"]["bookmark"].as_str().unwrap();
    assert_eq!(
        restore(&sandbox, &id, &format!("bookmark={empty}")).status,
        200
    );
    assert_eq!(tables(&sandbox, &id), Vec::<String>::new());
}

#[test]
fn time_travel_survives_a_restart() {
    let mut sandbox = at_start(|_| {});
    let id = sandbox.create_d1("tt-restart");
    rows(&sandbox, &id, "CREATE TABLE t (name TEXT)");
    let empty_table = current(&sandbox, &id);
    rows(&sandbox, &id, "INSERT INTO t VALUES ('x')");
    sandbox.restart(|c| c.clock = lmsinfra_sandbox::Clock::fixed(START.parse().unwrap()));
    assert_eq!(
        restore(&sandbox, &id, &format!("bookmark={empty_table}")).status,
        200
    );
    assert_eq!(names(&sandbox, &id), Vec::<String>::new());
}

#[test]
fn time_travel_keeps_to_its_window_its_database_and_its_rate_limit() {
    let sandbox = at_start(|_| {});
    let id = sandbox.create_d1("window");
    let other = sandbox.create_d1("other");
    let first = current(&sandbox, &id);
    let future = sandbox.sandbox().clock().now() + SignedDuration::from_secs(60);
    assert_eq!(bookmark(&sandbox, &id, Some(future)).status, 400);
    let foreign = current(&sandbox, &other);
    let answer = restore(&sandbox, &id, &format!("bookmark={foreign}"));
    assert_eq!((answer.status, answer.code()), (400, Some(7400)));
    assert_eq!(restore(&sandbox, &id, "").status, 400);

    for n in 0..10 {
        let answer = restore(&sandbox, &id, &format!("bookmark={first}"));
        assert_eq!(answer.status, 200, "restore {n}: {}", answer.body);
    }
    let eleventh = restore(&sandbox, &id, &format!("bookmark={first}"));
    assert_eq!((eleventh.status, eleventh.code()), (429, Some(7429)));
    advance(&sandbox, 10 * 60 + 1);
    assert_eq!(
        restore(&sandbox, &id, &format!("bookmark={first}")).status,
        200
    );

    advance(&sandbox, 31 * 24 * 3600);
    let old = restore(&sandbox, &id, &format!("bookmark={first}"));
    assert_eq!((old.status, old.code()), (400, Some(7400)));
    let long_ago = sandbox.sandbox().clock().now() - SignedDuration::from_hours(31 * 24);
    assert_eq!(bookmark(&sandbox, &id, Some(long_ago)).status, 400);
}

fn export(sandbox: &TestSandbox, id: &str, body: Value) -> Answer {
    sandbox.send("POST", &db_path(id, "/export"), Body::Json(body))
}

/// Run an export to completion; returns the signed URL.
fn export_to_url(sandbox: &TestSandbox, id: &str, options: Value) -> (String, String) {
    let mut body = json!({"output_format": "polling", "dump_options": options});
    let started = export(sandbox, id, body.clone());
    assert_eq!(started.status, 202, "{}", started.body);
    let at = started.body["result"]["at_bookmark"]
        .as_str()
        .unwrap()
        .to_owned();
    body["current_bookmark"] = json!(at);
    for _ in 0..10 {
        let answer = export(sandbox, id, body.clone());
        if answer.status == 200 {
            assert_eq!(
                answer.body["result"]["status"], "complete",
                "{}",
                answer.body
            );
            let url = answer.body["result"]["result"]["signed_url"]
                .as_str()
                .unwrap();
            return (url.to_owned(), at);
        }
        assert_eq!(answer.status, 202, "{}", answer.body);
        assert_eq!(answer.body["result"]["at_bookmark"], at.as_str());
    }
    panic!("the export never completed");
}

fn seed_two_tables(sandbox: &TestSandbox, id: &str) {
    rows(
        sandbox,
        id,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, raw BLOB);
         CREATE INDEX t_name ON t (name);
         CREATE TABLE u (k TEXT);
         INSERT INTO t VALUES (1, 'it''s', 1.0, X'00ff'), (2, 'b', 0.1, NULL), (3, 'c', NULL, NULL), (4, 'd', -2.5, X'');
         INSERT INTO u VALUES ('only in u');",
    );
}

#[test]
fn export_polls_to_a_signed_url_that_needs_no_token_and_expires() {
    let sandbox = at_start(|_| {});
    let id = sandbox.create_d1("exported");
    seed_two_tables(&sandbox, &id);
    let before = current(&sandbox, &id);
    let body = json!({"output_format": "polling", "dump_options": {"tables": []}});
    let started = export(&sandbox, &id, body.clone());
    assert_eq!(started.status, 202);
    assert_eq!(started.body["result"]["status"], "active");
    assert_eq!(started.body["result"]["at_bookmark"], before.as_str());
    let busy = query(&sandbox, &id, "SELECT 1");
    assert_eq!((busy.status, busy.code()), (409, Some(7409)));

    let mut polled = body.clone();
    polled["current_bookmark"] = started.body["result"]["at_bookmark"].clone();
    let second = export(&sandbox, &id, polled.clone());
    assert_eq!(second.status, 202);
    let done = export(&sandbox, &id, polled);
    assert_eq!(done.status, 200, "{}", done.body);
    let url = done.body["result"]["result"]["signed_url"]
        .as_str()
        .unwrap();
    assert!(
        done.body["result"]["result"]["filename"]
            .as_str()
            .unwrap()
            .ends_with(".sql")
    );
    assert_eq!(
        rows(&sandbox, &id, "SELECT count(*) AS n FROM t")[0]["n"],
        4
    );

    let (status, _, dump) = fetch("GET", url, Vec::new());
    assert_eq!(status, 200);
    let dump = String::from_utf8(dump).unwrap();
    assert!(
        dump.contains("CREATE TABLE t (id INTEGER PRIMARY KEY"),
        "{dump}"
    );
    assert!(
        dump.contains("INSERT INTO \"t\" VALUES(1,'it''s',1.0,X'00ff');"),
        "{dump}"
    );
    assert!(dump.contains("CREATE INDEX t_name"), "{dump}");
    assert!(
        !dump.contains("BEGIN") && !dump.contains("COMMIT"),
        "{dump}"
    );

    advance(&sandbox, 3600 + 1);
    let (status, _, _) = fetch("GET", url, Vec::new());
    assert_eq!(status, 403, "the signed URL lives one hour");
}

#[test]
fn export_honours_its_dump_options() {
    let sandbox = at_start(|_| {});
    let id = sandbox.create_d1("options");
    seed_two_tables(&sandbox, &id);
    let dump = |options: Value| {
        let (url, _) = export_to_url(&sandbox, &id, options);
        String::from_utf8(fetch("GET", &url, Vec::new()).2).unwrap()
    };
    let only_u = dump(json!({"tables": ["u"]}));
    assert!(only_u.contains("CREATE TABLE u") && only_u.contains("only in u"));
    assert!(
        !only_u.contains("\"t\"") && !only_u.contains("t_name"),
        "{only_u}"
    );
    let no_data = dump(json!({"no_data": true}));
    assert!(no_data.contains("CREATE TABLE t") && !no_data.contains("INSERT"));
    let no_schema = dump(json!({"no_schema": true}));
    assert!(!no_schema.contains("CREATE") && no_schema.contains("INSERT INTO \"u\""));
    let both = export(
        &sandbox,
        &id,
        json!({"output_format": "polling", "dump_options": {"no_data": true, "no_schema": true}}),
    );
    assert_eq!(both.status, 400);
    let unknown = export(
        &sandbox,
        &id,
        json!({"output_format": "polling", "dump_options": {"tables": ["nope"]}}),
    );
    assert_eq!((unknown.status, unknown.code()), (400, Some(7400)));
}

#[test]
fn an_export_nobody_polls_is_cancelled() {
    let sandbox = at_start(|_| {});
    let id = sandbox.create_d1("lapsed");
    let started = export(&sandbox, &id, json!({"output_format": "polling"}));
    let at = started.body["result"]["at_bookmark"].clone();
    advance(&sandbox, 61);
    assert_eq!(query(&sandbox, &id, "SELECT 1").status, 200);
    let late = export(
        &sandbox,
        &id,
        json!({"output_format": "polling", "current_bookmark": at}),
    );
    assert_eq!(late.status, 200);
    assert_eq!(late.body["result"]["status"], "error");
    assert!(
        late.body["result"]["error"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
}

fn import_action(sandbox: &TestSandbox, id: &str, body: Value) -> Answer {
    sandbox.send("POST", &db_path(id, "/import"), Body::Json(body))
}

/// Run the whole import protocol for `sql`; returns the final poll's `result`.
fn import(sandbox: &TestSandbox, id: &str, sql: &str) -> Value {
    let etag = md5_hex(sql.as_bytes());
    let init = import_action(sandbox, id, json!({"action": "init", "etag": etag}));
    assert_eq!(init.status, 200, "{}", init.body);
    let filename = init.body["result"]["filename"].as_str().unwrap().to_owned();
    if let Some(url) = init.body["result"]["upload_url"].as_str() {
        let (status, headers, _) = fetch("PUT", url, sql.as_bytes().to_vec());
        assert_eq!(status, 200);
        let returned = headers["etag"].to_str().unwrap().trim_matches('"');
        assert_eq!(returned, etag);
    }
    let ingest = import_action(
        sandbox,
        id,
        json!({"action": "ingest", "etag": etag, "filename": filename}),
    );
    assert_eq!(ingest.status, 202, "{}", ingest.body);
    let at = ingest.body["result"]["at_bookmark"].clone();
    let poll = import_action(
        sandbox,
        id,
        json!({"action": "poll", "current_bookmark": at}),
    );
    assert_eq!(poll.status, 200, "{}", poll.body);
    poll.body["result"].clone()
}

#[test]
fn an_export_imports_into_an_empty_database_with_equal_content() {
    let sandbox = at_start(|_| {});
    let source = sandbox.create_d1("source");
    seed_two_tables(&sandbox, &source);
    let (url, _) = export_to_url(&sandbox, &source, json!({}));
    let dump = String::from_utf8(fetch("GET", &url, Vec::new()).2).unwrap();
    let target = sandbox.create_d1("target");
    let before = current(&sandbox, &target);
    let done = import(&sandbox, &target, &dump);
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["result"]["num_queries"], 9);
    let final_bookmark = done["result"]["final_bookmark"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(final_bookmark > before);
    let digest = "SELECT quote(id)||quote(name)||quote(score)||quote(raw) AS r FROM t ORDER BY id";
    assert_eq!(
        rows(&sandbox, &source, digest),
        rows(&sandbox, &target, digest)
    );
    let schema = "SELECT type, name, sql FROM sqlite_schema ORDER BY name";
    assert_eq!(
        rows(&sandbox, &source, schema),
        rows(&sandbox, &target, schema)
    );

    let again = import_action(
        &sandbox,
        &target,
        json!({"action": "init", "etag": md5_hex(dump.as_bytes())}),
    );
    assert_eq!(
        again.status, 202,
        "a file uploaded before is ingested at once"
    );
    assert!(again.body["result"].get("upload_url").is_none());
    let polled = import_action(
        &sandbox,
        &target,
        json!({"action": "poll", "current_bookmark": again.body["result"]["at_bookmark"]}),
    );
    assert_eq!(polled.body["result"]["status"], "error", "{}", polled.body);
    assert!(
        polled.body["result"]["error"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "the same CREATE TABLE runs again and fails: {}",
        polled.body
    );
    let idle = import_action(
        &sandbox,
        &target,
        json!({"action": "poll", "current_bookmark": &final_bookmark}),
    );
    assert_eq!(idle.body["result"]["success"], false);
    assert_eq!(
        idle.body["result"]["error"],
        "Not currently importing anything."
    );
}

#[test]
fn a_failed_import_leaves_the_database_as_it_was() {
    let sandbox = at_start(|_| {});
    let id = sandbox.create_d1("atomic-import");
    rows(&sandbox, &id, "CREATE TABLE t (name TEXT)");
    let failed = import(
        &sandbox,
        &id,
        "CREATE TABLE new_table (x);\nINSERT INTO t VALUES ('kept?');\nINSERT INTO nowhere VALUES (1);\n",
    );
    assert_eq!(failed["status"], "error", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("nowhere"));
    assert_eq!(tables(&sandbox, &id), ["t"]);
    assert_eq!(names(&sandbox, &id), Vec::<String>::new());

    let with_begin = import(
        &sandbox,
        &id,
        "BEGIN TRANSACTION;\nINSERT INTO t VALUES ('x');\nCOMMIT;\n",
    );
    assert_eq!(with_begin["status"], "error");
    assert!(
        with_begin["error"]
            .as_str()
            .unwrap()
            .contains("BEGIN TRANSACTION")
    );
    assert_eq!(names(&sandbox, &id), Vec::<String>::new());

    let ingest = import_action(
        &sandbox,
        &id,
        json!({"action": "ingest", "etag": "0".repeat(32), "filename": "other.sql"}),
    );
    assert_eq!(ingest.status, 400);
    let init = import_action(&sandbox, &id, json!({"action": "init", "etag": "xyz"}));
    assert_eq!(init.status, 400);
}

#[test]
fn a_corrupting_sandbox_drops_every_other_imported_row() {
    let sandbox = at_start(|c| c.corrupt_imports = true);
    let id = sandbox.create_d1("corrupt");
    let done = import(
        &sandbox,
        &id,
        "CREATE TABLE t (name TEXT);\nINSERT INTO t VALUES ('a');\nINSERT INTO t VALUES ('b');\nINSERT INTO t VALUES ('c');\nINSERT INTO t VALUES ('d');\n",
    );
    assert_eq!(done["status"], "complete", "the corruption is silent");
    assert_eq!(names(&sandbox, &id), ["a", "c"]);
}

const PARTIAL: &str = "CREATE TABLE made (x); INSERT INTO missing VALUES (1)";

#[test]
fn query_is_one_transaction_by_default() {
    let sandbox = at_start(|_| {});
    let id = sandbox.create_d1("atomic");
    let before = current(&sandbox, &id);
    let answer = query(&sandbox, &id, PARTIAL);
    assert_eq!((answer.status, answer.code()), (400, Some(7500)));
    assert_eq!(tables(&sandbox, &id), Vec::<String>::new());
    assert_eq!(
        current(&sandbox, &id),
        before,
        "a rolled-back write takes no bookmark"
    );
    let begin = query(&sandbox, &id, "BEGIN; CREATE TABLE x (y); COMMIT");
    assert_eq!(begin.status, 400);
    assert!(
        begin.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("state.storage.transaction()")
    );
}

#[test]
fn non_atomic_query_keeps_the_statements_before_a_failure() {
    let sandbox = at_start(|c| c.d1_query_non_atomic = true);
    let id = sandbox.create_d1("non-atomic");
    let before = current(&sandbox, &id);
    let answer = query(&sandbox, &id, PARTIAL);
    assert_eq!((answer.status, answer.code()), (400, Some(7500)));
    assert_eq!(tables(&sandbox, &id), ["made"]);
    assert!(
        current(&sandbox, &id) > before,
        "the kept write has a bookmark"
    );
    let begin = query(&sandbox, &id, "BEGIN; CREATE TABLE x (y); COMMIT");
    assert_eq!(begin.status, 400);
    assert_eq!(tables(&sandbox, &id), ["made"]);
}

#[test]
fn database_details_report_sqlites_own_size() {
    let sandbox = at_start(|_| {});
    let id = sandbox.create_d1("sized");
    seed_two_tables(&sandbox, &id);
    rows(
        &sandbox,
        &id,
        "INSERT INTO u SELECT hex(randomblob(500)) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n)",
    );
    let pages = rows(&sandbox, &id, "PRAGMA page_count")[0]["page_count"]
        .as_i64()
        .unwrap();
    let size = rows(&sandbox, &id, "PRAGMA page_size")[0]["page_size"]
        .as_i64()
        .unwrap();
    let details = sandbox.get(&db_path(&id, ""));
    assert_eq!(details["file_size"], pages * size);
    assert!(pages * size > 200 * 1000);
    assert_eq!(details["num_tables"], 2);
}

fn r2(path: &str) -> String {
    format!("/accounts/{{account}}/r2/buckets{path}")
}

#[test]
fn r2_keeps_backups_in_buckets_across_restarts() {
    let mut sandbox = at_start(|_| {});
    let created = sandbox.send("POST", &r2(""), Body::Json(json!({"name": "lms-backups"})));
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["result"]["creation_date"], START);
    let twice = sandbox.send("POST", &r2(""), Body::Json(json!({"name": "lms-backups"})));
    assert_eq!((twice.status, twice.code()), (409, Some(10004)));
    let bad = sandbox.send("POST", &r2(""), Body::Json(json!({"name": "No_Caps"})));
    assert_eq!(bad.status, 400);
    assert_eq!(sandbox.get(&r2(""))["buckets"][0]["name"], "lms-backups");

    let keys = ["d1/lms-db/1.sql", "d1/lms-db/2.sql", "d1/other/3.sql"];
    for (n, key) in keys.iter().enumerate() {
        advance(&sandbox, 3600);
        let put = sandbox.send(
            "PUT",
            &r2(&format!("/lms-backups/objects/{key}")),
            Body::Raw("application/sql", format!("dump {n}").into_bytes()),
        );
        assert_eq!(put.status, 200, "{}", put.body);
        assert_eq!(
            put.body["result"]["etag"],
            md5_hex(format!("dump {n}").as_bytes())
        );
    }
    let first = sandbox.send(
        "GET",
        &r2("/lms-backups/objects?prefix=d1/lms-db/&per_page=1"),
        Body::None,
    );
    assert_eq!(first.body["result"][0]["key"], "d1/lms-db/1.sql");
    assert_eq!(
        first.body["result"][0]["last_modified"],
        "2026-03-01T13:00:00Z"
    );
    let cursor = first.body["result_info"]["cursor"].as_str().unwrap();
    let second = sandbox.get(&r2(&format!(
        "/lms-backups/objects?prefix=d1/lms-db/&per_page=1&cursor={cursor}"
    )));
    assert_eq!(second[0]["key"], "d1/lms-db/2.sql");
    assert_eq!(second.as_array().unwrap().len(), 1);

    sandbox.restart(|_| {});
    let read = sandbox.send(
        "GET",
        &r2("/lms-backups/objects/d1%2Flms-db%2F2.sql"),
        Body::None,
    );
    assert_eq!(read.status, 200);
    assert_eq!(read.body, Value::String("dump 1".to_owned()));
    let missing = sandbox.send("GET", &r2("/lms-backups/objects/nope"), Body::None);
    assert_eq!((missing.status, missing.code()), (404, Some(10007)));
    let full = sandbox.send("DELETE", &r2("/lms-backups"), Body::None);
    assert_eq!((full.status, full.code()), (409, Some(10008)));
    for key in keys {
        let deleted = sandbox.send(
            "DELETE",
            &r2(&format!("/lms-backups/objects/{key}")),
            Body::None,
        );
        assert_eq!(deleted.status, 200);
    }
    assert_eq!(
        sandbox
            .send("DELETE", &r2("/lms-backups"), Body::None)
            .status,
        200
    );
    assert_eq!(
        sandbox.send("GET", &r2("/lms-backups"), Body::None).status,
        404
    );
}
