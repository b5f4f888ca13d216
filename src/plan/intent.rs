//! `intent`: what a manifest change means, without credentials or network.
//!
//! The manifest at the base revision stands in for the live account (as if it had been
//! applied), and the work tree's manifest is diffed against it with the same `diff` that plan
//! uses. A pull request from a fork, where no secrets are available, still gets a reviewable
//! plan: bindings added or changed, databases created, secrets newly required, and — through
//! the same warnings as a live plan — what stops being managed (and is kept).

use std::convert::Infallible;

use serde_json::json;

use super::diff::wire_binding;
use super::{Action, Address, Change, DiffOptions, Operation, Plan, diff};
use crate::cloudflare::{self, Ruleset};
use crate::live::{Live, LiveDatabase, LiveWorker, LiveZone};
use crate::manifest::model::Manifest;

/// The plan that turns `base` (the manifest at revision `revision`; `None` when the environment
/// is new) into `head`.
pub fn intent(revision: &str, base: Option<&Manifest>, head: &Manifest) -> Plan {
    let live = base.map(as_applied).unwrap_or_default();
    let options = DiffOptions {
        intent: true,
        ..DiffOptions::default()
    };
    let mut plan = diff(head, &live, &options);
    plan.account_id = head.account_id.clone();
    plan.live_fingerprint = String::new();
    plan.base = Some(revision.to_owned());
    for (key, worker) in &head.workers {
        let before = base
            .and_then(|b| b.workers.get(key))
            .and_then(|w| w.headers.as_ref())
            .map(|h| json!(h));
        let after = worker.headers.as_ref().map(|h| json!(h));
        if before.is_some() || after.is_some() {
            let action = match (&before, &after) {
                (None, Some(_)) => Action::Create,
                (Some(_), None) => Action::Delete,
                (b, a) if b == a => Action::NoOp,
                _ => Action::Update,
            };
            plan.changes.push(Change {
                address: Address::Headers {
                    worker: key.clone(),
                },
                action,
                before,
                after,
                reason: "required response headers (verified by probing, not set by apply)"
                    .to_owned(),
                operation: Operation::None,
            });
        }
    }
    plan.counts = plan.summary();
    plan
}

/// The live account that applying `manifest` would leave: every database, Worker, binding and
/// required secret in place. Database ids stand in as `(id of NAME)`.
fn as_applied(manifest: &Manifest) -> Live {
    let id_of = |name: &str| format!("(id of {name})");
    let mut live = Live {
        account_id: manifest.account_id.clone(),
        ..Live::default()
    };
    for db in manifest.d1_databases.values().filter(|d| !d.absent) {
        live.d1_databases.push(LiveDatabase {
            uuid: id_of(&db.name),
            name: db.name.clone(),
        });
    }
    for worker in manifest.workers.values() {
        let mut bindings = Vec::new();
        for (name, binding) in &worker.bindings {
            let wire = wire_binding(name, binding, |database| {
                Ok::<_, Infallible>(id_of(
                    manifest
                        .d1_databases
                        .get(database)
                        .map_or(database, |d| d.name.as_str()),
                ))
            });
            match wire {
                Ok(wire) => bindings.push(wire),
                Err(never) => match never {},
            }
        }
        for secret in &worker.secrets {
            bindings.push(cloudflare::Binding::SecretText {
                name: secret.clone(),
            });
        }
        live.scripts.insert(worker.name.clone());
        live.workers.insert(
            worker.name.clone(),
            LiveWorker {
                name: worker.name.clone(),
                compatibility_date: Some(worker.compatibility_date.clone()),
                compatibility_flags: worker.compatibility_flags.clone(),
                bindings,
                observability: worker
                    .observability
                    .as_ref()
                    .and_then(|o| serde_json::to_value(o).ok()),
                ..LiveWorker::default()
            },
        );
    }
    for owned in crate::edge::desired(manifest) {
        let zone = live
            .zones
            .entry(owned.zone.clone())
            .or_insert_with(|| LiveZone {
                id: format!("(id of {})", owned.zone),
                rulesets: Default::default(),
            });
        let phase = owned.kind.phase();
        zone.rulesets
            .entry(phase.as_str().to_owned())
            .or_insert_with(|| Ruleset {
                id: format!("(id of {} {})", owned.zone, phase.as_str()),
                phase: phase.as_str().to_owned(),
                version: None,
                last_updated: None,
                rules: Vec::new(),
            })
            .rules
            .push(owned.rule);
    }
    live
}
