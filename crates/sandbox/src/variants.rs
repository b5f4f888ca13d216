//! Behaviour variants: each plausible answer of the real API where nobody outside Cloudflare
//! can say which one it gives.
//!
//! The fidelity audit (`cloudflare-api/FIDELITY.md`) found behaviours that no documentation,
//! SDK or live capture settles. A client that is right only against one guess can lose data
//! against another, so the sandbox can play each guess on demand. Every documented behaviour is
//! the default; where nothing is documented, the default is the sandbox's long-standing choice.
//!
//! `lmsinfra sandbox --variant KEY=VALUE` (repeatable) or [`SandboxConfig::variants`]
//! selects them:
//!
//! ```text
//! settings-patch-base=deployed|newest|refuse
//!     a settings PATCH while the newest version is not the deployed one builds on the
//!     deployed version (default), builds on (and so deploys) the newest version, or is
//!     refused with 10215
//! inherit=drop-unresolvable|accepted|refused
//!     `{"type": "inherit"}` on a settings PATCH: accepted, an unresolvable one silently
//!     dropped (default, as documented for uploads); accepted, an unresolvable one failing the
//!     whole PATCH; or refused, the whole PATCH failing
//! drop-inherited-secret=NAME
//!     a settings PATCH silently drops the secret NAME even when it is inherited (a loss the
//!     client must notice)
//! patch-answer=full|no-bindings
//!     the settings PATCH answer carries the bindings (default) or leaves them out
//! rate-limit=block|sliding
//!     past the limit, every call is blocked for the whole window with `Retry-After` set to
//!     its length and code 10100 (default, as Cloudflare documents it), or a sliding window
//!     whose `Retry-After` is the time until the oldest counted request leaves it (code 1015)
//! rate-limit-headers=sent|absent
//!     answers carry `Ratelimit` and `Ratelimit-Policy` (default, as Cloudflare documents
//!     them), or not, as behind a proxy that strips them: a client cannot see the budget
//! ```
//!
//! Durable Object bindings failing the PATCH with 10061 is a fault (`do_binding`, see
//! [`super::faults`]), because it hits real accounts only some of the time.
//!
//! [`SandboxConfig::variants`]: super::SandboxConfig::variants

use std::fmt;
use std::str::FromStr;

/// The `--variant` help text.
pub const HELP: &str = "Play one variant of a behaviour the real API has not been seen to settle.

Repeat for several. KEY=VALUE, defaults first:
  settings-patch-base=deployed|newest|refuse
      a settings PATCH while the newest version is undeployed builds on the deployed
      version, builds on (and deploys) the newest one, or is refused with 10215
  inherit=drop-unresolvable|accepted|refused
      {\"type\":\"inherit\"} on a settings PATCH: unresolvable ones silently dropped,
      unresolvable ones failing the PATCH, or every inherit failing the PATCH
  drop-inherited-secret=NAME
      a settings PATCH silently drops the secret NAME even when it is inherited
  patch-answer=full|no-bindings
      the settings PATCH answer carries its bindings, or leaves them out
  rate-limit=block|sliding
      past the limit: a block for the whole window (Retry-After: 300, code 10100),
      or a sliding window (code 1015)
  rate-limit-headers=sent|absent
      answers carry Ratelimit and Ratelimit-Policy, or not (a proxy strips them)";

/// What a settings PATCH builds on while the newest version is not the deployed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatchBase {
    /// The deployed version's code, settings and bindings.
    #[default]
    Deployed,
    /// The newest version's, which the PATCH then deploys.
    Newest,
    /// Refused with 10215, as a secret edit is.
    Refuse,
}

/// How a settings PATCH treats `{"type": "inherit"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inherit {
    /// Accepted; one that names nothing is silently dropped.
    #[default]
    DropUnresolvable,
    /// Accepted; one that names nothing fails the whole PATCH.
    Accepted,
    /// Not accepted at all: the whole PATCH fails.
    Refused,
}

/// What the settings PATCH answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatchAnswer {
    /// The new settings, bindings included.
    #[default]
    Full,
    /// The new settings without `bindings`.
    NoBindings,
}

/// How the global rate limit refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitRegime {
    /// Every call blocked for a whole window once the limit is passed.
    #[default]
    Block,
    /// A sliding window: a call gets through as soon as the oldest counted one leaves it.
    Sliding,
}

/// Whether answers say how much of the rate limit is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitHeaders {
    /// `Ratelimit` and `Ratelimit-Policy` on every admitted answer.
    #[default]
    Sent,
    /// Neither.
    Absent,
}

/// The variants a sandbox plays; [`Default`] is the documented behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Variants {
    pub patch_base: PatchBase,
    pub inherit: Inherit,
    /// A secret that every settings PATCH silently drops.
    pub drop_inherited_secret: Option<String>,
    pub patch_answer: PatchAnswer,
    pub rate_limit: RateLimitRegime,
    pub rate_limit_headers: RateLimitHeaders,
}

/// One `KEY=VALUE` choice, as `--variant` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    PatchBase(PatchBase),
    Inherit(Inherit),
    DropInheritedSecret(String),
    PatchAnswer(PatchAnswer),
    RateLimit(RateLimitRegime),
    RateLimitHeaders(RateLimitHeaders),
}

/// Why a `--variant` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantError(String);

impl fmt::Display for VariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VariantError {}

fn choose<T: Copy>(key: &str, value: &str, options: &[(&str, T)]) -> Result<T, VariantError> {
    options
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            VariantError(format!(
                "`{key}={value}`: the value must be one of {}",
                names.join(", ")
            ))
        })
}

impl FromStr for Variant {
    type Err = VariantError;

    fn from_str(item: &str) -> Result<Variant, VariantError> {
        let (key, value) = item.split_once('=').ok_or_else(|| {
            VariantError(format!(
                "`{item}` has no `=`: write KEY=VALUE, e.g. `inherit=refused`"
            ))
        })?;
        Ok(match key {
            "settings-patch-base" => Variant::PatchBase(choose(
                key,
                value,
                &[
                    ("deployed", PatchBase::Deployed),
                    ("newest", PatchBase::Newest),
                    ("refuse", PatchBase::Refuse),
                ],
            )?),
            "inherit" => Variant::Inherit(choose(
                key,
                value,
                &[
                    ("drop-unresolvable", Inherit::DropUnresolvable),
                    ("accepted", Inherit::Accepted),
                    ("refused", Inherit::Refused),
                ],
            )?),
            "drop-inherited-secret" if !value.is_empty() => {
                Variant::DropInheritedSecret(value.to_owned())
            }
            "drop-inherited-secret" => {
                return Err(VariantError(
                    "`drop-inherited-secret` needs the name of a secret".to_owned(),
                ));
            }
            "patch-answer" => Variant::PatchAnswer(choose(
                key,
                value,
                &[
                    ("full", PatchAnswer::Full),
                    ("no-bindings", PatchAnswer::NoBindings),
                ],
            )?),
            "rate-limit" => Variant::RateLimit(choose(
                key,
                value,
                &[
                    ("block", RateLimitRegime::Block),
                    ("sliding", RateLimitRegime::Sliding),
                ],
            )?),
            "rate-limit-headers" => Variant::RateLimitHeaders(choose(
                key,
                value,
                &[
                    ("sent", RateLimitHeaders::Sent),
                    ("absent", RateLimitHeaders::Absent),
                ],
            )?),
            other => {
                return Err(VariantError(format!(
                    "unknown variant `{other}`: expected one of settings-patch-base, inherit, drop-inherited-secret, patch-answer, rate-limit, rate-limit-headers"
                )));
            }
        })
    }
}

impl Variants {
    /// Play `variant` (a later choice for the same key wins).
    pub fn set(&mut self, variant: Variant) {
        match variant {
            Variant::PatchBase(v) => self.patch_base = v,
            Variant::Inherit(v) => self.inherit = v,
            Variant::DropInheritedSecret(name) => self.drop_inherited_secret = Some(name),
            Variant::PatchAnswer(v) => self.patch_answer = v,
            Variant::RateLimit(v) => self.rate_limit = v,
            Variant::RateLimitHeaders(v) => self.rate_limit_headers = v,
        }
    }
}

impl FromIterator<Variant> for Variants {
    fn from_iter<I: IntoIterator<Item = Variant>>(items: I) -> Variants {
        let mut variants = Variants::default();
        items.into_iter().for_each(|v| variants.set(v));
        variants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_key_and_the_last_choice_wins() {
        let variants: Variants = [
            "settings-patch-base=refuse",
            "inherit=refused",
            "drop-inherited-secret=SESSION_KEY",
            "patch-answer=no-bindings",
            "rate-limit=sliding",
            "rate-limit-headers=absent",
            "inherit=accepted",
        ]
        .iter()
        .map(|s| s.parse::<Variant>().unwrap())
        .collect();
        assert_eq!(
            variants,
            Variants {
                patch_base: PatchBase::Refuse,
                inherit: Inherit::Accepted,
                drop_inherited_secret: Some("SESSION_KEY".to_owned()),
                patch_answer: PatchAnswer::NoBindings,
                rate_limit: RateLimitRegime::Sliding,
                rate_limit_headers: RateLimitHeaders::Absent,
            }
        );
    }

    #[test]
    fn refuses_bad_items_with_a_reason() {
        for (item, needle) in [
            ("inherit", "no `=`"),
            (
                "inherit=maybe",
                "one of drop-unresolvable, accepted, refused",
            ),
            ("colour=blue", "unknown variant"),
            ("drop-inherited-secret=", "needs the name"),
        ] {
            let error = item.parse::<Variant>().unwrap_err().to_string();
            assert!(error.contains(needle), "{item}: {error}");
        }
    }
}
