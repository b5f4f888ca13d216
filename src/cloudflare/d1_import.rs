//! D1's import protocol, `POST …/d1/database/{id}/import`, and the Time Travel bookmark.
//!
//! An import is the one way to run SQL on D1 atomically: D1 runs the whole file in one
//! transaction and rolls it back on any error, where `/query` may keep the statements before a
//! failing one. Four steps: `init` with the file's MD5 answers an upload URL (or, when that file
//! was uploaded before, starts ingesting at once); the bytes go to the upload URL; `ingest`
//! starts it and answers the bookmark it started at; `poll` with that bookmark until the import
//! is `complete` or `error`.
//!
//! The upload URL is a presigned URL that needs no token, so the bytes go through a client that
//! has never seen the token; it must be https unless it is loopback (the sandbox), like the base
//! URL. The URL carries its signature in its query, so it never appears in an error. Polling is
//! bounded by [`POLL_LIMIT`]. An import whose outcome cannot be known (an ingest that may have
//! run, a poll told that nothing is importing because another runner's import took its place)
//! is an [`Error::ImportUnknown`]: the caller reads the database to learn what happened.

use std::time::Duration;

use md5::{Digest, Md5};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, ETAG};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::retry::Replay;
use super::{Body, Call, Client, Error, checked_base_url, seconds};
use crate::secret;

/// How long an import may take, from ingest to its last poll.
pub const POLL_LIMIT: Duration = Duration::from_secs(15 * 60);
/// The first wait between polls; each wait doubles up to [`POLL_MAX_WAIT`].
const POLL_FIRST_WAIT: Duration = Duration::from_millis(100);
const POLL_MAX_WAIT: Duration = Duration::from_secs(2);
/// How long the upload of the file may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What a completed import reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The database's bookmark before the import: restoring to it undoes the import.
    pub at_bookmark: String,
    /// The database's bookmark after the import.
    pub final_bookmark: String,
    /// How many statements ran.
    pub num_queries: u64,
}

/// One answer of the import endpoint (`init`, `ingest` and `poll` share the shape).
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    upload_url: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    at_bookmark: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    result: Option<Completed>,
}

#[derive(Debug, Deserialize)]
struct Completed {
    #[serde(default)]
    final_bookmark: Option<String>,
    #[serde(default)]
    num_queries: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Bookmark {
    bookmark: String,
}

impl Client {
    /// Run `sql` on the database `uuid` through D1's import: all of it in one transaction, or
    /// none of it. A statement that fails is [`Error::ImportRolledBack`] with D1's message; an
    /// outcome that cannot be known is [`Error::ImportUnknown`].
    pub async fn import_d1(&self, uuid: &str, sql: &[u8]) -> Result<Imported, Error> {
        let etag = hex::encode(Md5::digest(sql));
        let failed = |detail: String| Error::Import {
            database: uuid.to_owned(),
            detail,
        };
        let init: Answer = self
            .import_call(uuid, json!({"action": "init", "etag": etag}), Replay::Safe)
            .await?;
        let started = match init.upload_url {
            Some(upload_url) => {
                let filename = init.filename.ok_or_else(|| {
                    failed("init answered an upload URL without a filename".into())
                })?;
                self.upload(uuid, &upload_url, sql, &etag).await?;
                let ingest = json!({"action": "ingest", "etag": etag, "filename": filename});
                match self.import_call(uuid, ingest, Replay::CheckFirst).await {
                    Ok(answer) => answer,
                    Err(err) if err.may_have_taken_effect() => {
                        return Err(Error::ImportUnknown {
                            database: uuid.to_owned(),
                            detail: format!("the ingest got no clear answer ({err})"),
                        });
                    }
                    Err(err) => return Err(err),
                }
            }
            // The same file was uploaded before: init started ingesting it.
            None => init,
        };
        let at_bookmark = started
            .at_bookmark
            .clone()
            .ok_or_else(|| failed("the ingest answered no `at_bookmark`".into()))?;
        self.poll_import(uuid, started, at_bookmark).await
    }

    /// The database's current Time Travel bookmark: restoring to it brings the database back
    /// to now.
    pub async fn d1_bookmark(&self, uuid: &str) -> Result<String, Error> {
        let url = self.account_url(&["d1", "database", uuid, "time_travel", "bookmark"]);
        let answer: Bookmark = self.call(Call::get(url)).await?;
        Ok(answer.bookmark)
    }

    async fn import_call(
        &self,
        uuid: &str,
        body: serde_json::Value,
        replay: Replay,
    ) -> Result<Answer, Error> {
        let url = self.account_url(&["d1", "database", uuid, "import"]);
        let mut call = Call::with(Method::POST, url, Body::Json(body));
        call.replay = replay;
        self.call(call).await
    }

    /// PUT the file to the presigned `upload_url`, without the token, and check the stored
    /// object's ETag against the file's MD5.
    async fn upload(
        &self,
        uuid: &str,
        upload_url: &str,
        sql: &[u8],
        etag: &str,
    ) -> Result<(), Error> {
        let failed = |detail: String| Error::Import {
            database: uuid.to_owned(),
            detail,
        };
        let url: Url = checked_base_url(upload_url).map_err(|_| {
            failed("the upload URL the API answered is neither https nor on this machine".into())
        })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("lmsinfra/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(UPLOAD_TIMEOUT)
            .build()
            .map_err(Error::ClientBuild)?;
        let response = http
            .put(url)
            .header(CONTENT_LENGTH, sql.len())
            .body(sql.to_vec())
            .send()
            .await
            .map_err(|e| failed(format!("the upload failed: {}", e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!(
                "the upload was refused with HTTP {}",
                status.as_u16()
            )));
        }
        let stored = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_owned());
        match stored {
            Some(stored) if stored.eq_ignore_ascii_case(etag) => Ok(()),
            Some(stored) => Err(failed(format!(
                "the uploaded file's MD5 is {}, not the file's {etag}: the upload was damaged",
                secret::scrub(&stored)
            ))),
            None => Err(failed("the upload answered no ETag".into())),
        }
    }

    /// Poll until the import is complete or failed, within [`POLL_LIMIT`].
    async fn poll_import(
        &self,
        uuid: &str,
        mut answer: Answer,
        at_bookmark: String,
    ) -> Result<Imported, Error> {
        let started = tokio::time::Instant::now();
        let mut wait = POLL_FIRST_WAIT;
        loop {
            match answer.status.as_deref() {
                Some("complete") => {
                    let result = answer.result.unwrap_or(Completed {
                        final_bookmark: None,
                        num_queries: None,
                    });
                    return Ok(Imported {
                        final_bookmark: result
                            .final_bookmark
                            .unwrap_or_else(|| at_bookmark.clone()),
                        num_queries: result.num_queries.unwrap_or_default(),
                        at_bookmark,
                    });
                }
                Some("error") => {
                    return Err(Error::ImportRolledBack {
                        database: uuid.to_owned(),
                        message: secret::scrub(
                            answer.error.as_deref().unwrap_or("no reason given"),
                        ),
                    });
                }
                _ if answer.success == Some(false) => {
                    let said = answer.error.as_deref().unwrap_or("no reason given");
                    return Err(Error::ImportUnknown {
                        database: uuid.to_owned(),
                        detail: format!("polling it answered: {}", secret::scrub(said)),
                    });
                }
                _ => {}
            }
            if started.elapsed() + wait > POLL_LIMIT {
                return Err(Error::ImportUnknown {
                    database: uuid.to_owned(),
                    detail: format!("it did not finish within {}", seconds(POLL_LIMIT)),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(POLL_MAX_WAIT);
            let poll = json!({"action": "poll", "current_bookmark": at_bookmark});
            answer = self.import_call(uuid, poll, Replay::Safe).await?;
        }
    }
}
