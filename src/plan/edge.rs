//! The plan's part of edge rules: which owned rules to create, change or delete, and the
//! ruleset write that carries each change out. Ownership itself (refs, the rules a manifest
//! wants, merging) is in [`crate::edge`].

use serde_json::{Value, json};

use super::{
    Action, Address, Blocker, BlockerKind, Change, DiffOptions, Operation, Plan, Warning, ZoneRules,
};
use crate::cloudflare::{Phase, Rule};
use crate::edge::{self, OwnedRule, owner, parse_ref, same_rule};
use crate::live::{Live, LiveZone};
use crate::manifest::model::Manifest;

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

/// The phases whose rulesets hold owned rules.
const ZONE_PHASES: [Phase; 2] = [Phase::HttpResponseHeadersTransform, Phase::HttpRatelimit];

/// The owned rules `zone` should hold in `phase`, with the ruleset the plan read.
fn zone_rules(
    owner: &str,
    wanted: &[OwnedRule],
    zone_name: &str,
    zone: &LiveZone,
    phase: Phase,
) -> Box<ZoneRules> {
    Box::new(ZoneRules {
        zone: zone_name.to_owned(),
        zone_id: zone.id.clone(),
        phase,
        owner: owner.to_owned(),
        rules: wanted
            .iter()
            .filter(|w| w.zone == zone_name && w.kind.phase() == phase)
            .map(|w| w.rule.clone())
            .collect(),
        basis: zone.rulesets.get(phase.as_str()).cloned(),
    })
}

/// The changes to the owned rules of every zone the manifest's routes name, and the owned
/// rules no longer wanted in any zone of the account.
pub(super) fn diff_edge(desired: &Manifest, live: &Live, options: &DiffOptions, plan: &mut Plan) {
    let owner = owner(&desired.environment);
    let wanted = edge::desired(desired);
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
                    operation: Operation::None,
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
        let write = || {
            Operation::Rules(zone_rules(
                &owner,
                &wanted,
                &owned.zone,
                zone,
                owned.kind.phase(),
            ))
        };
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
            operation: match action {
                Action::NoOp => Operation::None,
                _ => write(),
            },
        });
    }
    for (zone_name, zone) in &live.zones {
        for (name, ruleset) in &zone.rulesets {
            let Some(phase) = ZONE_PHASES.into_iter().find(|p| p.as_str() == name) else {
                continue;
            };
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
                        address: kind.address(worker, zone_name),
                        action: Action::Delete,
                        before: Some(value(rule)),
                        after: None,
                        reason: "owned by this environment and no longer in the manifest"
                            .to_owned(),
                        operation: Operation::Rules(zone_rules(
                            &owner, &wanted, zone_name, zone, phase,
                        )),
                    });
                }
            }
        }
    }
    for zone in &live.unread_zones {
        for phase in ZONE_PHASES {
            plan.warnings.push(Warning {
                address: Address::Ruleset {
                    zone: zone.clone(),
                    phase,
                },
                message: format!(
                    "the API token may not read this ruleset (403), so rules this environment once wrote in {zone} are not planned; give the token Zone Read on {zone} to see them"
                ),
            });
        }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudflare::Ruleset;
    use crate::plan::Address;
    use crate::plan::{diff, intent};
    use crate::testing::{STAGING, converged, manifest};

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

    fn actions(plan: &Plan) -> Vec<(String, Action)> {
        plan.changes
            .iter()
            .filter(|c| {
                matches!(
                    c.address,
                    Address::HeaderRule { .. } | Address::RateLimit { .. }
                )
            })
            .map(|c| (c.address.to_string(), c.action))
            .collect()
    }

    #[test]
    fn routed_workers_plan_their_rules_until_applied() {
        let desired = routed();
        let plan = diff(&desired, &with_zone(&[], &[]), &DiffOptions::default());
        assert_eq!(
            actions(&plan),
            [
                (
                    "worker.api.headers_rule.example.com".to_owned(),
                    Action::Create
                ),
                (
                    "worker.api.rate_limit.example.com".to_owned(),
                    Action::Create
                ),
            ]
        );
        let applied = with_zone(&edge::desired(&desired), &[]);
        let plan = diff(&desired, &applied, &DiffOptions::default());
        assert!(plan.is_empty(), "{:?}", plan.changes);
    }

    #[test]
    fn owned_rules_no_longer_wanted_are_deleted_and_foreign_ones_ignored() {
        let mut stale = routed();
        stale.workers.get_mut("api").unwrap().rate_limits = None;
        let foreign = Rule {
            id: None,
            action: "rewrite".to_owned(),
            expression: "true".to_owned(),
            description: Some("d".to_owned()),
            enabled: Some(true),
            action_parameters: Some(json!({})),
            ratelimit: None,
            reference: Some("dashboard-1".to_owned()),
            version: None,
            last_updated: None,
            extra: serde_json::Map::new(),
        };
        let live = with_zone(&edge::desired(&routed()), &[foreign]);
        let plan = diff(&stale, &live, &DiffOptions::default());
        assert_eq!(
            actions(&plan),
            [
                (
                    "worker.api.headers_rule.example.com".to_owned(),
                    Action::NoOp
                ),
                (
                    "worker.api.rate_limit.example.com".to_owned(),
                    Action::Delete
                ),
            ]
        );
    }

    #[test]
    fn a_zone_whose_rulesets_the_token_may_not_read_is_a_warning_per_phase() {
        let mut live = converged();
        live.unread_zones.insert("other.example".to_owned());
        let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
        let warned: Vec<String> = plan
            .warnings
            .iter()
            .map(|w| w.address.to_string())
            .collect();
        assert_eq!(
            warned,
            [
                "zone.other.example.http_response_headers_transform",
                "zone.other.example.http_ratelimit"
            ]
        );
        assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
        assert!(plan.warnings[0].message.contains("(403)"));
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
                (
                    "worker.api.headers_rule.example.com".to_owned(),
                    Action::Create
                ),
                (
                    "worker.api.rate_limit.example.com".to_owned(),
                    Action::Create
                ),
            ]
        );
        assert!(intent("HEAD", Some(&routed()), &routed()).is_empty());
    }
}
