//! What keeps one D1 query from freezing the sandbox, escaping its transaction or reading the host.
//!
//! A `query` or `raw` request runs as a [`Job`]: the handler finds the database under the state
//! lock, then the SQL runs on tokio's blocking pool holding only that database's connection, so
//! a slow query delays other queries to the same database and its details (`GET`, which counts
//! its tables), as on D1, where a database is single-threaded, and nothing else. Each job gets:
//!
//! - a time limit, D1's 30 s unless [`SandboxConfig::d1_query_timeout`](super::SandboxConfig)
//!   says otherwise, enforced by SQLite's progress handler; a query that runs past it fails with
//!   D1's "exceeded timeout" error (7500) and its transaction rolls back;
//! - D1's documented limits (developers.cloudflare.com/d1/platform/limits): 2,000,000 bytes per
//!   string, BLOB or row, 100,000 bytes of SQL, 100 bound parameters, 32 function arguments,
//!   50-byte LIKE patterns, 100 columns, and a 50 MB result, counted as the bytes of the values
//!   returned (text and BLOB lengths, 8 bytes per number) before they are encoded;
//! - an authorizer that refuses `BEGIN`, `COMMIT`/`END`, `ROLLBACK`, `SAVEPOINT` and `RELEASE`
//!   with D1's message (7500), so no statement can end the request's own transaction and leave
//!   half a failing batch applied, and refuses `PRAGMA database_list` and its table form
//!   `pragma_database_list` ("not authorized", as D1 answers pragmas it does not offer), which
//!   would show the SQLite file's path on the host.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;

use super::envelope::{ApiError, Reply};
use super::world::World;

/// D1's "Maximum SQL query duration".
pub(crate) const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// D1's "Maximum query result size".
pub(crate) const MAX_RESULT_BYTES: usize = 50_000_000;
/// D1's answer to a transaction statement (cloudflare/workerd#5411).
const TRANSACTION_REFUSAL: &str = "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";
/// SQLite virtual-machine steps between two looks at the clock.
const PROGRESS_STEPS: i32 = 10_000;

/// One database's connection, shared by the open-file table and the job running on it.
pub(crate) type Shared = Arc<Mutex<Connection>>;

/// Apply D1's size limits to a freshly opened connection.
pub(crate) fn limit(conn: &Connection) -> rusqlite::Result<()> {
    for (limit, value) in [
        (Limit::SQLITE_LIMIT_LENGTH, 2_000_000),
        (Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000),
        (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 100),
        (Limit::SQLITE_LIMIT_FUNCTION_ARG, 32),
        (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50),
        (Limit::SQLITE_LIMIT_COLUMN, 100),
    ] {
        conn.set_limit(limit, value)?;
    }
    Ok(())
}

/// Why a query failed: SQLite said no, or its answer grew past D1's result limit.
#[derive(Debug)]
pub(crate) enum Failure {
    Sql(rusqlite::Error),
    TooLarge,
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure::Sql(e)
    }
}

/// What the authorizer refused last, so the error can say why.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Transaction,
    HostPath,
}

/// The limits of one running job, handed to the work it runs.
pub(crate) struct Guard {
    timeout: Duration,
    deadline: Instant,
    /// Whether transaction statements are refused right now: only while the request's SQL
    /// runs, so the job's own `BEGIN`, `COMMIT` and `ROLLBACK` go through.
    armed: Arc<AtomicBool>,
    refused: Arc<Mutex<Option<Refusal>>>,
}

/// Refusing transaction statements until dropped.
pub(crate) struct Armed<'a>(&'a AtomicBool);

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Guard {
    /// Refuse transaction statements while the returned value lives; drop it before the job's
    /// own commit or rollback.
    pub(crate) fn arm(&self) -> Armed<'_> {
        self.armed.store(true, Ordering::SeqCst);
        Armed(&self.armed)
    }

    /// Fail once the answer so far, `total` bytes, passes D1's result limit.
    pub(crate) fn check_size(total: usize) -> Result<(), Failure> {
        if total > MAX_RESULT_BYTES {
            Err(Failure::TooLarge)
        } else {
            Ok(())
        }
    }

    /// The D1 error for a failed query.
    pub(crate) fn error(&self, failure: Failure) -> ApiError {
        let refused = *self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        let message = match failure {
            Failure::TooLarge => {
                format!("Query result is larger than D1's limit of {MAX_RESULT_BYTES} bytes")
            }
            Failure::Sql(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
                    && Instant::now() >= self.deadline =>
            {
                format!(
                    "D1 DB storage operation exceeded timeout which caused object to be reset: the query ran longer than {} ms",
                    self.timeout.as_millis()
                )
            }
            Failure::Sql(e)
                if e.sqlite_error_code()
                    == Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) =>
            {
                match refused {
                    Some(Refusal::Transaction) => format!("{TRANSACTION_REFUSAL}: SQLITE_AUTH"),
                    Some(Refusal::HostPath) | None => "not authorized: SQLITE_AUTH".to_owned(),
                }
            }
            Failure::Sql(e) => format!("{e}: SQLITE_ERROR"),
        };
        ApiError::bad_request(7500, message)
    }
}

type Work = Box<dyn FnOnce(&Connection, &Guard) -> Result<Reply, ApiError> + Send>;

/// What a job leaves to do under the state lock once its SQL has run, whatever its outcome.
pub(crate) type After = Box<dyn FnOnce(&mut World) -> Result<(), ApiError> + Send>;

/// SQL work on one database, to run off the state lock.
pub(crate) struct Job {
    conn: Shared,
    work: Work,
    after: Option<After>,
}

impl Job {
    pub(crate) fn new(
        conn: Shared,
        work: impl FnOnce(&Connection, &Guard) -> Result<Reply, ApiError> + Send + 'static,
    ) -> Job {
        Job {
            conn,
            work: Box::new(work),
            after: None,
        }
    }

    /// `after` runs under the state lock once the SQL has run (a Time Travel snapshot of a write).
    pub(crate) fn then(
        self,
        after: impl FnOnce(&mut World) -> Result<(), ApiError> + Send + 'static,
    ) -> Job {
        Job {
            after: Some(Box::new(after)),
            ..self
        }
    }

    /// Run on the blocking pool, within `timeout` once the connection is ours; the answer and
    /// what is left to do under the state lock.
    pub(crate) async fn run(self, timeout: Duration) -> (Result<Reply, ApiError>, Option<After>) {
        let Job { conn, work, after } = self;
        let reply = tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let guard = Guard {
                timeout,
                deadline: Instant::now() + timeout,
                armed: Arc::new(AtomicBool::new(false)),
                refused: Arc::new(Mutex::new(None)),
            };
            let deadline = guard.deadline;
            conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() >= deadline));
            let armed = guard.armed.clone();
            let refused = guard.refused.clone();
            conn.authorizer(Some(move |context: AuthContext<'_>| {
                let refusal = refusal(&context.action, armed.load(Ordering::SeqCst));
                if refusal.is_some() {
                    *refused.lock().unwrap_or_else(PoisonError::into_inner) = refusal;
                    Authorization::Deny
                } else {
                    Authorization::Allow
                }
            }));
            let reply = work(&conn, &guard);
            conn.progress_handler(0, None::<fn() -> bool>);
            conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
            reply
        })
        .await
        .unwrap_or_else(|_| {
            tracing::error!("a D1 query panicked");
            Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                7500,
                "Internal error in the D1 storage layer",
            ))
        });
        (reply, after)
    }
}

fn refusal(action: &AuthAction<'_>, armed: bool) -> Option<Refusal> {
    match action {
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } if armed => {
            Some(Refusal::Transaction)
        }
        AuthAction::Pragma { pragma_name, .. }
            if pragma_name.eq_ignore_ascii_case("database_list") =>
        {
            Some(Refusal::HostPath)
        }
        AuthAction::Read { table_name, .. }
            if table_name.eq_ignore_ascii_case("pragma_database_list") =>
        {
            Some(Refusal::HostPath)
        }
        _ => None,
    }
}
