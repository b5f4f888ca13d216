//! `lmsinfra apply`: make the live account match the manifest, after the user approves the plan,
//! then run the smoke checks of the Workers it deployed.

use super::verify::{serving, verify_workers};
use super::{Planned, Read, plan_environment};
use crate::account::Account;
use crate::apply;
use crate::check::smoke;
use crate::cli::ApplyArgs;
use crate::cloudflare::DeployedVersion;
use crate::error::{Error, Outcome};
use crate::live::{GatherOptions, Live};
use crate::manifest::model::{OnFailure, Smoke};
use crate::manifest::{self, Manifest};
use crate::plan;
use crate::printer::Printer;
use crate::release;
use crate::render;
use crate::settings::Settings;

pub(super) fn apply(
    settings: &Settings,
    printer: Printer,
    args: ApplyArgs,
) -> Result<Outcome, Error> {
    let (desired, others) = manifest::load_valid_with_others(&settings.dir, &args.environment)
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
    // The git revision for the versions' annotations is read while the account is: two git
    // processes are milliseconds an apply need not wait for.
    let dir = settings.dir.clone();
    let revision = std::thread::spawn(move || release::Revision::of(&dir));
    let saved = args.plan.as_deref().map(plan::read_saved).transpose()?;
    // A saved plan's own read stands in for reading the account again when the plan deletes no
    // database and writes no zone rules; it is checked against the account before the first
    // write (`check_read`).
    let from_read = saved
        .as_ref()
        .filter(|_| !args.roll_forward)
        .and_then(plan::saved_read)
        .map(|read| {
            let read = Read::Saved(Box::new(read));
            plan_environment(settings, desired.clone(), &others, read, options.clone())
        })
        .transpose()?
        .filter(|planned| checks_enough(&planned.plan));
    let checked_read = from_read.is_some();
    let mut planned = match from_read {
        Some(planned) => planned,
        None => plan_environment(
            settings,
            desired.clone(),
            &others,
            Read::Gather(no_probes),
            options.clone(),
        )?,
    };
    let revision = revision
        .join()
        .unwrap_or_else(|_| release::Revision::Unknown {
            reason: "git could not be run".to_owned(),
        });
    if args.roll_forward && roll_forward(&planned, &args, printer)? {
        planned = plan_environment(settings, desired, &others, Read::Gather(no_probes), options)?;
    }
    let Planned {
        desired,
        account,
        live,
        plan,
        rotations,
    } = planned;
    if let (Some(path), Some(saved)) = (&args.plan, &saved) {
        // The plan as `plan --out` makes it (no secrets supplied), so its changes compare with
        // the file's one for one.
        let as_saved = plan::diff(
            &desired,
            &live,
            &plan::DiffOptions {
                migrations: crate::migrations::read_all(&settings.dir, &desired)?,
                ..plan::DiffOptions::default()
            },
        );
        if let Some(stale) = plan::stale(saved, &as_saved) {
            return Err(Error::PlanStale {
                path: path.clone(),
                environment: args.environment,
                stale,
            });
        }
        if checked_read {
            check_read(&account, &desired, &live, &plan, path, &args.environment)?;
        }
    }
    printer.data(render::text(&plan, printer.stdout_color()).trim_end())?;
    if plan.is_blocked() {
        return Err(Error::PlanBlocked {
            blockers: plan.blockers.len(),
        });
    }
    // A requested rotation's value goes in its own recorded write, after the others.
    let steps: Vec<apply::Step> = apply::steps(&plan)
        .into_iter()
        .filter_map(|mut step| {
            if let apply::Step::WriteWorker {
                settings, secrets, ..
            } = &mut step
            {
                secrets.retain(|name| !rotations.iter().any(|r| &r.secret == name));
                if settings.is_none() && secrets.is_empty() {
                    return None;
                }
            }
            Some(step)
        })
        .collect();
    if steps.is_empty() && rotations.is_empty() {
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
        // The account may have moved while the question waited.
        if let (true, Some(path)) = (checked_read, &args.plan) {
            check_read(&account, &desired, &live, &plan, path, &args.environment)?;
        }
    }
    crate::interrupt::watch(&account.runtime).map_err(|source| Error::Runtime { source })?;
    let annotations =
        release::apply_annotations(&args.environment, &revision, &apply::plan_digest(&plan));
    let mut progress = apply::ProgressLines::new(steps.len(), printer.quiet());
    let inputs = apply::Inputs {
        desired: &desired,
        live: &live,
        client: &account.client,
        secrets: &secrets,
        annotations: &annotations,
    };
    let applied = account.runtime.block_on(apply::run(
        &steps,
        inputs,
        apply::RunOptions {
            concurrency: settings.concurrency,
            full_check: args.full_check,
            reread: !checked_read,
        },
        &mut progress,
    ))?;
    for rotation in &rotations {
        write_rotation(&account, &desired, rotation, &secrets)?;
        printer.status(format_args!(
            "{} rotated to generation {}.",
            rotation.secret,
            rotation.desired_generation.unwrap_or_default()
        ));
    }
    // From a saved plan's read, only what the plan writes was read now: the end check speaks
    // for that, unless --full-check read everything again.
    let checked = if checked_read && !args.full_check {
        "What the saved plan changes now matches the manifest.".to_owned()
    } else {
        format!("A fresh plan of {} is empty.", args.environment)
    };
    printer.status(format_args!(
        "Apply complete: {} step{} done. {checked}",
        applied.steps,
        if applied.steps == 1 { "" } else { "s" },
    ));
    if args.no_verify {
        return Ok(Outcome::Success);
    }
    verify_deployed(printer, &account, &desired, &live)
}

/// Whether a saved plan's read, checked by [`check_read`], is enough for `plan`: it deletes no
/// database (which needs every Worker of the account read, so none still binds it) and writes
/// no zone rules (whose entrypoints hold rules of others, read whole before a write).
fn checks_enough(plan: &plan::Plan) -> bool {
    !plan.changes.iter().any(|change| {
        matches!(
            change.operation,
            plan::Operation::DeleteDatabase { .. } | plan::Operation::Rules(_)
        )
    })
}

/// Refuse a saved plan whose read no longer stands: a Worker it writes has a newer version or
/// serves another deployment, or the D1 list or a migration ledger moved. A few reads, in place
/// of reading the whole environment again.
fn check_read(
    account: &Account,
    desired: &Manifest,
    live: &Live,
    plan: &plan::Plan,
    path: &std::path::Path,
    environment: &str,
) -> Result<(), Error> {
    let scripts: std::collections::BTreeSet<&str> = plan
        .changes
        .iter()
        .filter_map(|change| match &change.operation {
            plan::Operation::Observability { script, .. } => Some(script.as_str()),
            operation => operation.versioned_script(),
        })
        .collect();
    let moved = account.runtime.block_on(crate::live::changed_since(
        live,
        desired,
        &account.client,
        &scripts,
    ))?;
    match moved {
        Some(moved) => Err(Error::PlanStale {
            path: path.to_owned(),
            environment: environment.to_owned(),
            stale: plan::Stale::Moved(moved),
        }),
        None => Ok(()),
    }
}

/// Run the smoke checks of every Worker whose serving deployment apply changed, and act on a
/// failure as each Worker's `on_failure` says: roll back to the deployment `live` saw before
/// apply (then check again), stop, or warn.
fn verify_deployed(
    printer: Printer,
    account: &Account,
    desired: &Manifest,
    live: &Live,
) -> Result<Outcome, Error> {
    let mut changed: Vec<(&str, Vec<DeployedVersion>)> = Vec::new();
    for (key, worker) in &desired.workers {
        if worker.smoke.is_none() {
            continue;
        }
        let before = live
            .workers
            .get(&worker.name)
            .and_then(|w| w.rollout.as_ref())
            .map(|r| r.deployed.clone())
            .unwrap_or_default();
        let now = account
            .runtime
            .block_on(account.client.current_deployment(&worker.name))?
            .flatten()
            .map(|d| d.versions)
            .unwrap_or_default();
        if now != before {
            changed.push((key, before));
        }
    }
    if changed.is_empty() {
        return Ok(Outcome::Success);
    }
    let smoke_of = |key: &str| desired.workers[key].smoke.as_ref();
    settle(changed.iter().filter_map(|(key, _)| smoke_of(key)));
    let keys: Vec<&str> = changed.iter().map(|(key, _)| *key).collect();
    let outcomes = verify_workers(account, desired, &keys, None)?;
    printer.data(&format!(
        "\n{}",
        smoke::text(&desired.environment, None, &outcomes)
    ))?;
    let mut result = Outcome::Success;
    let mut rolled_back = Vec::new();
    for (key, before) in &changed {
        let failed: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.worker == *key && !o.passed)
            .map(|o| o.check.as_str())
            .collect();
        if failed.is_empty() {
            continue;
        }
        let worker = &desired.workers[*key];
        match smoke_of(key).map(|s| s.on_failure).unwrap_or_default() {
            OnFailure::Warn => printer.status(format_args!(
                "warning: worker.{key} failed its smoke checks ({}); the new version keeps serving (on_failure: warn)",
                failed.join(", ")
            )),
            OnFailure::Stop => {
                result = Outcome::SmokeFailed;
                printer.status(format_args!(
                    "worker.{key} failed its smoke checks ({}); the new version keeps serving (on_failure: stop)",
                    failed.join(", ")
                ));
            }
            OnFailure::Rollback if before.is_empty() => {
                result = Outcome::SmokeFailed;
                printer.status(format_args!(
                    "worker.{key} failed its smoke checks ({}) and had no deployment before this apply to roll back to",
                    failed.join(", ")
                ));
            }
            OnFailure::Rollback => {
                result = Outcome::SmokeFailed;
                let message = format!(
                    "{}: {}",
                    crate::plan::AUTO_ROLLBACK_MESSAGE,
                    failed.join(", ")
                );
                let annotations = crate::cloudflare::Annotations {
                    message: Some(message),
                    ..Default::default()
                };
                let deployed = account.runtime.block_on(account.client.create_deployment(
                    &worker.name,
                    before,
                    &annotations,
                    false,
                ));
                match deployed {
                    Ok(_) => {
                        printer.status(format_args!(
                            "worker.{key} failed its smoke checks ({}); rolled back to {} (on_failure: rollback)",
                            failed.join(", "),
                            serving(before)
                        ));
                        rolled_back.push(*key);
                    }
                    Err(err) => printer.status(format_args!(
                        "worker.{key} failed its smoke checks ({}) and the rollback to {} was refused, so the new version keeps serving: {err}",
                        failed.join(", "),
                        serving(before)
                    )),
                }
            }
        }
    }
    if !rolled_back.is_empty() {
        settle(rolled_back.iter().filter_map(|key| smoke_of(key)));
        let again = verify_workers(account, desired, &rolled_back, None)?;
        printer.data(&format!(
            "\nAfter the rollback:\n{}",
            smoke::text(&desired.environment, None, &again)
        ))?;
    }
    Ok(result)
}

/// Wait the longest settle delay of these smoke blocks, while a new deployment spreads.
fn settle<'a>(smokes: impl Iterator<Item = &'a Smoke>) {
    let seconds = smokes.map(|s| s.settle_seconds).fold(0.0, f64::max);
    if seconds > 0.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    }
}

/// Serve each rolled-back Worker's newest version again at 100 %, as it was before the
/// rollback, so the plan that follows compares the manifest with it; whether any was.
fn roll_forward(planned: &Planned, args: &ApplyArgs, printer: Printer) -> Result<bool, Error> {
    let environment = args.environment.as_str();
    let rolled_back: Vec<(&String, &String)> = planned
        .desired
        .workers
        .values()
        .filter_map(|worker| {
            let rollout = planned.live.workers.get(&worker.name)?.rollout.as_ref()?;
            let newest = rollout.newest.as_ref()?;
            release::is_rollback(rollout.message.as_deref()).then_some((&worker.name, newest))
        })
        .collect();
    if rolled_back.is_empty() {
        return Ok(false);
    }
    let names: Vec<&str> = rolled_back.iter().map(|(name, _)| name.as_str()).collect();
    if !args.auto_approve && !confirm_roll_forward(printer, environment, &names.join(", "))? {
        return Err(Error::ApplyCancelled);
    }
    let annotations = crate::cloudflare::Annotations {
        message: Some(format!("lmsinfra apply {environment} --roll-forward")),
        ..Default::default()
    };
    for (name, newest) in rolled_back {
        let versions = [crate::cloudflare::DeployedVersion {
            version_id: newest.clone(),
            percentage: 100.0,
        }];
        // The newest version's secrets are the ones the rollback reverted: bringing them back
        // is the point, so Cloudflare's secret check is passed.
        planned
            .account
            .runtime
            .block_on(planned.account.client.create_deployment(
                name,
                &versions,
                &annotations,
                true,
            ))?;
        printer.status(format_args!(
            "Rolled {name} forward: its newest version {newest} serves again."
        ));
    }
    Ok(true)
}

/// Ask on the terminal before serving the newest versions again; only `yes` goes ahead.
fn confirm_roll_forward(printer: Printer, environment: &str, scripts: &str) -> Result<bool, Error> {
    printer.prompt(format_args!(
        "\n{environment} is rolled back. Serve the newest version of {scripts} again, then apply? Only 'yes' will be accepted: "
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|source| Error::Answer { source })?;
    Ok(answer.trim() == "yes")
}

/// The supplied value of a requested `dual` rotation: `NAME` set and `NAME_NEXT` removed in one
/// write that records the manifest's generation.
fn write_rotation(
    account: &Account,
    desired: &crate::manifest::Manifest,
    rotation: &crate::rotation::SecretStatus,
    secrets: &std::collections::BTreeMap<String, crate::secret::Secret>,
) -> Result<(), Error> {
    let name = rotation.secret.as_str();
    let (Some(worker), Some(value)) = (desired.workers.get(&rotation.worker), secrets.get(name))
    else {
        return Ok(());
    };
    let record =
        crate::rotation::Record::promoted(name, rotation.desired_generation.unwrap_or_default());
    super::rotate::write_record(
        account,
        &worker.name,
        [(name.to_owned(), value.clone())].into(),
        vec![format!("{name}_NEXT")],
        &record,
    )
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
