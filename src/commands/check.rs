//! `lmsinfra check`: the security report of an environment.

use super::probe_options;
use crate::account::Account;
use crate::cli::{CheckArgs, ReportFormat};
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
    let mut report = crate::check::report(&desired, &live, args.min_grade);
    crate::check::require_a_grade(&mut report, args.no_probe);
    let text = match args.format {
        ReportFormat::Text => crate::check::text(&report),
        ReportFormat::Json => {
            serde_json::to_string_pretty(&report).expect("a report serialises to JSON")
        }
    };
    printer.data(&text)?;
    Ok(if report.passed {
        Outcome::Success
    } else {
        Outcome::Blocked
    })
}
