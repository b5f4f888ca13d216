//! `GET /accounts/{a}/workers/services/{name}`: the legacy "service" view of a script.
//!
//! wrangler asks it before `versions upload` and `deploy`, for the Worker's tag and where it was
//! last deployed from; a missing Worker is 10090, which wrangler takes as "not created yet".

use serde_json::json;

use super::scripts::script_json;
use crate::envelope::{ApiError, Reply};
use crate::request::Call;
use crate::state::sha256_hex;
use crate::world::World;

/// `GET …/workers/services/{name}`: `{id, default_environment: {environment, script, …}, …}`.
pub(crate) fn get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let name = call.param(1);
    let script = world.state.account.scripts.get(name).ok_or_else(|| {
        ApiError::not_found(
            10090,
            format!("workers.api.error.service_not_found: Worker {name} does not exist"),
        )
    })?;
    let mut detail = script_json(name, script);
    // A stable 32-hex-digit tag per Worker, as Cloudflare's are.
    detail["tag"] = json!(sha256_hex(name.as_bytes())[..32]);
    detail["tags"] = json!(script.settings.tags);
    let deployed = script
        .deployed_version()
        .and_then(|id| script.versions.iter().find(|v| v.id == id));
    detail["last_deployed_from"] = json!(deployed.map_or("api", |v| v.source.as_str()));
    Ok(Reply::ok(json!({
        "id": name,
        "created_on": script.created_on,
        "modified_on": script.modified_on,
        "default_environment": {
            "environment": "production",
            "created_on": script.created_on,
            "modified_on": script.modified_on,
            "script": detail,
        },
        "environments": [{
            "environment": "production",
            "created_on": script.created_on,
            "modified_on": script.modified_on,
        }],
    })))
}
