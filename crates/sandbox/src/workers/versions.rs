//! Versions (`{items}`, newest first) and deployments (`{deployments}`, the serving one first).
//!
//! A deployment of a version whose secrets differ from the current ones is refused with 10220
//! unless `force=true`, as a rollback would silently revert secrets.
//!
//! Only the newest [`DEPLOYABLE_WINDOW`] versions can be deployed: `?deployable=true` lists
//! those, and a deployment naming an older one is refused (10021, a sandbox-chosen code; the
//! real one is unverified), as is one whose versions bind a D1 database that no longer exists.
//! Annotations: `workers/message` is truncated to 1000 bytes, `workers/tag` above 100 bytes is
//! refused, and `workers/triggered_by` is the server's: `upload` (script or version upload),
//! `secret`, `settings`, `rollback` (a deployment putting at 100 % a version older than the
//! newest one serving) and `deployment` (any other deployment; no source confirms the word).
//! A deployment can be read and deleted by id, except the serving one.

use serde_json::{Value, json};

use super::scripts::{read_upload, uploaded_script};
use super::{invalid, message, script, script_mut, tag};
use crate::envelope::{ApiError, Reply};
use crate::request::Call;
use crate::state::{Deployment, Version, now};
use crate::world::World;

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
    let mut annotations = serde_json::Map::new();
    if let Some(message) = &version.message {
        annotations.insert("workers/message".to_owned(), json!(message));
    }
    if let Some(tag) = &version.tag {
        annotations.insert("workers/tag".to_owned(), json!(tag));
    }
    if let Some(triggered_by) = &version.triggered_by {
        annotations.insert("workers/triggered_by".to_owned(), json!(triggered_by));
    }
    if !annotations.is_empty() {
        out["annotations"] = Value::Object(annotations);
    }
    out
}

/// How many of the newest versions can be deployed.
pub(crate) const DEPLOYABLE_WINDOW: usize = 100;

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
pub(crate) fn list(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let newest_first: Vec<Value> = script.versions.iter().rev().map(version_short).collect();
    let items = if call.flag("deployable")? {
        newest_first.into_iter().take(DEPLOYABLE_WINDOW).collect()
    } else {
        call.page(10, 100)?.slice(&newest_first)
    };
    Ok(Reply::ok(json!({"items": items})))
}

/// `GET …/versions/{id}`.
pub(crate) fn get(call: &Call, world: &World) -> Result<Reply, ApiError> {
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
pub(crate) fn upload(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let name = call.param(1).to_owned();
    let upload = read_upload(call, true)?;
    let msg = message(&upload.metadata);
    let tag = tag(&upload.metadata)?;
    let account = &world.state.account;
    let existing = script(account, &name)?;
    let draft = uploaded_script(upload, Some(existing), account, false)?;
    let mut version = draft.snapshot("api", msg, &now());
    version.tag = tag;
    version.triggered_by = Some("upload".to_owned());
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
    let msg = message(&body);
    let databases: Vec<String> = world
        .state
        .account
        .d1_databases
        .iter()
        .map(|db| db.uuid.clone())
        .collect();
    let script = script_mut(&mut world.state.account, call.param(1))?;
    let window_starts = script.versions.len().saturating_sub(DEPLOYABLE_WINDOW);
    let mut chosen: Option<Version> = None;
    for (id, pct) in &versions {
        let position = script
            .versions
            .iter()
            .position(|v| &v.id == id)
            .ok_or_else(|| invalid(format!("deployment: version {id} does not exist")))?;
        if position < window_starts {
            return Err(invalid(format!(
                "deployment: version {id} is older than the newest {DEPLOYABLE_WINDOW} versions and can no longer be deployed"
            )));
        }
        let version = &script.versions[position];
        if let Some(missing) = version.bindings.iter().find(|b| {
            b["type"] == "d1"
                && !databases
                    .iter()
                    .any(|uuid| b["database_id"] == uuid.as_str())
        }) {
            return Err(invalid(format!(
                "deployment: version {id} binds D1 database {} as {}, which no longer exists",
                missing["database_id"].as_str().unwrap_or_default(),
                missing["name"].as_str().unwrap_or_default()
            )));
        }
        if chosen.is_none() || *pct > 50.0 {
            chosen = Some(version.clone());
        }
    }
    let newest_serving = script
        .deployments
        .last()
        .into_iter()
        .flat_map(|d| &d.versions)
        .filter_map(|(id, _)| script.versions.iter().find(|v| &v.id == id))
        .map(|v| v.number)
        .max();
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
        // Cloudflare's wording, from wrangler's rollback test fixture; wrangler reads the names
        // after "The following secrets have changed:".
        return Err(ApiError::bad_request(
            10220,
            format!(
                "A secret has changed since this version was active. If you are sure this is ok, add a ?force=true query parameter to allow the rollback. The following secrets have changed: {}",
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
    let triggered_by =
        if versions.len() == 1 && newest_serving.is_some_and(|newest| primary.number < newest) {
            "rollback"
        } else {
            "deployment"
        };
    let deployment = Deployment {
        id: uuid::Uuid::new_v4().to_string(),
        created_on: now(),
        source: "api".to_owned(),
        versions,
        message: msg,
        triggered_by: triggered_by.to_owned(),
    };
    script.modified_on = deployment.created_on.clone();
    let reply = deployment_json(&deployment);
    script.deployments.push(deployment);
    world.save()?;
    Ok(Reply::ok(reply))
}

fn no_such_deployment(id: &str) -> ApiError {
    ApiError::not_found(10007, format!("Deployment {id} does not exist"))
}

/// `GET …/deployments/{id}`.
pub(crate) fn deployment_get(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let script = script(&world.state.account, call.param(1))?;
    let id = call.param(2);
    let deployment = script
        .deployments
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| no_such_deployment(id))?;
    Ok(Reply::ok(deployment_json(deployment)))
}

/// `DELETE …/deployments/{id}`: any deployment but the serving one.
pub(crate) fn deployment_delete(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let script = script_mut(&mut world.state.account, call.param(1))?;
    let id = call.param(2);
    let position = script
        .deployments
        .iter()
        .position(|d| d.id == id)
        .ok_or_else(|| no_such_deployment(id))?;
    if position + 1 == script.deployments.len() {
        return Err(invalid(format!(
            "Deployment {id} is the latest deployment and serves traffic; it cannot be deleted"
        )));
    }
    script.deployments.remove(position);
    world.save()?;
    Ok(Reply::ok(Value::Null))
}
