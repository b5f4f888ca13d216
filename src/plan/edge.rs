//! Edge rules: the zone ruleset rules lmsinfra owns, derived from Workers' routes.
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

use super::{Action, Blocker, BlockerKind, Change, DiffOptions, Plan};
use crate::cloudflare::{Phase, Rule};
use crate::live::Live;
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

    /// The address segment after `worker.<key>`.
    fn segment(self) -> &'static str {
        match self {
            Self::Headers => "headers_rule",
            Self::RateLimit => "rate_limit",
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
    pub fn address(&self) -> String {
        address(&self.worker, self.kind, &self.zone)
    }
}

fn address(worker: &str, kind: RuleKind, zone: &str) -> String {
    format!("worker.{worker}.{}.{zone}", kind.segment())
}

/// Whether the part of an address after `worker.<key>.` names an owned rule (which a zone
/// ruleset write carries out, not the Worker's settings).
pub fn is_rule_address(rest: &str) -> bool {
    RuleKind::ALL
        .iter()
        .any(|k| rest.starts_with(&format!("{}.", k.segment())))
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

/// A rule as a plan shows it.
fn value(rule: &Rule) -> Value {
    let mut value = json!({
        "ref": rule.reference,
        "action": rule.action,
        "expression": rule.expression,
        "action_parameters": rule.action_parameters,
    });
    if let Some(ratelimit) = &rule.ratelimit {
        value["ratelimit"] = ratelimit.clone();
    }
    value
}

/// The changes to the owned rules of every zone the manifest's routes name, and the owned
/// rules no longer wanted there.
pub(super) fn diff_edge(desired: &Manifest, live: &Live, options: &DiffOptions, plan: &mut Plan) {
    let owner = owner(&desired.environment);
    let wanted = self::desired(desired);
    for owned in &wanted {
        let address = owned.address();
        let after = Some(value(&owned.rule));
        let Some(zone) = live.zones.get(&owned.zone) else {
            if options.intent {
                plan.changes.push(Change {
                    address,
                    action: Action::Create,
                    before: None,
                    after,
                    reason: format!("new rule on zone {}", owned.zone),
                });
            } else {
                plan.blockers.push(Blocker {
                    address,
                    kind: BlockerKind::MissingZone,
                    message: format!(
                        "a route of worker {} names zone {}, which the account does not have",
                        owned.worker, owned.zone
                    ),
                    hints: vec![
                        format!(
                            "add {} to the account, or fix the route's `zone`",
                            owned.zone
                        ),
                        "check that the API token may read the zone".to_owned(),
                    ],
                });
            }
            continue;
        };
        let found = zone
            .rulesets
            .get(owned.kind.phase().as_str())
            .and_then(|r| r.rules.iter().find(|l| l.reference == owned.rule.reference));
        let (action, reason) = match found {
            None => (
                Action::Create,
                format!(
                    "no rule with ref {} in the {} ruleset of {}",
                    owned.rule.reference.as_deref().unwrap_or_default(),
                    owned.kind.phase().as_str(),
                    owned.zone
                ),
            ),
            Some(live) if same_rule(&owned.rule, live) => (Action::NoOp, "matches".to_owned()),
            Some(_) => (Action::Update, "the live rule differs".to_owned()),
        };
        plan.changes.push(Change {
            address,
            action,
            before: found.map(value),
            after,
            reason,
        });
    }
    for (zone_name, zone) in &live.zones {
        for ruleset in zone.rulesets.values() {
            for rule in &ruleset.rules {
                let Some((worker, kind)) =
                    rule.reference.as_deref().and_then(|r| parse_ref(&owner, r))
                else {
                    continue;
                };
                let wanted_here = wanted
                    .iter()
                    .any(|w| &w.zone == zone_name && w.rule.reference == rule.reference);
                if !wanted_here {
                    plan.changes.push(Change {
                        address: address(worker, kind, zone_name),
                        action: Action::Delete,
                        before: Some(value(rule)),
                        after: None,
                        reason: "owned by this environment and no longer in the manifest"
                            .to_owned(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudflare::Ruleset;
    use crate::live::LiveZone;
    use crate::plan::tests::{STAGING, converged, manifest};
    use crate::plan::{diff, intent};

    fn routed() -> Manifest {
        manifest(&format!(
            "{STAGING}    routes:\n      - {{ zone: example.com, pattern: \"api.example.com/*\" }}\n    rate_limits: {{ requests: 50, period: 10, mitigation_timeout: 60 }}\n"
        ))
    }

    /// `converged()` with example.com holding `rules` in both phases.
    fn with_zone(rules: &[OwnedRule], extra: &[Rule]) -> Live {
        let mut live = converged();
        let mut zone = LiveZone {
            id: "zone-1".to_owned(),
            rulesets: Default::default(),
        };
        for phase in [Phase::HttpResponseHeadersTransform, Phase::HttpRatelimit] {
            let mut list: Vec<Rule> = rules
                .iter()
                .filter(|r| r.kind.phase() == phase)
                .map(|r| r.rule.clone())
                .collect();
            list.extend(extra.iter().cloned());
            zone.rulesets.insert(
                phase.as_str().to_owned(),
                Ruleset {
                    id: format!("ruleset-{}", phase.as_str()),
                    phase: phase.as_str().to_owned(),
                    version: Some("4".to_owned()),
                    last_updated: None,
                    rules: list,
                },
            );
        }
        live.zones.insert("example.com".to_owned(), zone);
        live
    }

    fn actions(plan: &Plan) -> Vec<(&str, Action)> {
        plan.changes
            .iter()
            .filter(|c| c.address.contains("_rule.") || c.address.contains(".rate_limit."))
            .map(|c| (c.address.as_str(), c.action))
            .collect()
    }

    #[test]
    fn routed_workers_plan_their_rules_until_applied() {
        let desired = routed();
        let plan = diff(&desired, &with_zone(&[], &[]), &DiffOptions::default());
        assert_eq!(
            actions(&plan),
            [
                ("worker.api.headers_rule.example.com", Action::Create),
                ("worker.api.rate_limit.example.com", Action::Create),
            ]
        );
        let applied = with_zone(&self::desired(&desired), &[]);
        let plan = diff(&desired, &applied, &DiffOptions::default());
        assert!(plan.is_empty(), "{:?}", plan.changes);
    }

    #[test]
    fn owned_rules_no_longer_wanted_are_deleted_and_foreign_ones_ignored() {
        let mut stale = routed();
        stale.workers.get_mut("api").unwrap().rate_limits = None;
        let foreign = owned("dashboard-1", "true");
        let live = with_zone(&self::desired(&routed()), &[foreign]);
        let plan = diff(&stale, &live, &DiffOptions::default());
        assert_eq!(
            actions(&plan),
            [
                ("worker.api.headers_rule.example.com", Action::NoOp),
                ("worker.api.rate_limit.example.com", Action::Delete),
            ]
        );
    }

    #[test]
    fn a_route_on_a_zone_the_account_lacks_blocks_apply() {
        let plan = diff(&routed(), &converged(), &DiffOptions::default());
        let blockers: Vec<_> = plan.blockers.iter().map(|b| b.kind).collect();
        assert_eq!(
            blockers,
            [BlockerKind::MissingZone, BlockerKind::MissingZone]
        );
    }

    #[test]
    fn intent_of_routes_shows_new_rules_and_nothing_once_merged() {
        let plan = intent("HEAD", Some(&manifest(STAGING)), &routed());
        assert_eq!(
            actions(&plan),
            [
                ("worker.api.headers_rule.example.com", Action::Create),
                ("worker.api.rate_limit.example.com", Action::Create),
            ]
        );
        assert!(intent("HEAD", Some(&routed()), &routed()).is_empty());
    }

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
