//! Versions (`{items}`, newest first) and deployments (`{deployments}`, the serving one first).
//!
//! A deployment of a version whose secrets differ from the current ones is refused with 10220
//! unless `force=true`, as a rollback would silently revert secrets.

use serde_json::{Value, json};

use super::scripts::{read_upload, uploaded_script};
use super::{invalid, message, script, script_mut};
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
pub(crate) fn list(call: &Call, world: &World) -> Result<Reply, ApiError> {
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
