//! What a Worker version answers on the sandbox's Worker traffic: declared, never executed.
//!
//! The sandbox runs no JavaScript. A script's seed may carry a `behaviour` (applied to every
//! version of that script), and a version uploaded with a module named
//! [`MODULE`] (`sandbox-behaviour.json`) declares its own, which wins. A behaviour has:
//!
//! - `routes`: `{method?, path, status = 200, headers = {}, body = ""}`; `path` is exact, or a
//!   prefix when it ends in `*`; no `method` matches every method; `{{version}}` in a body or
//!   header value becomes the answering version's id. The first match answers.
//! - `requires`: `{d1: [NAME…], secrets: [NAME…]}`, the bindings the default `/health` needs.
//! - `breaks`: `{path?, binding, equals, status = 500, body?}`: while the serving version's
//!   plain-text binding `binding` has the value `equals`, that route (every route when `path` is
//!   absent) answers `status`, as a bad configuration breaks a Worker in life.
//! - `webhooks`: `{path, secret, header = "tally-signature"}`: the route accepts (200) a body
//!   whose `header` is base64(HMAC-SHA256(value, body)) for the value of `secret` or of
//!   `<secret>_NEXT` in the answering version, and answers 401 otherwise: the receiver side of a
//!   `dual` rotation.
//! - `stream_tokens`: `{path, key_id_secret, pem_secret}`: the route answers 200 only while the
//!   answering version's key id names an existing Stream signing key and its PEM is that key's
//!   ([`crate::stream`]), and 401 otherwise: tokens signed with a mismatched pair fail.
//!
//! Without a declared `/health` route, `/health` answers `{"version": ID, "db": "ok"}` with 200
//! when every D1 binding of the version points at an existing database, every D1 binding named
//! in `requires.d1` exists and every secret in `requires.secrets` is set; otherwise 500 with
//! `"db": "error"` (or `"ok"` when only a secret is missing) and an `error` naming what is
//! missing (names only, never values). Any other unmatched path answers 404.

use axum::http::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::secret_values;
use crate::state::{Account, Behaviour, Requires, StreamToken, Version, Webhook};
use crate::stream;

/// The module name that declares a version's behaviour.
pub(crate) const MODULE: &str = "sandbox-behaviour.json";

/// One Worker answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string(),
        }
    }

    fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
            body: body.to_owned(),
        }
    }
}

/// The behaviour `version` declares: its own module, else the script's seed field, else none.
fn declared(version: &Version, seeded: Option<&Behaviour>) -> Result<Behaviour, String> {
    match version.modules.iter().find(|m| m.name == MODULE) {
        Some(module) => serde_json::from_str(&module.content)
            .map_err(|e| format!("{MODULE} does not declare a behaviour: {e}")),
        None => Ok(seeded.cloned().unwrap_or_default()),
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

fn plain_text<'a>(version: &'a Version, name: &str) -> Option<&'a str> {
    version
        .bindings
        .iter()
        .find(|b| b["type"] == "plain_text" && b["name"] == name)
        .and_then(|b| b["text"].as_str())
}

/// A request as a Worker sees it.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// What `version` answers to `request`.
pub(crate) fn answer(
    account: &Account,
    seeded: Option<&Behaviour>,
    version: &Version,
    request: &Request<'_>,
) -> Answer {
    let (method, path) = (request.method, request.path);
    let behaviour = match declared(version, seeded) {
        Ok(behaviour) => behaviour,
        Err(reason) => return Answer::text(500, &format!("error code: 1101\n{reason}")),
    };
    let fill = |text: &str| text.replace("{{version}}", &version.id);
    let broken = behaviour.breaks.iter().find(|b| {
        b.path.as_deref().is_none_or(|p| path_matches(p, path))
            && plain_text(version, &b.binding) == Some(b.equals.as_str())
    });
    if broken.is_none() {
        if let Some(webhook) = behaviour
            .webhooks
            .iter()
            .find(|w| path_matches(&w.path, path))
        {
            return verify_webhook(webhook, version, request);
        }
        if let Some(token) = behaviour
            .stream_tokens
            .iter()
            .find(|t| path_matches(&t.path, path))
        {
            return issue_token(account, token, version);
        }
    }
    if let Some(broken) = broken {
        let body = broken.body.clone().unwrap_or_else(|| {
            json!({"version": version.id, "error": format!("{} is {}", broken.binding, broken.equals)})
                .to_string()
        });
        return Answer {
            status: broken.status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: fill(&body),
        };
    }
    let route = behaviour.routes.iter().find(|r| {
        r.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path_matches(&r.path, path)
    });
    if let Some(route) = route {
        return Answer {
            status: route.status,
            headers: route
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), fill(value)))
                .collect(),
            body: fill(&route.body),
        };
    }
    if path == "/health" {
        return health(account, &behaviour.requires, version);
    }
    Answer::text(404, "Not found")
}

fn verify_webhook(webhook: &Webhook, version: &Version, request: &Request<'_>) -> Answer {
    let signature = request
        .headers
        .get(webhook.header.as_str())
        .and_then(|v| v.to_str().ok());
    let next = format!("{}_NEXT", webhook.secret);
    let accepted = [webhook.secret.as_str(), next.as_str()]
        .into_iter()
        .any(|name| {
            let value = version
                .secrets
                .get(name)
                .and_then(|digest| secret_values::value_of(digest));
            value.is_some_and(|value| {
                signature
                    == Some(stream::base64(&hmac_sha256(value.as_bytes(), request.body)).as_str())
            })
        });
    if accepted {
        Answer::json(200, &json!({"version": version.id, "accepted": true}))
    } else {
        Answer::json(
            401,
            &json!({"version": version.id, "error": format!("{} does not match {} or {next}", webhook.header, webhook.secret)}),
        )
    }
}

fn issue_token(account: &Account, token: &StreamToken, version: &Version) -> Answer {
    let pair = version
        .secrets
        .get(&token.key_id_secret)
        .zip(version.secrets.get(&token.pem_secret));
    match pair {
        Some((id, pem)) if stream::pair_matches(account, id, pem) => {
            Answer::json(200, &json!({"version": version.id, "token": "signed"}))
        }
        _ => Answer::json(
            401,
            &json!({"version": version.id, "error": format!("{} and {} do not name an existing Stream signing key and its PEM", token.key_id_secret, token.pem_secret)}),
        ),
    }
}

/// HMAC-SHA256 (RFC 2104).
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn health(account: &Account, requires: &Requires, version: &Version) -> Answer {
    let d1: Vec<(&str, &str)> = version
        .bindings
        .iter()
        .filter(|b| b["type"] == "d1")
        .map(|b| {
            (
                b["name"].as_str().unwrap_or_default(),
                b["database_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (name, id) in &d1 {
        if !account.d1_databases.iter().any(|db| db.uuid == *id) {
            problems.push(format!(
                "D1 binding {name} points at database {id}, which does not exist"
            ));
        }
    }
    for name in &requires.d1 {
        if !d1.iter().any(|(bound, _)| bound == name) {
            problems.push(format!("D1 binding {name} is not bound"));
        }
    }
    let db_ok = problems.is_empty();
    for name in &requires.secrets {
        if !version.secrets.contains_key(name) {
            problems.push(format!("secret {name} is not set"));
        }
    }
    let db = if db_ok { "ok" } else { "error" };
    if problems.is_empty() {
        Answer::json(200, &json!({"version": version.id, "db": db}))
    } else {
        Answer::json(
            500,
            &json!({"version": version.id, "db": db, "error": problems.join("; ")}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
