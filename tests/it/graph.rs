//! `lmsinfra graph` and the markdown plan's diagram through the real binary against the
//! sandbox. The mermaid is checked by a real parser: `.ci/run` installs `@probelabs/maid` (a
//! mermaid validator, far lighter than the mermaid CLI and its browser) and exports
//! `LMSINFRA_MERMAID` (the path of its `maid` executable). Without it these checks fail under
//! `CI` and otherwise say loudly, outside the harness's capture, that they were skipped.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use crate::security::{project, routed_production};
use crate::support::{Lmsinfra, Run, TestSandbox, lmsinfra_snapshot};

/// The mermaid validator, or `None` after saying why the check is skipped (a failure under CI).
fn maid(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("LMSINFRA_MERMAID")
        .map(PathBuf::from)
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "LMSINFRA_MERMAID does not name the maid executable; CI must run {test} (.ci/run installs it)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the mermaid parse in {test}: set LMSINFRA_MERMAID to @probelabs/maid's maid (.ci/run installs it)"
        );
    }
    found
}

/// Parse `text` (a `.mmd` diagram or markdown with mermaid fences) with maid; panics with its
/// diagnostics when it does not parse.
fn assert_parses(test: &str, text: &str, extension: &str) {
    let Some(maid) = maid(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("diagram.{extension}"));
    std::fs::write(&file, text).expect("diagram written");
    let output = Command::new(maid).arg(&file).output().expect("maid runs");
    assert!(
        output.status.success(),
        "maid refuses the diagram:\n{text}\n--- maid\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A parser that accepts anything would make every check above pass: maid must refuse a
/// broken diagram.
#[test]
fn the_mermaid_parser_refuses_a_broken_diagram() {
    let Some(maid) = maid("the_mermaid_parser_refuses_a_broken_diagram") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.mmd");
    std::fs::write(&file, "flowchart LR\n  a[[x] --> b\n").expect("written");
    let output = Command::new(maid).arg(&file).output().expect("maid runs");
    assert!(!output.status.success());
}

#[test]
fn staging_after_the_audited_drift_shows_its_database_binding_as_added() {
    let sandbox = TestSandbox::new();
    let run = lmsinfra_snapshot!(
        "graph_staging_mermaid",
        Lmsinfra::new(&sandbox)
            .args(["graph", "staging", "--format", "mermaid"])
            .run()
    );
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("worker_api -->|DB: added| d1_main"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("d1_main[(d1.main<br/>lms-db-staging<br/>added)]"),
        "{run}"
    );
    assert_parses("graph_staging_mermaid", &run.stdout, "mmd");
    let dot = lmsinfra_snapshot!(
        "graph_staging_dot",
        Lmsinfra::new(&sandbox)
            .args(["graph", "staging", "--format", "dot"])
            .run()
    );
    assert_eq!(dot.code, 0);
}

#[test]
fn the_markdown_plan_carries_the_diagram_in_a_collapsed_section() {
    let sandbox = TestSandbox::new();
    let graph = Lmsinfra::new(&sandbox).args(["graph", "staging"]).run();
    let plan = Lmsinfra::new(&sandbox)
        .args(["plan", "staging", "--format", "markdown", "--no-probe"])
        .run();
    assert_eq!(
        plan.code, 3,
        "blocked: staging's secrets are missing\n{plan}"
    );
    let section = format!(
        "<details><summary>Diagram of staging</summary>\n\n```mermaid\n{}\n```\n\n</details>",
        graph.stdout.trim_end()
    );
    assert!(plan.stdout.contains(&section), "{plan}\n--- graph\n{graph}");
    assert_parses("the_markdown_plan_carries_the_diagram", &plan.stdout, "md");
}

#[test]
fn a_saved_plan_marks_the_graph_without_reading_the_account() {
    let sandbox = TestSandbox::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = dir.path().join("staging.plan.json");
    Lmsinfra::new(&sandbox)
        .args(["plan", "staging", "--no-probe", "--out"])
        .arg(&saved)
        .run();
    let live = Lmsinfra::new(&sandbox).args(["graph", "staging"]).run();
    let before = sandbox.sandbox().stats().total;
    let from_file: Run = Lmsinfra::new(&sandbox)
        .args(["graph", "staging", "--plan"])
        .arg(&saved)
        .run();
    assert_eq!(sandbox.sandbox().stats().total, before, "{from_file}");
    assert_eq!(from_file.stdout, live.stdout);
    let other = Lmsinfra::new(&sandbox)
        .args(["graph", "production", "--plan"])
        .arg(&saved)
        .run();
    assert_eq!(other.code, 1, "{other}");
    assert!(
        other
            .stderr
            .contains("is a plan of staging, not of production"),
        "{other}"
    );
}

#[test]
fn routed_workers_point_at_their_zone_through_the_edge_rules_apply_would_write() {
    let sandbox = TestSandbox::new();
    let dir = project(&routed_production(), "https://api.example.com/health");
    let run = lmsinfra_snapshot!(
        "graph_routed_production",
        Lmsinfra::new(&sandbox)
            .args(["--dir".as_ref(), dir.path().as_os_str()])
            .args(["graph", "production"])
            .run()
    );
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains("worker_api -.->|rate limit: added| zone_example_2ecom"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("zone_example_2ecom{{\"zone<br/>example.com\"}}"),
        "{run}"
    );
    assert_parses("routed_production", &run.stdout, "mmd");
}
