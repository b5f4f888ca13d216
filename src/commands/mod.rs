//! The subcommands, one file each: every function wires the stages together for one command
//! and returns how it ended. What more than one command needs sits here.

mod apply;
mod backup;
mod check;
mod completions;
mod diff;
mod graph;
mod import;
mod man;
mod migrate;
mod plan;
mod releases;
mod restore;
mod restore_drill;
mod rollback;
mod rotate;
mod sandbox;
mod schema;
mod secrets;
mod validate;
mod verify;
mod wrangler_config;

use crate::account::Account;
use crate::cli::Command;
use crate::error::{Error, Outcome};
use crate::live::{GatherOptions, Live};
use crate::manifest::{self, Manifest};
use crate::plan::{DiffOptions, Plan};
use crate::printer::Printer;
use crate::settings::Settings;

/// Run one subcommand.
pub(crate) fn run(
    command: Command,
    settings: &Settings,
    printer: Printer,
) -> Result<Outcome, Error> {
    match command {
        Command::Validate(args) => validate::validate(settings, printer, args),
        Command::Plan(args) => plan::plan(settings, printer, args),
        Command::Apply(args) => apply::apply(settings, printer, args),
        Command::Releases(args) => releases::releases(settings, printer, args),
        Command::Rollback(args) => rollback::rollback(settings, printer, args),
        Command::Check(args) => check::check(settings, printer, args),
        Command::Verify(args) => verify::verify(settings, printer, args),
        Command::Rotate(args) => rotate::rotate(settings, printer, args),
        Command::Secrets(args) => secrets::secrets(settings, printer, args),
        Command::Diff(args) => diff::diff(settings, printer, args),
        Command::Graph(args) => graph::graph(settings, printer, args),
        Command::Schema(args) => schema::schema(printer, args),
        Command::Sandbox(args) => sandbox::sandbox(settings, args),
        Command::Import(args) => import::import(settings, printer, args),
        Command::WranglerConfig(args) => wrangler_config::wrangler_config(settings, printer, args),
        Command::Migrate(command) => migrate::migrate(settings, printer, command),
        Command::Backup(args) => backup::backup(settings, printer, args),
        Command::Restore(args) => restore::restore(settings, printer, args),
        Command::RestoreDrill(args) => restore_drill::restore_drill(settings, printer, args),
        Command::Completions(args) => completions::completions(printer, args),
        Command::Man(args) => man::man(printer, args),
    }
}

/// Whether to probe: not with `--no-probe`. With `--sandbox` the probes go to the sandbox's own
/// Worker traffic (see [`Account::gather`]).
fn probe_options(no_probe: bool) -> GatherOptions {
    GatherOptions {
        probes: !no_probe,
        ..GatherOptions::default()
    }
}

/// An environment's manifest, the account it lives in, what that account holds, and the plan
/// between them.
struct Planned {
    desired: Manifest,
    account: Account,
    live: Live,
    plan: Plan,
    /// Requested rotations whose new value was supplied: apply writes and records them.
    rotations: Vec<crate::rotation::SecretStatus>,
}

/// Where a plan's view of the account comes from.
enum Read {
    /// Reading the account now.
    Gather(GatherOptions),
    /// A saved plan's read, which `apply --plan` checks against the account before it writes.
    Saved(Box<Live>),
}

/// The sequence `plan` and `apply` share: connect to the account, read it (or take a saved
/// plan's read), and diff the manifest against it, with the names `others` (the project's other
/// environments) declare and the warnings of the project's wrangler configuration.
fn plan_environment(
    settings: &Settings,
    desired: Manifest,
    others: &[Manifest],
    read: Read,
    options: DiffOptions,
) -> Result<Planned, Error> {
    let migrations = crate::migrations::read_all(&settings.dir, &desired)?;
    let account = Account::connect(settings, &desired)?;
    let live = match read {
        Read::Gather(gather) => account.gather(&desired, gather)?,
        Read::Saved(live) => *live,
    };
    let supplied = options.supplied_secrets.clone();
    let options = DiffOptions {
        declared_elsewhere: declared_elsewhere(others),
        protected_elsewhere: protected_elsewhere(others),
        migrations,
        ..options
    };
    let mut plan = crate::plan::diff(&desired, &live, &options);
    plan.warnings
        .extend(crate::wrangler::check_project(&settings.dir, &desired));
    let rotations = requested_rotations(&account, &desired, &supplied, &mut plan)?;
    Ok(Planned {
        desired,
        account,
        live,
        plan,
        rotations,
    })
}

/// Secrets whose manifest `generation` is above the last recorded rotation: "rotation
/// requested". A `dual` secret whose new value was supplied is returned for apply to write and
/// record (with a warning in the plan); any other is a blocker naming the ways out.
fn requested_rotations(
    account: &Account,
    desired: &Manifest,
    supplied: &std::collections::BTreeSet<String>,
    plan: &mut Plan,
) -> Result<Vec<crate::rotation::SecretStatus>, Error> {
    let asks = desired.workers.values().any(|w| {
        w.secrets
            .rotated()
            .any(|(_, _, rotation)| rotation.generation.is_some())
    });
    if !asks {
        return Ok(Vec::new());
    }
    let mut writes = Vec::new();
    for status in secrets::rotation_statuses(account, desired)? {
        if !status.present || !status.rotation_requested() {
            continue;
        }
        let address = crate::address::Address::Secret {
            worker: status.worker.clone(),
            name: status.secret.clone(),
        };
        let want = status.desired_generation.unwrap_or_default();
        let recorded = status.generation.unwrap_or(0);
        let name = &status.secret;
        if status.strategy == Some("dual") && supplied.contains(name) {
            plan.warnings.push(crate::plan::Warning {
                address,
                message: format!("rotation requested: {name} goes from generation {recorded} to {want} with the supplied value, in one recorded write; the provider must already sign with it (`lmsinfra rotate` switches without downtime)"),
            });
            writes.push(status);
        } else {
            plan.blockers.push(crate::plan::Blocker {
                address,
                kind: crate::plan::BlockerKind::RotationRequested,
                message: format!("rotation requested: the manifest asks for generation {want} of {name}, the account records {recorded}"),
                hints: vec![
                    format!("lmsinfra rotate {} {name}", desired.environment),
                    format!("lmsinfra apply {} --secret {name}=env:VAR (dual only)", desired.environment),
                ],
            });
        }
    }
    Ok(writes)
}

/// The Worker and database names other environments declare, so a plan does not report them
/// as unmanaged.
fn declared_elsewhere(others: &[Manifest]) -> std::collections::BTreeSet<String> {
    others
        .iter()
        .flat_map(|m| {
            let workers = m.workers.values().map(|w| w.name.clone());
            let databases = m.d1_databases.values().map(|d| d.name.clone());
            workers.chain(databases).collect::<Vec<_>>()
        })
        .collect()
}

/// The database names other environments protect, with the environment, so a plan never
/// deletes one whatever this environment's manifest says.
fn protected_elsewhere(others: &[Manifest]) -> std::collections::BTreeMap<String, String> {
    others
        .iter()
        .flat_map(|m| {
            m.d1_databases
                .values()
                .filter(|d| d.protect)
                .map(|d| (d.name.clone(), m.environment.clone()))
        })
        .collect()
}

/// The manifest's Workers a command acts on: the one named by `--worker`, or every one.
fn chosen_workers<'a>(
    desired: &'a Manifest,
    worker: Option<&str>,
) -> Result<Vec<(&'a String, &'a manifest::model::Worker)>, Error> {
    match worker {
        None => Ok(desired.workers.iter().collect()),
        Some(key) => desired
            .workers
            .get_key_value(key)
            .map(|found| vec![found])
            .ok_or_else(|| Error::WorkerUnknown {
                key: key.to_owned(),
                environment: desired.environment.clone(),
                known: worker_keys(desired),
            }),
    }
}

/// The keys of the manifest's Workers, comma-separated, for messages that list them.
fn worker_keys(desired: &Manifest) -> String {
    desired
        .workers
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Write a file whole or not at all: a temporary file beside it, then a rename.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |source| Error::FileWrite {
        path: path.to_owned(),
        source,
    };
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&temporary, bytes).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}
