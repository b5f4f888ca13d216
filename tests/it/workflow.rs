//! The code-deploy workflow around lmsinfra: importing wrangler configurations, warning in plan
//! where one disagrees with the manifest, and the generated completions and man page.

use std::path::Path;
use std::process::Command;

use crate::support::{Lmsinfra, Run, TestSandbox, lmsinfra_snapshot, root};

const SCHEMA_LINE: &str = "# yaml-language-server: $schema=../schemas/environment.schema.json";

fn lmsinfra(dir: &Path, args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .args(["--color", "never", "--dir"])
        .arg(dir)
        .args(args)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .output()
        .expect("lmsinfra runs")
        .into()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn audited_toml() -> std::path::PathBuf {
    root().join("tests/fixtures/wrangler/audited.toml")
}

/// A project holding a copy of the audited wrangler.toml and nothing else.
fn project_with_audited_toml() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(audited_toml(), dir.path().join("wrangler.toml")).expect("copy");
    dir
}

#[test]
fn importing_the_audited_wrangler_toml_shows_staging_lacks_its_database_binding() {
    let dir = project_with_audited_toml();
    let config = dir.path().join("wrangler.toml");
    lmsinfra_snapshot!(
        "import_audited",
        lmsinfra(
            dir.path(),
            &["import", config.to_str().expect("utf-8 path")],
        )
    );
    for env in ["production", "staging"] {
        let written = std::fs::read_to_string(dir.path().join(format!("environments/{env}.yaml")))
            .expect("manifest written");
        assert!(written.starts_with(SCHEMA_LINE), "{written}");
    }
    let production =
        std::fs::read_to_string(dir.path().join("environments/production.yaml")).unwrap();
    assert!(production.contains("name: lms-db\n"), "{production}");
    assert!(production.contains("  api:\n"), "{production}");

    lmsinfra_snapshot!("validate_imported", lmsinfra(dir.path(), &["validate"]));
}

#[test]
fn import_refuses_to_overwrite_manifests_without_force() {
    let dir = project_with_audited_toml();
    let config = dir.path().join("wrangler.toml");
    let config = config.to_str().expect("utf-8 path");
    let first = lmsinfra(dir.path(), &["import", config]);
    assert_eq!(first.code, 0, "{first}");
    lmsinfra_snapshot!("import_again", lmsinfra(dir.path(), &["import", config]));
    lmsinfra_snapshot!(
        "import_forced",
        lmsinfra(
            dir.path(),
            &["import", config, "--force", "--env", "staging"],
        )
    );
}

#[test]
fn import_lists_what_it_cannot_map() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wrangler.jsonc");
    std::fs::write(
        &config,
        r#"{
          // JSON with comments, as wrangler accepts it
          "name": "lms-api",
          "compatibility_date": "2024-12-01",
          "kv_namespaces": [{ "binding": "CACHE", "id": "0f2ac74b498b48028cb68387c421e279" }],
          "durable_objects": { "bindings": [{ "name": "ROOM", "class_name": "Room" }] },
          "queues": { "producers": [{ "binding": "JOBS", "queue": "jobs" }] },
        }"#,
    )
    .unwrap();
    lmsinfra_snapshot!(lmsinfra(
        dir.path(),
        &[
            "import",
            config.to_str().unwrap(),
            "--account-id",
            "0123456789abcdef0123456789abcdef",
        ],
    ));
    let manifest =
        std::fs::read_to_string(dir.path().join("environments/production.yaml")).unwrap();
    assert!(manifest.contains("type: kv_namespace"), "{manifest}");
    let validated = lmsinfra(dir.path(), &["validate"]);
    assert_eq!(validated.code, 0, "{validated}");
}

#[test]
fn quiet_import_still_lists_what_it_cannot_map() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wrangler.json");
    std::fs::write(
        &config,
        r#"{
          "name": "lms-api",
          "account_id": "0123456789abcdef0123456789abcdef",
          "compatibility_date": "2024-12-01",
          "queues": { "producers": [{ "binding": "JOBS", "queue": "jobs" }] }
        }"#,
    )
    .unwrap();
    let run = lmsinfra(dir.path(), &["-q", "import", config.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "not imported (manifests do not describe these; wrangler still deploys them):\n  \
         production: queues: not something a manifest describes\n"
    );
}

#[test]
fn import_without_a_compatibility_date_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wrangler.toml");
    std::fs::write(
        &config,
        "name = \"lms-api\"\naccount_id = \"0123456789abcdef0123456789abcdef\"\n",
    )
    .unwrap();
    lmsinfra_snapshot!(lmsinfra(dir.path(), &["import", config.to_str().unwrap()]));
    assert!(!dir.path().join("environments").exists());
}

/// A copy of the LMS's manifests, with the audited wrangler.toml in the project root.
fn lms_with_audited_toml() -> tempfile::TempDir {
    let dir = project_with_audited_toml();
    std::fs::create_dir(dir.path().join("environments")).unwrap();
    for env in ["production", "staging"] {
        let name = format!("environments/{env}.yaml");
        std::fs::copy(root().join(&name), dir.path().join(&name)).unwrap();
    }
    dir
}

#[test]
fn plan_warns_where_the_wrangler_configuration_disagrees_with_the_manifest() {
    let sandbox = TestSandbox::new();
    let dir = lms_with_audited_toml();
    let run = Lmsinfra::new(&sandbox)
        .args(["--dir", dir.path().to_str().unwrap()])
        .args(["plan", "staging", "--no-probe", "--format", "json"])
        .output();
    assert!(
        matches!(run.status.code(), Some(0 | 3)),
        "{}",
        text(&run.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&run.stdout).expect("a JSON plan");
    let warnings: Vec<(&str, &str)> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["address"].as_str().unwrap(),
                w["message"].as_str().unwrap(),
            )
        })
        .collect();
    let db = warnings
        .iter()
        .find(|(address, _)| *address == "worker.api.binding.DB")
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert!(db.1.contains("[env.staging] lacks binding DB"), "{}", db.1);
    assert!(
        warnings
            .iter()
            .any(|(address, _)| *address == "worker.api.binding.ALLOWED_ORIGINS"),
        "{warnings:?}"
    );

    // apply shows the same plan, so the same warning, before it asks or refuses.
    lmsinfra_snapshot!(
        Lmsinfra::new(&sandbox)
            .args(["--dir", dir.path().to_str().unwrap()])
            .args(["apply", "staging", "--auto-approve"])
            .run()
    );
}

#[test]
fn wrangler_config_before_the_database_exists_says_to_apply_first() {
    let sandbox = TestSandbox::new();
    lmsinfra_snapshot!(
        Lmsinfra::new(&sandbox)
            .args(["wrangler-config", "staging", "--worker", "api"])
            .run()
    );
}

#[test]
fn wrangler_config_needs_a_worker_when_the_manifest_has_several() {
    let sandbox = TestSandbox::new();
    lmsinfra_snapshot!(
        Lmsinfra::new(&sandbox)
            .args(["wrangler-config", "production"])
            .run()
    );
}

#[test]
fn wrangler_config_of_production_is_the_top_level_with_live_ids() {
    let sandbox = TestSandbox::new();
    let run = Lmsinfra::new(&sandbox)
        .args(["wrangler-config", "production", "--worker", "api"])
        .output();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let config: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(
        config["$schema"],
        "./node_modules/wrangler/config-schema.json"
    );
    assert_eq!(config["name"], "lms-api");
    assert_eq!(
        config["d1_databases"][0]["database_id"],
        "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
    );
}

#[test]
fn bash_completions_load_without_error() {
    let script = format!(
        "source <('{}' completions bash) && complete -p lmsinfra",
        env!("CARGO_BIN_EXE_lmsinfra")
    );
    let run = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(text(&run.stderr), "");
    assert!(
        text(&run.stdout).contains("lmsinfra"),
        "{}",
        text(&run.stdout)
    );
}

#[test]
fn every_shell_gets_completions() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = lmsinfra(root(), &["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {run}");
        assert!(run.stdout.contains("wrangler-config"), "{shell}");
    }
}

#[test]
fn the_man_page_lists_the_commands_and_man_write_makes_one_per_command() {
    let run = lmsinfra(root(), &["man"]);
    let page = &run.stdout;
    assert_eq!(run.code, 0, "{run}");
    assert!(page.starts_with(".ie"), "{page}");
    assert!(page.contains("wrangler\\-config"), "{page}");
    let dir = tempfile::tempdir().expect("temp dir");
    let run = lmsinfra(root(), &["man", "--write", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run}");
    for page in ["lmsinfra.1", "lmsinfra-plan.1", "lmsinfra-import.1"] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
}

#[test]
fn the_example_pipeline_finds_its_comment_by_the_marker_the_markdown_plan_starts_with() {
    let sandbox = TestSandbox::new();
    let run = Lmsinfra::new(&sandbox)
        .args(["plan", "staging", "--no-probe", "--format", "markdown"])
        .output();
    let markdown = text(&run.stdout);
    assert_eq!(
        markdown.lines().next(),
        Some("<!-- lmsinfra-plan:staging -->"),
        "{}",
        text(&run.stderr)
    );
    let workflow = std::fs::read_to_string(root().join("examples/ci/github-actions.yml"))
        .expect("the example pipeline");
    assert!(
        workflow.contains(r#"marker="<!-- lmsinfra-plan:$ENVIRONMENT -->""#),
        "the pipeline no longer looks for the plan comment's marker"
    );
    assert!(workflow.contains("environment: [staging, production]"));
}
