//! Workers scripts: upload, settings, secrets, versions, deployments and workers.dev routes.
//!
//! As on Cloudflare, every change to a script's code, settings or secrets creates a new version
//! and a deployment of it at 100 %. Binding lists are validated strictly (see [`bindings`]). A
//! `PATCH` of settings that carries `bindings` replaces the whole list, so a secret survives
//! only when listed as `{"type": "inherit"}` or as `{name, type}` with no value. Reads of
//! settings and secrets describe the newest version, deployed or not.

mod bindings;
pub(crate) mod script_settings;
pub(crate) mod scripts;
pub(crate) mod secrets;
pub(crate) mod settings;
pub(crate) mod subdomain;
pub(crate) mod versions;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::envelope::ApiError;
use super::state::{Account, Script, Settings};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(10021, message)
}

/// 10007, as wrangler expects it.
fn no_such_script() -> ApiError {
    ApiError::not_found(10007, "This Worker does not exist on your account.")
}

fn script<'a>(account: &'a Account, name: &str) -> Result<&'a Script, ApiError> {
    account.scripts.get(name).ok_or_else(no_such_script)
}

fn script_mut<'a>(account: &'a mut Account, name: &str) -> Result<&'a mut Script, ApiError> {
    account.scripts.get_mut(name).ok_or_else(no_such_script)
}

/// The newest version's settings, bindings and secret digests (the script's own before it has
/// any version).
fn latest(script: &Script) -> (&Settings, &[Value], &BTreeMap<String, String>) {
    match script.versions.last() {
        Some(v) => (&v.settings, &v.bindings, &v.secrets),
        None => (&script.settings, &script.bindings, &script.secrets),
    }
}

fn str_field<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'a str, ApiError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what}: `{key}` (string) is required")))
}

fn string_list(value: &Value, key: &str) -> Result<Vec<String>, ApiError> {
    value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| invalid(format!("`{key}` must be an array of strings")))
}

fn message(metadata: &Map<String, Value>) -> Option<String> {
    metadata
        .get("annotations")
        .and_then(|a| a.get("workers/message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}
