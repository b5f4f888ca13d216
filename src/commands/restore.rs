//! `lmsinfra restore`: bring a D1 database back to an earlier state. In place with Time Travel
//! (after a confirmation, printing the bookmark that undoes it), or from a backup file into a
//! new database, never over an existing one.

use jiff::Timestamp;

use super::backup::database_id;
use crate::account::Account;
use crate::backup;
use crate::cli::RestoreArgs;
use crate::cloudflare::TimeTravelTarget;
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::printer::Printer;
use crate::settings::Settings;

pub(super) fn restore(
    settings: &Settings,
    printer: Printer,
    args: RestoreArgs,
) -> Result<Outcome, Error> {
    if let (Some(from), Some(into)) = (&args.from, &args.into) {
        return super::restore_drill::restore_into(settings, printer, &args, from, into);
    }
    // Everything that can be refused is refused before the first request.
    // clap lets exactly one of --timestamp, --bookmark and --from through.
    let target = match (&args.timestamp, &args.bookmark) {
        (Some(timestamp), _) => {
            TimeTravelTarget::Timestamp(backup::restore_point(timestamp, Timestamp::now())?)
        }
        (None, bookmark) => {
            TimeTravelTarget::Bookmark(bookmark.as_deref().unwrap_or_default().trim().to_owned())
        }
    };
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.auto_approve && !interactive {
        return Err(backup::Error::ApprovalNeeded.into());
    }
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let (key, database) = backup::select(&desired, args.db.as_deref())?;
    let account = Account::connect(settings, &desired)?;
    let client = &account.client;
    let environment = &desired.environment;
    account.runtime.block_on(async {
        let uuid = database_id(client, key, &database.name).await?;
        // As wrangler does: a time becomes the bookmark it stands for, shown before confirming.
        let (bookmark, described) = match &target {
            TimeTravelTarget::Timestamp(at) => {
                let bookmark = client.d1_bookmark_at(&uuid, *at).await?;
                let described = format!("bookmark {bookmark} (the newest at or before {at})");
                (bookmark, described)
            }
            TimeTravelTarget::Bookmark(bookmark) => {
                (bookmark.clone(), format!("bookmark {bookmark}"))
            }
        };
        printer.status(format_args!(
            "Restore d1.{key} ({}) in {environment} in place to {described}.\n\
             Every write after it is undone; queries in flight are cancelled.",
            database.name
        ));
        if !args.auto_approve && !confirm(printer, key, &database.name)? {
            return Err(backup::Error::Cancelled.into());
        }
        // One write: a Ctrl-C from now on lets it finish, so its undo bookmark is printed.
        crate::interrupt::watch(&account.runtime).map_err(|source| Error::Runtime { source })?;
        let restored = client
            .d1_restore(&uuid, &TimeTravelTarget::Bookmark(bookmark.clone()))
            .await?;
        printer.data(&format!(
            "Restored d1.{key} ({}) to bookmark {bookmark}.\n\
             To undo this restore: lmsinfra restore {environment} --db {key} --bookmark {}",
            database.name, restored.previous_bookmark
        ))?;
        Ok(Outcome::Success)
    })
}

/// Ask on the terminal; only `yes` goes ahead.
fn confirm(printer: Printer, key: &str, name: &str) -> Result<bool, Error> {
    printer.prompt(format_args!(
        "\nOverwrite d1.{key} ({name})? Only 'yes' will be accepted: "
    ));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|source| backup::Error::Answer { source })?;
    Ok(answer.trim() == "yes")
}
