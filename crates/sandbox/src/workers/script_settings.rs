//! A script's non-versioned settings (`…/script-settings`): logpush, tail consumers,
//! observability and tags.
//!
//! `wrangler deploy` patches these after it deploys a version. They change the script at once
//! and create no version or deployment, so a rollback does not revert them (as on Cloudflare).

use serde_json::{Value, json};

use super::settings::apply_settings;
use super::{invalid, script, script_mut};
use crate::envelope::{ApiError, Reply};
use crate::request::Call;
use crate::state::Settings;
use crate::world::World;

const NON_VERSIONED: [&str; 4] = ["logpush", "tail_consumers", "observability", "tags"];

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

/// `GET …/script-settings`.
pub(crate) fn get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    Ok(Reply::ok(script_settings_json(&script.settings)))
}

/// `PATCH …/script-settings` with a JSON object of non-versioned fields; `null` leaves one as is.
pub(crate) fn patch(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let mut body = call.json_object()?;
    body.retain(|_, value| !value.is_null());
    if let Some(key) = body.keys().find(|k| !NON_VERSIONED.contains(&k.as_str())) {
        return Err(invalid(format!(
            "`{key}` is not a non-versioned setting; use …/settings or a new version"
        )));
    }
    let script = script_mut(&mut world.state.account, call.param(1))?;
    let mut settings = script.settings.clone();
    apply_settings(&mut settings, &body)?;
    script.settings = settings;
    let reply = script_settings_json(&script.settings);
    world.save()?;
    Ok(Reply::ok(reply))
}
