//! `lmsinfra apply`: make the live account match the manifest, after the user approves the plan.

use super::{declared_elsewhere, print_stdout, stdout_color};
use crate::account::Account;
use crate::apply;
use crate::cli::ApplyArgs;
use crate::error::{Error, Outcome};
use crate::live::GatherOptions;
use crate::manifest;
use crate::plan;
use crate::render;
use crate::settings::Settings;

pub(super) fn apply(settings: &Settings, args: ApplyArgs) -> Result<Outcome, Error> {
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.auto_approve && !interactive {
        return Err(Error::ApprovalNeeded);
    }
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let secrets = apply::read_secrets(
        &args.secrets,
        &desired,
        |var| std::env::var(var).ok(),
        &mut std::io::stdin(),
    )?;
    let account = Account::connect(settings, &desired)?;
    let no_probes = GatherOptions {
        probes: false,
        ..GatherOptions::default()
    };
    let live = account.gather(&desired, no_probes)?;
    let options = plan::DiffOptions {
        supplied_secrets: secrets.keys().cloned().collect(),
        allow_destroy: args.allow_destroy,
        declared_elsewhere: declared_elsewhere(settings, &args.environment),
        intent: false,
    };
    let mut plan = plan::diff(&desired, &live, &options);
    plan.warnings
        .extend(crate::wrangler::check_project(&settings.dir, &desired));
    if let Some(path) = &args.plan {
        let saved = plan::read_saved(path)?;
        let moved = if saved.environment != plan.environment {
            Some(format!("it is a plan of {}", saved.environment))
        } else if saved.manifest_sha256 != plan.manifest_sha256 {
            Some("the manifest changed since".to_owned())
        } else if saved.live_fingerprint != plan.live_fingerprint {
            Some("the live account changed since".to_owned())
        } else {
            None
        };
        if let Some(why) = moved {
            report_refusal(&format!(
                "the plan in {} is stale: {why}; run `lmsinfra plan {} --out FILE` again and review it",
                path.display(),
                args.environment
            ));
            return Ok(Outcome::Blocked);
        }
    }
    print_stdout(render::text(&plan, stdout_color()).trim_end())?;
    if plan.is_blocked() {
        report_refusal(&format!(
            "apply refused before any change: {} blocker{} above",
            plan.blockers.len(),
            if plan.blockers.len() == 1 { "" } else { "s" }
        ));
        return Ok(Outcome::Blocked);
    }
    let steps = apply::steps(&plan, &desired, &live);
    if steps.is_empty() {
        return Ok(Outcome::Success);
    }
    if !args.auto_approve && !confirm(&args.environment)? {
        return Err(Error::ApplyCancelled);
    }
    let mut progress = apply::Lines::new(steps.len(), settings.quiet);
    let outcomes = account.runtime.block_on(apply::execute(
        &steps,
        &desired,
        &live,
        &account.client,
        &secrets,
        &mut progress,
    ));
    let failure = outcomes
        .into_iter()
        .enumerate()
        .find_map(|(index, outcome)| match outcome {
            apply::StepOutcome::Failed(_, source) => Some((index, source)),
            _ => None,
        });
    if let Some((index, source)) = failure {
        return Err(Error::ApplyFailed(Box::new(crate::error::ApplyFailure {
            done: steps[..index]
                .iter()
                .map(|s| s.address().to_owned())
                .collect(),
            failed: steps[index].address().to_owned(),
            not_started: steps[index + 1..]
                .iter()
                .map(|s| s.address().to_owned())
                .collect(),
            source,
        })));
    }
    let after = account.gather(&desired, no_probes)?;
    let check = plan::diff(&desired, &after, &plan::DiffOptions::default());
    let left: Vec<String> = check
        .effective_changes()
        .map(|c| c.address.clone())
        .chain(check.blockers.iter().map(|b| b.address.clone()))
        .collect();
    if !left.is_empty() {
        return Err(Error::NotConverged { addresses: left });
    }
    if !settings.quiet {
        anstream::eprintln!(
            "Apply complete: {} step{} done. A fresh plan of {} is empty.",
            steps.len(),
            if steps.len() == 1 { "" } else { "s" },
            args.environment
        );
    }
    Ok(Outcome::Success)
}

/// Ask on the terminal; only `yes` goes ahead.
fn confirm(environment: &str) -> Result<bool, Error> {
    anstream::eprint!("\nApply these changes to {environment}? Only 'yes' will be accepted: ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|source| Error::FileRead {
            path: "<stdin>".into(),
            source,
        })?;
    Ok(answer.trim() == "yes")
}

/// A refusal (exit 3) on stderr, in red on a terminal.
fn report_refusal(message: &str) {
    let red = anstyle::Style::new()
        .fg_color(Some(anstyle::AnsiColor::Red.into()))
        .bold();
    anstream::eprintln!("{red}error:{red:#} {message}");
}
