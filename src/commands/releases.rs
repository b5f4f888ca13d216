//! `lmsinfra releases`: each Worker's recent deployments and versions.

use super::chosen_workers;
use crate::account::Account;
use crate::cli::{DiagnosticFormat, ReleasesArgs};
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::printer::Printer;
use crate::release::history::{self, History};
use crate::settings::Settings;

pub(super) fn releases(
    settings: &Settings,
    printer: Printer,
    args: ReleasesArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let workers = chosen_workers(&desired, args.worker.as_deref())?;
    let account = Account::connect(settings, &desired)?;
    let mut reports = Vec::new();
    for (key, worker) in workers {
        let read = account
            .runtime
            .block_on(History::read(&account.client, key, &worker.name))?;
        match read {
            Some(history) => reports.push(history.report(usize::from(args.limit))),
            None => printer.status(format_args!(
                "note: Worker {} ({key}) does not exist on the account",
                worker.name
            )),
        }
    }
    match args.format {
        DiagnosticFormat::Text => {
            printer.data(history::text(&args.environment, &reports).trim_end())?;
        }
        DiagnosticFormat::Json => {
            let json = serde_json::json!({
                "environment": args.environment,
                "workers": reports,
            });
            let text = serde_json::to_string_pretty(&json).expect("releases always serialize");
            printer.data(&text)?;
        }
    }
    Ok(Outcome::Success)
}
