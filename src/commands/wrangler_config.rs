//! `lmsinfra wrangler-config`: the wrangler configuration of one Worker, from its manifests,
//! printed or merged into the project's configuration file.

use super::write_atomically;
use crate::account::Account;
use crate::cli::WranglerConfigArgs;
use crate::error::{Error, Outcome};
use crate::live;
use crate::manifest::{self, Manifest};
use crate::printer::Printer;
use crate::settings::Settings;
use crate::wrangler::{Existing, Section, Syntax};

pub(super) fn wrangler_config(
    settings: &Settings,
    printer: Printer,
    args: WranglerConfigArgs,
) -> Result<Outcome, Error> {
    let environments = match &args.environment {
        Some(environment) => vec![environment.clone()],
        None => manifest::environment_files(&settings.dir)?
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
    };
    let mut manifests = Vec::new();
    for environment in &environments {
        manifests.push(manifest::load_valid(&settings.dir, environment)?);
    }
    // Production first, so the top level comes before the sections that inherit from it.
    manifests.sort_by_key(|m| m.environment != crate::wrangler::TOP_LEVEL_ENVIRONMENT);
    let mut chosen = Vec::new();
    for desired in &manifests {
        match worker_key(desired, args.worker.as_deref(), args.all) {
            Ok(Some(key)) => chosen.push((desired, key)),
            Ok(None) => printer.status(format_args!(
                "note: {} has no worker `{}`; its section is not written",
                desired.environment,
                args.worker.as_deref().unwrap_or_default()
            )),
            Err(err) => return Err(err.into()),
        }
    }
    let mut sections = Vec::new();
    for (desired, key) in chosen {
        sections.push(section(settings, desired, &key)?);
    }
    let syntax = args.write.as_deref().map_or(Syntax::Json, Syntax::of);
    let existing_text = match &args.write {
        Some(path) if !args.force => read_existing(path)?,
        _ => None,
    };
    let existing = args
        .write
        .as_deref()
        .zip(existing_text.as_deref())
        .map(|(path, text)| Existing { path, text });
    let text = crate::wrangler::merge(syntax, existing, &sections, args.main.as_deref())?;
    match &args.write {
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            let written: Vec<&str> = sections.iter().map(|s| s.environment.as_str()).collect();
            let verb = if existing.is_some() {
                "merged"
            } else {
                "wrote"
            };
            printer.status(format_args!(
                "{verb} {} into {}",
                written.join(", "),
                path.display()
            ));
        }
        None => printer.data(text.trim_end())?,
    }
    Ok(Outcome::Success)
}

/// The text of the file `--write` names, or `None` when it does not exist yet.
fn read_existing(path: &std::path::Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(crate::wrangler::Error::Read {
            path: path.to_owned(),
            reason: err.to_string(),
        }
        .into()),
    }
}

/// The key of the Worker to write: `--worker`, or the manifest's only one. With `--all`, an
/// environment without the named Worker is passed over (`None`).
fn worker_key(
    desired: &Manifest,
    worker: Option<&str>,
    all: bool,
) -> Result<Option<String>, crate::wrangler::Error> {
    let keys: Vec<&String> = desired.workers.keys().collect();
    let list = || {
        keys.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (worker, keys.as_slice()) {
        (Some(key), _) if desired.workers.contains_key(key) => Ok(Some(key.to_owned())),
        (Some(_), _) if all => Ok(None),
        (Some(key), _) => Err(crate::wrangler::Error::WorkerChoice {
            reason: format!(
                "the manifest of {} has no worker `{key}`",
                desired.environment
            ),
            available: list(),
        }),
        (None, [only]) => Ok(Some((*only).clone())),
        (None, _) => Err(crate::wrangler::Error::WorkerChoice {
            reason: format!(
                "the manifest of {} has {} workers and a wrangler configuration describes one",
                desired.environment,
                keys.len()
            ),
            available: list(),
        }),
    }
}

/// The section of worker `key`, with the database ids of the environment's account.
fn section(settings: &Settings, desired: &Manifest, key: &str) -> Result<Section, Error> {
    let account = Account::connect(settings, desired)?;
    let databases = account
        .runtime
        .block_on(account.client.list_d1())?
        .into_iter()
        .map(Into::into)
        .collect::<Vec<live::LiveDatabase>>();
    Ok(crate::wrangler::export(desired, key, &databases)?)
}
