//! D1 databases: list (paged), details, create, delete.
//!
//! Creating is the one write that cannot simply be sent again: if the answer to a create is
//! lost (a 5xx after the database was made, a dropped connection), a second create would make
//! a second database or fail on the name. So after such a failure the database is looked up by
//! name first, and only created again if it is not there.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::retry::Replay;
use super::{Body, Call, Client, Error};

/// A D1 database, as lists and creates return it (other fields tolerated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    /// The database's id.
    pub uuid: String,
    /// The database's name.
    pub name: String,
    /// When it was created.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A D1 database's details (`GET …/d1/database/{id}`): the list leaves size and tables out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseDetails {
    /// The database's id.
    pub uuid: String,
    /// The database's name.
    pub name: String,
    /// Its size in bytes, when reported.
    #[serde(default)]
    pub file_size: Option<u64>,
    /// How many tables it holds, when reported.
    #[serde(default)]
    pub num_tables: Option<u64>,
    /// `alpha`, `beta` or `production`: an alpha database has no Time Travel.
    #[serde(default)]
    pub version: Option<String>,
}

impl Client {
    /// A database's details; `None` when it does not exist.
    pub async fn get_d1(&self, uuid: &str) -> Result<Option<DatabaseDetails>, Error> {
        let url = self.account_url(&["d1", "database", uuid]);
        match self.call(Call::get(url)).await {
            Ok(details) => Ok(Some(details)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every D1 database on the account, following every page.
    pub async fn list_d1(&self) -> Result<Vec<Database>, Error> {
        let url = self.account_url(&["d1", "database"]);
        self.call_pages(url, self.inner.d1_page_size).await
    }

    /// The database called exactly `name`, if there is one.
    pub async fn find_d1(&self, name: &str) -> Result<Option<Database>, Error> {
        let mut url = self.account_url(&["d1", "database"]);
        url.query_pairs_mut().append_pair("name", name);
        let found: Vec<Database> = self.call_pages(url, self.inner.d1_page_size).await?;
        Ok(found.into_iter().find(|db| db.name == name))
    }

    /// Create a database, in the region `location_hint` names (`weur`, `enam`, …) when given.
    /// After a failure that may have created it anyway, it is looked up by name before another
    /// create is sent, so a flaky network never leaves two.
    pub async fn create_d1(
        &self,
        name: &str,
        location_hint: Option<&str>,
    ) -> Result<Database, Error> {
        let mut body = serde_json::json!({ "name": name });
        if let Some(hint) = location_hint {
            body["primary_location_hint"] = hint.into();
        }
        let mut retries = 0;
        let mut ambiguous = false;
        loop {
            let mut call = Call::with(
                Method::POST,
                self.account_url(&["d1", "database"]),
                Body::Json(body.clone()),
            );
            call.replay = Replay::CheckFirst;
            let err = match self.call::<Database>(call).await {
                Ok(db) => return Ok(db),
                Err(err) => err,
            };
            // After an ambiguous failure, a refusal (the name is taken) may be our own earlier
            // create: look that up too before reporting it.
            let check = err.may_have_taken_effect() || (ambiguous && err.status().is_some());
            if !check {
                return Err(err);
            }
            tracing::debug!(name, error = %err, "create may have taken effect; looking the database up");
            if let Some(db) = self.find_d1(name).await? {
                return Ok(db);
            }
            if !err.may_have_taken_effect() || retries >= self.inner.retry.max_retries {
                return Err(err);
            }
            ambiguous = true;
            tokio::time::sleep(self.backoff(retries)).await;
            retries += 1;
        }
    }

    /// Delete a database. A 404 after a retried attempt means an earlier attempt did it.
    pub async fn delete_d1(&self, uuid: &str) -> Result<(), Error> {
        let url = self.account_url(&["d1", "database", uuid]);
        match self
            .call::<serde_json::Value>(Call::with(Method::DELETE, url, Body::Empty))
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Api {
                status: 404,
                retries: 1..,
                ..
            }) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

impl Error {
    /// Whether a request may have been carried out even though it failed: the server erred
    /// (5xx, 408), the connection dropped after the request was sent, or no answer came in time.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500 || *status == 408,
            Self::Transport { source, .. } => !source.is_connect(),
            Self::Timeout { .. } => true,
            _ => false,
        }
    }
}
