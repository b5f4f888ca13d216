//! A Worker's required secrets, each a plain name or a name with a rotation policy.
//!
//! Cloudflare never returns a secret's value nor when it was set, so the manifest can only say
//! how a secret is rotated and how old it may get; lmsinfra records each rotation in the
//! annotations of the versions it creates (see `crate::rotation`). The list keeps the plain form
//! (`- TALLY_WEBHOOK_SECRET`) valid, and reads as a list of names everywhere only presence
//! matters ([`RequiredSecrets`] dereferences to the names), so the rotation policy is seen only
//! by the code that rotates and checks.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

use schemars::JsonSchema;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The required secrets of a Worker, in manifest order, with the rotation policy of those that
/// have one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequiredSecrets {
    names: Vec<String>,
    rotations: BTreeMap<String, Rotation>,
}

impl RequiredSecrets {
    /// The rotation policy of `name`, if it has one.
    pub fn rotation(&self, name: &str) -> Option<&Rotation> {
        self.rotations.get(name)
    }

    /// Every secret with a rotation policy, in manifest order, with its index in the list.
    pub fn rotated(&self) -> impl Iterator<Item = (usize, &str, &Rotation)> {
        self.names.iter().enumerate().filter_map(|(index, name)| {
            self.rotations
                .get(name)
                .map(|rotation| (index, name.as_str(), rotation))
        })
    }
}

impl From<Vec<String>> for RequiredSecrets {
    fn from(names: Vec<String>) -> Self {
        RequiredSecrets {
            names,
            rotations: BTreeMap::new(),
        }
    }
}

impl FromIterator<String> for RequiredSecrets {
    fn from_iter<I: IntoIterator<Item = String>>(names: I) -> Self {
        names.into_iter().collect::<Vec<_>>().into()
    }
}

impl<'a> IntoIterator for &'a RequiredSecrets {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.names.iter()
    }
}

impl Deref for RequiredSecrets {
    type Target = Vec<String>;

    fn deref(&self) -> &Vec<String> {
        &self.names
    }
}

impl DerefMut for RequiredSecrets {
    fn deref_mut(&mut self) -> &mut Vec<String> {
        &mut self.names
    }
}

/// A secret with a rotation policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotatedSecret {
    /// The secret's name, as the code sees it (`env.NAME`).
    pub name: String,
    /// How the secret is rotated and how old it may get.
    pub rotation: Rotation,
}

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

/// One entry as written: a name, or a name with a rotation.
enum Entry {
    Name(String),
    Rotated(RotatedSecret),
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;

        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Entry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret name, or {name, rotation}")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Entry, E> {
                Ok(Entry::Name(name.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                RotatedSecret::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Entry::Rotated)
            }
        }

        deserializer.deserialize_any(EntryVisitor)
    }
}

impl<'de> Deserialize<'de> for RequiredSecrets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;

        impl<'de> Visitor<'de> for ListVisitor {
            type Value = RequiredSecrets;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of secret names or {name, rotation}")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RequiredSecrets, A::Error> {
                let mut secrets = RequiredSecrets::default();
                while let Some(entry) = seq.next_element::<Entry>()? {
                    match entry {
                        Entry::Name(name) => secrets.names.push(name),
                        Entry::Rotated(RotatedSecret { name, rotation }) => {
                            secrets.names.push(name.clone());
                            secrets.rotations.entry(name).or_insert(rotation);
                        }
                    }
                }
                Ok(secrets)
            }
        }

        deserializer.deserialize_seq(ListVisitor)
    }
}

impl Serialize for RequiredSecrets {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Out<'a> {
            Name(&'a str),
            Rotated {
                name: &'a str,
                rotation: &'a Rotation,
            },
        }
        serializer.collect_seq(
            self.names
                .iter()
                .map(|name| match self.rotations.get(name) {
                    Some(rotation) => Out::Rotated { name, rotation },
                    None => Out::Name(name),
                }),
        )
    }
}

impl JsonSchema for RequiredSecrets {
    fn schema_name() -> Cow<'static, str> {
        "RequiredSecrets".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let rotated = generator.subschema_for::<RotatedSecret>();
        schemars::json_schema!({
            "description": "Secrets that must exist on the live Worker (names only, never values): a name, or {name, rotation}.",
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, rotated]}
        })
    }
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
        let yaml = "- TALLY_WEBHOOK_SECRET\n- name: TALLY_SIGNING_SECRET\n  rotation:\n    strategy: dual\n    max_age_days: 90\n    generation: 2\n";
        let secrets: RequiredSecrets = yaml_serde::from_str(yaml).expect("parses");
        assert_eq!(*secrets, ["TALLY_WEBHOOK_SECRET", "TALLY_SIGNING_SECRET"]);
        let rotation = secrets.rotation("TALLY_SIGNING_SECRET").expect("rotated");
        assert_eq!(rotation.strategy, Strategy::Dual);
        assert_eq!(rotation.generation, Some(2));
        let again: RequiredSecrets =
            yaml_serde::from_str(&yaml_serde::to_string(&secrets).expect("writes")).expect("reads");
        assert_eq!(again, secrets);
    }
}
