//! `diff` and `intent` over a table of cases: every action, every blocker and warning, order.

use serde_json::json;

use super::*;
use crate::live::{Live, LiveDatabase, Probe};
use crate::manifest::model::Manifest;
use crate::testing::{
    STAGING, api, audited, binding, converged, live_with_old_database, manifest, probed, secret,
    supplied, with_absent_database, with_secret_as_plain_text,
};

fn effective(plan: &Plan) -> Vec<(String, Action)> {
    plan.effective_changes()
        .map(|c| (c.address.to_string(), c.action))
        .collect()
}

fn change<'a>(plan: &'a Plan, address: &str) -> &'a Change {
    plan.changes
        .iter()
        .find(|c| c.address.to_string() == address)
        .unwrap_or_else(|| panic!("no change at {address}: {plan:#?}"))
}

fn blockers(plan: &Plan) -> Vec<(String, BlockerKind)> {
    plan.blockers
        .iter()
        .map(|b| (b.address.to_string(), b.kind))
        .collect()
}

#[test]
fn converged_account_gives_an_empty_plan_of_no_ops() {
    let plan = diff(&manifest(STAGING), &converged(), &DiffOptions::default());
    assert!(plan.is_empty(), "{plan:#?}");
    assert!(!plan.is_blocked());
    assert!(plan.warnings.is_empty());
    assert_eq!(plan.summary(), Summary::default());
    assert!(plan.changes.iter().all(|c| c.action == Action::NoOp));
    assert_eq!(
        change(&plan, "d1.main").after.as_ref().unwrap()["uuid"],
        "uuid-staging"
    );
}

#[test]
fn audited_staging_creates_the_database_binds_it_and_blocks_on_each_secret() {
    let plan = diff(&manifest(STAGING), &audited(), &DiffOptions::default());
    assert_eq!(
        effective(&plan),
        [
            ("d1.main".to_owned(), Action::Create),
            ("worker.api.binding.DB".to_owned(), Action::Create),
            (
                "worker.api.binding.ALLOWED_ORIGINS".to_owned(),
                Action::Create
            ),
        ]
    );
    let db = change(&plan, "worker.api.binding.DB")
        .after
        .clone()
        .unwrap();
    assert_eq!(db["database_id"], KNOWN_AFTER_APPLY);
    assert_eq!(db["database_name"], "lms-db-staging");
    assert_eq!(
        blockers(&plan),
        [
            (
                "worker.api.secret.TALLY_WEBHOOK_SECRET".to_owned(),
                BlockerKind::MissingSecret
            ),
            (
                "worker.api.secret.TALLY_SIGNING_SECRET".to_owned(),
                BlockerKind::MissingSecret
            ),
        ]
    );
    let hints = &plan.blockers[0].hints;
    assert_eq!(
        hints[0],
        "wrangler secret put TALLY_WEBHOOK_SECRET --name lms-api-staging"
    );
    assert_eq!(
        hints[1],
        "lmsinfra apply staging --secret TALLY_WEBHOOK_SECRET=env:TALLY_WEBHOOK_SECRET --secret TALLY_SIGNING_SECRET=env:TALLY_SIGNING_SECRET"
    );
    assert_eq!(
        plan.summary(),
        Summary {
            add: 1,
            change: 1,
            destroy: 0
        }
    );
}

#[test]
fn supplied_secrets_become_creates_and_lift_the_blockers() {
    let options = supplied(&["TALLY_WEBHOOK_SECRET", "TALLY_SIGNING_SECRET"]);
    let plan = diff(&manifest(STAGING), &audited(), &options);
    assert!(!plan.is_blocked(), "{:?}", plan.blockers);
    let secret = change(&plan, "worker.api.secret.TALLY_SIGNING_SECRET");
    assert_eq!(secret.action, Action::Create);
    assert_eq!(secret.after, Some(json!(SENSITIVE)));
}

#[test]
fn a_supplied_secret_that_exists_is_rewritten_with_force_secrets() {
    let options = DiffOptions {
        force_secrets: true,
        ..supplied(&["TALLY_SIGNING_SECRET"])
    };
    let plan = diff(&manifest(STAGING), &converged(), &options);
    assert_eq!(
        effective(&plan),
        [(
            "worker.api.secret.TALLY_SIGNING_SECRET".to_owned(),
            Action::Update
        )]
    );
}

#[test]
fn a_supplied_secret_replaces_a_plain_text_binding_of_the_same_name() {
    let live = with_secret_as_plain_text();
    let plan = diff(
        &manifest(STAGING),
        &live,
        &supplied(&["TALLY_SIGNING_SECRET"]),
    );
    assert_eq!(
        change(&plan, "worker.api.secret.TALLY_SIGNING_SECRET").action,
        Action::Replace
    );
}

#[test]
fn a_changed_value_is_an_update_and_a_changed_type_a_replace() {
    let mut live = converged();
    let worker = api(&mut live);
    worker.bindings[1] = binding("ALLOWED_ORIGINS", "plain_text", json!({ "text": "*" }));
    worker.bindings[0] = binding("DB", "kv_namespace", json!({ "namespace_id": "abc" }));
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert_eq!(
        effective(&plan),
        [
            ("worker.api.binding.DB".to_owned(), Action::Replace),
            (
                "worker.api.binding.ALLOWED_ORIGINS".to_owned(),
                Action::Update
            ),
        ]
    );
    assert_eq!(
        plan.summary(),
        Summary {
            add: 0,
            change: 1,
            destroy: 0
        }
    );
}

#[test]
fn a_d1_binding_matches_through_the_deprecated_id_field() {
    let mut live = converged();
    api(&mut live).bindings[0] = binding("DB", "d1", json!({ "id": "uuid-staging" }));
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert!(plan.is_empty(), "{:?}", effective(&plan));
}

#[test]
fn a_d1_binding_to_another_database_is_an_update() {
    let mut live = converged();
    api(&mut live).bindings[0] = binding("DB", "d1", json!({ "database_id": "uuid-prod" }));
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert_eq!(
        effective(&plan),
        [("worker.api.binding.DB".to_owned(), Action::Update)]
    );
}

#[test]
fn compatibility_date_drift_is_an_update_and_flag_order_does_not_matter() {
    let mut live = converged();
    let worker = api(&mut live);
    worker.compatibility_date = Some("2024-01-01".to_owned());
    worker.compatibility_flags = vec!["nodejs_compat".to_owned()];
    let mut desired = manifest(STAGING);
    let api = desired.workers.get_mut("api").unwrap();
    api.compatibility_flags = vec!["url_standard".to_owned(), "nodejs_compat".to_owned()];
    api.compatibility_flags.sort();
    let plan = diff(&desired, &live, &DiffOptions::default());
    assert_eq!(
        effective(&plan),
        [
            ("worker.api.compatibility_date".to_owned(), Action::Update),
            ("worker.api.compatibility_flags".to_owned(), Action::Update),
        ]
    );
    api_flags_reordered_is_no_change();
}

fn api_flags_reordered_is_no_change() {
    let mut live = converged();
    api(&mut live).compatibility_flags = vec!["b".to_owned(), "a".to_owned()];
    let mut desired = manifest(STAGING);
    desired.workers.get_mut("api").unwrap().compatibility_flags =
        vec!["a".to_owned(), "b".to_owned()];
    assert!(diff(&desired, &live, &DiffOptions::default()).is_empty());
}

#[test]
fn a_missing_worker_blocks_with_how_to_deploy_it() {
    let mut live = converged();
    live.scripts.clear();
    live.workers.clear();
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert_eq!(
        blockers(&plan),
        [("worker.api".to_owned(), BlockerKind::MissingWorker)]
    );
    assert!(plan.blockers[0].hints[0].contains("wrangler deploy --name lms-api-staging"));
    assert!(plan.changes.iter().all(|c| c.address.worker().is_none()));
}

#[test]
fn unmentioned_bindings_and_secrets_are_kept_with_a_warning() {
    let mut live = converged();
    let worker = api(&mut live);
    worker.bindings.push(secret("DASHBOARD_SECRET"));
    worker.bindings.push(binding(
        "FEATURE_FLAG",
        "plain_text",
        json!({ "text": "on" }),
    ));
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert!(plan.is_empty());
    let warnings: Vec<_> = plan
        .warnings
        .iter()
        .map(|w| w.address.to_string())
        .collect();
    assert_eq!(
        warnings,
        [
            "worker.api.secret.DASHBOARD_SECRET",
            "worker.api.binding.FEATURE_FLAG"
        ]
    );
    assert!(plan.warnings[0].message.contains("apply keeps it"));
}

#[test]
fn a_protected_database_marked_absent_is_blocked_not_deleted() {
    let plan = diff(
        &with_absent_database(true),
        &live_with_old_database(),
        &DiffOptions {
            allow_destroy: true,
            ..DiffOptions::default()
        },
    );
    assert_eq!(
        blockers(&plan),
        [("d1.old".to_owned(), BlockerKind::ProtectedDatabase)]
    );
    assert!(plan.blockers[0].hints[0].contains("protect: false"));
}

#[test]
fn an_unprotected_database_needs_allow_destroy() {
    let desired = with_absent_database(false);
    let live = live_with_old_database();
    let plan = diff(&desired, &live, &DiffOptions::default());
    assert_eq!(
        blockers(&plan),
        [("d1.old".to_owned(), BlockerKind::ProtectedDatabase)]
    );
    assert!(plan.blockers[0].hints[0].contains("--allow-destroy"));

    let options = DiffOptions {
        allow_destroy: true,
        ..DiffOptions::default()
    };
    let plan = diff(&desired, &live, &options);
    assert!(!plan.is_blocked());
    assert_eq!(effective(&plan), [("d1.old".to_owned(), Action::Delete)]);
    assert_eq!(plan.summary().destroy, 1);
}

#[test]
fn a_database_another_environment_protects_is_never_deleted() {
    // Validation bypassed: staging marks a database absent and unprotected that production's
    // manifest protects.
    let desired = with_absent_database(false);
    let options = DiffOptions {
        allow_destroy: true,
        protected_elsewhere: [("lms-old-staging".to_owned(), "production".to_owned())].into(),
        ..DiffOptions::default()
    };
    let plan = diff(&desired, &live_with_old_database(), &options);
    assert_eq!(
        blockers(&plan),
        [("d1.old".to_owned(), BlockerKind::ProtectedDatabase)]
    );
    assert!(
        plan.blockers[0]
            .message
            .contains("protected by environments/production.yaml"),
        "{:?}",
        plan.blockers
    );
}

#[test]
fn a_database_a_worker_of_another_environment_binds_is_not_deleted() {
    let desired = with_absent_database(false);
    let mut live = live_with_old_database();
    live.other_workers.insert(
        "lms-api".to_owned(),
        crate::live::LiveWorker {
            name: "lms-api".to_owned(),
            bindings: vec![binding("DB", "d1", json!({ "database_id": "uuid-old" }))],
            ..Default::default()
        },
    );
    let options = DiffOptions {
        allow_destroy: true,
        ..DiffOptions::default()
    };
    let plan = diff(&desired, &live, &options);
    assert_eq!(
        blockers(&plan),
        [("d1.old".to_owned(), BlockerKind::DatabaseInUse)]
    );
    assert_eq!(
        plan.blockers[0].message,
        "lms-old-staging is bound to lms-api as DB, a Worker this manifest does not declare"
    );
}

#[test]
fn an_absent_database_that_is_already_gone_is_a_no_op() {
    let plan = diff(
        &with_absent_database(false),
        &converged(),
        &DiffOptions::default(),
    );
    assert!(plan.is_empty());
    assert!(!plan.is_blocked());
}

#[test]
fn a_database_still_bound_by_an_unmentioned_binding_is_not_deleted() {
    let mut live = live_with_old_database();
    api(&mut live).bindings.push(binding(
        "LEGACY_DB",
        "d1",
        json!({ "database_id": "uuid-old" }),
    ));
    let options = DiffOptions {
        allow_destroy: true,
        ..DiffOptions::default()
    };
    let plan = diff(&with_absent_database(false), &live, &options);
    assert_eq!(
        blockers(&plan),
        [("d1.old".to_owned(), BlockerKind::DatabaseInUse)]
    );
}

#[test]
fn a_database_is_created_before_the_binding_and_deleted_after_the_rebinding() {
    let mut live = live_with_old_database();
    live.d1_databases.retain(|d| d.name != "lms-db-staging");
    api(&mut live).bindings[0] = binding("DB", "d1", json!({ "database_id": "uuid-old" }));
    let options = DiffOptions {
        allow_destroy: true,
        ..DiffOptions::default()
    };
    let plan = diff(&with_absent_database(false), &live, &options);
    assert!(!plan.is_blocked(), "{:?}", plan.blockers);
    assert_eq!(
        effective(&plan),
        [
            ("d1.main".to_owned(), Action::Create),
            ("worker.api.binding.DB".to_owned(), Action::Update),
            ("d1.old".to_owned(), Action::Delete),
        ]
    );
}

#[test]
fn undeclared_look_alikes_are_warned_about_but_not_other_environments() {
    let mut live = converged();
    live.scripts.insert("lms-search-staging".to_owned());
    live.scripts.insert("lms-api".to_owned());
    live.scripts.insert("unrelated".to_owned());
    live.d1_databases.push(LiveDatabase {
        uuid: "u2".to_owned(),
        name: "lms-cache-staging".to_owned(),
    });
    live.d1_databases.push(LiveDatabase {
        uuid: "u3".to_owned(),
        name: "lms-other-staging".to_owned(),
    });
    let options = DiffOptions {
        declared_elsewhere: ["lms-other-staging".to_owned()].into(),
        ..DiffOptions::default()
    };
    let plan = diff(&manifest(STAGING), &live, &options);
    let warnings: Vec<_> = plan
        .warnings
        .iter()
        .map(|w| w.address.to_string())
        .collect();
    assert_eq!(
        warnings,
        [
            "unmanaged.worker.lms-search-staging",
            "unmanaged.d1.lms-cache-staging"
        ]
    );
    assert!(plan.is_empty());
}

#[test]
fn name_patterns_cut_at_dashes() {
    let pattern =
        |names: &[&str]| diff::NamePattern::of(names.iter().copied()).map(|p| (p.prefix, p.suffix));
    assert_eq!(
        pattern(&["lms-api-staging", "lms-viewer-staging", "lms-db-staging"]),
        Some(("lms-".to_owned(), "-staging".to_owned()))
    );
    assert_eq!(
        pattern(&["lms-api", "lms-viewer"]),
        Some(("lms-".to_owned(), String::new()))
    );
    assert_eq!(pattern(&["api", "viewer"]), None);
    assert_eq!(pattern(&[]), None);
}

#[test]
fn missing_and_different_headers_are_drift() {
    let live = probed(&[("x-frame-options", "SAMEORIGIN")], None);
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    let drift: Vec<_> = plan
        .drift
        .iter()
        .map(|d| (d.address.to_string(), d.actual.as_deref()))
        .collect();
    assert_eq!(
        drift,
        [
            (
                "worker.api.headers.X-Frame-Options".to_owned(),
                Some("SAMEORIGIN")
            ),
            ("worker.api.headers.X-Content-Type-Options".to_owned(), None),
        ]
    );
    assert!(!plan.is_empty());
    assert!(plan.effective_changes().next().is_none());
    assert!(!plan.is_blocked());
}

#[test]
fn headers_match_by_name_whatever_the_case() {
    let live = probed(
        &[
            ("x-frame-options", "DENY"),
            ("x-content-type-options", " nosniff"),
        ],
        None,
    );
    assert!(diff(&manifest(STAGING), &live, &DiffOptions::default()).is_empty());
}

#[test]
fn an_unreachable_probe_or_a_redirect_is_a_warning() {
    let mut live = converged();
    live.probes.insert(
        "api".to_owned(),
        Probe::Unreachable {
            reason: "connection refused".to_owned(),
        },
    );
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert!(plan.is_empty());
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].message.contains("connection refused"));

    let live = probed(
        &[
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
        ],
        Some("https://elsewhere.example/"),
    );
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert!(
        plan.warnings[0]
            .message
            .contains("redirecting to https://elsewhere.example/")
    );
}

#[test]
fn intent_shows_an_added_binding_and_a_newly_required_secret_as_changes() {
    let base = manifest(STAGING);
    let mut head = base.clone();
    let api = head.workers.get_mut("api").unwrap();
    api.bindings.insert(
        "FEATURE".to_owned(),
        yaml_serde::from_str("{ type: plain_text, text: on }").unwrap(),
    );
    api.secrets.push("NEW_SECRET".to_owned());
    api.bindings.shift_remove("ALLOWED_ORIGINS");
    let plan = intent("HEAD", Some(&base), &head);
    assert_eq!(
        effective(&plan),
        [
            ("worker.api.binding.FEATURE".to_owned(), Action::Create),
            ("worker.api.secret.NEW_SECRET".to_owned(), Action::Create),
        ]
    );
    assert!(!plan.is_blocked());
    assert_eq!(plan.warnings.len(), 1);
    assert_eq!(
        plan.warnings[0].address.to_string(),
        "worker.api.binding.ALLOWED_ORIGINS"
    );
    assert!(plan.live_fingerprint.is_empty());
    assert_eq!(plan.base.as_deref(), Some("HEAD"));
}

#[test]
fn intent_of_an_unchanged_manifest_is_empty_and_of_a_new_environment_creates_all() {
    let base = manifest(STAGING);
    assert!(intent("HEAD", Some(&base), &base).is_empty());
    let plan = intent("HEAD", None, &base);
    let summary = plan.summary();
    assert_eq!(
        (summary.add, summary.change),
        (2, 0),
        "{:?}",
        effective(&plan)
    );
    assert!(!plan.is_blocked());
}

#[test]
fn intent_shows_a_changed_header_requirement() {
    let base = manifest(STAGING);
    let mut head = base.clone();
    head.workers
        .get_mut("api")
        .unwrap()
        .headers
        .as_mut()
        .unwrap()
        .require
        .insert("Referrer-Policy".to_owned(), "no-referrer".to_owned());
    let plan = intent("HEAD", Some(&base), &head);
    assert_eq!(
        effective(&plan),
        [("worker.api.headers".to_owned(), Action::Update)]
    );
}

#[test]
fn the_manifest_hash_ignores_formatting_but_not_meaning() {
    let a = manifest(STAGING);
    let b =
        manifest(&STAGING.replace("X-Frame-Options: DENY", "X-Frame-Options:   DENY  # strict"));
    assert_eq!(manifest_hash(&a), manifest_hash(&b));
    let c = manifest(&STAGING.replace("DENY", "SAMEORIGIN"));
    assert_ne!(manifest_hash(&a), manifest_hash(&c));
}

#[test]
fn a_worker_rolled_back_by_lmsinfra_is_reported_as_such_instead_of_as_differences() {
    let mut live = converged();
    let worker = api(&mut live);
    worker.compatibility_date = Some("2024-01-01".to_owned());
    worker.rollout = Some(crate::live::Rollout {
        newest: Some("v3".to_owned()),
        deployed: vec![crate::cloudflare::DeployedVersion {
            version_id: "v2".to_owned(),
            percentage: 100.0,
        }],
        message: Some("lmsinfra rollback staging to v2".to_owned()),
        deployed_on: Some("2026-12-06T08:00:00Z".to_owned()),
    });
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert_eq!(effective(&plan), []);
    assert_eq!(
        blockers(&plan),
        [("worker.api".to_owned(), BlockerKind::RolledBack)]
    );
    assert_eq!(
        plan.blockers[0].message,
        "staging is rolled back to v2 since 2026-12-06T08:00:00Z (lms-api-staging: lmsinfra rollback staging to v2); the one difference from the manifest is the rollback's, not drift"
    );

    // Any other deployment of an older version is an unsettled rollout, as before.
    let worker = api(&mut live);
    if let Some(rollout) = worker.rollout.as_mut() {
        rollout.message = Some("wrangler rollback".to_owned());
    }
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert_eq!(
        blockers(&plan),
        [("worker.api".to_owned(), BlockerKind::UnsettledRollout)]
    );
}

/// Staging, its database `old` marked absent and unprotected, and `LEGACY_DB` (which binds it)
/// marked absent too.
fn unbinding_and_deleting() -> Manifest {
    let mut desired = with_absent_database(false);
    let api = &mut desired.workers["api"];
    api.bindings.insert_absent("LEGACY_DB".to_owned());
    desired
}

fn live_bound_to_the_old_database() -> Live {
    let mut live = live_with_old_database();
    api(&mut live).bindings.push(binding(
        "LEGACY_DB",
        "d1",
        json!({ "database_id": "uuid-old" }),
    ));
    live
}

#[test]
fn a_binding_marked_absent_is_removed_before_its_database_is_deleted() {
    let options = DiffOptions {
        allow_destroy: true,
        ..DiffOptions::default()
    };
    let plan = diff(
        &unbinding_and_deleting(),
        &live_bound_to_the_old_database(),
        &options,
    );
    assert!(!plan.is_blocked(), "{:?}", plan.blockers);
    assert_eq!(
        effective(&plan),
        [
            ("worker.api.binding.LEGACY_DB".to_owned(), Action::Delete),
            ("d1.old".to_owned(), Action::Delete),
        ]
    );
    let Operation::Settings(settings) = &change(&plan, "worker.api.binding.LEGACY_DB").operation
    else {
        panic!("a removal is a settings write");
    };
    let names: Vec<&str> = settings
        .bindings
        .iter()
        .map(|b| match b {
            SettingsBinding::Declared { name, .. } | SettingsBinding::Inherit { name } => {
                name.as_str()
            }
        })
        .collect();
    assert!(!names.contains(&"LEGACY_DB"), "{names:?}");
    assert!(names.contains(&"TALLY_SIGNING_SECRET"), "{names:?}");
    assert_eq!(
        (plan.summary(), plan.counts),
        (
            Summary {
                add: 0,
                change: 1,
                destroy: 1
            },
            plan.summary()
        )
    );
}

#[test]
fn a_database_still_bound_names_the_absent_way_in_its_hint() {
    let options = DiffOptions {
        allow_destroy: true,
        ..DiffOptions::default()
    };
    let plan = diff(
        &with_absent_database(false),
        &live_bound_to_the_old_database(),
        &options,
    );
    assert_eq!(
        blockers(&plan),
        [("d1.old".to_owned(), BlockerKind::DatabaseInUse)]
    );
    assert_eq!(
        plan.blockers[0].hints[0],
        "to unbind it in the same apply, mark worker.api.binding.LEGACY_DB absent: `LEGACY_DB: { absent: true }` under the Worker's bindings"
    );
}

#[test]
fn a_secret_marked_absent_is_removed_and_then_is_a_no_op() {
    let mut desired = manifest(STAGING);
    desired.workers["api"]
        .secrets
        .push_absent("OLD_TOKEN".to_owned());
    let mut live = converged();
    api(&mut live).bindings.push(secret("OLD_TOKEN"));
    let plan = diff(&desired, &live, &DiffOptions::default());
    assert_eq!(
        effective(&plan),
        [("worker.api.secret.OLD_TOKEN".to_owned(), Action::Delete)]
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

    let plan = diff(&desired, &converged(), &DiffOptions::default());
    assert!(plan.is_empty(), "{plan:#?}");
    assert_eq!(
        change(&plan, "worker.api.secret.OLD_TOKEN").reason,
        "marked absent and already gone"
    );
}

#[test]
fn unmentioned_bindings_and_secrets_stay_kept() {
    let mut live = converged();
    api(&mut live).bindings.push(secret("OLD_TOKEN"));
    api(&mut live)
        .bindings
        .push(binding("FEATURE", "plain_text", json!({ "text": "on" })));
    let plan = diff(&manifest(STAGING), &live, &DiffOptions::default());
    assert!(plan.is_empty(), "{plan:#?}");
    assert_eq!(plan.warnings.len(), 2);
}

#[test]
fn a_present_secret_given_again_is_not_written() {
    let options = supplied(&["TALLY_WEBHOOK_SECRET"]);
    let plan = diff(&manifest(STAGING), &converged(), &options);
    assert!(plan.is_empty(), "{plan:#?}");
    assert!(
        change(&plan, "worker.api.secret.TALLY_WEBHOOK_SECRET")
            .reason
            .contains("--force-secrets")
    );
}

#[test]
fn every_missing_secret_blocker_offers_one_command_for_them_all() {
    let plan = diff(&manifest(STAGING), &audited(), &DiffOptions::default());
    let command = "lmsinfra apply staging --secret TALLY_WEBHOOK_SECRET=env:TALLY_WEBHOOK_SECRET --secret TALLY_SIGNING_SECRET=env:TALLY_SIGNING_SECRET";
    let missing: Vec<&Blocker> = plan
        .blockers
        .iter()
        .filter(|b| b.kind == BlockerKind::MissingSecret)
        .collect();
    assert_eq!(missing.len(), 2);
    for blocker in missing {
        assert_eq!(blocker.hints.last().map(String::as_str), Some(command));
    }
}
