//! `POST …/d1/database/{id}/import`: run a SQL file in a database, atomically.
//!
//! D1's four steps: `init` with the file's MD5 answers an upload URL (or, for a file uploaded
//! before, starts ingesting at once); the file is PUT to that URL by a client that has never
//! seen the API token, and the answer's `ETag` must be the MD5; `ingest` starts the import;
//! `poll` with the bookmark `ingest` answered repeats until `complete` or `error`. D1 runs the
//! file as one unit and rolls it back on any error. The file is streamed from disk for both the
//! MD5 and the upload, so its size never shows in memory.

use std::path::Path;
use std::time::Duration;

use md5::Digest;
use reqwest::Method;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::d1_export::{checked_signed_url, unauthenticated};
use super::{Body, Call, Client, Error};

/// The wait between two polls.
const POLL: Duration = Duration::from_millis(250);
/// How long an import may run before lmsinfra gives up on it.
const IMPORT_LIMIT: Duration = Duration::from_secs(60 * 60);

/// A finished import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The database's bookmark before the import: restoring to it undoes the import.
    pub at_bookmark: String,
    /// The bookmark after it.
    pub final_bookmark: Option<String>,
    /// How many statements ran.
    pub num_queries: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ImportAnswer {
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
    result: Option<ImportResult>,
}

#[derive(Debug, Deserialize)]
struct ImportResult {
    #[serde(default)]
    final_bookmark: Option<String>,
    #[serde(default)]
    num_queries: Option<u64>,
}

impl Client {
    /// Run the SQL file at `path` in database `uuid` through D1's import.
    pub async fn import_d1(&self, uuid: &str, path: &Path) -> Result<Imported, Error> {
        let failed = |reason: String| Error::ImportFailed {
            database: uuid.to_owned(),
            reason: crate::secret::scrub(&reason),
        };
        let etag = md5_of(path).await.map_err(|err| {
            failed(format!("could not read {}: {err}", path.display()))
        })?;
        let url = self.account_url(&["d1", "database", uuid, "import"]);
        let post = |body: serde_json::Value| {
            self.call::<ImportAnswer>(Call::with(Method::POST, url.clone(), Body::Json(body)))
        };
        let init = post(serde_json::json!({ "action": "init", "etag": etag })).await?;
        let started = match (&init.upload_url, &init.filename) {
            (Some(upload_url), Some(filename)) => {
                let upload_url = checked_signed_url(upload_url)
                    .ok_or_else(|| failed("its upload URL is not an https URL".to_owned()))?;
                upload(&upload_url, path, &etag).await.map_err(failed)?;
                post(serde_json::json!({ "action": "ingest", "etag": etag, "filename": filename }))
                    .await?
            }
            // The file was uploaded before: init started ingesting it.
            _ => init,
        };
        let at_bookmark = started
            .at_bookmark
            .ok_or_else(|| failed(started.error.unwrap_or_else(|| "it did not start".to_owned())))?;
        let begun = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(POLL).await;
            let answer =
                post(serde_json::json!({ "action": "poll", "current_bookmark": at_bookmark }))
                    .await?;
            match answer.status.as_deref() {
                Some("complete") => {
                    let result = answer.result;
                    return Ok(Imported {
                        at_bookmark,
                        final_bookmark: result.as_ref().and_then(|r| r.final_bookmark.clone()),
                        num_queries: result.and_then(|r| r.num_queries),
                    });
                }
                Some("active") => {}
                _ => {
                    let reason = answer
                        .error
                        .unwrap_or_else(|| "it ended without saying why".to_owned());
                    return Err(failed(format!("{reason} (D1 rolled the import back)")));
                }
            }
            if begun.elapsed() > IMPORT_LIMIT {
                return Err(failed(format!(
                    "it did not complete within {} minutes",
                    IMPORT_LIMIT.as_secs() / 60
                )));
            }
        }
    }
}

/// The MD5 of the file at `path`, in hex, read in pieces.
async fn md5_of(path: &Path) -> std::io::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut digest = md5::Md5::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(hex::encode(digest.finalize()));
        }
        digest.update(&buffer[..read]);
    }
}

/// PUT the file to the upload URL, without the token; the answer's ETag must be its MD5.
async fn upload(url: &super::SignedUrl, path: &Path, etag: &str) -> Result<(), String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|err| format!("could not read {}: {err}", path.display()))?;
    let length = file
        .metadata()
        .await
        .map_err(|err| format!("could not read {}: {err}", path.display()))?
        .len();
    let response = unauthenticated()?
        .put(url.url().clone())
        .header(reqwest::header::CONTENT_LENGTH, length)
        .body(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file)))
        .send()
        .await
        .map_err(|err| format!("the upload failed: {}", err.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the upload URL answered HTTP {status}"));
    }
    let answered = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_ascii_lowercase());
    if answered.as_deref() != Some(etag) {
        return Err(format!(
            "the upload's ETag is {}, not the file's MD5 {etag}: it arrived damaged",
            answered.as_deref().unwrap_or("missing")
        ));
    }
    Ok(())
}
