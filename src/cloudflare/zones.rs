//! Zones: found by name, for routes and the rulesets that enforce headers at the edge.

use serde::{Deserialize, Serialize};

use super::{Client, Error};

/// A zone (other fields tolerated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// The zone's id.
    pub id: String,
    /// The domain, e.g. `example.com`.
    pub name: String,
    /// `initializing`, `pending`, `active` or `moved`.
    #[serde(default)]
    pub status: Option<String>,
    /// The account that owns it.
    #[serde(default)]
    pub account: Option<ZoneAccount>,
    /// The zone's plan, which bounds the rate-limiting rules it can hold.
    #[serde(default)]
    pub plan: Option<ZonePlan>,
}

/// A zone's plan (other fields tolerated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZonePlan {
    /// `free`, `pro`, `business` or `enterprise`.
    #[serde(default)]
    pub legacy_id: Option<String>,
    /// The plan's name, e.g. `Free Website`.
    #[serde(default)]
    pub name: Option<String>,
}

/// The account that owns a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneAccount {
    /// The account id.
    pub id: String,
    /// The account name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The largest page `GET /zones` serves.
const ZONES_PER_PAGE: u32 = 50;

impl Client {
    /// The zones of the client's account that the token can see, only those called `name`
    /// when given; every page is read. A token may see zones of other accounts too: they are
    /// never the environment's.
    pub async fn list_zones(&self, name: Option<&str>) -> Result<Vec<Zone>, Error> {
        let mut url = self.url(&["zones"]);
        url.query_pairs_mut()
            .append_pair("account.id", self.account_id());
        if let Some(name) = name {
            url.query_pairs_mut().append_pair("name", name);
        }
        self.call_pages(url, ZONES_PER_PAGE).await
    }
}
