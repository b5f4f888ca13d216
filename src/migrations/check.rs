//! Offline checks of migration files, and schemas compared object by object.
//!
//! `validate` refuses what D1 would refuse or what would break a run half way, before anything
//! is sent: a file that is not UTF-8 or holds no statement, a transaction statement (D1 refuses
//! `BEGIN`, `COMMIT`, `SAVEPOINT` and their kin), a statement over D1's 100 KB, two files with
//! one number; then it runs every file in order in an in-memory SQLite and reports the file, the
//! line and SQLite's message for the first statement that fails.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::Connection;
use rusqlite::fallible_iterator::FallibleIterator;
use serde::Serialize;

use super::FACTS_TABLE;
use super::files::MigrationSet;
use crate::cloudflare::StatementResult;

/// D1's limit on one statement.
pub const STATEMENT_LIMIT: usize = 100_000;

/// Something wrong with a migration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, miette::Diagnostic)]
#[error("{}:{line}: {message}", file.display())]
#[diagnostic(code(migrations::invalid))]
pub struct Finding {
    /// The file.
    pub file: PathBuf,
    /// The line the problem starts on, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The first keyword of a statement, past whitespace and comments, upper-cased.
fn first_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase()
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where the next statement starts at or after `offset`: past whitespace and comments.
fn next_statement(text: &str, offset: usize) -> usize {
    let mut at = offset.min(text.len());
    loop {
        let rest = &text[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            at += trimmed.find('\n').map_or(trimmed.len(), |n| n + 1);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            at += after.find("*/").map_or(trimmed.len(), |n| n + 4);
        } else {
            return at;
        }
    }
}

/// Check every file of `set`, then dry-run them in order; findings in file order.
pub fn check_set(set: &MigrationSet) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut numbers: BTreeMap<u64, &str> = BTreeMap::new();
    for migration in &set.migrations {
        let file = set.directory.join(&migration.name);
        if let Some(number) = migration.number
            && let Some(first) = numbers.insert(number, &migration.name)
        {
            findings.push(Finding {
                file: file.clone(),
                line: 1,
                message: format!(
                    "number {number} is also {first}'s: each migration needs its own number"
                ),
            });
        }
    }
    let conn = match Connection::open_in_memory() {
        Ok(conn) => conn,
        Err(err) => {
            findings.push(Finding {
                file: set.directory.clone(),
                line: 1,
                message: format!("no in-memory SQLite for the dry run: {err}"),
            });
            return findings;
        }
    };
    let mut dry_run = true;
    let ups = set
        .migrations
        .iter()
        .map(|m| (set.directory.join(&m.name), &m.bytes));
    for (file, bytes) in ups {
        let Ok(text) = std::str::from_utf8(bytes) else {
            let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), |_| 0);
            findings.push(Finding {
                line: bytes[..valid].iter().filter(|b| **b == b'\n').count() + 1,
                file,
                message: "not UTF-8 text: D1 reads migrations as UTF-8".to_owned(),
            });
            dry_run = false;
            continue;
        };
        if next_statement(text, 0) == text.len() {
            findings.push(Finding {
                file,
                line: 1,
                message: "holds no SQL statement".to_owned(),
            });
            continue;
        }
        if let Err(finding) = run_file(&conn, &file, text, dry_run) {
            dry_run &= !finding.1;
            findings.push(finding.0);
        }
    }
    for down in set.downs.values() {
        if std::str::from_utf8(&down.bytes).is_err() {
            findings.push(Finding {
                file: down.path.clone(),
                line: 1,
                message: "not UTF-8 text: D1 reads SQL as UTF-8".to_owned(),
            });
        }
    }
    findings
}

/// Statement by statement: the static checks, and when `execute`, the dry run. The error says
/// whether it was the dry run that failed (so later files are not run against a broken state).
fn run_file(
    conn: &Connection,
    file: &std::path::Path,
    text: &str,
    execute: bool,
) -> Result<(), (Finding, bool)> {
    let finding = |offset: usize, message: String| Finding {
        file: file.to_owned(),
        line: line_at(text, offset),
        message,
    };
    let mut offset = 0;
    let mut batch = rusqlite::Batch::new(conn, text);
    loop {
        let start = next_statement(text, offset);
        let statement = match batch.next() {
            Ok(Some(statement)) => statement,
            Ok(None) => return Ok(()),
            Err(err) => return Err((finding(start, format!("SQLite: {err}")), true)),
        };
        let sql = statement.expanded_sql().unwrap_or_default();
        let at = text[start..]
            .find(sql.as_str())
            .map_or(start, |n| start + n);
        offset = at + sql.len();
        if sql.len() > STATEMENT_LIMIT {
            return Err((
                finding(
                    at,
                    format!(
                        "a statement of {} bytes; D1 allows at most {STATEMENT_LIMIT}",
                        sql.len()
                    ),
                ),
                false,
            ));
        }
        let keyword = first_keyword(&sql);
        if matches!(
            keyword.as_str(),
            "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE"
        ) {
            return Err((
                finding(
                    at,
                    format!(
                        "`{keyword}`: D1 refuses transaction statements; each migration already runs as one import"
                    ),
                ),
                false,
            ));
        }
        if execute {
            let mut statement = statement;
            let mut rows = statement.raw_query();
            loop {
                match rows.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(err) => return Err((finding(at, format!("SQLite: {err}")), true)),
                }
            }
        }
    }
}

/// One schema object: its type, name and SQL with whitespace runs collapsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Object {
    /// `table`, `index`, `view` or `trigger`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its CREATE statement, whitespace collapsed.
    pub sql: String,
}

/// The schema objects a database holds, without SQLite's and D1's own.
pub const LIVE_SCHEMA: &str = "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND sql IS NOT NULL ORDER BY type, name;";

fn object(kind: &str, name: &str, sql: &str) -> Object {
    Object {
        kind: kind.to_owned(),
        name: name.to_owned(),
        sql: sql.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The schema `sql` makes in an empty SQLite database.
pub fn schema_of(sql: &str) -> Result<Vec<Object>, String> {
    let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    conn.execute_batch(sql).map_err(|e| e.to_string())?;
    let mut statement = conn.prepare(LIVE_SCHEMA).map_err(|e| e.to_string())?;
    let rows = statement
        .query_map([], |row| {
            Ok(object(
                &row.get::<_, String>(0)?,
                &row.get::<_, String>(1)?,
                &row.get::<_, String>(2)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The live schema from an answer to [`LIVE_SCHEMA`], without the ledger tables.
pub fn live_schema(results: &[StatementResult], table: &str) -> Vec<Object> {
    let text = |row: &serde_json::Map<String, serde_json::Value>, key: &str| {
        row.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    results
        .iter()
        .flat_map(|r| &r.results)
        .map(|row| object(&text(row, "type"), &text(row, "name"), &text(row, "sql")))
        .filter(|o| o.name != table && o.name != FACTS_TABLE)
        .collect()
}

/// How `live` differs from `wanted`, one line per object.
pub fn compare(wanted: &[Object], live: &[Object]) -> Vec<String> {
    let mut out = Vec::new();
    for w in wanted {
        match live.iter().find(|l| l.kind == w.kind && l.name == w.name) {
            None => out.push(format!(
                "  - {} {}: in the file, not in the database",
                w.kind, w.name
            )),
            Some(l) if l.sql != w.sql => out.push(format!(
                "  ~ {} {}: the database has `{}`, the file `{}`",
                w.kind, w.name, l.sql, w.sql
            )),
            Some(_) => {}
        }
    }
    for l in live {
        if !wanted.iter().any(|w| w.kind == l.kind && w.name == l.name) {
            out.push(format!(
                "  + {} {}: in the database, not in the file",
                l.kind, l.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::files::Migration;

    fn set(files: &[(&str, &[u8])]) -> MigrationSet {
        MigrationSet {
            directory: PathBuf::from("migrations"),
            migrations: files
                .iter()
                .map(|(name, bytes)| Migration {
                    name: (*name).to_owned(),
                    number: crate::migrations::files::number_of(name),
                    bytes: bytes.to_vec(),
                    sha256: String::new(),
                })
                .collect(),
            downs: BTreeMap::new(),
        }
    }

    fn messages(findings: &[Finding]) -> Vec<String> {
        findings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn files_run_in_order_and_the_first_failure_names_file_and_line() {
        let found = check_set(&set(&[
            ("0001_a.sql", b"CREATE TABLE a (x);\n"),
            (
                "0002_b.sql",
                b"-- adds b\nCREATE TABLE b (y);\n\nINSERT INTO nowhere VALUES (1);\n",
            ),
        ]));
        assert_eq!(
            messages(&found),
            ["migrations/0002_b.sql:4: SQLite: no such table: nowhere"]
        );
    }

    #[test]
    fn transactions_empty_files_duplicates_and_bad_bytes_are_refused() {
        let found = check_set(&set(&[
            (
                "0001_a.sql",
                b"CREATE TABLE a (x);\nBEGIN TRANSACTION;\nCOMMIT;\n",
            ),
            ("0002_b.sql", b"-- nothing\n"),
            ("0002_c.sql", b"CREATE TABLE c (\xff);"),
        ]));
        assert_eq!(
            messages(&found),
            [
                "migrations/0002_c.sql:1: number 2 is also 0002_b.sql's: each migration needs its own number",
                "migrations/0001_a.sql:2: `BEGIN`: D1 refuses transaction statements; each migration already runs as one import",
                "migrations/0002_b.sql:1: holds no SQL statement",
                "migrations/0002_c.sql:1: not UTF-8 text: D1 reads migrations as UTF-8",
            ]
        );
    }

    #[test]
    fn schemas_compare_object_by_object() {
        let wanted = schema_of("CREATE TABLE a (x);\nCREATE INDEX ax ON a (x);").unwrap();
        let live = schema_of("CREATE TABLE a (x, y);  CREATE TABLE b (z);").unwrap();
        assert_eq!(
            compare(&wanted, &live),
            [
                "  - index ax: in the file, not in the database",
                "  ~ table a: the database has `CREATE TABLE a (x, y)`, the file `CREATE TABLE a (x)`",
                "  + table b: in the database, not in the file",
            ]
        );
    }
}
