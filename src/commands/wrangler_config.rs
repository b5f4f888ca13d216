//! `lmsinfra wrangler-config`: the wrangler configuration of one Worker, from its manifest.

use super::write_atomically;
use crate::account::Account;
use crate::cli::WranglerConfigArgs;
use crate::error::{Error, Outcome};
use crate::live;
use crate::manifest;
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn wrangler_config(
    settings: &Settings,
    printer: Printer,
    args: WranglerConfigArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let keys: Vec<&String> = desired.workers.keys().collect();
    let list = || {
        keys.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let key = match (&args.worker, keys.as_slice()) {
        (Some(key), _) if desired.workers.contains_key(key) => key.clone(),
        (Some(key), _) => {
            return Err(crate::wrangler::Error::WorkerChoice {
                reason: format!("the manifest of {} has no worker `{key}`", args.environment),
                available: list(),
            }
            .into());
        }
        (None, [only]) => (*only).clone(),
        (None, _) => {
            return Err(crate::wrangler::Error::WorkerChoice {
                reason: format!(
                    "the manifest of {} has {} workers and a wrangler configuration describes one",
                    args.environment,
                    keys.len()
                ),
                available: list(),
            }
            .into());
        }
    };
    let account = Account::connect(settings, &desired)?;
    let databases = account
        .runtime
        .block_on(account.client.list_d1())?
        .into_iter()
        .map(Into::into)
        .collect::<Vec<live::LiveDatabase>>();
    let config = crate::wrangler::export(&desired, &key, &databases, args.main.as_deref())?;
    let text = serde_json::to_string_pretty(&config).expect("a configuration serialises to JSON");
    match &args.write {
        Some(path) => {
            write_atomically(path, format!("{text}\n").as_bytes())?;
            printer.status(format_args!("wrote {}", path.display()));
        }
        None => printer.data(&text)?,
    }
    Ok(Outcome::Success)
}
