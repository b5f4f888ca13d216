//! The per-field limits Cloudflare's API enforces, checked offline.
//!
//! A manifest that breaks one of these fails in the middle of `apply`, after earlier steps took
//! effect; `validate` reports it first, at the field. Only limits Cloudflare documents or its
//! API schema states are here (see `shared/cloudflare-api`): a guessed limit would refuse a
//! manifest Cloudflare accepts.

use std::collections::HashMap;

use super::diagnostic::Problem;
use super::model::{Binding, Manifest, Worker};
use super::span::NodePath;

/// Cloudflare's limit on one environment variable (a plain-text binding), in bytes: 5 KiB.
pub(crate) const MAX_VARIABLE_BYTES: usize = 5 * 1024;

/// Environment variables (plain-text bindings and secrets) per Worker on a paid plan.
pub(crate) const MAX_VARIABLES: usize = 128;

/// Environment variables per Worker on the Free plan.
pub(crate) const MAX_VARIABLES_FREE: usize = 64;

/// The longest hostname DNS allows, which bounds a route pattern's host.
pub(crate) const MAX_HOST_LENGTH: usize = 253;

/// The longest DNS label.
const MAX_LABEL_LENGTH: usize = 63;

fn path(parts: &[&str]) -> NodePath {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

/// Every limit `manifest` breaks.
pub(crate) fn check(manifest: &Manifest) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (key, worker) in &manifest.workers {
        variables(key, worker, &mut problems);
        compatibility_flags(key, worker, &mut problems);
        bucket_names(key, worker, &mut problems);
        route_hosts(key, worker, &mut problems);
    }
    problems
}

fn variables(key: &str, worker: &Worker, problems: &mut Vec<Problem>) {
    let mut count = worker.secrets.len();
    for (name, binding) in &worker.bindings {
        let Binding::PlainText { text } = binding else {
            continue;
        };
        count += 1;
        if text.len() > MAX_VARIABLE_BYTES {
            problems.push(
                Problem::error(
                    "manifest::variable-too-large",
                    path(&["workers", key, "bindings", name, "text"]),
                    format!(
                        "plain-text binding `{name}` is {} bytes; Cloudflare accepts at most {MAX_VARIABLE_BYTES} bytes (5 KiB) per variable",
                        text.len()
                    ),
                )
                .label("too long")
                .help("shorten it to 5 KiB or less, or keep large configuration in KV or R2 and bind that instead"),
            );
        }
    }
    let too_many = |limit: usize, plan: &str| {
        Problem::error(
            "manifest::too-many-variables",
            path(&["workers", key, "bindings"]),
            format!(
                "Worker `{key}` has {count} environment variables (plain-text bindings and secrets); Cloudflare allows {limit} per Worker on {plan}"
            ),
        )
        .on_key()
        .label(format!("{count} variables"))
    };
    if count > MAX_VARIABLES {
        problems.push(too_many(MAX_VARIABLES, "paid plans").help(format!(
            "keep at most {MAX_VARIABLES}: combine related values into one JSON variable"
        )));
    } else if count > MAX_VARIABLES_FREE {
        problems.push(
            too_many(MAX_VARIABLES_FREE, "the Free plan")
                .warning()
                .help(format!(
                    "fine on a paid plan (up to {MAX_VARIABLES}); on the Free plan apply fails"
                )),
        );
    }
}

/// Compatibility flags are lowercase words joined by underscores (`nodejs_compat`); an empty
/// or repeated flag is refused by the API.
fn compatibility_flags(key: &str, worker: &Worker, problems: &mut Vec<Problem>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, flag) in worker.compatibility_flags.iter().enumerate() {
        let at = path(&["workers", key, "compatibility_flags", &index.to_string()]);
        let well_formed = !flag.is_empty()
            && flag
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            let what = if flag.is_empty() {
                "a compatibility flag is empty".to_owned()
            } else {
                format!("`{}` is not a compatibility flag", flag.escape_debug())
            };
            problems.push(
                Problem::error("manifest::compatibility-flag", at, what)
                    .label("expected lowercase letters, digits and `_`")
                    .help("flags are lowercase words joined by underscores, e.g. `nodejs_compat`; remove empty entries"),
            );
        } else if let Some(first) = seen.insert(flag, index) {
            seen.insert(flag, first);
            problems.push(
                Problem::error(
                    "manifest::compatibility-flag",
                    at,
                    format!("compatibility flag `{flag}` is listed twice"),
                )
                .label("repeated")
                .help(format!("remove this entry; it is already entry {first}")),
            );
        }
    }
}

/// R2 bucket names, as Cloudflare's API schema states them: 3 to 64 characters, lowercase
/// letters, digits and dashes, starting and ending with a letter or digit.
fn bucket_names(key: &str, worker: &Worker, problems: &mut Vec<Problem>) {
    for (name, binding) in &worker.bindings {
        let Binding::R2Bucket { bucket_name, .. } = binding else {
            continue;
        };
        let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let valid = (3..=64).contains(&bucket_name.len())
            && bucket_name.chars().all(|c| alphanumeric(c) || c == '-')
            && bucket_name.starts_with(alphanumeric)
            && bucket_name.ends_with(alphanumeric);
        if !valid {
            problems.push(
                Problem::error(
                    "manifest::bucket-name",
                    path(&["workers", key, "bindings", name, "bucket_name"]),
                    format!(
                        "`{}` is not an R2 bucket name",
                        bucket_name.escape_debug()
                    ),
                )
                .label("invalid bucket name")
                .help("R2 bucket names have 3 to 64 lowercase letters, digits and dashes, and start and end with a letter or digit"),
            );
        }
    }
}

/// A route's host is a DNS name: at most 253 characters, labels of at most 63.
fn route_hosts(key: &str, worker: &Worker, problems: &mut Vec<Problem>) {
    for (index, route) in worker.routes.iter().enumerate() {
        let host = route.pattern.split('/').next().unwrap_or_default();
        let longest_label = host.split('.').map(str::len).max().unwrap_or(0);
        let reason = if host.len() > MAX_HOST_LENGTH {
            format!(
                "its host has {} characters, DNS allows {MAX_HOST_LENGTH}",
                host.len()
            )
        } else if longest_label > MAX_LABEL_LENGTH {
            format!(
                "a label of its host has {longest_label} characters, DNS allows {MAX_LABEL_LENGTH}"
            )
        } else {
            continue;
        };
        problems.push(
            Problem::error(
                "manifest::route-pattern",
                path(&["workers", key, "routes", &index.to_string(), "pattern"]),
                format!("the route pattern is not a Workers route: {reason}"),
            )
            .label("host too long")
            .help(
                "route patterns are a hostname on the zone, then a path, e.g. `api.example.com/*`",
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load;

    fn codes(extra_worker_fields: &str) -> Vec<(&'static str, usize)> {
        let text = format!(
            "environment: staging\naccount_id: 0123456789abcdef0123456789abcdef\nworkers:\n  api:\n    name: lms-api\n    compatibility_date: \"2024-12-01\"\n{extra_worker_fields}"
        );
        let checked = load::check("staging.yaml", "staging", text.as_bytes());
        checked
            .diagnostics
            .iter()
            .map(|d| (d.code, d.line))
            .collect()
    }

    #[test]
    fn a_variable_over_five_kibibytes_is_an_error_at_its_text() {
        let at_limit = format!(
            "    bindings:\n      V: {{ type: plain_text, text: {} }}\n",
            "x".repeat(MAX_VARIABLE_BYTES)
        );
        assert_eq!(codes(&at_limit), []);
        let over = format!(
            "    bindings:\n      V: {{ type: plain_text, text: {} }}\n",
            "x".repeat(MAX_VARIABLE_BYTES + 1)
        );
        assert_eq!(codes(&over), [("manifest::variable-too-large", 8)]);
    }

    #[test]
    fn empty_malformed_and_repeated_flags_are_errors() {
        let flags =
            "    compatibility_flags: [nodejs_compat, \"\", \"Nodejs Compat\", nodejs_compat]\n";
        assert_eq!(
            codes(flags),
            [
                ("manifest::compatibility-flag", 7),
                ("manifest::compatibility-flag", 7),
                ("manifest::compatibility-flag", 7),
            ]
        );
    }

    #[test]
    fn more_variables_than_the_free_plan_allows_warn_and_more_than_paid_plans_fail() {
        let secrets = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("      - S{i}\n")).collect();
            format!("    secrets:\n{}", names.concat())
        };
        assert_eq!(codes(&secrets(MAX_VARIABLES_FREE)), []);
        let warned = codes(&secrets(MAX_VARIABLES_FREE + 1));
        assert_eq!(warned, [("manifest::too-many-variables", 4)]);
        let failed = load::check(
            "staging.yaml",
            "staging",
            format!(
                "environment: staging\naccount_id: 0123456789abcdef0123456789abcdef\nworkers:\n  api:\n    name: lms-api\n    compatibility_date: \"2024-12-01\"\n{}",
                secrets(MAX_VARIABLES + 1)
            )
            .as_bytes(),
        );
        assert!(!failed.is_valid());
    }

    #[test]
    fn bucket_names_follow_the_api_pattern() {
        let bucket = |name: &str| {
            codes(&format!(
                "    bindings:\n      B: {{ type: r2_bucket, bucket_name: \"{name}\" }}\n"
            ))
        };
        assert_eq!(bucket("lms-media"), []);
        for bad in ["ab", "-lms", "lms-", "LMS", "lms_media", &"a".repeat(65)] {
            assert_eq!(bucket(bad), [("manifest::bucket-name", 8)], "{bad}");
        }
    }
}
