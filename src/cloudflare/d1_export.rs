//! `POST …/d1/database/{id}/export`: a SQL dump of a database, and the download of it.
//!
//! D1 exports through a polling protocol: the first POST starts the export and answers `active`
//! with the bookmark it is taken at; the client sends the same body again with
//! `current_bookmark` until the answer is `complete` (with a signed URL to the dump) or `error`.
//! An export that is not polled is cancelled, so polls follow each other at most
//! [`POLL_MAX`] apart, far inside any plausible lapse (the sandbox's is 60 s), and a poll's own
//! retries keep it alive too.
//!
//! The signed URL carries its own credential in its query and is fetched by a client built here
//! that has never seen the API token (D1 hands out an R2 presigned URL; wrangler fetches it with
//! a plain GET). The dump is streamed to disk, never held in memory, into a temporary file beside
//! the destination that is renamed over it once complete: a failed download leaves nothing under
//! the destination's name. The URL is never shown: not in errors, not in logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::{Body, Call, Client, Error};

/// The first wait between two polls; it doubles up to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(200);
/// The longest wait between two polls.
const POLL_MAX: Duration = Duration::from_secs(2);
/// How long an export may run before lmsinfra gives up on it.
const EXPORT_LIMIT: Duration = Duration::from_secs(60 * 60);
/// How long a download may go without receiving a byte.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// A finished export: where its dump is and which point of the database it holds.
#[derive(Debug, Clone)]
pub struct Export {
    /// The Time Travel bookmark the dump was taken at.
    pub at_bookmark: String,
    /// The file name D1 gave the dump.
    pub filename: String,
    /// Where to download it, without the API token.
    pub signed_url: SignedUrl,
}

/// A URL that is its own credential. Its `Debug` shows only its origin and path.
#[derive(Clone)]
pub struct SignedUrl(Url);

impl std::fmt::Debug for SignedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SignedUrl({}{})",
            self.0.origin().ascii_serialization(),
            self.0.path()
        )
    }
}

/// A dump written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// `result` of an export answer.
#[derive(Debug, Deserialize)]
struct ExportAnswer {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    at_bookmark: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    result: Option<ExportResult>,
}

#[derive(Debug, Deserialize)]
struct ExportResult {
    filename: String,
    signed_url: String,
}

impl Client {
    /// Export database `uuid` as SQL, polling until the dump is ready; each progress message
    /// the API sends is handed to `progress`.
    pub async fn export_d1(
        &self,
        uuid: &str,
        mut progress: impl FnMut(&str),
    ) -> Result<Export, Error> {
        let url = self.account_url(&["d1", "database", uuid, "export"]);
        let failed = |reason: String| Error::ExportFailed {
            database: uuid.to_owned(),
            reason: crate::secret::scrub(&reason),
        };
        let started = tokio::time::Instant::now();
        let mut bookmark: Option<String> = None;
        let mut wait = POLL_FIRST;
        loop {
            let mut body = serde_json::json!({ "output_format": "polling" });
            if let Some(bookmark) = &bookmark {
                body["current_bookmark"] = bookmark.clone().into();
            }
            let answer: ExportAnswer = self
                .call(Call::with(Method::POST, url.clone(), Body::Json(body)))
                .await?;
            for message in &answer.messages {
                progress(message);
            }
            match answer.status.as_deref() {
                Some("complete") => {
                    let result = answer
                        .result
                        .ok_or_else(|| failed("it completed without a download URL".to_owned()))?;
                    let at_bookmark = answer
                        .at_bookmark
                        .or(bookmark)
                        .ok_or_else(|| failed("it completed without a bookmark".to_owned()))?;
                    let signed_url = checked_signed_url(&result.signed_url)
                        .ok_or_else(|| failed("its download URL is not an https URL".to_owned()))?;
                    return Ok(Export {
                        at_bookmark,
                        filename: result.filename,
                        signed_url,
                    });
                }
                Some("active") => {
                    let at = answer
                        .at_bookmark
                        .ok_or_else(|| failed("it is running without a bookmark".to_owned()))?;
                    if bookmark.as_ref().is_some_and(|b| *b != at) {
                        return Err(failed(format!(
                            "its bookmark moved from {} to {at} while it ran",
                            bookmark.unwrap_or_default()
                        )));
                    }
                    bookmark = Some(at);
                }
                _ => {
                    let reason = answer.error.unwrap_or_else(|| {
                        let status = answer.status.unwrap_or_else(|| "none".to_owned());
                        format!("status `{status}`, success {:?}", answer.success)
                    });
                    return Err(failed(reason));
                }
            }
            if started.elapsed() > EXPORT_LIMIT {
                return Err(failed(format!(
                    "it did not complete within {} minutes",
                    EXPORT_LIMIT.as_secs() / 60
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(POLL_MAX);
        }
    }
}

/// The signed URL, when it may be fetched: https, or plain http to this machine (the sandbox).
fn checked_signed_url(raw: &str) -> Option<SignedUrl> {
    let url = Url::parse(raw).ok()?;
    let host = url.host()?;
    match url.scheme() {
        "https" => Some(SignedUrl(url)),
        "http" if super::is_loopback(&host) => Some(SignedUrl(url)),
        _ => None,
    }
}

/// An HTTP client for signed URLs: no token, no default headers, no redirects to follow.
fn unauthenticated() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("lmsinfra/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(STALL_LIMIT)
        .build()
        .map_err(|err| err.without_url().to_string())
}

impl SignedUrl {
    /// Stream the dump of database `database` into `destination`, atomically: it is written
    /// beside it under a temporary name, synced, then renamed.
    pub async fn download(&self, database: &str, destination: &Path) -> Result<Download, Error> {
        let failed = |reason: String| Error::Download {
            database: database.to_owned(),
            reason,
        };
        let partial = partial_path(destination);
        let result = self.download_to(&partial).await.map_err(failed);
        let download = match result {
            Ok(download) => download,
            Err(err) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(err);
            }
        };
        if let Err(err) = tokio::fs::rename(&partial, destination).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(failed(format!(
                "could not move it to {}: {err}",
                destination.display()
            )));
        }
        Ok(download)
    }

    async fn download_to(&self, partial: &Path) -> Result<Download, String> {
        let mut response = unauthenticated()?
            .get(self.0.clone())
            .send()
            .await
            .map_err(|err| err.without_url().to_string())?;
        let status = response.status();
        if !status.is_success() {
            let hint = if status.as_u16() == 403 {
                " (a signed URL works for one hour; run the backup again)"
            } else {
                ""
            };
            return Err(format!("the download URL answered HTTP {status}{hint}"));
        }
        let mut file = tokio::fs::File::create(partial)
            .await
            .map_err(|err| format!("could not create {}: {err}", partial.display()))?;
        let mut digest = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| format!("the download broke off: {}", err.without_url()))?
        {
            digest.update(&chunk);
            bytes += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|err| format!("could not write {}: {err}", partial.display()))?;
        }
        file.sync_all()
            .await
            .map_err(|err| format!("could not write {}: {err}", partial.display()))?;
        Ok(Download {
            bytes,
            sha256: hex::encode(digest.finalize()),
        })
    }
}

/// `.<name>.partial` beside `path`.
fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.partial"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_url_is_fetched_only_over_https_or_loopback() {
        assert!(checked_signed_url("https://bucket.r2.example/x?sig=1").is_some());
        assert!(checked_signed_url("http://127.0.0.1:9/__sandbox/blob/a").is_some());
        assert!(checked_signed_url("http://example.com/x").is_none());
        assert!(checked_signed_url("file:///etc/passwd").is_none());
        assert!(checked_signed_url("not a url").is_none());
    }

    #[test]
    fn a_signed_url_is_never_shown_with_its_query() {
        let url = checked_signed_url("https://r2.example/dump.sql?X-Amz-Signature=canary").unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("r2.example/dump.sql"), "{shown}");
    }
}
