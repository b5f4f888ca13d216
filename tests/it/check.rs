//! `lmsinfra check` through the real binary, against the sandbox and a local web server that
//! stands in for the deployed Worker, serving a strong and a weak set of security headers.

use axum::Router;
use axum::routing::get;
use serde_json::Value;

use crate::security::{project, routed_production};
use crate::support::{Lmsinfra, Run, TestSandbox, lmsinfra_snapshot};

/// Headers that earn every Observatory bonus and match the routed manifest's requirement.
const STRONG: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (
        "Strict-Transport-Security",
        "max-age=31536000; includeSubDomains",
    ),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

/// Headers with an unsafe CSP, a short HSTS, no framing control, no nosniff and a leaky
/// referrer policy.
const WEAK: [(&str, &str); 3] = [
    (
        "Content-Security-Policy",
        "default-src 'self' 'unsafe-inline' 'unsafe-eval'",
    ),
    ("Strict-Transport-Security", "max-age=86400"),
    ("Referrer-Policy", "unsafe-url"),
];

/// A web server on loopback serving `/strong` and `/weak`; it stops when the runtime drops.
struct Site {
    base: String,
    _runtime: tokio::runtime::Runtime,
}

impl Site {
    fn start() -> Site {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let app = Router::new()
            .route("/strong", get(|| async { (STRONG, "ok") }))
            .route("/weak", get(|| async { (WEAK, "ok") }));
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await
        });
        Site {
            base,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn lmsinfra(sandbox: &TestSandbox, dir: &tempfile::TempDir, args: &[&str]) -> Lmsinfra {
    Lmsinfra::new(sandbox)
        .args(["--dir".as_ref(), dir.path().as_os_str()])
        .args(args)
}

fn run(sandbox: &TestSandbox, dir: &tempfile::TempDir, args: &[&str]) -> Run {
    lmsinfra(sandbox, dir, args).run()
}

#[test]
fn check_passes_an_applied_environment_with_strong_headers() {
    let sandbox = TestSandbox::new();
    let site = Site::start();
    let dir = project(&routed_production(), &site.url("/strong"));
    lmsinfra(&sandbox, &dir, &["apply", "production", "--auto-approve"])
        .code(0)
        .run();

    let check = run(
        &sandbox,
        &dir,
        &[
            "check",
            "production",
            "--format",
            "json",
            "--min-grade",
            "A",
        ],
    );
    assert_eq!(check.code, 0, "{check}");
    let report: Value = serde_json::from_str(&check.stdout).expect("json report");
    assert_eq!(report["passed"], true);
    let url = &report["urls"][0];
    assert_eq!(url["address"], "worker.api");
    assert_eq!(url["score"]["score"], 120);
    assert_eq!(url["score"]["grade"], "A+");
    assert_eq!(url["drift"], serde_json::json!([]));
    let checks: Vec<(&str, &str, bool)> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap(),
                c["address"].as_str().unwrap(),
                c["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("cors", "worker.api.binding.ALLOWED_ORIGINS", true),
            ("plain-text-credentials", "worker.api", true),
            ("required-secrets", "worker.api", true),
            ("rate-limits", "worker.api", true),
            ("plain-text-credentials", "worker.viewer", true),
        ]
    );
}

#[test]
fn check_fails_weak_headers_below_the_minimum_grade_and_a_missing_rate_limit() {
    let sandbox = TestSandbox::new();
    let site = Site::start();
    let dir = project(&routed_production(), &site.url("/weak"));
    lmsinfra_snapshot!(
        "weak_headers",
        run(&sandbox, &dir, &["check", "production", "--min-grade", "B"])
    );
    let without_probes = lmsinfra_snapshot!(
        "weak_headers_without_probes",
        run(&sandbox, &dir, &["check", "production", "--no-probe"])
    );
    assert!(
        !without_probes.stdout.contains("Observatory"),
        "{without_probes}"
    );
}
