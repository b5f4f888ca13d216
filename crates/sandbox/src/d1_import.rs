//! `POST …/d1/database/{id}/import`: D1's four-step import, run in one transaction.
//!
//! 1. `{"action": "init", "etag": "<md5 of the file>"}` answers `{upload_url, filename}`; the
//!    filename is derived from the database id and the etag. When a file with that etag was
//!    uploaded before, init ingests it at once and answers as `ingest` does, without
//!    `upload_url` (wrangler then polls straight away).
//! 2. `PUT <upload_url>` (`/__sandbox/blob/upload/<filename>`, no token) stores the bytes and
//!    answers `ETag: "<md5>"`.
//! 3. `{"action": "ingest", "etag", "filename"}` checks both against the upload and runs the file,
//!    answering 202 `active` with `at_bookmark`, the bookmark before the import.
//! 4. `{"action": "poll", "current_bookmark": <at_bookmark>}` answers 200 `complete` with
//!    `result.{final_bookmark, num_queries, meta}`, or `error` with the statement's error. A poll
//!    with nothing to report answers `{success: false, error: "Not currently importing
//!    anything."}`.
//!
//! The whole file runs in ONE transaction and is rolled back on any error, so a failed import
//! leaves the database as it was. `BEGIN`, `COMMIT`, `END`, `ROLLBACK`, `SAVEPOINT` and `RELEASE`
//! are refused with D1's message, and a statement over 100 KB is refused ("Statement too long").
//! With `SandboxConfig::corrupt_imports` the import silently skips every other `INSERT` and still
//! reports success: a restore drill must notice.

use std::collections::HashMap;

use axum::http::StatusCode;
use rusqlite::Connection;
use serde_json::{Value, json};

use super::d1;
use super::envelope::{ApiError, Reply};
use super::request::Call;
use super::time_travel;
use super::world::World;

/// D1's limit on one statement.
const MAX_STATEMENT_BYTES: usize = 100_000;

/// D1's answer to a transaction statement (workerd's text).
pub(crate) const NO_TRANSACTIONS: &str = "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements";

/// The finished import of each database, waiting for its poll.
#[derive(Debug, Default)]
pub(crate) struct Imports {
    finished: HashMap<String, Finished>,
}

#[derive(Debug)]
struct Finished {
    at_bookmark: String,
    result: Value,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(7400, message)
}

fn string<'a>(body: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    body.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{key}` (string) is required")))
}

fn filename(uuid: &str, etag: &str) -> String {
    format!("{uuid}-{etag}.sql")
}

fn answer(status: StatusCode, result: Value) -> Reply {
    let mut reply = Reply::ok(result);
    reply.status = status;
    reply
}

/// `POST …/import`.
pub(crate) fn import(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let uuid = d1::find(world, call.param(1))?.uuid.clone();
    let body = call.json_object()?;
    match string(&body, "action")? {
        "init" => {
            let etag = string(&body, "etag")?;
            if etag.len() != 32 || !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("`etag` must be the file's MD5 as 32 hex digits"));
            }
            let filename = filename(&uuid, &etag.to_ascii_lowercase());
            if uploaded(world, &filename, etag) {
                return ingest(world, &uuid, &filename);
            }
            let upload_url = format!(
                "{}/__sandbox/blob/upload/{filename}",
                world.lifecycle.origin
            );
            Ok(Reply::ok(json!({
                "success": true,
                "type": "import",
                "filename": filename,
                "upload_url": upload_url,
            })))
        }
        "ingest" => {
            let etag = string(&body, "etag")?.to_ascii_lowercase();
            let name = string(&body, "filename")?;
            if name != filename(&uuid, &etag) {
                return Err(bad(format!(
                    "`filename` {name} does not belong to etag {etag} of this database"
                )));
            }
            if !uploaded(world, name, &etag) {
                return Err(bad(format!(
                    "No upload of {name} with MD5 {etag}: PUT the file to the upload URL first"
                )));
            }
            ingest(world, &uuid, name)
        }
        "poll" => {
            let bookmark = string(&body, "current_bookmark")?;
            let imports = &mut world.lifecycle.imports.finished;
            match imports.get(&uuid) {
                Some(done) if done.at_bookmark == bookmark => {
                    let done = imports.remove(&uuid).map(|d| d.result);
                    Ok(Reply::ok(done.unwrap_or(Value::Null)))
                }
                _ => Ok(Reply::ok(json!({
                    "success": false,
                    "type": "import",
                    "error": "Not currently importing anything.",
                }))),
            }
        }
        other => Err(bad(format!(
            "Unknown `action` {other}: expected init, ingest or poll"
        ))),
    }
}

/// Run the uploaded file `name` in one transaction; the answer is the first poll's (202 active).
fn ingest(world: &mut World, uuid: &str, name: &str) -> Result<Reply, ApiError> {
    let bytes = world
        .lifecycle
        .blobs
        .get(&format!("upload/{name}"))
        .map(|blob| blob.bytes.clone())
        .ok_or_else(|| bad(format!("No upload of {name}")))?;
    let at_bookmark = time_travel::current(world, uuid)?;
    let sql =
        String::from_utf8(bytes.to_vec()).map_err(|_| bad("The uploaded file is not UTF-8 text"));
    let corrupt = world.lifecycle.corrupt_imports;
    let outcome = match sql {
        Ok(sql) => run(
            &world
                .d1
                .connection(uuid)?
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            &sql,
            corrupt,
        ),
        Err(e) => Err(e.message),
    };
    let result = match outcome {
        Ok(meta) => {
            let final_bookmark = time_travel::snapshot(world, uuid)?;
            json!({
                "success": true,
                "type": "import",
                "status": "complete",
                "at_bookmark": at_bookmark,
                "messages": [format!("Imported {name}")],
                "result": {
                    "final_bookmark": final_bookmark,
                    "num_queries": meta.num_queries,
                    "meta": meta.json(),
                },
            })
        }
        Err(error) => json!({
            "success": false,
            "type": "import",
            "status": "error",
            "at_bookmark": at_bookmark,
            "error": error,
            "messages": ["The import was rolled back; the database is unchanged"],
        }),
    };
    world.lifecycle.imports.finished.insert(
        uuid.to_owned(),
        Finished {
            at_bookmark: at_bookmark.clone(),
            result,
        },
    );
    Ok(answer(
        StatusCode::ACCEPTED,
        json!({
            "success": true,
            "type": "import",
            "status": "active",
            "at_bookmark": at_bookmark,
            "messages": [format!("Ingesting {name}")],
        }),
    ))
}

fn uploaded(world: &World, filename: &str, etag: &str) -> bool {
    world
        .lifecycle
        .blobs
        .get(&format!("upload/{filename}"))
        .is_some_and(|blob| {
            hex::encode(<md5::Md5 as md5::Digest>::digest(&blob.bytes)).eq_ignore_ascii_case(etag)
        })
}

/// What an import did.
struct Meta {
    num_queries: u64,
    changes: u64,
    last_row_id: i64,
    size_after: i64,
}

impl Meta {
    fn json(&self) -> Value {
        json!({
            "served_by": "sandbox",
            "served_by_region": "WEUR",
            "served_by_primary": true,
            "duration": 0,
            "changes": self.changes,
            "last_row_id": self.last_row_id,
            "changed_db": self.changes > 0 || self.num_queries > 0,
            "size_after": self.size_after,
            "rows_read": 0,
            "rows_written": self.changes,
        })
    }
}

/// `sql` past its leading whitespace and comments.
fn past_comments(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return rest;
        }
    }
}

/// The first keyword of a statement, past whitespace and comments, upper-cased.
pub(crate) fn first_keyword(sql: &str) -> String {
    past_comments(sql)
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Whether a statement controls transactions, which D1 refuses.
pub(crate) fn controls_transactions(sql: &str) -> bool {
    matches!(
        first_keyword(sql).as_str(),
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE"
    )
}

/// Split SQL text into statements at each `;` outside quotes, comments and trigger bodies (a
/// `CREATE TRIGGER … BEGIN … END` keeps its inner `;`, `CASE … END` included), the way D1 splits
/// a file. One pass over the text: handing the whole rest of a large file to SQLite for every
/// statement would copy it each time.
fn split(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let (mut start, mut i) = (0, 0);
    // The statement's first word, and whether `TRIGGER` came since.
    let (mut first, mut trigger) = (None::<String>, false);
    let (mut in_body, mut cases) = (false, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            b'[' => i = sql[i..].find(']').map_or(bytes.len(), |end| i + end + 1),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |end| i + end + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
            }
            b';' if !in_body => {
                statements.push(&sql[start..=i]);
                i += 1;
                start = i;
                (first, trigger) = (None, false);
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = sql[i..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                    .map_or(bytes.len(), |n| i + n);
                let word = sql[i..end].to_ascii_uppercase();
                match word.as_str() {
                    "BEGIN" if first.as_deref() == Some("CREATE") && trigger => in_body = true,
                    "CASE" if in_body => cases += 1,
                    "END" if in_body && cases > 0 => cases -= 1,
                    "END" if in_body => in_body = false,
                    _ => {}
                }
                trigger |= word == "TRIGGER";
                first.get_or_insert(word);
                i = end;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        statements.push(&sql[start..]);
    }
    statements
}

fn run(conn: &Connection, sql: &str, corrupt: bool) -> Result<Meta, String> {
    let failed = |e: rusqlite::Error| format!("{e}: SQLITE_ERROR");
    let tx = conn.unchecked_transaction().map_err(failed)?;
    let before = tx.total_changes();
    let mut num_queries = 0;
    let mut inserts = 0u64;
    for text in split(sql) {
        if past_comments(text)
            .trim_start_matches(';')
            .trim()
            .is_empty()
        {
            continue;
        }
        if text.len() > MAX_STATEMENT_BYTES {
            return Err(format!(
                "Statement too long: statement {} is {} bytes; D1 allows at most {MAX_STATEMENT_BYTES}",
                num_queries + 1,
                text.len()
            ));
        }
        if controls_transactions(text) {
            return Err(format!("{NO_TRANSACTIONS}: SQLITE_AUTH"));
        }
        num_queries += 1;
        if corrupt && first_keyword(text) == "INSERT" {
            inserts += 1;
            if inserts % 2 == 0 {
                continue;
            }
        }
        let mut stmt = tx.prepare(text).map_err(failed)?;
        let mut rows = stmt.raw_query();
        while rows.next().map_err(failed)?.is_some() {}
    }
    let meta = Meta {
        num_queries,
        changes: tx.total_changes().saturating_sub(before),
        last_row_id: tx.last_insert_rowid(),
        size_after: d1::file_size(&tx).unwrap_or_default(),
    };
    tx.commit().map_err(failed)?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_statements_are_recognised_past_comments() {
        assert!(controls_transactions(
            "  -- note\n/* x */ begin transaction"
        ));
        assert!(controls_transactions("SAVEPOINT a"));
        assert!(!controls_transactions(
            "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END"
        ));
        assert_eq!(first_keyword("/* unterminated"), "");
    }

    #[test]
    fn a_file_splits_at_semicolons_outside_quotes_comments_and_trigger_bodies() {
        let file = "INSERT INTO t VALUES ('a;b', \"c;d\"); -- x;y\n/* p;q */ SELECT [e;f];\n\
            CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; DELETE FROM t; END;\n\
            SELECT 1";
        let statements: Vec<&str> = split(file).iter().map(|s| s.trim()).collect();
        assert_eq!(
            statements,
            [
                "INSERT INTO t VALUES ('a;b', \"c;d\");",
                "-- x;y\n/* p;q */ SELECT [e;f];",
                "CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; DELETE FROM t; END;",
                "SELECT 1",
            ]
        );
    }
}
