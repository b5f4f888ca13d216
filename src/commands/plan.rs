//! `lmsinfra plan`: read the live account and show what differs from the manifest.

use super::{declared_elsewhere, print_stdout, probe_options, stdout_color, write_atomically};
use crate::account::Account;
use crate::cli::PlanArgs;
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::plan;
use crate::render;
use crate::settings::Settings;

pub(super) fn plan(settings: &Settings, args: PlanArgs) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let account = Account::connect(settings, &desired)?;
    let options = probe_options(settings, &desired, args.no_probe);
    let live = account.gather(&desired, options)?;
    let diff_options = plan::DiffOptions {
        declared_elsewhere: declared_elsewhere(settings, &args.environment),
        ..plan::DiffOptions::default()
    };
    let mut plan = plan::diff(&desired, &live, &diff_options);
    plan.warnings
        .extend(crate::wrangler::check_project(&settings.dir, &desired));
    if let Some(path) = &args.out {
        write_atomically(path, render::json(&plan).as_bytes())?;
    }
    print_stdout(render::render(&plan, args.format, stdout_color()).trim_end())?;
    Ok(if plan.is_blocked() {
        Outcome::Blocked
    } else if args.detailed_exitcode && !plan.is_empty() {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}
