//! `lmsinfra check`: a security report for one environment, from the same live read as a plan.
//!
//! Plan answers "what would apply change"; check answers "is this environment safe to expose":
//! how the probed responses' headers grade (scored in [`observatory`] as Mozilla's HTTP
//! Observatory scores them), whether they carry what the manifest requires (the same comparison
//! plan makes), whether the CORS allow-list is strict, whether a credential sits in a plain-text
//! variable, whether every required secret is on the live Worker, and whether every routed Worker
//! is rate limited at the edge. [`report`] is pure: manifest and live state in, report out.
//! [`capacity`] adds how much of the platform's limits the environment uses.

pub mod capacity;
pub mod observatory;
pub mod smoke;

use serde::Serialize;

use crate::cloudflare;
use crate::edge;
use crate::live::{Live, LiveWorker, Probe};
use crate::manifest::model::{Binding, Manifest, Worker};
use crate::plan::{Address, Drift};
pub use observatory::Grade;

/// The plain-text binding that lists the origins a Worker answers cross-origin requests from.
pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";

/// A security report for one environment.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The environment checked.
    pub environment: String,
    /// The lowest grade allowed (`--min-grade`), when one was given.
    pub min_grade: Option<Grade>,
    /// One entry per Worker with a probe URL (empty when probes were skipped).
    pub urls: Vec<UrlReport>,
    /// The other checks, one per Worker each applies to.
    pub checks: Vec<Finding>,
    /// How much of the platform's limits the environment uses, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<capacity::Capacity>,
    /// Why `--min-grade` failed with no URL graded, when it did.
    pub ungraded: Option<String>,
    /// Whether everything passed; `check` exits 3 when not.
    pub passed: bool,
}

/// What one probed URL's headers are worth.
#[derive(Debug, Clone, Serialize)]
pub struct UrlReport {
    /// `worker.KEY`.
    pub address: Address,
    /// The URL fetched.
    pub url: String,
    /// The HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it could not be fetched, when it could not.
    pub unreachable: Option<String>,
    /// The Observatory score and grade, when it answered.
    pub score: Option<observatory::Score>,
    /// Required headers missing or different.
    pub drift: Vec<Drift>,
    /// Whether this URL fails the check: below `--min-grade`, unreachable with a minimum
    /// grade set, or missing a required header.
    pub failed: bool,
}

/// The outcome of one check on one Worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `cors`, `plain-text-credentials`, `required-secrets` or `rate-limits`.
    pub check: &'static str,
    /// What it is about (`worker.api`, `worker.api.binding.ALLOWED_ORIGINS`).
    pub address: Address,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    pub message: String,
}

/// Check `desired` against what `live` holds (with probes, when they were made).
pub fn report(desired: &Manifest, live: &Live, min_grade: Option<Grade>) -> Report {
    let mut urls = Vec::new();
    let mut checks = Vec::new();
    let rules = edge::desired(desired);
    for (key, worker) in &desired.workers {
        let address = Address::Worker { key: key.clone() };
        if let (Some(headers), Some(probe)) = (&worker.headers, live.probes.get(key)) {
            urls.push(url_report(key, headers, probe, min_grade));
        }
        let lw = live.workers.get(&worker.name);
        if let Some(finding) = cors(key, worker, lw) {
            checks.push(finding);
        }
        checks.push(credentials(&address, worker, lw));
        if !worker.secrets.is_empty() {
            checks.push(secrets(&address, worker, lw));
        }
        if !worker.routes.is_empty() {
            let wanted: Vec<&edge::OwnedRule> = rules
                .iter()
                .filter(|r| &r.worker == key && r.kind == edge::RuleKind::RateLimit)
                .collect();
            checks.push(rate_limits(&address, &wanted, live));
        }
    }
    let passed = !urls.iter().any(|u| u.failed) && checks.iter().all(|c| c.passed);
    Report {
        environment: desired.environment.clone(),
        min_grade,
        urls,
        checks,
        capacity: None,
        ungraded: None,
        passed,
    }
}

impl Report {
    /// The report with its capacity findings; a warning or a failure among them fails it.
    pub fn with_capacity(mut self, capacity: capacity::Capacity) -> Self {
        self.passed &= capacity.passed;
        self.capacity = Some(capacity);
        self
    }
}

/// Fail a report with a minimum grade and no URL graded, so a pipeline that asks for a grade
/// never passes on probes that did not run; `no_probe` (`--no-probe`) says they were skipped on
/// purpose.
pub fn require_a_grade(report: &mut Report, no_probe: bool) {
    let graded = report.urls.iter().any(|u| u.score.is_some());
    if report.min_grade.is_none() || no_probe || graded {
        return;
    }
    let reason = if report.urls.is_empty() {
        "no URL was probed: no Worker declares `headers.url`, or probes were skipped (--sandbox)"
    } else {
        "no probed URL answered"
    };
    report.ungraded = Some(reason.to_owned());
    report.passed = false;
}

/// The report for people.
pub fn text(report: &Report) -> String {
    use std::fmt::Write;
    let mark = |passed: bool| if passed { "✓" } else { "✗" };
    // A URL that was not graded has not passed anything, whatever the minimum grade.
    let url_mark = |url: &UrlReport| match (url.failed, &url.score) {
        (true, _) => "✗",
        (false, None) => "-",
        (false, Some(_)) => "✓",
    };
    let mut out = format!("Security check of {}\n", report.environment);
    if !report.urls.is_empty() {
        out.push_str("\nHeaders, graded as Mozilla's HTTP Observatory grades them:\n");
    }
    for url in &report.urls {
        let verdict = match (&url.score, &url.unreachable) {
            (Some(score), _) => {
                let below = report
                    .min_grade
                    .filter(|min| score.grade < *min)
                    .map(|min| format!(", below {min}"))
                    .unwrap_or_default();
                format!("{} ({}{below})", score.grade, score.score)
            }
            (None, Some(reason)) => format!("not graded: {reason}"),
            (None, None) => "not graded".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {} {}  {}  {verdict}",
            url_mark(url),
            url.address,
            url.url
        );
        for test in url.score.iter().flat_map(|s| &s.tests) {
            if test.modifier != 0 {
                let _ = writeln!(
                    out,
                    "      {:+4}  {}: {}",
                    test.modifier, test.result, test.description
                );
            }
        }
        for drift in &url.drift {
            let _ = writeln!(
                out,
                "      drift {}: requires `{}`, got {}",
                drift.address,
                drift.expected,
                drift
                    .actual
                    .as_deref()
                    .map_or("nothing".to_owned(), |a| format!("`{a}`"))
            );
        }
    }
    if !report.checks.is_empty() {
        out.push_str("\nChecks:\n");
    }
    for check in &report.checks {
        let _ = writeln!(
            out,
            "  {} {:<22} {}: {}",
            mark(check.passed),
            check.check,
            check.address,
            check.message
        );
    }
    if let Some(capacity) = &report.capacity {
        capacity_text(&mut out, capacity);
    }
    if let (Some(min), Some(reason)) = (report.min_grade, &report.ungraded) {
        let _ = writeln!(
            out,
            "\n  ✗ --min-grade {min}: {reason}; pass --no-probe to check without grades"
        );
    }
    let failed_urls = report.urls.iter().filter(|u| u.failed).count();
    let failed_checks = report.checks.iter().filter(|c| !c.passed).count();
    let _ = write!(
        out,
        "\n{}: {failed_urls} of {} URLs and {failed_checks} of {} checks failed.",
        if report.passed { "Passed" } else { "Failed" },
        report.urls.len(),
        report.checks.len()
    );
    if let Some(capacity) = &report.capacity {
        let levels: Vec<capacity::Level> = capacity
            .databases
            .iter()
            .map(|d| d.level)
            .chain(capacity.workers.iter().map(|w| w.level))
            .chain([capacity.api.level])
            .collect();
        let over = levels.iter().filter(|l| **l != capacity::Level::Ok).count();
        out.pop();
        let _ = write!(
            out,
            "; {over} of {} capacity findings at or above a threshold.",
            levels.len()
        );
    }
    out
}

/// The capacity section: one line per database, Worker and the API budget, marked by level.
fn capacity_text(out: &mut String, capacity: &capacity::Capacity) {
    use std::fmt::Write;
    let mark = |level: capacity::Level| match level {
        capacity::Level::Ok => "✓",
        capacity::Level::Warn => "!",
        capacity::Level::Fail => "✗",
    };
    let plan = match capacity.plan {
        crate::manifest::model::AccountPlan::Paid => "Workers Paid",
        crate::manifest::model::AccountPlan::Free => "Workers Free",
    };
    let _ = writeln!(
        out,
        "\nCapacity ({plan}; warns at {} %, fails at {} %):",
        capacity.warn_percent, capacity.fail_percent
    );
    for db in &capacity.databases {
        let _ = writeln!(
            out,
            "  {} {:<22} {}: {}",
            mark(db.level),
            "d1-size",
            db.address,
            db.message
        );
    }
    for worker in &capacity.workers {
        let _ = writeln!(
            out,
            "  {} {:<22} {}: {}",
            mark(worker.level),
            "version-window",
            worker.address,
            worker.message
        );
    }
    let _ = writeln!(
        out,
        "  {} {:<22} {}",
        mark(capacity.api.level),
        "api-budget",
        capacity.api.message
    );
}

fn url_report(
    key: &str,
    headers: &crate::manifest::model::Headers,
    probe: &Probe,
    min_grade: Option<Grade>,
) -> UrlReport {
    let (drift, _) = crate::plan::headers::header_drift(key, headers, probe);
    let address = Address::Worker {
        key: key.to_owned(),
    };
    match probe {
        Probe::Unreachable { reason } => UrlReport {
            address,
            url: headers.url.clone(),
            status: None,
            unreachable: Some(reason.clone()),
            score: None,
            drift,
            failed: min_grade.is_some(),
        },
        Probe::Answered {
            status,
            headers: got,
            ..
        } => {
            let score = observatory::score(got);
            let below = min_grade.is_some_and(|min| score.grade < min);
            UrlReport {
                address,
                url: headers.url.clone(),
                status: Some(*status),
                unreachable: None,
                failed: below || !drift.is_empty(),
                score: Some(score),
                drift,
            }
        }
    }
}

/// The value of a plain-text binding: live when the Worker has it, else the manifest's.
fn plain_text<'a>(name: &str, worker: &'a Worker, live: Option<&'a LiveWorker>) -> Option<&'a str> {
    let live = match live.and_then(|lw| lw.binding(name)) {
        Some(cloudflare::Binding::PlainText { text, .. }) => Some(text.as_str()),
        _ => None,
    };
    live.or_else(|| match worker.bindings.get(name) {
        Some(Binding::PlainText { text }) => Some(text.as_str()),
        _ => None,
    })
}

/// Why one allowed origin is not acceptable, if it is not.
fn origin_problem(origin: &str) -> Option<String> {
    if origin == "*" {
        return Some("`*` lets every site read responses".to_owned());
    }
    match url::Url::parse(origin) {
        Err(_) => Some(format!("`{origin}` is not an origin")),
        Ok(url) => match (url.scheme(), url.host_str()) {
            ("https", Some(_)) => None,
            ("http", Some("localhost" | "127.0.0.1")) => None,
            (scheme, _) => Some(format!("`{origin}` is {scheme}, not https")),
        },
    }
}

fn cors(key: &str, worker: &Worker, live: Option<&LiveWorker>) -> Option<Finding> {
    let origins = plain_text(ALLOWED_ORIGINS, worker, live)?;
    let problems: Vec<String> = origins
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|o| !o.is_empty())
        .filter_map(origin_problem)
        .collect();
    Some(Finding {
        check: "cors",
        address: Address::Binding {
            worker: key.to_owned(),
            name: ALLOWED_ORIGINS.to_owned(),
        },
        passed: problems.is_empty(),
        message: if problems.is_empty() {
            "only https origins (localhost aside), no `*`".to_owned()
        } else {
            problems.join("; ")
        },
    })
}

fn credentials(address: &Address, worker: &Worker, live: Option<&LiveWorker>) -> Finding {
    let declared = worker
        .bindings
        .iter()
        .filter(|(_, b)| matches!(b, Binding::PlainText { .. }))
        .map(|(name, _)| name.as_str());
    let live_names = live
        .into_iter()
        .flat_map(|lw| lw.bindings.iter())
        .filter(|b| matches!(b, cloudflare::Binding::PlainText { .. }))
        .map(cloudflare::Binding::name);
    let mut suspicious: Vec<&str> = declared
        .chain(live_names)
        .filter(|name| crate::manifest::credential_suffix(name).is_some())
        .collect();
    suspicious.sort_unstable();
    suspicious.dedup();
    Finding {
        check: "plain-text-credentials",
        address: address.clone(),
        passed: suspicious.is_empty(),
        message: if suspicious.is_empty() {
            "no plain-text variable looks like a credential".to_owned()
        } else {
            format!(
                "plain-text variables that look like credentials: {}; make them secrets",
                suspicious.join(", ")
            )
        },
    }
}

fn secrets(address: &Address, worker: &Worker, live: Option<&LiveWorker>) -> Finding {
    let Some(lw) = live else {
        return Finding {
            check: "required-secrets",
            address: address.clone(),
            passed: false,
            message: format!("Worker {} does not exist", worker.name),
        };
    };
    let present: Vec<&str> = lw.secret_names().collect();
    let missing: Vec<&str> = worker
        .secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !present.contains(s))
        .collect();
    Finding {
        check: "required-secrets",
        address: address.clone(),
        passed: missing.is_empty(),
        message: if missing.is_empty() {
            format!("all {} required secrets are set", worker.secrets.len())
        } else {
            format!("missing on {}: {}", worker.name, missing.join(", "))
        },
    }
}

fn rate_limits(address: &Address, wanted: &[&edge::OwnedRule], live: &Live) -> Finding {
    let finding = |passed, message: String| Finding {
        check: "rate-limits",
        address: address.clone(),
        passed,
        message,
    };
    if wanted.is_empty() {
        return finding(
            false,
            "routed but the manifest sets no `rate_limits`".to_owned(),
        );
    }
    let absent: Vec<&str> = wanted
        .iter()
        .filter(|w| {
            let rules = live
                .zones
                .get(&w.zone)
                .and_then(|z| z.rulesets.get(w.kind.phase().as_str()));
            !rules.is_some_and(|r| r.rules.iter().any(|l| edge::same_rule(&w.rule, l)))
        })
        .map(|w| w.zone.as_str())
        .collect();
    if absent.is_empty() {
        finding(true, "rate limited on every routed zone".to_owned())
    } else {
        finding(
            false,
            format!(
                "the rate-limiting rule is missing or differs on {}; run apply",
                absent.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{STAGING, api, binding, converged, manifest};

    fn failed(report: &Report) -> Vec<(&str, String)> {
        report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| (c.check, c.address.to_string()))
            .collect()
    }

    #[test]
    fn a_converged_environment_without_routes_passes() {
        let report = report(&manifest(STAGING), &converged(), None);
        assert!(report.passed, "{report:#?}");
    }

    #[test]
    fn wildcard_and_plain_http_origins_fail_cors_but_localhost_does_not() {
        assert_eq!(origin_problem("http://localhost:8787"), None);
        assert_eq!(origin_problem("https://lms.example.com"), None);
        assert!(origin_problem("*").is_some());
        assert!(origin_problem("http://lms.example.com").is_some());
        let mut live = converged();
        let worker = api(&mut live);
        worker.bindings.retain(|b| b.name() != ALLOWED_ORIGINS);
        worker.bindings.push(binding(
            ALLOWED_ORIGINS,
            "plain_text",
            json!({ "text": "https://a.example.com, *" }),
        ));
        let report = report(&manifest(STAGING), &live, None);
        assert_eq!(
            failed(&report),
            [("cors", "worker.api.binding.ALLOWED_ORIGINS".to_owned())]
        );
        assert!(!report.passed);
    }

    #[test]
    fn live_credentials_in_plain_text_and_missing_secrets_fail() {
        let mut live = converged();
        let worker = api(&mut live);
        worker
            .bindings
            .retain(|b| b.name() != "TALLY_SIGNING_SECRET");
        worker.bindings.push(binding(
            "STRIPE_API_KEY",
            "plain_text",
            json!({ "text": "sk" }),
        ));
        let report = report(&manifest(STAGING), &live, None);
        assert_eq!(
            failed(&report),
            [
                ("plain-text-credentials", "worker.api".to_owned()),
                ("required-secrets", "worker.api".to_owned())
            ]
        );
    }
}
