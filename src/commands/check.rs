//! `lmsinfra check`: the security report of an environment.

use super::probe_options;
use crate::account::Account;
use crate::check::capacity::{self, Capacity};
use crate::cli::{CheckArgs, DiagnosticFormat};
use crate::error::{Error, Outcome};
use crate::live::Live;
use crate::manifest;
use crate::manifest::Manifest;
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
    let plan_requests = account.client.requests_sent();
    let report = crate::check::report(&desired, &live, args.min_grade).with_capacity(capacity(
        &account,
        &desired,
        &live,
        plan_requests,
    )?);
    let text = match args.format {
        DiagnosticFormat::Text => crate::check::text(&report),
        DiagnosticFormat::Json => {
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

/// The capacity findings: the reads they need beyond the plan's, and the cost of the apply
/// the live account calls for now, with every required secret given.
fn capacity(
    account: &Account,
    desired: &Manifest,
    live: &Live,
    plan_requests: u64,
) -> Result<Capacity, Error> {
    let readings = account
        .runtime
        .block_on(capacity::read(desired, live, &account.client))?;
    let options = crate::plan::DiffOptions {
        supplied_secrets: desired
            .workers
            .values()
            .flat_map(|w| w.secrets.iter().cloned())
            .collect(),
        ..crate::plan::DiffOptions::default()
    };
    let steps = crate::apply::steps(&crate::plan::diff(desired, live, &options));
    let apply_requests = capacity::apply_requests(plan_requests, &steps);
    Ok(capacity::assess(
        desired,
        live,
        &readings,
        plan_requests,
        apply_requests,
    ))
}
