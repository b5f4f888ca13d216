//! Script uploads (multipart: a `metadata` part plus module parts), the list, and deletion.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::bindings::resolve_bindings;
use super::settings::apply_settings;
use super::{invalid, message, script, string_list, tag, tag_latest};
use crate::envelope::{ApiError, Reply};
use crate::multipart::Part;
use crate::request::Call;
use crate::state::{Account, Module, Script, Settings, now};
use crate::world::World;

/// Cloudflare's limit on a Worker upload (paid plan, compressed size; we count raw bytes).
const MAX_SCRIPT_BYTES: usize = 10 * 1024 * 1024;

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

/// Lowercase letters, digits and dashes, 1 to 63 characters, no dash at either end.
pub(super) fn valid_script_name(name: &str) -> bool {
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

pub(super) fn script_json(name: &str, script: &Script) -> Value {
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

/// A script upload's parts, checked: metadata object, module list, main module.
pub(super) struct Upload {
    pub(super) metadata: Map<String, Value>,
    modules: Vec<Module>,
    main_module: String,
}

pub(super) fn read_upload(call: &Call, require_main_module: bool) -> Result<Upload, ApiError> {
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
pub(super) fn uploaded_script(
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
        behaviour: existing.and_then(|s| s.behaviour.clone()),
    })
}

/// `PUT /accounts/{a}/workers/scripts/{s}`: upload and deploy.
pub(crate) fn upload(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let name = call.param(1).to_owned();
    check_script_name(&name)?;
    let upload = read_upload(call, false)?;
    let msg = message(&upload.metadata);
    let tag = tag(&upload.metadata)?;
    let account = &world.state.account;
    let strict = call.query("bindings_inherit") == Some("strict");
    let mut script = uploaded_script(upload, account.scripts.get(&name), account, strict)?;
    script.record_version("api", "upload", msg);
    tag_latest(&mut script, tag);
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
