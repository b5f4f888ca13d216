//! Secret rotation, as the sandbox makes it observable: Stream signing keys, a webhook route that
//! accepts a secret or its successor, and a token route that needs a matching key pair.

use lmsinfra_sandbox::tally_signature;
use serde_json::{Value, json};

use crate::support::{Answer, Body, TestSandbox, form};

const SCRIPTS: &str = "/accounts/{account}/workers/scripts";
const KEYS: &str = "/accounts/{account}/stream/keys";
const WORKER_JS: &str = "export default { fetch() { return new Response('x') } }";

/// A request to a Worker on the sandbox's listener (no token).
fn worker(
    sandbox: &TestSandbox,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!(
        "http://{}/__sandbox/workers{path}",
        sandbox.sandbox().addr()
    );
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = reqwest::Client::new()
        .request(method, url)
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    runtime.block_on(async {
        request
            .send()
            .await
            .expect("the sandbox answers")
            .status()
            .as_u16()
    })
}

/// Upload `script` with a declared behaviour and no bindings.
pub(crate) fn upload_with_behaviour(sandbox: &TestSandbox, script: &str, behaviour: &Value) {
    let behaviour = behaviour.to_string();
    let metadata = json!({"main_module": "index.js", "bindings": []}).to_string();
    let uploaded = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/{script}"),
        form(&[
            ("metadata", Some("application/json"), &metadata),
            ("index.js", Some("application/javascript+module"), WORKER_JS),
            ("sandbox-behaviour.json", Some("text/plain"), &behaviour),
        ]),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
}

fn put_secret(sandbox: &TestSandbox, script: &str, name: &str, value: &str) {
    let put = sandbox.send(
        "PUT",
        &format!("{SCRIPTS}/{script}/secrets"),
        Body::Json(json!({"name": name, "text": value, "type": "secret_text"})),
    );
    assert_eq!(put.status, 200, "{}", put.body);
}

/// One settings PATCH: `set` secrets with values, `keep` inherited, anything else dropped.
fn patch_secrets(sandbox: &TestSandbox, script: &str, set: &[(&str, &str)], keep: &[&str]) {
    let mut bindings: Vec<Value> = set
        .iter()
        .map(|(name, text)| json!({"type": "secret_text", "name": name, "text": text}))
        .collect();
    bindings.extend(
        keep.iter()
            .map(|name| json!({"type": "inherit", "name": name})),
    );
    let settings = json!({"bindings": bindings}).to_string();
    let patched = sandbox.send(
        "PATCH",
        &format!("{SCRIPTS}/{script}/settings"),
        form(&[("settings", Some("application/json"), &settings)]),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
}

fn create_key(sandbox: &TestSandbox) -> (String, String) {
    let created: Answer = sandbox.send("POST", KEYS, Body::Json(json!({})));
    assert_eq!(created.status, 200, "{}", created.body);
    let result = &created.body["result"];
    (
        result["id"].as_str().expect("id").to_owned(),
        result["pem"].as_str().expect("pem").to_owned(),
    )
}

fn key_ids(sandbox: &TestSandbox) -> Vec<String> {
    sandbox
        .get(KEYS)
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn stream_keys_answer_their_material_once_and_are_revoked_by_id() {
    let sandbox = TestSandbox::new();
    let (first, pem) = create_key(&sandbox);
    let (second, _) = create_key(&sandbox);
    assert_ne!(first, second);
    let listed = sandbox.get(KEYS);
    assert!(
        !listed.to_string().contains(&pem),
        "the list never shows material"
    );
    assert!(listed[0]["created"].is_string(), "{listed}");
    assert_eq!(key_ids(&sandbox), [first.clone(), second.clone()]);
    let state = std::fs::read_to_string(sandbox.state_path()).expect("state");
    assert!(
        !state.contains(&pem),
        "the state file keeps no key material"
    );

    let revoked = sandbox.send("DELETE", &format!("{KEYS}/{first}"), Body::None);
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(key_ids(&sandbox), [second]);
    let again = sandbox.send("DELETE", &format!("{KEYS}/{first}"), Body::None);
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(
        sandbox.violations().is_empty(),
        "{:?}",
        sandbox.violations()
    );
}

#[test]
fn a_webhook_is_accepted_with_the_secret_or_its_successor_only() {
    let sandbox = TestSandbox::new();
    upload_with_behaviour(
        &sandbox,
        "hooks",
        &json!({"webhooks": [{"path": "/webhooks/tally", "secret": "TALLY_SIGNING_SECRET"}]}),
    );
    let body = r#"{"eventType":"FORM_RESPONSE"}"#;
    let post = |secret: &str| {
        let signature = tally_signature(secret, body.as_bytes());
        worker(
            &sandbox,
            "POST",
            "/hooks/webhooks/tally",
            &[("tally-signature", &signature)],
            body,
        )
    };
    let (old, new) = ("old-tally-secret-4f1", "new-tally-secret-9a7");
    assert_eq!(post(old), 401, "no secret set yet");
    put_secret(&sandbox, "hooks", "TALLY_SIGNING_SECRET", old);
    assert_eq!((post(old), post(new)), (200, 401));
    put_secret(&sandbox, "hooks", "TALLY_SIGNING_SECRET_NEXT", new);
    assert_eq!((post(old), post(new)), (200, 200));
    patch_secrets(&sandbox, "hooks", &[("TALLY_SIGNING_SECRET", new)], &[]);
    assert_eq!((post(old), post(new)), (401, 200));
    assert_eq!(
        worker(&sandbox, "POST", "/hooks/webhooks/tally", &[], body),
        401,
        "an unsigned body"
    );
}

#[test]
fn two_separate_secret_writes_break_stream_tokens_and_one_write_does_not() {
    let sandbox = TestSandbox::new();
    upload_with_behaviour(
        &sandbox,
        "tokens",
        &json!({"stream_tokens": [{
            "path": "/video-token",
            "key_id_secret": "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
            "pem_secret": "CLOUDFLARE_STREAM_SIGNING_KEY_PEM"
        }]}),
    );
    let token = || worker(&sandbox, "GET", "/tokens/video-token", &[], "");
    assert_eq!(token(), 401, "no key pair yet");
    let (first, first_pem) = create_key(&sandbox);
    patch_secrets(
        &sandbox,
        "tokens",
        &[
            ("CLOUDFLARE_STREAM_SIGNING_KEY_ID", &first),
            ("CLOUDFLARE_STREAM_SIGNING_KEY_PEM", &first_pem),
        ],
        &[],
    );
    assert_eq!(token(), 200);

    // Two writes: between them the Worker serves a new id with the old PEM.
    let (second, second_pem) = create_key(&sandbox);
    put_secret(
        &sandbox,
        "tokens",
        "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
        &second,
    );
    assert_eq!(
        token(),
        401,
        "a mismatched pair signs tokens nobody accepts"
    );
    put_secret(
        &sandbox,
        "tokens",
        "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
        &second_pem,
    );
    assert_eq!(token(), 200);

    // One write moves both halves together.
    let (third, third_pem) = create_key(&sandbox);
    patch_secrets(
        &sandbox,
        "tokens",
        &[
            ("CLOUDFLARE_STREAM_SIGNING_KEY_ID", &third),
            ("CLOUDFLARE_STREAM_SIGNING_KEY_PEM", &third_pem),
        ],
        &[],
    );
    assert_eq!(token(), 200);
    let revoked = sandbox.send("DELETE", &format!("{KEYS}/{third}"), Body::None);
    assert_eq!(revoked.status, 200);
    assert_eq!(token(), 401, "a revoked key signs nothing");
}
