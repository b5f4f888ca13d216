//! `lmsinfra check`: the security report of an environment.

use super::probe_options;
use crate::account::Account;
use crate::cli::{CheckArgs, DiagnosticFormat};
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn check(
    settings: &Settings,
    printer: Printer,
    args: CheckArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let account = Account::connect(settings, &desired)?;
    let options = probe_options(settings, printer, &desired, args.no_probe);
    let live = account.gather(&desired, options)?;
    let report = crate::check::report(&desired, &live, args.min_grade);
    let rotations = rotation_policy(&account, &desired)?;
    let rotation_passed = rotations
        .iter()
        .all(|s| s.verdict != crate::rotation::Verdict::Fail);
    let text = match args.format {
        DiagnosticFormat::Text if rotations.is_empty() => crate::check::text(&report),
        DiagnosticFormat::Text => format!(
            "{}\nSecret rotation\n{}",
            crate::check::text(&report),
            super::secrets::text(&rotations)
        ),
        DiagnosticFormat::Json => {
            serde_json::to_string_pretty(&report).expect("a report serialises to JSON")
        }
    };
    printer.data(&text)?;
    Ok(if report.passed && rotation_passed {
        Outcome::Success
    } else {
        Outcome::Blocked
    })
}

/// The rotation state of the secrets that have a rotation policy (none when no secret has one).
fn rotation_policy(
    account: &Account,
    desired: &manifest::Manifest,
) -> Result<Vec<crate::rotation::SecretStatus>, Error> {
    if desired
        .workers
        .values()
        .all(|w| w.secrets.rotated().next().is_none())
    {
        return Ok(Vec::new());
    }
    let statuses = super::secrets::rotation_statuses(account, desired)?;
    Ok(statuses
        .into_iter()
        .filter(|s| s.strategy.is_some())
        .collect())
}
