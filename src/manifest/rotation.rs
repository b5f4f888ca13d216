//! A required secret's rotation policy: `{ name: NAME, rotation: { … } }` under a Worker's
//! `secrets`.
//!
//! Cloudflare never returns a secret's value nor when it was set, so the manifest can only say
//! how a secret is rotated and how old it may get; lmsinfra records each rotation in the
//! annotations of the versions it creates (see `crate::rotation`). The plain form
//! (`- TALLY_WEBHOOK_SECRET`) stays valid, and the policy is seen only by the code that rotates
//! and checks (`Secrets::rotation`, `Secrets::rotated`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a secret is rotated, and the policy `check` enforces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// `dual`: the Worker accepts `NAME` or `NAME_NEXT` while a provider switches;
    /// `stream_signing_key`: a Stream signing key whose id moves with it.
    pub strategy: Strategy,
    /// `check` fails once the last rotation is older than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    /// Raise it to ask for a rotation: plan shows "rotation requested" and apply needs a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// `stream_signing_key` only: the secret holding the key's id, rotated in the same write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id_secret: Option<String>,
    /// `stream_signing_key` only: how long the old key stays valid after `stage` (at least the
    /// longest token lifetime), like `24h`, `90m` or `7d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    /// What `check` does for a secret no rotation was recorded for (`warn` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_age: Option<UnknownAge>,
    /// `check` fails once a rotation has stayed between phases longer than this (`7d` by
    /// default), like `24h` or `3d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck_after: Option<String>,
}

/// How a secret is rotated without downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Stage `NAME_NEXT`, switch the provider, promote it to `NAME`.
    Dual,
    /// Create a Stream signing key, set its id and PEM together, revoke the old key later.
    StreamSigningKey,
}

impl Strategy {
    /// The name the manifest uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dual => "dual",
            Self::StreamSigningKey => "stream_signing_key",
        }
    }
}

/// What `check` does with a rotated secret whose age is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownAge {
    /// Report it and pass.
    Warn,
    /// Fail `check`.
    Fail,
}

/// The default `stuck_after`.
pub const DEFAULT_STUCK_AFTER: &str = "7d";

/// `N` followed by `m`, `h` or `d`, as a number of seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let unit = text
        .chars()
        .last()
        .ok_or_else(|| "a duration is a number and a unit, like 24h".to_owned())?;
    let seconds = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("`{text}` has no unit: use m, h or d, like 24h")),
    };
    let number: i64 = text[..text.len() - 1]
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a positive whole number of {unit}"))?;
    number
        .checked_mul(seconds)
        .ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_minutes_hours_and_days() {
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        for bad in ["", "24", "h", "0h", "-1d", "1.5h", "1w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_names_and_rotations_read_back_as_written() {
        use crate::manifest::model::Secrets;
        let yaml = "- TALLY_WEBHOOK_SECRET\n- name: TALLY_SIGNING_SECRET\n  rotation:\n    strategy: dual\n    max_age_days: 90\n    generation: 2\n";
        let secrets: Secrets = yaml_serde::from_str(yaml).expect("parses");
        let names: Vec<&String> = secrets.iter().collect();
        assert_eq!(names, ["TALLY_WEBHOOK_SECRET", "TALLY_SIGNING_SECRET"]);
        let rotation = secrets.rotation("TALLY_SIGNING_SECRET").expect("rotated");
        assert_eq!(rotation.strategy, Strategy::Dual);
        assert_eq!(rotation.generation, Some(2));
        let again: Secrets =
            yaml_serde::from_str(&yaml_serde::to_string(&secrets).expect("writes")).expect("reads");
        assert_eq!(again, secrets);
    }
}
