//! `lmsinfra rollback`: deploy an earlier version of one Worker (or each), every check made
//! with reads before the first write, then run the smoke checks of what was rolled back.

use super::chosen_workers;
use crate::account::Account;
use crate::check::smoke;
use crate::cli::RollbackArgs;
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::printer::Printer;
use crate::release;
use crate::release::history::History;
use crate::release::rollback::{self, Target};
use crate::settings::Settings;

pub(super) fn rollback(
    settings: &Settings,
    printer: Printer,
    args: RollbackArgs,
) -> Result<Outcome, Error> {
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.dry_run && !args.auto_approve && !interactive {
        return Err(Error::ApprovalNeededFor {
            command: "rollback",
        });
    }
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let workers = chosen_workers(&desired, args.worker.as_deref())?;
    if workers.len() > 1 && !args.all {
        return Err(Error::WorkerNeeded {
            environment: desired.environment.clone(),
            known: super::worker_keys(&desired),
        });
    }
    let target = match (&args.to_version, &args.to_tag, args.steps) {
        (Some(id), _, _) => Target::Version(id.clone()),
        (None, Some(tag), _) => Target::Tag(tag.clone()),
        (None, None, steps) => Target::Previous {
            steps: usize::from(steps.unwrap_or(1)),
        },
    };
    let account = Account::connect(settings, &desired)?;
    let client = &account.client;
    let mut prepared = Vec::new();
    for (key, worker) in workers {
        let history = account
            .runtime
            .block_on(History::read(client, key, &worker.name))?
            .ok_or_else(|| rollback::Error::WorkerMissing {
                script: worker.name.clone(),
            })?;
        let ready = account.runtime.block_on(rollback::prepare(
            client,
            &history,
            &target,
            args.allow_secret_revert,
        ))?;
        let serving: Vec<String> = ready
            .serving
            .iter()
            .map(|v| format!("{} at {}%", v.version_id, v.percentage))
            .collect();
        printer.data(&format!(
            "worker.{key} ({}): serving {}; rollback target {}{}",
            ready.script,
            if serving.is_empty() {
                "nothing".to_owned()
            } else {
                serving.join(" and ")
            },
            ready.target.version.id,
            ready
                .target
                .version
                .annotations
                .message
                .as_deref()
                .map_or_else(String::new, |m| format!(" ({m})"))
        ))?;
        for check in &ready.checks {
            printer.data(&format!("  ok: {check}"))?;
        }
        prepared.push(ready);
    }
    if args.dry_run {
        printer.status("Dry run: nothing was deployed.");
        return Ok(Outcome::Success);
    }
    if !args.auto_approve && !confirm(printer, &args.environment)? {
        return Err(Error::ApplyCancelled);
    }
    crate::interrupt::watch(&account.runtime).map_err(|source| Error::Runtime { source })?;
    for (index, ready) in prepared.iter().enumerate() {
        if crate::interrupt::requested() {
            let names = |r: &[rollback::Prepared]| {
                r.iter()
                    .map(|r| format!("worker.{}", r.key))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(Error::Interrupted {
                command: "rollback",
                done: if index == 0 {
                    "no Worker".to_owned()
                } else {
                    names(&prepared[..index])
                },
                rest: names(&prepared[index..]),
                // Rolling back every Worker again would take the finished ones further back.
                finish: prepared[index..]
                    .iter()
                    .map(|r| format!("lmsinfra rollback {} --worker {}", args.environment, r.key))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        let annotations =
            release::rollback_annotations(&args.environment, &ready.target.version.id);
        let deployed = account.runtime.block_on(rollback::deploy(
            client,
            ready,
            &annotations,
            args.allow_secret_revert,
        ))?;
        printer.status(format_args!(
            "Rolled back worker.{} ({}) to {} in deployment {}.",
            ready.key, ready.script, ready.target.version.id, deployed.id
        ));
    }
    printer.status(format_args!(
        "`lmsinfra plan {env}` now reports {env} as rolled back; `lmsinfra apply {env} --roll-forward` undoes it.",
        env = args.environment
    ));
    let checked: Vec<&str> = prepared
        .iter()
        .map(|r| r.key.as_str())
        .filter(|key| desired.workers.get(*key).is_some_and(|w| w.smoke.is_some()))
        .collect();
    if args.no_verify || checked.is_empty() {
        return Ok(Outcome::Success);
    }
    let outcomes = super::verify::verify_workers(&account, &desired, &checked, None)?;
    printer.data(&smoke::text(&desired.environment, None, &outcomes))?;
    Ok(if outcomes.iter().all(|o| o.passed) {
        Outcome::Success
    } else {
        Outcome::SmokeFailed
    })
}

/// Ask on the terminal; only `yes` goes ahead.
fn confirm(printer: Printer, environment: &str) -> Result<bool, Error> {
    printer.prompt(format_args!(
        "\nRoll back {environment}? Only 'yes' will be accepted: "
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|source| Error::Answer { source })?;
    Ok(answer.trim() == "yes")
}
