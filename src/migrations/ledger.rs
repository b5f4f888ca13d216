//! The SQL lmsinfra sends for migrations, and the ledgers it reads back.
//!
//! Every write is one SQL file: the ledger tables' CREATEs (wrangler's statement, byte for
//! byte), the migration (or down file), then the ledger rows. Through `/import` the whole file
//! is one transaction, so a migration and its rows land together or not at all, and a second
//! runner applying the same migration fails inside its own import (on the migration's objects
//! or on the ledger's unique `name`) and leaves nothing.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::FACTS_TABLE;
use super::files::Migration;
use crate::cloudflare::{self, Client, StatementResult};

/// A row of wrangler's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The row's id, increasing in the order migrations were applied.
    pub id: i64,
    /// The migration's file name.
    pub name: String,
    /// When it was applied, as SQLite's `CURRENT_TIMESTAMP` wrote it.
    pub applied_at: String,
}

/// A row of lmsinfra's own table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The migration's file name.
    pub name: String,
    /// The file's SHA-256 when it ran.
    pub sha256: String,
    /// The database's Time Travel bookmark before the run that applied it.
    pub bookmark_before: Option<String>,
    /// Who applied it.
    pub applied_by: Option<String>,
    /// `applied`, or `started` for a `query`-transport run that has not finished.
    pub state: String,
}

/// A database's ledgers as read; empty when the tables do not exist yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// wrangler's ledger, by id.
    pub applied: Vec<Applied>,
    /// lmsinfra's rows, by name.
    pub facts: Vec<Facts>,
}

impl Ledger {
    /// Whether wrangler's ledger has a row for `name`.
    pub fn has(&self, name: &str) -> bool {
        self.applied.iter().any(|a| a.name == name)
    }

    /// lmsinfra's row for `name`.
    pub fn facts(&self, name: &str) -> Option<&Facts> {
        self.facts.iter().find(|f| f.name == name)
    }
}

/// Read both ledgers of the database `uuid`: one `/query` when both tables exist (or neither, as
/// D1 answers "no such table"); when only one does, a look at `sqlite_schema` says which to read.
pub async fn read(client: &Client, uuid: &str, table: &str) -> Result<Ledger, cloudflare::Error> {
    match client.read_d1(uuid, &read_both(table)).await {
        Ok(results) => parse(&results, true, true),
        Err(err) if no_such_table(&err) => {
            let present = client.read_d1(uuid, &which_tables(table)).await?;
            let names: Vec<&str> = present
                .iter()
                .flat_map(|r| &r.results)
                .filter_map(|row| row.get("name")?.as_str())
                .collect();
            let (ledger, facts) = (names.contains(&table), names.contains(&FACTS_TABLE));
            let sql = match (ledger, facts) {
                (false, false) => return Ok(Ledger::default()),
                (true, true) => read_both(table),
                (true, false) => format!("SELECT id, name, applied_at FROM {table} ORDER BY id;"),
                (false, true) => format!(
                    "SELECT name, sha256, bookmark_before, applied_by, state FROM {FACTS_TABLE} ORDER BY name;"
                ),
            };
            let results = client.read_d1(uuid, &sql).await?;
            parse(&results, ledger, facts)
        }
        Err(err) => Err(err),
    }
}

fn no_such_table(err: &cloudflare::Error) -> bool {
    matches!(err, cloudflare::Error::Api { errors, .. }
        if errors.iter().any(|e| e.message.contains("no such table")))
}

fn parse(
    results: &[StatementResult],
    ledger: bool,
    facts: bool,
) -> Result<Ledger, cloudflare::Error> {
    let mut results = results.iter();
    let mut next = |wanted: bool| {
        if wanted {
            results.next().map_or(&[][..], |r| r.results.as_slice())
        } else {
            &[]
        }
    };
    let applied = rows(next(ledger))?;
    let facts = rows(next(facts))?;
    Ok(Ledger { applied, facts })
}

fn rows<T: DeserializeOwned>(
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<Vec<T>, cloudflare::Error> {
    rows.iter()
        .map(|row| {
            serde_json::from_value(serde_json::Value::Object(row.clone())).map_err(|e| {
                cloudflare::Error::Decode {
                    method: reqwest::Method::POST,
                    path: "…/query (migrations ledger)".to_owned(),
                    detail: e.to_string(),
                }
            })
        })
        .collect()
}

/// The state of a facts row while a `query`-transport run is under way.
pub const STARTED: &str = "started";
/// The state of a facts row once its migration is applied.
pub const APPLIED: &str = "applied";

/// wrangler's CREATE of its ledger, byte for byte (`initMigrationsTable`).
pub fn create_ledger(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table}(\n\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\t\tname       TEXT UNIQUE,\n\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);"
    )
}

/// The CREATE of lmsinfra's own table.
pub fn create_facts() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {FACTS_TABLE}(\n  name            TEXT PRIMARY KEY,\n  sha256          TEXT NOT NULL,\n  bookmark_before TEXT,\n  applied_by      TEXT,\n  applied_at      TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL,\n  state           TEXT NOT NULL DEFAULT '{APPLIED}'\n);"
    )
}

/// The two SELECTs that read both ledgers, in one `/query`.
pub fn read_both(table: &str) -> String {
    format!(
        "SELECT id, name, applied_at FROM {table} ORDER BY id;\nSELECT name, sha256, bookmark_before, applied_by, state FROM {FACTS_TABLE} ORDER BY name;"
    )
}

/// Which of the two ledger tables exist: `SELECT name FROM sqlite_schema …`.
pub fn which_tables(table: &str) -> String {
    format!(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ({}, {});",
        quote(table),
        quote(FACTS_TABLE)
    )
}

/// A SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` followed by a line break, and by a `;` when its last statement does not end with one.
fn terminated(text: &str) -> String {
    let trimmed = text.trim_end();
    if trimmed.is_empty() || trimmed.ends_with(';') {
        format!("{trimmed}\n")
    } else {
        format!("{trimmed}\n;\n")
    }
}

/// Who is applying: `lmsinfra 0.1.0 (USER)`.
pub fn applied_by() -> String {
    let user = ["GITHUB_ACTOR", "USER", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    format!("lmsinfra {} ({user})", env!("CARGO_PKG_VERSION"))
}

/// The ledger tables' CREATEs.
pub fn create_both(table: &str) -> String {
    format!("{}\n{}\n", create_ledger(table), create_facts())
}

/// The one import that applies `migration`: the tables, the migration, wrangler's row and
/// lmsinfra's row.
pub fn apply_file(table: &str, migration: &Migration, text: &str, bookmark: &str) -> String {
    format!(
        "{}{}{}\n{}\n",
        create_both(table),
        terminated(text),
        ledger_row(table, &migration.name),
        facts_row(migration, bookmark, APPLIED),
    )
}

/// wrangler's ledger row for `name`.
pub fn ledger_row(table: &str, name: &str) -> String {
    format!("INSERT INTO {table} (name) VALUES ({});", quote(name))
}

/// lmsinfra's row for `migration`, in `state`. A plain INSERT: a second runner's import fails
/// on it as on wrangler's unique name.
pub fn facts_row(migration: &Migration, bookmark: &str, state: &str) -> String {
    format!(
        "INSERT INTO {FACTS_TABLE} (name, sha256, bookmark_before, applied_by, state) VALUES ({}, {}, {}, {}, {});",
        quote(&migration.name),
        quote(&migration.sha256),
        quote(bookmark),
        quote(&applied_by()),
        quote(state),
    )
}

/// The `query` transport's first request: the tables, and lmsinfra's row marked started (kept as
/// it is when another run has one).
pub fn query_start(table: &str, migration: &Migration, bookmark: &str) -> String {
    format!(
        "{}{}\n",
        create_both(table),
        facts_row(migration, bookmark, STARTED).replacen("INSERT INTO", "INSERT OR IGNORE INTO", 1),
    )
}

/// The `query` transport's second request: the migration, wrangler's row, and lmsinfra's row
/// marked applied (the first request recorded it as started).
pub fn query_file(table: &str, migration: &Migration, text: &str) -> String {
    format!(
        "{}{}\nUPDATE {FACTS_TABLE} SET state = {} WHERE name = {};\n",
        terminated(text),
        ledger_row(table, &migration.name),
        quote(APPLIED),
        quote(&migration.name),
    )
}

/// The one import that undoes `name` with its down file and removes both ledgers' rows.
pub fn down_file(table: &str, name: &str, down: &str) -> String {
    format!(
        "{}DELETE FROM {table} WHERE name = {};\nDELETE FROM {FACTS_TABLE} WHERE name = {};\n",
        terminated(down),
        quote(name),
        quote(name),
    )
}

/// The import that records `migration` as applied without running it (a baseline).
pub fn baseline_file(table: &str, migration: &Migration, bookmark: &str) -> String {
    format!(
        "{}{}\n{}\n",
        create_both(table),
        ledger_row(table, &migration.name),
        facts_row(migration, bookmark, APPLIED),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_is_created_with_wranglers_statement() {
        assert_eq!(
            create_ledger("d1_migrations"),
            "CREATE TABLE IF NOT EXISTS d1_migrations(\n\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\t\tname       TEXT UNIQUE,\n\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);"
        );
    }

    #[test]
    fn a_migration_without_a_final_semicolon_still_ends_before_its_ledger_row() {
        assert_eq!(
            terminated("CREATE TABLE a (x)\n\n"),
            "CREATE TABLE a (x)\n;\n"
        );
        assert_eq!(terminated("CREATE TABLE a (x);\n"), "CREATE TABLE a (x);\n");
        assert_eq!(quote("it's"), "'it''s'");
    }
}
