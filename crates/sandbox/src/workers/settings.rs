//! A script's versioned settings: `GET`, and `PATCH` with one multipart `settings` part.
//!
//! `GET` describes the newest version, deployed or not, as `GET …/secrets` does on Cloudflare.
//! What a `PATCH` builds on while the newest version is undeployed, how it treats
//! `{"type": "inherit"}` and whether its answer carries the bindings are
//! [variants](crate::variants); a Durable Object binding fails it with 10061 under
//! the `do_binding` fault.

use serde_json::{Map, Value, json};

use super::bindings::resolve_bindings;
use super::{invalid, latest, message, script, script_mut, string_list, tag, tag_latest};
use crate::envelope::{ApiError, Reply};
use crate::request::Call;
use crate::state::Settings;
use crate::variants::{Inherit, PatchAnswer, PatchBase};
use crate::world::World;

/// The schema subset allows only these two; newer accounts also report `standard`.
const USAGE_MODELS: [&str; 2] = ["bundled", "unbound"];

pub(super) fn settings_json(settings: &Settings, bindings: &[Value]) -> Value {
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

/// Apply the settings fields present in `object` (bindings aside) onto `settings`.
pub(super) fn apply_settings(
    settings: &mut Settings,
    object: &Map<String, Value>,
) -> Result<(), ApiError> {
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

/// `GET …/settings`: the newest version's.
pub(crate) fn get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let (settings, bindings, _) = latest(script);
    Ok(Reply::ok(settings_json(settings, bindings)))
}

/// `PATCH …/settings` (multipart, one `settings` part).
pub(crate) fn patch(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
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
    let tag = tag(&object)?;
    let name = call.param(1);
    let variants = &world.variants;
    let account = &world.state.account;
    let current = script(account, name)?;
    let mut base = current.clone();
    if let Some(newest) = current
        .versions
        .last()
        .filter(|v| current.deployed_version() != Some(v.id.as_str()))
    {
        match variants.patch_base {
            PatchBase::Deployed => {}
            PatchBase::Newest => {
                base.main_module.clone_from(&newest.main_module);
                if !newest.modules.is_empty() {
                    base.modules.clone_from(&newest.modules);
                }
                base.settings = newest.settings.clone();
                base.bindings.clone_from(&newest.bindings);
                base.secrets.clone_from(&newest.secrets);
            }
            PatchBase::Refuse => {
                return Err(ApiError::bad_request(
                    10215,
                    "Settings edit failed. You attempted to modify settings, but the latest version of your Worker isn't currently deployed.",
                ));
            }
        }
    }
    let mut settings = base.settings.clone();
    apply_settings(&mut settings, &object)?;
    let resolved = match object.get("bindings") {
        Some(bindings) => {
            if variants.inherit == Inherit::Refused
                && let Some(inherit) = bindings
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|b| b["type"] == "inherit")
            {
                return Err(invalid(format!(
                    "binding `{}` has type `inherit`, which this endpoint does not accept",
                    inherit["name"].as_str().unwrap_or_default()
                )));
            }
            let strict = variants.inherit == Inherit::Accepted;
            let mut resolved = resolve_bindings(bindings, Some(&base), account, strict)?;
            if let Some(lost) = &variants.drop_inherited_secret {
                let sent_text = bindings
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|b| b["name"] == lost.as_str() && b.get("text").is_some());
                if !sent_text && resolved.secrets.remove(lost).is_some() {
                    resolved.bindings.retain(|b| b["name"] != lost.as_str());
                }
            }
            if call.refuse_durable_objects
                && let Some(object) = resolved
                    .bindings
                    .iter()
                    .find(|b| b["type"] == "durable_object_namespace")
            {
                return Err(ApiError::bad_request(
                    10061,
                    format!(
                        "Cannot create binding for class {} because it is not exported by your Worker",
                        object["class_name"].as_str().unwrap_or_default()
                    ),
                ));
            }
            Some(resolved)
        }
        None => None,
    };
    base.settings = settings;
    if let Some(resolved) = resolved {
        base.bindings = resolved.bindings;
        base.secrets = resolved.secrets;
    }
    base.record_version("api", "settings", message(&object));
    tag_latest(&mut base, tag);
    let mut reply = settings_json(&base.settings, &base.bindings);
    if variants.patch_answer == PatchAnswer::NoBindings
        && let Some(object) = reply.as_object_mut()
    {
        object.remove("bindings");
    }
    *script_mut(&mut world.state.account, name)? = base;
    world.save()?;
    Ok(Reply::ok(reply))
}
