//! D1 databases, backed by real SQLite files so `query` and `raw` run real SQL.
//!
//! Each database is `<state file>.d1/<uuid>.sqlite` next to the state file, or an in-memory
//! SQLite database when the sandbox keeps no state file. The list's `name` filter matches
//! names that *contain* the text, like a search box, so clients must not treat it as an exact
//! lookup. `GET` of one database, `query` and `raw` touch SQLite, so they return a [`Job`] that
//! the pipeline runs off the state lock, within the limits of [`d1_guard`](super::d1_guard).
//! As on Cloudflare, the list's `result_info` has no `total_pages` (clients page on
//! `total_count`), `per_page` must be at least 10 and is capped at 10000, and a database's
//! name is accepted in the path wherever its id is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value, json};

use super::d1_guard::{self, Failure, Guard, Job, Shared};
use super::d1_import;
use super::envelope::{ApiError, Reply};
use super::request::Call;
use super::state::{Database, now};
use super::time_travel;
use super::world::World;

const LOCATION_HINTS: [&str; 6] = ["wnam", "enam", "weur", "eeur", "apac", "oc"];
const JURISDICTIONS: [&str; 2] = ["eu", "fedramp"];
/// D1's limit on one SQL statement.
const MAX_SQL_BYTES: usize = 100_000;

/// The open SQLite connections, by database uuid.
#[derive(Debug)]
pub(crate) struct Files {
    dir: Option<PathBuf>,
    open: HashMap<String, Shared>,
}

impl Files {
    /// D1 files live in `dir`; `None` keeps them in memory.
    pub(crate) fn new(dir: Option<PathBuf>) -> Files {
        Files {
            dir,
            open: HashMap::new(),
        }
    }

    /// The folder for the D1 files of a state file.
    pub(crate) fn dir_for(state: &Path) -> PathBuf {
        let mut name = state.file_name().unwrap_or_default().to_os_string();
        name.push(".d1");
        state.with_file_name(name)
    }

    /// Where the D1 files live; `None` when they are in memory.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The connection to database `uuid`, opened (and created) on first use. Lock it only for
    /// as long as the work at hand: a query may hold it off the state lock.
    pub(crate) fn connection(&mut self, uuid: &str) -> Result<Shared, ApiError> {
        if !self.open.contains_key(uuid) {
            let conn = match &self.dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir).map_err(internal)?;
                    Connection::open_with_flags(
                        dir.join(format!("{uuid}.sqlite")),
                        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
                    )
                }
                None => Connection::open_in_memory(),
            }
            .map_err(internal)?;
            // D1 refuses ATTACH; here it would also let a client write files anywhere.
            conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)
                .map_err(internal)?;
            d1_guard::limit(&conn).map_err(internal)?;
            self.open
                .insert(uuid.to_owned(), std::sync::Arc::new(conn.into()));
        }
        Ok(self.open[uuid].clone())
    }

    fn remove(&mut self, uuid: &str) {
        self.open.remove(uuid);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(format!("{uuid}.sqlite")));
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("D1 file error: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        7500,
        "Internal error in the D1 storage layer",
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(7404, format!("The database {id} could not be found"))
}

fn summary(db: &Database) -> Value {
    json!({
        "uuid": db.uuid,
        "name": db.name,
        "created_at": db.created_at,
        "version": "production",
        "jurisdiction": db.jurisdiction,
    })
}

/// A D1 name: lowercase letters, digits, dashes and underscores, at most 64 characters.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The smallest and largest `per_page` D1's list takes.
const PER_PAGE: (usize, usize) = (10, 10000);

/// `GET /accounts/{a}/d1/database`: page 1, 1000 per page by default, from 10 to 10000 (more
/// is capped).
pub(crate) fn list(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let (min, max) = PER_PAGE;
    let mut page = call.page(1000, u32::MAX as usize)?;
    if page.per_page < min {
        return Err(ApiError::bad_request(
            7400,
            format!("The request is malformed: `per_page` must be at least {min}"),
        ));
    }
    page.per_page = page.per_page.min(max);
    let filter = call.query("name");
    let all: Vec<Value> = world
        .state
        .account
        .d1_databases
        .iter()
        .filter(|db| filter.is_none_or(|f| db.name.contains(f)))
        .map(summary)
        .collect();
    let mut reply = Reply::page(page.slice(&all), &page, all.len());
    if let Some(info) = reply.body["result_info"].as_object_mut() {
        info.remove("total_pages");
    }
    Ok(reply)
}

/// `POST /accounts/{a}/d1/database`.
pub(crate) fn create(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let body = call.json_object()?;
    let name = body.get("name").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request(
            7400,
            "The request is malformed: `name` (string) is required",
        )
    })?;
    if !valid_name(name) {
        return Err(ApiError::bad_request(
            7400,
            format!(
                "Invalid database name `{name}`: use 1 to 64 lowercase letters, digits, dashes or underscores"
            ),
        ));
    }
    let optional = |key: &str, allowed: &[&str]| -> Result<Option<String>, ApiError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::bad_request(
                7400,
                format!(
                    "Invalid `{key}` {other}: expected one of {}",
                    allowed.join(", ")
                ),
            )),
        }
    };
    let primary_location_hint = optional("primary_location_hint", &LOCATION_HINTS)?;
    let jurisdiction = optional("jurisdiction", &JURISDICTIONS)?;
    if world
        .state
        .account
        .d1_databases
        .iter()
        .any(|db| db.name == name)
    {
        return Err(ApiError::bad_request(
            7502,
            "A database with that name already exists",
        ));
    }
    let db = Database {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created_at: now(),
        primary_location_hint,
        jurisdiction,
    };
    world.d1.connection(&db.uuid)?;
    let reply = Reply::ok(summary(&db));
    let uuid = db.uuid.clone();
    world.state.account.d1_databases.push(db);
    world.save()?;
    time_travel::snapshot(world, &uuid)?;
    Ok(reply)
}

pub(crate) fn find<'a>(world: &'a World, id: &str) -> Result<&'a Database, ApiError> {
    world
        .state
        .account
        .d1_databases
        .iter()
        .find(|db| db.uuid == id)
        .or_else(|| {
            world
                .state
                .account
                .d1_databases
                .iter()
                .find(|db| db.name == id)
        })
        .ok_or_else(|| not_found(id))
}

/// `GET /accounts/{a}/d1/database/{id}`: the details, with live table count and file size.
pub(crate) fn get(call: &Call, world: &mut World) -> Result<Job, ApiError> {
    let db = find(world, call.param(1))?.clone();
    let conn = world.d1.connection(&db.uuid)?;
    Ok(Job::new(conn, move |conn, _| {
        let num_tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
                [],
                |row| row.get(0),
            )
            .map_err(internal)?;
        let mut details = summary(&db);
        details["num_tables"] = json!(num_tables);
        details["file_size"] = json!(file_size(conn)?);
        details["read_replication"] = json!({"mode": "disabled"});
        Ok(Reply::ok(details))
    }))
}

pub(crate) fn file_size(conn: &Connection) -> Result<i64, ApiError> {
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .map_err(internal)?;
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(internal)?;
    Ok(pages * size)
}

/// `DELETE /accounts/{a}/d1/database/{id}`: the database and its file are gone.
pub(crate) fn delete(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = find(world, call.param(1))?.uuid.clone();
    world.state.account.d1_databases.retain(|db| db.uuid != id);
    world.d1.remove(&id);
    world.lifecycle.histories.remove(&id, world.d1.dir());
    world.save()?;
    Ok(Reply::ok(Value::Null))
}

/// How `query` and `raw` shape each statement's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Objects,
    Arrays,
}

/// `POST …/query` and `POST …/raw`: run every statement in `sql`, in one transaction (or each on
/// its own under `d1_query_non_atomic`), off the state lock; a committed write takes a Time
/// Travel snapshot once the state lock is held again.
pub(crate) fn run(call: &Call, world: &mut World, shape: Shape) -> Result<Job, ApiError> {
    let db = find(world, call.param(1))?.clone();
    let body = call.json_object()?;
    let sql = body
        .get("sql")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request(7400, "The request is malformed: `sql` (string) is required")
        })?
        .to_owned();
    if sql.len() > MAX_SQL_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            7400,
            format!(
                "SQL is {} bytes; D1 allows at most {MAX_SQL_BYTES}",
                sql.len()
            ),
        ));
    }
    let params: Vec<rusqlite::types::Value> = match body.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(to_sql).collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::bad_request(7400, "`params` must be an array")),
    };
    if world
        .lifecycle
        .exports
        .blocking(&db.uuid, world.lifecycle.clock.now())
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            7409,
            "The database is busy: an export is running",
        ));
    }
    let atomic = !world.lifecycle.query_non_atomic;
    let conn = world.d1.connection(&db.uuid)?;
    let wrote = Arc::new(AtomicBool::new(false));
    let snapshot_due = wrote.clone();
    let uuid = db.uuid;
    let job = Job::new(conn, move |conn, guard| {
        let mut writes = false;
        let outcome = execute(conn, &sql, &params, shape, guard, atomic, &mut writes);
        wrote.store(writes && (outcome.is_ok() || !atomic), Ordering::SeqCst);
        let results = outcome.map_err(|e| guard.error(e))?;
        Ok(Reply::ok(Value::Array(results)))
    });
    Ok(job.then(move |world| {
        if snapshot_due.load(Ordering::SeqCst) {
            time_travel::snapshot(world, &uuid)?;
        }
        Ok(())
    }))
}

fn to_sql(value: &Value) -> Result<rusqlite::types::Value, ApiError> {
    use rusqlite::types::Value as V;
    Ok(match value {
        Value::Null => V::Null,
        Value::Bool(b) => V::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => V::Integer(i),
            None => V::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => V::Text(s.clone()),
        _ => {
            return Err(ApiError::bad_request(
                7400,
                "`params` items must be strings, numbers, booleans or null",
            ));
        }
    })
}

/// Run `sql`; `wrote` tells whether a statement that writes ran. Atomic: one transaction for
/// all statements; otherwise each commits on its own and a failure keeps the ones before it.
fn execute(
    conn: &Connection,
    sql: &str,
    params: &[rusqlite::types::Value],
    shape: Shape,
    guard: &Guard,
    atomic: bool,
    wrote: &mut bool,
) -> Result<Vec<Value>, Failure> {
    let transaction = atomic.then(|| conn.unchecked_transaction()).transpose()?;
    let tx: &Connection = transaction.as_deref().unwrap_or(conn);
    let armed = guard.arm();
    let mut out = Vec::new();
    let mut size = 0;
    let mut batch = rusqlite::Batch::new(tx, sql);
    while let Some(mut stmt) = batch.next()? {
        if d1_import::controls_transactions(&stmt.expanded_sql().unwrap_or_default()) {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_AUTH),
                Some(d1_import::NO_TRANSACTIONS.to_owned()),
            )
            .into());
        }
        *wrote |= !stmt.readonly();
        let started = Instant::now();
        let columns: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let wanted = stmt.parameter_count();
        if wanted != params.len() && (wanted > 0 || !params.is_empty()) {
            return Err(rusqlite::Error::InvalidParameterCount(params.len(), wanted).into());
        }
        let before = tx.total_changes();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut objects = Vec::new();
        let mut arrays = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let value = row.get_ref(i)?;
                size += encoded_size(value);
                Guard::check_size(size)?;
                values.push(to_json(value));
            }
            match shape {
                Shape::Objects => objects.push(Value::Object(
                    columns.iter().cloned().zip(values).collect::<Map<_, _>>(),
                )),
                Shape::Arrays => arrays.push(Value::Array(values)),
            }
        }
        drop(rows);
        let changes = tx.total_changes() - before;
        let rows_read = objects.len().max(arrays.len());
        let results = match shape {
            Shape::Objects => Value::Array(objects),
            Shape::Arrays => json!({"columns": columns, "rows": arrays}),
        };
        let duration = started.elapsed().as_secs_f64() * 1000.0;
        out.push(json!({
            "results": results,
            "success": true,
            "meta": {
                "served_by": "sandbox",
                "served_by_region": "WEUR",
                "served_by_primary": true,
                "timings": {"sql_duration_ms": duration},
                "duration": duration,
                "changes": changes,
                "last_row_id": tx.last_insert_rowid(),
                "changed_db": changes > 0,
                "size_after": 0,
                "rows_read": rows_read,
                "rows_written": changes,
            },
        }));
    }
    drop(armed);
    let size_after = file_size(tx).unwrap_or_default();
    if let Some(transaction) = transaction {
        transaction.commit()?;
    }
    for result in &mut out {
        result["meta"]["size_after"] = json!(size_after);
    }
    Ok(out)
}

/// The bytes a value adds to the answer, as D1's result limit counts them.
fn encoded_size(value: ValueRef<'_>) -> usize {
    match value {
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => 8,
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.len(),
    }
}

fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Array(b.iter().map(|byte| json!(byte)).collect()),
    }
}
