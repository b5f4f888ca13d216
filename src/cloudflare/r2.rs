//! R2 objects, as far as backups need them: upload a file, list what lies under a prefix.
//!
//! An upload streams the file from disk (it is opened again for each attempt, so a retried PUT
//! sends it whole); the object key is one percent-encoded path segment, as wrangler sends it.
//! A list follows `start_after` (the last key of the page before) while the answer says it is
//! truncated.

use reqwest::Method;
use serde::Deserialize;

use super::{Body, Call, Client, Error, PAGE_LIMIT};

/// The most objects one list page asks for.
const PER_PAGE: u32 = 1_000;

/// An object in a bucket, as a list returns it (other fields tolerated).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct R2Object {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// When it was last written (RFC 3339).
    #[serde(default)]
    pub last_modified: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PutAnswer {
    key: String,
}

impl Client {
    /// Upload the file at `path` as object `key` of bucket `bucket`.
    pub async fn r2_put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
    ) -> Result<String, Error> {
        let url = self.account_url(&["r2", "buckets", bucket, "objects", key]);
        let answer: PutAnswer = self
            .call(Call::with(Method::PUT, url, Body::File(path.to_owned())))
            .await?;
        Ok(answer.key)
    }

    /// Every object of bucket `bucket` whose key starts with `prefix`.
    pub async fn r2_list(&self, bucket: &str, prefix: &str) -> Result<Vec<R2Object>, Error> {
        let base = self.account_url(&["r2", "buckets", bucket, "objects"]);
        let mut all: Vec<R2Object> = Vec::new();
        for page in 1..=PAGE_LIMIT {
            let mut url = base.clone();
            url.query_pairs_mut()
                .append_pair("prefix", prefix)
                .append_pair("per_page", &PER_PAGE.to_string());
            if let Some(last) = all.last() {
                url.query_pairs_mut().append_pair("start_after", &last.key);
            }
            let path = self.display_path(&url);
            let answer = self.send(Call::get(url)).await?;
            let items: Vec<R2Object> =
                super::envelope::typed(&answer.result).map_err(|detail| Error::Decode {
                    method: Method::GET,
                    path: path.clone(),
                    detail,
                })?;
            let truncated = answer.info.and_then(|info| info.is_truncated);
            let got = items.len();
            if all
                .last()
                .zip(items.first())
                .is_some_and(|(a, b)| b.key <= a.key)
            {
                return Err(Error::Paging {
                    method: Method::GET,
                    path,
                    detail: format!("page {page} does not follow the page before it"),
                });
            }
            all.extend(items);
            let more = truncated.unwrap_or(got >= PER_PAGE as usize);
            if got == 0 || !more {
                return Ok(all);
            }
        }
        Err(Error::Paging {
            method: Method::GET,
            path: self.display_path(&base),
            detail: format!("the list has more than {PAGE_LIMIT} pages, the most lmsinfra reads"),
        })
    }
}
