//! The account's workers.dev subdomain and each script's workers.dev switches.

use serde_json::{Value, json};

use super::scripts::valid_script_name;
use super::{invalid, script, script_mut, str_field};
use crate::envelope::{ApiError, Reply};
use crate::request::Call;
use crate::state::ScriptSubdomain;
use crate::world::World;

fn subdomain_json(sub: ScriptSubdomain) -> Value {
    json!({"enabled": sub.enabled, "previews_enabled": sub.previews_enabled})
}

/// `GET …/scripts/{s}/subdomain`.
pub(crate) fn script_get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    Ok(Reply::ok(subdomain_json(script.workers_dev)))
}

/// `POST …/scripts/{s}/subdomain` with `{enabled, previews_enabled?}`.
pub(crate) fn script_post(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
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
pub(crate) fn script_delete(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
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
pub(crate) fn account_get(world: &World) -> Result<Reply, ApiError> {
    match &world.state.account.subdomain {
        Some(subdomain) => Ok(Reply::ok(json!({"subdomain": subdomain}))),
        None => Err(ApiError::not_found(
            10007,
            "This account has no workers.dev subdomain yet",
        )),
    }
}

/// `PUT /accounts/{a}/workers/subdomain` with `{subdomain}`.
pub(crate) fn account_put(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
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
