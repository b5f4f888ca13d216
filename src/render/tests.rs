//! Snapshots of the three renderers: the audited staging plan, and one plan with every action.

use serde_json::json;

use super::*;
use crate::plan::{DiffOptions, diff};
use crate::testing::{
    STAGING, api, audited, binding, live_with_old_database, manifest, probed, with_absent_database,
};

fn audited_plan() -> Plan {
    diff(&manifest(STAGING), &audited(), &DiffOptions::default())
}

/// A plan with a replace, a long value changed, drift, warnings, a delete and no blockers.
fn busy_plan() -> Plan {
    let mut live = live_with_old_database();
    let probe = probed(&[("x-frame-options", "SAMEORIGIN")], None);
    live.probes = probe.probes;
    let worker = api(&mut live);
    worker.bindings[0] = binding("DB", "kv_namespace", json!({ "namespace_id": "0f2ac74b" }));
    worker.bindings[1] = binding(
        "ALLOWED_ORIGINS",
        "plain_text",
        json!({ "text": "https://lms-viewer-staging.example.workers.dev, https://old-admin.example.workers.dev" }),
    );
    worker.compatibility_date = Some("2024-06-01".to_owned());
    worker.bindings.push(binding(
        "DASHBOARD_VAR",
        "plain_text",
        json!({ "text": "x" }),
    ));
    worker
        .bindings
        .push(binding("DEBUG_VAR", "plain_text", json!({ "text": "1" })));
    let options = DiffOptions {
        allow_destroy: true,
        force_secrets: true,
        supplied_secrets: ["TALLY_SIGNING_SECRET".to_owned()].into(),
        ..DiffOptions::default()
    };
    let mut desired = with_absent_database(false);
    desired.workers["api"]
        .bindings
        .insert_absent("DASHBOARD_VAR".to_owned());
    diff(&desired, &live, &options)
}

#[test]
fn text_of_the_audited_staging_plan() {
    insta::assert_snapshot!(text(&audited_plan(), false));
}

#[test]
fn text_of_a_plan_with_every_action() {
    insta::assert_snapshot!(text(&busy_plan(), false));
}

#[test]
fn text_in_colour_marks_blockers_red() {
    let out = text(&audited_plan(), true);
    assert!(out.contains("\u{1b}[1m\u{1b}[31mBlocked"), "{out}");
    assert!(out.contains("\u{1b}[1m\u{1b}[32m  +"), "{out}");
}

#[test]
fn text_of_an_empty_plan_says_no_changes() {
    let plan = diff(
        &manifest(STAGING),
        &crate::testing::converged(),
        &DiffOptions::default(),
    );
    assert_eq!(
        text(&plan, false),
        "No changes. Live infrastructure matches the manifest.\n"
    );
}

#[test]
fn json_of_the_audited_staging_plan() {
    insta::assert_snapshot!(json(&audited_plan()));
}

#[test]
fn markdown_of_the_audited_staging_plan() {
    insta::assert_snapshot!(markdown(&audited_plan()));
}

#[test]
fn markdown_of_a_plan_with_every_action() {
    insta::assert_snapshot!(markdown(&busy_plan()));
}

#[test]
fn markdown_over_the_comment_limit_is_cut_with_a_note() {
    let mut plan = audited_plan();
    let template = plan.changes[1].clone();
    for i in 0..200 {
        let mut c = template.clone();
        c.address = crate::plan::Address::Binding {
            worker: format!("w{i}"),
            name: "VAR".to_owned(),
        };
        c.action = crate::plan::Action::Create;
        c.after = Some(json!({ "type": "plain_text", "text": "x".repeat(1000) }));
        plan.changes.push(c);
    }
    let out = markdown(&plan);
    assert!(out.len() <= MARKDOWN_LIMIT, "{} characters", out.len());
    assert!(out.contains("**Cut to fit a comment:**"));
    assert!(out.contains("Run `lmsinfra plan staging` for the whole plan."));
    assert!(out.starts_with("<!-- lmsinfra-plan:staging -->"));
    assert!(out.contains("Apply will refuse until these are resolved"));
}

#[test]
fn a_plan_never_holds_a_supplied_secret_value() {
    let out = json(&busy_plan());
    assert!(out.contains("(sensitive value)"));
    assert!(!out.contains("\"text\": \"s3cr3t"));
}
