//! Workers scripts: upload, settings, secrets, versions, deployments and workers.dev routes.
//!
//! As on Cloudflare, every change to a script's code, settings or secrets creates a new version
//! and a deployment of it at 100 %. Binding lists are validated strictly: an unknown binding
//! type, a duplicate name, a D1 binding to a database the account does not have, or a
//! `secret_text` without `text` is a 400. A `PATCH` that carries `bindings` replaces the whole
//! list, so a secret survives only when listed as `{"type": "inherit"}`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::envelope::{ApiError, Reply};
use super::multipart::Part;
use super::request::Call;
use super::state::{
    Account, Deployment, Module, Script, ScriptSubdomain, Settings, Version, now, sha256_hex,
};
use super::world::World;

/// Cloudflare's limit on a Worker upload (paid plan, compressed size; we count raw bytes).
pub(crate) const MAX_SCRIPT_BYTES: usize = 10 * 1024 * 1024;
/// Cloudflare's limit on one secret or environment variable.
const MAX_VAR_BYTES: usize = 5 * 1024;
const MODULE_TYPES: [&str; 8] = [
    "application/javascript+module",
    "application/javascript",
    "text/javascript",
    "text/x-python",
    "application/wasm",
    "text/plain",
    "application/octet-stream",
    "application/source-map",
];
/// The schema subset allows only these two; newer accounts also report `standard`.
const USAGE_MODELS: [&str; 2] = ["bundled", "unbound"];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(10021, message)
}

/// 10007, as wrangler expects it.
pub(crate) fn no_such_script() -> ApiError {
    ApiError::not_found(10007, "This Worker does not exist on your account.")
}

/// Lowercase letters, digits and dashes, 1 to 63 characters, no dash at either end.
pub(crate) fn valid_script_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_script_name(name: &str) -> Result<(), ApiError> {
    if valid_script_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            10016,
            format!(
                "Invalid Worker name `{name}`: use 1 to 63 lowercase letters, digits and dashes, not starting or ending with a dash"
            ),
        ))
    }
}

/// A JavaScript identifier, as binding and secret names must be.
fn valid_binding_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && name.len() <= 255
}

fn script<'a>(account: &'a Account, name: &str) -> Result<&'a Script, ApiError> {
    account.scripts.get(name).ok_or_else(no_such_script)
}

fn script_mut<'a>(account: &'a mut Account, name: &str) -> Result<&'a mut Script, ApiError> {
    account.scripts.get_mut(name).ok_or_else(no_such_script)
}

fn script_json(name: &str, script: &Script) -> Value {
    let mut out = json!({
        "id": name,
        "etag": Script::code_etag(&script.modules),
        "handlers": ["fetch"],
        "created_on": script.created_on,
        "modified_on": script.modified_on,
        "logpush": script.settings.logpush,
        "tail_consumers": script.settings.tail_consumers,
        "usage_model": script.settings.usage_model,
        "compatibility_flags": script.settings.compatibility_flags,
        "has_modules": true,
        "has_assets": false,
    });
    if !script.settings.compatibility_date.is_empty() {
        out["compatibility_date"] = json!(script.settings.compatibility_date);
    }
    out
}

fn settings_json(settings: &Settings, bindings: &[Value]) -> Value {
    let mut out = json!({
        "bindings": bindings,
        "compatibility_flags": settings.compatibility_flags,
        "usage_model": settings.usage_model,
        "logpush": settings.logpush,
        "tags": settings.tags,
        "tail_consumers": settings.tail_consumers,
    });
    if !settings.compatibility_date.is_empty() {
        out["compatibility_date"] = json!(settings.compatibility_date);
    }
    for (key, value) in [
        ("placement", &settings.placement),
        ("limits", &settings.limits),
        ("observability", &settings.observability),
    ] {
        if let Some(value) = value {
            out[key] = value.clone();
        }
    }
    out
}

/// `GET /accounts/{a}/workers/scripts`.
pub(crate) fn list(world: &World) -> Result<Reply, ApiError> {
    let scripts = world
        .state
        .account
        .scripts
        .iter()
        .map(|(name, script)| script_json(name, script))
        .collect();
    Ok(Reply::ok(Value::Array(scripts)))
}

/// Bindings after validation, with the digests of the secrets among them.
struct Resolved {
    bindings: Vec<Value>,
    secrets: BTreeMap<String, String>,
}

/// Validate a requested binding list; `base` is what `inherit` and `keep_bindings` draw from.
fn resolve_bindings(
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
                    .insert(name.to_owned(), sha256_hex(text.as_bytes()));
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
            other => {
                return Err(invalid(format!(
                    "binding `{name}` has type `{other}`, which is unknown or not supported; supported: plain_text, secret_text, json, d1, kv_namespace, r2_bucket, service, queue, durable_object_namespace, inherit"
                )));
            }
        };
        out.bindings.push(binding);
    }
    Ok(out)
}

fn check_size(name: &str, text: &str) -> Result<(), ApiError> {
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

/// Apply the settings fields present in `object` (bindings aside) onto `settings`.
fn apply_settings(settings: &mut Settings, object: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(date) = object.get("compatibility_date") {
        let date = date.as_str().filter(|d| valid_date(d)).ok_or_else(|| {
            invalid(format!(
                "`compatibility_date` {date} is not a date in the form YYYY-MM-DD"
            ))
        })?;
        if jiff::civil::Date::strptime("%Y-%m-%d", date).ok() > Some(jiff::Zoned::now().date()) {
            return Err(invalid(format!(
                "`compatibility_date` {date} is in the future"
            )));
        }
        settings.compatibility_date = date.to_owned();
    }
    if let Some(flags) = object.get("compatibility_flags") {
        settings.compatibility_flags = string_list(flags, "compatibility_flags")?;
    }
    if let Some(tags) = object.get("tags") {
        settings.tags = string_list(tags, "tags")?;
    }
    if let Some(model) = object.get("usage_model") {
        settings.usage_model = model
            .as_str()
            .filter(|m| USAGE_MODELS.contains(m))
            .ok_or_else(|| {
                invalid(format!(
                    "`usage_model` {model} is not one of bundled, unbound"
                ))
            })?
            .to_owned();
    }
    if let Some(logpush) = object.get("logpush") {
        settings.logpush = logpush
            .as_bool()
            .ok_or_else(|| invalid("`logpush` must be true or false"))?;
    }
    if let Some(consumers) = object.get("tail_consumers") {
        settings.tail_consumers = consumers
            .as_array()
            .filter(|items| {
                items
                    .iter()
                    .all(|c| c.get("service").is_some_and(Value::is_string))
            })
            .ok_or_else(|| invalid("`tail_consumers` must be an array of {\"service\": \"…\"}"))?
            .clone();
    }
    for (key, slot) in [
        ("placement", &mut settings.placement),
        ("limits", &mut settings.limits),
        ("observability", &mut settings.observability),
    ] {
        match object.get(key) {
            None => {}
            Some(Value::Object(o)) => *slot = Some(Value::Object(o.clone())),
            Some(_) => return Err(invalid(format!("`{key}` must be an object"))),
        }
    }
    Ok(())
}

fn valid_date(date: &str) -> bool {
    date.len() == 10 && jiff::civil::Date::strptime("%Y-%m-%d", date).is_ok()
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

/// A script upload's parts, checked: metadata object, module list, main module.
struct Upload {
    metadata: Map<String, Value>,
    modules: Vec<Module>,
    main_module: String,
}

fn read_upload(call: &Call, require_main_module: bool) -> Result<Upload, ApiError> {
    if call.body.len() > MAX_SCRIPT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            10027,
            format!(
                "Script body was too large: {} bytes, the limit is {MAX_SCRIPT_BYTES}",
                call.body.len()
            ),
        ));
    }
    let parts = call.parts()?;
    let metadata_part = parts
        .iter()
        .find(|p| p.name == "metadata")
        .ok_or_else(|| invalid("the upload has no `metadata` part"))?;
    let metadata = match serde_json::from_str(metadata_part.text()?) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(invalid("the `metadata` part must be a JSON object")),
        Err(e) => {
            return Err(invalid(format!(
                "the `metadata` part is not valid JSON: {e}"
            )));
        }
    };
    let modules = parts
        .iter()
        .filter(|p| p.name != "metadata")
        .map(module)
        .collect::<Result<Vec<_>, _>>()?;
    let main_module = match (metadata.get("main_module"), metadata.get("body_part")) {
        (Some(Value::String(m)), _) => m.clone(),
        (None, Some(Value::String(b))) if !require_main_module => b.clone(),
        _ => {
            return Err(invalid(
                "metadata needs `main_module` naming the entry module part",
            ));
        }
    };
    if !modules.iter().any(|m| m.name == main_module) {
        return Err(invalid(format!(
            "the main module `{main_module}` is not one of the uploaded parts"
        )));
    }
    Ok(Upload {
        metadata,
        modules,
        main_module,
    })
}

fn module(part: &Part) -> Result<Module, ApiError> {
    let content_type = part
        .content_type
        .as_deref()
        .map(|ct| ct.split(';').next().unwrap_or_default().trim())
        .filter(|ct| MODULE_TYPES.contains(ct))
        .ok_or_else(|| {
            ApiError::bad_request(
                10001,
                format!(
                    "module part `{}` has an unsupported or missing Content-Type",
                    part.name
                ),
            )
        })?;
    Ok(Module {
        name: part.name.clone(),
        content_type: content_type.to_owned(),
        content: part.text()?.to_owned(),
    })
}

/// Build the script an upload describes, on top of the existing one if any.
fn uploaded_script(
    upload: Upload,
    existing: Option<&Script>,
    account: &Account,
    strict_inherit: bool,
) -> Result<Script, ApiError> {
    let mut settings = match existing {
        Some(s) => s.settings.clone(),
        None => Settings {
            compatibility_date: String::new(),
            compatibility_flags: Vec::new(),
            usage_model: "bundled".to_owned(),
            logpush: false,
            tags: Vec::new(),
            tail_consumers: Vec::new(),
            placement: None,
            limits: None,
            observability: None,
        },
    };
    apply_settings(&mut settings, &upload.metadata)?;
    let mut resolved = resolve_bindings(
        upload.metadata.get("bindings").unwrap_or(&json!([])),
        existing,
        account,
        strict_inherit,
    )?;
    if let (Some(keep), Some(old)) = (upload.metadata.get("keep_bindings"), existing) {
        let keep = string_list(keep, "keep_bindings")?;
        for binding in &old.bindings {
            let kind = binding["type"].as_str().unwrap_or_default();
            let name = binding["name"].as_str().unwrap_or_default();
            if keep.iter().any(|k| k == kind)
                && !resolved.bindings.iter().any(|b| b["name"] == name)
            {
                resolved.bindings.push(binding.clone());
                if let Some(digest) = old.secrets.get(name) {
                    resolved.secrets.insert(name.to_owned(), digest.clone());
                }
            }
        }
    }
    let now = now();
    Ok(Script {
        created_on: existing.map_or_else(|| now.clone(), |s| s.created_on.clone()),
        modified_on: now,
        main_module: upload.main_module,
        modules: upload.modules,
        settings,
        bindings: resolved.bindings,
        secrets: resolved.secrets,
        workers_dev: existing.map(|s| s.workers_dev).unwrap_or_default(),
        versions: existing.map(|s| s.versions.clone()).unwrap_or_default(),
        deployments: existing.map(|s| s.deployments.clone()).unwrap_or_default(),
    })
}

fn message(metadata: &Map<String, Value>) -> Option<String> {
    metadata
        .get("annotations")
        .and_then(|a| a.get("workers/message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `PUT /accounts/{a}/workers/scripts/{s}`: upload and deploy.
pub(crate) fn upload(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let name = call.param(1).to_owned();
    check_script_name(&name)?;
    let upload = read_upload(call, false)?;
    let msg = message(&upload.metadata);
    let account = &world.state.account;
    let strict = call.query("bindings_inherit") == Some("strict");
    let mut script = uploaded_script(upload, account.scripts.get(&name), account, strict)?;
    script.record_version("api", "upload", msg);
    let mut reply = script_json(&name, &script);
    reply["startup_time_ms"] = json!(1);
    world.state.account.scripts.insert(name, script);
    world.save()?;
    Ok(Reply::ok(reply))
}

/// `DELETE /accounts/{a}/workers/scripts/{s}[?force=true]`.
pub(crate) fn delete(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let name = call.param(1);
    script(&world.state.account, name)?;
    let bound_by: Vec<&String> = world
        .state
        .account
        .scripts
        .iter()
        .filter(|(other, s)| {
            *other != name
                && s.bindings
                    .iter()
                    .any(|b| b["type"] == "service" && b["service"] == name)
        })
        .map(|(other, _)| other)
        .collect();
    if !bound_by.is_empty() && !call.flag("force")? {
        return Err(ApiError::bad_request(
            10064,
            format!("Worker {name} is bound by {bound_by:?}; pass force=true to delete it anyway"),
        ));
    }
    world.state.account.scripts.remove(name);
    world.save()?;
    Ok(Reply::ok(Value::Null))
}

/// `GET …/settings`.
pub(crate) fn settings_get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    Ok(Reply::ok(settings_json(&script.settings, &script.bindings)))
}

/// `PATCH …/settings` (multipart, one `settings` part).
pub(crate) fn settings_patch(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let parts = call.parts()?;
    let settings_part = match parts {
        [part] if part.name == "settings" => part,
        _ => {
            return Err(invalid(
                "the body must have exactly one part, named `settings`",
            ));
        }
    };
    let object = match serde_json::from_str(settings_part.text()?) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(invalid("the `settings` part must be a JSON object")),
        Err(e) => {
            return Err(invalid(format!(
                "the `settings` part is not valid JSON: {e}"
            )));
        }
    };
    let name = call.param(1);
    let account = &world.state.account;
    let current = script(account, name)?;
    let mut settings = current.settings.clone();
    apply_settings(&mut settings, &object)?;
    let resolved = match object.get("bindings") {
        Some(bindings) => Some(resolve_bindings(bindings, Some(current), account, false)?),
        None => None,
    };
    let script = script_mut(&mut world.state.account, name)?;
    script.settings = settings;
    if let Some(resolved) = resolved {
        script.bindings = resolved.bindings;
        script.secrets = resolved.secrets;
    }
    script.record_version("api", "settings", message(&object));
    let reply = settings_json(&script.settings, &script.bindings);
    world.save()?;
    Ok(Reply::ok(reply))
}

fn secret_json(name: &str) -> Value {
    json!({"name": name, "type": "secret_text"})
}

/// `GET …/secrets`: names and types, never values.
pub(crate) fn secret_list(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let secrets = script
        .bindings
        .iter()
        .filter(|b| b["type"] == "secret_text")
        .map(|b| secret_json(b["name"].as_str().unwrap_or_default()))
        .collect();
    Ok(Reply::ok(Value::Array(secrets)))
}

/// `PUT …/secrets` with `{name, text, type: "secret_text"}`.
pub(crate) fn secret_put(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let body = call.json_object()?;
    let name = str_field(&body, "name", "secret")?.to_owned();
    let text = str_field(&body, "text", "secret")?;
    match body.get("type") {
        Some(Value::String(t)) if t == "secret_text" => {}
        _ => return Err(invalid("secret: `type` must be \"secret_text\"")),
    }
    if !valid_binding_name(&name) {
        return Err(invalid(format!(
            "secret name `{name}` is not a valid JavaScript identifier"
        )));
    }
    check_size(&name, text)?;
    let digest = sha256_hex(text.as_bytes());
    let script = script_mut(&mut world.state.account, call.param(1))?;
    check_latest_deployed(script)?;
    match script.bindings.iter().find(|b| b["name"] == name.as_str()) {
        Some(b) if b["type"] != "secret_text" => {
            return Err(ApiError::bad_request(
                10053,
                format!(
                    "Binding name `{name}` is already in use by a {} binding",
                    b["type"]
                ),
            ));
        }
        Some(_) => {}
        None => script.bindings.push(secret_json(&name)),
    }
    script.secrets.insert(name.clone(), digest);
    script.record_version("api", "secret", None);
    world.save()?;
    Ok(Reply::ok(secret_json(&name)))
}

/// Secrets change the deployed version; Cloudflare refuses (10215) while a newer version waits
/// undeployed, because the edit would deploy it or silently fork from it.
fn check_latest_deployed(script: &Script) -> Result<(), ApiError> {
    match script.versions.last() {
        Some(latest) if script.deployed_version() != Some(latest.id.as_str()) => {
            Err(ApiError::bad_request(
                10215,
                "Secret edit failed. You attempted to modify a secret, but the latest version of your Worker isn't currently deployed.",
            ))
        }
        _ => Ok(()),
    }
}

fn secret_name(call: &Call) -> &str {
    call.param(2)
}

/// `GET …/secrets/{name}`.
pub(crate) fn secret_get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let name = secret_name(call);
    if !script.secrets.contains_key(name) {
        return Err(no_such_secret(name));
    }
    Ok(Reply::ok(secret_json(name)))
}

fn no_such_secret(name: &str) -> ApiError {
    ApiError::not_found(10056, format!("Secret `{name}` not found"))
}

/// `DELETE …/secrets/{name}`.
pub(crate) fn secret_delete(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let name = secret_name(call).to_owned();
    let script = script_mut(&mut world.state.account, call.param(1))?;
    check_latest_deployed(script)?;
    if script.secrets.remove(&name).is_none() {
        return Err(no_such_secret(&name));
    }
    script
        .bindings
        .retain(|b| !(b["type"] == "secret_text" && b["name"] == name.as_str()));
    script.record_version("api", "secret", None);
    world.save()?;
    Ok(Reply::ok(Value::Null))
}

fn version_short(version: &Version) -> Value {
    let mut out = json!({
        "id": version.id,
        "number": version.number,
        "metadata": {
            "author_email": "sandbox@example.com",
            "author_id": "fedcba9876543210fedcba9876543210",
            "created_on": version.created_on,
            "modified_on": version.created_on,
            "source": version.source,
            "hasPreview": false,
        },
    });
    if let Some(message) = &version.message {
        out["annotations"] = json!({"workers/message": message});
    }
    out
}

fn version_full(version: &Version) -> Value {
    let mut out = version_short(version);
    let mut runtime = json!({
        "compatibility_flags": version.settings.compatibility_flags,
        "usage_model": version.settings.usage_model,
    });
    if !version.settings.compatibility_date.is_empty() {
        runtime["compatibility_date"] = json!(version.settings.compatibility_date);
    }
    if let Some(limits) = &version.settings.limits {
        runtime["limits"] = limits.clone();
    }
    out["resources"] = json!({
        "bindings": version.bindings,
        "script": {"etag": version.etag, "handlers": ["fetch"], "last_deployed_from": version.source},
        "script_runtime": runtime,
    });
    out
}

/// `GET …/versions[?deployable=true][&page=&per_page=]`: `{items}`, newest first.
pub(crate) fn version_list(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let newest_first: Vec<Value> = script.versions.iter().rev().map(version_short).collect();
    let items = if call.flag("deployable")? {
        newest_first
    } else {
        call.page(10, 100)?.slice(&newest_first)
    };
    Ok(Reply::ok(json!({"items": items})))
}

/// `GET …/versions/{id}`.
pub(crate) fn version_get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let id = call.param(2);
    let version = script
        .versions
        .iter()
        .find(|v| v.id == id)
        .ok_or_else(|| ApiError::not_found(10007, format!("Version {id} does not exist")))?;
    Ok(Reply::ok(version_full(version)))
}

/// `POST …/versions`: upload a version without deploying it.
pub(crate) fn version_upload(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let name = call.param(1).to_owned();
    let upload = read_upload(call, true)?;
    let msg = message(&upload.metadata);
    let account = &world.state.account;
    let existing = script(account, &name)?;
    let draft = uploaded_script(upload, Some(existing), account, false)?;
    let version = draft.snapshot("api", msg, &now());
    let mut reply = version_full(&version);
    reply["startup_time_ms"] = json!(1);
    script_mut(&mut world.state.account, &name)?
        .versions
        .push(version);
    world.save()?;
    Ok(Reply::ok(reply))
}

fn deployment_json(d: &Deployment) -> Value {
    let mut annotations = json!({"workers/triggered_by": d.triggered_by});
    if let Some(message) = &d.message {
        annotations["workers/message"] = json!(message);
    }
    json!({
        "id": d.id,
        "created_on": d.created_on,
        "source": d.source,
        "strategy": "percentage",
        "author_email": "sandbox@example.com",
        "annotations": annotations,
        "versions": d.versions.iter().map(|(id, pct)| json!({"version_id": id, "percentage": pct})).collect::<Vec<_>>(),
    })
}

/// `GET …/deployments`: `{deployments}`, newest (the serving one) first.
pub(crate) fn deployment_list(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let deployments: Vec<Value> = script
        .deployments
        .iter()
        .rev()
        .map(deployment_json)
        .collect();
    Ok(Reply::ok(json!({"deployments": deployments})))
}

/// `POST …/deployments[?force=true]`: serve one or two versions by percentage.
pub(crate) fn deployment_create(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let body = call.json_object()?;
    let force = call.flag("force")?;
    if body.get("strategy").and_then(Value::as_str) != Some("percentage") {
        return Err(invalid("deployment: `strategy` must be \"percentage\""));
    }
    let versions: Vec<(String, f64)> = body
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .map(|v| {
                    Some((
                        v.get("version_id")?.as_str()?.to_owned(),
                        v.get("percentage")?.as_f64()?,
                    ))
                })
                .collect()
        })
        .ok_or_else(|| {
            invalid("deployment: `versions` must be [{\"version_id\": \"…\", \"percentage\": N}]")
        })?;
    let total: f64 = versions.iter().map(|(_, p)| p).sum();
    if !(1..=2).contains(&versions.len())
        || (total - 100.0).abs() > 1e-6
        || versions.iter().any(|(_, p)| !(0.0..=100.0).contains(p))
        || (versions.len() == 2 && versions[0].0 == versions[1].0)
    {
        return Err(invalid(
            "deployment: list one or two distinct versions whose percentages add up to 100",
        ));
    }
    let msg = body
        .get("annotations")
        .and_then(|a| a.get("workers/message"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let script = script_mut(&mut world.state.account, call.param(1))?;
    let mut chosen: Option<Version> = None;
    for (id, pct) in &versions {
        let version = script
            .versions
            .iter()
            .find(|v| &v.id == id)
            .ok_or_else(|| invalid(format!("deployment: version {id} does not exist")))?;
        if chosen.is_none() || *pct > 50.0 {
            chosen = Some(version.clone());
        }
    }
    let primary = chosen.ok_or_else(|| invalid("deployment: no versions"))?;
    let changed: Vec<&str> = primary
        .secrets
        .keys()
        .chain(script.secrets.keys())
        .filter(|name| primary.secrets.get(*name) != script.secrets.get(*name))
        .map(String::as_str)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !changed.is_empty() && !force {
        // wrangler reads the names after "The following secrets have changed:".
        return Err(ApiError::bad_request(
            10220,
            format!(
                "Deploying this version would revert secrets; retry with force=true to deploy it anyway. The following secrets have changed: {}",
                changed.join(", ")
            ),
        ));
    }
    script.settings = primary.settings.clone();
    script.bindings = primary.bindings.clone();
    script.secrets = primary.secrets.clone();
    script.main_module = primary.main_module.clone();
    if !primary.modules.is_empty() {
        script.modules = primary.modules.clone();
    }
    let deployment = Deployment {
        id: uuid::Uuid::new_v4().to_string(),
        created_on: now(),
        source: "api".to_owned(),
        versions,
        message: msg,
        triggered_by: "deployment".to_owned(),
    };
    script.modified_on = deployment.created_on.clone();
    let reply = deployment_json(&deployment);
    script.deployments.push(deployment);
    world.save()?;
    Ok(Reply::ok(reply))
}

fn subdomain_json(sub: ScriptSubdomain) -> Value {
    json!({"enabled": sub.enabled, "previews_enabled": sub.previews_enabled})
}

/// `GET …/scripts/{s}/subdomain`.
pub(crate) fn script_subdomain_get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    Ok(Reply::ok(subdomain_json(script.workers_dev)))
}

/// `POST …/scripts/{s}/subdomain` with `{enabled, previews_enabled?}`.
pub(crate) fn script_subdomain_post(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let body = call.json_object()?;
    let enabled = body
        .get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| invalid("`enabled` (true or false) is required"))?;
    let previews = match body.get("previews_enabled") {
        None => None,
        Some(v) => Some(
            v.as_bool()
                .ok_or_else(|| invalid("`previews_enabled` must be true or false"))?,
        ),
    };
    let script = script_mut(&mut world.state.account, call.param(1))?;
    script.workers_dev.enabled = enabled;
    if let Some(previews) = previews {
        script.workers_dev.previews_enabled = previews;
    }
    let reply = subdomain_json(script.workers_dev);
    world.save()?;
    Ok(Reply::ok(reply))
}

/// `DELETE …/scripts/{s}/subdomain`: both switches off.
pub(crate) fn script_subdomain_delete(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let script = script_mut(&mut world.state.account, call.param(1))?;
    script.workers_dev = ScriptSubdomain {
        enabled: false,
        previews_enabled: false,
    };
    let reply = subdomain_json(script.workers_dev);
    world.save()?;
    Ok(Reply::ok(reply))
}

/// `GET /accounts/{a}/workers/subdomain`.
pub(crate) fn account_subdomain_get(world: &World) -> Result<Reply, ApiError> {
    match &world.state.account.subdomain {
        Some(subdomain) => Ok(Reply::ok(json!({"subdomain": subdomain}))),
        None => Err(ApiError::not_found(
            10007,
            "This account has no workers.dev subdomain yet",
        )),
    }
}

/// `PUT /accounts/{a}/workers/subdomain` with `{subdomain}`.
pub(crate) fn account_subdomain_put(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let body = call.json_object()?;
    let subdomain = str_field(&body, "subdomain", "workers.dev subdomain")?;
    if !valid_script_name(subdomain) {
        return Err(invalid(format!(
            "`{subdomain}` is not a valid subdomain: lowercase letters, digits and dashes, at most 63"
        )));
    }
    world.state.account.subdomain = Some(subdomain.to_owned());
    world.save()?;
    Ok(Reply::ok(json!({"subdomain": subdomain})))
}
