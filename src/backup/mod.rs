//! D1 backups and restores: what a backup is called, where it goes, whether it is fresh enough,
//! and whether a restored copy holds what its source held.
//!
//! The network work (export, download, upload, Time Travel, import) is the client's; the
//! commands wire it together. What lives here is pure: the names that tie a backup to the Time
//! Travel bookmark it was taken at, the window Time Travel reaches, a restore drill's verdict
//! from two dumps' summaries, and the age of the newest backup.

pub(crate) mod dump;

use std::collections::BTreeSet;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::cloudflare::R2Object;
use crate::manifest::model::{D1Database, Manifest, R2Backup};

pub(crate) use dump::{NotADump, Summary};

/// How far back Time Travel reaches (Workers Paid; D1 documents 30 days).
pub(crate) const WINDOW_DAYS: i64 = 30;

/// Why a backup or restore command refused or failed, before or beside the API's own errors.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum Error {
    /// `--db` names no database of the manifest.
    #[error("{environment} declares no D1 database `{key}`")]
    #[diagnostic(help("the databases of {environment} are: {keys}"))]
    UnknownDatabase {
        environment: String,
        key: String,
        keys: String,
    },
    /// The manifest has several databases and `--db` chose none.
    #[error("{environment} declares more than one D1 database; say which with --db")]
    #[diagnostic(help("the databases of {environment} are: {keys}"))]
    ChooseDatabase { environment: String, keys: String },
    /// The manifest declares no database.
    #[error("{environment} declares no D1 database")]
    NoDatabase { environment: String },
    /// The database is not on the account.
    #[error("d1.{key} ({name}) does not exist on the account")]
    #[diagnostic(help("create it with `lmsinfra apply ENV`, or check CLOUDFLARE_ACCOUNT_ID"))]
    DatabaseMissing { key: String, name: String },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `restore --from` was given a file that is not a SQL dump.
    #[error("{} is not a SQL dump of a D1 database: {reason}; nothing was sent", path.display())]
    #[diagnostic(help("restore --from takes a file `lmsinfra backup` wrote"))]
    NotADump { path: PathBuf, reason: NotADump },
    /// `--timestamp` does not parse.
    #[error("`{value}` is not a time")]
    #[diagnostic(help("give RFC 3339 (2026-01-31T14:00:00Z) or Unix seconds"))]
    TimestampInvalid { value: String },
    /// `--timestamp` is after now.
    #[error("{at} is in the future (now is {now}); nothing was sent")]
    TimestampFuture { at: Timestamp, now: Timestamp },
    /// `--timestamp` is before the Time Travel window.
    #[error(
        "{at} is older than Time Travel's {WINDOW_DAYS}-day window (it reaches back to {oldest}); nothing was sent"
    )]
    #[diagnostic(help(
        "restore an older backup into a new database instead: lmsinfra restore ENV --db KEY --from FILE --into NAME"
    ))]
    TimestampTooOld { at: Timestamp, oldest: Timestamp },
    /// `--into` names a database that exists.
    #[error("D1 database {name} already exists; restore --from only fills a new database")]
    #[diagnostic(help(
        "pick a name no database has; a restore never writes into an existing database"
    ))]
    IntoExists { name: String },
    /// `--into` is not a D1 name.
    #[error("`{name}` is not a valid D1 database name: {reason}")]
    IntoInvalid { name: String, reason: String },
    /// An in-place restore without a terminal to confirm on and without `--auto-approve`.
    #[error("restore needs approval, and there is no terminal to ask on; nothing was sent")]
    #[diagnostic(help("run restore with --auto-approve (as CI does), or from a terminal"))]
    ApprovalNeeded,
    /// The answer at the prompt was not `yes`.
    #[error("restore cancelled; nothing was changed")]
    Cancelled,
    /// The answer to the prompt could not be read.
    #[error("could not read the answer from the terminal")]
    Answer {
        #[source]
        source: std::io::Error,
    },
    /// Ctrl-C stopped the command; what it created was removed.
    #[error("interrupted; {cleanup}")]
    Interrupted { cleanup: String },
}

impl Error {
    /// The exit code: 130 when interrupted, 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Interrupted { .. } => 130,
            _ => 1,
        }
    }
}

/// The database `--db` names, or the manifest's only one.
pub(crate) fn select<'m>(
    manifest: &'m Manifest,
    key: Option<&str>,
) -> Result<(&'m str, &'m D1Database), Error> {
    let keys = || {
        manifest
            .d1_databases
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let environment = manifest.environment.clone();
    match key {
        Some(key) => manifest
            .d1_databases
            .get_key_value(key)
            .map(|(k, d)| (k.as_str(), d))
            .ok_or_else(|| Error::UnknownDatabase {
                environment,
                key: key.to_owned(),
                keys: keys(),
            }),
        None => match manifest.d1_databases.len() {
            0 => Err(Error::NoDatabase { environment }),
            1 => Ok(manifest
                .d1_databases
                .iter()
                .map(|(k, d)| (k.as_str(), d))
                .next()
                .expect("one database")),
            _ => Err(Error::ChooseDatabase {
                environment,
                keys: keys(),
            }),
        },
    }
}

/// `20261206T081500Z`: a time as it appears in backup names, sortable as text.
fn compact(at: Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// The file name of a backup of `database` taken `at`, at `bookmark`.
pub(crate) fn file_name(database: &str, at: Timestamp, bookmark: &str) -> String {
    format!("{database}-{}-{bookmark}.sql", compact(at))
}

/// The R2 object key of a backup of `database` taken `at`, at `bookmark`.
pub(crate) fn r2_key(r2: &R2Backup, database: &str, at: Timestamp, bookmark: &str) -> String {
    format!("{}{}_{bookmark}.sql", r2_prefix(r2, database), compact(at))
}

/// The prefix every backup of `database` in `r2` starts with.
pub(crate) fn r2_prefix(r2: &R2Backup, database: &str) -> String {
    r2.prefix
        .clone()
        .unwrap_or_else(|| format!("d1/{database}/"))
}

/// A time given on the command line (RFC 3339 or Unix seconds), checked against Time Travel's
/// window at `now` before anything is sent.
pub(crate) fn restore_point(value: &str, now: Timestamp) -> Result<Timestamp, Error> {
    let invalid = || Error::TimestampInvalid {
        value: value.to_owned(),
    };
    let at = match value.trim().parse::<i64>() {
        Ok(seconds) => Timestamp::from_second(seconds).map_err(|_| invalid())?,
        Err(_) => value.trim().parse::<Timestamp>().map_err(|_| invalid())?,
    };
    if at > now {
        return Err(Error::TimestampFuture { at, now });
    }
    let oldest = now
        .checked_sub(SignedDuration::from_hours(WINDOW_DAYS * 24))
        .unwrap_or(Timestamp::MIN);
    if at < oldest {
        return Err(Error::TimestampTooOld { at, oldest });
    }
    Ok(at)
}

/// The newest backup among `objects` and how old it is at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Newest {
    pub(crate) key: String,
    pub(crate) last_modified: Timestamp,
    pub(crate) age: SignedDuration,
}

/// The newest of `objects` (by `last_modified`; objects without a readable date are skipped).
pub(crate) fn newest(objects: &[R2Object], now: Timestamp) -> Option<Newest> {
    objects
        .iter()
        .filter_map(|o| {
            let at = o.last_modified.as_deref()?.parse::<Timestamp>().ok()?;
            Some((at, &o.key))
        })
        .max()
        .map(|(at, key)| Newest {
            key: key.clone(),
            last_modified: at,
            age: now.duration_since(at),
        })
}

/// A duration as hours and minutes: `27 h 05 min`.
pub(crate) fn hours(age: SignedDuration) -> String {
    let minutes = age.as_secs().max(0) / 60;
    format!("{} h {:02} min", minutes / 60, minutes % 60)
}

/// What a restore drill found, table by table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Comparison {
    /// Whether the schemas are equal, object for object.
    pub(crate) schema_equal: bool,
    /// How many schema objects the source has.
    pub(crate) schema_objects: usize,
    /// `CREATE` statements of the source missing from the copy, and of the copy not in the
    /// source.
    pub(crate) schema_missing: Vec<String>,
    pub(crate) schema_extra: Vec<String>,
    /// One line per table of either.
    pub(crate) tables: Vec<TableComparison>,
    /// Whether everything is equal.
    pub(crate) passed: bool,
}

/// One table in a drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TableComparison {
    pub(crate) table: String,
    /// Rows in the source at the export's bookmark, when it has the table.
    pub(crate) source_rows: Option<u64>,
    /// Rows in the restored copy, when it has the table.
    pub(crate) restored_rows: Option<u64>,
    /// Whether the rows' content digests are equal.
    pub(crate) content_equal: bool,
}

/// Compare the source's dump with the restored copy's.
pub(crate) fn compare(source: &Summary, restored: &Summary) -> Comparison {
    let a: BTreeSet<&String> = source.schema.iter().collect();
    let b: BTreeSet<&String> = restored.schema.iter().collect();
    let schema_missing: Vec<String> = a.difference(&b).map(|s| (*s).clone()).collect();
    let schema_extra: Vec<String> = b.difference(&a).map(|s| (*s).clone()).collect();
    let names: BTreeSet<&String> = source.tables.keys().chain(restored.tables.keys()).collect();
    let tables: Vec<TableComparison> = names
        .into_iter()
        .map(|name| {
            let (s, r) = (source.tables.get(name), restored.tables.get(name));
            TableComparison {
                table: name.clone(),
                source_rows: s.map(|t| t.rows),
                restored_rows: r.map(|t| t.rows),
                content_equal: s.zip(r).is_some_and(|(s, r)| s.digest == r.digest),
            }
        })
        .collect();
    let schema_equal = schema_missing.is_empty() && schema_extra.is_empty();
    let passed = schema_equal
        && tables
            .iter()
            .all(|t| t.content_equal && t.source_rows == t.restored_rows);
    Comparison {
        schema_equal,
        schema_objects: source.schema.len(),
        schema_missing,
        schema_extra,
        tables,
        passed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-06T08:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_restore_point_is_inside_the_window_and_not_in_the_future() {
        assert_eq!(
            restore_point("2026-12-06T07:00:00Z", now())
                .unwrap()
                .to_string(),
            "2026-12-06T07:00:00Z"
        );
        assert!(restore_point("1796544000", now()).is_ok());
        assert!(matches!(
            restore_point("2026-12-06T08:00:01Z", now()),
            Err(Error::TimestampFuture { .. })
        ));
        assert!(matches!(
            restore_point("2026-11-06T07:59:59Z", now()),
            Err(Error::TimestampTooOld { .. })
        ));
        assert!(matches!(
            restore_point("yesterday", now()),
            Err(Error::TimestampInvalid { .. })
        ));
    }

    #[test]
    fn names_carry_the_time_and_the_bookmark() {
        let at: Timestamp = "2026-12-06T08:15:00Z".parse().unwrap();
        assert_eq!(
            file_name("lms-db", at, "0000-ab"),
            "lms-db-20261206T081500Z-0000-ab.sql"
        );
        let r2 = R2Backup {
            bucket: "b".into(),
            prefix: None,
        };
        assert_eq!(
            r2_key(&r2, "lms-db", at, "bm"),
            "d1/lms-db/20261206T081500Z_bm.sql"
        );
    }

    #[test]
    fn the_newest_backup_is_the_latest_written() {
        let object = |key: &str, at: &str| R2Object {
            key: key.into(),
            size: Some(1),
            last_modified: Some(at.into()),
        };
        let objects = [
            object("a", "2026-12-05T05:00:00Z"),
            object("b", "2026-12-05T06:30:00Z"),
            object("c", "garbage"),
        ];
        let newest = newest(&objects, now()).unwrap();
        assert_eq!(newest.key, "b");
        assert_eq!(hours(newest.age), "25 h 30 min");
        assert!(super::newest(&[], now()).is_none());
    }
}
