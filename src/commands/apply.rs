//! `lmsinfra apply`: make the live account match the manifest, after the user approves the plan.

use super::{Planned, plan_environment};
use crate::apply;
use crate::cli::ApplyArgs;
use crate::error::{Error, Outcome};
use crate::live::GatherOptions;
use crate::manifest;
use crate::plan;
use crate::printer::Printer;
use crate::render;
use crate::settings::Settings;

pub(super) fn apply(
    settings: &Settings,
    printer: Printer,
    args: ApplyArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)
        .map_err(|err| apply::withhold_secret_values(err, &args.secrets))?;
    // Without a terminal to ask on and without --auto-approve, apply can only end with "No
    // changes" or a refusal: it never reads a secret's value then, so it never waits on stdin.
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let may_write = args.auto_approve || interactive;
    let secrets = if may_write {
        apply::read_secrets(
            &args.secrets,
            &desired,
            |var| std::env::var(var).ok(),
            &mut std::io::stdin(),
        )?
    } else {
        Default::default()
    };
    crate::secret::register(secrets.values());
    let options = plan::DiffOptions {
        supplied_secrets: args.secrets.iter().map(|s| s.name.clone()).collect(),
        allow_destroy: args.allow_destroy,
        force_secrets: args.force_secrets,
        ..plan::DiffOptions::default()
    };
    let no_probes = GatherOptions {
        probes: false,
        ..GatherOptions::default()
    };
    let Planned {
        desired,
        account,
        live,
        plan,
    } = plan_environment(settings, desired, no_probes, options)?;
    if let Some(path) = &args.plan {
        let saved = plan::read_saved(path)?;
        // The plan as `plan --out` makes it (no secrets supplied), so its changes compare with
        // the file's one for one.
        let as_saved = plan::diff(&desired, &live, &plan::DiffOptions::default());
        if let Some(stale) = plan::stale(&saved, &as_saved) {
            return Err(Error::PlanStale {
                path: path.clone(),
                environment: args.environment,
                stale,
            });
        }
    }
    printer.data(render::text(&plan, printer.stdout_color()).trim_end())?;
    if plan.is_blocked() {
        return Err(Error::PlanBlocked {
            blockers: plan.blockers.len(),
        });
    }
    let steps = apply::steps(&plan);
    if steps.is_empty() {
        if !plan.is_empty() {
            printer.status("No changes for apply to make.");
        }
        return Ok(Outcome::Success);
    }
    if !may_write {
        return Err(Error::ApprovalNeeded);
    }
    if !args.auto_approve {
        if !std::io::stdout().is_terminal() {
            // The plan went down a pipe, which may print it after the question: show it again
            // on the terminal that asks, so what is approved is on screen above the question.
            let shown = render::text(&plan, printer.stderr_color());
            printer.prompt(format_args!("{}\n", shown.trim_end()));
        }
        if !confirm(printer, &args.environment)? {
            return Err(Error::ApplyCancelled);
        }
    }
    crate::interrupt::watch(&account.runtime).map_err(|source| Error::Runtime { source })?;
    let mut progress = apply::ProgressLines::new(steps.len(), printer.quiet());
    let applied = account.runtime.block_on(apply::run(
        &steps,
        &desired,
        &live,
        &account.client,
        &secrets,
        &mut progress,
    ))?;
    printer.status(format_args!(
        "Apply complete: {} step{} done. A fresh plan of {} is empty.",
        applied.steps,
        if applied.steps == 1 { "" } else { "s" },
        args.environment
    ));
    Ok(Outcome::Success)
}

/// Ask on the terminal; only `yes` goes ahead.
fn confirm(printer: Printer, environment: &str) -> Result<bool, Error> {
    printer.prompt(format_args!(
        "\nApply these changes to {environment}? Only 'yes' will be accepted: "
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|source| Error::Answer { source })?;
    Ok(answer.trim() == "yes")
}
