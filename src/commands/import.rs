//! `lmsinfra import`: write manifests from a wrangler configuration.

use super::write_atomically;
use crate::cli::ImportArgs;
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn import(
    settings: &Settings,
    printer: Printer,
    args: ImportArgs,
) -> Result<Outcome, Error> {
    use crate::wrangler::{Import, ImportOptions};
    let config = crate::wrangler::read(&args.path)?;
    let from_env = std::env::var("CLOUDFLARE_ACCOUNT_ID")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty());
    if let Some(id) = &from_env
        && !crate::cloudflare::is_account_id(id)
    {
        return Err(crate::cloudflare::Error::AccountInvalid {
            value: crate::secret::scrub(id),
        }
        .into());
    }
    let options = ImportOptions {
        environments: args.environments,
        account_id: args.account_id.or(from_env),
        worker_key: args.worker_key,
    };
    let imported = crate::wrangler::import(&config, &options)?;
    let folder = settings.dir.join("environments");
    let path = |environment: &str| folder.join(format!("{environment}.yaml"));
    let existing: Vec<String> = imported
        .manifests
        .iter()
        .map(|m| path(&m.environment))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(crate::wrangler::Error::WouldOverwrite { paths: existing }.into());
    }
    let mut rendered = Vec::new();
    for manifest in &imported.manifests {
        let file = path(&manifest.environment);
        let text = Import::render(manifest);
        manifest::parse_valid(&file.display().to_string(), &manifest.environment, &text)?;
        rendered.push((file, text));
    }
    std::fs::create_dir_all(&folder).map_err(|source| Error::FileWrite {
        path: folder.clone(),
        source,
    })?;
    for (file, text) in rendered {
        write_atomically(&file, text.as_bytes())?;
        printer.status(format_args!("wrote {}", file.display()));
    }
    for (environment, note) in &imported.notes {
        printer.notice(format_args!("note: {environment}: {note}"));
    }
    if !imported.unmapped.is_empty() {
        printer
            .notice("not imported (manifests do not describe these; wrangler still deploys them):");
        for (environment, what) in &imported.unmapped {
            printer.notice(format_args!("  {environment}: {what}"));
        }
    }
    printer.status(
        "next: `lmsinfra validate` shows where the environments differ; add each Worker's required secrets by name",
    );
    Ok(Outcome::Success)
}
