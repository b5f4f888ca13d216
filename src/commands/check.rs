//! `lmsinfra check`: the security report of an environment.

use super::{print_stdout, probe_options};
use crate::account::Account;
use crate::cli::{CheckArgs, DiagnosticFormat, Global};
use crate::error::{Error, Outcome};
use crate::manifest;

pub(super) fn check(global: &Global, args: CheckArgs) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&global.dir, &args.environment)?;
    let account = Account::connect(global, &desired)?;
    let options = probe_options(global, &desired, args.no_probe);
    let live = account.gather(&desired, options)?;
    let report = crate::check::report(&desired, &live, args.min_grade);
    let text = match args.format {
        DiagnosticFormat::Text => crate::check::text(&report),
        DiagnosticFormat::Json => {
            serde_json::to_string_pretty(&report).expect("a report serialises to JSON")
        }
    };
    print_stdout(&text)?;
    Ok(if report.passed {
        Outcome::Success
    } else {
        Outcome::Blocked
    })
}
