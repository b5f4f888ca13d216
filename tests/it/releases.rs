//! Releases: one annotated version per changed Worker per apply, `releases`, `rollback` with its
//! preflight, and plan and apply after a rollback.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Lmsinfra, Project, Run, TestSandbox, form, secret_digest};

/// The secrets each API Worker requires.
const SECRETS: [&str; 4] = [
    "TALLY_WEBHOOK_SECRET",
    "TALLY_SIGNING_SECRET",
    "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
    "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
];

const PATCH_SETTINGS: &str = "PATCH /accounts/{account_id}/workers/scripts/{script_name}/settings";
const PUT_SECRET: &str = "PUT /accounts/{account_id}/workers/scripts/{script_name}/secrets";
const POST_DEPLOYMENT: &str =
    "POST /accounts/{account_id}/workers/scripts/{script_name}/deployments";

fn script(name: &str) -> String {
    format!("/accounts/{{account}}/workers/scripts/{name}")
}

/// The LMS's manifests in a git repository of their own with one commit; its short sha.
fn committed_project() -> (Project, String) {
    let project = Project::new();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(project.path())
            .args(["-c", "user.name=lms", "-c", "user.email=lms@example.com"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "manifests"]);
    let sha = git(&["rev-parse", "--short", "HEAD"]).trim().to_owned();
    (project, sha)
}

/// `apply ENV --auto-approve` with each required secret set to `value of NAME{suffix}`.
fn apply(sandbox: &TestSandbox, project: &Project, env: &str, suffix: &str, extra: &[&str]) -> Run {
    let mut command = Lmsinfra::new(sandbox)
        .project(project)
        .args(["apply", env, "--auto-approve"])
        .args(extra);
    for (i, name) in SECRETS.iter().enumerate() {
        let var = format!("LMSINFRA_TEST_SECRET_{i}");
        command = command
            .env(&var, format!("value of {name}{suffix}"))
            .args(["--secret", &format!("{name}=env:{var}")]);
    }
    command.run()
}

fn versions(sandbox: &TestSandbox, name: &str) -> Vec<Value> {
    sandbox.get(&format!("{}/versions?deployable=true", script(name)))["items"]
        .as_array()
        .expect("items")
        .clone()
}

fn deployments(sandbox: &TestSandbox, name: &str) -> Vec<Value> {
    sandbox.get(&format!("{}/deployments", script(name)))["deployments"]
        .as_array()
        .expect("deployments")
        .clone()
}

fn route(sandbox: &TestSandbox, route: &str) -> u64 {
    sandbox
        .sandbox()
        .stats()
        .routes
        .get(route)
        .copied()
        .unwrap_or(0)
}

fn state(sandbox: &TestSandbox) -> Value {
    serde_json::from_slice(&std::fs::read(sandbox.state_path()).expect("state")).expect("JSON")
}

#[test]
fn staging_first_apply_makes_one_annotated_version_with_every_secret() {
    let sandbox = TestSandbox::new();
    let (project, sha) = committed_project();
    let before = versions(&sandbox, "lms-api-staging").len();
    let applied = apply(&sandbox, &project, "staging", "", &[]);
    assert_eq!(applied.code, 0, "{applied}");

    let after = versions(&sandbox, "lms-api-staging");
    assert_eq!(after.len(), before + 1, "{after:#?}");
    assert_eq!(route(&sandbox, PATCH_SETTINGS), 1);
    assert_eq!(route(&sandbox, PUT_SECRET), 0);
    let newest = &after[0]["annotations"];
    let message = newest["workers/message"].as_str().expect("a message");
    assert!(
        message.starts_with(&format!("lmsinfra apply staging {sha} plan ")),
        "{message}"
    );
    assert!(
        message.ends_with(&format!("; secrets set: {}", SECRETS.join(", "))),
        "{message}"
    );
    assert_eq!(newest["workers/tag"], json!(sha));

    // The Stream key id and its PEM changed in the same deployment: the version it serves
    // holds both new values.
    let serving = deployments(&sandbox, "lms-api-staging");
    assert_eq!(serving[0]["versions"][0]["version_id"], after[0]["id"]);
    let state = state(&sandbox);
    let version = state["account"]["scripts"]["lms-api-staging"]["versions"]
        .as_array()
        .and_then(|v| v.last())
        .expect("the newest version");
    for name in SECRETS {
        assert_eq!(
            version["secrets"][name],
            json!(secret_digest(&state, &format!("value of {name}"))),
            "{name}"
        );
    }
    assert!(
        !serde_json::to_string(&state["account"]["scripts"]["lms-api-staging"]["versions"])
            .unwrap()
            .contains("value of"),
        "a secret value in the version history"
    );
}

#[test]
fn a_manifest_outside_git_is_annotated_as_such_and_applies() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let applied = apply(&sandbox, &project, "staging", "", &[]);
    assert_eq!(applied.code, 0, "{applied}");
    let newest = &versions(&sandbox, "lms-api-staging")[0]["annotations"];
    let message = newest["workers/message"].as_str().expect("a message");
    assert!(
        message.starts_with("lmsinfra apply staging no-git plan "),
        "{message}"
    );
    assert_eq!(newest.get("workers/tag"), None);
}

/// Production applied once with every secret, then once more with a changed plain-text
/// binding and no secret: two lmsinfra versions, the second serving.
fn production_twice() -> (TestSandbox, Project, String) {
    let sandbox = TestSandbox::new();
    let (project, sha) = committed_project();
    // The seeded production already has its secrets: --force-secrets writes them again, so
    // this apply makes a version of its own.
    let first = apply(&sandbox, &project, "production", "", &["--force-secrets"]);
    assert_eq!(first.code, 0, "{first}");
    project.edit("production", |text| {
        text.replace(
            "https://lms-viewer.example.workers.dev\" }",
            "https://lms.example.com\" }",
        )
    });
    let second = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["apply", "production", "--auto-approve"])
        .run();
    assert_eq!(second.code, 0, "{second}");
    (sandbox, project, sha)
}

#[test]
fn rollback_deploys_the_previous_version_and_plan_and_apply_respect_it() {
    let (sandbox, project, sha) = production_twice();
    let history = versions(&sandbox, "lms-api");
    let (newest, previous) = (history[0]["id"].clone(), history[1]["id"].clone());

    let dry = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["rollback", "production", "--worker", "api", "--dry-run"])
        .run();
    assert_eq!(dry.code, 0, "{dry}");
    assert!(dry.stdout.contains(previous.as_str().unwrap()), "{dry}");
    assert_eq!(route(&sandbox, POST_DEPLOYMENT), 0, "a dry run deployed");

    let refused = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["rollback", "production", "--worker", "api"])
        .run();
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("--auto-approve"), "{refused}");

    let rolled = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "rollback",
            "production",
            "--worker",
            "api",
            "--auto-approve",
        ])
        .run();
    assert_eq!(rolled.code, 0, "{rolled}");
    // The rolled-back Worker's smoke checks ran against the version that serves again.
    assert!(
        rolled.stdout.contains("Smoke checks of production")
            && rolled.stdout.contains("✓ worker.api health")
            && !rolled.stdout.contains("worker.viewer"),
        "{rolled}"
    );
    let serving = &deployments(&sandbox, "lms-api")[0];
    assert_eq!(
        serving["versions"],
        json!([{"version_id": previous, "percentage": 100.0}])
    );
    let message = serving["annotations"]["workers/message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "lmsinfra rollback production to {}",
            &previous.as_str().unwrap()[..8]
        )
    );

    let releases = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "releases",
            "production",
            "--worker",
            "api",
            "--format",
            "json",
        ])
        .run();
    assert_eq!(releases.code, 0, "{releases}");
    let listed: Value = serde_json::from_str(&releases.stdout).expect("JSON");
    let worker = &listed["workers"][0];
    assert_eq!(worker["deployments"][0]["message"], json!(message));
    assert_eq!(worker["deployments"][0]["triggered_by"], json!("rollback"));
    assert_eq!(
        worker["deployments"][0]["versions"][0]["deployable"],
        json!(true)
    );
    assert_eq!(worker["versions"][0]["id"], newest);
    assert_eq!(worker["versions"][1]["tag"], json!(sha));

    let planned = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["plan", "production", "--no-probe"])
        .run();
    assert_eq!(planned.code, 3, "{planned}");
    assert!(
        planned.stdout.contains(&format!(
            "production is rolled back to {} since ",
            previous.as_str().unwrap()
        )),
        "{planned}"
    );

    let refused = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["apply", "production", "--auto-approve"])
        .run();
    assert_eq!(refused.code, 3, "{refused}");
    assert_eq!(deployments(&sandbox, "lms-api")[0]["id"], serving["id"]);

    let forward = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["apply", "production", "--auto-approve", "--roll-forward"])
        .run();
    assert_eq!(forward.code, 0, "{forward}");
    assert_eq!(
        deployments(&sandbox, "lms-api")[0]["versions"][0]["version_id"],
        newest
    );
    let converged = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["plan", "production", "--no-probe", "--detailed-exitcode"])
        .run();
    assert_eq!(converged.code, 0, "{converged}");
}

#[test]
fn rollback_across_a_secret_change_refuses_unless_allowed() {
    let (sandbox, project, _) = production_twice();
    // A third apply rotates every secret.
    let rotated = apply(
        &sandbox,
        &project,
        "production",
        " rotated",
        &["--force-secrets"],
    );
    assert_eq!(rotated.code, 0, "{rotated}");
    let target = versions(&sandbox, "lms-api")[1]["id"].clone();
    let target = target.as_str().unwrap();

    let refused = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "rollback",
            "production",
            "--worker",
            "api",
            "--auto-approve",
        ])
        .run();
    assert_eq!(refused.code, 3, "{refused}");
    for name in SECRETS {
        assert!(refused.stderr.contains(name), "{name}: {refused}");
    }
    assert!(!refused.stderr.contains("value of"), "{refused}");
    assert_eq!(
        route(&sandbox, POST_DEPLOYMENT),
        0,
        "a refused rollback deployed"
    );

    let allowed = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "rollback",
            "production",
            "--worker",
            "api",
            "--auto-approve",
            "--allow-secret-revert",
        ])
        .run();
    assert_eq!(allowed.code, 0, "{allowed}");
    assert_eq!(
        deployments(&sandbox, "lms-api")[0]["versions"][0]["version_id"],
        json!(target)
    );
}

#[test]
fn rollback_to_a_version_whose_database_is_gone_is_refused_before_any_write() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let applied = apply(&sandbox, &project, "staging", "", &[]);
    assert_eq!(applied.code, 0, "{applied}");
    let api = script("lms-api-staging");
    // A version binding a database of its own, then one without it, then the database goes.
    let created = sandbox.send(
        "POST",
        "/accounts/{account}/d1/database",
        crate::support::Body::Json(json!({"name": "lms-scratch"})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let uuid = created.body["result"]["uuid"].as_str().unwrap().to_owned();
    let kept: Vec<Value> = sandbox.get(&format!("{api}/settings"))["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| json!({"name": b["name"], "type": b["type"]}))
        .collect();
    let mut with_scratch = kept.clone();
    with_scratch.push(json!({"name": "SCRATCH", "type": "d1", "database_id": uuid}));
    for bindings in [with_scratch, kept] {
        let settings = json!({ "bindings": bindings }).to_string();
        let patched = sandbox.send(
            "PATCH",
            &format!("{api}/settings"),
            form(&[("settings", None, &settings)]),
        );
        assert_eq!(patched.status, 200, "{}", patched.body);
    }
    let target = versions(&sandbox, "lms-api-staging")[1]["id"].clone();
    let deleted = sandbox.send(
        "DELETE",
        &format!("/accounts/{{account}}/d1/database/{uuid}"),
        crate::support::Body::None,
    );
    assert_eq!(deleted.status, 200, "{}", deleted.body);

    let refused = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "rollback",
            "staging",
            "--worker",
            "api",
            "--auto-approve",
            "--to-version",
            target.as_str().unwrap(),
        ])
        .run();
    assert_eq!(refused.code, 3, "{refused}");
    assert!(refused.stderr.contains("SCRATCH"), "{refused}");
    assert_eq!(route(&sandbox, POST_DEPLOYMENT), 0);

    let unknown = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "rollback",
            "staging",
            "--worker",
            "api",
            "--auto-approve",
            "--to-version",
            "00000000-0000-4000-8000-000000000000",
        ])
        .run();
    assert_eq!(unknown.code, 1, "{unknown}");
    assert!(
        unknown
            .stderr
            .contains("00000000-0000-4000-8000-000000000000 is not a version of lms-api-staging"),
        "{unknown}"
    );
    assert_eq!(route(&sandbox, POST_DEPLOYMENT), 0);
}

#[test]
fn releases_lists_deployments_and_versions_with_their_annotations() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let applied = apply(&sandbox, &project, "staging", "", &[]);
    assert_eq!(applied.code, 0, "{applied}");
    let listed = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["releases", "staging", "--worker", "api"])
        .run();
    assert_eq!(listed.code, 0, "{listed}");
    let mut settings = crate::support::snapshot_settings();
    settings.add_filter(r"\d{4}-\d{2}-\d{2}T[0-9:.]+Z", "[TIME]");
    settings.add_filter(r"plan [0-9a-f]{8}", "plan [DIGEST]");
    settings.bind(|| insta::assert_snapshot!(listed.to_string()));
}

#[test]
fn releases_of_an_unknown_worker_names_the_ones_there_are() {
    let sandbox = TestSandbox::new();
    let listed = Lmsinfra::new(&sandbox)
        .args(["releases", "staging", "--worker", "nope"])
        .run();
    assert_eq!(listed.code, 1, "{listed}");
    assert!(
        listed
            .stderr
            .contains("staging has no Worker nope (its Workers: api, viewer)"),
        "{listed}"
    );
}

#[test]
fn rollback_targets_by_tag_steps_and_all_are_checked_before_any_write() {
    let (sandbox, project, sha) = production_twice();
    let history = versions(&sandbox, "lms-api");
    let first_apply = history[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(history[1]["annotations"]["workers/tag"], json!(sha));
    assert_eq!(
        history[0]["annotations"]["workers/tag"],
        json!(format!("{sha}-dirty"))
    );
    let dry = |target: &[&str]| {
        Lmsinfra::new(&sandbox)
            .project(&project)
            .args(["rollback", "production", "--worker", "api", "--dry-run"])
            .args(target)
            .run()
    };

    // The version made from exactly that commit, not the newer one made from a changed tree.
    let by_tag = dry(&["--to-tag", &sha]);
    assert_eq!(by_tag.code, 0, "{by_tag}");
    assert!(
        by_tag
            .stdout
            .contains(&format!("rollback target {first_apply}")),
        "{by_tag}"
    );

    // Two deployments back is the seeded version, from before the secrets were set.
    let by_steps = dry(&["--steps", "2"]);
    assert_eq!(by_steps.code, 3, "{by_steps}");
    assert!(
        by_steps
            .stderr
            .contains("CLOUDFLARE_STREAM_SIGNING_KEY_PEM"),
        "{by_steps}"
    );

    // Every Worker is checked before any is deployed; the viewer has nothing to go back to.
    let all = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["rollback", "production", "--all", "--auto-approve"])
        .run();
    assert_eq!(all.code, 3, "{all}");
    assert!(
        all.stderr
            .contains("lms-viewer has no earlier deployment that served one version at 100%"),
        "{all}"
    );
    let unnamed = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["rollback", "production", "--auto-approve"])
        .run();
    assert_eq!(unnamed.code, 1, "{unnamed}");
    assert!(
        unnamed
            .stderr
            .contains("production has several Workers (api, viewer)"),
        "{unnamed}"
    );

    let no_tag = dry(&["--to-tag", "0000000"]);
    assert_eq!(no_tag.code, 1, "{no_tag}");
    assert!(
        no_tag
            .stderr
            .contains("no deployable version of lms-api is tagged 0000000"),
        "{no_tag}"
    );
    assert_eq!(route(&sandbox, POST_DEPLOYMENT), 0, "a dry run deployed");
}

#[test]
fn rollback_to_a_version_outside_the_deployable_window_is_refused_before_any_write() {
    let sandbox = TestSandbox::new();
    let api = script("lms-api-staging");
    let oldest = versions(&sandbox, "lms-api-staging")[0]["id"].clone();
    for _ in 0..100 {
        let settings = json!({ "compatibility_flags": ["nodejs_compat"] }).to_string();
        let patched = sandbox.send(
            "PATCH",
            &format!("{api}/settings"),
            form(&[("settings", None, &settings)]),
        );
        assert_eq!(patched.status, 200, "{}", patched.body);
    }
    let refused = Lmsinfra::new(&sandbox)
        .args([
            "rollback",
            "staging",
            "--worker",
            "api",
            "--auto-approve",
            "--to-version",
            oldest.as_str().unwrap(),
        ])
        .run();
    assert_eq!(refused.code, 3, "{refused}");
    assert!(refused.stderr.contains("newest 100 versions"), "{refused}");
    assert_eq!(route(&sandbox, POST_DEPLOYMENT), 0);
}
