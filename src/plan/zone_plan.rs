//! What a zone's plan lets its rate-limiting rules be.
//!
//! Cloudflare refuses a rate-limiting rule the zone's plan does not allow, and the ruleset is
//! written after the Worker's settings and secrets: without this check a Free zone would fail
//! apply halfway. The limits are those of developers.cloudflare.com/waf/rate-limiting-rules/
//! (availability table, 2026-08-25; `cloudflare-api/FIDELITY.md` §5):
//!
//! | Plan       | Expression fields                      | Period  | Timeout | Rules |
//! |------------|----------------------------------------|---------|---------|-------|
//! | free       | Path, Verified Bot                     | 10 s    | 10 s    | 1     |
//! | pro        | adds Host, URI, Full URI, Query        | ≤ 60 s  | ≤ 1 h   | 2     |
//! | business   | adds Method, Source IP, User Agent     | ≤ 600 s | ≤ 1 day | 5     |
//! | enterprise | any                                    | any     | any     | any   |

use serde_json::Value;

use super::{Blocker, BlockerKind, Plan};
use crate::cloudflare::Phase;
use crate::edge::{self, RuleKind};
use crate::live::Live;
use crate::manifest::model::Manifest;

/// What one plan allows (Enterprise publishes no limit, so it has none here).
struct Limits {
    name: &'static str,
    fields: &'static [&'static str],
    period: u64,
    timeout: u64,
    rules: usize,
}

const PATH_AND_BOT: &[&str] = &[
    "http.request.uri.path",
    "cf.client.bot",
    "cf.verified_bot_category",
];
const PRO: &[&str] = &[
    "http.request.uri.path",
    "cf.client.bot",
    "cf.verified_bot_category",
    "http.host",
    "http.request.uri",
    "http.request.full_uri",
    "http.request.uri.query",
];
const BUSINESS: &[&str] = &[
    "http.request.uri.path",
    "cf.client.bot",
    "cf.verified_bot_category",
    "http.host",
    "http.request.uri",
    "http.request.full_uri",
    "http.request.uri.query",
    "http.request.method",
    "ip.src",
    "http.user_agent",
];

fn limits(legacy_id: &str) -> Option<Limits> {
    let (name, fields, period, timeout, rules) = match legacy_id {
        "free" => ("Free", PATH_AND_BOT, 10, 10, 1),
        "pro" => ("Pro", PRO, 60, 3600, 2),
        "business" => ("Business", BUSINESS, 600, 86400, 5),
        _ => return None,
    };
    Some(Limits {
        name,
        fields,
        period,
        timeout,
        rules,
    })
}

/// A blocker for each rate-limiting rule the manifest wants on a zone whose plan cannot hold
/// it: a field its expression may not use, a period or mitigation timeout over the plan's
/// limit, or more rules in the zone than the plan allows (rules of other owners included).
pub(super) fn rate_limit_blockers(desired: &Manifest, live: &Live, plan: &mut Plan) {
    let owner = edge::owner(&desired.environment);
    let wanted: Vec<_> = edge::desired(desired)
        .into_iter()
        .filter(|owned| owned.kind == RuleKind::RateLimit)
        .collect();
    for (zone, legacy_id) in &live.zone_plans {
        let Some(limits) = limits(legacy_id) else {
            continue;
        };
        let here: Vec<_> = wanted.iter().filter(|owned| owned.zone == *zone).collect();
        let Some(first) = here.first() else {
            continue;
        };
        let mut block = |address, message: String, hint: String| {
            plan.blockers.push(Blocker {
                address,
                kind: BlockerKind::ZonePlanLimit,
                message: format!("zone {zone} is on the {} plan: {message}", limits.name),
                hints: vec![hint],
            });
        };
        let fit = format!(
            "change the Worker's `rate_limits` to fit the {} plan, or move {zone} to a plan that allows it",
            limits.name
        );
        let others = live
            .zones
            .get(zone)
            .and_then(|z| z.rulesets.get(Phase::HttpRatelimit.as_str()))
            .map_or(0, |ruleset| {
                ruleset
                    .rules
                    .iter()
                    .filter(|rule| !edge::is_owned(rule, &owner))
                    .count()
            });
        if here.len() + others > limits.rules {
            block(
                first.address(),
                format!(
                    "the zone would hold {} rate limiting rules ({} from this manifest, {others} of other owners); the plan allows {}",
                    here.len() + others,
                    here.len(),
                    limits.rules
                ),
                format!(
                    "remove a rate limiting rule from {zone} (here or in the dashboard), or move it to a plan that allows more"
                ),
            );
        }
        for owned in &here {
            let ratelimit = owned.rule.ratelimit.as_ref();
            let seconds = |key: &str| ratelimit.and_then(|r| r.get(key)).and_then(Value::as_u64);
            for (key, what, most) in [
                ("period", "period", limits.period),
                ("mitigation_timeout", "mitigation timeout", limits.timeout),
            ] {
                if let Some(value) = seconds(key).filter(|value| *value > most) {
                    block(
                        owned.address(),
                        format!("a {what} of {value} s is over the plan's limit of {most} s"),
                        fit.clone(),
                    );
                }
            }
            if let Some(field) = fields_in(&owned.rule.expression)
                .into_iter()
                .find(|field| !limits.fields.contains(&field.as_str()))
            {
                block(
                    owned.address(),
                    format!(
                        "a rate limiting rule's expression may not use `{field}`; the plan allows {}",
                        limits.fields.join(", ")
                    ),
                    format!(
                        "lmsinfra's rules match the route's host, which rate limiting rules may use from the Pro plan up: move {zone} to Pro or above"
                    ),
                );
            }
        }
    }
}

/// The field names in a rules expression: dotted names outside string literals.
fn fields_in(expression: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, fields: &mut Vec<String>| {
        if word.contains('.') && word.starts_with(|c: char| c.is_ascii_alphabetic()) {
            fields.push(std::mem::take(word));
        }
        word.clear();
    };
    let mut chars = expression.chars();
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
                r#"(http.host eq "api.example.com" and starts_with(http.request.uri.path, "/a.b"))"#
            ),
            ["http.host", "http.request.uri.path"]
        );
    }
}
