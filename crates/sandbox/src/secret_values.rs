//! Secret values the sandbox was sent, in this process's memory only.
//!
//! The state file keeps a salted digest per secret and never a value, and nothing here is ever
//! saved or answered. But a declared webhook route must verify an HMAC made with the serving
//! version's secret, which needs the value: so every value that is digested
//! ([`crate::state::Account::secret_digest`]) is remembered here under its salted digest, and a
//! route finds it back from the digest its version holds. Secrets the sandbox loaded from a file
//! (digests only) have no value here, and a route that needs one treats them as unknown.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn values() -> &'static Mutex<HashMap<String, String>> {
    static VALUES: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    VALUES.get_or_init(Mutex::default)
}

/// Remember `value` under its salted `digest`.
pub(crate) fn remember(digest: &str, value: &str) {
    values()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(digest.to_owned())
        .or_insert_with(|| value.to_owned());
}

/// The value whose salted digest is `digest`, when this process was sent it.
pub(crate) fn value_of(digest: &str) -> Option<String> {
    values()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(digest)
        .cloned()
}
