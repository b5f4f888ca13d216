//! From a plan to API calls: which calls, in which order, with which bodies.
//!
//! Pure, like `diff`: the executor only sends what this module decides. A Worker's settings are
//! changed with one `PATCH` that lists every binding — the manifest's own, and every other one
//! as `inherit`, because Cloudflare replaces the whole list — so nothing the manifest does not
//! mention is lost. A zone ruleset is changed the same way: one `PUT` per zone and phase with
//! the whole rule list, other owners' rules carried over (see `plan::edge`).

use std::collections::BTreeSet;

use crate::cloudflare::{Phase, Rule, Ruleset};
use crate::live::{Live, LiveWorker};
use crate::manifest::model::{Binding, LocationHint, Manifest, Worker};
use crate::plan::{Action, Plan, edge};

/// One API call apply makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `POST …/d1/database`.
    CreateDatabase {
        /// `d1.KEY`.
        address: String,
        /// The database's key, so later steps can bind its new id.
        key: String,
        /// Its name.
        name: String,
        /// Where to place it.
        location_hint: Option<LocationHint>,
    },
    /// `PATCH …/scripts/SCRIPT/settings` with the whole binding list.
    PatchSettings {
        /// `worker.KEY`.
        address: String,
        /// The script.
        script: String,
        /// Every binding the Worker will have, in order.
        bindings: Vec<SettingsBinding>,
        /// The compatibility date.
        compatibility_date: String,
        /// The compatibility flags.
        compatibility_flags: Vec<String>,
    },
    /// `PUT …/scripts/SCRIPT/secrets`.
    PutSecret {
        /// `worker.KEY.secret.NAME`.
        address: String,
        /// The script.
        script: String,
        /// The secret's name; the value comes from `--secret`.
        name: String,
    },
    /// `PUT …/zones/ZONE/rulesets/phases/PHASE/entrypoint` with the owned rules spliced into the
    /// live list. The executor re-reads the ruleset first and recomputes when it moved.
    PutRules {
        /// `zone.ZONE.PHASE`.
        address: String,
        /// The zone's id.
        zone_id: String,
        /// The phase.
        phase: Phase,
        /// The `ref` prefix of the rules this environment owns.
        owner: String,
        /// The owned rules the zone should have in this phase, in order.
        rules: Vec<Rule>,
        /// The ruleset as the plan read it (`None`: the zone had none in this phase).
        basis: Option<Ruleset>,
    },
    /// `DELETE …/d1/database/UUID`.
    DeleteDatabase {
        /// `d1.KEY`.
        address: String,
        /// Its name.
        name: String,
        /// Its id.
        uuid: String,
    },
}

impl Step {
    /// The plan address the step carries out.
    pub fn address(&self) -> &str {
        match self {
            Self::CreateDatabase { address, .. }
            | Self::PatchSettings { address, .. }
            | Self::PutSecret { address, .. }
            | Self::PutRules { address, .. }
            | Self::DeleteDatabase { address, .. } => address,
        }
    }

    /// What the step does, for progress lines.
    pub fn describe(&self) -> String {
        match self {
            Self::CreateDatabase { name, .. } => format!("create D1 database {name}"),
            Self::PatchSettings {
                script, bindings, ..
            } => format!("update settings of {script} ({} bindings)", bindings.len()),
            Self::PutSecret { script, name, .. } => format!("put secret {name} on {script}"),
            Self::PutRules { address, rules, .. } => {
                format!("write {} owned rule(s) to {address}", rules.len())
            }
            Self::DeleteDatabase { name, .. } => format!("delete D1 database {name}"),
        }
    }
}

/// A binding in a settings `PATCH`.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingsBinding {
    /// A binding the manifest declares; a `d1` binding names its database by key, resolved to
    /// an id when the step runs (the database may be created by an earlier step).
    Declared {
        /// The binding's name.
        name: String,
        /// What it binds.
        binding: Binding,
    },
    /// A binding carried over from the live Worker as it is (`{"type": "inherit"}`).
    Inherit {
        /// The binding's name.
        name: String,
    },
}

/// The steps that carry out `plan`. The plan must not be blocked.
pub fn steps(plan: &Plan, desired: &Manifest, live: &Live) -> Vec<Step> {
    let effective: BTreeSet<&str> = plan
        .effective_changes()
        .map(|c| c.address.as_str())
        .collect();
    let mut steps = Vec::new();
    for (key, db) in &desired.d1_databases {
        let address = format!("d1.{key}");
        if !db.absent && effective.contains(address.as_str()) {
            steps.push(Step::CreateDatabase {
                address,
                key: key.clone(),
                name: db.name.clone(),
                location_hint: db.location_hint,
            });
        }
    }
    for (key, worker) in &desired.workers {
        let Some(lw) = live.workers.get(&worker.name) else {
            continue;
        };
        let prefix = format!("worker.{key}.");
        let settings_changed = plan.effective_changes().any(|c| {
            let Some(rest) = c.address.strip_prefix(&prefix) else {
                return false;
            };
            !edge::is_rule_address(rest)
                && (!rest.starts_with("secret.") || c.action == Action::Replace)
        });
        if settings_changed {
            steps.push(Step::PatchSettings {
                address: format!("worker.{key}"),
                script: worker.name.clone(),
                bindings: settings_bindings(worker, lw),
                compatibility_date: worker.compatibility_date.clone(),
                compatibility_flags: worker.compatibility_flags.clone(),
            });
        }
        for name in &worker.secrets {
            let address = format!("{prefix}secret.{name}");
            if effective.contains(address.as_str()) {
                steps.push(Step::PutSecret {
                    address,
                    script: worker.name.clone(),
                    name: name.clone(),
                });
            }
        }
    }
    steps.extend(rule_steps(desired, live));
    for change in plan.effective_changes() {
        if change.action == Action::Delete {
            if let Some(before) = &change.before {
                steps.push(Step::DeleteDatabase {
                    address: change.address.clone(),
                    name: before["name"].as_str().unwrap_or_default().to_owned(),
                    uuid: before["uuid"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
    }
    steps
}

/// One `PutRules` per zone and phase whose owned rules differ from what the manifest wants.
fn rule_steps(desired: &Manifest, live: &Live) -> Vec<Step> {
    let owner = edge::owner(&desired.environment);
    let wanted = edge::desired(desired);
    let mut steps = Vec::new();
    for (zone_name, zone) in &live.zones {
        for phase in [Phase::HttpResponseHeadersTransform, Phase::HttpRatelimit] {
            let rules: Vec<Rule> = wanted
                .iter()
                .filter(|w| &w.zone == zone_name && w.kind.phase() == phase)
                .map(|w| w.rule.clone())
                .collect();
            let basis = zone.rulesets.get(phase.as_str());
            let current = basis.map_or(&[][..], |r| r.rules.as_slice());
            if !edge::same_rules(&edge::merged(current, &owner, &rules), current) {
                steps.push(Step::PutRules {
                    address: format!("zone.{zone_name}.{}", phase.as_str()),
                    zone_id: zone.id.clone(),
                    phase,
                    owner: owner.clone(),
                    rules,
                    basis: basis.cloned(),
                });
            }
        }
    }
    steps
}

/// The full binding list for a settings `PATCH`: the manifest's bindings, then every live
/// binding it does not declare, inherited. A live non-secret binding that the manifest names as
/// a secret is left out, so the secret can take its name.
fn settings_bindings(worker: &Worker, live: &LiveWorker) -> Vec<SettingsBinding> {
    let mut bindings: Vec<SettingsBinding> = worker
        .bindings
        .iter()
        .map(|(name, binding)| SettingsBinding::Declared {
            name: name.clone(),
            binding: binding.clone(),
        })
        .collect();
    for lb in &live.bindings {
        let declared = worker.bindings.contains_key(&lb.name);
        let displaced = worker.secrets.contains(&lb.name) && !lb.is_secret();
        if !declared && !displaced {
            bindings.push(SettingsBinding::Inherit {
                name: lb.name.clone(),
            });
        }
    }
    bindings
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::tests::{
        STAGING, api, audited, binding, converged, live_with_old_database, manifest, secret,
        supplied, with_absent_database, with_secret_as_plain_text,
    };
    use crate::plan::{DiffOptions, diff};

    fn plan_and_steps(desired: &Manifest, live: &Live, options: &DiffOptions) -> Vec<Step> {
        let plan = diff(desired, live, options);
        assert!(!plan.is_blocked(), "{:?}", plan.blockers);
        steps(&plan, desired, live)
    }

    #[test]
    fn audited_staging_creates_then_patches_then_puts_secrets() {
        let desired = manifest(STAGING);
        let options = supplied(&["TALLY_WEBHOOK_SECRET", "TALLY_SIGNING_SECRET"]);
        let steps = plan_and_steps(&desired, &audited(), &options);
        let order: Vec<_> = steps.iter().map(Step::address).collect();
        assert_eq!(
            order,
            [
                "d1.main",
                "worker.api",
                "worker.api.secret.TALLY_WEBHOOK_SECRET",
                "worker.api.secret.TALLY_SIGNING_SECRET",
            ]
        );
        let Step::PatchSettings { bindings, .. } = &steps[1] else {
            panic!("{steps:?}");
        };
        assert_eq!(
            bindings[0],
            SettingsBinding::Declared {
                name: "DB".to_owned(),
                binding: Binding::D1 {
                    database: "main".to_owned()
                }
            }
        );
    }

    #[test]
    fn every_live_binding_the_manifest_does_not_declare_is_inherited() {
        let mut live = converged();
        let worker = api(&mut live);
        worker.compatibility_date = Some("2024-01-01".to_owned());
        worker.bindings.push(secret("DASHBOARD_SECRET"));
        worker
            .bindings
            .push(binding("FEATURE", "plain_text", json!({ "text": "on" })));
        let steps = plan_and_steps(&manifest(STAGING), &live, &DiffOptions::default());
        let [Step::PatchSettings { bindings, .. }] = steps.as_slice() else {
            panic!("{steps:?}");
        };
        let inherited: Vec<_> = bindings
            .iter()
            .filter_map(|b| match b {
                SettingsBinding::Inherit { name } => Some(name.as_str()),
                SettingsBinding::Declared { .. } => None,
            })
            .collect();
        assert_eq!(
            inherited,
            [
                "TALLY_WEBHOOK_SECRET",
                "TALLY_SIGNING_SECRET",
                "DASHBOARD_SECRET",
                "FEATURE"
            ]
        );
    }

    #[test]
    fn a_secret_rotation_alone_puts_the_secret_without_touching_settings() {
        let options = supplied(&["TALLY_SIGNING_SECRET"]);
        let steps = plan_and_steps(&manifest(STAGING), &converged(), &options);
        let order: Vec<_> = steps.iter().map(Step::address).collect();
        assert_eq!(order, ["worker.api.secret.TALLY_SIGNING_SECRET"]);
    }

    #[test]
    fn a_plain_text_binding_displaced_by_a_secret_is_dropped_from_the_patch() {
        let live = with_secret_as_plain_text();
        let options = supplied(&["TALLY_SIGNING_SECRET"]);
        let steps = plan_and_steps(&manifest(STAGING), &live, &options);
        let [
            Step::PatchSettings { bindings, .. },
            Step::PutSecret { name, .. },
        ] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(name, "TALLY_SIGNING_SECRET");
        assert!(!bindings.iter().any(
            |b| matches!(b, SettingsBinding::Inherit { name } if name == "TALLY_SIGNING_SECRET")
        ));
    }

    #[test]
    fn databases_are_deleted_last_and_only_when_allowed() {
        let options = DiffOptions {
            allow_destroy: true,
            ..DiffOptions::default()
        };
        let desired = with_absent_database(false);
        let steps = plan_and_steps(&desired, &live_with_old_database(), &options);
        assert_eq!(
            steps,
            [Step::DeleteDatabase {
                address: "d1.old".to_owned(),
                name: "lms-old-staging".to_owned(),
                uuid: "uuid-old".to_owned(),
            }]
        );
    }

    #[test]
    fn only_rulesets_whose_owned_rules_differ_are_written_with_foreign_rules_kept() {
        let desired = manifest(&format!(
            "{STAGING}    routes:\n      - {{ zone: example.com, pattern: \"api.example.com/*\" }}\n"
        ));
        let mut live = converged();
        let foreign = Rule {
            id: Some("r1".to_owned()),
            action: "rewrite".to_owned(),
            expression: "true".to_owned(),
            description: None,
            enabled: Some(true),
            action_parameters: None,
            ratelimit: None,
            reference: Some("dashboard".to_owned()),
            version: Some("1".to_owned()),
            last_updated: None,
            extra: serde_json::Map::new(),
        };
        let phase = Phase::HttpResponseHeadersTransform;
        let basis = Ruleset {
            id: "rs".to_owned(),
            phase: phase.as_str().to_owned(),
            version: Some("1".to_owned()),
            last_updated: None,
            rules: vec![foreign],
        };
        live.zones.insert(
            "example.com".to_owned(),
            crate::live::LiveZone {
                id: "zone-1".to_owned(),
                rulesets: [(phase.as_str().to_owned(), basis.clone())].into(),
            },
        );
        let steps = plan_and_steps(&desired, &live, &DiffOptions::default());
        let [
            Step::PutRules {
                address,
                rules,
                basis: Some(read),
                ..
            },
        ] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(address, "zone.example.com.http_response_headers_transform");
        assert_eq!(rules.len(), 1);
        assert_eq!(read, &basis);

        let owned = edge::desired(&desired).remove(0).rule;
        let zone = live.zones.get_mut("example.com").unwrap();
        zone.rulesets
            .get_mut(phase.as_str())
            .unwrap()
            .rules
            .push(owned);
        assert!(plan_and_steps(&desired, &live, &DiffOptions::default()).is_empty());
    }

    #[test]
    fn a_converged_account_needs_no_steps() {
        let steps = plan_and_steps(&manifest(STAGING), &converged(), &DiffOptions::default());
        assert!(steps.is_empty());
    }
}
