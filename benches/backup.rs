//! Whether `lmsinfra backup` keeps its memory flat whatever the database's size.
//!
//! A backup streams the export's dump from its signed URL to disk, so its peak memory should
//! not grow with the database. The benchmark fills a sandbox D1 database past 200 MB (one
//! `INSERT … SELECT` over a recursive CTE, so Time Travel takes one snapshot), runs the real
//! binary `lmsinfra backup staging --out DIR` as a child process against it, reads the child's
//! peak resident set with `wait4`, and checks the file it wrote. It prints the figures, then
//! PASS/FAIL for the target (peak RSS under 64 MiB), and exits non-zero on a miss. Run it with
//! `cargo bench --bench backup`; it is never part of `cargo test`.

#[path = "support/child.rs"]
mod child;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use lmsinfra_sandbox::{RateLimit, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const ACCOUNT_ID: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "bench-token";
const MIB: u64 = 1024 * 1024;
/// The database must be larger than this.
const DATABASE_AT_LEAST: u64 = 200 * MIB;
/// The target: the backup process's peak resident set stays under this.
const PEAK_RSS_LIMIT: u64 = 64 * MIB;
/// Rows of 1,000 hex characters each.
const ROWS: u64 = 215_000;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One API call to the sandbox; its `result`.
fn call(
    runtime: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let url = format!("{}/accounts/{ACCOUNT_ID}{path}", sandbox.base_url());
    runtime.block_on(async {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let answer: Value = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("the sandbox answers")
            .json()
            .await
            .expect("a JSON answer");
        assert_eq!(answer["success"], true, "{path}: {answer}");
        answer["result"].clone()
    })
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = Sandbox::start(SandboxConfig {
        state: Some(dir.path().join("state.json")),
        seed: Some(root().join("examples/sandbox/audited-account.json")),
        rate_limit: RateLimit {
            requests: u32::MAX,
            window: Duration::from_secs(300),
        },
        d1_query_timeout: Some(Duration::from_secs(600)),
        ..SandboxConfig::default()
    })
    .expect("sandbox starts");

    let created = call(
        &runtime,
        &sandbox,
        "POST",
        "/d1/database",
        json!({"name": "lms-db-staging"}),
    );
    let uuid = created["uuid"].as_str().expect("uuid").to_owned();
    let fill = Instant::now();
    call(
        &runtime,
        &sandbox,
        "POST",
        &format!("/d1/database/{uuid}/query"),
        json!({"sql": format!(
            "CREATE TABLE lessons (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
             INSERT INTO lessons SELECT i, hex(randomblob(500)) FROM n;"
        )}),
    );
    let info = call(
        &runtime,
        &sandbox,
        "GET",
        &format!("/d1/database/{uuid}"),
        Value::Null,
    );
    let size = info["file_size"].as_u64().expect("the database's size");
    println!(
        "database: {:.1} MiB, {ROWS} rows (filled in {:.1} s)",
        size as f64 / MIB as f64,
        fill.elapsed().as_secs_f64()
    );

    let out = dir.path().join("backups");
    std::fs::create_dir(&out).expect("backups/");
    let (code, elapsed, peak_rss) = child::run(
        Stdio::inherit(),
        Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
            .args(["--color", "never", "-q", "--dir"])
            .arg(root())
            .args(["backup", "staging", "--out"])
            .arg(&out)
            .env("CLOUDFLARE_API_BASE_URL", sandbox.base_url())
            .env("CLOUDFLARE_API_TOKEN", TOKEN)
            .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID),
    );
    assert_eq!(code, 0, "backup exited {code}");
    let files: Vec<_> = std::fs::read_dir(&out)
        .expect("backups/")
        .map(|e| e.expect("an entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one backup file: {files:?}");
    let dump = std::fs::metadata(&files[0]).expect("the backup").len();
    println!(
        "backup:   {:.1} MiB dump in {:.1} s, peak RSS {:.1} MiB (lmsinfra backup staging --out DIR, wait4)",
        dump as f64 / MIB as f64,
        elapsed.as_secs_f64(),
        peak_rss as f64 / MIB as f64
    );
    let sized = size > DATABASE_AT_LEAST;
    let met = peak_rss < PEAK_RSS_LIMIT;
    println!(
        "{} database larger than {} MiB: {:.1} MiB",
        if sized { "PASS" } else { "FAIL" },
        DATABASE_AT_LEAST / MIB,
        size as f64 / MIB as f64
    );
    println!(
        "{} backup peak RSS < {} MiB: {:.1} MiB",
        if met { "PASS" } else { "FAIL" },
        PEAK_RSS_LIMIT / MIB,
        peak_rss as f64 / MIB as f64
    );
    if sized && met {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
