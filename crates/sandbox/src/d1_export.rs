//! `POST …/d1/database/{id}/export`: a real SQLite dump, handed out through D1's polling protocol.
//!
//! The first POST (`{"output_format": "polling", "dump_options": …}`) starts an export at the
//! database's current bookmark and answers 202 `active` with `at_bookmark`. The client re-POSTs
//! the same body with `current_bookmark: <at_bookmark>`; the first re-POST answers 202 again
//! (with a progress message), the second answers 200 `complete` with `result.result.{filename,
//! signed_url}`. The signed URL is `/__sandbox/blob/<id>` on the sandbox itself, needs no token,
//! and expires one hour (sandbox clock) after it was issued.
//!
//! Sandbox choices where D1's behaviour is unverified: an export not polled for 60 seconds
//! (sandbox clock) is cancelled, and the next poll answers 200 `error`; while an export is active,
//! `/query` and `/raw` on that database answer 409 with code 7409 (D1: "a running export will
//! block other database requests").
//!
//! The dump is SQLite SQL that `/import` (or `sqlite3`) replays into an empty database: `PRAGMA
//! defer_foreign_keys=TRUE;`, each table's `CREATE` and its rows as `INSERT INTO "t" VALUES(…);`
//! in creation order, then indexes, triggers and views. `dump_options.tables` limits it to those
//! tables (and their indexes and triggers), `no_schema` leaves out the `CREATE`s and `no_data` the
//! rows; asking for both, or for a table that does not exist, is refused. It never contains `BEGIN`/`COMMIT`, which D1 refuses. Tables
//! D1 hides (`sqlite_*`, `_cf_*`) are left out.

use std::collections::HashMap;
use std::fmt::Write;

use axum::body::Bytes;
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value, json};

use super::d1;
use super::envelope::{ApiError, Reply};
use super::lifecycle::Blob;
use super::request::Call;
use super::state::new_tag;
use super::time_travel;
use super::world::World;

/// Unpolled this long, an export is cancelled.
const LAPSE: SignedDuration = SignedDuration::from_secs(60);
/// How long a signed download URL works.
const URL_LIFETIME: SignedDuration = SignedDuration::from_hours(1);
/// Re-POSTs answered `active` before the export completes.
const ACTIVE_POLLS: u32 = 1;

/// The running export of each database.
#[derive(Debug, Default)]
pub(crate) struct Exports {
    jobs: HashMap<String, Job>,
}

#[derive(Debug)]
struct Job {
    at_bookmark: String,
    dump: String,
    last_polled: Timestamp,
    polls: u32,
}

impl Exports {
    /// Whether an export that has not lapsed holds database `uuid` at `now`.
    pub(crate) fn blocking(&self, uuid: &str, now: Timestamp) -> bool {
        self.jobs.get(uuid).is_some_and(|job| !lapsed(job, now))
    }
}

fn lapsed(job: &Job, now: Timestamp) -> bool {
    job.last_polled
        .checked_add(LAPSE)
        .is_ok_and(|deadline| now > deadline)
}

/// What `dump_options` asks for.
#[derive(Debug, Default)]
pub(crate) struct DumpOptions {
    pub(crate) tables: Vec<String>,
    pub(crate) no_schema: bool,
    pub(crate) no_data: bool,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(7400, message)
}

fn dump_options(body: &Map<String, Value>) -> Result<DumpOptions, ApiError> {
    let Some(options) = body.get("dump_options") else {
        return Ok(DumpOptions::default());
    };
    let options = options
        .as_object()
        .ok_or_else(|| bad("`dump_options` must be an object"))?;
    let flag = |key: &str| match options.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("`dump_options.{key}` must be a boolean"))),
    };
    let tables = match options.get("tables") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("`dump_options.tables` must be an array of strings"))?,
        Some(_) => return Err(bad("`dump_options.tables` must be an array of strings")),
    };
    let parsed = DumpOptions {
        tables,
        no_schema: flag("no_schema")?,
        no_data: flag("no_data")?,
    };
    if parsed.no_schema && parsed.no_data {
        return Err(bad(
            "`dump_options.no_schema` and `dump_options.no_data` cannot both be true",
        ));
    }
    Ok(parsed)
}

fn answer(status: StatusCode, result: Value) -> Reply {
    let mut reply = Reply::ok(result);
    reply.status = status;
    reply
}

fn failed(error: String) -> Reply {
    answer(
        StatusCode::OK,
        json!({"success": false, "type": "export", "status": "error", "error": error, "messages": []}),
    )
}

/// `POST …/export`: start, poll or collect an export.
pub(crate) fn export(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let uuid = d1::find(world, call.param(1))?.uuid.clone();
    let body = call.json_object()?;
    if body.get("output_format").and_then(Value::as_str) != Some("polling") {
        return Err(bad("`output_format` must be \"polling\""));
    }
    let options = dump_options(&body)?;
    let polled = match body.get("current_bookmark") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => Some(b.clone()),
        Some(_) => return Err(bad("`current_bookmark` must be a string")),
    };
    let now = world.lifecycle.clock.now();
    let exports = &mut world.lifecycle.exports.jobs;
    if let Some(job) = exports.get(&uuid)
        && lapsed(job, now)
    {
        let at = job.at_bookmark.clone();
        exports.remove(&uuid);
        if polled.as_deref() == Some(at.as_str()) {
            return Ok(failed(format!(
                "Export cancelled: it was not polled for {} seconds",
                LAPSE.as_secs()
            )));
        }
    }
    match (polled, exports.get_mut(&uuid)) {
        (None, Some(job)) => {
            job.last_polled = now;
            Ok(active(
                &job.at_bookmark,
                "An export of this database is already running",
            ))
        }
        (Some(bookmark), Some(job)) if bookmark == job.at_bookmark => {
            job.last_polled = now;
            job.polls += 1;
            if job.polls <= ACTIVE_POLLS {
                return Ok(active(&bookmark, &format!("Uploaded part {}", job.polls)));
            }
            let Some(job) = exports.remove(&uuid) else {
                return Ok(failed("Export vanished".to_owned()));
            };
            let id = new_tag();
            let expires = now.checked_add(URL_LIFETIME).ok();
            world.lifecycle.blobs.insert(
                id.clone(),
                Blob {
                    bytes: Bytes::from(job.dump),
                    expires,
                },
            );
            Ok(answer(
                StatusCode::OK,
                json!({
                    "success": true,
                    "type": "export",
                    "status": "complete",
                    "at_bookmark": job.at_bookmark,
                    "messages": ["Export complete"],
                    "result": {
                        "filename": format!("{uuid}-{}.sql", job.at_bookmark),
                        "signed_url": format!("{}/__sandbox/blob/{id}", world.lifecycle.origin),
                    },
                }),
            ))
        }
        (Some(bookmark), _) => Ok(failed(format!(
            "No export of this database is running at bookmark {bookmark}"
        ))),
        (None, None) => {
            let at_bookmark = time_travel::current(world, &uuid)?;
            let shared = world.d1.connection(&uuid)?;
            let conn = &*shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for table in &options.tables {
                let exists: bool = conn
                    .query_row(
                        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                        [table],
                        |row| row.get(0),
                    )
                    .map_err(|e| bad(format!("Export failed: {e}")))?;
                if !exists {
                    return Err(bad(format!(
                        "`dump_options.tables` names `{table}`, which is not a table of this database"
                    )));
                }
            }
            let dump = dump(conn, &options).map_err(|e| bad(format!("Export failed: {e}")))?;
            world.lifecycle.exports.jobs.insert(
                uuid,
                Job {
                    at_bookmark: at_bookmark.clone(),
                    dump,
                    last_polled: now,
                    polls: 0,
                },
            );
            Ok(active(&at_bookmark, "Generating SQL dump"))
        }
    }
}

fn active(at_bookmark: &str, message: &str) -> Reply {
    answer(
        StatusCode::ACCEPTED,
        json!({
            "success": true,
            "type": "export",
            "status": "active",
            "at_bookmark": at_bookmark,
            "messages": [message],
        }),
    )
}

fn quote_name(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(out: &mut String, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.push_str("NULL"),
        ValueRef::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        ValueRef::Real(f) if f.is_infinite() => {
            out.push_str(if f > 0.0 { "1e999" } else { "-1e999" });
        }
        ValueRef::Real(f) => {
            let _ = write!(out, "{f:?}");
        }
        ValueRef::Text(t) => {
            out.push('\'');
            out.push_str(&String::from_utf8_lossy(t).replace('\'', "''"));
            out.push('\'');
        }
        ValueRef::Blob(b) => {
            let _ = write!(out, "X'{}'", hex::encode(b));
        }
    }
}

/// The dump of `conn` as SQL text.
pub(crate) fn dump(conn: &Connection, options: &DumpOptions) -> rusqlite::Result<String> {
    let hidden = |name: &str| name.starts_with("sqlite_") || name.starts_with("_cf_");
    let wanted =
        |table: &str| options.tables.is_empty() || options.tables.iter().any(|t| t == table);
    let mut objects = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid",
    )?;
    let objects: Vec<(String, String, String, String)> = objects
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = String::from("PRAGMA defer_foreign_keys=TRUE;\n");
    for (_, name, _, sql) in objects.iter().filter(|o| o.0 == "table") {
        if hidden(name) || !wanted(name) {
            continue;
        }
        if !options.no_schema {
            out.push_str(sql);
            out.push_str(";\n");
        }
        if options.no_data || sql.to_ascii_uppercase().starts_with("CREATE VIRTUAL") {
            continue;
        }
        let quoted = quote_name(name);
        let mut rows = conn.prepare(&format!("SELECT * FROM {quoted}"))?;
        let columns = rows.column_count();
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let _ = write!(out, "INSERT INTO {quoted} VALUES(");
            for i in 0..columns {
                if i > 0 {
                    out.push(',');
                }
                literal(&mut out, row.get_ref(i)?);
            }
            out.push_str(");\n");
        }
    }
    if !options.no_schema {
        for (kind, name, table, sql) in objects.iter().filter(|o| o.0 != "table") {
            let belongs = if kind == "view" {
                options.tables.is_empty()
            } else {
                wanted(table)
            };
            if belongs && !hidden(name) && !hidden(table) {
                out.push_str(sql);
                out.push_str(";\n");
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_replays_into_an_equal_database() {
        let source = Connection::open_in_memory().unwrap();
        source
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, raw BLOB);
                 CREATE INDEX t_name ON t (name);
                 INSERT INTO t VALUES (1, 'it''s', 1.0, X'00ff'), (2, NULL, 0.1, NULL);",
            )
            .unwrap();
        let text = dump(&source, &DumpOptions::default()).unwrap();
        assert!(!text.contains("BEGIN") && !text.contains("COMMIT"));
        let copy = Connection::open_in_memory().unwrap();
        copy.execute_batch(&text).unwrap();
        let rows = |c: &Connection| -> Vec<String> {
            c.prepare("SELECT quote(id)||quote(name)||quote(score)||quote(raw) FROM t ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(rows(&source), rows(&copy));
        assert_eq!(dump(&copy, &DumpOptions::default()).unwrap(), text);
    }
}
