//! `lmsinfra check` through the real binary, against the sandbox and a local web server that
//! stands in for the deployed Worker, serving a strong and a weak set of security headers.

use axum::Router;
use axum::routing::get;
use serde_json::Value;

use crate::security::{project, routed_production};
use crate::support::{Lmsinfra, TestSandbox};

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

fn run(sandbox: &TestSandbox, dir: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    Lmsinfra::new(sandbox)
        .args(["--dir".as_ref(), dir.path().as_os_str()])
        .args(args)
        .output()
}

#[test]
fn check_passes_an_applied_environment_with_strong_headers() {
    let sandbox = TestSandbox::new();
    let site = Site::start();
    let dir = project(&routed_production(), &site.url("/strong"));
    let apply = run(&sandbox, &dir, &["apply", "production", "--auto-approve"]);
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );

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
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("json report");
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
    let check = run(&sandbox, &dir, &["check", "production", "--min-grade", "B"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("D+ (40, below B)"), "{stdout}");
    assert!(
        stdout.contains(" -20  csp-implemented-with-unsafe-inline"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "drift worker.api.headers.X-Content-Type-Options: requires `nosniff`, got nothing"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("✗ rate-limits"), "{stdout}");
    assert!(stdout.contains("✓ cors"), "{stdout}");

    let without_probes = run(&sandbox, &dir, &["check", "production", "--no-probe"]);
    let stdout = String::from_utf8_lossy(&without_probes.stdout);
    assert_eq!(without_probes.status.code(), Some(3), "{stdout}");
    assert!(!stdout.contains("Observatory"), "{stdout}");
}
