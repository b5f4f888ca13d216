//! Script-level settings: `GET` and `PATCH …/script-settings` (JSON, not multipart).
//!
//! The official SDKs reach Logpush, observability (Workers Logs) and Tail Workers through these
//! endpoints. The settings belong to the script, not to a version: a `PATCH` changes them on
//! every version, creates no version and deploys nothing, so it cannot touch a binding or a
//! secret. `wrangler deploy` patches them (tags among them) after it deploys a version, and a
//! rollback does not revert them, as on Cloudflare.

use serde_json::{Map, Value, json};

use super::settings::apply_settings;
use super::{invalid, script, script_mut};
use crate::envelope::{ApiError, Reply};
use crate::request::Call;
use crate::state::Settings;
use crate::world::World;

fn script_settings_json(settings: &Settings) -> Value {
    let mut out = json!({
        "logpush": settings.logpush,
        "tail_consumers": settings.tail_consumers,
        "tags": settings.tags,
    });
    if let Some(observability) = &settings.observability {
        out["observability"] = observability.clone();
    }
    out
}

/// The fields this endpoint changes; every other setting belongs to a version.
const NON_VERSIONED: [&str; 4] = ["logpush", "tail_consumers", "observability", "tags"];

/// The script-level fields of `object`, checked, applied onto `settings`: the versioned
/// settings' own rules, with observability's shape checked first.
fn apply(settings: &mut Settings, object: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(observability) = object.get("observability") {
        checked_observability(observability)?;
    }
    apply_settings(settings, object)
}

/// `{enabled: bool, head_sampling_rate?: 0..=1, logs?: {…}}`.
fn checked_observability(value: &Value) -> Result<(), ApiError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid("`observability` must be an object"))?;
    if !object.get("enabled").is_some_and(Value::is_boolean) {
        return Err(invalid(
            "`observability.enabled` (true or false) is required",
        ));
    }
    if let Some(rate) = object.get("head_sampling_rate")
        && !rate.as_f64().is_some_and(|r| (0.0..=1.0).contains(&r))
    {
        return Err(invalid(
            "`observability.head_sampling_rate` must be a number from 0 to 1",
        ));
    }
    if object.get("logs").is_some_and(|logs| !logs.is_object()) {
        return Err(invalid("`observability.logs` must be an object"));
    }
    Ok(())
}

/// `GET …/script-settings`.
pub(crate) fn get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    Ok(Reply::ok(script_settings_json(&script.settings)))
}

/// `PATCH …/script-settings` with a JSON object; fields left out, or `null`, are kept.
pub(crate) fn patch(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let mut object = call.json_object()?;
    object.retain(|_, value| !value.is_null());
    if let Some(key) = object.keys().find(|k| !NON_VERSIONED.contains(&k.as_str())) {
        return Err(invalid(format!(
            "`{key}` is not a non-versioned setting; use …/settings or a new version"
        )));
    }
    let script = script_mut(&mut world.state.account, call.param(1))?;
    let mut settings = script.settings.clone();
    apply(&mut settings, &object)?;
    for version in &mut script.versions {
        apply(&mut version.settings, &object)?;
    }
    script.settings = settings;
    let reply = script_settings_json(&script.settings);
    world.save()?;
    Ok(Reply::ok(reply))
}
