//! The rules of a Worker's smoke checks (`workers.KEY.smoke`), and the placeholders their
//! expected values may hold.
//!
//! A smoke check that cannot run as written (a URL that is not one, a regular expression or
//! JSON pointer that does not parse, a placeholder nobody fills) would fail after every deploy
//! and roll back a good release, so `validate` refuses it before anything is deployed.

use super::diagnostic::Problem;
use super::model::Smoke;
use super::naming;
use super::span::NodePath;

/// The one placeholder: the id of the version under test.
pub(crate) const VERSION: &str = "version";

/// The names of the `{{NAME}}` placeholders in `text`, in order.
pub(crate) fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        names.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    names
}

/// `text` with `{{version}}` replaced by `version`.
pub(crate) fn fill(text: &str, version: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        if after[..end].trim() == VERSION {
            out.push_str(version);
        } else {
            out.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Whether `pointer` is an RFC 6901 JSON pointer; why not, when it is not.
pub(crate) fn json_pointer(pointer: &str) -> Result<(), String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err("a JSON pointer is empty or starts with `/`".to_owned());
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("`~` must be followed by 0 or 1 (`~0` is `~`, `~1` is `/`)".to_owned());
        }
    }
    Ok(())
}

/// Whether `text` is a URL smoke checks may be sent to: https, or http on loopback.
pub(crate) fn base_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|err| err.to_string())?;
    match (url.scheme(), url.host_str()) {
        ("https", Some(_)) => Ok(url),
        ("http", Some("localhost" | "127.0.0.1" | "[::1]")) => Ok(url),
        ("http", _) => Err("plain http is only allowed on loopback (localhost, 127.0.0.1)".into()),
        (scheme, _) => Err(format!("the scheme is `{scheme}`, not https")),
    }
}

fn at(key: &str, rest: &[&str]) -> NodePath {
    ["workers", key, "smoke"]
        .iter()
        .chain(rest)
        .map(|part| (*part).to_owned())
        .collect()
}

fn unknown_placeholders(text: &str, path: NodePath, problems: &mut Vec<Problem>) {
    for name in placeholders(text).into_iter().filter(|n| *n != VERSION) {
        problems.push(
            Problem::error(
                "manifest::smoke-placeholder",
                path.clone(),
                format!("`{{{{{name}}}}}` is not a placeholder lmsinfra fills"),
            )
            .label("unknown placeholder")
            .help("the one placeholder is `{{version}}`, the id of the version under test"),
        );
    }
}

fn json_placeholders(value: &serde_json::Value, path: &NodePath, problems: &mut Vec<Problem>) {
    match value {
        serde_json::Value::String(text) => unknown_placeholders(text, path.clone(), problems),
        serde_json::Value::Array(items) => {
            for item in items {
                json_placeholders(item, path, problems);
            }
        }
        serde_json::Value::Object(fields) => {
            for item in fields.values() {
                json_placeholders(item, path, problems);
            }
        }
        _ => {}
    }
}

fn header_names<'a>(
    key: &str,
    index: &str,
    field: &str,
    names: impl Iterator<Item = &'a String>,
    problems: &mut Vec<Problem>,
) {
    for name in names {
        if let Err(reason) = naming::header_name(name) {
            problems.push(
                Problem::error(
                    "manifest::header-name",
                    at(key, &["checks", index, field, name]),
                    format!("`{name}` is not a valid HTTP header name: {reason}"),
                )
                .on_key()
                .label("invalid header name")
                .help("header names are RFC 9110 tokens: letters, digits and !#$%&'*+-.^_`|~, no spaces or colons"),
            );
        }
    }
}

/// Check the smoke block of the Worker `key`.
pub(crate) fn check(key: &str, smoke: &Smoke, problems: &mut Vec<Problem>) {
    let base = match base_url(&smoke.base_url) {
        Ok(url) => Some(url),
        Err(reason) => {
            problems.push(
                Problem::error(
                    "manifest::smoke-url",
                    at(key, &["base_url"]),
                    format!(
                        "`{}` is not a URL smoke checks can use: {reason}",
                        smoke.base_url
                    ),
                )
                .label("expected an https URL")
                .help("the Worker's address, e.g. `https://lms-api.example.workers.dev`"),
            );
            None
        }
    };
    if smoke.attempts == 0 {
        problems.push(
            Problem::error(
                "manifest::smoke-attempts",
                at(key, &["attempts"]),
                "`attempts` is 0, so no check would ever run",
            )
            .label("expected 1 or more")
            .help("3 attempts ride out a deploy that is still spreading"),
        );
    }
    for (field, value, minimum) in [
        ("interval_seconds", smoke.interval_seconds, 0.0),
        ("timeout_seconds", smoke.timeout_seconds, f64::MIN_POSITIVE),
        ("settle_seconds", smoke.settle_seconds, 0.0),
    ] {
        if !value.is_finite() || value < minimum || value > 3600.0 {
            problems.push(
                Problem::error(
                    "manifest::smoke-seconds",
                    at(key, &[field]),
                    format!("`{field}` is {value}"),
                )
                .label("expected seconds, up to 3600")
                .help("a number of seconds, e.g. 2 or 0.5"),
            );
        }
    }
    let mut names = std::collections::HashSet::new();
    for (index, check) in smoke.checks.iter().enumerate() {
        let index = index.to_string();
        if check.name.trim().is_empty() || !names.insert(check.name.as_str()) {
            problems.push(
                Problem::error(
                    "manifest::smoke-check-name",
                    at(key, &["checks", &index, "name"]),
                    format!("`{}` does not name one check", check.name),
                )
                .label("expected a name no other check of this Worker has")
                .help("reports and rollback annotations name the failing check: give each its own name"),
            );
        }
        let joined = base
            .as_ref()
            .map(|base| base.join(check.path.trim_start_matches('/')));
        if !check.path.starts_with('/') || matches!(joined, Some(Err(_))) {
            problems.push(
                Problem::error(
                    "manifest::smoke-path",
                    at(key, &["checks", &index, "path"]),
                    format!("`{}` is not a path after the base URL", check.path),
                )
                .label("expected a path starting with `/`")
                .help("e.g. `/health` or `/api/courses?limit=1`"),
            );
        }
        header_names(
            key,
            &index,
            "request_headers",
            check.request_headers.keys(),
            problems,
        );
        header_names(key, &index, "headers", check.headers.keys(), problems);
        header_names(
            key,
            &index,
            "headers_match",
            check.headers_match.keys(),
            problems,
        );
        for (name, value) in &check.request_headers {
            unknown_placeholders(
                value,
                at(key, &["checks", &index, "request_headers", name]),
                problems,
            );
        }
        for (name, value) in &check.headers {
            unknown_placeholders(
                value,
                at(key, &["checks", &index, "headers", name]),
                problems,
            );
        }
        for (name, pattern) in &check.headers_match {
            let path = at(key, &["checks", &index, "headers_match", name]);
            unknown_placeholders(pattern, path.clone(), problems);
            if let Err(err) = regex::Regex::new(&fill(pattern, "0")) {
                let reason = err.to_string();
                let reason = reason.lines().last().unwrap_or_default().trim().to_owned();
                problems.push(
                    Problem::error(
                        "manifest::smoke-regex",
                        path,
                        format!("`{pattern}` is not a regular expression: {reason}"),
                    )
                    .label("invalid regular expression")
                    .help("the syntax is Rust's `regex` crate's; for an exact value use `headers`"),
                );
            }
        }
        if let Some(text) = &check.body_contains {
            unknown_placeholders(
                text,
                at(key, &["checks", &index, "body_contains"]),
                problems,
            );
        }
        for (pointer, expected) in &check.json {
            let path = at(key, &["checks", &index, "json", pointer]);
            if let Err(reason) = json_pointer(pointer) {
                problems.push(
                    Problem::error(
                        "manifest::json-pointer",
                        path.clone(),
                        format!("`{pointer}` is not a JSON pointer: {reason}"),
                    )
                    .on_key()
                    .label("invalid JSON pointer")
                    .help("JSON pointers look like `/version` or `/items/0/id` (RFC 6901)"),
                );
            }
            json_placeholders(expected, &path, problems);
        }
        for status in &check.status {
            if !(100..=599).contains(status) {
                problems.push(
                    Problem::error(
                        "manifest::smoke-status",
                        at(key, &["checks", &index, "status"]),
                        format!("`{status}` is not an HTTP status"),
                    )
                    .label("expected statuses from 100 to 599")
                    .help("e.g. `status: [200]`, or `[401, 403]` for a refusal"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_only_version_is_filled() {
        assert_eq!(
            placeholders("{{version}} and {{ commit }}"),
            ["version", "commit"]
        );
        assert_eq!(
            fill("v={{ version }};c={{commit}}", "ab"),
            "v=ab;c={{commit}}"
        );
        assert_eq!(fill("{{version", "ab"), "{{version");
    }

    #[test]
    fn json_pointers_follow_rfc_6901() {
        assert!(json_pointer("").is_ok());
        assert!(json_pointer("/version").is_ok());
        assert!(json_pointer("/a~1b/~0").is_ok());
        assert!(json_pointer("version").is_err());
        assert!(json_pointer("/a~2").is_err());
        assert!(json_pointer("/a~").is_err());
    }

    #[test]
    fn each_check_needs_a_name_of_its_own() {
        let smoke: Smoke = serde_json::from_value(serde_json::json!({
            "base_url": "https://lms-api.example.workers.dev",
            "checks": [
                {"name": "health", "path": "/health"},
                {"name": "health", "path": "/api/courses"},
                {"name": " ", "path": "/"}
            ]
        }))
        .expect("a smoke block");
        let mut problems = Vec::new();
        check("api", &smoke, &mut problems);
        let paths: Vec<String> = problems
            .iter()
            .map(|p| p.path().map(|p| p.join(".")).unwrap_or_default())
            .collect();
        assert_eq!(
            paths,
            [
                "workers.api.smoke.checks.1.name",
                "workers.api.smoke.checks.2.name"
            ]
        );
    }

    #[test]
    fn base_urls_are_https_or_loopback() {
        assert!(base_url("https://lms-api.example.workers.dev").is_ok());
        assert!(base_url("http://127.0.0.1:8787/__sandbox/workers/lms-api").is_ok());
        assert!(base_url("http://lms-api.example.workers.dev").is_err());
        assert!(base_url("lms-api.example.workers.dev").is_err());
    }
}
