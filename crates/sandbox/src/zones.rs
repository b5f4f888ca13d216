//! Zones and their phase entrypoint rulesets (response header transforms, rate limiting).
//!
//! A `PUT` replaces the whole rule list; the server stamps each rule with a version and a time,
//! and bumps the ruleset's version, as Cloudflare does. A rule sent back with the id of one of
//! the ruleset's rules keeps it; others get a new id, and `ref` defaults to the id. Rate
//! limiting rules must count by `cf.colo.id` and fit the zone's plan ([`super::zone_plan`]).
//! Zones are listed with the account that owns them and can be filtered by `account.id`.
//! Fields the sandbox does not know (`logging`, `exposed_credential_check`, …) are stored and
//! returned as sent.

use serde_json::{Map, Value, json};

use super::envelope::{ApiError, Reply};
use super::request::Call;
use super::state::{Ruleset, State, Zone, new_tag, now};
use super::world::World;
use super::zone_plan::Plan;

const PHASES: [&str; 2] = ["http_response_headers_transform", "http_ratelimit"];

fn zone_json(zone: &Zone, state: &State) -> Value {
    json!({
        "id": zone.id,
        "name": zone.name,
        "status": "active",
        "paused": false,
        "type": "full",
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": [],
        "original_registrar": null,
        "original_dnshost": null,
        "created_on": zone.created_on,
        "modified_on": zone.created_on,
        "activated_on": zone.created_on,
        "meta": {"step": 4, "custom_certificate_quota": 0, "page_rule_quota": 3, "phishing_detected": false},
        "owner": {"id": state.user.id, "type": "user", "name": state.user.email},
        "account": zone.account.clone().unwrap_or_else(|| json!({"id": state.account.id, "name": state.account.name})),
        "permissions": ["#zone:read", "#zone:edit"],
        "plan": zone.plan.clone().unwrap_or_else(Plan::default_json),
    })
}

/// `GET /zones[?name=][&account.id=][&page=&per_page=]`: 20 per page by default, at most 50.
pub(crate) fn list(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let page = call.page(20, 50)?;
    let name = call.query("name");
    let account = call.query("account.id");
    let all: Vec<Value> = world
        .state
        .zones
        .iter()
        .filter(|z| name.is_none_or(|n| z.name == n))
        .map(|z| zone_json(z, &world.state))
        .filter(|z| account.is_none_or(|a| z["account"]["id"] == a))
        .collect();
    Ok(Reply::page(page.slice(&all), &page, all.len()))
}

fn phase(call: &Call) -> Result<&str, ApiError> {
    let phase = call.param(1);
    if PHASES.contains(&phase) {
        Ok(phase)
    } else {
        Err(ApiError::bad_request(
            10003,
            format!(
                "phase `{phase}` is not supported; supported: {}",
                PHASES.join(", ")
            ),
        ))
    }
}

fn zone_mut<'a>(world: &'a mut World, id: &str) -> Result<&'a mut Zone, ApiError> {
    world
        .state
        .zones
        .iter_mut()
        .find(|z| z.id == id)
        .ok_or_else(|| {
            ApiError::not_found(
                7003,
                "Could not route to the zone: it does not exist on this account",
            )
        })
}

fn ruleset_json(ruleset: &Ruleset, phase: &str) -> Value {
    json!({
        "id": ruleset.id,
        "name": "default",
        "description": ruleset.description,
        "kind": "zone",
        "phase": phase,
        "version": ruleset.version.to_string(),
        "last_updated": ruleset.last_updated,
        "rules": ruleset.rules,
    })
}

/// Another client's write to a zone entrypoint ruleset, made right after the sandbox answers
/// the `after_read`-th read (counting from 1, answered or 404) of `phase` on any zone: the rule is
/// appended and the version bumped, as that client's `PUT` would. Lets a test place a concurrent
/// change between a client's read and its write without racing it.
#[derive(Debug, Clone)]
pub struct Interleave {
    /// The phase whose reads are counted, e.g. `http_ratelimit`.
    pub phase: String,
    /// The read after which the write happens.
    pub after_read: u64,
    /// The rule the other client adds.
    pub rule: Value,
}

/// `GET /zones/{z}/rulesets/phases/{phase}/entrypoint`.
pub(crate) fn get(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let phase = phase(call)?.to_owned();
    let zone = zone_mut(world, call.param(0))?;
    let answer = match zone.rulesets.get(&phase) {
        Some(ruleset) => Ok(Reply::ok(ruleset_json(ruleset, &phase))),
        None => Err(ApiError::not_found(
            10003,
            format!("could not find entrypoint ruleset in the {phase} phase"),
        )),
    };
    interleave(call.param(0), &phase, world)?;
    answer
}

/// Make the pending concurrent write if this read is the one it waits for.
fn interleave(zone_id: &str, phase: &str, world: &mut World) -> Result<(), ApiError> {
    let Some((pending, reads)) = world.interleave.as_mut().filter(|(i, _)| i.phase == phase) else {
        return Ok(());
    };
    *reads += 1;
    if *reads != pending.after_read {
        return Ok(());
    }
    let rule = pending.rule.clone();
    let zone = zone_mut(world, zone_id)?;
    let previous = zone.rulesets.get(phase);
    let version = previous.map_or(1, |r| r.version + 1);
    let updated = now();
    let mut rules = previous.map(|r| r.rules.clone()).unwrap_or_default();
    rules.push(checked_rule(&rule, phase, version, &updated, &[])?);
    let ruleset = Ruleset {
        id: previous.map_or_else(new_tag, |r| r.id.clone()),
        description: previous.map(|r| r.description.clone()).unwrap_or_default(),
        version,
        last_updated: updated,
        rules,
    };
    zone.rulesets.insert(phase.to_owned(), ruleset);
    world.save()
}

/// `PUT /zones/{z}/rulesets/phases/{phase}/entrypoint`: replace the rule list.
pub(crate) fn put(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let phase = phase(call)?.to_owned();
    let body = call.json_object()?;
    let rules = body
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request(20021, "`rules` (array) is required"))?;
    let description = match body.get("description") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                20021,
                "`description` must be a string",
            ));
        }
    };
    let zone = zone_mut(world, call.param(0))?;
    let plan = Plan::of(zone.plan.as_ref()).map_err(|e| ApiError::bad_request(20021, e))?;
    let previous = zone.rulesets.get(&phase);
    let version = previous.map_or(1, |r| r.version + 1);
    let updated = now();
    let known: Vec<&str> = previous
        .into_iter()
        .flat_map(|r| &r.rules)
        .filter_map(|r| r["id"].as_str())
        .collect();
    let rules = rules
        .iter()
        .map(|rule| checked_rule(rule, &phase, version, &updated, &known))
        .collect::<Result<Vec<_>, _>>()?;
    if phase == "http_ratelimit" {
        plan.check_rate_limit_rules(&rules)?;
    }
    let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    if let Some(twice) = ids
        .iter()
        .enumerate()
        .find(|(i, id)| ids[..*i].contains(id))
    {
        return Err(ApiError::bad_request(
            20021,
            format!("invalid rule: the id {} is used by two rules", twice.1),
        ));
    }
    let ruleset = Ruleset {
        id: previous.map_or_else(new_tag, |r| r.id.clone()),
        description: description
            .unwrap_or_else(|| previous.map(|r| r.description.clone()).unwrap_or_default()),
        version,
        last_updated: updated,
        rules,
    };
    let reply = ruleset_json(&ruleset, &phase);
    zone.rulesets.insert(phase, ruleset);
    world.save()?;
    Ok(Reply::ok(reply))
}

/// A rule as stored: checked, with an id (the one sent when `known` has it), version and time.
fn checked_rule(
    rule: &Value,
    phase: &str,
    version: u64,
    updated: &str,
    known: &[&str],
) -> Result<Value, ApiError> {
    let bad = |why: &str| ApiError::bad_request(20021, format!("invalid rule: {why}"));
    let object: &Map<String, Value> = rule
        .as_object()
        .ok_or_else(|| bad("each rule must be an object"))?;
    let action = object
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`action` is required"))?;
    let allowed: &[&str] = match phase {
        "http_response_headers_transform" => &["rewrite"],
        _ => &[
            "block",
            "challenge",
            "js_challenge",
            "managed_challenge",
            "log",
        ],
    };
    if !allowed.contains(&action) {
        return Err(bad(&format!(
            "action `{action}` is not allowed in {phase}; allowed: {}",
            allowed.join(", ")
        )));
    }
    if object
        .get("expression")
        .and_then(Value::as_str)
        .is_none_or(|e| e.trim().is_empty())
    {
        return Err(bad("`expression` must be a non-empty string"));
    }
    if phase == "http_ratelimit" && !object.get("ratelimit").is_some_and(Value::is_object) {
        return Err(bad("rules in http_ratelimit need a `ratelimit` object"));
    }
    let mut out = object.clone();
    let id = match out.remove("id") {
        Some(Value::String(id)) if known.contains(&id.as_str()) => id,
        _ => new_tag(),
    };
    for key in ["version", "last_updated"] {
        out.remove(key);
    }
    out.insert("id".into(), json!(id));
    out.insert("version".into(), json!(version.to_string()));
    out.insert("last_updated".into(), json!(updated));
    out.entry("enabled").or_insert(json!(true));
    out.entry("ref").or_insert_with(|| json!(id));
    Ok(Value::Object(out))
}
