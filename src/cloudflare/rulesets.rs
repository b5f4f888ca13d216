//! Zone rulesets: the phase entrypoints that hold response-header transform and rate-limiting
//! rules.
//!
//! A PUT replaces the whole rule list, so callers read the entrypoint, change the rules they
//! own, and send the list back.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Body, Call, Client, Error};

/// A ruleset phase lmsinfra reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Response header transform rules.
    HttpResponseHeadersTransform,
    /// Rate-limiting rules.
    HttpRatelimit,
}

impl Phase {
    /// The phase's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpResponseHeadersTransform => "http_response_headers_transform",
            Self::HttpRatelimit => "http_ratelimit",
        }
    }
}

/// A zone's entrypoint ruleset for one phase (other fields tolerated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ruleset {
    /// The ruleset's id.
    pub id: String,
    /// The phase.
    pub phase: String,
    /// Bumped by every change.
    #[serde(default)]
    pub version: Option<String>,
    /// When it last changed.
    #[serde(default)]
    pub last_updated: Option<String>,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One rule. The server-assigned fields (`id`, `version`, `last_updated`) are left out of a
/// PUT when `None`. Fields lmsinfra does not model (`logging`, `exposed_credential_check`,
/// `categories`, whatever Cloudflare adds next) are kept in `extra` and written back as read,
/// so a read-modify-write never changes a rule lmsinfra does not own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The rule's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What the rule does (`rewrite`, `block`, …).
    pub action: String,
    /// When it applies (a Rules language expression).
    pub expression: String,
    /// A description; lmsinfra marks its own rules here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The action's parameters (for `rewrite`: the headers to set or remove).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_parameters: Option<serde_json::Value>,
    /// A rate-limiting rule's counting (`characteristics`, `period`, `requests_per_period`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<serde_json::Value>,
    /// A stable reference across versions.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The rule's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Every other field, as the API sent it.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Client {
    fn entrypoint_url(&self, zone_id: &str, phase: Phase) -> reqwest::Url {
        self.url(&[
            "zones",
            zone_id,
            "rulesets",
            "phases",
            phase.as_str(),
            "entrypoint",
        ])
    }

    /// A zone's entrypoint ruleset for `phase`; `None` when the zone has none yet (404 with
    /// code 10003; any other 404, such as 7003 for an unknown zone, is an error).
    pub async fn get_ruleset(&self, zone_id: &str, phase: Phase) -> Result<Option<Ruleset>, Error> {
        let url = self.entrypoint_url(zone_id, phase);
        match self.call(Call::get(url)).await {
            Ok(ruleset) => Ok(Some(ruleset)),
            Err(err) if err.status() == Some(404) && err.has_code(10003) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Replace the rules of a zone's entrypoint ruleset for `phase` (creating it if needed).
    pub async fn put_ruleset(
        &self,
        zone_id: &str,
        phase: Phase,
        rules: &[Rule],
    ) -> Result<Ruleset, Error> {
        let url = self.entrypoint_url(zone_id, phase);
        let body = serde_json::json!({ "rules": rules });
        self.call(Call::with(Method::PUT, url, Body::Json(body)))
            .await
    }
}
