//! A script's versioned settings: `GET`, and `PATCH` with one multipart `settings` part.

use serde_json::{Map, Value, json};

use super::bindings::resolve_bindings;
use super::{invalid, message, script, script_mut, string_list, tag, tag_latest};
use crate::envelope::{ApiError, Reply};
use crate::request::Call;
use crate::state::Settings;
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

/// `GET …/settings`.
pub(crate) fn get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    Ok(Reply::ok(settings_json(&script.settings, &script.bindings)))
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
    tag_latest(script, tag);
    let reply = settings_json(&script.settings, &script.bindings);
    world.save()?;
    Ok(Reply::ok(reply))
}
