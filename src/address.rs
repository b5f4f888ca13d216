//! Addresses: the one name every plan, check, parity rule and apply step gives a thing.
//!
//! An address prints as the dotted string users read and write (`d1.main`,
//! `worker.api.binding.DB`, `worker.api.rate_limit.example.com`) and parses back from it, so a
//! plan's JSON, a saved plan file and `parity.ignore` all keep one spelling. Code never builds or
//! splits those strings itself: it makes an [`Address`] and matches on it. A zone name has dots
//! of its own, so it always comes last (or, in a ruleset's address, just before the phase).
//!
//! The type lives below `manifest` and `plan` because both use it (`plan::Address` re-exports
//! it): parity names what it compares exactly as plans do.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cloudflare::Phase;

/// What a change, warning, blocker, drift or step is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `d1.KEY`: a database the manifest declares.
    D1 {
        /// The database's key in the manifest.
        key: String,
    },
    /// `d1.KEY.migration.NAME`: one migration file of a database (`NAME` without `.sql`).
    Migration {
        /// The database's key in the manifest.
        database: String,
        /// The migration's file name without `.sql`.
        name: String,
    },
    /// `worker.KEY`: a Worker the manifest declares.
    Worker {
        /// The Worker's key in the manifest.
        key: String,
    },
    /// `worker.KEY.compatibility_date` or `worker.KEY.compatibility_flags`.
    Setting {
        /// The Worker's key.
        worker: String,
        /// Which setting.
        setting: Setting,
    },
    /// `worker.KEY.binding.NAME`.
    Binding {
        /// The Worker's key.
        worker: String,
        /// The binding's name.
        name: String,
    },
    /// `worker.KEY.secret.NAME`.
    Secret {
        /// The Worker's key.
        worker: String,
        /// The secret's name.
        name: String,
    },
    /// `worker.KEY.headers`: the Worker's required response headers as a whole.
    Headers {
        /// The Worker's key.
        worker: String,
    },
    /// `worker.KEY.headers.NAME`: one required response header.
    Header {
        /// The Worker's key.
        worker: String,
        /// The header's name, as the manifest spells it.
        name: String,
    },
    /// `worker.KEY.headers_rule.ZONE`: the owned response-header rule of a Worker's routes.
    HeaderRule {
        /// The Worker's key.
        worker: String,
        /// The zone's name.
        zone: String,
    },
    /// `worker.KEY.rate_limit.ZONE`: the owned rate-limiting rule of a Worker's routes.
    RateLimit {
        /// The Worker's key.
        worker: String,
        /// The zone's name.
        zone: String,
    },
    /// `zone.ZONE.PHASE`: a zone's entrypoint ruleset in one phase (what a rules write changes).
    Ruleset {
        /// The zone's name.
        zone: String,
        /// The phase.
        phase: Phase,
    },
    /// `unmanaged.worker.SCRIPT` or `unmanaged.d1.NAME`: something that looks like this
    /// environment's but that no manifest declares.
    Unmanaged {
        /// What it is.
        kind: Unmanaged,
        /// Its name on the account.
        name: String,
    },
    /// `wrangler`: the project's wrangler configuration as a whole.
    Wrangler,
}

/// A Worker setting with an address of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `compatibility_date`.
    CompatibilityDate,
    /// `compatibility_flags`.
    CompatibilityFlags,
    /// `observability` (Workers Logs), a script-level setting.
    Observability,
}

impl Setting {
    fn as_str(self) -> &'static str {
        match self {
            Self::CompatibilityDate => "compatibility_date",
            Self::CompatibilityFlags => "compatibility_flags",
            Self::Observability => "observability",
        }
    }
}

/// What kind of thing an unmanaged address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmanaged {
    /// A Worker script.
    Worker,
    /// A D1 database.
    D1,
}

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// A segment between dots is empty.
    #[error("it has an empty part")]
    EmptyPart,
    /// The first segment is not a kind of address.
    #[error("it starts with `{0}`, not `d1`, `worker`, `zone` or `unmanaged`")]
    Root(String),
    /// The segment after `worker.KEY` is not a kind of address.
    #[error(
        "`{0}` is not one of `binding`, `secret`, `headers`, `headers_rule`, `rate_limit`, `compatibility_date`, `compatibility_flags`"
    )]
    WorkerPart(String),
    /// The phase of a ruleset address is not one lmsinfra manages.
    #[error("`{0}` is not a ruleset phase lmsinfra manages")]
    Phase(String),
    /// The address has too few or too many segments for its kind.
    #[error("it has the wrong number of parts")]
    Parts,
}

impl Address {
    /// The resource the address belongs to, as plans group changes: a Worker for anything
    /// below `worker.KEY`, a database for its migrations, the address itself otherwise.
    pub fn resource(&self) -> Cow<'_, Address> {
        if let Self::Migration { database, .. } = self {
            return Cow::Owned(Self::D1 {
                key: database.clone(),
            });
        }
        match self.worker() {
            Some(key) if !matches!(self, Self::Worker { .. }) => Cow::Owned(Self::Worker {
                key: key.to_owned(),
            }),
            _ => Cow::Borrowed(self),
        }
    }

    /// The Worker key an address below `worker.KEY` (or that address itself) names.
    pub fn worker(&self) -> Option<&str> {
        match self {
            Self::Worker { key } => Some(key),
            Self::Setting { worker, .. }
            | Self::Binding { worker, .. }
            | Self::Secret { worker, .. }
            | Self::Headers { worker }
            | Self::Header { worker, .. }
            | Self::HeaderRule { worker, .. }
            | Self::RateLimit { worker, .. } => Some(worker),
            Self::D1 { .. }
            | Self::Migration { .. }
            | Self::Ruleset { .. }
            | Self::Unmanaged { .. }
            | Self::Wrangler => None,
        }
    }

    /// The part of the address after its resource (`binding.DB` for `worker.api.binding.DB`);
    /// `None` for a resource's own address.
    pub fn within_resource(&self) -> Option<String> {
        match self {
            Self::Setting { setting, .. } => Some(setting.as_str().to_owned()),
            Self::Binding { name, .. } => Some(format!("binding.{name}")),
            Self::Secret { name, .. } => Some(format!("secret.{name}")),
            Self::Headers { .. } => Some("headers".to_owned()),
            Self::Header { name, .. } => Some(format!("headers.{name}")),
            Self::HeaderRule { zone, .. } => Some(format!("headers_rule.{zone}")),
            Self::RateLimit { zone, .. } => Some(format!("rate_limit.{zone}")),
            Self::Migration { name, .. } => Some(format!("migration.{name}")),
            Self::D1 { .. }
            | Self::Worker { .. }
            | Self::Ruleset { .. }
            | Self::Unmanaged { .. }
            | Self::Wrangler => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::D1 { key } => write!(f, "d1.{key}"),
            Self::Migration { database, name } => write!(f, "d1.{database}.migration.{name}"),
            Self::Ruleset { zone, phase } => write!(f, "zone.{zone}.{}", phase.as_str()),
            Self::Unmanaged {
                kind: Unmanaged::Worker,
                name,
            } => write!(f, "unmanaged.worker.{name}"),
            Self::Unmanaged {
                kind: Unmanaged::D1,
                name,
            } => write!(f, "unmanaged.d1.{name}"),
            Self::Wrangler => f.write_str("wrangler"),
            _ => {
                let key = self.worker().unwrap_or_default();
                match self.within_resource() {
                    Some(rest) => write!(f, "worker.{key}.{rest}"),
                    None => write!(f, "worker.{key}"),
                }
            }
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, AddressError> {
        if text == "wrangler" {
            return Ok(Self::Wrangler);
        }
        if text.split('.').any(str::is_empty) {
            return Err(AddressError::EmptyPart);
        }
        let (root, rest) = text.split_once('.').ok_or(AddressError::Parts)?;
        let owned = |s: &str| s.to_owned();
        match root {
            "d1" => match rest.split_once(".migration.") {
                Some((database, name)) => Ok(Self::Migration {
                    database: owned(database),
                    name: owned(name),
                }),
                None => Ok(Self::D1 { key: owned(rest) }),
            },
            "worker" => worker_address(rest),
            "zone" => {
                let (zone, phase) = rest.rsplit_once('.').ok_or(AddressError::Parts)?;
                let phase = [Phase::HttpResponseHeadersTransform, Phase::HttpRatelimit]
                    .into_iter()
                    .find(|p| p.as_str() == phase)
                    .ok_or_else(|| AddressError::Phase(owned(phase)))?;
                Ok(Self::Ruleset {
                    zone: owned(zone),
                    phase,
                })
            }
            "unmanaged" => match rest.split_once('.') {
                Some(("worker", name)) => Ok(Self::Unmanaged {
                    kind: Unmanaged::Worker,
                    name: owned(name),
                }),
                Some(("d1", name)) => Ok(Self::Unmanaged {
                    kind: Unmanaged::D1,
                    name: owned(name),
                }),
                _ => Err(AddressError::Parts),
            },
            other => Err(AddressError::Root(owned(other))),
        }
    }
}

/// The address whose text is `worker.` followed by `rest`.
fn worker_address(rest: &str) -> Result<Address, AddressError> {
    let worker = |key: &str| key.to_owned();
    let Some((key, part)) = rest.split_once('.') else {
        return Ok(Address::Worker { key: worker(rest) });
    };
    let setting = match part {
        "compatibility_date" => Some(Setting::CompatibilityDate),
        "compatibility_flags" => Some(Setting::CompatibilityFlags),
        "observability" => Some(Setting::Observability),
        _ => None,
    };
    if let Some(setting) = setting {
        return Ok(Address::Setting {
            worker: worker(key),
            setting,
        });
    }
    if part == "headers" {
        return Ok(Address::Headers {
            worker: worker(key),
        });
    }
    let (kind, name) = part.split_once('.').ok_or(AddressError::Parts)?;
    let (worker, name) = (worker(key), name.to_owned());
    match kind {
        "binding" => Ok(Address::Binding { worker, name }),
        "secret" => Ok(Address::Secret { worker, name }),
        "headers" => Ok(Address::Header { worker, name }),
        "headers_rule" => Ok(Address::HeaderRule { worker, zone: name }),
        "rate_limit" => Ok(Address::RateLimit { worker, zone: name }),
        other => Err(AddressError::WorkerPart(other.to_owned())),
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(|err| {
            serde::de::Error::custom(format_args!("`{text}` is not an address: {err}"))
        })
    }
}

impl schemars::JsonSchema for Address {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_prints_and_parses_as_the_same_text() {
        for text in [
            "d1.main",
            "d1.main.migration.0002_add_quiz_attempts",
            "worker.api",
            "worker.api.compatibility_date",
            "worker.api.compatibility_flags",
            "worker.api.binding.DB",
            "worker.api.secret.TALLY_SIGNING_SECRET",
            "worker.api.headers",
            "worker.api.headers.Strict-Transport-Security",
            "worker.api.headers_rule.example.com",
            "worker.api.rate_limit.api.example.co.uk",
            "zone.example.com.http_ratelimit",
            "zone.example.com.http_response_headers_transform",
            "unmanaged.worker.lms-old-staging",
            "unmanaged.d1.lms-old-staging",
            "wrangler",
        ] {
            let address: Address = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
    }

    #[test]
    fn zones_keep_their_dots() {
        assert_eq!(
            "worker.api.rate_limit.api.example.co.uk".parse(),
            Ok(Address::RateLimit {
                worker: "api".to_owned(),
                zone: "api.example.co.uk".to_owned()
            })
        );
        assert_eq!(
            "zone.example.co.uk.http_ratelimit".parse(),
            Ok(Address::Ruleset {
                zone: "example.co.uk".to_owned(),
                phase: Phase::HttpRatelimit
            })
        );
    }

    #[test]
    fn malformed_addresses_say_what_is_wrong() {
        let error = |text: &str| text.parse::<Address>().unwrap_err();
        assert_eq!(
            error("worker.api.bindings.DEBUG"),
            AddressError::WorkerPart("bindings".to_owned())
        );
        assert_eq!(error("kv.x"), AddressError::Root("kv".to_owned()));
        assert_eq!(error("worker..binding"), AddressError::EmptyPart);
        assert_eq!(error("worker.api.binding"), AddressError::Parts);
        assert_eq!(error("unmanaged.kv.x"), AddressError::Parts);
        assert_eq!(
            error("zone.example.com.http_request"),
            AddressError::Phase("http_request".to_owned())
        );
    }

    #[test]
    fn the_resource_of_anything_below_a_worker_is_the_worker() {
        let binding: Address = "worker.api.binding.DB".parse().unwrap();
        assert_eq!(binding.resource().to_string(), "worker.api");
        let database: Address = "d1.main".parse().unwrap();
        assert_eq!(database.resource().as_ref(), &database);
    }

    #[test]
    fn an_address_is_a_json_string() {
        let address = Address::Secret {
            worker: "api".to_owned(),
            name: "S".to_owned(),
        };
        let json = serde_json::to_string(&address).unwrap();
        assert_eq!(json, r#""worker.api.secret.S""#);
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), address);
        assert!(serde_json::from_str::<Address>(r#""nowhere""#).is_err());
    }
}
