//! Edge rules: the zone ruleset rules lmsinfra owns, derived from Workers' routes. Plan,
//! apply and check all speak this vocabulary, so it lives beside none of them.
//!
//! A zone's entrypoint ruleset is shared — the dashboard, other tools and other environments keep
//! rules in it too — and a `PUT` replaces its whole rule list. So every rule lmsinfra writes
//! carries a `ref` of the form `lmsinfra:<env>:<worker key>:<kind>`, and lmsinfra only ever
//! adds, changes or removes rules whose ref starts with `lmsinfra:<env>:`; every other rule keeps
//! its place and its content. [`desired`] says which owned rules a manifest wants, [`merged`]
//! splices them into a live rule list, and [`same_rule`] says whether a live rule already does
//! what a desired one says.
//!
//! In a plan, an owned rule's address is `worker.<key>.headers_rule.<zone>` (the response
//! header transform) or `worker.<key>.rate_limit.<zone>` (the rate-limiting rule); the zone
//! name comes last because it has dots of its own.

use serde_json::{Value, json};

use crate::address::Address;
use crate::cloudflare::{Phase, Rule};
use crate::manifest::model::{Manifest, RateLimits, Route};

/// The characteristics a rate limit counts by: per client IP, per Cloudflare data centre (the
/// only combination every plan allows).
const CHARACTERISTICS: [&str; 2] = ["cf.colo.id", "ip.src"];

/// What an owned rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleKind {
    /// Sets the manifest's required headers on responses of the Worker's routes.
    Headers,
    /// Answers 429 to a client IP that exceeds the Worker's rate limit.
    RateLimit,
}

impl RuleKind {
    const ALL: [RuleKind; 2] = [RuleKind::Headers, RuleKind::RateLimit];

    /// The ruleset phase the rule lives in.
    pub fn phase(self) -> Phase {
        match self {
            Self::Headers => Phase::HttpResponseHeadersTransform,
            Self::RateLimit => Phase::HttpRatelimit,
        }
    }

    /// The last part of the rule's `ref`.
    fn suffix(self) -> &'static str {
        match self {
            Self::Headers => "headers",
            Self::RateLimit => "ratelimit",
        }
    }

    /// The plan address of the rule of this kind that covers `worker`'s routes in `zone`.
    pub fn address(self, worker: &str, zone: &str) -> Address {
        let (worker, zone) = (worker.to_owned(), zone.to_owned());
        match self {
            Self::Headers => Address::HeaderRule { worker, zone },
            Self::RateLimit => Address::RateLimit { worker, zone },
        }
    }
}

/// A rule the manifest wants in a zone's ruleset.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRule {
    /// The zone's name.
    pub zone: String,
    /// The key of the Worker whose routes it covers.
    pub worker: String,
    /// What it does.
    pub kind: RuleKind,
    /// The rule as lmsinfra writes it (no server-assigned fields).
    pub rule: Rule,
}

impl OwnedRule {
    /// Its plan address.
    pub fn address(&self) -> Address {
        self.kind.address(&self.worker, &self.zone)
    }
}

/// The `ref` prefix of every rule an environment owns.
pub fn owner(environment: &str) -> String {
    format!("lmsinfra:{environment}:")
}

/// The worker key and kind an owned `ref` names, when `reference` is owned by `owner`.
pub fn parse_ref<'a>(owner: &str, reference: &'a str) -> Option<(&'a str, RuleKind)> {
    let (worker, suffix) = reference.strip_prefix(owner)?.rsplit_once(':')?;
    let kind = RuleKind::ALL.into_iter().find(|k| k.suffix() == suffix)?;
    Some((worker, kind))
}

/// Whether `rule` belongs to the environment whose prefix is `owner`.
pub fn is_owned(rule: &Rule, owner: &str) -> bool {
    rule.reference
        .as_deref()
        .is_some_and(|r| r.starts_with(owner))
}

/// Every rule the manifest wants, Worker by Worker, zone by zone in the order routes name them.
pub fn desired(manifest: &Manifest) -> Vec<OwnedRule> {
    let owner = owner(&manifest.environment);
    let mut rules = Vec::new();
    for (key, worker) in &manifest.workers {
        let mut zones: Vec<&str> = Vec::new();
        for route in &worker.routes {
            if !zones.contains(&route.zone.as_str()) {
                zones.push(&route.zone);
            }
        }
        for zone in zones {
            let routes: Vec<&Route> = worker.routes.iter().filter(|r| r.zone == zone).collect();
            let matches = routes_expression(&routes);
            let mut push = |kind: RuleKind, rule: Rule| {
                rules.push(OwnedRule {
                    zone: zone.to_owned(),
                    worker: key.clone(),
                    kind,
                    rule: Rule {
                        reference: Some(format!("{owner}{key}:{}", kind.suffix())),
                        ..rule
                    },
                });
            };
            if let Some(headers) = worker.headers.as_ref().filter(|h| !h.require.is_empty()) {
                let set: serde_json::Map<String, Value> = headers
                    .require
                    .iter()
                    .map(|(name, value)| {
                        (name.clone(), json!({ "operation": "set", "value": value }))
                    })
                    .collect();
                push(
                    RuleKind::Headers,
                    rule(
                        "rewrite",
                        matches.clone(),
                        format!(
                            "lmsinfra: security headers of {} ({})",
                            worker.name, manifest.environment
                        ),
                        json!({ "headers": set }),
                        None,
                    ),
                );
            }
            if let Some(limits) = &worker.rate_limits {
                push(
                    RuleKind::RateLimit,
                    rule(
                        "block",
                        limited_expression(&matches, routes.len(), limits),
                        format!(
                            "lmsinfra: rate limit of {} ({})",
                            worker.name, manifest.environment
                        ),
                        json!({ "response": {
                            "status_code": 429,
                            "content_type": "text/plain",
                            "content": "Too many requests",
                        } }),
                        Some(json!({
                            "characteristics": CHARACTERISTICS,
                            "period": limits.period,
                            "requests_per_period": limits.requests,
                            "mitigation_timeout": limits.mitigation_timeout,
                        })),
                    ),
                );
            }
        }
    }
    rules
}

fn rule(
    action: &str,
    expression: String,
    description: String,
    parameters: Value,
    ratelimit: Option<Value>,
) -> Rule {
    Rule {
        id: None,
        action: action.to_owned(),
        expression,
        description: Some(description),
        enabled: Some(true),
        action_parameters: Some(parameters),
        ratelimit,
        reference: None,
        version: None,
        last_updated: None,
        extra: serde_json::Map::new(),
    }
}

/// A Rules language string literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The expression matching one route pattern (`api.example.com/*`): its host, and its path
/// as a prefix when it ends in `*`, exactly otherwise.
pub fn route_expression(pattern: &str) -> String {
    let (host, path) = pattern.split_once('/').unwrap_or((pattern, "*"));
    let host = match host.strip_prefix("*.") {
        Some(suffix) => format!("ends_with(http.host, {})", quoted(&format!(".{suffix}"))),
        None => format!("http.host eq {}", quoted(host)),
    };
    let path = format!("/{path}");
    let path = match path.strip_suffix('*') {
        Some(prefix) => format!("starts_with(http.request.uri.path, {})", quoted(prefix)),
        None => format!("http.request.uri.path eq {}", quoted(&path)),
    };
    format!("({host} and {path})")
}

fn routes_expression(routes: &[&Route]) -> String {
    routes
        .iter()
        .map(|r| route_expression(&r.pattern))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The routes' expression narrowed to the rate limit's path prefixes.
fn limited_expression(matches: &str, routes: usize, limits: &RateLimits) -> String {
    if limits.paths.is_empty() {
        return matches.to_owned();
    }
    let matches = if routes > 1 {
        format!("({matches})")
    } else {
        matches.to_owned()
    };
    let paths = limits
        .paths
        .iter()
        .map(|p| format!("starts_with(http.request.uri.path, {})", quoted(p)))
        .collect::<Vec<_>>()
        .join(" or ");
    format!("{matches} and ({paths})")
}

/// `want` is `have`, or an object whose every field `have` has with the same value (Cloudflare
/// may fill in defaults lmsinfra did not send).
fn covers(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(k, v)| have.get(k).is_some_and(|h| covers(v, h))),
        _ => want == have,
    }
}

fn covers_option(want: Option<&Value>, have: Option<&Value>) -> bool {
    match (want, have) {
        (None, None) => true,
        (Some(want), Some(have)) => covers(want, have),
        _ => false,
    }
}

/// Whether the live rule does what the desired rule says.
pub fn same_rule(desired: &Rule, live: &Rule) -> bool {
    desired.action == live.action
        && desired.expression == live.expression
        && desired.description == live.description
        && desired.reference == live.reference
        && desired.enabled.unwrap_or(true) == live.enabled.unwrap_or(true)
        && covers_option(
            desired.action_parameters.as_ref(),
            live.action_parameters.as_ref(),
        )
        && covers_option(desired.ratelimit.as_ref(), live.ratelimit.as_ref())
}

/// Whether two rule lists do the same, rule by rule.
pub fn same_rules(desired: &[Rule], live: &[Rule]) -> bool {
    desired.len() == live.len() && desired.iter().zip(live).all(|(d, l)| same_rule(d, l))
}

/// The rule list to `PUT`: `current` with every rule owned by `owner` replaced by the one of
/// `wanted` with the same ref (in place; kept as it is when it already matches) or dropped when
/// none is wanted, and the wanted rules not there yet appended. Rules of others are untouched;
/// only their server-stamped `version` and `last_updated` are left out, as a `PUT` takes them.
pub fn merged(current: &[Rule], owner: &str, wanted: &[Rule]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::with_capacity(current.len() + wanted.len());
    for rule in current {
        if !is_owned(rule, owner) {
            rules.push(rule.clone());
            continue;
        }
        if let Some(want) = wanted.iter().find(|w| w.reference == rule.reference) {
            let done = rules.iter().any(|r| r.reference == want.reference);
            if !done {
                rules.push(if same_rule(want, rule) {
                    rule.clone()
                } else {
                    want.clone()
                });
            }
        }
    }
    for want in wanted {
        if !rules.iter().any(|r| r.reference == want.reference) {
            rules.push(want.clone());
        }
    }
    for rule in &mut rules {
        rule.version = None;
        rule.last_updated = None;
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(reference: &str, expression: &str) -> Rule {
        Rule {
            reference: Some(reference.to_owned()),
            ..rule(
                "rewrite",
                expression.to_owned(),
                "d".to_owned(),
                json!({}),
                None,
            )
        }
    }

    #[test]
    fn route_patterns_become_host_and_path_expressions() {
        assert_eq!(
            route_expression("api.example.com/*"),
            r#"(http.host eq "api.example.com" and starts_with(http.request.uri.path, "/"))"#
        );
        assert_eq!(
            route_expression("*.example.com/v1/health"),
            r#"(ends_with(http.host, ".example.com") and http.request.uri.path eq "/v1/health")"#
        );
    }

    #[test]
    fn refs_name_the_environment_worker_and_kind() {
        let owner = owner("staging");
        assert_eq!(
            parse_ref(&owner, "lmsinfra:staging:api:ratelimit"),
            Some(("api", RuleKind::RateLimit))
        );
        assert_eq!(parse_ref(&owner, "lmsinfra:production:api:headers"), None);
        assert_eq!(parse_ref(&owner, "lmsinfra:staging:api:other"), None);
    }

    #[test]
    fn merging_keeps_foreign_rules_in_place_and_replaces_owned_ones() {
        let owner = owner("staging");
        let foreign = Rule {
            reference: Some("dashboard-1".to_owned()),
            version: Some("3".to_owned()),
            ..owned("x", "true")
        };
        let other_env = owned("lmsinfra:production:api:headers", "p");
        let old = owned("lmsinfra:staging:api:headers", "old");
        let gone = owned("lmsinfra:staging:viewer:headers", "gone");
        let current = [old, foreign.clone(), gone, other_env.clone()];
        let new = owned("lmsinfra:staging:api:headers", "new");
        let added = owned("lmsinfra:staging:admin:headers", "added");
        let rules = merged(&current, &owner, &[new.clone(), added.clone()]);
        let foreign = Rule {
            version: None,
            ..foreign
        };
        assert_eq!(rules, [new, foreign, other_env, added]);
    }

    #[test]
    fn a_rule_matches_when_live_adds_defaults() {
        let mut want = owned("r", "e");
        want.ratelimit = Some(json!({ "period": 60 }));
        let mut live = want.clone();
        live.ratelimit = Some(json!({ "period": 60, "requests_to_origin": false }));
        live.enabled = None;
        assert!(same_rule(&want, &live));
        live.ratelimit = Some(json!({ "period": 10 }));
        assert!(!same_rule(&want, &live));
    }
}
