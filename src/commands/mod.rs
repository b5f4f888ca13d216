//! The subcommands, one file each: every function wires the stages together for one command
//! and returns how it ended. What more than one command needs sits here.

mod apply;
mod check;
mod completions;
mod diff;
mod import;
mod man;
mod plan;
mod sandbox;
mod schema;
mod validate;
mod wrangler_config;

use crate::account::Account;
use crate::cli::Command;
use crate::error::{Error, Outcome};
use crate::live::{GatherOptions, Live};
use crate::manifest::{self, Manifest};
use crate::plan::{DiffOptions, Plan};
use crate::printer::Printer;
use crate::settings::{Settings, Target};

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
        Command::Check(args) => check::check(settings, printer, args),
        Command::Diff(args) => diff::diff(settings, printer, args),
        Command::Schema(args) => schema::schema(printer, args),
        Command::Sandbox(args) => sandbox::sandbox(settings, args),
        Command::Import(args) => import::import(settings, printer, args),
        Command::WranglerConfig(args) => wrangler_config::wrangler_config(settings, printer, args),
        Command::Completions(args) => completions::completions(printer, args),
        Command::Man(args) => man::man(printer, args),
    }
}

/// Whether to probe: not with `--no-probe`, and not with `--sandbox`, whose Workers serve no
/// traffic (their URLs are the real account's).
fn probe_options(
    settings: &Settings,
    printer: Printer,
    desired: &Manifest,
    no_probe: bool,
) -> GatherOptions {
    if settings.target == Target::Sandbox && !no_probe {
        let probed = desired.workers.values().any(|w| w.headers.is_some());
        if probed {
            printer.status(
                "note: header probes are skipped with --sandbox, whose Workers serve no traffic",
            );
        }
    }
    GatherOptions {
        probes: !no_probe && settings.target == Target::Cloudflare,
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
}

/// The sequence `plan` and `apply` share: connect to the account, read it, and diff the
/// manifest against it, with the names other environments declare and the warnings of the
/// project's wrangler configuration.
fn plan_environment(
    settings: &Settings,
    desired: Manifest,
    gather: GatherOptions,
    options: DiffOptions,
) -> Result<Planned, Error> {
    let account = Account::connect(settings, &desired)?;
    let live = account.gather(&desired, gather)?;
    let others = other_environments(settings, &desired.environment);
    let options = DiffOptions {
        declared_elsewhere: declared_elsewhere(&others),
        protected_elsewhere: protected_elsewhere(&others),
        ..options
    };
    let mut plan = crate::plan::diff(&desired, &live, &options);
    plan.warnings
        .extend(crate::wrangler::check_project(&settings.dir, &desired));
    Ok(Planned {
        desired,
        account,
        live,
        plan,
    })
}

/// The manifests of the project's other environments. An environment that does not load is
/// skipped: it is `validate`'s to report.
fn other_environments(settings: &Settings, environment: &str) -> Vec<Manifest> {
    let Ok(files) = manifest::environment_files(&settings.dir) else {
        return Vec::new();
    };
    files
        .iter()
        .filter(|(name, _)| name != environment)
        .filter_map(|(name, _)| manifest::load_valid(&settings.dir, name).ok())
        .collect()
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
