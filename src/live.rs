//! The live state of one environment, as read from Cloudflare.
//!
//! `Live` is plain data: `gather` fills it from the API, `plan::diff` compares it with the
//! manifest. It holds only what the manifest could ask about, so a diff never needs a second read.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What one environment looks like on Cloudflare right now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Live {
    /// The account that was read.
    pub account_id: String,
    /// Every Worker script name on the account.
    pub scripts: BTreeSet<String>,
    /// The settings of each Worker the manifest declares and that exists, by script name.
    pub workers: BTreeMap<String, LiveWorker>,
    /// Every D1 database on the account.
    pub d1_databases: Vec<LiveDatabase>,
    /// Header probe results, by worker key (absent when probes were skipped).
    pub probes: BTreeMap<String, Probe>,
    /// A digest of what was read (etags, modification times, version ids), for saved plans.
    pub fingerprint: String,
}

/// A Worker's versioned settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveWorker {
    /// The script name.
    pub name: String,
    /// The compatibility date, when one is set.
    pub compatibility_date: Option<String>,
    /// The compatibility flags.
    pub compatibility_flags: Vec<String>,
    /// Every binding, secrets included (as `secret_text`, without values).
    pub bindings: Vec<LiveBinding>,
}

impl LiveWorker {
    /// The binding with this name.
    pub fn binding(&self, name: &str) -> Option<&LiveBinding> {
        self.bindings.iter().find(|b| b.name == name)
    }

    /// The names of the secrets this Worker has.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.bindings
            .iter()
            .filter(|b| b.is_secret())
            .map(|b| b.name.as_str())
    }
}

/// One binding as Cloudflare reports it: its name, its type, and the rest of its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveBinding {
    /// The name the code sees.
    pub name: String,
    /// Cloudflare's binding type (`d1`, `plain_text`, `secret_text`, …).
    pub kind: String,
    /// Every other field of the binding, as Cloudflare sent it (never a secret value: the API
    /// does not return them).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl LiveBinding {
    /// Whether this binding is a secret (`secret_text` or `secret_key`).
    pub fn is_secret(&self) -> bool {
        matches!(self.kind.as_str(), "secret_text" | "secret_key")
    }
}

/// A D1 database on the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDatabase {
    /// The database's id.
    pub uuid: String,
    /// The database's name.
    pub name: String,
}

/// The outcome of fetching a worker's probe URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Probe {
    /// The URL answered; header names are lowercase.
    Answered {
        /// The HTTP status.
        status: u16,
        /// The response headers (lowercase names; repeated headers joined with ", ").
        headers: BTreeMap<String, String>,
        /// Where a redirect pointed, when the answer was one (redirects are not followed).
        redirect: Option<String>,
    },
    /// The URL could not be fetched.
    Unreachable {
        /// Why.
        reason: String,
    },
}
