//! Script secrets: names and types only, values kept as SHA-256 digests and never returned.

use serde_json::{Value, json};

use super::bindings::{check_size, valid_binding_name};
use super::{invalid, latest, script, script_mut, str_field};
use crate::envelope::{ApiError, Reply};
use crate::request::Call;
use crate::state::Script;
use crate::world::World;

fn secret_json(name: &str) -> Value {
    json!({"name": name, "type": "secret_text"})
}

/// `GET …/secrets`: names and types, never values, of the newest version (wrangler 3.62.0:
/// `secret list` "will list for the latest version").
pub(crate) fn list(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let (_, bindings, _) = latest(script);
    let secrets = bindings
        .iter()
        .filter(|b| b["type"] == "secret_text")
        .map(|b| secret_json(b["name"].as_str().unwrap_or_default()))
        .collect();
    Ok(Reply::ok(Value::Array(secrets)))
}

/// `PUT …/secrets` with `{name, text, type: "secret_text"}`.
pub(crate) fn put(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
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
    let digest = world.state.account.secret_digest(text);
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

/// `GET …/secrets/{name}`, in the newest version.
pub(crate) fn get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let name = secret_name(call);
    let (_, _, secrets) = latest(script);
    if !secrets.contains_key(name) {
        return Err(no_such_secret(name));
    }
    Ok(Reply::ok(secret_json(name)))
}

fn no_such_secret(name: &str) -> ApiError {
    ApiError::not_found(10056, format!("Secret `{name}` not found"))
}

/// `DELETE …/secrets/{name}`.
pub(crate) fn delete(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
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
