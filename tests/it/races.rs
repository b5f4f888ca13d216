//! Races between apply and other writers, through the real binary against the sandbox: a
//! binding added while apply waits for "yes", or by a second apply between the first one's plan
//! and its write, is still there afterwards; a binding changed in that window stops apply
//! instead of being overwritten.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use lmsinfra_sandbox::Exchange;
use serde_json::{Value, json};

use crate::apply::with_secrets;
use crate::support::{
    ACCOUNT_ID, Body, Lmsinfra, Project, Run, TOKEN, TestSandbox, lmsinfra_snapshot,
};

const SCRIPTS: &str = "/accounts/{account}/workers/scripts";
const SETTINGS_ROUTE: &str = "/accounts/{account_id}/workers/scripts/{script_name}/settings";

/// The line of staging's manifest that declares `ALLOWED_ORIGINS`.
const ALLOWED_ORIGINS: &str = "      ALLOWED_ORIGINS: { type: plain_text, text: \"https://lms-viewer-staging.example.workers.dev\" }\n";

/// Apply staging with every secret supplied, so the sandbox's account is converged.
fn converge(sandbox: &TestSandbox) {
    with_secrets(Lmsinfra::new(sandbox).args(["apply", "staging", "--auto-approve"]))
        .code(0)
        .run();
}

/// A project whose staging manifest is the LMS's own, edited by `edit`.
fn staging_project(edit: impl FnOnce(String) -> String) -> Project {
    let project = Project::new();
    project.edit("staging", |text| {
        assert!(text.contains(ALLOWED_ORIGINS), "the manifest changed");
        edit(text)
    });
    project
}

/// Staging with one more plain-text binding on the API Worker.
fn adding(name: &str) -> Project {
    staging_project(|text| {
        text.replace(
            ALLOWED_ORIGINS,
            &format!("{ALLOWED_ORIGINS}      {name}: {{ type: plain_text, text: \"on\" }}\n"),
        )
    })
}

/// `lmsinfra apply staging --auto-approve` in `project`, against the sandbox at `base_url`.
pub(crate) fn apply_at(base_url: &str, project: &Project) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .current_dir(project.path())
        .env("CLOUDFLARE_API_BASE_URL", base_url)
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
        .env("NO_COLOR", "1")
        .args(["--color", "never", "--dir"])
        .arg(project.path())
        .args(["apply", "staging", "--auto-approve"])
        .stdin(Stdio::null())
        .output()
        .expect("lmsinfra runs");
    Run::from(output)
}

/// A sandbox that runs `second` to completion when it answers the first settings read (the
/// first apply's plan), before that answer is sent: whatever `second` writes lands between the
/// first apply's plan and its write.
fn sandbox_running_between_plan_and_write(
    second: Project,
) -> (TestSandbox, Arc<Mutex<Option<Run>>>) {
    let base_url: Arc<OnceLock<String>> = Arc::default();
    let armed = Arc::new(AtomicBool::new(false));
    let ran: Arc<Mutex<Option<Run>>> = Arc::default();
    let observer = {
        let (base_url, armed, ran) = (base_url.clone(), armed.clone(), ran.clone());
        move |exchange: &Exchange| {
            let settings_read =
                exchange.method == "GET" && exchange.route.as_deref() == Some(SETTINGS_ROUTE);
            if !settings_read || !armed.swap(false, Ordering::SeqCst) {
                return;
            }
            let url = base_url.get().expect("the sandbox's address is known");
            // The second apply talks to this sandbox while this answer waits.
            let run = tokio::task::block_in_place(|| apply_at(url, &second));
            *ran.lock().expect("not poisoned") = Some(run);
        }
    };
    let sandbox = TestSandbox::with(|config| config.observer = Some(Arc::new(observer)));
    base_url
        .set(sandbox.base_url())
        .expect("the address is set once");
    converge(&sandbox);
    armed.store(true, Ordering::SeqCst);
    (sandbox, ran)
}

/// Apply `first` on a sandbox that runs `second`'s apply between `first`'s plan and its write
/// (see [`sandbox_running_between_plan_and_write`]): the sandbox, then both runs.
fn applies_racing(first: &Project, second: Project) -> (TestSandbox, Run, Run) {
    let (sandbox, second) = sandbox_running_between_plan_and_write(second);
    let first = Lmsinfra::new(&sandbox)
        .project(first)
        .args(["apply", "staging", "--auto-approve"])
        .run();
    let second = second
        .lock()
        .expect("not poisoned")
        .take()
        .expect("the second apply ran between the first one's plan and its write");
    (sandbox, first, second)
}

fn api_bindings(sandbox: &TestSandbox) -> Vec<Value> {
    sandbox.get(&format!("{SCRIPTS}/lms-api-staging/settings"))["bindings"]
        .as_array()
        .expect("bindings")
        .clone()
}

fn binding_names(sandbox: &TestSandbox) -> Vec<String> {
    api_bindings(sandbox)
        .iter()
        .map(|b| b["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// `plan staging --no-probe --out FILE` in `project`, which must find changes: the file.
fn save_plan(sandbox: &TestSandbox, project: &Project) -> std::path::PathBuf {
    let saved = project.path().join("staging.plan.json");
    Lmsinfra::new(sandbox)
        .project(project)
        .args(["plan", "staging", "--no-probe", "--out"])
        .arg(&saved)
        .code(0)
        .run();
    saved
}

/// Run `lmsinfra apply staging ARGS` in `project` on a terminal, put a secret on the API Worker
/// while apply waits for "yes" (a colleague's `wrangler secret put`), answer "yes": whether
/// apply succeeded, and what it showed.
fn put_a_secret_while_apply_waits_for_yes(
    sandbox: &TestSandbox,
    project: &Project,
    args: &str,
) -> (bool, String) {
    use std::io::{Read, Write};
    let line = format!(
        "'{}' --color never --dir '{}' apply staging {args}",
        env!("CARGO_BIN_EXE_lmsinfra"),
        project.path().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("CLOUDFLARE_API_BASE_URL", sandbox.base_url())
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (lines, seen) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let mut chunk = [0; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut chunk) {
            shown.extend_from_slice(&chunk[..n]);
            let _ = lines.send(String::from_utf8_lossy(&shown).into_owned());
        }
        String::from_utf8_lossy(&shown).into_owned()
    });
    let prompt = "Apply these changes to staging? Only 'yes' will be accepted:";
    while !seen
        .recv()
        .expect("apply prompts before it ends")
        .contains(prompt)
    {}

    let put = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/lms-api-staging/secrets"),
        Body::Json(json!({"name": "COLLEAGUE_SECRET", "text": "theirs", "type": "secret_text"})),
    );
    assert_eq!(put.status, 200, "{}", put.body);

    stdin.write_all(b"yes\n").expect("the answer is typed");
    drop(stdin);
    let status = child.wait().expect("script(1) ends");
    let shown = reader.join().expect("stdout is drained");
    (status.success(), shown)
}

#[test]
fn a_secret_put_while_apply_waits_for_yes_is_kept() {
    let sandbox = TestSandbox::new();
    let project = adding("FEATURE_NEW_PLAYER");
    converge(&sandbox);
    let (succeeded, shown) = put_a_secret_while_apply_waits_for_yes(&sandbox, &project, "");
    assert!(succeeded, "{shown}");
    assert!(
        shown.contains("Apply complete: 1 step done. A fresh plan of staging is empty."),
        "{shown}"
    );
    let names = binding_names(&sandbox);
    for kept in [
        "COLLEAGUE_SECRET",
        "FEATURE_NEW_PLAYER",
        "DB",
        "ALLOWED_ORIGINS",
    ] {
        assert!(names.iter().any(|n| n == kept), "{kept} is gone: {names:?}");
    }
}

#[test]
fn a_secret_put_while_apply_of_a_saved_plan_waits_for_yes_stales_the_plan() {
    let sandbox = TestSandbox::new();
    let project = adding("FEATURE_NEW_PLAYER");
    converge(&sandbox);
    let saved = save_plan(&sandbox, &project);
    let (succeeded, shown) = put_a_secret_while_apply_waits_for_yes(
        &sandbox,
        &project,
        &format!("--plan '{}'", saved.display()),
    );
    // The plan's read no longer stands once "yes" is typed: refused before any write.
    assert!(!succeeded, "{shown}");
    assert!(shown.contains("is stale: the newest version"), "{shown}");
    let names = binding_names(&sandbox);
    assert!(names.iter().any(|n| n == "COLLEAGUE_SECRET"), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "FEATURE_NEW_PLAYER"),
        "apply wrote: {names:?}"
    );
}

#[test]
fn plan_reads_each_workers_settings_only_after_its_newest_version() {
    // What makes a saved plan's check sound: a settings read sent after the versions answer
    // came back cannot predate the newest version the plan records. At 30 ms a round trip,
    // each settings answer comes at least one round trip after its Worker's versions answer.
    let latency = std::time::Duration::from_millis(30);
    let seen: Arc<Mutex<Vec<(std::time::Instant, String)>>> = Arc::default();
    let sandbox = {
        let seen = seen.clone();
        TestSandbox::with(move |config| {
            config.latency = latency;
            config.observer = Some(Arc::new(move |exchange: &Exchange| {
                if exchange.method == "GET" {
                    let mut seen = seen.lock().expect("not poisoned");
                    seen.push((std::time::Instant::now(), exchange.path.clone()));
                }
            }));
        })
    };
    Lmsinfra::new(&sandbox)
        .args(["plan", "staging", "--no-probe"])
        .code(3)
        .run();
    let seen = seen.lock().expect("not poisoned");
    let answered = |suffix: &str| {
        let found: Vec<std::time::Instant> = seen
            .iter()
            .filter(|(_, path)| path.ends_with(suffix))
            .map(|(at, _)| *at)
            .collect();
        assert_eq!(found.len(), 1, "one read of {suffix}");
        found[0]
    };
    for script in ["lms-api-staging", "lms-viewer-staging"] {
        let versions = answered(&format!("/scripts/{script}/versions"));
        let settings = answered(&format!("/scripts/{script}/settings"));
        assert!(
            settings >= versions + latency - std::time::Duration::from_millis(5),
            "{script}'s settings were answered {:?} after its versions",
            settings.saturating_duration_since(versions)
        );
    }
}

#[test]
fn a_binding_added_while_plan_reads_the_account_stales_the_saved_plan() {
    // The second apply lands while the plan's first settings read waits for its answer: the
    // plan may have read the API Worker's settings before the change or after it, but always
    // its newest version before it, so apply of the saved plan refuses instead of writing over
    // the new binding.
    let (sandbox, second) = sandbox_running_between_plan_and_write(adding("ADDED_BY_SECOND"));
    let project = adding("ADDED_BY_FIRST");
    let saved = save_plan(&sandbox, &project);
    let second = second
        .lock()
        .expect("not poisoned")
        .take()
        .expect("the second apply ran while the plan read the account");
    assert_eq!(second.code, 0, "{second}");
    let first = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "apply",
            "staging",
            "--auto-approve",
            "--no-verify",
            "--plan",
        ])
        .arg(&saved)
        .run();
    assert_eq!(first.code, 3, "{first}");
    assert!(
        first.stderr.contains("is stale: the newest version"),
        "{first}"
    );
    let names = binding_names(&sandbox);
    assert!(names.iter().any(|n| n == "ADDED_BY_SECOND"), "{names:?}");
}

#[test]
fn two_applies_adding_different_bindings_keep_both() {
    let (sandbox, first, second) =
        applies_racing(&adding("ADDED_BY_FIRST"), adding("ADDED_BY_SECOND"));
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(first.code, 0, "{first}");
    let names = binding_names(&sandbox);
    for kept in ["ADDED_BY_FIRST", "ADDED_BY_SECOND", "DB", "ALLOWED_ORIGINS"] {
        assert!(names.iter().any(|n| n == kept), "{kept} is gone: {names:?}");
    }
}

#[test]
fn two_applies_adding_one_name_with_different_values_do_not_overwrite_each_other() {
    let second = staging_project(|text| {
        text.replace(
            ALLOWED_ORIGINS,
            &format!(
                "{ALLOWED_ORIGINS}      SHARED_FLAG: {{ type: plain_text, text: \"second\" }}\n"
            ),
        )
    });
    let (sandbox, first, second) = applies_racing(&adding("SHARED_FLAG"), second);
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(first.code, 1, "{first}");
    assert!(
        first
            .stderr
            .contains("the bindings of lms-api-staging changed since the plan was read"),
        "{first}"
    );
    let shared = api_bindings(&sandbox)
        .into_iter()
        .find(|b| b["name"] == "SHARED_FLAG")
        .expect("SHARED_FLAG is bound");
    assert_eq!(shared["text"], "second");
}

#[test]
fn a_binding_changed_between_plan_and_write_stops_apply() {
    let changed = staging_project(|text| {
        text.replace(
            ALLOWED_ORIGINS,
            "      ALLOWED_ORIGINS: { type: plain_text, text: \"https://viewer.example.com\" }\n",
        )
    });
    let (sandbox, first, second) = applies_racing(&adding("ADDED_BY_FIRST"), changed);
    assert_eq!(second.code, 0, "{second}");
    lmsinfra_snapshot!(first);
    let origins = api_bindings(&sandbox)
        .into_iter()
        .find(|b| b["name"] == "ALLOWED_ORIGINS")
        .expect("ALLOWED_ORIGINS is bound");
    assert_eq!(origins["text"], "https://viewer.example.com");
}

#[test]
fn a_saved_plan_whose_changes_were_edited_is_refused() {
    let sandbox = TestSandbox::new();
    let project = adding("FEATURE_NEW_PLAYER");
    converge(&sandbox);
    let saved = save_plan(&sandbox, &project);
    let mut plan: Value =
        serde_json::from_slice(&std::fs::read(&saved).expect("the plan is saved")).expect("JSON");
    let changes = plan["changes"].as_array_mut().expect("changes");
    let added = changes
        .iter_mut()
        .find(|c| c["address"] == "worker.api.binding.FEATURE_NEW_PLAYER")
        .expect("the plan adds the binding");
    added["after"]["text"] = json!("off");
    std::fs::write(&saved, plan.to_string()).expect("the edited plan is written");

    let before = binding_names(&sandbox);
    let refused = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["apply", "staging", "--auto-approve", "--plan"])
        .arg(&saved)
        .run();
    assert_eq!(refused.code, 3, "{refused}");
    lmsinfra_snapshot!(refused);
    assert_eq!(binding_names(&sandbox), before, "apply wrote");
}

#[test]
fn two_databases_with_one_name_are_a_warning_naming_both_ids() {
    // The API refuses a duplicate create, so the account is seeded with one from before.
    let seed_dir = tempfile::tempdir().expect("temp dir");
    let seed = seed_dir.path().join("account.json");
    let mut account: Value = serde_json::from_slice(
        &std::fs::read(crate::support::audited_seed()).expect("the audited seed is readable"),
    )
    .expect("JSON");
    account["account"]["d1_databases"]
        .as_array_mut()
        .expect("databases")
        .push(json!({
            "uuid": "af1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
            "name": "lms-db",
            "created_at": "2025-01-15T10:00:00Z",
            "primary_location_hint": "weur",
            "jurisdiction": null
        }));
    std::fs::write(&seed, account.to_string()).expect("the seed is written");
    let sandbox = TestSandbox::with(|config| config.seed = Some(seed.clone()));
    let planned = Lmsinfra::new(&sandbox)
        .args(["plan", "production", "--no-probe"])
        .run();
    assert!(
        planned
            .stdout
            .contains("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f, af1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"),
        "{planned}"
    );
    lmsinfra_snapshot!(planned);
}

#[test]
fn a_database_a_worker_of_another_environment_binds_survives_allow_destroy() {
    // Production's manifest is not in the project, so validate cannot see that lms-db is
    // production's: staging marks it absent and unprotected, and only the plan can refuse,
    // because production's live Worker lms-api binds it.
    let sandbox = TestSandbox::new();
    let project = staging_project(|text| {
        text.replace(
            "d1_databases:\n",
            "d1_databases:\n  old:\n    name: lms-db\n    absent: true\n    protect: false\n",
        )
    });
    std::fs::remove_file(project.manifest("production")).expect("production's manifest goes");
    let refused = with_secrets(Lmsinfra::new(&sandbox).project(&project).args([
        "apply",
        "staging",
        "--auto-approve",
        "--allow-destroy",
    ]))
    .run();
    assert_eq!(refused.code, 3, "{refused}");
    lmsinfra_snapshot!(refused);
    let databases = sandbox.get("/accounts/{account}/d1/database");
    assert!(
        databases
            .as_array()
            .expect("databases")
            .iter()
            .any(|d| d["name"] == "lms-db"),
        "{databases}"
    );
}
