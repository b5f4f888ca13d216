//! The real binary in front of a hostile API: an answer that echoes the request, a list that
//! claims four billion pages, pages that never end, a 100 MB body, a body that drips a byte a
//! second. Each run ends with one clear error, in bounded memory, and prints neither the token
//! nor a secret value at any verbosity.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::proxy::{Proxy, Reply, Seen, drip, endless_body};
use crate::support::{Lmsinfra, Measured, Run, TestSandbox};

const TOKEN: &str = "canary-token-0d6f2a91";
/// The value every `--secret` of the echo scenario carries.
const SECRET: &str = "canary-secret-7c3e55b0";
/// Peak memory no scenario may reach; a plan of the sandbox account needs a tenth of it.
const RSS_CEILING: u64 = 256 * 1024 * 1024;
/// A scenario still running after this long has hung; it is killed and fails.
const HANG: Duration = Duration::from_secs(120);

/// The secrets staging's API Worker requires.
const SECRETS: [&str; 4] = [
    "TALLY_WEBHOOK_SECRET",
    "TALLY_SIGNING_SECRET",
    "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
    "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
];

fn sandbox() -> TestSandbox {
    TestSandbox::with(|config| config.token = Some(TOKEN.to_owned()))
}

fn through(proxy: &Proxy, sandbox: &TestSandbox) -> Lmsinfra {
    Lmsinfra::new(sandbox)
        .env("CLOUDFLARE_API_BASE_URL", proxy.base_url())
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
}

fn plan(proxy: &Proxy, sandbox: &TestSandbox) -> Lmsinfra {
    through(proxy, sandbox).args(["plan", "staging", "--no-probe"])
}

fn apply(proxy: &Proxy, sandbox: &TestSandbox) -> Lmsinfra {
    let mut command = through(proxy, sandbox).args(["apply", "staging", "--auto-approve"]);
    for (i, name) in SECRETS.iter().enumerate() {
        let var = format!("LMSINFRA_HOSTILE_SECRET_{i}");
        command = command
            .env(&var, SECRET)
            .args(["--secret", &format!("{name}=env:{var}")]);
    }
    command
}

/// Run `command` at default verbosity and at `-vvv`; both fail with `expected` in one error,
/// print no canary, and stay under the memory ceiling. Returns the default run, whose figures
/// are printed for the record.
fn hostile(name: &str, command: impl Fn() -> Lmsinfra, expected: &str) -> Measured {
    let measured = command().output_measured(HANG);
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    eprintln!(
        "{name}: exit {}, {:.1} s, peak RSS {:.1} MiB (this test process: {:.1} MiB)",
        measured.run.code,
        measured.wall.as_secs_f64(),
        mib(measured.peak_rss),
        mib(measured.inherited),
    );
    let run = &measured.run;
    assert_eq!(run.code, 1, "{name}: {run}");
    assert!(unwrapped(&run.stderr).contains(expected), "{name}: {run}");
    assert!(
        run.stderr.len() < 16 * 1024,
        "{name}: {} bytes of stderr",
        run.stderr.len()
    );
    // The kernel's figure is the larger of the child's own peak and this process's peak when
    // the child started (it starts as a copy of this process), which cannot pass this process's
    // peak now. So a figure above both this process's peak and the ceiling is the child's own.
    assert!(
        measured.peak_rss <= RSS_CEILING.max(crate::support::high_water_mark()),
        "{name}: peak RSS {} bytes",
        measured.peak_rss
    );
    let loud = Run::from(command().arg("-vvv").output());
    assert_eq!(loud.code, 1, "{name} -vvv: {loud}");
    for run in [run, &loud] {
        for canary in [TOKEN, SECRET] {
            assert!(
                !run.stdout.contains(canary),
                "{name}: {canary} on stdout: {run}"
            );
            assert!(
                !run.stderr.contains(canary),
                "{name}: {canary} on stderr: {run}"
            );
        }
    }
    measured
}

/// A report's text with its wrapping undone: each line without the frame drawn beside it,
/// joined with single spaces.
fn unwrapped(report: &str) -> String {
    report
        .lines()
        .map(|line| line.trim().trim_start_matches(['x', '|']).trim())
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_d1_list(seen: &Seen) -> bool {
    seen.method == Method::GET && seen.path.ends_with("/d1/database")
}

/// An error envelope whose message repeats the request, headers and body, then runs on for 3 MB.
fn echo(seen: &Seen) -> Reply {
    let message = format!(
        "bad request: {} {} Authorization: {} body: {}{}",
        seen.method,
        seen.path,
        seen.authorization(),
        String::from_utf8_lossy(&seen.body),
        " and so on".repeat(300_000)
    );
    Reply::Json(
        StatusCode::BAD_REQUEST,
        json!({"success": false, "errors": [{"code": 10001, "message": message}], "messages": [], "result": null}),
    )
}

/// A D1 list page of one database, claiming a billion in all.
fn d1_page(page: u32, name: &str) -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({
            "success": true, "errors": [], "messages": [],
            "result": [{"uuid": format!("00000000-0000-4000-8000-{:012}", page), "name": name, "created_at": "2024-01-01T00:00:00Z"}],
            "result_info": {"page": page, "per_page": 1000, "count": 1, "total_count": 1_000_000_000u64},
        }),
    )
}

#[test]
fn an_error_that_echoes_the_token_is_printed_scrubbed_and_cut() {
    let sandbox = sandbox();
    let proxy = Proxy::start(sandbox.base_url(), echo);
    let measured = hostile("echo (plan)", || plan(&proxy, &sandbox), "[redacted]");
    assert!(
        measured.run.stderr.contains("bytes cut"),
        "{}",
        measured.run
    );
}

#[test]
fn an_error_that_echoes_a_secret_write_is_printed_scrubbed() {
    let sandbox = sandbox();
    let proxy = Proxy::start(sandbox.base_url(), |seen| {
        if seen.method == Method::PATCH && seen.path.ends_with("/settings") {
            echo(seen)
        } else {
            Reply::Forward
        }
    });
    hostile("echo (apply)", || apply(&proxy, &sandbox), "[redacted]");
}

#[test]
fn four_billion_pages_are_refused_before_any_is_fetched() {
    let sandbox = sandbox();
    let proxy = Proxy::start(sandbox.base_url(), |seen| {
        if is_d1_list(seen) && seen.page == Some(1) {
            Reply::Rewrite(Box::new(|answer: &mut Value| {
                answer["result_info"]["total_pages"] = json!(4_294_967_295u32);
            }))
        } else {
            Reply::Forward
        }
    });
    hostile(
        "total_pages 4294967295",
        || plan(&proxy, &sandbox),
        "4294967295 pages",
    );
}

#[test]
fn the_same_page_forever_is_refused_at_its_first_repeat() {
    let sandbox = sandbox();
    let proxy = Proxy::start(sandbox.base_url(), |seen| {
        if is_d1_list(seen) {
            d1_page(1, "lms-db-staging")
        } else {
            Reply::Forward
        }
    });
    hostile(
        "same page forever",
        || plan(&proxy, &sandbox),
        "page 2 repeats page 1",
    );
}

#[test]
fn pages_that_never_end_are_cut_at_the_page_limit() {
    let sandbox = sandbox();
    let proxy = Proxy::start(sandbox.base_url(), |seen| {
        if is_d1_list(seen) {
            let page = seen.page.unwrap_or(1);
            d1_page(page, &format!("hostile-{page}"))
        } else {
            Reply::Forward
        }
    });
    hostile(
        "endless pages",
        || plan(&proxy, &sandbox),
        "more than 200 pages",
    );
}

#[test]
fn a_hundred_megabyte_answer_is_cut_while_it_is_read() {
    let sandbox = sandbox();
    let proxy = Proxy::start(sandbox.base_url(), |seen| {
        if is_d1_list(seen) {
            Reply::Stream(Box::pin(endless_body(
                r#"{"success":true,"errors":[],"messages":[],"result":[0"#,
                ",0",
                100 * 1024 * 1024,
            )))
        } else {
            Reply::Forward
        }
    });
    hostile("100 MB body", || plan(&proxy, &sandbox), "larger than");
}

#[test]
fn a_page_of_seven_megabytes_of_zeros_fails_at_its_first_item() {
    let sandbox = sandbox();
    let proxy = Proxy::start(sandbox.base_url(), |seen| {
        if is_d1_list(seen) {
            let zeros = format!("0{}", ",0".repeat(7 * 512 * 1024));
            let body =
                format!(r#"{{"success":true,"errors":[],"messages":[],"result":[{zeros}]}}"#);
            Reply::Stream(Box::pin(futures::stream::iter([Ok(body.into())])))
        } else {
            Reply::Forward
        }
    });
    hostile(
        "7 MB page of zeros",
        || plan(&proxy, &sandbox),
        "at `result.[0]`",
    );
}

#[test]
fn an_answer_that_drips_is_cut_at_the_deadline() {
    let sandbox = sandbox();
    let proxy = Proxy::start(sandbox.base_url(), |seen| {
        if is_d1_list(seen) {
            Reply::Stream(Box::pin(drip(
                r#"{"success":true,"errors":[],"messages":[],"result":["#,
                Duration::from_secs(1),
            )))
        } else {
            Reply::Forward
        }
    });
    hostile(
        "slow drip",
        || plan(&proxy, &sandbox).env("LMSINFRA_API_TIMEOUT", "3"),
        "within 3 s",
    );
}

#[test]
fn a_retry_says_what_it_waits_for_at_default_verbosity() {
    let sandbox = sandbox();
    let failures = Arc::new(AtomicU32::new(0));
    let proxy = Proxy::start(sandbox.base_url(), move |seen| {
        if is_d1_list(seen) && failures.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::Json(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"success": false, "errors": [{"code": 10013, "message": "try later"}], "messages": [], "result": null}),
            )
        } else {
            Reply::Forward
        }
    });
    let run = Run::from(plan(&proxy, &sandbox).output());
    // The plan is made after the retries (blocked, exit 3, on the secrets staging lacks).
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stdout.contains("Plan: "), "{run}");
    let waits: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("/d1/database"))
        .collect();
    assert_eq!(waits.len(), 2, "{run}");
    assert!(
        waits[0].contains("HTTP 503") && waits[0].contains("retry 1 of 6 in"),
        "{run}"
    );
}

#[test]
fn a_base_url_is_never_printed_with_its_password() {
    let sandbox = sandbox();
    for url in [
        "http://user:canary-pass-3e1a@127.0.0.1:1/client/v4",
        "https://user:canary-pass-3e1a@exa mple.com/client/v4",
    ] {
        let run = Run::from(
            Lmsinfra::new(&sandbox)
                .env("CLOUDFLARE_API_BASE_URL", url)
                .env("LMSINFRA_API_TIMEOUT", "2")
                .args(["-vvv", "plan", "staging", "--no-probe"])
                .output(),
        );
        assert_eq!(run.code, 1, "{url}: {run}");
        assert!(!run.stderr.contains("canary-pass"), "{url}: {run}");
        assert!(!run.stdout.contains("canary-pass"), "{url}: {run}");
    }
}

#[test]
fn a_probe_answer_that_echoes_a_secret_is_reported_scrubbed_and_cut() {
    use axum::http::HeaderValue;
    use lmsinfra::live::Probe;
    use lmsinfra::probe::Prober;
    use lmsinfra::secret::{Secret, register};

    const ECHOED: &str = "canary-probe-secret-51d0";
    register([&Secret::new(ECHOED)]);
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async {
            let mut response = axum::response::IntoResponse::into_response("ok");
            let headers = response.headers_mut();
            let echo = format!("you are {ECHOED}");
            headers.insert("x-echo", HeaderValue::from_str(&echo).expect("a header"));
            let long = "a".repeat(10_000);
            headers.insert("x-long", HeaderValue::from_str(&long).expect("a header"));
            response
        }),
    );
    let probe = crate::client::block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Prober::new(Duration::from_secs(5))
            .probe(&format!("http://{addr}/health"))
            .await
    });
    let Probe::Answered { headers, .. } = probe else {
        panic!("no answer: {probe:?}")
    };
    assert_eq!(headers["x-echo"], "you are [redacted]");
    assert!(
        headers["x-long"].ends_with("bytes cut)"),
        "{}",
        headers["x-long"]
    );
    assert!(headers["x-long"].len() < 2_100);
}
