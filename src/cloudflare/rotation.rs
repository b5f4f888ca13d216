//! The calls secret rotation needs beside apply's single Worker write: a script's versions with
//! their annotations, and Stream signing keys.
//!
//! Cloudflare keeps no record of when a secret was set, so rotation writes its record into the
//! annotations of the version each phase creates and reads it back from the version list.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::retry::Replay;
use super::{Body, Call, Client, Error};
use crate::secret::Secret;

/// A script's version as the list shows it: when it was made and its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotatedVersion {
    /// The version's id.
    pub id: String,
    /// When it was created (RFC 3339).
    pub created_on: String,
    /// `workers/tag`.
    pub tag: Option<String>,
    /// `workers/message`.
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct VersionPage {
    items: Vec<VersionItem>,
}

#[derive(Deserialize)]
struct VersionItem {
    id: String,
    #[serde(default)]
    metadata: VersionMetadata,
    #[serde(default)]
    annotations: Annotations,
}

#[derive(Deserialize, Default)]
struct VersionMetadata {
    #[serde(default)]
    created_on: String,
}

#[derive(Deserialize, Default)]
struct Annotations {
    #[serde(rename = "workers/tag")]
    tag: Option<String>,
    #[serde(rename = "workers/message")]
    message: Option<String>,
}

/// A Stream signing key as the list shows it (never its material).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StreamKey {
    /// The key's id (it travels in every token's header; not a secret).
    pub id: String,
    /// When it was created.
    pub created: String,
}

/// A new Stream signing key: its id, and its PEM, which Cloudflare answers only once.
pub struct NewStreamKey {
    /// The key's id.
    pub id: String,
    /// The base64 PEM, held only in memory until it is written to the Worker.
    pub pem: Secret,
}

#[derive(Deserialize)]
struct CreatedKey {
    id: String,
    pem: String,
}

/// How many versions a rotation record is looked for in (the API keeps 100 deployable).
const VERSION_PAGES: u32 = 10;
const VERSIONS_PER_PAGE: u32 = 100;

impl Client {
    /// A script's versions, newest first, with their annotations (up to 1000).
    pub async fn annotated_versions(&self, script: &str) -> Result<Vec<AnnotatedVersion>, Error> {
        let mut versions = Vec::new();
        for page in 1..=VERSION_PAGES {
            let mut url = self.account_url(&["workers", "scripts", script, "versions"]);
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &VERSIONS_PER_PAGE.to_string());
            let list: VersionPage = self.call(Call::get(url)).await?;
            let full = list.items.len() as u32 == VERSIONS_PER_PAGE;
            versions.extend(list.items.into_iter().map(|item| AnnotatedVersion {
                id: item.id,
                created_on: item.metadata.created_on,
                tag: item.annotations.tag,
                message: item.annotations.message,
            }));
            if !full {
                break;
            }
        }
        Ok(versions)
    }

    /// Every Stream signing key of the account.
    pub async fn stream_keys(&self) -> Result<Vec<StreamKey>, Error> {
        self.call(Call::get(self.account_url(&["stream", "keys"])))
            .await
    }

    /// Create a Stream signing key; its PEM is in the answer only.
    pub async fn create_stream_key(&self) -> Result<NewStreamKey, Error> {
        let mut call = Call::with(
            Method::POST,
            self.account_url(&["stream", "keys"]),
            Body::Json(json!({})),
        );
        call.replay = Replay::CheckFirst;
        let created: CreatedKey = self.call(call).await?;
        Ok(NewStreamKey {
            id: created.id,
            pem: Secret::new(created.pem),
        })
    }

    /// Revoke a Stream signing key: every token it signed stops working.
    pub async fn delete_stream_key(&self, id: &str) -> Result<(), Error> {
        let url = self.account_url(&["stream", "keys", id]);
        let _: Value = self
            .call(Call::with(Method::DELETE, url, Body::Empty))
            .await?;
        Ok(())
    }
}
