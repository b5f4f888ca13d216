//! `lmsinfra apply`: make the live account match the manifest, after the user approves the plan.

use super::{Planned, plan_environment};
use crate::account::Account;
use crate::apply;
use crate::cli::ApplyArgs;
use crate::error::{Error, Outcome};
use crate::live::GatherOptions;
use crate::manifest;
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
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.auto_approve && !interactive {
        return Err(Error::ApprovalNeeded);
    }
    let desired = manifest::load_valid(&settings.dir, &args.environment)
        .map_err(|err| apply::withhold_secret_values(err, &args.secrets))?;
    let secrets = apply::read_secrets(
        &args.secrets,
        &desired,
        |var| std::env::var(var).ok(),
        &mut std::io::stdin(),
    )?;
    crate::secret::register(secrets.values());
    let options = plan::DiffOptions {
        supplied_secrets: secrets.keys().cloned().collect(),
        allow_destroy: args.allow_destroy,
        ..plan::DiffOptions::default()
    };
    let no_probes = GatherOptions {
        probes: false,
        ..GatherOptions::default()
    };
    let mut planned = plan_environment(settings, desired.clone(), no_probes, options.clone())?;
    let revision = release::Revision::of(&settings.dir);
    if args.roll_forward && roll_forward(&planned, &args, printer)? {
        planned = plan_environment(settings, desired, no_probes, options)?;
    }
    let Planned {
        desired,
        account,
        live,
        plan,
        rotations,
    } = planned;
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
        return Ok(Outcome::Success);
    }
    if !args.auto_approve && !confirm(printer, &args.environment)? {
        return Err(Error::ApplyCancelled);
    }
    let annotations =
        release::apply_annotations(&args.environment, &revision, &apply::plan_digest(&plan));
    let mut progress = apply::ProgressLines::new(steps.len(), printer.quiet());
    let applied = account.runtime.block_on(apply::run(
        &steps,
        &desired,
        &live,
        &account.client,
        &secrets,
        &annotations,
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
    printer.status(format_args!(
        "Apply complete: {} step{} done. A fresh plan of {} is empty.",
        applied.steps,
        if applied.steps == 1 { "" } else { "s" },
        args.environment
    ));
    Ok(Outcome::Success)
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
