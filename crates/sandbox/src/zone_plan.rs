//! A zone's plan and the rate-limiting rules it can hold.
//!
//! Cloudflare refuses a rate-limiting rule the zone's plan does not allow, so a client that
//! only ever met an unlimited emulator fails halfway through an apply on a real Free zone. The
//! limits are those of developers.cloudflare.com/waf/rate-limiting-rules/ (availability table,
//! 2026-08-25):
//!
//! | Plan       | Expression fields                                  | Characteristics   | Period  | Timeout | Rules |
//! |------------|----------------------------------------------------|-------------------|---------|---------|-------|
//! | free       | Path, Verified Bot                                 | IP                | 10 s    | 10 s    | 1     |
//! | pro        | adds Host, URI, Full URI, Query                    | IP                | ≤ 60 s  | ≤ 1 h   | 2     |
//! | business   | adds Method, Source IP, User Agent                 | IP, IP with NAT   | ≤ 600 s | ≤ 1 day | 5     |
//! | enterprise | any                                                | any               | any     | any     | any   |
//!
//! Periods and timeouts must also be one of Cloudflare's allowed values ([`ALLOWED_SECONDS`]),
//! and every rule must count by `cf.colo.id` (required for rules created through the API).

use serde_json::Value;

use super::envelope::ApiError;

/// The values Cloudflare accepts for `period` and `mitigation_timeout`, in seconds.
pub(crate) const ALLOWED_SECONDS: [u64; 21] = [
    10, 15, 20, 30, 40, 45, 60, 90, 120, 180, 240, 300, 480, 600, 900, 1200, 1800, 2400, 3600,
    65535, 86400,
];

/// A zone plan, by its `legacy_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    Free,
    Pro,
    Business,
    Enterprise,
}

/// The expression fields of each class the plan table names.
const PATH: &[&str] = &["http.request.uri.path"];
const VERIFIED_BOT: &[&str] = &["cf.client.bot", "cf.verified_bot_category"];
const PRO_FIELDS: &[&str] = &[
    "http.host",
    "http.request.uri",
    "http.request.full_uri",
    "http.request.uri.query",
];
const BUSINESS_FIELDS: &[&str] = &["http.request.method", "ip.src", "http.user_agent"];

impl Plan {
    /// The plan of a zone whose `plan` object is `plan` (Free when there is none).
    pub(crate) fn of(plan: Option<&Value>) -> Result<Plan, String> {
        let Some(plan) = plan else {
            return Ok(Plan::Free);
        };
        match plan.get("legacy_id").and_then(Value::as_str) {
            Some("free") => Ok(Plan::Free),
            Some("pro") => Ok(Plan::Pro),
            Some("business") => Ok(Plan::Business),
            Some("enterprise") => Ok(Plan::Enterprise),
            other => Err(format!(
                "the zone's `plan.legacy_id` is {other:?}; expected free, pro, business or enterprise"
            )),
        }
    }

    pub(crate) fn legacy_id(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Business => "business",
            Plan::Enterprise => "enterprise",
        }
    }

    /// The plan object a zone without one is listed with.
    pub(crate) fn default_json() -> Value {
        serde_json::json!({"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0, "currency": "USD", "frequency": "", "is_subscribed": true, "can_subscribe": false, "legacy_id": "free", "legacy_discount": false, "externally_managed": false})
    }

    /// `(largest period, largest mitigation timeout, most rules)`; `None` for no limit.
    fn limits(self) -> Option<(u64, u64, usize)> {
        match self {
            Plan::Free => Some((10, 10, 1)),
            Plan::Pro => Some((60, 3600, 2)),
            Plan::Business => Some((600, 86400, 5)),
            Plan::Enterprise => None,
        }
    }

    fn fields(self) -> Option<Vec<&'static str>> {
        let mut fields: Vec<&str> = [PATH, VERIFIED_BOT].concat();
        match self {
            Plan::Free => {}
            Plan::Pro => fields.extend(PRO_FIELDS),
            Plan::Business => fields.extend([PRO_FIELDS, BUSINESS_FIELDS].concat()),
            Plan::Enterprise => return None,
        }
        Some(fields)
    }

    fn characteristics(self) -> Option<&'static [&'static str]> {
        match self {
            Plan::Free | Plan::Pro => Some(&["cf.colo.id", "ip.src"]),
            Plan::Business => Some(&["cf.colo.id", "ip.src", "cf.unique_visitor_id"]),
            Plan::Enterprise => None,
        }
    }

    fn refuse(self, why: String) -> ApiError {
        ApiError::bad_request(
            20021,
            format!(
                "invalid rule: {why} (the zone is on the {} plan)",
                self.legacy_id()
            ),
        )
    }

    /// Check the rules of an `http_ratelimit` entrypoint against the plan.
    pub(crate) fn check_rate_limit_rules(self, rules: &[Value]) -> Result<(), ApiError> {
        if let Some((_, _, most)) = self.limits()
            && rules.len() > most
        {
            return Err(self.refuse(format!(
                "{} rate limiting rules, the plan allows {most}",
                rules.len()
            )));
        }
        for rule in rules {
            self.check_rule(rule)?;
        }
        Ok(())
    }

    fn check_rule(self, rule: &Value) -> Result<(), ApiError> {
        let ratelimit = &rule["ratelimit"];
        let characteristics: Vec<&str> = ratelimit["characteristics"]
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !characteristics.contains(&"cf.colo.id") {
            return Err(
                self.refuse("`ratelimit.characteristics` must include `cf.colo.id`".to_owned())
            );
        }
        if let Some(allowed) = self.characteristics()
            && let Some(other) = characteristics.iter().find(|c| !allowed.contains(c))
        {
            return Err(self.refuse(format!(
                "counting by `{other}` is not available; the plan counts by {}",
                allowed.join(", ")
            )));
        }
        for (key, what) in [
            ("period", "period"),
            ("mitigation_timeout", "mitigation timeout"),
        ] {
            let Some(value) = ratelimit.get(key) else {
                continue;
            };
            let seconds = value
                .as_u64()
                .filter(|s| ALLOWED_SECONDS.contains(s))
                .ok_or_else(|| {
                    self.refuse(format!(
                        "`ratelimit.{key}` {value} is not one of the allowed values {ALLOWED_SECONDS:?}"
                    ))
                })?;
            if let Some((period, timeout, _)) = self.limits() {
                let most = if key == "period" { period } else { timeout };
                if seconds > most {
                    return Err(self.refuse(format!(
                        "a {what} of {seconds} s is over the plan's limit of {most} s"
                    )));
                }
            }
        }
        if let Some(allowed) = self.fields() {
            let expression = rule["expression"].as_str().unwrap_or_default();
            if let Some(field) = fields_in(expression)
                .into_iter()
                .find(|f| !allowed.contains(&f.as_str()))
            {
                return Err(self.refuse(format!(
                    "the field `{field}` cannot be used in a rate limiting rule's expression"
                )));
            }
        }
        Ok(())
    }
}

/// The field names in a rules expression: dotted names outside string literals.
fn fields_in(expression: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut chars = expression.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, fields: &mut Vec<String>| {
        if word.contains('.') && word.starts_with(|c: char| c.is_ascii_alphabetic()) {
            fields.push(std::mem::take(word));
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        if c == '"' {
            flush(&mut word, &mut fields);
            while let Some(inner) = chars.next() {
                match inner {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    _ => {}
                }
            }
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            word.push(c);
        } else {
            flush(&mut word, &mut fields);
        }
    }
    flush(&mut word, &mut fields);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_skip_string_literals() {
        assert_eq!(
            fields_in(
                r#"(http.host eq "api.example.com" and starts_with(http.request.uri.path, "/a.b")) or ip.src in {192.0.2.1}"#
            ),
            ["http.host", "http.request.uri.path", "ip.src"]
        );
    }
}
