//! `POST …/d1/database/{id}/query`: SQL over D1's query endpoint.
//!
//! D1 splits `sql` at its `;` and answers one result per statement. Whether a failing statement
//! rolls back the ones before it is not documented, so nothing here relies on it: atomic writes
//! go through the import (`d1_import`). A read may be sent again; a write is retried only when it
//! surely did not reach the server.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::retry::Replay;
use super::{Body, Call, Client, Error};

/// One statement's result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StatementResult {
    /// Its rows, as column → value.
    #[serde(default)]
    pub results: Vec<Map<String, Value>>,
}

impl Client {
    /// Run `sql`, which only reads, on the database `uuid`: one result per statement.
    pub async fn read_d1(&self, uuid: &str, sql: &str) -> Result<Vec<StatementResult>, Error> {
        self.query_d1(uuid, sql, Replay::Safe).await
    }

    /// Run `sql`, which writes, on the database `uuid`; not atomic (see the module docs).
    pub async fn write_d1(&self, uuid: &str, sql: &str) -> Result<Vec<StatementResult>, Error> {
        self.query_d1(uuid, sql, Replay::CheckFirst).await
    }

    async fn query_d1(
        &self,
        uuid: &str,
        sql: &str,
        replay: Replay,
    ) -> Result<Vec<StatementResult>, Error> {
        let url = self.account_url(&["d1", "database", uuid, "query"]);
        let mut call = Call::with(Method::POST, url, Body::Json(json!({ "sql": sql })));
        call.replay = replay;
        self.call(call).await
    }
}
