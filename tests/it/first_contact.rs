//! What a new user meets first, through the real binary: wrangler configurations written beside
//! others, `import` of a typical wrangler.toml, the account and the API host named when they are
//! wrong, `check` grading, manifest file names, and the help.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::security::{project, routed_production};
use crate::support::{ACCOUNT_ID, Lmsinfra, Project, Run, TestSandbox, lmsinfra_snapshot, root};

/// Everything a run printed as one line of words, so a check does not depend on where a
/// message was wrapped.
fn flat(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
        .split_whitespace()
        .filter(|word| !["|", "│"].contains(word))
        .collect::<Vec<_>>()
        .join(" ")
}

fn in_dir(sandbox: &TestSandbox, dir: &Path) -> Lmsinfra {
    Lmsinfra::new(sandbox).args(["--dir".as_ref(), dir.as_os_str()])
}

#[test]
fn wrangler_config_refuses_to_clobber_another_workers_file_unless_forced() {
    let sandbox = TestSandbox::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wrangler.json");
    std::fs::write(&config, r#"{ "name": "lms-viewer", "main": "viewer.js" }"#).expect("file");
    let write = |extra: &[&str]| {
        Lmsinfra::new(&sandbox)
            .args(["wrangler-config", "production", "--worker", "api"])
            .args([std::ffi::OsStr::new("--write"), config.as_os_str()])
            .args(extra)
            .run()
    };
    let refused = lmsinfra_snapshot!("wrangler_config_refuses_to_clobber", write(&[]));
    assert_eq!(refused.code, 1);
    assert!(
        std::fs::read_to_string(&config)
            .expect("file")
            .contains("viewer.js"),
        "the file is untouched"
    );
    let forced = write(&["--force"]);
    assert_eq!(forced.code, 0, "{forced}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("file")).expect("JSON");
    assert_eq!(written["name"], "lms-api");
    assert!(written.get("main").is_none(), "replaced whole: {written}");
}

#[test]
fn plan_recommends_the_write_that_keeps_the_other_environments() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    std::fs::write(
        project.path().join("wrangler.json"),
        r#"{ "name": "lms-api", "compatibility_date": "2024-12-01" }"#,
    )
    .expect("configuration");
    let run = in_dir(&sandbox, project.path())
        .args(["plan", "staging"])
        .run();
    let advice = format!(
        "`lmsinfra wrangler-config staging --write {}` adds one and keeps the file's other environments",
        project.path().join("wrangler.json").display()
    );
    assert!(flat(&run).contains(&advice), "{run}");
}

#[test]
fn import_takes_the_account_from_the_environment_and_keeps_credentials_out_of_manifests() {
    let sandbox = TestSandbox::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let canary = "sk_live_canary_7c1e";
    std::fs::write(
        dir.path().join("wrangler.toml"),
        format!(
            r#"name = "lms-api"
compatibility_date = "2024-12-01"
routes = [{{ pattern = "api.example.com/*", zone_name = "example.com" }}]
[vars]
MODE = "prod"
STRIPE_API_KEY = "{canary}"
[env.staging]
name = "lms-api-staging"
"#
        ),
    )
    .expect("wrangler.toml");
    let run = in_dir(&sandbox, dir.path())
        .args([
            "import".as_ref(),
            dir.path().join("wrangler.toml").as_os_str(),
        ])
        .run();
    let run = lmsinfra_snapshot!("import_without_account_id", run);
    assert_eq!(run.code, 0);
    assert!(!run.to_string().contains(canary));
    for environment in ["production", "staging"] {
        let text = std::fs::read_to_string(
            dir.path()
                .join("environments")
                .join(format!("{environment}.yaml")),
        )
        .expect("manifest written");
        assert!(text.contains(ACCOUNT_ID), "{text}");
        assert!(!text.contains(canary), "{text}");
    }
    let production = lmsinfra::manifest::load_valid(dir.path(), "production").expect("loads");
    assert_eq!(
        production.workers["api"].secrets.iter().collect::<Vec<_>>(),
        ["STRIPE_API_KEY"]
    );
    let staging = lmsinfra::manifest::load_valid(dir.path(), "staging").expect("loads");
    assert!(staging.workers["api"].routes.is_empty());

    let refused = in_dir(&sandbox, dir.path())
        .env("CLOUDFLARE_ACCOUNT_ID", "my-account")
        .args([
            "import".as_ref(),
            dir.path().join("wrangler.toml").as_os_str(),
        ])
        .args(["--force"])
        .run();
    lmsinfra_snapshot!("import_with_a_malformed_account_id", refused);
}

#[test]
fn an_account_id_variable_that_is_not_an_account_id_is_refused() {
    let sandbox = TestSandbox::new();
    let run = Lmsinfra::new(&sandbox)
        .env("CLOUDFLARE_ACCOUNT_ID", "lms-production")
        .args(["plan", "production"])
        .run();
    lmsinfra_snapshot!(run);
}

#[test]
fn a_refused_token_names_the_account_and_the_permission() {
    let sandbox = TestSandbox::with(|config| config.token = Some("another-token".to_owned()));
    let run = Lmsinfra::new(&sandbox)
        .args(["plan", "production"])
        .code(1)
        .run();
    assert!(
        flat(&run).contains("wrong account id, or the token lacks `"),
        "{run}"
    );
    assert!(flat(&run).contains(&format!("`{ACCOUNT_ID}`")), "{run}");
}

#[test]
fn an_unreachable_api_is_named_by_host_after_a_few_quick_retries() {
    let sandbox = TestSandbox::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let refused = Lmsinfra::new(&sandbox)
        .env(
            "CLOUDFLARE_API_BASE_URL",
            format!("http://127.0.0.1:{port}/client/v4"),
        )
        .args(["-q", "plan", "production"])
        .code(1)
        .run();
    assert!(
        flat(&refused).contains(&format!(
            "could not reach the Cloudflare API at 127.0.0.1:{port} (2 retries)"
        )),
        "{refused}"
    );
    let unresolved = Lmsinfra::new(&sandbox)
        .env(
            "CLOUDFLARE_API_BASE_URL",
            "https://api.lmsinfra-test.invalid/client/v4",
        )
        .args(["-q", "plan", "production"])
        .code(1)
        .run();
    assert!(
        flat(&unresolved).contains(
            "could not reach the Cloudflare API at api.lmsinfra-test.invalid (0 retries)"
        ),
        "{unresolved}"
    );
}

#[test]
fn check_never_marks_an_ungraded_url_as_passed() {
    let sandbox = TestSandbox::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/health", closed.local_addr().expect("address"));
    drop(closed);
    let dir = project(&routed_production(), &url);
    let plain = in_dir(&sandbox, dir.path())
        .args(["check", "production"])
        .run();
    let line = plain
        .stdout
        .lines()
        .find(|l| l.contains(&url))
        .unwrap_or_else(|| panic!("no line for {url}: {plain}"));
    assert!(line.trim_start().starts_with("- worker.api"), "{plain}");
    let graded = in_dir(&sandbox, dir.path())
        .args(["check", "production", "--min-grade", "B"])
        .code(3)
        .run();
    let line = graded
        .stdout
        .lines()
        .find(|l| l.contains(&url))
        .unwrap_or_else(|| panic!("no line for {url}: {graded}"));
    assert!(line.trim_start().starts_with("✗ worker.api"), "{graded}");
}

#[test]
fn a_minimum_grade_fails_when_nothing_was_graded_unless_probes_are_off() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    let seed = project.path().join("examples/sandbox");
    std::fs::create_dir_all(&seed).expect("seed folder");
    std::fs::copy(
        crate::support::audited_seed(),
        seed.join("audited-account.json"),
    )
    .expect("seed copied");
    let check = |extra: &[&str]| {
        in_dir(&sandbox, project.path())
            .args(["--sandbox", "check", "production", "--min-grade", "B"])
            .args(extra)
            .run()
    };
    let ungraded = lmsinfra_snapshot!("min_grade_with_nothing_graded", check(&[]));
    assert_eq!(ungraded.code, 3);
    let skipped = check(&["--no-probe"]);
    assert_eq!(skipped.code, 0, "{skipped}");
}

#[test]
fn a_yml_manifest_is_refused_by_name_and_a_project_root_is_not_told_to_find_one() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    std::fs::rename(
        project.manifest("staging"),
        project.path().join("environments/staging.yml"),
    )
    .expect("renamed");
    lmsinfra_snapshot!(
        "yml_manifest",
        in_dir(&sandbox, project.path())
            .args(["validate"])
            .code(1)
            .run()
    );
    let empty = tempfile::tempdir().expect("temp dir");
    std::fs::write(empty.path().join("wrangler.toml"), "name = \"lms-api\"\n").expect("file");
    let run = in_dir(&sandbox, empty.path())
        .args(["validate"])
        .code(1)
        .run();
    assert!(!flat(&run).contains("project root"), "{run}");
    assert!(
        flat(&run).contains("lmsinfra import wrangler.toml"),
        "{run}"
    );
}

#[test]
fn a_location_hint_number_names_the_allowed_values() {
    let sandbox = TestSandbox::new();
    let project = Project::new();
    project.edit("staging", |text| {
        text.replace("location_hint: weur", "location_hint: 3")
    });
    lmsinfra_snapshot!(
        in_dir(&sandbox, project.path())
            .args(["validate", "staging"])
            .code(1)
            .run()
    );
}

#[test]
fn help_lists_the_environment_and_exit_codes_and_only_the_options_a_command_uses() {
    let sandbox = TestSandbox::new();
    let help = Lmsinfra::new(&sandbox).args(["--help"]).code(0).run();
    for expected in [
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_ACCOUNT_ID",
        "LMSINFRA_API_TIMEOUT",
        "Exit codes:",
    ] {
        assert!(help.stdout.contains(expected), "{expected}: {help}");
    }
    let man = Lmsinfra::new(&sandbox).args(["man"]).code(0).run();
    assert!(man.stdout.contains("CLOUDFLARE_ACCOUNT_ID"), "{man}");
    let plan = Lmsinfra::new(&sandbox)
        .args(["plan", "--help"])
        .code(0)
        .run();
    assert!(plan.stdout.contains("--sandbox"), "{plan}");
    lmsinfra_snapshot!(
        "schema_help",
        Lmsinfra::new(&sandbox)
            .args(["schema", "--help"])
            .code(0)
            .run()
    );
    lmsinfra_snapshot!(
        "check_format_help",
        Lmsinfra::new(&sandbox)
            .args(["check", "--help"])
            .code(0)
            .run()
    );
}

#[test]
fn diff_of_a_new_environment_says_its_workers_must_be_deployed() {
    let project = Project::new();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .current_dir(project.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "environments/production.yaml"]);
    git(&["commit", "-q", "-m", "production only"]);
    let output = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .current_dir(project.path())
        .args(["--color", "never", "diff", "--base", "HEAD", "staging"])
        .output()
        .expect("lmsinfra runs");
    let run = Run::from(output);
    assert!(
        run.stdout
            .contains("# worker.api must be deployed (wrangler deploy), then apply sets it up"),
        "{run}"
    );
    assert!(!run.stdout.contains("worker.api will be created"), "{run}");
}

#[test]
fn the_sandbox_command_with_no_flags_serves_the_projects_account() {
    let project = tempfile::tempdir().expect("project");
    std::fs::create_dir_all(project.path().join("examples/sandbox")).expect("seed folder");
    std::fs::copy(
        root().join("examples/sandbox/audited-account.json"),
        project.path().join("examples/sandbox/audited-account.json"),
    )
    .expect("seed copied");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .args(["--color", "never", "--dir"])
        .arg(project.path())
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("lmsinfra sandbox starts");
    let lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut banner = Vec::new();
    for line in lines.map_while(Result::ok) {
        let last = line.starts_with("export CLOUDFLARE_ACCOUNT_ID=");
        banner.push(line);
        if last {
            break;
        }
    }
    let state = project.path().join(".lmsinfra/sandbox.json");
    let exists = state.exists();
    let _ = child.kill();
    let _ = child.wait();
    let banner = banner.join("\n");
    assert!(exists, "{banner}");
    assert!(
        banner.contains(&format!("sandbox: state {}", state.display())),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("export CLOUDFLARE_ACCOUNT_ID={ACCOUNT_ID}")),
        "{banner}"
    );
    assert!(
        banner.contains("export CLOUDFLARE_API_BASE_URL=http://127.0.0.1:"),
        "{banner}"
    );
}
