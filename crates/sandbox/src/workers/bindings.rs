//! Binding lists, checked strictly where the shape is known: a duplicate or non-identifier
//! name, a D1 binding to a database the account does not have, or a new `secret_text` without
//! `text` is a 400. A binding of a type the sandbox does not model (ai, hyperdrive, vectorize,
//! …) is kept as sent, as Cloudflare accepts them.
//!
//! Two forms keep an existing binding: `{name, type}` with nothing else keeps the base's
//! binding of that name and type (what wrangler's `secret bulk` sends for every binding it
//! does not change), and `inherit` copies a binding (and a secret's digest) from the base or a
//! named version; an `inherit` that cannot be resolved is dropped unless the caller asks for
//! strictness (`bindings_inherit=strict` on uploads).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{invalid, str_field};
use crate::envelope::ApiError;
use crate::state::{Account, Script};

/// Cloudflare's limit on one secret or environment variable.
const MAX_VAR_BYTES: usize = 5 * 1024;

/// A JavaScript identifier, as binding and secret names must be.
pub(super) fn valid_binding_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && name.len() <= 255
}

/// Bindings after validation, with the digests of the secrets among them.
pub(super) struct Resolved {
    pub(super) bindings: Vec<Value>,
    pub(super) secrets: BTreeMap<String, String>,
}

/// Validate a requested binding list; `base` is what `inherit` and `keep_bindings` draw from.
pub(super) fn resolve_bindings(
    requested: &Value,
    base: Option<&Script>,
    account: &Account,
    strict_inherit: bool,
) -> Result<Resolved, ApiError> {
    let items = requested
        .as_array()
        .ok_or_else(|| invalid("`bindings` must be an array"))?;
    let mut out = Resolved {
        bindings: Vec::new(),
        secrets: BTreeMap::new(),
    };
    for item in items {
        let object = item
            .as_object()
            .ok_or_else(|| invalid("each binding must be an object"))?;
        let name = str_field(object, "name", "binding")?;
        if !valid_binding_name(name) {
            return Err(invalid(format!(
                "binding name `{name}` is not a valid JavaScript identifier"
            )));
        }
        if out.bindings.iter().any(|b| b["name"] == name) {
            return Err(invalid(format!(
                "binding name `{name}` is used more than once"
            )));
        }
        let kind = str_field(object, "type", name)?;
        if object.len() == 2
            && kind != "inherit"
            && let Some((binding, digest)) =
                inherited(base, name, None)?.filter(|(binding, _)| binding["type"] == kind)
        {
            if let Some(digest) = digest {
                out.secrets.insert(name.to_owned(), digest);
            }
            out.bindings.push(binding);
            continue;
        }
        let copy = |keys: &[&str]| -> Result<Value, ApiError> {
            let mut binding = json!({"name": name, "type": kind});
            for key in keys {
                let (key, required) = match key.strip_suffix('?') {
                    Some(key) => (key, false),
                    None => (*key, true),
                };
                match object.get(key) {
                    Some(Value::String(s)) => binding[key] = json!(s),
                    None if !required => {}
                    _ => {
                        return Err(invalid(format!(
                            "binding `{name}` of type {kind} needs `{key}` as a string"
                        )));
                    }
                }
            }
            Ok(binding)
        };
        let binding = match kind {
            "plain_text" => {
                let binding = copy(&["text"])?;
                check_size(name, binding["text"].as_str().unwrap_or_default())?;
                binding
            }
            "secret_text" => {
                let text = object.get("text").and_then(Value::as_str).ok_or_else(|| {
                    invalid(format!(
                        "secret_text binding `{name}` has no `text`; to keep an existing secret, list it as {{\"type\": \"inherit\", \"name\": \"{name}\"}}"
                    ))
                })?;
                check_size(name, text)?;
                out.secrets
                    .insert(name.to_owned(), account.secret_digest(text));
                json!({"name": name, "type": "secret_text"})
            }
            "json" => {
                let value = object
                    .get("json")
                    .ok_or_else(|| invalid(format!("json binding `{name}` needs `json`")))?;
                json!({"name": name, "type": "json", "json": value})
            }
            "d1" => {
                let id = object
                    .get("database_id")
                    .or_else(|| object.get("id"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("d1 binding `{name}` needs `database_id`")))?;
                if !account.d1_databases.iter().any(|db| db.uuid == id) {
                    return Err(invalid(format!(
                        "d1 binding `{name}` references database {id}, which does not exist on this account"
                    )));
                }
                json!({"name": name, "type": "d1", "database_id": id})
            }
            "kv_namespace" => copy(&["namespace_id"])?,
            "r2_bucket" => copy(&["bucket_name", "jurisdiction?"])?,
            "service" => copy(&["service", "environment?", "entrypoint?"])?,
            "queue" => copy(&["queue_name"])?,
            "ratelimit" => ratelimit(name, object)?,
            "durable_object_namespace" => copy(&[
                "class_name",
                "script_name?",
                "environment?",
                "namespace_id?",
            ])?,
            "inherit" => {
                let old_name = match object.get("old_name") {
                    None => name,
                    Some(Value::String(s)) => s.as_str(),
                    Some(_) => {
                        return Err(invalid(format!(
                            "inherit binding `{name}`: `old_name` must be a string"
                        )));
                    }
                };
                let version = match object.get("version_id") {
                    None => None,
                    Some(Value::String(s)) if s == "latest" => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(_) => {
                        return Err(invalid(format!(
                            "inherit binding `{name}`: `version_id` must be a string"
                        )));
                    }
                };
                match inherited(base, old_name, version)? {
                    Some((mut binding, digest)) => {
                        binding["name"] = json!(name);
                        if let Some(digest) = digest {
                            out.secrets.insert(name.to_owned(), digest);
                        }
                        binding
                    }
                    None if strict_inherit => {
                        return Err(invalid(format!(
                            "inherit binding `{name}`: the previous version has no binding `{old_name}`"
                        )));
                    }
                    None => continue,
                }
            }
            _ => item.clone(),
        };
        out.bindings.push(binding);
    }
    Ok(out)
}

/// A Workers rate-limiting binding: `namespace_id` a positive integer (as a string), and
/// `simple: {limit, period}` with a positive limit and a period of 10 or 60 seconds.
fn ratelimit(name: &str, object: &serde_json::Map<String, Value>) -> Result<Value, ApiError> {
    let namespace = object
        .get("namespace_id")
        .and_then(Value::as_str)
        .filter(|id| id.parse::<u64>().is_ok_and(|id| id > 0))
        .ok_or_else(|| {
            invalid(format!(
                "ratelimit binding `{name}` needs `namespace_id`, a positive integer as a string"
            ))
        })?;
    let simple = object.get("simple");
    let limit = simple
        .and_then(|s| s.get("limit"))
        .and_then(Value::as_u64)
        .filter(|limit| *limit > 0);
    let period = simple
        .and_then(|s| s.get("period"))
        .and_then(Value::as_u64)
        .filter(|period| [10, 60].contains(period));
    let (Some(limit), Some(period)) = (limit, period) else {
        return Err(invalid(format!(
            "ratelimit binding `{name}` needs `simple: {{\"limit\": N, \"period\": 10 or 60}}`"
        )));
    };
    Ok(json!({
        "name": name,
        "type": "ratelimit",
        "namespace_id": namespace,
        "simple": {"limit": limit, "period": period},
    }))
}

pub(super) fn check_size(name: &str, text: &str) -> Result<(), ApiError> {
    if text.len() > MAX_VAR_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            10021,
            format!(
                "binding `{name}` is {} bytes; the limit is {MAX_VAR_BYTES}",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// The binding `old_name` (and its secret digest) in the base script or one of its versions.
fn inherited(
    base: Option<&Script>,
    old_name: &str,
    version: Option<&str>,
) -> Result<Option<(Value, Option<String>)>, ApiError> {
    let Some(script) = base else {
        return Ok(None);
    };
    let (bindings, secrets) = match version {
        None => (&script.bindings, &script.secrets),
        Some(id) => {
            let v = script
                .versions
                .iter()
                .find(|v| v.id == id)
                .ok_or_else(|| invalid(format!("inherit: version {id} does not exist")))?;
            (&v.bindings, &v.secrets)
        }
    };
    Ok(bindings
        .iter()
        .find(|b| b["name"] == old_name)
        .map(|b| (b.clone(), secrets.get(old_name).cloned())))
}
