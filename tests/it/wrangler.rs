//! Conformance: wrangler, a client no one here wrote, works against the sandbox.
//!
//! `.ci/run` installs a pinned wrangler 4 and exports `LMSINFRA_WRANGLER` (the path of its
//! `wrangler` executable). Without it the test fails under `CI` and otherwise says loudly,
//! outside the test harness's output capture, that it skipped.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{ACCOUNT_ID, Body, Lmsinfra, TOKEN, TestSandbox, root};

/// No wrangler command here needs more than a few seconds; a hang means an outside call.
const TIMEOUT: Duration = Duration::from_secs(60);

fn locate() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("LMSINFRA_WRANGLER")?);
    path.exists().then_some(path)
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// wrangler, pointed at one sandbox's API, with its own home folder.
struct Wrangler {
    bin: PathBuf,
    base_url: String,
    home: tempfile::TempDir,
}

impl Wrangler {
    /// Run with the test token; a failure fails the test.
    fn run(&self, args: &[&str]) -> Run {
        self.run_as(TOKEN, args, "")
    }

    /// Run with `token`, feeding `stdin`; a failure fails the test.
    fn run_as(&self, token: &str, args: &[&str], stdin: &str) -> Run {
        let run = self.spawn(token, args, stdin);
        assert!(
            run.ok,
            "wrangler {args:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    }

    fn spawn(&self, token: &str, args: &[&str], stdin: &str) -> Run {
        let (bin, home) = (&self.bin, self.home.path());
        let mut child = Command::new(bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("TMPDIR", home)
            .env("CLOUDFLARE_API_BASE_URL", &self.base_url)
            .env("CLOUDFLARE_API_TOKEN", token)
            .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            // The banner is where wrangler checks npm for updates.
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("WRANGLER_LOG_PATH", home.join("logs"))
            // Any update check that still happens fails at once instead of reaching npm.
            .env("npm_config_registry", "http://127.0.0.1:9/")
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .current_dir(home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrangler starts");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let started = Instant::now();
        loop {
            if child.try_wait().expect("wait for wrangler").is_some() {
                break;
            }
            if started.elapsed() > TIMEOUT {
                let _ = child.kill();
                panic!(
                    "wrangler {args:?} took over {TIMEOUT:?}: it is waiting on something outside the sandbox"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("wrangler output");
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

fn json_in(run: &Run) -> Value {
    let start = run.stdout.find('[').expect("JSON array in stdout");
    serde_json::from_str(&run.stdout[start..]).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn wrangler_reads_the_seeded_account() {
    let Some(bin) = wrangler_for("wrangler_reads_the_seeded_account") else {
        return;
    };
    let sandbox = TestSandbox::new();
    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home: tempfile::tempdir().expect("temp home"),
    };
    let run = |args: &[&str]| wrangler.run(args);

    let whoami = run(&["whoami"]);
    assert!(
        whoami.stdout.contains("Account API Token"),
        "{}",
        whoami.stdout
    );
    assert!(whoami.stdout.contains(ACCOUNT_ID), "{}", whoami.stdout);
    assert!(whoami.stdout.contains("LMS"), "{}", whoami.stdout);

    let databases = json_in(&run(&["d1", "list", "--json"]));
    assert_eq!(databases.as_array().map(Vec::len), Some(1), "{databases}");
    assert_eq!(databases[0]["name"], "lms-db");
    assert_eq!(databases[0]["uuid"], "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f");

    let secrets = json_in(&run(&["secret", "list", "--name", "lms-api"]));
    let names: Vec<&str> = secrets
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "TALLY_WEBHOOK_SECRET",
            "TALLY_SIGNING_SECRET",
            "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM"
        ]
    );

    let version =
        sandbox.get("/accounts/{account}/workers/scripts/lms-api/versions")["items"][0]["id"]
            .as_str()
            .expect("version id")
            .to_owned();
    let deployments = run(&["deployments", "list", "--name", "lms-api"]);
    assert!(
        deployments.stdout.contains(&format!("(100%) {version}")),
        "{}",
        deployments.stdout
    );

    let value = "wrangler-canary-value-3b9d";
    wrangler.run_as(
        TOKEN,
        &["secret", "put", "NEW_SECRET", "--name", "draft-worker"],
        value,
    );
    assert_eq!(
        sandbox.get("/accounts/{account}/workers/scripts/draft-worker/secrets"),
        serde_json::json!([{"name": "NEW_SECRET", "type": "secret_text"}])
    );
    let state = std::fs::read_to_string(sandbox.state_path()).expect("state file");
    assert!(!state.contains(value));

    let versions = json_in(&run(&[
        "versions",
        "list",
        "--name",
        "draft-worker",
        "--json",
    ]));
    let first = versions[0]["id"].as_str().expect("version id").to_owned();
    let rollback = run(&[
        "rollback",
        &first,
        "--name",
        "draft-worker",
        "--message",
        "back",
        "--yes",
    ]);
    assert!(
        rollback.stdout.contains("* NEW_SECRET"),
        "wrangler lists the changed secret: {}",
        rollback.stdout
    );
    // The secret list describes the newest version, which keeps NEW_SECRET; the rollback
    // serves the first version, which has none.
    let serving = sandbox.get(&format!(
        "/accounts/{{account}}/workers/scripts/draft-worker/versions/{first}"
    ));
    assert_eq!(
        serving["resources"]["bindings"],
        serde_json::json!([]),
        "{serving}"
    );

    let executed = json_in(&run(&[
        "d1",
        "execute",
        "lms-db",
        "--remote",
        "--json",
        "--command",
        "CREATE TABLE courses (title TEXT); INSERT INTO courses VALUES ('Rust'); SELECT title FROM courses",
    ]));
    assert_eq!(
        executed[2]["results"],
        serde_json::json!([{"title": "Rust"}])
    );

    let user = wrangler.run_as("user_token", &["whoami"], "");
    assert!(user.stdout.contains("User API Token"), "{}", user.stdout);
    assert!(user.stdout.contains("ops@example.com"), "{}", user.stdout);

    let created = run(&["d1", "create", "lms-db-staging", "--location", "weur"]);
    assert!(
        created.stdout.contains("lms-db-staging"),
        "{}",
        created.stdout
    );

    let stats = sandbox.sandbox().stats();
    let unmatched: Vec<&String> = stats
        .routes
        .keys()
        .filter(|k| k.contains("(unmatched)"))
        .collect();
    assert!(
        unmatched.is_empty(),
        "wrangler called routes the sandbox does not serve: {stats:?}"
    );
}

/// wrangler, or `None` after saying why the test is skipped (a failure under CI).
fn wrangler_for(test: &str) -> Option<PathBuf> {
    let found = locate();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "LMSINFRA_WRANGLER does not name a wrangler executable; CI must run {test} (.ci/run installs it)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set LMSINFRA_WRANGLER to a wrangler 4 executable (.ci/run installs one)"
        );
    }
    found
}

/// A home folder for wrangler holding the fixture Worker as `index.js`.
fn home_with_the_fixture_worker() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("temp home");
    std::fs::copy(
        root().join("tests/fixtures/worker/index.js"),
        home.path().join("index.js"),
    )
    .expect("worker copied");
    home
}

#[test]
fn wrangler_deploys_the_bindings_of_the_configuration_lmsinfra_writes() {
    let Some(bin) =
        wrangler_for("wrangler_deploys_the_bindings_of_the_configuration_lmsinfra_writes")
    else {
        return;
    };
    let sandbox = TestSandbox::new();
    let created = sandbox.send(
        "POST",
        "/accounts/{account}/d1/database",
        Body::Json(serde_json::json!({ "name": "lms-db-staging" })),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let uuid = created.body["result"]["uuid"].as_str().expect("uuid");

    let home = home_with_the_fixture_worker();
    let config = home.path().join("wrangler.json");
    let written = Lmsinfra::new(&sandbox)
        .args([
            "wrangler-config",
            "staging",
            "--worker",
            "api",
            "--main",
            "index.js",
        ])
        .args([std::ffi::OsStr::new("--write"), config.as_os_str()])
        .output();
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let text = std::fs::read_to_string(&config).expect("configuration written");
    assert!(text.contains(uuid), "{text}");

    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home,
    };
    let run = wrangler.run(&["deploy", "--dry-run", "--env", "staging"]);
    let mut deployed: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("env."))
        .filter_map(|rest| rest.split([' ', '(']).next())
        .collect();
    let manifest = lmsinfra::manifest::load_valid(root(), "staging").expect("staging loads");
    let mut declared: Vec<&str> = manifest.workers["api"]
        .bindings
        .keys()
        .map(String::as_str)
        .collect();
    declared.sort_unstable();
    deployed.sort_unstable();
    assert_eq!(deployed, declared, "{}", run.stdout);
    assert!(
        run.stdout.contains("env.DB (lms-db-staging)"),
        "{}",
        run.stdout
    );
}

#[test]
fn wrangler_secret_bulk_keeps_the_workers_vars_and_bindings() {
    let Some(bin) = wrangler_for("wrangler_secret_bulk_keeps_the_workers_vars_and_bindings") else {
        return;
    };
    let sandbox = TestSandbox::new();
    let settings = "/accounts/{account}/workers/scripts/lms-api/settings";
    let before = sandbox.get(settings)["bindings"].clone();
    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home: tempfile::tempdir().expect("temp home"),
    };
    let file = wrangler.home.path().join("secrets.json");
    std::fs::write(&file, r#"{"BULK_SECRET": "from-bulk"}"#).expect("secrets file");
    // wrangler 4.86 re-sends every other binding as `{name, type}` with no value.
    let run = wrangler.run(&[
        "secret",
        "bulk",
        file.to_str().expect("UTF-8 path"),
        "--name",
        "lms-api",
    ]);
    assert!(
        run.stdout.contains("1 secrets successfully uploaded"),
        "{}",
        run.stdout
    );
    let after = sandbox.get(settings)["bindings"].clone();
    for binding in before.as_array().expect("bindings") {
        assert!(
            after.as_array().expect("bindings").contains(binding),
            "{binding} lost by secret bulk: {after}"
        );
    }
    assert!(
        after
            .as_array()
            .expect("bindings")
            .contains(&serde_json::json!({"name": "BULK_SECRET", "type": "secret_text"})),
        "{after}"
    );
    let allowed = after
        .as_array()
        .expect("bindings")
        .iter()
        .find(|b| b["name"] == "ALLOWED_ORIGINS")
        .expect("the var survives");
    assert_eq!(allowed["type"], "plain_text");
    assert!(allowed["text"].is_string(), "{allowed}");
}

/// The text after `label` on the line that has it.
fn after<'a>(run: &'a Run, label: &str) -> &'a str {
    run.stdout
        .lines()
        .find_map(|line| line.split_once(label).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no `{label}` in:\n{}\n{}", run.stdout, run.stderr))
}

fn serving(sandbox: &TestSandbox, script: &str) -> Value {
    sandbox.get(&format!(
        "/accounts/{{account}}/workers/scripts/{script}/deployments"
    ))["deployments"][0]
        .clone()
}

#[test]
fn wrangler_uploads_deploys_and_rolls_back_versions() {
    let Some(bin) = wrangler_for("wrangler_uploads_deploys_and_rolls_back_versions") else {
        return;
    };
    let sandbox = TestSandbox::new();
    let home = home_with_the_fixture_worker();
    std::fs::write(
        home.path().join("wrangler.json"),
        r#"{"name": "lms-viewer", "main": "index.js", "compatibility_date": "2024-12-01"}"#,
    )
    .expect("configuration written");
    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home,
    };

    let uploaded = wrangler.run(&[
        "versions",
        "upload",
        "--message",
        "first wrangler upload",
        "--tag",
        "abc1234",
    ]);
    let first = after(&uploaded, "Worker Version ID:").to_owned();
    assert_ne!(
        serving(&sandbox, "lms-viewer")["versions"][0]["version_id"],
        first.as_str()
    );

    wrangler.run(&[
        "versions",
        "deploy",
        &format!("{first}@100%"),
        "--message",
        "ship it",
        "--yes",
    ]);
    let deployed = serving(&sandbox, "lms-viewer");
    assert_eq!(deployed["versions"][0]["version_id"], first.as_str());
    assert_eq!(deployed["annotations"]["workers/message"], "ship it");

    let second = wrangler.run(&["deploy", "--message", "deployed by wrangler"]);
    let second = after(&second, "Current Version ID:").to_owned();
    assert_eq!(
        serving(&sandbox, "lms-viewer")["versions"][0]["version_id"],
        second.as_str()
    );

    let rollback = wrangler.run(&["rollback", "--message", "back we go", "--yes"]);
    assert!(rollback.stdout.contains(&first), "{}", rollback.stdout);
    let rolled_back = serving(&sandbox, "lms-viewer");
    assert_eq!(rolled_back["versions"][0]["version_id"], first.as_str());
    assert_eq!(
        rolled_back["annotations"],
        serde_json::json!({"workers/message": "back we go", "workers/triggered_by": "rollback"})
    );

    let versions = wrangler.run(&["versions", "list"]);
    assert!(
        versions.stdout.contains("first wrangler upload") && versions.stdout.contains("abc1234"),
        "{}",
        versions.stdout
    );
    let deployments = wrangler.run(&["deployments", "list"]);
    for message in ["ship it", "back we go", "Rollback"] {
        assert!(
            deployments.stdout.contains(message),
            "{message}: {}",
            deployments.stdout
        );
    }

    // The Worker now serves the rolled-back version on the sandbox's own listener.
    let addr = sandbox.sandbox().addr();
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: lms-viewer.example.workers.dev\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("answer");
    assert!(
        answer.contains(&format!("x-sandbox-version-id: {first}")),
        "{answer}"
    );

    let stats = sandbox.sandbox().stats();
    let unmatched: Vec<&String> = stats
        .routes
        .keys()
        .filter(|k| k.contains("(unmatched)"))
        .collect();
    assert!(
        unmatched.is_empty(),
        "wrangler called routes the sandbox does not serve: {stats:?}"
    );
}

#[test]
fn wrangler_lists_the_messages_of_versions_made_by_settings_changes() {
    let Some(bin) =
        wrangler_for("wrangler_lists_the_messages_of_versions_made_by_settings_changes")
    else {
        return;
    };
    let sandbox = TestSandbox::new();
    let message = "lmsinfra apply production 1a2b3c4 plan 5d6e7f80";
    let settings = serde_json::json!({
        "compatibility_flags": ["nodejs_compat"],
        "annotations": {"workers/message": message, "workers/tag": "1a2b3c4"}
    })
    .to_string();
    let patched = sandbox.send(
        "PATCH",
        "/accounts/{account}/workers/scripts/lms-api/settings",
        crate::support::form(&[("settings", Some("application/json"), &settings)]),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home: tempfile::tempdir().expect("temp home"),
    };
    let versions = wrangler.run(&["versions", "list", "--name", "lms-api"]);
    assert!(versions.stdout.contains(message), "{}", versions.stdout);
    assert!(versions.stdout.contains("1a2b3c4"), "{}", versions.stdout);
    let deployments = wrangler.run(&["deployments", "list", "--name", "lms-api"]);
    assert!(
        deployments.stdout.contains(message),
        "{}",
        deployments.stdout
    );
}

#[test]
fn wrangler_lists_the_versions_and_deployments_lmsinfra_apply_makes() {
    let Some(bin) =
        wrangler_for("wrangler_lists_the_versions_and_deployments_lmsinfra_apply_makes")
    else {
        return;
    };
    let sandbox = TestSandbox::new();
    let project = crate::support::Project::new();
    let mut apply =
        Lmsinfra::new(&sandbox)
            .project(&project)
            .args(["apply", "staging", "--auto-approve"]);
    for name in [
        "TALLY_WEBHOOK_SECRET",
        "TALLY_SIGNING_SECRET",
        "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
        "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
    ] {
        apply = apply
            .env(&format!("WRANGLER_TEST_{name}"), format!("value of {name}"))
            .args(["--secret", &format!("{name}=env:WRANGLER_TEST_{name}")]);
    }
    let applied = apply.run();
    assert_eq!(applied.code, 0, "{applied}");
    let newest =
        &sandbox.get("/accounts/{account}/workers/scripts/lms-api-staging/versions")["items"][0];
    let message = newest["annotations"]["workers/message"]
        .as_str()
        .expect("lmsinfra's version has a message")
        .to_owned();
    assert!(
        message.starts_with("lmsinfra apply staging no-git plan "),
        "{message}"
    );
    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home: tempfile::tempdir().expect("temp home"),
    };
    let versions = wrangler.run(&["versions", "list", "--name", "lms-api-staging", "--json"]);
    let listed = json_in(&versions);
    let found = listed
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["id"] == newest["id"])
        .unwrap_or_else(|| panic!("{}", versions.stdout));
    assert_eq!(found["annotations"]["workers/message"], json!(message));
    let deployments = wrangler.run(&["deployments", "list", "--name", "lms-api-staging"]);
    let head: String = message.chars().take(50).collect();
    assert!(deployments.stdout.contains(&head), "{}", deployments.stdout);
    assert!(
        deployments.stdout.contains(newest["id"].as_str().unwrap()),
        "{}",
        deployments.stdout
    );
}

#[test]
fn wrangler_imports_exports_and_restores_d1_through_the_sandbox() {
    let Some(bin) = wrangler_for("wrangler_imports_exports_and_restores_d1_through_the_sandbox")
    else {
        return;
    };
    let sandbox = TestSandbox::new();
    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home: tempfile::tempdir().expect("temp home"),
    };
    let home = wrangler.home.path().to_owned();
    let count = |table: &str| {
        let rows = json_in(&wrangler.run(&[
            "d1",
            "execute",
            "lms-db",
            "--remote",
            "--json",
            "--command",
            &format!("SELECT count(*) AS n FROM {table}"),
        ]));
        rows[0]["results"][0]["n"].as_i64().expect("count")
    };

    std::fs::write(
        home.join("seed.sql"),
        "CREATE TABLE lessons (id INTEGER PRIMARY KEY, title TEXT);\nINSERT INTO lessons (title) VALUES ('one'), ('two');\n",
    )
    .expect("seed file");
    wrangler.run(&[
        "d1", "execute", "lms-db", "--remote", "--yes", "--file", "seed.sql",
    ]);
    assert_eq!(count("lessons"), 2);
    std::fs::write(
        home.join("more.sql"),
        "INSERT INTO lessons (title) VALUES ('again');\n",
    )
    .expect("second file");
    for _ in 0..2 {
        wrangler.run(&[
            "d1", "execute", "lms-db", "--remote", "--yes", "--file", "more.sql",
        ]);
    }
    assert_eq!(count("lessons"), 4, "a file uploaded before runs again");
    wrangler.run(&[
        "d1",
        "execute",
        "lms-db",
        "--remote",
        "--command",
        "DELETE FROM lessons WHERE title = 'again'",
    ]);
    assert_eq!(count("lessons"), 2);

    let info = wrangler.run(&["d1", "time-travel", "info", "lms-db", "--json"]);
    let start = info.stdout.find('{').expect("JSON in stdout");
    let bookmark: Value = serde_json::from_str(&info.stdout[start..]).expect("JSON");
    let bookmark = bookmark["bookmark"].as_str().expect("bookmark").to_owned();

    std::fs::write(
        home.join("broken.sql"),
        "INSERT INTO lessons (title) VALUES ('three');\nINSERT INTO nowhere VALUES (1);\n",
    )
    .expect("broken file");
    let broken = wrangler.spawn(
        TOKEN,
        &[
            "d1",
            "execute",
            "lms-db",
            "--remote",
            "--yes",
            "--file",
            "broken.sql",
        ],
        "",
    );
    assert!(!broken.ok, "{}", broken.stdout);
    assert_eq!(count("lessons"), 2, "a failed import changes nothing");

    wrangler.run(&[
        "d1",
        "export",
        "lms-db",
        "--remote",
        "--output",
        "backup.sql",
    ]);
    let dump = std::fs::read_to_string(home.join("backup.sql")).expect("export written");
    assert!(
        dump.contains("INSERT INTO \"lessons\" VALUES(2,'two');"),
        "{dump}"
    );

    wrangler.run(&[
        "d1",
        "execute",
        "lms-db",
        "--remote",
        "--command",
        "INSERT INTO lessons (title) VALUES ('later')",
    ]);
    assert_eq!(count("lessons"), 3);
    let restored = wrangler.run(&[
        "d1",
        "time-travel",
        "restore",
        "lms-db",
        "--bookmark",
        &bookmark,
        "--json",
    ]);
    assert!(
        restored.stdout.contains("previous_bookmark"),
        "{}",
        restored.stdout
    );
    assert_eq!(count("lessons"), 2);

    let stats = sandbox.sandbox().stats();
    assert!(
        !stats.routes.keys().any(|k| k.contains("(unmatched)")),
        "wrangler called routes the sandbox does not serve: {stats:?}"
    );
}

#[test]
fn one_configuration_file_holds_every_environment_and_wrangler_deploys_each() {
    let Some(bin) =
        wrangler_for("one_configuration_file_holds_every_environment_and_wrangler_deploys_each")
    else {
        return;
    };
    let sandbox = TestSandbox::new();
    let created = sandbox.send(
        "POST",
        "/accounts/{account}/d1/database",
        Body::Json(serde_json::json!({ "name": "lms-db-staging" })),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let home = home_with_the_fixture_worker();
    let config = home.path().join("w.json");
    let write = |args: &[&str], path: &std::path::Path| {
        Lmsinfra::new(&sandbox)
            .args(["wrangler-config", "--worker", "api"])
            .args(args)
            .args([std::ffi::OsStr::new("--write"), path.as_os_str()])
            .code(0)
            .run()
    };
    write(&["production", "--main", "index.js"], &config);
    // A key lmsinfra does not manage, added by hand between the two writes.
    let mut edited: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("written")).expect("JSON");
    edited["observability"] = serde_json::json!({ "enabled": true });
    std::fs::write(&config, edited.to_string()).expect("edited");
    let merged = write(&["staging"], &config);
    assert!(
        merged.stderr.contains("merged staging into"),
        "{}",
        merged.stderr
    );
    let both: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("written")).expect("JSON");
    assert_eq!(both["name"], "lms-api", "{both}");
    assert_eq!(both["env"]["staging"]["name"], "lms-api-staging", "{both}");
    assert_eq!(
        both["observability"],
        serde_json::json!({ "enabled": true })
    );

    let every = home.path().join("every.json");
    write(&["--all", "--main", "index.js"], &every);
    let every: Value =
        serde_json::from_str(&std::fs::read_to_string(&every).expect("written")).expect("JSON");
    assert_eq!(every["d1_databases"], both["d1_databases"]);
    assert_eq!(every["env"], both["env"]);

    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home,
    };
    for (environment, database) in [("production", "lms-db"), ("staging", "lms-db-staging")] {
        let run = wrangler.run(&[
            "deploy",
            "--dry-run",
            "--config",
            "w.json",
            "--env",
            environment,
        ]);
        assert!(
            run.stdout.contains(&format!("env.DB ({database})")),
            "{environment}: {}",
            run.stdout
        );
    }
}

#[test]
fn wrangler_works_against_the_sandbox_command_with_no_flags() {
    use std::io::BufRead;
    let Some(bin) = wrangler_for("wrangler_works_against_the_sandbox_command_with_no_flags") else {
        return;
    };
    let project = tempfile::tempdir().expect("project");
    std::fs::create_dir_all(project.path().join("examples/sandbox")).expect("seed folder");
    std::fs::copy(
        crate::support::audited_seed(),
        project.path().join("examples/sandbox/audited-account.json"),
    )
    .expect("seed copied");
    let mut child = Stopped(
        Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
            .args(["--color", "never", "--dir"])
            .arg(project.path())
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("lmsinfra sandbox starts"),
    );
    let mut lines = std::io::BufReader::new(child.0.stderr.take().expect("stderr")).lines();
    let mut banner = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        let last = line.starts_with("export CLOUDFLARE_ACCOUNT_ID=");
        banner.push(line);
        if last {
            break;
        }
    }
    // The sandbox keeps logging; its stderr is drained so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let exported = |name: &str| {
        banner
            .iter()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(str::to_owned)
    };
    let state = project.path().join(".lmsinfra/sandbox.json");
    let (base_url, token, account) = (
        exported("CLOUDFLARE_API_BASE_URL"),
        exported("CLOUDFLARE_API_TOKEN"),
        exported("CLOUDFLARE_ACCOUNT_ID"),
    );
    let home = tempfile::tempdir().expect("temp home");
    for file in ["index.js", "wrangler.jsonc"] {
        std::fs::copy(
            root().join("examples/worker").join(file),
            home.path().join(file),
        )
        .expect("example Worker copied");
    }
    let runs = base_url
        .clone()
        .zip(token.clone())
        .map(|(base_url, token)| {
            let wrangler = Wrangler {
                bin,
                base_url,
                home,
            };
            let whoami = wrangler.run_as(&token, &["whoami"], "");
            let databases = json_in(&wrangler.run_as(&token, &["d1", "list", "--json"], ""));
            let deployed = wrangler.run_as(&token, &["deploy"], "");
            (whoami.stdout, databases, deployed.stdout)
        });
    let saved = std::fs::read_to_string(&state).unwrap_or_default();
    drop(child);

    let banner = banner.join("\n");
    assert_eq!(account.as_deref(), Some(ACCOUNT_ID), "{banner}");
    assert!(
        banner.contains(&format!("sandbox: state {}", state.display())),
        "{banner}"
    );
    let (whoami, databases, deployed) = runs.unwrap_or_else(|| panic!("no exports: {banner}"));
    assert!(whoami.contains(ACCOUNT_ID), "{whoami}");
    assert_eq!(databases[0]["name"], "lms-db", "{databases}");
    assert!(deployed.contains("Current Version ID"), "{deployed}");
    assert!(
        saved.contains("lms-example"),
        "the deploy is in the project's state file"
    );
}

/// A child process that is killed and reaped when the test ends, passed or not.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn wrangler_finds_nothing_to_apply_after_apply_runs_the_lms_migrations() {
    let Some(bin) =
        wrangler_for("wrangler_finds_nothing_to_apply_after_apply_runs_the_lms_migrations")
    else {
        return;
    };
    let sandbox = TestSandbox::new();
    crate::apply::with_secrets(Lmsinfra::new(&sandbox).args([
        "apply",
        "staging",
        "--auto-approve",
    ]))
    .code(0)
    .run();
    let found = sandbox.get("/accounts/{account}/d1/database?name=lms-db-staging");
    let id = found[0]["uuid"].as_str().expect("lms-db-staging exists");
    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home: tempfile::tempdir().expect("temp home"),
    };
    let project = wrangler.home.path().join("project");
    let migrations = project.join("migrations");
    std::fs::create_dir_all(&migrations).expect("migrations/ is made");
    for entry in std::fs::read_dir(root().join("migrations")).expect("the LMS's migrations") {
        let entry = entry.expect("an entry");
        if entry.file_type().expect("a type").is_file() {
            std::fs::copy(entry.path(), migrations.join(entry.file_name())).expect("copied");
        }
    }
    let config = project.join("wrangler.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"lms-api-staging\"\ncompatibility_date = \"2024-12-01\"\n\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"lms-db-staging\"\ndatabase_id = \"{id}\"\nmigrations_dir = \"migrations\"\n"
        ),
    )
    .expect("wrangler.toml is written");
    let config = config.to_str().expect("a UTF-8 path");
    let listed = wrangler.run(&[
        "d1",
        "migrations",
        "list",
        "lms-db-staging",
        "--remote",
        "--config",
        config,
    ]);
    assert!(
        listed.stdout.contains("No migrations to apply"),
        "{}\n{}",
        listed.stdout,
        listed.stderr
    );
}

#[test]
fn wrangler_deploy_of_the_configuration_lmsinfra_writes_keeps_workers_logs_on() {
    let Some(bin) =
        wrangler_for("wrangler_deploy_of_the_configuration_lmsinfra_writes_keeps_workers_logs_on")
    else {
        return;
    };
    // wrangler turns Workers Logs off on deploy when its configuration has no `observability`
    // (workers-sdk#6776); the configuration lmsinfra writes carries the manifest's. Staging
    // without its required secrets, so apply needs none.
    let sandbox = TestSandbox::new();
    let project = crate::support::Project::new();
    project.edit("staging", |text| {
        text.lines()
            .filter(|line| !line.starts_with("    secrets:") && !line.starts_with("      - "))
            .map(|line| format!("{line}\n"))
            .collect()
    });
    let staging = |args: &[&str]| Lmsinfra::new(&sandbox).project(&project).args(args);
    staging(&["apply", "staging", "--auto-approve", "--no-verify"])
        .code(0)
        .run();
    let logs = || {
        sandbox.get("/accounts/{account}/workers/scripts/lms-api-staging/script-settings")
            ["observability"]
            .clone()
    };
    assert_eq!(logs()["enabled"], true, "{}", logs());

    let home = home_with_the_fixture_worker();
    let config = home.path().join("wrangler.json");
    staging(&[
        "wrangler-config",
        "staging",
        "--worker",
        "api",
        "--main",
        "index.js",
    ])
    .args([std::ffi::OsStr::new("--write"), config.as_os_str()])
    .code(0)
    .run();
    let wrangler = Wrangler {
        bin,
        base_url: sandbox.base_url(),
        home,
    };
    wrangler.run(&["deploy", "--env", "staging"]);
    assert_eq!(logs()["enabled"], true, "{}", logs());
    staging(&["plan", "staging", "--no-probe", "--detailed-exitcode"])
        .code(0)
        .run();
}
