//! Workers scripts: upload, settings, secrets, versions, deployments and workers.dev routes.
//!
//! As on Cloudflare, every change to a script's code, settings or secrets creates a new version
//! and a deployment of it at 100 %. Binding lists are validated strictly (see [`bindings`]). A
//! `PATCH` of settings that carries `bindings` replaces the whole list, so a secret survives
//! only when listed as `{"type": "inherit"}` or as `{name, type}` with no value. Reads of
//! settings and secrets describe the newest version, deployed or not.

pub(crate) mod behaviour;
mod bindings;
pub(crate) mod script_settings;
pub(crate) mod scripts;
pub(crate) mod secrets;
pub(crate) mod services;
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

/// The longest `workers/message` kept; longer ones are truncated, as Cloudflare does.
const MAX_MESSAGE_BYTES: usize = 1000;

/// The longest `workers/tag` accepted; longer ones are refused.
const MAX_TAG_BYTES: usize = 100;

/// The `workers/message` annotation, truncated to 1000 bytes on a character boundary.
fn message(metadata: &Map<String, Value>) -> Option<String> {
    let text = metadata
        .get("annotations")
        .and_then(|a| a.get("workers/message"))
        .and_then(Value::as_str)?;
    let mut end = text.len().min(MAX_MESSAGE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

/// The `workers/tag` annotation; over 100 bytes is refused (10021).
fn tag(metadata: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let Some(text) = metadata
        .get("annotations")
        .and_then(|a| a.get("workers/tag"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    if text.len() > MAX_TAG_BYTES {
        return Err(invalid(format!(
            "annotation `workers/tag` is {} bytes; the maximum is {MAX_TAG_BYTES}",
            text.len()
        )));
    }
    Ok(Some(text.to_owned()))
}

/// Put `tag` on the script's newest version (just recorded).
fn tag_latest(script: &mut Script, tag: Option<String>) {
    if let Some(version) = script.versions.last_mut() {
        version.tag = tag;
    }
}
