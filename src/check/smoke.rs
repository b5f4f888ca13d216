//! Smoke checks: does a deployed Worker answer as its manifest's `smoke` block says?
//!
//! A deploy that Cloudflare accepts can still serve a broken Worker (staging once served
//! without its database binding), so `verify`, and apply after it changed a Worker, send each
//! check's request and judge the answer. Requests go through the probe client: it has never
//! seen the API token and follows no redirect. [`judge`] is pure; [`run`] does the requests.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::manifest::model::{Smoke, SmokeCheck};
use crate::manifest::smoke::fill;
use crate::probe::{Answer, Prober};

/// The header that asks Cloudflare to answer with one version of a deployment.
pub const OVERRIDES: &str = "Cloudflare-Workers-Version-Overrides";

/// How much of a failing answer's body a report quotes.
const QUOTED_BODY: usize = 200;

/// What one Worker's checks are run against.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The Worker's key in the manifest.
    pub key: &'a str,
    /// Its script name.
    pub script: &'a str,
    /// Its smoke block.
    pub smoke: &'a Smoke,
    /// The version every request asks for through [`OVERRIDES`], when one is under test.
    pub version: Option<&'a str>,
    /// The versions `{{version}}` may stand for: the one under test, or every version the
    /// serving deployment has.
    pub versions: Vec<String>,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The Worker's key.
    pub worker: String,
    /// The check's name.
    pub check: String,
    /// `METHOD path`.
    pub request: String,
    /// Whether an attempt passed.
    pub passed: bool,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why the last attempt failed, when none passed.
    pub failure: Option<String>,
}

/// Why `answer` does not pass `check`, if it does not; `versions` are what `{{version}}` may
/// stand for.
pub fn judge(check: &SmokeCheck, answer: &Answer, versions: &[String]) -> Result<(), String> {
    let statuses: &[u16] = if check.status.is_empty() {
        &[200]
    } else {
        &check.status
    };
    if !statuses.contains(&answer.status) {
        let expected: Vec<String> = statuses.iter().map(u16::to_string).collect();
        let mut reason = format!(
            "status {}, expected {}",
            answer.status,
            expected.join(" or ")
        );
        if let Some(location) = answer.headers.get("location") {
            reason.push_str(&format!(" (a redirect to {location}, not followed)"));
        } else if !answer.body.is_empty() {
            reason.push_str(&format!(": {}", quote(&answer.body)));
        }
        return Err(reason);
    }
    let fills = |text: &str| -> Vec<String> {
        if versions.is_empty() {
            vec![text.to_owned()]
        } else {
            versions.iter().map(|v| fill(text, v)).collect()
        }
    };
    for (name, expected) in &check.headers {
        let actual = answer.headers.get(&name.to_ascii_lowercase());
        if !fills(expected).iter().any(|e| Some(e) == actual) {
            return Err(format!(
                "header {name} is {}, expected `{}`",
                shown(actual),
                fills(expected).join("` or `")
            ));
        }
    }
    for (name, pattern) in &check.headers_match {
        let actual = answer.headers.get(&name.to_ascii_lowercase());
        let matches = fills(pattern)
            .iter()
            .any(|p| regex::Regex::new(p).is_ok_and(|re| actual.is_some_and(|a| re.is_match(a))));
        if !matches {
            return Err(format!(
                "header {name} is {}, expected a match of `{pattern}`",
                shown(actual)
            ));
        }
    }
    if let Some(text) = &check.body_contains {
        if !fills(text).iter().any(|t| answer.body.contains(t.as_str())) {
            return Err(format!(
                "the body does not contain `{text}`: {}",
                quote(&answer.body)
            ));
        }
    }
    if !check.json.is_empty() {
        let body: Value = serde_json::from_str(&answer.body)
            .map_err(|_| format!("the body is not JSON: {}", quote(&answer.body)))?;
        for (pointer, expected) in &check.json {
            let actual = body.pointer(pointer);
            let wanted = expected_values(expected, versions);
            if !wanted.iter().any(|w| Some(w) == actual) {
                let actual = actual.map_or("absent".to_owned(), Value::to_string);
                let wanted: Vec<String> = wanted.iter().map(Value::to_string).collect();
                let mut reason =
                    format!("`{pointer}` is {actual}, expected {}", wanted.join(" or "));
                if has_version(expected) {
                    reason.push_str(" (another version answered)");
                }
                return Err(reason);
            }
        }
    }
    Ok(())
}

fn shown(actual: Option<&String>) -> String {
    actual.map_or("absent".to_owned(), |a| format!("`{a}`"))
}

fn quote(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(QUOTED_BODY) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

fn has_version(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains("{{"),
        Value::Array(items) => items.iter().any(has_version),
        Value::Object(fields) => fields.values().any(has_version),
        _ => false,
    }
}

fn filled(value: &Value, version: &str) -> Value {
    match value {
        Value::String(text) => Value::String(fill(text, version)),
        Value::Array(items) => Value::Array(items.iter().map(|v| filled(v, version)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), filled(v, version)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn expected_values(expected: &Value, versions: &[String]) -> Vec<Value> {
    if versions.is_empty() || !has_version(expected) {
        return vec![expected.clone()];
    }
    versions.iter().map(|v| filled(expected, v)).collect()
}

/// Run `target`'s checks in order, each up to `attempts` times; with `--sandbox`, against the
/// Worker traffic of the sandbox at `worker_traffic`.
pub async fn run(target: &Target<'_>, worker_traffic: Option<SocketAddr>) -> Vec<Outcome> {
    let smoke = target.smoke;
    let mut prober = Prober::new(Duration::from_secs_f64(smoke.timeout_seconds));
    if let Some(addr) = worker_traffic {
        prober = prober.onto_sandbox(addr);
    }
    let base = smoke.base_url.trim_end_matches('/');
    let interval = Duration::from_secs_f64(smoke.interval_seconds);
    let mut outcomes = Vec::new();
    for check in &smoke.checks {
        let url = format!("{base}{}", check.path);
        let mut headers: Vec<(String, String)> = check
            .request_headers
            .iter()
            .map(|(name, value)| {
                let version = target.version.unwrap_or_default();
                (name.clone(), fill(value, version))
            })
            .collect();
        if let Some(version) = target.version {
            headers.push((
                OVERRIDES.to_owned(),
                format!("{}=\"{version}\"", target.script),
            ));
        }
        let attempts = smoke.attempts.max(1);
        let mut outcome = Outcome {
            worker: target.key.to_owned(),
            check: check.name.clone(),
            request: format!("{} {}", check.method.as_str(), check.path),
            passed: false,
            attempts: 0,
            failure: None,
        };
        for attempt in 1..=attempts {
            outcome.attempts = attempt;
            let answer = prober
                .fetch(check.method.as_str(), &url, target.script, &headers)
                .await;
            let verdict = answer.and_then(|a| judge(check, &a, &target.versions));
            tracing::debug!(worker = target.key, check = %check.name, attempt, ?verdict, "smoke check");
            match verdict {
                Ok(()) => {
                    outcome.passed = true;
                    outcome.failure = None;
                    break;
                }
                Err(reason) => outcome.failure = Some(reason),
            }
            if attempt < attempts {
                tokio::time::sleep(interval).await;
            }
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// The outcomes for people: one line per check, then a summary.
pub fn text(environment: &str, version: Option<&str>, outcomes: &[Outcome]) -> String {
    use std::fmt::Write;
    let mut out = match version {
        Some(version) => format!("Smoke checks of {environment}, version {version}\n"),
        None => format!("Smoke checks of {environment}\n"),
    };
    for outcome in outcomes {
        let mark = if outcome.passed { "✓" } else { "✗" };
        let _ = write!(
            out,
            "  {mark} worker.{} {}  {}",
            outcome.worker, outcome.check, outcome.request
        );
        match &outcome.failure {
            Some(failure) => {
                let attempts = if outcome.attempts == 1 {
                    "attempt"
                } else {
                    "attempts"
                };
                let _ = writeln!(out, "\n      {failure} ({} {attempts})", outcome.attempts);
            }
            None => out.push('\n'),
        }
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    let _ = write!(
        out,
        "{}: {failed} of {} checks failed.",
        if failed == 0 { "Passed" } else { "Failed" },
        outcomes.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn check(yaml: serde_json::Value) -> SmokeCheck {
        serde_json::from_value(yaml).expect("a check")
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        Answer {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            body: body.to_owned(),
        }
    }

    #[test]
    fn health_passes_with_the_version_under_test_and_fails_with_another() {
        let health = check(json!({
            "name": "health",
            "path": "/health",
            "json": {"/version": "{{version}}", "/db": "ok"}
        }));
        let good = answer(200, &[], r#"{"version": "v2", "db": "ok"}"#);
        assert_eq!(judge(&health, &good, &["v2".to_owned()]), Ok(()));
        let other = judge(&health, &good, &["v3".to_owned()]).unwrap_err();
        assert!(other.contains("another version answered"), "{other}");
        let broken = answer(
            500,
            &[],
            r#"{"db": "error", "error": "D1 binding DB is not bound"}"#,
        );
        let failure = judge(&health, &broken, &["v2".to_owned()]).unwrap_err();
        assert!(failure.starts_with("status 500, expected 200"), "{failure}");
        assert!(failure.contains("DB is not bound"), "{failure}");
    }

    #[test]
    fn headers_compare_exactly_or_by_regex_and_redirects_are_named() {
        let preflight = check(json!({
            "name": "cors",
            "method": "OPTIONS",
            "path": "/api/courses",
            "status": [204],
            "headers": {"Access-Control-Allow-Origin": "https://lms.example.com"},
            "headers_match": {"access-control-allow-methods": "\\bPOST\\b"}
        }));
        let allowed = answer(
            204,
            &[
                ("access-control-allow-origin", "https://lms.example.com"),
                ("access-control-allow-methods", "GET, POST"),
            ],
            "",
        );
        assert_eq!(judge(&preflight, &allowed, &[]), Ok(()));
        let refused = answer(204, &[("access-control-allow-methods", "GET")], "");
        assert!(
            judge(&preflight, &refused, &[])
                .unwrap_err()
                .contains("absent")
        );
        let moved = answer(302, &[("location", "https://elsewhere.example.com/")], "");
        assert!(
            judge(&preflight, &moved, &[])
                .unwrap_err()
                .contains("not followed")
        );
    }
}
