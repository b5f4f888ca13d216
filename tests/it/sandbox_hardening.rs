//! The sandbox as a server that a client cannot freeze, make lose data or read the host through.
//!
//! Requests that could hang on a broken sandbox go over a raw `TcpStream` with a read timeout,
//! so a regression fails the test instead of freezing the suite.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use lmsinfra_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{ACCOUNT_ID, Body, TOKEN, TestSandbox, secret_digest};

const D1: &str = "/accounts/{account}/d1/database";
const SCRIPTS: &str = "/accounts/{account}/workers/scripts";
/// Long enough for any answer of a healthy sandbox on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);
const RUNAWAY: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const TRANSACTION_REFUSAL: &str = "please use the state.storage.transaction()";

/// One HTTP/1.1 request on its own connection; `None` when no answer came within `PATIENCE`.
fn raw(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let path = format!("/client/v4{}", path.replace("{account}", ACCOUNT_ID));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn create_database(sandbox: &TestSandbox, name: &str) -> String {
    let created = sandbox.send("POST", D1, Body::Json(json!({"name": name})));
    assert_eq!(created.status, 200, "{}", created.body);
    created.body["result"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned()
}

/// `POST …/query` over a raw connection; panics when the sandbox does not answer.
fn query(sandbox: &TestSandbox, uuid: &str, sql: &str) -> (u16, Value) {
    raw(
        sandbox.sandbox().addr(),
        "POST",
        &format!("{D1}/{uuid}/query"),
        Some(&json!({"sql": sql})),
    )
    .unwrap_or_else(|| panic!("no answer to {sql:?}"))
}

fn error_message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn count(sandbox: &TestSandbox, uuid: &str, table: &str) -> i64 {
    let (status, body) = query(sandbox, uuid, &format!("SELECT count(*) AS n FROM {table}"));
    assert_eq!(status, 200, "{body}");
    body["result"][0]["results"][0]["n"].as_i64().expect("n")
}

#[test]
fn a_runaway_query_is_stopped_at_the_time_limit() {
    let sandbox = TestSandbox::with(|config| {
        config.d1_query_timeout = Some(Duration::from_millis(200));
    });
    let uuid = create_database(&sandbox, "runaway");

    let (status, body) = query(&sandbox, &uuid, RUNAWAY);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], 7500, "{body}");
    assert!(error_message(&body).contains("exceeded timeout"), "{body}");
    // The database serves the next query.
    let (status, body) = query(&sandbox, &uuid, "SELECT 1 AS one");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["results"][0]["one"], 1);
}

#[test]
fn a_slow_query_does_not_block_other_routes() {
    let sandbox = TestSandbox::with(|config| {
        config.d1_query_timeout = Some(Duration::from_secs(5));
    });
    let uuid = create_database(&sandbox, "slow");
    let other = create_database(&sandbox, "other");
    let addr = sandbox.sandbox().addr();
    let path = format!("{D1}/{uuid}/query");
    let runaway =
        std::thread::spawn(move || raw(addr, "POST", &path, Some(&json!({"sql": RUNAWAY}))));
    std::thread::sleep(Duration::from_millis(300));

    for route in [D1.to_owned(), SCRIPTS.to_owned()] {
        let (status, body) = raw(addr, "GET", &route, None)
            .unwrap_or_else(|| panic!("GET {route} waited for the running query"));
        assert_eq!(status, 200, "GET {route}: {body}");
    }
    // Another database answers queries (only the busy one is serialised, as on D1).
    let (status, body) = query(&sandbox, &other, "SELECT 1 AS one");
    assert_eq!(status, 200, "{body}");
    let finished_early = runaway.is_finished();
    let (status, body) = runaway
        .join()
        .expect("thread")
        .expect("the runaway query is answered");
    assert!(
        !finished_early,
        "the query ended before the other routes were tried: {body}"
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("exceeded timeout"), "{body}");
}

#[test]
fn query_results_are_capped_like_d1() {
    let sandbox = TestSandbox::new();
    let uuid = create_database(&sandbox, "big");

    // One value over D1's 2,000,000-byte row limit.
    let (status, body) = query(&sandbox, &uuid, "SELECT hex(zeroblob(1000001)) AS v");
    assert_eq!(status, 400, "{}", error_message(&body));
    assert!(
        error_message(&body).contains("too big"),
        "{}",
        error_message(&body)
    );

    // 30 rows of 2 MB: over D1's 50 MB result limit.
    let (status, body) = query(
        &sandbox,
        &uuid,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 30) \
         SELECT hex(zeroblob(999999)) AS v FROM c",
    );
    assert_eq!(status, 400, "{}", error_message(&body));
    assert_eq!(body["errors"][0]["code"], 7500);
    assert!(
        error_message(&body).contains("50000000 bytes"),
        "{}",
        error_message(&body)
    );
}

#[test]
fn transaction_statements_are_refused() {
    let sandbox = TestSandbox::new();
    let uuid = create_database(&sandbox, "tx");
    for sql in [
        "BEGIN",
        "BEGIN TRANSACTION",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT s",
        "RELEASE s",
        "ROLLBACK TO s",
    ] {
        let (status, body) = query(&sandbox, &uuid, sql);
        assert_eq!(status, 400, "{sql}: {body}");
        assert_eq!(body["errors"][0]["code"], 7500, "{sql}: {body}");
        assert!(
            error_message(&body).contains(TRANSACTION_REFUSAL),
            "{sql}: {body}"
        );
    }
}

#[test]
fn a_commit_inside_a_failing_batch_applies_nothing() {
    let sandbox = TestSandbox::new();
    let uuid = create_database(&sandbox, "batch");
    let (status, body) = query(&sandbox, &uuid, "CREATE TABLE t (x INTEGER)");
    assert_eq!(status, 200, "{body}");

    for sql in [
        "INSERT INTO t VALUES (1); COMMIT; INSERT INTO missing VALUES (2)",
        "INSERT INTO t VALUES (1); END; BEGIN; INSERT INTO t VALUES (2); SELECT * FROM missing",
        "INSERT INTO t VALUES (1); SAVEPOINT s; RELEASE s; SELECT * FROM missing",
    ] {
        let (status, body) = query(&sandbox, &uuid, sql);
        assert_eq!(status, 400, "{sql}: {body}");
        assert_eq!(count(&sandbox, &uuid, "t"), 0, "{sql} left rows behind");
    }
    // The request's own transaction still commits a good batch.
    let (status, body) = query(&sandbox, &uuid, "INSERT INTO t VALUES (1)");
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&sandbox, &uuid, "t"), 1);
}

#[test]
fn database_paths_are_not_revealed() {
    let sandbox = TestSandbox::new();
    let uuid = create_database(&sandbox, "paths");
    let dir = sandbox
        .state_path()
        .parent()
        .expect("dir")
        .to_string_lossy()
        .into_owned();
    for sql in [
        "PRAGMA database_list",
        "pragma DATABASE_LIST",
        "PRAGMA main.database_list",
        "SELECT file FROM pragma_database_list",
        "SELECT * FROM pragma_database_list()",
    ] {
        let (status, body) = query(&sandbox, &uuid, sql);
        let text = body.to_string();
        assert!(!text.contains(&dir), "{sql} revealed {dir}: {text}");
        assert!(!text.contains(".sqlite"), "{sql} revealed a file: {text}");
        assert_eq!(status, 400, "{sql}: {text}");
        assert!(
            error_message(&body).contains("not authorized"),
            "{sql}: {text}"
        );
    }
}

#[test]
fn a_second_sandbox_on_the_same_state_refuses_to_start() {
    let mut first = TestSandbox::new();
    let state = first.state_path();

    let second = Sandbox::start(SandboxConfig {
        state: Some(state.clone()),
        ..SandboxConfig::default()
    });
    let error = second.expect_err("a second sandbox started on a state file in use");
    let message = error.to_string();
    assert!(
        message.contains(&state.display().to_string()),
        "the error does not name the state file: {message}"
    );
    assert!(message.contains("another sandbox"), "{message}");

    // The first still serves, and a restart (the first stopped) starts.
    assert_eq!(
        first.send("GET", D1, Body::None).status,
        200,
        "the first sandbox stopped serving"
    );
    first.restart(|_| {});
    assert_eq!(first.send("GET", D1, Body::None).status, 200);
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

#[cfg(unix)]
#[test]
fn the_state_file_is_private_and_saving_leaves_no_temp_file() {
    use std::os::unix::fs::PermissionsExt;

    let sandbox = TestSandbox::new();
    let state = sandbox.state_path();
    let dir = state.parent().expect("dir").to_owned();
    create_database(&sandbox, "saved");
    let mode = std::fs::metadata(&state)
        .expect("state")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "state file mode {mode:o}");
    assert_eq!(temp_files(&dir), Vec::<String>::new());

    // A save that fails (the state file became a folder) leaves no temporary file either.
    std::fs::remove_file(&state).expect("remove state");
    std::fs::create_dir(&state).expect("folder in its place");
    let failed = sandbox.send("POST", D1, Body::Json(json!({"name": "unsaved"})));
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert_eq!(temp_files(&dir), Vec::<String>::new());
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let sandbox = TestSandbox::with(|config| {
        config.header_read_timeout = Some(Duration::from_millis(300));
    });
    let mut stream = TcpStream::connect(sandbox.sandbox().addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
        .write_all(b"GET /client/v4/us")
        .expect("half a request line");
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection stayed open: {e}"),
        }
    }
    // The sandbox still serves complete requests.
    assert_eq!(sandbox.send("GET", D1, Body::None).status, 200);
}

fn state_json(sandbox: &TestSandbox) -> Value {
    let text = std::fs::read_to_string(sandbox.state_path()).expect("state");
    serde_json::from_str(&text).expect("state is JSON")
}

fn put_secret(sandbox: &TestSandbox, value: &str) {
    let put = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/lms-api/secrets"),
        Body::Json(json!({"name": "SALTED", "text": value, "type": "secret_text"})),
    );
    assert_eq!(put.status, 200, "{}", put.body);
}

#[test]
fn secret_digests_are_salted_per_state() {
    let one = TestSandbox::new();
    let two = TestSandbox::new();
    put_secret(&one, "hunter2");
    put_secret(&two, "hunter2");
    let (one, two) = (state_json(&one), state_json(&two));
    let digest = |state: &Value| {
        state["account"]["scripts"]["lms-api"]["secrets"]["SALTED"]
            .as_str()
            .expect("digest")
            .to_owned()
    };
    let unsalted = hex::encode(Sha256::digest(b"hunter2"));
    assert!(!one.to_string().contains(&unsalted), "an unsalted digest");
    assert_ne!(digest(&one), digest(&two), "two states share a salt");
    assert_eq!(digest(&one), secret_digest(&one, "hunter2"));
    assert_eq!(digest(&two), secret_digest(&two, "hunter2"));
}

#[test]
fn a_state_file_without_a_salt_still_loads_and_is_salted() {
    let writer = TestSandbox::new();
    put_secret(&writer, "hunter2");
    // The state as older sandboxes wrote it: no salt, digests of the bare values.
    let mut old = state_json(&writer);
    old["account"]
        .as_object_mut()
        .expect("account")
        .remove("secret_salt");
    let unsalted = hex::encode(Sha256::digest(b"hunter2"));
    let script = &mut old["account"]["scripts"]["lms-api"];
    script["secrets"]["SALTED"] = json!(unsalted);
    for version in script["versions"].as_array_mut().expect("versions") {
        if version["secrets"].get("SALTED").is_some() {
            version["secrets"]["SALTED"] = json!(unsalted);
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let old_state = dir.path().join("old-state.json");
    std::fs::write(&old_state, old.to_string()).expect("write old state");

    let reader = TestSandbox::with(|config| config.seed = Some(old_state));
    let migrated = state_json(&reader);
    assert!(
        migrated["account"]["secret_salt"]
            .as_str()
            .is_some_and(|salt| !salt.is_empty()),
        "no salt after loading"
    );
    assert!(
        !migrated.to_string().contains(&unsalted),
        "an unsalted digest"
    );
    let script = &migrated["account"]["scripts"]["lms-api"];
    let expected = secret_digest(&migrated, "hunter2");
    assert_eq!(script["secrets"]["SALTED"], expected.as_str());
    // Every version's copy was migrated the same way, so versions still compare equal.
    let versions = script["versions"].as_array().expect("versions");
    let last = versions.last().expect("a version");
    assert_eq!(last["secrets"]["SALTED"], expected.as_str());
}
