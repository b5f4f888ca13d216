//! D1 Time Travel: a snapshot after every committed write, bookmarks, and restore in place.
//!
//! Each snapshot is a page-for-page copy made with SQLite's online backup API, written to
//! `<state file>.d1/<uuid>.tt/<bookmark>.sqlite` (or kept in memory when the sandbox has no
//! state file). A page copy rather than a SQL dump, because restore must be exact: a dump
//! re-creates rows but not the rowids of tables without an `INTEGER PRIMARY KEY`, the
//! `sqlite_sequence` counters, `user_version` or the free pages that `file_size` counts, and a
//! restore drill would then compare against something that never existed. Restoring copies the
//! snapshot's pages back over the live database through the same open connection, and is itself a
//! write with its own new bookmark, so restoring to the returned `previous_bookmark` undoes it.
//! Every snapshot is a whole copy, so each write to a large database costs a copy of it: fill a
//! large database with one import, not a query per row. A database's first snapshot is taken when
//! it is created, or, for one from a seed, when its bookmark is first needed. Snapshots that no
//! longer matter (older than the window, except the newest of those) are deleted as new ones come.
//!
//! Bookmarks are `SSSSSSSS-UUUUUUUU-QQQQQQQQ-<32 hex>`: the snapshot's time in Unix seconds and
//! microseconds, a per-database sequence number, and a digest of the database id. Fixed-width
//! lowercase hex, so they sort as strings in time order, the same write always gets the same
//! bookmark, and a bookmark of another database is recognised. This is the sandbox's encoding,
//! not D1's; it keeps the documented properties. Times come from the sandbox [`Clock`], and a
//! snapshot is never dated before the one it follows, so moving the clock back cannot reorder
//! them.
//!
//! Limits, as documented: bookmarks and timestamps older than 30 days are refused, a timestamp in
//! the future is refused, and an eleventh restore of one database within 10 minutes is refused.
//! The error codes are the sandbox's choice (unverified): 7400 for a bookmark or timestamp the
//! window refuses, 7404 for a bookmark with no snapshot, 429 with code 7429 for the rate limit.
//! The restores counted by the rate limit are kept in memory, so a restarted sandbox forgets them.
//!
//! [`Clock`]: crate::Clock

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, MAIN_DB};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::d1;
use super::envelope::{ApiError, Reply};
use super::request::Call;
use super::world::World;

/// How far back Time Travel reaches.
const WINDOW: SignedDuration = SignedDuration::from_hours(30 * 24);
/// At most this many restores of one database within [`RESTORE_PERIOD`].
const RESTORES_PER_PERIOD: usize = 10;
const RESTORE_PERIOD: SignedDuration = SignedDuration::from_mins(10);

/// One database's snapshots, oldest first, and its recent restores.
#[derive(Debug, Default)]
pub(crate) struct History {
    snapshots: Vec<Snapshot>,
    restores: Vec<Timestamp>,
    loaded: bool,
}

#[derive(Debug)]
struct Snapshot {
    bookmark: String,
    at: Timestamp,
    copy: Copy,
}

#[derive(Debug)]
enum Copy {
    File(PathBuf),
    Memory(Connection),
}

/// The snapshots of every database.
#[derive(Debug, Default)]
pub(crate) struct Histories {
    by_database: HashMap<String, History>,
}

impl Histories {
    /// Forget a deleted database's snapshots (its files go with the database's folder).
    pub(crate) fn remove(&mut self, uuid: &str, dir: Option<&Path>) {
        self.by_database.remove(uuid);
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(snapshot_dir(dir, uuid));
        }
    }
}

fn snapshot_dir(dir: &Path, uuid: &str) -> PathBuf {
    dir.join(format!("{uuid}.tt"))
}

/// The last 32 hex digits of every bookmark of database `uuid`.
fn tag(uuid: &str) -> String {
    hex::encode(&Sha256::digest(uuid.as_bytes())[..16])
}

fn bookmark(uuid: &str, at: Timestamp, seq: usize) -> String {
    format!(
        "{:08x}-{:08x}-{:08x}-{}",
        at.as_second(),
        at.subsec_microsecond(),
        seq,
        tag(uuid)
    )
}

/// The time a bookmark of database `uuid` stands for; `None` when it is malformed or another's.
fn bookmark_time(uuid: &str, bookmark: &str) -> Option<Timestamp> {
    let parts: Vec<&str> = bookmark.split('-').collect();
    let [secs, micros, seq, digest] = parts.as_slice() else {
        return None;
    };
    if [secs, micros, seq].iter().any(|p| p.len() != 8) || *digest != tag(uuid) {
        return None;
    }
    let secs = i64::from_str_radix(secs, 16).ok()?;
    let micros = i32::from_str_radix(micros, 16).ok()?;
    u32::from_str_radix(seq, 16).ok()?;
    Timestamp::new(secs, micros.checked_mul(1000)?).ok()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("Time Travel storage error: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        7500,
        "Internal error in the D1 storage layer",
    )
}

/// The history of `uuid`, with snapshots saved by an earlier sandbox run loaded from disk.
fn history<'a>(world: &'a mut World, uuid: &str) -> &'a mut History {
    let dir = world.d1.dir().map(|d| snapshot_dir(d, uuid));
    let history = world
        .lifecycle
        .histories
        .by_database
        .entry(uuid.to_owned())
        .or_default();
    if !history.loaded {
        history.loaded = true;
        let mut found: Vec<Snapshot> = dir
            .and_then(|dir| std::fs::read_dir(dir).ok())
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_stem()?.to_str()?.to_owned();
                let at = bookmark_time(uuid, &name)?;
                Some(Snapshot {
                    bookmark: name,
                    at,
                    copy: Copy::File(path),
                })
            })
            .collect();
        found.sort_by(|a, b| a.bookmark.cmp(&b.bookmark));
        history.snapshots = found;
    }
    history
}

/// Record the database's current content as a new snapshot; returns its bookmark.
pub(crate) fn snapshot(world: &mut World, uuid: &str) -> Result<String, ApiError> {
    let now = world.lifecycle.clock.now();
    let dir = world.d1.dir().map(|d| snapshot_dir(d, uuid));
    let (seq, at) = {
        let history = history(world, uuid);
        let at = history.snapshots.last().map_or(now, |s| s.at.max(now));
        // One more than the last, which survives pruning and restarts in its bookmark.
        let seq = history
            .snapshots
            .last()
            .and_then(|s| s.bookmark.split('-').nth(2))
            .and_then(|seq| usize::from_str_radix(seq, 16).ok())
            .map_or(0, |seq| seq + 1);
        (seq, at)
    };
    let bookmark = bookmark(uuid, at, seq);
    let shared = world.d1.connection(uuid)?;
    let live = &*shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let copy = match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(internal)?;
            let path = dir.join(format!("{bookmark}.sqlite"));
            // Copied beside, then renamed: a crash never leaves half a snapshot under a bookmark.
            let partial = dir.join(format!("{bookmark}.sqlite.partial"));
            live.backup(MAIN_DB, &partial, None).map_err(internal)?;
            std::fs::rename(&partial, &path).map_err(internal)?;
            Copy::File(path)
        }
        None => {
            let mut copy = Connection::open_in_memory().map_err(internal)?;
            rusqlite::backup::Backup::new(live, &mut copy)
                .and_then(|b| b.run_to_completion(i32::MAX, std::time::Duration::ZERO, None))
                .map_err(internal)?;
            Copy::Memory(copy)
        }
    };
    let history = history(world, uuid);
    history.snapshots.push(Snapshot {
        bookmark: bookmark.clone(),
        at,
        copy,
    });
    prune(history, oldest(now));
    Ok(bookmark)
}

/// Drop the snapshots no timestamp inside the window can reach: all older than `cutoff` but
/// the newest of those, which still is the database's state at the start of the window.
fn prune(history: &mut History, cutoff: Timestamp) {
    let older = history.snapshots.partition_point(|s| s.at < cutoff);
    for gone in history.snapshots.drain(..older.saturating_sub(1)) {
        if let Copy::File(path) = gone.copy {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The database's current bookmark, taking a first snapshot when it has none yet.
pub(crate) fn current(world: &mut World, uuid: &str) -> Result<String, ApiError> {
    match history(world, uuid).snapshots.last() {
        Some(last) => Ok(last.bookmark.clone()),
        None => snapshot(world, uuid),
    }
}

fn window_error(message: String) -> ApiError {
    ApiError::bad_request(7400, message)
}

/// A timestamp in RFC 3339 or Unix seconds, inside the window.
fn parse_timestamp(world: &World, text: &str) -> Result<Timestamp, ApiError> {
    let at = match text.parse::<i64>() {
        Ok(secs) => Timestamp::from_second(secs).ok(),
        Err(_) => text.parse::<Timestamp>().ok(),
    }
    .ok_or_else(|| {
        ApiError::bad_request(
            7400,
            format!("Invalid timestamp `{text}`: use RFC 3339 (e.g. 2026-01-01T00:00:00Z) or Unix seconds"),
        )
    })?;
    let now = world.lifecycle.clock.now();
    if at > now {
        return Err(window_error(format!(
            "Timestamp {at} is in the future (now is {now})"
        )));
    }
    if at < oldest(now) {
        return Err(window_error(format!(
            "Timestamp {at} is older than the 30-day Time Travel window"
        )));
    }
    Ok(at)
}

fn oldest(now: Timestamp) -> Timestamp {
    now.checked_sub(WINDOW).unwrap_or(Timestamp::MIN)
}

/// The newest bookmark at or before `at`.
fn at_or_before(world: &mut World, uuid: &str, at: Timestamp) -> Result<String, ApiError> {
    current(world, uuid)?;
    history(world, uuid)
        .snapshots
        .iter()
        .rev()
        .find(|s| s.at <= at)
        .map(|s| s.bookmark.clone())
        .ok_or_else(|| {
            ApiError::not_found(
                7404,
                format!("No bookmark at or before {at}: the database has no earlier history"),
            )
        })
}

/// `GET …/time_travel/bookmark[?timestamp=]`.
pub(crate) fn get_bookmark(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let uuid = d1::find(world, call.param(1))?.uuid.clone();
    let bookmark = match call.query("timestamp") {
        None => current(world, &uuid)?,
        Some(text) => {
            let at = parse_timestamp(world, text)?;
            at_or_before(world, &uuid, at)?
        }
    };
    Ok(Reply::ok(json!({ "bookmark": bookmark })))
}

/// `POST …/time_travel/restore?bookmark=…|timestamp=…`.
pub(crate) fn restore(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let uuid = d1::find(world, call.param(1))?.uuid.clone();
    let target = match (call.query("bookmark"), call.query("timestamp")) {
        (Some(bookmark), None) => {
            let at = bookmark_time(&uuid, bookmark).ok_or_else(|| {
                ApiError::bad_request(
                    7400,
                    format!("Invalid bookmark `{bookmark}`: not a bookmark of database {uuid}"),
                )
            })?;
            if at < oldest(world.lifecycle.clock.now()) {
                return Err(window_error(format!(
                    "Bookmark {bookmark} is older than the 30-day Time Travel window"
                )));
            }
            bookmark.to_owned()
        }
        (None, Some(text)) => {
            let at = parse_timestamp(world, text)?;
            at_or_before(world, &uuid, at)?
        }
        _ => {
            return Err(ApiError::bad_request(
                7400,
                "Give exactly one of the query parameters `bookmark` and `timestamp`",
            ));
        }
    };
    let now = world.lifecycle.clock.now();
    let previous = current(world, &uuid)?;
    let history = history(world, &uuid);
    let since = now.checked_sub(RESTORE_PERIOD).unwrap_or(Timestamp::MIN);
    history.restores.retain(|at| *at > since);
    if history.restores.len() >= RESTORES_PER_PERIOD {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            7429,
            format!(
                "Too many restores: D1 allows {RESTORES_PER_PERIOD} restores per database every 10 minutes"
            ),
        ));
    }
    let index = history
        .snapshots
        .iter()
        .position(|s| s.bookmark == target)
        .ok_or_else(|| ApiError::not_found(7404, format!("No snapshot for bookmark {target}")))?;
    history.restores.push(now);
    let copy = match &history.snapshots[index].copy {
        Copy::File(path) => Copy::File(path.clone()),
        Copy::Memory(conn) => {
            let mut clone = Connection::open_in_memory().map_err(internal)?;
            rusqlite::backup::Backup::new(conn, &mut clone)
                .and_then(|b| b.run_to_completion(i32::MAX, std::time::Duration::ZERO, None))
                .map_err(internal)?;
            Copy::Memory(clone)
        }
    };
    {
        // Released before the snapshot below, which locks the same connection.
        let shared = world.d1.connection(&uuid)?;
        let live = &mut *shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match copy {
            Copy::File(path) => live
                .restore(MAIN_DB, path, None::<fn(rusqlite::backup::Progress)>)
                .map_err(internal)?,
            Copy::Memory(conn) => rusqlite::backup::Backup::new(&conn, live)
                .and_then(|b| b.run_to_completion(i32::MAX, std::time::Duration::ZERO, None))
                .map_err(internal)?,
        }
    }
    let bookmark = snapshot(world, &uuid)?;
    Ok(Reply::ok(json!({
        "bookmark": bookmark,
        "previous_bookmark": previous,
        "message": format!("Restored database {uuid} to bookmark {target}"),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmarks_sort_by_time_and_name_their_database() {
        let early: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        let late: Timestamp = "2026-01-01T00:00:01Z".parse().unwrap();
        let a = bookmark("db-a", early, 9);
        let b = bookmark("db-a", late, 10);
        assert!(a < b);
        assert_eq!(a.len(), 8 * 3 + 32 + 3);
        assert_eq!(bookmark_time("db-a", &a), Some(early));
        assert_eq!(bookmark_time("db-b", &a), None);
        assert_eq!(bookmark_time("db-a", "00000085-0000024c"), None);
    }

    #[test]
    fn pruning_keeps_the_state_at_the_start_of_the_window() {
        let at = |secs: i64| Timestamp::from_second(secs).unwrap();
        let mut history = History::default();
        for (seq, secs) in [10, 20, 30, 40].into_iter().enumerate() {
            history.snapshots.push(Snapshot {
                bookmark: bookmark("db", at(secs), seq),
                at: at(secs),
                copy: Copy::Memory(Connection::open_in_memory().unwrap()),
            });
        }
        prune(&mut history, at(25));
        let kept: Vec<Timestamp> = history.snapshots.iter().map(|s| s.at).collect();
        assert_eq!(kept, [at(20), at(30), at(40)]);
    }
}
