//! `lmsinfra schema`: the committed schemas are what the binary prints, and the LMS manifests
//! satisfy theirs.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn printed_schema() -> String {
    printed("manifest")
}

fn printed(kind: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_lmsinfra"))
        .args(["--color", "never", "schema", kind])
        .output()
        .expect("the lmsinfra binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the schema is UTF-8")
}

#[test]
fn committed_manifest_schema_is_fresh() {
    let committed = std::fs::read_to_string(repo().join("schemas/environment.schema.json"))
        .expect("schemas/environment.schema.json is committed");
    assert!(
        printed_schema() == committed,
        "schemas/environment.schema.json is stale; regenerate it with\n\n    cargo run -q -- schema manifest > schemas/environment.schema.json\n"
    );
}

#[test]
fn committed_plan_schema_is_fresh() {
    let committed = std::fs::read_to_string(repo().join("schemas/plan.schema.json"))
        .expect("schemas/plan.schema.json is committed");
    assert!(
        printed("plan") == committed,
        "schemas/plan.schema.json is stale; regenerate it with\n\n    cargo run -q -- schema plan > schemas/plan.schema.json\n"
    );
}

#[test]
fn the_lms_manifests_satisfy_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&printed_schema()).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for name in ["production", "staging"] {
        let text = std::fs::read_to_string(repo().join(format!("environments/{name}.yaml")))
            .expect("the LMS manifests are readable");
        let mut yaml: yaml_serde::Value =
            yaml_serde::from_str(&text).expect("the manifest is YAML");
        yaml.apply_merge().expect("merge keys apply");
        let instance = serde_json::to_value(&yaml).expect("the manifest converts to JSON");
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn the_schema_rejects_unknown_fields_but_allows_extensions() {
    let schema: serde_json::Value =
        serde_json::from_str(&printed_schema()).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let base = serde_json::json!({
        "environment": "staging",
        "account_id": "0123456789abcdef0123456789abcdef",
        "x-anchors": { "anything": true },
    });
    assert!(validator.is_valid(&base));
    let mut unknown = base.clone();
    unknown["worker"] = serde_json::json!({});
    assert!(!validator.is_valid(&unknown));
}
