//! `lmsinfra backup`: export a D1 database and keep the dump outside Cloudflare's Time Travel
//! window: a file named after the bookmark it was taken at, an R2 object, or both.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::account::Account;
use crate::backup;
use crate::cli::BackupArgs;
use crate::cloudflare::{Client, Download, Export};
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn backup(
    settings: &Settings,
    printer: Printer,
    args: BackupArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let (key, database) = backup::select(&desired, args.db.as_deref())?;
    let account = Account::connect(settings, &desired)?;
    let client = &account.client;
    let r2 = database.backup.as_ref().and_then(|b| b.r2.as_ref());
    account.runtime.block_on(async {
        let uuid = database_id(client, key, &database.name).await?;
        printer.status(format_args!(
            "Exporting d1.{key} ({}); it answers no queries until the export completes",
            database.name
        ));
        let exported = export(client, &uuid).await?;
        let now = Timestamp::now();
        let name = backup::file_name(&database.name, now, &exported.at_bookmark);
        let (file, keep) = match (&args.out, r2) {
            (Some(out), _) if out.is_dir() => (out.join(&name), true),
            (Some(out), _) => (out.clone(), true),
            (None, Some(_)) => (std::env::temp_dir().join(format!(".lmsinfra-{}-{name}", std::process::id())), false),
            (None, None) => (PathBuf::from(&name), true),
        };
        let download = exported.signed_url.download(&uuid, &file).await?;
        let mut lines = vec![format!(
            "Backed up d1.{key} ({}) at bookmark {}",
            database.name, exported.at_bookmark
        )];
        if keep {
            lines.push(format!("  file  {}  {}", file.display(), describe(&download)));
        }
        if let Some(r2) = r2 {
            let object = backup::r2_key(r2, &database.name, now, &exported.at_bookmark);
            let uploaded = client.r2_put_file(&r2.bucket, &object, &file).await;
            if !keep {
                let _ = tokio::fs::remove_file(&file).await;
            }
            uploaded?;
            lines.push(format!("  r2    {}/{object}  {}", r2.bucket, describe(&download)));
        }
        if keep {
            lines.push(format!(
                "Restore it into a new database with: lmsinfra restore {} --db {key} --from {} --into NAME",
                desired.environment,
                shell_word(&file)
            ));
        }
        printer.data(&lines.join("\n"))?;
        Ok(Outcome::Success)
    })
}

/// The id of database `name` (d1.`key`), which must exist.
pub(super) async fn database_id(client: &Client, key: &str, name: &str) -> Result<String, Error> {
    Ok(client
        .find_d1(name)
        .await?
        .ok_or_else(|| backup::Error::DatabaseMissing {
            key: key.to_owned(),
            name: name.to_owned(),
        })?
        .uuid)
}

/// Export database `uuid`, reporting the API's progress messages at `-v`.
pub(super) async fn export(client: &Client, uuid: &str) -> Result<Export, Error> {
    Ok(client
        .export_d1(uuid, |message| tracing::info!("export: {message}"))
        .await?)
}

fn describe(download: &Download) -> String {
    format!("{} bytes, sha256 {}", download.bytes, download.sha256)
}

/// `path` as one shell word.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
