//! From a plan to API calls: which calls, in which order, with which bodies.
//!
//! Pure, like `diff`, and it reads only each change's typed [`Operation`], never the values a
//! plan shows: the executor only sends what this module decides. Every change to one Worker —
//! bindings, compatibility settings, secrets — is one [`Step::WriteWorker`], so one version and
//! one deployment per Worker per apply (see `execute` for why a settings `PATCH` carries the
//! secrets). That `PATCH` lists every binding — the manifest's own, and every other one kept,
//! because Cloudflare replaces the whole list — so nothing the manifest does not mention is
//! lost. A zone ruleset is changed the same way: one `PUT` per zone and phase with the whole
//! rule list, other owners' rules carried over (see `crate::edge`).
//!
//! Order: databases are created first, then their pending migrations (expand first: the code
//! that needs a new column comes after it), then each Worker's one write, then the zone
//! rulesets, and databases are deleted last, after whatever stopped using them. That order is a
//! graph, not a line ([`dependencies`]): apply runs every step whose predecessors are done at
//! the same time, so an environment takes as many round trips as its graph is deep.

use crate::cloudflare::{Phase, Rule, Ruleset};
use crate::manifest::model::{Binding, LocationHint, Manifest};
use crate::plan::{
    Address, MigrationRun, Operation, Plan, SettingsBinding, WorkerSettings, ZoneRules,
};

/// `N binding` or `N bindings`.
fn bindings(count: usize) -> String {
    format!("{count} binding{}", if count == 1 { "" } else { "s" })
}

/// One API call apply makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `POST …/d1/database`.
    CreateDatabase {
        /// `d1.KEY`.
        address: Address,
        /// The database's key, so later steps can bind its new id.
        key: String,
        /// Its name.
        name: String,
        /// Where to place it.
        location_hint: Option<LocationHint>,
    },
    /// One pending migration: its SQL and its ledger rows, through `/import` or `/query`.
    Migrate {
        /// `d1.KEY.migration.NAME`.
        address: Address,
        /// What to run, on which database.
        run: Box<MigrationRun>,
    },
    /// `PATCH …/scripts/SCRIPT/settings`: everything the apply changes on one Worker, so one
    /// new version.
    WriteWorker {
        /// `worker.KEY`.
        address: Address,
        /// The script.
        script: String,
        /// The bindings and compatibility settings to write; `None` when only secrets change,
        /// and every binding the Worker has is kept.
        settings: Option<Box<WorkerSettings>>,
        /// The secrets to set, by name; the values come from `--secret`.
        secrets: Vec<String>,
    },
    /// `PUT …/zones/ZONE/rulesets/phases/PHASE/entrypoint` with the owned rules spliced into the
    /// live list. The executor re-reads the ruleset first and recomputes when it moved.
    PutRules {
        /// `zone.ZONE.PHASE`.
        address: Address,
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
    /// `PATCH …/scripts/SCRIPT/script-settings` with the observability settings only.
    PatchObservability {
        /// `worker.KEY.observability`.
        address: Address,
        /// The script.
        script: String,
        /// `{enabled, head_sampling_rate?}`.
        observability: serde_json::Value,
    },
    /// `DELETE …/d1/database/UUID`.
    DeleteDatabase {
        /// `d1.KEY`.
        address: Address,
        /// Its name.
        name: String,
        /// Its id.
        uuid: String,
    },
}

impl Step {
    /// The plan address the step carries out.
    pub fn address(&self) -> &Address {
        match self {
            Self::CreateDatabase { address, .. }
            | Self::Migrate { address, .. }
            | Self::WriteWorker { address, .. }
            | Self::PutRules { address, .. }
            | Self::PatchObservability { address, .. }
            | Self::DeleteDatabase { address, .. } => address,
        }
    }

    /// What the step does, for progress lines.
    pub fn describe(&self) -> String {
        match self {
            Self::CreateDatabase { name, .. } => format!("create D1 database {name}"),
            Self::WriteWorker {
                script,
                settings,
                secrets,
                ..
            } => {
                let secrets = match secrets.as_slice() {
                    [] => String::new(),
                    [one] => format!("secret {one}"),
                    many => format!("secrets {}", many.join(", ")),
                };
                match settings {
                    Some(settings) if secrets.is_empty() => format!(
                        "update settings of {script} ({})",
                        bindings(settings.bindings.len())
                    ),
                    Some(settings) => format!(
                        "update settings of {script} ({}) and put {secrets}",
                        bindings(settings.bindings.len())
                    ),
                    None => format!("put {secrets} on {script}"),
                }
            }
            Self::Migrate { run, .. } => {
                format!("migrate {} with {}", run.database, run.migration.name)
            }
            Self::PutRules { address, rules, .. } => {
                format!("write {} owned rule(s) to {address}", rules.len())
            }
            Self::PatchObservability { script, .. } => {
                format!("update Workers Logs of {script}")
            }
            Self::DeleteDatabase { name, .. } => format!("delete D1 database {name}"),
        }
    }
}

/// What one Worker's write gathers from the plan's changes.
struct WorkerSteps {
    worker: String,
    script: String,
    settings: Option<Box<WorkerSettings>>,
    secrets: Vec<String>,
}

/// The steps that carry out `plan`. The plan must not be blocked.
pub fn steps(plan: &Plan) -> Vec<Step> {
    let mut creates = Vec::new();
    let mut migrations = Vec::new();
    let mut workers: Vec<WorkerSteps> = Vec::new();
    let mut rulesets: Vec<&ZoneRules> = Vec::new();
    let mut deletes = Vec::new();
    let mut observability = Vec::new();
    for change in plan.effective_changes() {
        match &change.operation {
            Operation::None => {}
            Operation::CreateDatabase {
                key,
                name,
                location_hint,
            } => creates.push(Step::CreateDatabase {
                address: change.address.clone(),
                key: key.clone(),
                name: name.clone(),
                location_hint: *location_hint,
            }),
            Operation::Migrate(run) => migrations.push(Step::Migrate {
                address: change.address.clone(),
                run: run.clone(),
            }),
            Operation::DeleteDatabase { name, uuid } => deletes.push(Step::DeleteDatabase {
                address: change.address.clone(),
                name: name.clone(),
                uuid: uuid.clone(),
            }),
            Operation::Settings(settings) => {
                let steps = worker_steps(&mut workers, &settings.worker, &settings.script);
                steps.settings.get_or_insert_with(|| settings.clone());
            }
            Operation::PutSecret {
                worker,
                script,
                name,
                settings,
            } => {
                let steps = worker_steps(&mut workers, worker, script);
                if let Some(settings) = settings {
                    steps.settings.get_or_insert_with(|| settings.clone());
                }
                steps.secrets.push(name.clone());
            }
            Operation::Observability {
                script,
                observability: wanted,
            } => observability.push(Step::PatchObservability {
                address: change.address.clone(),
                script: script.clone(),
                observability: wanted.clone(),
            }),
            Operation::Rules(zone) => {
                let written = rulesets
                    .iter()
                    .any(|r| r.zone == zone.zone && r.phase == zone.phase);
                if !written {
                    rulesets.push(zone);
                }
            }
        }
    }
    rulesets.sort_by(|a, b| (&a.zone, a.phase).cmp(&(&b.zone, b.phase)));
    let mut steps = creates;
    steps.extend(migrations);
    steps.extend(observability);
    steps.extend(workers.into_iter().map(|worker| Step::WriteWorker {
        address: Address::Worker { key: worker.worker },
        script: worker.script,
        settings: worker.settings,
        secrets: worker.secrets,
    }));
    steps.extend(rulesets.into_iter().map(|zone| Step::PutRules {
        address: Address::Ruleset {
            zone: zone.zone.clone(),
            phase: zone.phase,
        },
        zone_id: zone.zone_id.clone(),
        phase: zone.phase,
        owner: zone.owner.clone(),
        rules: zone.rules.clone(),
        basis: zone.basis.clone(),
    }));
    steps.extend(deletes);
    steps
}

/// The write of Worker `worker`, started when it has none yet.
fn worker_steps<'a>(
    workers: &'a mut Vec<WorkerSteps>,
    worker: &str,
    script: &str,
) -> &'a mut WorkerSteps {
    let at = match workers.iter().position(|w| w.worker == worker) {
        Some(at) => at,
        None => {
            workers.push(WorkerSteps {
                worker: worker.to_owned(),
                script: script.to_owned(),
                settings: None,
                secrets: Vec::new(),
            });
            workers.len() - 1
        }
    };
    &mut workers[at]
}

/// The steps each step waits for, by index into `steps`. A migration waits for its database's
/// creation and for the migration before it; a Worker's write waits for the creation and the
/// migrations of every database it binds (expand first) and for its Workers Logs settings (two
/// writes to one script are never in flight together); a zone ruleset waits for every Worker
/// write; a database's deletion for every other step, so whatever stopped using it has.
///
/// A write that keeps some of the Worker's bindings by reference (`{name, type}`, whose
/// treatment by Cloudflare is not known for certain) is read back afterwards; the first such
/// write goes first, alone — the one that can start soonest (lowest index among those with the
/// fewest steps before them) — and every other Worker write waits for it. If its read-back shows
/// a binding dropped although the write kept it, apply stops there, with one Worker to repair
/// rather than every Worker written at the same time. Everything else is independent and may run
/// at once.
pub(crate) fn dependencies(steps: &[Step], desired: &Manifest) -> Vec<Vec<usize>> {
    // The databases a Worker binds, from the manifest: a settings write's declared bindings are
    // the manifest's own.
    let bound_databases = |script: &str| -> Vec<&str> {
        desired
            .workers
            .values()
            .filter(|w| w.name == script)
            .flat_map(|w| w.bindings.iter())
            .filter_map(|(_, binding)| match binding {
                Binding::D1 { database } => Some(database.as_str()),
                _ => None,
            })
            .collect()
    };
    fn database_of(step: &Step) -> Option<&str> {
        match step {
            Step::CreateDatabase { key, .. } => Some(key.as_str()),
            Step::Migrate { run, .. } => Some(run.key.as_str()),
            _ => None,
        }
    }
    let others = |index: usize, wanted: &dyn Fn(&Step) -> bool| -> Vec<usize> {
        steps
            .iter()
            .enumerate()
            .filter(|(i, s)| *i != index && wanted(s))
            .map(|(i, _)| i)
            .collect()
    };
    let mut waits: Vec<Vec<usize>> = steps
        .iter()
        .enumerate()
        .map(|(index, step)| match step {
            Step::CreateDatabase { .. } | Step::PatchObservability { .. } => Vec::new(),
            Step::Migrate { run, .. } => others(index, &|s| {
                database_of(s) == Some(run.key.as_str())
            })
            .into_iter()
            .filter(|&i| i < index)
            .collect(),
            Step::WriteWorker { script, .. } => {
                let keys = bound_databases(script);
                others(index, &|s| {
                    database_of(s).is_some_and(|key| keys.contains(&key))
                        || matches!(s, Step::PatchObservability { script: other, .. } if other == script)
                })
            }
            Step::PutRules { .. } => others(index, &|s| matches!(s, Step::WriteWorker { .. })),
            Step::DeleteDatabase { .. } => {
                others(index, &|s| !matches!(s, Step::DeleteDatabase { .. }))
            }
        })
        .collect();
    let mut depth = vec![0usize; steps.len()];
    for index in 0..steps.len() {
        depth[index] = waits[index]
            .iter()
            .map(|&i| depth[i] + 1)
            .max()
            .unwrap_or(0);
    }
    let keeps_by_reference = |step: &Step| match step {
        Step::WriteWorker { settings: None, .. } => true,
        Step::WriteWorker {
            settings: Some(settings),
            ..
        } => settings
            .bindings
            .iter()
            .any(|b| matches!(b, SettingsBinding::Inherit { .. })),
        _ => false,
    };
    let first = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| keeps_by_reference(s))
        .min_by_key(|(index, _)| (depth[*index], *index))
        .map(|(index, _)| index);
    if let Some(first) = first {
        for (index, step) in steps.iter().enumerate() {
            if index != first && matches!(step, Step::WriteWorker { .. }) {
                waits[index].push(first);
            }
        }
    }
    waits
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::edge;
    use crate::live::Live;
    use crate::manifest::model::{Binding, Manifest};
    use crate::plan::SettingsBinding;
    use crate::plan::{DiffOptions, diff};
    use crate::testing::{
        STAGING, api, audited, binding, converged, live_with_old_database, manifest, secret,
        supplied, with_absent_database, with_secret_as_plain_text,
    };

    /// A step of each kind but migrations: which it waits for.
    #[test]
    fn a_worker_write_waits_for_its_database_its_logs_and_the_first_write() {
        let address = |text: &str| text.parse::<Address>().expect("an address");
        let write = |key: &str, script: &str| Step::WriteWorker {
            address: address(&format!("worker.{key}")),
            script: script.to_owned(),
            settings: None,
            secrets: vec!["SECRET".to_owned()],
        };
        let steps = [
            Step::CreateDatabase {
                address: address("d1.main"),
                key: "main".to_owned(),
                name: "lms-db-staging".to_owned(),
                location_hint: None,
            },
            Step::PatchObservability {
                address: address("worker.api.observability"),
                script: "lms-api-staging".to_owned(),
                observability: json!({ "enabled": true }),
            },
            // Binds `main` in the manifest, so it waits for the database.
            write("api", "lms-api-staging"),
            // Binds nothing: the write that can start first goes first, alone.
            write("other", "lms-other"),
            Step::PutRules {
                address: address("zone.example.com.http_ratelimit"),
                zone_id: "zone".to_owned(),
                phase: Phase::HttpRatelimit,
                owner: "lmsinfra:staging:".to_owned(),
                rules: Vec::new(),
                basis: None,
            },
            Step::DeleteDatabase {
                address: address("d1.old"),
                name: "lms-db-old".to_owned(),
                uuid: "uuid".to_owned(),
            },
        ];
        let waits = dependencies(&steps, &manifest(STAGING));
        let expected: [&[usize]; 6] = [&[], &[], &[0, 1, 3], &[], &[2, 3], &[0, 1, 2, 3, 4]];
        assert_eq!(waits, expected.map(<[usize]>::to_vec));
    }

    #[test]
    fn audited_staging_writes_the_api_worker_after_creating_its_database() {
        let desired = manifest(STAGING);
        let options = supplied(&["TALLY_WEBHOOK_SECRET", "TALLY_SIGNING_SECRET"]);
        let steps = plan_and_steps(&desired, &audited(), &options);
        let waits = dependencies(&steps, &desired);
        assert_eq!(waits, [vec![], vec![0]]);
    }

    fn plan_and_steps(desired: &Manifest, live: &Live, options: &DiffOptions) -> Vec<Step> {
        let plan = diff(desired, live, options);
        assert!(!plan.is_blocked(), "{:?}", plan.blockers);
        steps(&plan)
    }

    #[test]
    fn audited_staging_creates_then_writes_settings_and_secrets_at_once() {
        let desired = manifest(STAGING);
        let options = supplied(&["TALLY_WEBHOOK_SECRET", "TALLY_SIGNING_SECRET"]);
        let steps = plan_and_steps(&desired, &audited(), &options);
        let order: Vec<_> = steps.iter().map(|s| s.address().to_string()).collect();
        assert_eq!(order, ["d1.main", "worker.api"]);
        let Step::WriteWorker {
            settings: Some(settings),
            secrets,
            ..
        } = &steps[1]
        else {
            panic!("{steps:?}");
        };
        assert_eq!(secrets, &["TALLY_WEBHOOK_SECRET", "TALLY_SIGNING_SECRET"]);
        assert_eq!(
            settings.bindings[0],
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
        let [
            Step::WriteWorker {
                settings: Some(settings),
                ..
            },
        ] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        let inherited: Vec<_> = settings
            .bindings
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
    fn a_secret_rotation_alone_writes_the_secret_without_new_settings() {
        let options = DiffOptions {
            force_secrets: true,
            ..supplied(&["TALLY_SIGNING_SECRET"])
        };
        let steps = plan_and_steps(&manifest(STAGING), &converged(), &options);
        let [
            Step::WriteWorker {
                address,
                settings: None,
                secrets,
                ..
            },
        ] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(address.to_string(), "worker.api");
        assert_eq!(secrets, &["TALLY_SIGNING_SECRET"]);
    }

    #[test]
    fn a_plain_text_binding_displaced_by_a_secret_is_dropped_from_the_patch() {
        let live = with_secret_as_plain_text();
        let options = supplied(&["TALLY_SIGNING_SECRET"]);
        let steps = plan_and_steps(&manifest(STAGING), &live, &options);
        let [
            Step::WriteWorker {
                settings: Some(settings),
                secrets,
                ..
            },
        ] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(secrets, &["TALLY_SIGNING_SECRET"]);
        assert!(!settings.bindings.iter().any(
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
                address: Address::D1 {
                    key: "old".to_owned()
                },
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
        assert_eq!(
            address.to_string(),
            "zone.example.com.http_response_headers_transform"
        );
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
    fn removing_an_owned_rule_writes_its_ruleset_and_nothing_else() {
        let routes = "    routes:\n      - { zone: example.com, pattern: \"api.example.com/*\" }\n";
        let limits = "    rate_limits: { requests: 50, period: 10, mitigation_timeout: 60 }\n";
        let routed = manifest(&format!("{STAGING}{routes}{limits}"));
        let mut live = converged();
        let mut zone = crate::live::LiveZone {
            id: "zone-1".to_owned(),
            rulesets: Default::default(),
        };
        for owned in edge::desired(&routed) {
            let phase = owned.kind.phase().as_str().to_owned();
            zone.rulesets
                .entry(phase.clone())
                .or_insert_with(|| Ruleset {
                    id: format!("rs-{phase}"),
                    phase,
                    version: Some("2".to_owned()),
                    last_updated: None,
                    rules: Vec::new(),
                })
                .rules
                .push(owned.rule);
        }
        live.zones.insert("example.com".to_owned(), zone);
        assert!(plan_and_steps(&routed, &live, &DiffOptions::default()).is_empty());

        let unlimited = manifest(&format!("{STAGING}{routes}"));
        let steps = plan_and_steps(&unlimited, &live, &DiffOptions::default());
        let [
            Step::PutRules {
                address,
                phase: Phase::HttpRatelimit,
                rules,
                basis: Some(basis),
                ..
            },
        ] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(address.to_string(), "zone.example.com.http_ratelimit");
        assert!(rules.is_empty());
        assert_eq!(basis.rules.len(), 1);
    }

    #[test]
    fn a_converged_account_needs_no_steps() {
        let steps = plan_and_steps(&manifest(STAGING), &converged(), &DiffOptions::default());
        assert!(steps.is_empty());
    }
}
