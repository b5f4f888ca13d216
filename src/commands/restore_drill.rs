//! `lmsinfra restore-drill`: the tested restore. Export the database, import the dump into a
//! scratch database, export that too, and compare the two dumps (schema object by object, rows
//! and a content digest per table). The source's dump *is* the source at the export's bookmark,
//! so the comparison needs no reads of a database that may have moved on since. The scratch
//! database is deleted whatever happens, Ctrl-C included.
//!
//! Also `restore --from FILE --into NAME`, which shares the import into a database lmsinfra
//! creates: a file that is not a dump is refused before any request, and a database that exists
//! is never written to.

use std::fmt::Write as _;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use super::backup::{database_id, export};
use crate::account::Account;
use crate::backup::{self, Comparison, Summary};
use crate::cli::{DiagnosticFormat, RestoreArgs, RestoreDrillArgs};
use crate::cloudflare::Client;
use crate::error::{Error, Outcome};
use crate::manifest;
use crate::printer::Printer;
use crate::settings::Settings;

/// A drill's result, as `--format json` prints it.
#[derive(Debug, Serialize)]
struct Drill {
    environment: String,
    database: String,
    name: String,
    /// The source's bookmark the export was taken at.
    at_bookmark: String,
    /// The size of the source's dump.
    dump_bytes: u64,
    /// The scratch database, and whether it was deleted.
    scratch: String,
    scratch_deleted: bool,
    /// Whether the drill passed: the copy equals the source and the scratch database is gone.
    passed: bool,
    /// Why the import into the scratch database failed, when it did (D1 rolled it back).
    import_error: Option<String>,
    /// The copy against the source, when the import succeeded.
    comparison: Option<Comparison>,
}

pub(super) fn restore_drill(
    settings: &Settings,
    printer: Printer,
    args: RestoreDrillArgs,
) -> Result<Outcome, Error> {
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let (key, database) = backup::select(&desired, args.db.as_deref())?;
    let account = Account::connect(settings, &desired)?;
    let client = &account.client;
    let work = Workdir::new()?;
    let drill = account.runtime.block_on(async {
        let uuid = database_id(client, key, &database.name).await?;
        printer.status(format_args!(
            "Drill of d1.{key} ({}): exporting it (it answers no queries until the export completes)",
            database.name
        ));
        let source = export(client, &uuid).await?;
        let source_file = work.path("source.sql");
        let download = source.signed_url.download(&uuid, &source_file).await?;
        let source_summary = summarise(&source_file)?;
        let scratch_name = scratch_name(&database.name, Timestamp::now());
        printer.status(format_args!("Importing it into scratch database {scratch_name}"));
        // The create is inside the interruptible part too: a Ctrl-C while it is under way may
        // leave a database, so cleanup looks the scratch database up by name.
        let restored = interruptible(async {
            let scratch = client.create_d1(&scratch_name, None).await?;
            let sql = read(&source_file)?;
            match client.import_d1(&scratch.uuid, &sql).await {
                Ok(_) => {}
                Err(crate::cloudflare::Error::ImportRolledBack { message, .. }) => {
                    return Ok(Err(message));
                }
                Err(err) => return Err(err.into()),
            }
            let copy = export(client, &scratch.uuid).await?;
            let copy_file = work.path("restored.sql");
            copy.signed_url.download(&scratch.uuid, &copy_file).await?;
            Ok::<_, Error>(Ok(summarise(&copy_file)?))
        })
        .await;
        let deleted = delete_scratch(client, &scratch_name).await;
        let restored = match (restored, &deleted) {
            (Err(Interrupt::Ctrl), Ok(())) => {
                return Err(backup::Error::Interrupted {
                    cleanup: format!("scratch database {scratch_name} is gone"),
                }
                .into());
            }
            (Err(Interrupt::Ctrl), Err(err)) => {
                return Err(backup::Error::Interrupted {
                    cleanup: format!("scratch database {scratch_name} could not be deleted: {err}"),
                }
                .into());
            }
            (Err(Interrupt::Failed(err)), _) => {
                if let Err(gone) = &deleted {
                    printer.notice(format_args!(
                        "warning: scratch database {scratch_name} could not be deleted: {gone}"
                    ));
                }
                return Err(err);
            }
            (Ok(restored), _) => restored,
        };
        let (comparison, import_error) = match restored {
            Ok(restored) => (Some(backup::compare(&source_summary, &restored)), None),
            Err(reason) => (None, Some(reason)),
        };
        Ok::<Drill, Error>(Drill {
            environment: desired.environment.clone(),
            database: key.to_owned(),
            name: database.name.clone(),
            at_bookmark: source.at_bookmark,
            dump_bytes: download.bytes,
            scratch: scratch_name,
            scratch_deleted: deleted.is_ok(),
            passed: deleted.is_ok() && comparison.as_ref().is_some_and(|c| c.passed),
            import_error,
            comparison,
        })
    })?;
    let text = match args.format {
        DiagnosticFormat::Text => report(&drill),
        DiagnosticFormat::Json => {
            serde_json::to_string_pretty(&drill).expect("a drill serialises to JSON")
        }
    };
    printer.data(text.trim_end())?;
    Ok(if drill.passed {
        Outcome::Success
    } else {
        Outcome::Blocked
    })
}

/// `restore --from FILE --into NAME`: a backup into a new database.
pub(super) fn restore_into(
    settings: &Settings,
    printer: Printer,
    args: &RestoreArgs,
    from: &Path,
    into: &str,
) -> Result<Outcome, Error> {
    let summary = summarise(from)?;
    crate::manifest::naming::d1_database_name(into).map_err(|reason| {
        backup::Error::IntoInvalid {
            name: into.to_owned(),
            reason,
        }
    })?;
    let desired = manifest::load_valid(&settings.dir, &args.environment)?;
    let account = Account::connect(settings, &desired)?;
    let client = &account.client;
    account.runtime.block_on(async {
        if client.find_d1(into).await?.is_some() {
            return Err(backup::Error::IntoExists {
                name: into.to_owned(),
            }
            .into());
        }
        printer.status(format_args!(
            "Creating {into} and importing {}",
            from.display()
        ));
        let created = client.create_d1(into, None).await?;
        let sql = read(from)?;
        if let Err(err) = client.import_d1(&created.uuid, &sql).await {
            if let Err(gone) = client.delete_d1(&created.uuid).await {
                printer.notice(format_args!(
                    "warning: {into} ({}) could not be deleted after the failed import: {gone}",
                    created.uuid
                ));
            }
            return Err(err.into());
        }
        let mut out = format!(
            "Restored {} into new database {into} ({})\n",
            from.display(),
            created.uuid
        );
        for (table, rows) in &summary.tables {
            let _ = writeln!(out, "  {table}: {} rows", rows.rows);
        }
        printer.data(out.trim_end())?;
        Ok(Outcome::Success)
    })
}

/// The bytes of the dump at `path`, for the import (which sends them whole).
fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| {
        backup::Error::File {
            path: path.to_owned(),
            source,
        }
        .into()
    })
}

/// The summary of the dump at `path`, or why it is not one.
fn summarise(path: &Path) -> Result<Summary, Error> {
    let file = std::fs::File::open(path).map_err(|source| backup::Error::File {
        path: path.to_owned(),
        source,
    })?;
    backup::dump::summarise(BufReader::with_capacity(256 * 1024, file)).map_err(|reason| {
        backup::Error::NotADump {
            path: path.to_owned(),
            reason,
        }
        .into()
    })
}

/// Delete the scratch database called `name`, if it exists.
async fn delete_scratch(client: &Client, name: &str) -> Result<(), crate::cloudflare::Error> {
    match client.find_d1(name).await? {
        Some(scratch) => client.delete_d1(&scratch.uuid).await,
        None => Ok(()),
    }
}

/// `<name>-drill-<time>`, cut so it stays a valid D1 name (64 characters).
fn scratch_name(name: &str, at: Timestamp) -> String {
    let suffix = format!("-drill-{}", at.strftime("%Y%m%d%H%M%S"));
    let keep = 64usize.saturating_sub(suffix.len());
    format!("{}{suffix}", &name[..name.len().min(keep)])
}

/// Why a step of the drill did not finish.
enum Interrupt {
    Ctrl,
    Failed(Error),
}

/// Run `work` until it ends or Ctrl-C is pressed.
async fn interruptible<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Interrupt> {
    tokio::select! {
        done = work => done.map_err(Interrupt::Failed),
        _ = tokio::signal::ctrl_c() => Err(Interrupt::Ctrl),
    }
}

/// A private folder for the drill's dumps, removed when dropped.
struct Workdir(PathBuf);

impl Workdir {
    fn new() -> Result<Workdir, Error> {
        let dir = std::env::temp_dir().join(format!(
            "lmsinfra-drill-{}-{}",
            std::process::id(),
            Timestamp::now().as_microsecond()
        ));
        std::fs::create_dir(&dir).map_err(|source| backup::Error::File {
            path: dir.clone(),
            source,
        })?;
        Ok(Workdir(dir))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The one-screen report.
fn report(drill: &Drill) -> String {
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let mut out = format!(
        "Restore drill of d1.{} ({}) in {}\n",
        drill.database, drill.name, drill.environment
    );
    let _ = writeln!(
        out,
        "  export   at bookmark {} ({} bytes)",
        drill.at_bookmark, drill.dump_bytes
    );
    let _ = writeln!(
        out,
        "  scratch  {} ({})",
        drill.scratch,
        if drill.scratch_deleted {
            "created, deleted"
        } else {
            "NOT deleted: delete it by hand"
        }
    );
    if let Some(reason) = &drill.import_error {
        let _ = writeln!(out, "\n  ✗ import: {reason}");
    }
    if let Some(c) = &drill.comparison {
        let _ = writeln!(
            out,
            "\n  {} schema: {} objects, {}",
            mark(c.schema_equal),
            c.schema_objects,
            if c.schema_equal { "equal" } else { "different" }
        );
        for missing in &c.schema_missing {
            let _ = writeln!(out, "      missing: {}", first_line(missing));
        }
        for extra in &c.schema_extra {
            let _ = writeln!(out, "      extra:   {}", first_line(extra));
        }
        let width = c
            .tables
            .iter()
            .map(|t| t.table.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            out,
            "\n    {:width$}  {:>10}  {:>10}  content",
            "table", "source", "restored"
        );
        let rows = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
        for t in &c.tables {
            let ok = t.content_equal && t.source_rows == t.restored_rows;
            let _ = writeln!(
                out,
                "  {} {:width$}  {:>10}  {:>10}  {}",
                mark(ok),
                t.table,
                rows(t.source_rows),
                rows(t.restored_rows),
                if t.content_equal { "equal" } else { "differs" }
            );
        }
    }
    out.push_str(match (&drill.comparison, drill.passed) {
        (_, true) => {
            "\nDrill passed: the backup restores to what the database held at its bookmark."
        }
        (None, false) => "\nDrill FAILED: the backup did not import.",
        (Some(c), false) if c.passed => {
            "\nDrill FAILED: the copy matched, but the scratch database was left behind."
        }
        (Some(_), false) => {
            "\nDrill FAILED: the restored copy differs from the database at its bookmark."
        }
    });
    out
}

fn first_line(sql: &str) -> String {
    let line = sql.lines().next().unwrap_or_default();
    let mut shown: String = line.chars().take(70).collect();
    if shown.len() < sql.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_name_is_a_valid_d1_name() {
        let at: Timestamp = "2026-12-06T08:15:00Z".parse().unwrap();
        assert_eq!(scratch_name("lms-db", at), "lms-db-drill-20261206081500");
        let long = scratch_name(&"x".repeat(64), at);
        assert_eq!(long.len(), 64);
        assert!(crate::manifest::naming::d1_database_name(&long).is_ok());
    }
}
