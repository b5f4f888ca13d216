//! `diff`: desired × live → plan. Pure: no I/O, no clock, no randomness, so every case is a
//! unit test.
//!
//! Order is apply's order: databases are created before the settings that bind them, Worker
//! settings and secrets next, and databases are deleted last, after whatever stopped using them.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use serde_json::{Map, Value, json};

use super::{
    Action, Address, Blocker, BlockerKind, Change, FORMAT_VERSION, KNOWN_AFTER_APPLY, Operation,
    Plan, SENSITIVE, Setting, SettingsBinding, Unmanaged, Warning, WorkerSettings,
};
use crate::cloudflare;
use crate::live::{Live, LiveWorker};
use crate::manifest::model::{Binding, Manifest, Worker};

/// What `diff` needs to know besides the two states.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Secret names whose values the command line supplies (`--secret NAME=…`).
    pub supplied_secrets: BTreeSet<String>,
    /// `--force-secrets`: a secret supplied with `--secret` is written even when the Worker has
    /// it already. Without it a present secret is left alone: every write makes a new Worker
    /// version, and a CI run that wrote every secret each time would push real releases out of
    /// the rollback window.
    pub force_secrets: bool,
    /// `--allow-destroy`: deleting an unprotected database is allowed.
    pub allow_destroy: bool,
    /// Physical names (scripts and databases) that other environments declare, so they are not
    /// reported as unmanaged here.
    pub declared_elsewhere: BTreeSet<String>,
    /// Database names another environment's manifest protects, with that environment: apply
    /// never deletes them, whatever this manifest says (protection is the union over every
    /// environment).
    pub protected_elsewhere: BTreeMap<String, String>,
    /// The migration files of each database that declares migrations, by database key, as
    /// the project holds them; a database without an entry has its migrations left out.
    pub migrations: BTreeMap<String, crate::migrations::MigrationSet>,
    /// Compare intent (two manifests) rather than live state: a newly required secret or a new
    /// Worker is a change to review, not a blocker.
    pub intent: bool,
}

/// Compare the manifest with the live account.
pub fn diff(desired: &Manifest, live: &Live, options: &DiffOptions) -> Plan {
    let mut plan = Plan {
        format_version: FORMAT_VERSION.to_owned(),
        environment: desired.environment.clone(),
        account_id: live.account_id.clone(),
        changes: Vec::new(),
        drift: Vec::new(),
        blockers: Vec::new(),
        warnings: Vec::new(),
        counts: Default::default(),
        manifest_sha256: super::manifest_hash(desired),
        live_fingerprint: live.fingerprint.clone(),
        read: None,
        base: None,
    };
    let mut deletes = Vec::new();
    for (key, db) in &desired.d1_databases {
        let address = Address::D1 { key: key.clone() };
        let existing = live.d1_databases.iter().find(|d| d.name == db.name);
        let value = |uuid: &str| {
            let mut v = json!({ "name": db.name, "uuid": uuid });
            if let Some(hint) = db.location_hint {
                v["location_hint"] = json!(hint.as_str());
            }
            v
        };
        match (db.absent, existing) {
            (false, Some(found)) => plan.changes.push(Change {
                address,
                action: Action::NoOp,
                before: Some(value(&found.uuid)),
                after: Some(value(&found.uuid)),
                reason: "exists".to_owned(),
                operation: Operation::None,
            }),
            (false, None) => plan.changes.push(Change {
                address,
                action: Action::Create,
                before: None,
                after: Some(value(KNOWN_AFTER_APPLY)),
                reason: format!("no D1 database named {} on the account", db.name),
                operation: Operation::CreateDatabase {
                    key: key.clone(),
                    name: db.name.clone(),
                    location_hint: db.location_hint,
                },
            }),
            (true, None) => plan.changes.push(Change {
                address,
                action: Action::NoOp,
                before: None,
                after: None,
                reason: "marked absent and already gone".to_owned(),
                operation: Operation::None,
            }),
            (true, Some(found)) => {
                deletes.push(Change {
                    address: address.clone(),
                    action: Action::Delete,
                    before: Some(value(&found.uuid)),
                    after: None,
                    reason: "marked absent in the manifest".to_owned(),
                    operation: Operation::DeleteDatabase {
                        name: found.name.clone(),
                        uuid: found.uuid.clone(),
                    },
                });
                if db.protect {
                    let hint = format!(
                        "to delete it and its data, set `protect: false` on {address} and run apply with --allow-destroy"
                    );
                    plan.blockers.push(Blocker {
                        address,
                        kind: BlockerKind::ProtectedDatabase,
                        message: format!(
                            "{} is marked absent but protected; apply never deletes a protected database",
                            db.name
                        ),
                        hints: vec![hint],
                    });
                } else if let Some(environment) = options.protected_elsewhere.get(&db.name) {
                    plan.blockers
                        .push(protected_elsewhere(&address, &db.name, environment));
                } else if !options.allow_destroy {
                    plan.blockers.push(Blocker {
                        address,
                        kind: BlockerKind::ProtectedDatabase,
                        message: format!("deleting {} destroys its data", db.name),
                        hints: vec![format!(
                            "run `lmsinfra apply {} --allow-destroy` to delete it",
                            desired.environment
                        )],
                    });
                }
            }
        }
        super::migrations::diff(&mut plan, desired, key, db, live, options);
    }

    for (key, worker) in &desired.workers {
        diff_worker(desired, key, worker, live, options, &mut plan);
        diff_observability(key, worker, live, &mut plan);
    }
    super::edge::diff_edge(desired, live, options, &mut plan);

    for delete in &deletes {
        let Operation::DeleteDatabase { name, uuid } = &delete.operation else {
            continue;
        };
        for (key, worker) in &desired.workers {
            let Some(lw) = live.workers.get(&worker.name) else {
                continue;
            };
            for binding in &lw.bindings {
                let bound = matches!(
                    binding,
                    cloudflare::Binding::D1 { database_id, .. } if database_id == uuid
                );
                // Declared pointing elsewhere, or marked absent: this apply's settings write
                // unbinds it before the database is deleted.
                let unbound = worker.bindings.mentions(binding.name());
                if bound && !unbound {
                    let address = Address::Binding {
                        worker: key.clone(),
                        name: binding.name().to_owned(),
                    };
                    plan.blockers.push(Blocker {
                        address: delete.address.clone(),
                        kind: BlockerKind::DatabaseInUse,
                        message: format!(
                            "{name} is still bound to {} as {}",
                            worker.name,
                            binding.name()
                        ),
                        hints: vec![
                            format!(
                                "to unbind it in the same apply, mark {address} absent: `{}: {{ absent: true }}` under the Worker's bindings",
                                binding.name()
                            ),
                            format!("or point {address} at another database"),
                        ],
                    });
                }
            }
        }
    }
    bound_elsewhere(live, &deletes, &mut plan);
    plan.changes.extend(deletes);
    unmanaged(desired, live, options, &mut plan);
    duplicate_databases(desired, live, &mut plan);
    rolled_back(desired, live, &mut plan);
    unsettled_rollouts(desired, live, &mut plan);
    super::zone_plan::rate_limit_blockers(desired, live, &mut plan);
    supply_every_missing_secret(&desired.environment, &mut plan);
    plan.counts = plan.summary();
    plan
}

/// Give every missing-secret blocker the one apply command that supplies all of the
/// environment's missing secrets, so a user copies one line rather than one per secret.
fn supply_every_missing_secret(environment: &str, plan: &mut Plan) {
    let mut missing: Vec<String> = Vec::new();
    for blocker in &plan.blockers {
        if let (BlockerKind::MissingSecret, Address::Secret { name, .. }) =
            (blocker.kind, &blocker.address)
        {
            if !missing.contains(name) {
                missing.push(name.clone());
            }
        }
    }
    if missing.is_empty() {
        return;
    }
    let supplies: Vec<String> = missing
        .iter()
        .map(|name| format!("--secret {name}=env:{name}"))
        .collect();
    let command = format!("lmsinfra apply {environment} {}", supplies.join(" "));
    for blocker in &mut plan.blockers {
        if blocker.kind == BlockerKind::MissingSecret {
            blocker.hints.push(command.clone());
        }
    }
}

/// The blocker for deleting a database another environment's manifest protects.
fn protected_elsewhere(address: &Address, name: &str, environment: &str) -> Blocker {
    Blocker {
        address: address.clone(),
        kind: BlockerKind::ProtectedDatabase,
        message: format!(
            "{name} is protected by environments/{environment}.yaml; apply never deletes a database any environment protects"
        ),
        hints: vec![format!(
            "remove d1_databases entries naming {name} from this manifest: it belongs to {environment}"
        )],
    }
}

/// Block deleting a database that a Worker this manifest does not declare still binds: it may
/// be another environment's, or nobody's, but it is in use. `live.other_workers` holds those
/// Workers' settings only when gather saw a deletion coming.
fn bound_elsewhere(live: &Live, deletes: &[Change], plan: &mut Plan) {
    for delete in deletes {
        let Operation::DeleteDatabase { name, uuid } = &delete.operation else {
            continue;
        };
        for (script, worker) in &live.other_workers {
            for binding in &worker.bindings {
                if matches!(binding, cloudflare::Binding::D1 { database_id, .. } if database_id == uuid)
                {
                    plan.blockers.push(Blocker {
                        address: delete.address.clone(),
                        kind: BlockerKind::DatabaseInUse,
                        message: format!(
                            "{name} is bound to {script} as {}, a Worker this manifest does not declare",
                            binding.name()
                        ),
                        hints: vec![format!(
                            "{script} must stop binding {name} before it can be deleted; if {name} is another environment's, remove it from this manifest"
                        )],
                    });
                }
            }
        }
    }
}

/// Warn about a declared database whose name more than one database on the account has (the
/// API refuses a duplicate create, but an account can hold them from before): the plan uses the
/// one with the lowest id, and a human should know which one that is.
fn duplicate_databases(desired: &Manifest, live: &Live, plan: &mut Plan) {
    for (key, db) in &desired.d1_databases {
        let ids: Vec<&str> = live
            .d1_databases
            .iter()
            .filter(|d| d.name == db.name)
            .map(|d| d.uuid.as_str())
            .collect();
        if let [used, others @ ..] = ids.as_slice() {
            if !others.is_empty() {
                plan.warnings.push(Warning {
                    address: Address::D1 { key: key.clone() },
                    message: format!(
                        "{} D1 databases on the account are named {}: {}; lmsinfra uses {used}, the lowest id, and leaves the others alone",
                        ids.len(),
                        db.name,
                        ids.join(", ")
                    ),
                });
            }
        }
    }
}

/// The change to a Worker's observability (Workers Logs), when the manifest declares it and
/// the Worker exists. It is a script-level setting, written on its own.
fn diff_observability(key: &str, worker: &Worker, live: &Live, plan: &mut Plan) {
    let Some(wanted) = &worker.observability else {
        return;
    };
    if !live.scripts.contains(&worker.name) || !live.workers.contains_key(&worker.name) {
        return;
    }
    let current = live
        .workers
        .get(&worker.name)
        .and_then(|lw| lw.observability.as_ref());
    let rate = |value: Option<&Value>| value.and_then(Value::as_f64).unwrap_or(1.0);
    let same = current.is_some_and(|current| {
        current.get("enabled").and_then(Value::as_bool) == Some(wanted.enabled)
            && rate(current.get("head_sampling_rate")) == wanted.head_sampling_rate.unwrap_or(1.0)
    });
    let mut after = json!({ "enabled": wanted.enabled });
    if let Some(rate) = wanted.head_sampling_rate {
        after["head_sampling_rate"] = json!(rate);
    }
    let (action, operation) = if same {
        (Action::NoOp, Operation::None)
    } else {
        (
            Action::Update,
            Operation::Observability {
                script: worker.name.clone(),
                observability: after.clone(),
            },
        )
    };
    plan.changes.push(Change {
        address: Address::Setting {
            worker: key.to_owned(),
            setting: Setting::Observability,
        },
        action,
        before: current.cloned(),
        after: Some(after),
        reason: "Workers Logs".to_owned(),
        operation,
    });
}

/// A blocker for each Worker whose serving deployment `lmsinfra rollback` (or apply's
/// auto-rollback after a failed smoke check) made, in place of
/// the changes to its versioned settings: those differences are the rollback itself, not
/// drift, and only `apply --roll-forward` undoes them.
fn rolled_back(desired: &Manifest, live: &Live, plan: &mut Plan) {
    for (key, worker) in &desired.workers {
        let Some(rollout) = live
            .workers
            .get(&worker.name)
            .and_then(|lw| lw.rollout.as_ref())
            .filter(|r| {
                r.message.as_deref().is_some_and(|m| {
                    m.starts_with(super::ROLLBACK_MESSAGE)
                        || m.starts_with(super::AUTO_ROLLBACK_MESSAGE)
                })
            })
        else {
            continue;
        };
        let writes =
            |change: &Change| change.operation.versioned_script() == Some(worker.name.as_str());
        let differences = plan.changes.iter().filter(|c| writes(c)).count();
        plan.changes.retain(|c| !writes(c));
        let version = match rollout.deployed.as_slice() {
            [only] => only.version_id.clone(),
            versions => versions
                .iter()
                .map(|v| format!("{} at {}%", v.version_id, v.percentage))
                .collect::<Vec<_>>()
                .join(" and "),
        };
        let since = rollout.deployed_on.as_deref().unwrap_or("an unknown time");
        let differences = match differences {
            0 => String::new(),
            1 => "; the one difference from the manifest is the rollback's, not drift".to_owned(),
            n => format!("; the {n} differences from the manifest are the rollback's, not drift"),
        };
        plan.blockers.push(Blocker {
            address: Address::Worker { key: key.clone() },
            kind: BlockerKind::RolledBack,
            message: format!(
                "{} is rolled back to {version} since {since} ({}: {}){differences}",
                desired.environment,
                worker.name,
                rollout.message.as_deref().unwrap_or_default()
            ),
            hints: vec![format!(
                "when the cause is fixed, `lmsinfra apply {} --roll-forward` serves the newest version again and makes the account equal to the manifest",
                desired.environment
            )],
        });
    }
}

/// A blocker for each Worker the plan writes to whose deployment is not its newest version at
/// 100%. Cloudflare builds a settings or secret write on one of the two, and which one is not
/// documented: it may deploy an unreviewed version, or revert a gradual deployment.
fn unsettled_rollouts(desired: &Manifest, live: &Live, plan: &mut Plan) {
    for (key, worker) in &desired.workers {
        let Some(rollout) = live
            .workers
            .get(&worker.name)
            .and_then(|lw| lw.rollout.as_ref())
        else {
            continue;
        };
        let writes = plan
            .changes
            .iter()
            .any(|change| change.operation.versioned_script() == Some(worker.name.as_str()));
        let rolled_back = plan.blockers.iter().any(|b| {
            b.kind == BlockerKind::RolledBack && b.address == Address::Worker { key: key.clone() }
        });
        if !writes || rollout.is_settled() || rolled_back {
            continue;
        }
        let deployed = match rollout.deployed.as_slice() {
            [] => "no version".to_owned(),
            versions => versions
                .iter()
                .map(|v| format!("version {} at {}%", v.version_id, v.percentage))
                .collect::<Vec<_>>()
                .join(" and "),
        };
        let newest = rollout.newest.as_deref().unwrap_or("(none)");
        plan.blockers.push(Blocker {
            address: Address::Worker { key: key.clone() },
            kind: BlockerKind::UnsettledRollout,
            message: format!(
                "{} serves {deployed}, but its newest version is {newest}; apply writes only to a Worker that serves its newest version at 100%",
                worker.name
            ),
            hints: vec![
                format!(
                    "to serve the newest version, deploy it: `wrangler versions deploy {newest}@100% --name {}`",
                    worker.name
                ),
                "to keep what is served now, roll back by deploying that code again (`wrangler deploy`), which makes it the newest version; then run plan again".to_owned(),
            ],
        });
    }
}

fn diff_worker(
    desired: &Manifest,
    key: &str,
    worker: &Worker,
    live: &Live,
    options: &DiffOptions,
    plan: &mut Plan,
) {
    let address = Address::Worker {
        key: key.to_owned(),
    };
    let empty;
    let lw = match live.workers.get(&worker.name) {
        Some(lw) if live.scripts.contains(&worker.name) => lw,
        _ if options.intent => {
            plan.changes.push(Change {
                address: address.clone(),
                action: Action::Create,
                before: None,
                after: Some(json!({ "name": worker.name })),
                reason: "new Worker: its code must be deployed before apply can set its settings"
                    .to_owned(),
                operation: Operation::None,
            });
            empty = LiveWorker {
                name: worker.name.clone(),
                ..LiveWorker::default()
            };
            &empty
        }
        _ => {
            plan.blockers.push(Blocker {
                address,
                kind: BlockerKind::MissingWorker,
                message: format!("Worker {} does not exist on the account", worker.name),
                hints: vec![
                    format!(
                        "lmsinfra sets a Worker's settings, not its code: deploy it first (`wrangler deploy --name {}`)",
                        worker.name
                    ),
                    format!("then run `lmsinfra plan {}` again", desired.environment),
                ],
            });
            return;
        }
    };

    let settings = Box::new(WorkerSettings {
        worker: key.to_owned(),
        script: worker.name.clone(),
        bindings: settings_bindings(worker, lw),
        compatibility_date: worker.compatibility_date.clone(),
        compatibility_flags: worker.compatibility_flags.clone(),
    });
    let write_settings = |action: Action| match action {
        Action::NoOp => Operation::None,
        _ => Operation::Settings(settings.clone()),
    };
    let setting = |setting| Address::Setting {
        worker: key.to_owned(),
        setting,
    };
    let date = Some(worker.compatibility_date.as_str());
    let action = if lw.compatibility_date.as_deref() == date {
        Action::NoOp
    } else {
        Action::Update
    };
    plan.changes.push(Change {
        address: setting(Setting::CompatibilityDate),
        action,
        before: lw.compatibility_date.as_ref().map(|d| json!(d)),
        after: Some(json!(worker.compatibility_date)),
        reason: "compatibility date".to_owned(),
        operation: write_settings(action),
    });
    let mut live_flags = lw.compatibility_flags.clone();
    let mut want_flags = worker.compatibility_flags.clone();
    live_flags.sort();
    want_flags.sort();
    if !(live_flags.is_empty() && want_flags.is_empty()) {
        let action = if live_flags == want_flags {
            Action::NoOp
        } else {
            Action::Update
        };
        plan.changes.push(Change {
            address: setting(Setting::CompatibilityFlags),
            action,
            before: Some(json!(lw.compatibility_flags)),
            after: Some(json!(worker.compatibility_flags)),
            reason: "compatibility flags".to_owned(),
            operation: write_settings(action),
        });
    }

    for (name, binding) in &worker.bindings {
        let database = database_of(desired, binding, live);
        let after = desired_binding(name, binding, database);
        let found = lw.binding(name);
        let before = found.map(|b| live_binding(b, live));
        let (action, reason) = match found {
            None => (Action::Create, "not bound on the live Worker".to_owned()),
            Some(found) if found.kind() != binding.kind() => (
                Action::Replace,
                format!(
                    "live binding is {}, manifest says {}",
                    found.kind(),
                    binding.kind()
                ),
            ),
            Some(found) if !same_binding(binding, database.and_then(|d| d.1), found) => {
                (Action::Update, "value differs".to_owned())
            }
            Some(_) => (Action::NoOp, "matches".to_owned()),
        };
        plan.changes.push(Change {
            address: Address::Binding {
                worker: key.to_owned(),
                name: name.clone(),
            },
            action,
            before,
            after: Some(Value::Object(after)),
            reason,
            operation: write_settings(action),
        });
    }

    for name in worker.bindings.absent() {
        let found = lw.binding(name).filter(|b| !b.is_secret());
        plan.changes.push(removal(
            Address::Binding {
                worker: key.to_owned(),
                name: name.clone(),
            },
            found.map(|b| live_binding(b, live)),
            &settings,
        ));
    }

    for name in &worker.secrets {
        let secret_address = Address::Secret {
            worker: key.to_owned(),
            name: name.clone(),
        };
        let found = lw.binding(name);
        let present = found.is_some_and(cloudflare::Binding::is_secret);
        let supplied = options.supplied_secrets.contains(name);
        let before = found.map(|b| {
            if b.is_secret() {
                json!(SENSITIVE)
            } else {
                live_binding(b, live)
            }
        });
        let sensitive = Some(json!(SENSITIVE));
        let change = |action, reason: &str| Change {
            address: secret_address.clone(),
            action,
            before: before.clone(),
            after: sensitive.clone(),
            reason: reason.to_owned(),
            operation: match action {
                Action::NoOp => Operation::None,
                _ => Operation::PutSecret {
                    worker: key.to_owned(),
                    script: worker.name.clone(),
                    name: name.clone(),
                    settings: (action == Action::Replace).then(|| settings.clone()),
                },
            },
        };
        match (present, supplied, found) {
            (true, true, _) if options.force_secrets => plan.changes.push(change(
                Action::Update,
                "present; the value supplied with --secret is written because of --force-secrets",
            )),
            (true, true, _) => plan.changes.push(change(
                Action::NoOp,
                "present; the value supplied with --secret is not written (--force-secrets writes it)",
            )),
            (true, false, _) => plan.changes.push(change(Action::NoOp, "present")),
            (false, true, Some(_)) => plan.changes.push(change(
                Action::Replace,
                "a non-secret binding has this name; the supplied secret replaces it",
            )),
            (false, true, None) => {
                plan.changes.push(change(Action::Create, "missing; value supplied with --secret"))
            }
            (false, false, _) if options.intent => plan.changes.push(change(
                Action::Create,
                "newly required: apply refuses until it is set on the Worker or supplied with --secret",
            )),
            (false, false, _) => plan.blockers.push(Blocker {
                address: secret_address.clone(),
                kind: BlockerKind::MissingSecret,
                message: format!("required secret {name} is missing from {}", worker.name),
                hints: vec![format!("wrangler secret put {name} --name {}", worker.name)],
            }),
        }
    }

    for name in worker.secrets.absent() {
        let found = lw.binding(name).filter(|b| b.is_secret());
        plan.changes.push(removal(
            Address::Secret {
                worker: key.to_owned(),
                name: name.clone(),
            },
            found.map(|_| json!(SENSITIVE)),
            &settings,
        ));
    }

    for binding in &lw.bindings {
        let mentioned = worker.bindings.mentions(binding.name())
            || worker.secrets.contains(binding.name())
            || worker.secrets.is_absent(binding.name());
        if !mentioned {
            let what = if binding.is_secret() {
                "secret"
            } else {
                "binding"
            };
            let (name, key) = (binding.name().to_owned(), key.to_owned());
            plan.warnings.push(Warning {
                address: if binding.is_secret() {
                    Address::Secret { worker: key, name }
                } else {
                    Address::Binding { worker: key, name }
                },
                message: format!(
                    "{what} {} ({}) on {} is not in the manifest; apply keeps it",
                    binding.name(),
                    binding.kind(),
                    worker.name
                ),
            });
        }
    }

    if let (Some(headers), Some(probe)) = (&worker.headers, live.probes.get(key)) {
        let (drift, warnings) = super::headers::header_drift(key, headers, probe);
        plan.drift.extend(drift);
        plan.warnings.extend(warnings);
    }
}

/// The change for a binding or secret marked `absent: true`: a deletion by the Worker's settings
/// write (which leaves it out) when live has it (`before`), a no-op when it is already gone.
fn removal(address: Address, before: Option<Value>, settings: &WorkerSettings) -> Change {
    match before {
        Some(before) => Change {
            address,
            action: Action::Delete,
            before: Some(before),
            after: None,
            reason: "marked absent in the manifest".to_owned(),
            operation: Operation::Settings(Box::new(settings.clone())),
        },
        None => Change {
            address,
            action: Action::NoOp,
            before: None,
            after: None,
            reason: "marked absent and already gone".to_owned(),
            operation: Operation::None,
        },
    }
}

/// The full binding list for a settings write: the manifest's bindings, then every live binding
/// it does not declare, inherited. A live non-secret binding that the manifest names as a secret
/// is left out, so the secret can take its name; so is a binding or secret marked absent.
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
        let declared = worker.bindings.contains_key(lb.name());
        let displaced = worker.secrets.contains(lb.name()) && !lb.is_secret();
        let removed = if lb.is_secret() {
            worker.secrets.is_absent(lb.name())
        } else {
            worker.bindings.is_absent(lb.name())
        };
        if !declared && !displaced && !removed {
            bindings.push(SettingsBinding::Inherit {
                name: lb.name().to_owned(),
            });
        }
    }
    bindings
}

/// A manifest binding as Cloudflare holds it under `name`; a d1 binding gets the id that
/// `database_id` gives for its database's key.
pub(crate) fn wire_binding<E>(
    name: &str,
    binding: &Binding,
    database_id: impl FnOnce(&str) -> Result<String, E>,
) -> Result<cloudflare::Binding, E> {
    let name = name.to_owned();
    Ok(match binding {
        Binding::D1 { database } => cloudflare::Binding::D1 {
            name,
            database_id: database_id(database)?,
        },
        Binding::PlainText { text } => cloudflare::Binding::PlainText {
            name,
            text: text.clone(),
        },
        Binding::KvNamespace { namespace_id } => cloudflare::Binding::KvNamespace {
            name,
            namespace_id: namespace_id.clone(),
        },
        Binding::R2Bucket {
            bucket_name,
            jurisdiction,
        } => cloudflare::Binding::R2Bucket {
            name,
            bucket_name: bucket_name.clone(),
            jurisdiction: jurisdiction.clone(),
        },
        Binding::Service {
            service,
            entrypoint,
        } => cloudflare::Binding::Service {
            name,
            service: service.clone(),
            environment: None,
            entrypoint: entrypoint.clone(),
        },
        Binding::Ratelimit {
            namespace_id,
            simple,
        } => ratelimit_binding(name, namespace_id, simple),
    })
}

/// A Workers rate-limiting binding as the API takes and returns it; lmsinfra's API model keeps
/// it as a binding it does not otherwise model.
fn ratelimit_binding(
    name: String,
    namespace_id: &str,
    simple: &crate::manifest::model::SimpleLimit,
) -> cloudflare::Binding {
    let fields = json!({
        "namespace_id": namespace_id,
        "simple": { "limit": simple.limit, "period": simple.period },
    });
    cloudflare::Binding::Other(cloudflare::OtherBinding {
        name,
        kind: "ratelimit".to_owned(),
        fields: fields.as_object().cloned().unwrap_or_default(),
    })
}

/// Whether the live binding holds what the manifest's says: the same kind with the same
/// values, a d1 binding pointing at `database_id` (`None`: the database does not exist yet).
pub(crate) fn same_binding(
    desired: &Binding,
    database_id: Option<&str>,
    live: &cloudflare::Binding,
) -> bool {
    use cloudflare::Binding as Live;
    match (desired, live) {
        (
            Binding::D1 { .. },
            Live::D1 {
                database_id: id, ..
            },
        ) => database_id == Some(id.as_str()),
        (Binding::PlainText { text }, Live::PlainText { text: live, .. }) => text == live,
        (
            Binding::KvNamespace { namespace_id },
            Live::KvNamespace {
                namespace_id: live, ..
            },
        ) => namespace_id == live,
        (
            Binding::R2Bucket {
                bucket_name,
                jurisdiction,
            },
            Live::R2Bucket {
                bucket_name: live_bucket,
                jurisdiction: live_jurisdiction,
                ..
            },
        ) => bucket_name == live_bucket && jurisdiction == live_jurisdiction,
        (
            Binding::Service {
                service,
                entrypoint,
            },
            Live::Service {
                service: live_service,
                entrypoint: live_entrypoint,
                ..
            },
        ) => service == live_service && entrypoint == live_entrypoint,
        (Binding::Ratelimit { .. }, Live::Other(live)) if live.kind == "ratelimit" => {
            let cloudflare::Binding::Other(wanted) =
                wire_binding(&live.name, desired, |_| Ok::<_, Infallible>(String::new()))
                    .unwrap_or_else(|never| match never {})
            else {
                return false;
            };
            wanted.fields.iter().all(|(field, value)| {
                live.fields
                    .get(field)
                    .is_some_and(|live| same_json(value, live))
            })
        }
        _ => false,
    }
}

/// JSON values equal as numbers where both are numbers (the API may send `60.0` for `60`).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// For a d1 binding, its database's name and, when the database exists, its id.
fn database_of<'a>(
    desired: &'a Manifest,
    binding: &'a Binding,
    live: &'a Live,
) -> Option<(&'a str, Option<&'a str>)> {
    let Binding::D1 { database } = binding else {
        return None;
    };
    let name = desired
        .d1_databases
        .get(database)
        .map_or(database.as_str(), |d| d.name.as_str());
    let uuid = live
        .d1_databases
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.uuid.as_str());
    Some((name, uuid))
}

/// A binding as a plan shows it: its type, then its fields besides its name.
fn shown(binding: &cloudflare::Binding) -> Map<String, Value> {
    let mut value = Map::new();
    value.insert("type".to_owned(), json!(binding.kind()));
    if let Ok(Value::Object(fields)) = serde_json::to_value(binding) {
        value.extend(
            fields
                .into_iter()
                .filter(|(field, _)| field != "name" && field != "type"),
        );
    }
    value
}

/// The binding as Cloudflare will hold it, with a d1 database's name beside its id.
fn desired_binding(
    name: &str,
    binding: &Binding,
    database: Option<(&str, Option<&str>)>,
) -> Map<String, Value> {
    let id = database.and_then(|(_, id)| id).unwrap_or(KNOWN_AFTER_APPLY);
    let wire = wire_binding(name, binding, |_| Ok::<_, Infallible>(id.to_owned()));
    let mut value = match wire {
        Ok(wire) => shown(&wire),
        Err(never) => match never {},
    };
    if let Some((database_name, _)) = database {
        value.insert("database_name".to_owned(), json!(database_name));
    }
    value
}

/// A live binding as a plan value, with a d1 database's name beside its id.
fn live_binding(binding: &cloudflare::Binding, live: &Live) -> Value {
    let mut value = shown(binding);
    if let cloudflare::Binding::D1 { database_id, .. } = binding {
        if let Some(db) = live.d1_databases.iter().find(|d| &d.uuid == database_id) {
            value.insert("database_name".to_owned(), json!(db.name));
        }
    }
    Value::Object(value)
}

/// Warn about Workers and databases that look like this environment's but that no manifest
/// declares: apply keeps them, and a human should know they are there.
fn unmanaged(desired: &Manifest, live: &Live, options: &DiffOptions, plan: &mut Plan) {
    let declared: BTreeSet<&str> = desired
        .workers
        .values()
        .map(|w| w.name.as_str())
        .chain(desired.d1_databases.values().map(|d| d.name.as_str()))
        .collect();
    let Some(pattern) = NamePattern::of(declared.iter().copied()) else {
        return;
    };
    let unmanaged = |name: &str| {
        pattern.matches(name)
            && !declared.contains(name)
            && !options.declared_elsewhere.contains(name)
    };
    for script in live.scripts.iter().filter(|s| unmanaged(s)) {
        plan.warnings.push(Warning {
            address: Address::Unmanaged {
                kind: Unmanaged::Worker,
                name: script.clone(),
            },
            message: format!(
                "Worker {script} looks like part of {} but no manifest declares it; apply keeps it",
                desired.environment
            ),
        });
    }
    for db in live.d1_databases.iter().filter(|d| unmanaged(&d.name)) {
        plan.warnings.push(Warning {
            address: Address::Unmanaged {
                kind: Unmanaged::D1,
                name: db.name.clone(),
            },
            message: format!(
                "D1 database {} looks like part of {} but no manifest declares it; apply keeps it",
                db.name, desired.environment
            ),
        });
    }
}

/// The naming pattern an environment's resources share: the common prefix up to a dash and
/// the common suffix from a dash (`lms-…-staging`).
#[derive(Debug, PartialEq)]
pub(super) struct NamePattern {
    pub(super) prefix: String,
    pub(super) suffix: String,
}

impl NamePattern {
    pub(super) fn of<'a>(names: impl Iterator<Item = &'a str>) -> Option<Self> {
        let names: Vec<&str> = names.collect();
        let first = *names.first()?;
        let mut prefix = first.len();
        let mut suffix = first.len();
        for name in &names[1..] {
            prefix = first
                .bytes()
                .zip(name.bytes())
                .take(prefix)
                .take_while(|(a, b)| a == b)
                .count();
            suffix = first
                .bytes()
                .rev()
                .zip(name.bytes().rev())
                .take(suffix)
                .take_while(|(a, b)| a == b)
                .count();
        }
        let prefix = &first[..prefix];
        let prefix = prefix.rfind('-').map_or("", |at| &prefix[..=at]);
        let suffix = &first[first.len() - suffix..];
        let suffix = suffix.find('-').map_or("", |at| &suffix[at..]);
        (!prefix.is_empty() || !suffix.is_empty()).then(|| Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    fn matches(&self, name: &str) -> bool {
        name.len() >= self.prefix.len() + self.suffix.len()
            && name.starts_with(&self.prefix)
            && name.ends_with(&self.suffix)
    }
}
