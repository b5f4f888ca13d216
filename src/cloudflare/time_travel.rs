//! D1 Time Travel: a database's bookmarks, and restoring it in place to one of them.
//!
//! `GET …/time_travel/bookmark?timestamp=` names the newest bookmark at or before a time (the
//! current one is read by `d1_import`'s `d1_bookmark`); `POST …/time_travel/restore?bookmark=|timestamp=` (query parameters, no body)
//! restores and answers the `previous_bookmark` that undoes it. A restore is retried only when it
//! surely never reached the API: sent twice, the second one's `previous_bookmark` would be the
//! first one's result, and the way back would be lost.

use jiff::Timestamp;
use reqwest::Method;
use serde::Deserialize;

use super::retry::Replay;
use super::{Body, Call, Client, Error};

/// What a restore goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeTravelTarget {
    /// A bookmark.
    Bookmark(String),
    /// The newest bookmark at or before this time.
    Timestamp(Timestamp),
}

/// The answer to a restore.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Restored {
    /// The database's bookmark after the restore.
    #[serde(default)]
    pub bookmark: Option<String>,
    /// The bookmark of the state the restore replaced: restoring to it undoes the restore.
    pub previous_bookmark: String,
    /// What the API said.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BookmarkAnswer {
    bookmark: String,
}

impl Client {
    /// The newest bookmark of database `uuid` at or before `at` (the current one is
    /// [`Client::d1_bookmark`]).
    pub async fn d1_bookmark_at(&self, uuid: &str, at: Timestamp) -> Result<String, Error> {
        let mut url = self.account_url(&["d1", "database", uuid, "time_travel", "bookmark"]);
        url.query_pairs_mut()
            .append_pair("timestamp", &at.to_string());
        let answer: BookmarkAnswer = self.call(Call::get(url)).await?;
        Ok(answer.bookmark)
    }

    /// Restore database `uuid` in place to `target`.
    pub async fn d1_restore(
        &self,
        uuid: &str,
        target: &TimeTravelTarget,
    ) -> Result<Restored, Error> {
        let mut url = self.account_url(&["d1", "database", uuid, "time_travel", "restore"]);
        match target {
            TimeTravelTarget::Bookmark(bookmark) => {
                url.query_pairs_mut().append_pair("bookmark", bookmark);
            }
            TimeTravelTarget::Timestamp(at) => {
                url.query_pairs_mut()
                    .append_pair("timestamp", &at.to_string());
            }
        }
        let mut call = Call::with(Method::POST, url, Body::Empty);
        call.replay = Replay::CheckFirst;
        self.call(call).await
    }
}
