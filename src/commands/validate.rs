//! `lmsinfra validate`: check manifests offline and print their diagnostics; with `--strict`,
//! as CI runs it, a warning fails too.

use crate::cli::{DiagnosticFormat, ValidateArgs};
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::migrations;
use crate::migrations::check::{Finding, check_set};
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn validate(
    settings: &Settings,
    printer: Printer,
    args: ValidateArgs,
) -> Result<Outcome, Error> {
    let validation = manifest::check_all(&settings.dir, &args.environments)?;
    let findings = migration_findings(settings, &args.environments, &validation);
    let warned = validation.diagnostics.iter().any(|d| !d.is_error());
    let valid = validation.is_valid() && findings.is_empty() && !(args.strict && warned);
    match args.format {
        DiagnosticFormat::Text => {
            for diagnostic in &validation.diagnostics {
                printer.diagnostic(diagnostic.clone());
            }
            for finding in &findings {
                printer.diagnostic(finding.clone());
            }
        }
        DiagnosticFormat::Json => {
            let document = serde_json::json!({
                "valid": valid,
                "summary": validation.summary(),
                "environments": validation.environments,
                "diagnostics": validation.diagnostics,
                "migrations": findings,
            });
            let text =
                serde_json::to_string_pretty(&document).expect("diagnostics serialise to JSON");
            printer.data(&text)?;
        }
    }
    if !validation.is_valid() {
        return Err(Error::ValidationFailed(validation.summary()));
    }
    if !findings.is_empty() {
        return Err(Error::ValidationFailed(format!(
            "{}, but {} migration file problem{}",
            validation.summary(),
            findings.len(),
            if findings.len() == 1 { "" } else { "s" }
        )));
    }
    if !valid {
        return Err(Error::ValidationFailed(format!(
            "{}; --strict treats warnings as errors",
            validation.summary()
        )));
    }
    printer.status(validation.summary());
    Ok(Outcome::Success)
}

/// The problems of the migration files the valid selected environments declare, each
/// directory checked once.
fn migration_findings(
    settings: &Settings,
    selected: &[String],
    validation: &manifest::Validation,
) -> Vec<Finding> {
    let mut directories = std::collections::BTreeSet::new();
    let mut findings = Vec::new();
    for env in validation.environments.iter().filter(|env| env.valid) {
        if !selected.is_empty() && !selected.contains(&env.name) {
            continue;
        }
        let Ok(desired) = manifest::load_valid(&settings.dir, &env.name) else {
            continue;
        };
        for db in desired.d1_databases.values().filter(|db| !db.absent) {
            let Some(config) = &db.migrations else {
                continue;
            };
            if !directories.insert(config.directory.clone()) {
                continue;
            }
            match migrations::read_set(&settings.dir, &config.directory) {
                Ok(set) => findings.extend(check_set(&set)),
                Err(err) => findings.push(Finding {
                    file: settings.dir.join(&config.directory),
                    line: 1,
                    message: err.to_string(),
                }),
            }
        }
    }
    findings
}
