//! `lmsinfra validate`: the LMS manifests pass, every kind of bad input fails at the right line
//! with a rendered diagnostic, and parity differences between environments are warnings.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::support::Run;

fn lmsinfra(dir: &Path, args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .current_dir(dir)
        .args(["--color", "never"])
        .args(args)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .output()
        .expect("the lmsinfra binary runs")
        .into()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A project whose `environments/` holds the given files.
fn project(files: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir(dir.path().join("environments")).expect("environments/ is created");
    for (name, contents) in files {
        std::fs::write(dir.path().join("environments").join(name), contents)
            .expect("a manifest is written");
    }
    dir
}

/// A copy of the LMS's own manifests, with `edit` applied to staging's text.
fn lms_with_staging(edit: impl FnOnce(String) -> String) -> TempDir {
    let read = |name: &str| {
        std::fs::read_to_string(repo().join("environments").join(name))
            .expect("the LMS manifests are readable")
    };
    let staging = edit(read("staging.yaml"));
    project(&[
        ("production.yaml", read("production.yaml").as_bytes()),
        ("staging.yaml", staging.as_bytes()),
    ])
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).expect("--format json prints one JSON document")
}

#[test]
fn the_lms_manifests_are_valid() {
    let run = lmsinfra(&repo(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "2 environments valid\n");
}

#[test]
fn typo_in_d1_binding_suggests_database() {
    let dir = lms_with_staging(|text| text.replacen("database: main", "databse: main", 1));
    let run = lmsinfra(dir.path(), &["validate"]);
    assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{run}");
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn staging_without_db_binding_warns_about_parity_with_production() {
    let dir =
        lms_with_staging(|text| text.replacen("      DB: { type: d1, database: main }\n", "", 1));
    let run = lmsinfra(dir.path(), &["validate"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run}");
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn strict_validate_fails_on_staging_without_its_db_binding() {
    let dir =
        lms_with_staging(|text| text.replacen("      DB: { type: d1, database: main }\n", "", 1));
    let run = lmsinfra(dir.path(), &["validate", "--strict"]);
    assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{run}");
    assert!(
        run.stderr
            .contains("2 environments valid, 2 warnings; --strict treats warnings as errors"),
        "{run}"
    );
    let run = lmsinfra(dir.path(), &["validate", "--strict", "--format", "json"]);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(json(&run)["valid"], false);
    let run = lmsinfra(&repo(), &["validate", "--strict"]);
    assert_eq!(run.code, 0, "{run}");
}

#[test]
fn removals_validate_and_a_database_no_worker_binds_is_a_warning() {
    let dir = lms_with_staging(|text| {
        text.replacen(
            "      DB: { type: d1, database: main }\n",
            "      DB: { absent: true }\n",
            1,
        )
        .replacen(
            "    secrets:\n",
            "    secrets:\n      - { name: OLD_TOKEN, absent: true }\n",
            1,
        )
    });
    let run = lmsinfra(dir.path(), &["validate", "staging", "--format", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let document = json(&run);
    let diagnostics = document["diagnostics"]
        .as_array()
        .expect("a list of diagnostics");
    let codes: Vec<&str> = diagnostics
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(codes.contains(&"manifest::unbound-database"), "{codes:?}");
    assert!(diagnostics.iter().all(|d| d["severity"] == "warning"));
}

#[test]
fn quiet_validate_prints_errors_but_not_warnings() {
    let warned =
        lms_with_staging(|text| text.replacen("      DB: { type: d1, database: main }\n", "", 1));
    let run = lmsinfra(warned.path(), &["-q", "validate"]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", ""),
        "{run}"
    );
    let broken = lms_with_staging(|text| text.replacen("database: main", "databse: main", 1));
    let run = lmsinfra(broken.path(), &["-q", "validate"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("unknown field `databse`"), "{run}");
}

#[test]
fn naming_one_environment_still_compares_it_with_the_others() {
    let dir =
        lms_with_staging(|text| text.replacen("      DB: { type: d1, database: main }\n", "", 1));
    let run = lmsinfra(dir.path(), &["validate", "staging"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.ends_with("1 environment valid, 2 warnings\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn parity_ignore_accepts_an_intended_difference() {
    let dir = lms_with_staging(|text| {
        text.replacen("      DB: { type: d1, database: main }\n", "", 1)
            + "\nparity:\n  ignore: [worker.api.binding.DB]\n"
    });
    let run = lmsinfra(dir.path(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The parity difference is accepted; that no Worker binds staging's database still shows.
    assert!(!run.stderr.contains("parity"), "{run}");
    assert!(run.stderr.contains("manifest::unbound-database"), "{run}");
    assert!(
        run.stderr.ends_with("2 environments valid, 1 warning\n"),
        "{run}"
    );
}

#[test]
fn json_format_lists_diagnostics_for_machines() {
    let dir = lms_with_staging(|text| {
        text.replacen("database: main", "databse: main", 1)
            .replacen("      - TALLY_SIGNING_SECRET\n", "", 1)
    });
    let run = lmsinfra(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    let document = json(&run);
    assert_eq!(document["valid"], false);
    let diagnostics = document["diagnostics"]
        .as_array()
        .expect("a list of diagnostics");
    assert_eq!(
        diagnostics.len(),
        1,
        "broken staging is not compared: {document:#}"
    );
    let typo = &diagnostics[0];
    assert_eq!(typo["severity"], "error");
    assert_eq!(typo["code"], "manifest::unknown-field");
    assert_eq!(typo["message"], "unknown field `databse`");
    assert_eq!(typo["file"], "environments/staging.yaml");
    assert_eq!(
        (typo["line"].as_u64(), typo["column"].as_u64()),
        (Some(26), Some(23))
    );
    assert_eq!(typo["help"], "did you mean `database`?");
    assert!(
        run.stderr
            .contains("1 of 2 environments invalid (staging): 1 error"),
        "{}",
        run.stderr
    );
}

#[test]
fn warnings_in_json_name_both_files() {
    let dir = lms_with_staging(|text| text.replacen("      - TALLY_SIGNING_SECRET\n", "", 1));
    let run = lmsinfra(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warning = &json(&run)["diagnostics"][0];
    assert_eq!(warning["severity"], "warning");
    assert_eq!(warning["code"], "manifest::parity");
    assert_eq!(warning["file"], "environments/production.yaml");
    assert_eq!(warning["line"], 31);
    assert_eq!(warning["related"][0]["file"], "environments/staging.yaml");
    assert_eq!(warning["related"][0]["line"], 30);
}

#[test]
fn naming_an_unknown_environment_lists_the_ones_that_exist() {
    let run = lmsinfra(&repo(), &["validate", "prod"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("there is no environment `prod`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`production`, `staging`"),
        "{}",
        run.stderr
    );
}

/// The line a fixture marks with `# <- expected`, or 1 when it cannot carry a comment.
fn marked_line(bytes: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .position(|line| line.contains("# <- expected"))
        .map_or(1, |index| index as u64 + 1)
}

#[test]
fn every_invalid_fixture_fails_at_the_marked_line() {
    let fixtures = repo().join("tests/fixtures/invalid");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .expect("the fixtures are readable")
        .map(|entry| entry.expect("a fixture").path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 25, "only {} fixtures", paths.len());
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).expect("a fixture is readable");
        let dir = project(&[("staging.yaml", &bytes)]);
        let run = lmsinfra(dir.path(), &["validate", "--format", "json"]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        let document = json(&run);
        let lines: Vec<u64> = document["diagnostics"]
            .as_array()
            .expect("a list of diagnostics")
            .iter()
            .filter(|d| d["severity"] == "error")
            .map(|d| d["line"].as_u64().expect("a line"))
            .collect();
        assert!(
            lines.contains(&marked_line(&bytes)),
            "{name}: expected an error at line {}, got {lines:?}",
            marked_line(&bytes)
        );
        let run = lmsinfra(dir.path(), &["validate"]);
        assert_eq!(run.code, 1, "{name}");
        insta::assert_snapshot!(format!("invalid_{name}"), run.stderr);
    }
}

#[test]
fn a_five_megabyte_manifest_is_rejected_before_parsing() {
    let text = "environment: staging\n".to_owned()
        + &"# padding padding padding padding\n".repeat(150_000);
    assert!(text.len() > 5_000_000);
    let dir = project(&[("staging.yaml", text.as_bytes())]);
    let run = lmsinfra(dir.path(), &["validate"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn yaml_nested_ten_thousand_deep_is_rejected() {
    let text = format!(
        "environment: {}staging{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let dir = project(&[("staging.yaml", text.as_bytes())]);
    let run = lmsinfra(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    let diagnostic = &json(&run)["diagnostics"][0];
    assert_eq!(diagnostic["code"], "manifest::too-deep");
    assert_eq!(diagnostic["line"], 1);
}

#[test]
fn block_nesting_a_thousand_deep_is_rejected() {
    let mut text = "environment: staging\nworkers:\n".to_owned();
    for depth in 1..1_000 {
        text.push_str(&" ".repeat(depth));
        text.push_str("- \n");
    }
    let dir = project(&[("staging.yaml", text.as_bytes())]);
    let run = lmsinfra(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(json(&run)["diagnostics"][0]["code"], "manifest::too-deep");
}

/// Staging declaring production's database, the attack that deleted `lms-db`.
fn staging_claiming_production_database() -> TempDir {
    lms_with_staging(|text| {
        text.replacen(
            "    protect: true\n",
            "    protect: true\n  legacy: { name: lms-db, absent: true, protect: false }\n",
            1,
        )
    })
}

#[test]
fn a_database_two_environments_declare_is_an_error_naming_both_files() {
    let dir = staging_claiming_production_database();
    let run = lmsinfra(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let document = json(&run);
    let errors: Vec<&serde_json::Value> = document["diagnostics"]
        .as_array()
        .expect("a list of diagnostics")
        .iter()
        .filter(|d| d["code"] == "manifest::shared-resource")
        .collect();
    assert_eq!(errors.len(), 2, "{document:#}");
    let in_staging = errors
        .iter()
        .find(|d| d["file"] == "environments/staging.yaml")
        .expect("an error in staging");
    assert_eq!(
        (in_staging["line"].as_u64(), in_staging["column"].as_u64()),
        (Some(19), Some(19))
    );
    assert_eq!(
        in_staging["related"][0]["file"],
        "environments/production.yaml"
    );
    assert_eq!(in_staging["related"][0]["line"], 15);
    assert!(
        run.stderr
            .contains("2 of 2 environments invalid (production, staging)"),
        "{}",
        run.stderr
    );
    let run = lmsinfra(dir.path(), &["validate", "staging"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn a_worker_two_environments_declare_is_an_error() {
    let dir =
        lms_with_staging(|text| text.replacen("name: lms-viewer-staging", "name: lms-viewer", 1));
    let run = lmsinfra(dir.path(), &["validate", "staging", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let diagnostic = &json(&run)["diagnostics"][0];
    assert_eq!(diagnostic["code"], "manifest::shared-resource");
    assert_eq!(
        diagnostic["related"][0]["file"],
        "environments/production.yaml"
    );
    assert_eq!(diagnostic["related"][0]["line"], 69);
}

#[test]
fn plan_and_apply_refuse_a_manifest_that_claims_another_environments_database() {
    let dir = staging_claiming_production_database();
    for args in [
        &["plan", "staging"][..],
        &["apply", "staging", "--auto-approve", "--allow-destroy"][..],
        &["plan", "production"][..],
    ] {
        let run = lmsinfra(dir.path(), args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("manifest::shared-resource"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("lms-db"), "{args:?}: {}", run.stderr);
    }
}

/// Run the binary, failing the test if it has not exited after `patience`: for inputs that
/// used to make it hang or take minutes.
fn lmsinfra_within(dir: &Path, args: &[&str], patience: std::time::Duration) -> Run {
    use std::process::Stdio;
    let child = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .current_dir(dir)
        .args(["--color", "never"])
        .args(args)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the lmsinfra binary starts");
    let output = crate::support::wait_within(child, patience);
    Run {
        code: output.status.code().expect("lmsinfra exits with a code"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

#[test]
fn flow_collections_nested_two_hundred_thousand_deep_are_refused_before_parsing() {
    let text = format!("environment: {}\n", "[".repeat(200_000));
    assert!(text.len() < 1024 * 1024);
    let dir = project(&[("staging.yaml", text.as_bytes())]);
    // Parsing first took about a minute; the pre-scan answers at once.
    let patience = std::time::Duration::from_secs(20);
    let run = lmsinfra_within(dir.path(), &["validate", "--format", "json"], patience);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let diagnostic = &json(&run)["diagnostics"][0];
    assert_eq!(diagnostic["code"], "manifest::too-deep");
    assert_eq!(
        (diagnostic["line"].as_u64(), diagnostic["column"].as_u64()),
        (Some(1), Some(78))
    );
    let run = lmsinfra_within(dir.path(), &["validate"], patience);
    assert!(run.stderr.len() < 2_000, "{}", run.stderr);
    insta::assert_snapshot!(run.stderr);
}
