//! `lmsinfra verify`: send the smoke checks to what serves now, or to one version. apply runs
//! the same after it changed a Worker ([`verify_workers`]).

use crate::account::Account;
use crate::check::smoke::{self, Outcome as CheckOutcome, Target};
use crate::cli::VerifyArgs;
use crate::cloudflare::DeployedVersion;
use crate::error::{Error, Outcome};
use crate::manifest::{self, Manifest};
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn verify(
    settings: &Settings,
    printer: Printer,
    args: VerifyArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let with: Vec<&str> = desired
        .workers
        .iter()
        .filter(|(_, w)| w.smoke.is_some())
        .map(|(key, _)| key.as_str())
        .collect();
    let keys: Vec<&str> = match args.worker.as_deref() {
        Some(key) if with.contains(&key) => vec![key],
        Some(key) => {
            return Err(Error::NoSmokeChecks {
                environment: desired.environment.clone(),
                key: key.to_owned(),
                with: if with.is_empty() {
                    "none".to_owned()
                } else {
                    with.join(", ")
                },
            });
        }
        None => with,
    };
    if keys.is_empty() {
        printer.status(format_args!(
            "{} declares no smoke checks (`workers.KEY.smoke`); nothing to verify.",
            desired.environment
        ));
        return Ok(Outcome::Success);
    }
    let account = Account::connect(settings, &desired)?;
    let outcomes = verify_workers(&account, &desired, &keys, args.version.as_deref())?;
    printer.data(&smoke::text(
        &desired.environment,
        args.version.as_deref(),
        &outcomes,
    ))?;
    Ok(if outcomes.iter().all(|o| o.passed) {
        Outcome::Success
    } else {
        Outcome::SmokeFailed
    })
}

/// Run the smoke checks of the Workers `keys` (those without checks are skipped) against the
/// deployment serving each now, or against `version` of it: a version id belongs to one
/// Worker, so the Workers whose deployment lacks it are skipped, and it is an error when none
/// has it. Every deployment is read before the first check is sent; the Workers are checked at
/// once, each one's checks in order.
pub(super) fn verify_workers(
    account: &Account,
    desired: &Manifest,
    keys: &[&str],
    version: Option<&str>,
) -> Result<Vec<CheckOutcome>, Error> {
    let mut targets = Vec::new();
    let mut lacking = Vec::new();
    for key in keys {
        let Some((key, worker)) = desired.workers.get_key_value(*key) else {
            continue;
        };
        let Some(smoke) = &worker.smoke else {
            continue;
        };
        let deployed: Vec<DeployedVersion> = account
            .runtime
            .block_on(account.client.current_deployment(&worker.name))?
            .flatten()
            .map(|d| d.versions)
            .unwrap_or_default();
        let versions = match version {
            Some(version) => {
                if !deployed.iter().any(|d| d.version_id == version) {
                    lacking.push(format!("{} serves {}", worker.name, serving(&deployed)));
                    continue;
                }
                vec![version.to_owned()]
            }
            None => deployed
                .iter()
                .filter(|d| d.percentage > 0.0)
                .map(|d| d.version_id.clone())
                .collect(),
        };
        targets.push(Target {
            key,
            script: &worker.name,
            smoke,
            version,
            versions,
        });
    }
    if let (Some(version), true) = (version, targets.is_empty()) {
        return Err(Error::VersionNotDeployed {
            version: version.to_owned(),
            serving: lacking.join("; "),
        });
    }
    let traffic = account.worker_traffic();
    let runs = targets.iter().map(|target| smoke::run(target, traffic));
    let outcomes = account.runtime.block_on(futures::future::join_all(runs));
    Ok(outcomes.into_iter().flatten().collect())
}

/// A deployment's versions for people: `ID (100%)`, or `nothing` when there is none.
pub(super) fn serving(deployed: &[DeployedVersion]) -> String {
    if deployed.is_empty() {
        return "nothing".to_owned();
    }
    deployed
        .iter()
        .map(|d| format!("{} ({}%)", d.version_id, d.percentage))
        .collect::<Vec<_>>()
        .join(", ")
}
