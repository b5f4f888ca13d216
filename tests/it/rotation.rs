//! Secret rotation: the sandbox makes it observable (Stream signing keys, a webhook route that
//! accepts a secret or its successor, a token route that needs a matching key pair), and
//! `lmsinfra rotate` and `lmsinfra secrets` run through it under traffic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lmsinfra_sandbox::tally_signature;
use serde_json::{Value, json};

use crate::support::{Answer, Body, Lmsinfra, Project, Run, TestSandbox, form};

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

/// Staging with rotation policies for the Tally signing secret and the Stream key pair.
fn rotating_project() -> Project {
    let project = Project::new();
    project.edit("staging", |text| {
        text.replace(
            "      - TALLY_SIGNING_SECRET\n",
            "      - name: TALLY_SIGNING_SECRET\n        rotation: { strategy: dual, max_age_days: 90, generation: 1 }\n",
        )
        .replace(
            "      - CLOUDFLARE_STREAM_SIGNING_KEY_PEM\n",
            "      - name: CLOUDFLARE_STREAM_SIGNING_KEY_PEM\n        rotation:\n          strategy: stream_signing_key\n          key_id_secret: CLOUDFLARE_STREAM_SIGNING_KEY_ID\n          overlap: 24h\n          max_age_days: 180\n",
        )
    });
    project
}

/// Staging's API Worker, declared to verify Tally webhooks and to sign Stream tokens.
fn staging_worker(sandbox: &TestSandbox) {
    // The seed's own routes stay (the manifest's smoke checks ask for them after each apply);
    // the Tally webhook is answered by the signature check instead of the seed's fixed 401.
    let seed: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::audited_seed()).expect("the audited seed"),
    )
    .expect("seed JSON");
    let mut behaviour = seed["account"]["scripts"]["lms-api-staging"]["behaviour"].clone();
    behaviour["routes"]
        .as_array_mut()
        .expect("the seed's routes")
        .retain(|route| route["path"] != "/webhooks/tally");
    behaviour["webhooks"] = json!([{"path": "/webhooks/tally", "secret": "TALLY_SIGNING_SECRET"}]);
    behaviour["stream_tokens"] = json!([{
        "path": "/video-token",
        "key_id_secret": "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
        "pem_secret": "CLOUDFLARE_STREAM_SIGNING_KEY_PEM"
    }]);
    upload_with_behaviour(sandbox, "lms-api-staging", &behaviour);
}

fn rotate(sandbox: &TestSandbox, project: &Project, args: &[&str]) -> Lmsinfra {
    // At the most verbose level, so the logs are checked for values too.
    Lmsinfra::new(sandbox)
        .project(project)
        .args(["-vvv", "rotate", "staging"])
        .args(args)
}

/// Requests every few milliseconds on another thread until stopped: the statuses seen.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u16>>,
}

impl Traffic {
    /// `request` makes each request from a client and the Worker's base URL.
    fn start(
        sandbox: &TestSandbox,
        request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + 'static,
    ) -> Traffic {
        let base = worker_base(sandbox);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                let sent = request(&client, &base).send();
                let status = runtime
                    .block_on(sent)
                    .expect("the sandbox answers")
                    .status();
                statuses.push(status.as_u16());
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
            statuses
        });
        Traffic { stop, thread }
    }

    fn stop(self) -> Vec<u16> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the traffic thread ends")
    }
}

fn worker_base(sandbox: &TestSandbox) -> String {
    format!(
        "http://{}/__sandbox/workers/lms-api-staging",
        sandbox.sandbox().addr()
    )
}

const WEBHOOK_BODY: &str = r#"{"eventType":"FORM_RESPONSE"}"#;

fn signed_webhook(client: &reqwest::Client, base: &str, secret: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/webhooks/tally"))
        .header(
            "tally-signature",
            tally_signature(secret, WEBHOOK_BODY.as_bytes()),
        )
        .body(WEBHOOK_BODY)
}

/// One webhook signed with `secret`, outside the traffic: its status.
fn webhook_now(sandbox: &TestSandbox, secret: &str) -> u16 {
    let signature = tally_signature(secret, WEBHOOK_BODY.as_bytes());
    worker(
        sandbox,
        "POST",
        "/lms-api-staging/webhooks/tally",
        &[("tally-signature", &signature)],
        WEBHOOK_BODY,
    )
}

fn assert_no_leak(run: &Run, values: &[&str]) {
    for value in values {
        assert!(
            !run.stdout.contains(value) && !run.stderr.contains(value),
            "a value leaked\n{run}"
        );
    }
}

#[test]
fn a_dual_rotation_under_webhook_traffic_rejects_nothing_and_ends_on_the_new_value() {
    let sandbox = TestSandbox::new();
    let project = rotating_project();
    staging_worker(&sandbox);
    let (old, new) = ("tally-old-canary-5e1f0c", "tally-new-canary-a93b27");
    put_secret(&sandbox, "lms-api-staging", "TALLY_SIGNING_SECRET", old);
    let provider = Arc::new(Mutex::new(old.to_owned()));
    let signing = provider.clone();
    let traffic = Traffic::start(&sandbox, move |client, base| {
        let secret = signing.lock().expect("provider").clone();
        signed_webhook(client, base, &secret)
    });
    std::thread::sleep(std::time::Duration::from_millis(30));
    let staged = rotate(
        &sandbox,
        &project,
        &[
            "TALLY_SIGNING_SECRET",
            "--phase",
            "stage",
            "--secret",
            "TALLY_SIGNING_SECRET=env:NEW_TALLY",
            "--auto-approve",
        ],
    )
    .env("NEW_TALLY", new)
    .code(0)
    .run();
    assert!(staged.stdout.contains("In Tally"), "{staged}");
    // The operator switches Tally at some moment between the two phases.
    std::thread::sleep(std::time::Duration::from_millis(u64::from(
        rand::random::<u8>() % 40,
    )));
    *provider.lock().expect("provider") = new.to_owned();
    std::thread::sleep(std::time::Duration::from_millis(u64::from(
        rand::random::<u8>() % 40,
    )));
    let promoted = rotate(
        &sandbox,
        &project,
        &[
            "TALLY_SIGNING_SECRET",
            "--phase",
            "promote",
            "--secret",
            "TALLY_SIGNING_SECRET=env:NEW_TALLY",
            "--auto-approve",
        ],
    )
    .env("NEW_TALLY", new)
    .code(0)
    .run();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let statuses = traffic.stop();
    assert!(statuses.len() > 10, "only {} requests", statuses.len());
    assert!(
        statuses.iter().all(|s| *s == 200),
        "a webhook was refused: {statuses:?}"
    );
    assert_eq!(webhook_now(&sandbox, old), 401, "the old value is gone");
    assert_eq!(webhook_now(&sandbox, new), 200);
    let names: Vec<String> = sandbox
        .get(&format!("{SCRIPTS}/lms-api-staging/secrets"))
        .as_array()
        .expect("secrets")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect();
    assert!(
        !names.contains(&"TALLY_SIGNING_SECRET_NEXT".to_owned()),
        "{names:?}"
    );
    for run in [&staged, &promoted] {
        assert_no_leak(run, &[old, new]);
    }
    let versions = sandbox.get(&format!("{SCRIPTS}/lms-api-staging/versions"));
    let annotations = versions.to_string();
    assert!(
        annotations.contains("lmsinfra rotate TALLY_SIGNING_SECRET generation 1 phase promote"),
        "{versions}"
    );
    assert!(!annotations.contains(old) && !annotations.contains(new));
    let state = std::fs::read_to_string(sandbox.state_path()).expect("state");
    assert!(!state.contains(old) && !state.contains(new));
}

#[test]
fn a_stream_key_rotation_under_token_traffic_fails_no_token_and_writes_the_pair_once() {
    let sandbox = TestSandbox::new();
    let project = rotating_project();
    staging_worker(&sandbox);
    // A first rotation, with no earlier key on record, gives the Worker a working pair.
    sandbox
        .sandbox()
        .clock()
        .set("2026-01-01T00:00:00Z".parse().expect("time"));
    let first = rotate(
        &sandbox,
        &project,
        &["CLOUDFLARE_STREAM_SIGNING_KEY_PEM", "--auto-approve"],
    )
    .code(0)
    .run();
    assert!(first.stdout.contains("No earlier key"), "{first}");
    let first_key = key_ids(&sandbox);
    assert_eq!(first_key.len(), 1);
    let before = sandbox.get(&format!("{SCRIPTS}/lms-api-staging/versions"))["items"]
        .as_array()
        .expect("versions")
        .len();

    let traffic = Traffic::start(&sandbox, |client, base| {
        client.get(format!("{base}/video-token"))
    });
    std::thread::sleep(std::time::Duration::from_millis(30));
    sandbox.sandbox().clock().set(jiff::Timestamp::now());
    let staged = rotate(
        &sandbox,
        &project,
        &[
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
            "--phase",
            "stage",
            "--auto-approve",
        ],
    )
    .code(0)
    .run();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let statuses = traffic.stop();
    assert!(statuses.len() > 10, "only {} requests", statuses.len());
    assert!(
        statuses.iter().all(|s| *s == 200),
        "a token failed: {statuses:?}"
    );
    let after = sandbox.get(&format!("{SCRIPTS}/lms-api-staging/versions"))["items"]
        .as_array()
        .expect("versions")
        .len();
    assert_eq!(after, before + 1, "the id and the PEM moved in one write");
    let keys = key_ids(&sandbox);
    assert_eq!(keys.len(), 2, "the old key stays until finish");

    // Too early: the overlap (24h) has not passed since the stage.
    let early = rotate(
        &sandbox,
        &project,
        &[
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
            "--phase",
            "finish",
            "--auto-approve",
        ],
    )
    .code(3)
    .run();
    assert!(early.stderr.contains("refusing to revoke"), "{early}");
    assert_eq!(key_ids(&sandbox), keys);

    // A stage made 25 hours ago has passed its overlap: finish revokes exactly the old key.
    sandbox
        .sandbox()
        .clock()
        .set(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(25));
    rotate(
        &sandbox,
        &project,
        &[
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
            "--phase",
            "stage",
            "--auto-approve",
        ],
    )
    .code(0)
    .run();
    let three = key_ids(&sandbox);
    assert_eq!(three.len(), 3);
    let finished = rotate(
        &sandbox,
        &project,
        &[
            "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
            "--phase",
            "finish",
            "--auto-approve",
        ],
    )
    .code(0)
    .run();
    assert!(
        finished
            .stdout
            .contains(&format!("Stream key {} is revoked", three[1])),
        "{finished}"
    );
    assert_eq!(key_ids(&sandbox), [three[0].clone(), three[2].clone()]);
    let token = worker(&sandbox, "GET", "/lms-api-staging/video-token", &[], "");
    assert_eq!(token, 200, "the serving pair is the newest key's");
    let log = sandbox
        .get(&format!("{SCRIPTS}/lms-api-staging/versions"))
        .to_string();
    assert!(!log.contains("PRIVATE KEY"));
    for run in [&first, &staged, &early, &finished] {
        assert!(
            !run.stdout.contains("LS0t") && !run.stderr.contains("LS0t"),
            "a PEM leaked\n{run}"
        );
    }
}

#[test]
fn secrets_and_check_read_the_rotation_record_and_its_age() {
    let sandbox = TestSandbox::new();
    let project = rotating_project();
    staging_worker(&sandbox);
    let secrets = || {
        Lmsinfra::new(&sandbox)
            .project(&project)
            .args(["secrets", "staging", "--format", "json"])
            .code(0)
            .run()
    };
    let unknown: Value = serde_json::from_str(&secrets().stdout).expect("json");
    let pem = unknown
        .as_array()
        .expect("statuses")
        .iter()
        .find(|s| s["secret"] == "CLOUDFLARE_STREAM_SIGNING_KEY_PEM")
        .expect("the PEM")
        .clone();
    assert_eq!(pem["age_days"], Value::Null);
    assert_eq!(pem["verdict"], "fail", "it is not even set: {pem}");

    // Rotated 100 days ago (by the sandbox clock), beyond TALLY's 90 days.
    sandbox
        .sandbox()
        .clock()
        .set(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * 100));
    put_secret(
        &sandbox,
        "lms-api-staging",
        "TALLY_SIGNING_SECRET",
        "tally-canary-old-77aa",
    );
    let revealed = project.path().join("tally.secret");
    let staged = rotate(
        &sandbox,
        &project,
        &["TALLY_SIGNING_SECRET", "--generate", "32", "--reveal-to"],
    )
    .arg(&revealed)
    .args(["--auto-approve"])
    .code(0)
    .run();
    let regenerated = rotate(
        &sandbox,
        &project,
        &[
            "TALLY_SIGNING_SECRET",
            "--phase",
            "promote",
            "--generate",
            "32",
            "--auto-approve",
        ],
    )
    .code(1)
    .run();
    assert!(
        regenerated
            .stderr
            .contains("TALLY_SIGNING_SECRET_NEXT holds"),
        "{regenerated}"
    );
    let promoted = rotate(
        &sandbox,
        &project,
        &[
            "TALLY_SIGNING_SECRET",
            "--phase",
            "promote",
            "--auto-approve",
            "--secret",
        ],
    )
    .arg(format!("TALLY_SIGNING_SECRET=file:{}", revealed.display()))
    .code(0)
    .run();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&revealed)
            .expect("revealed")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    sandbox.sandbox().clock().set(jiff::Timestamp::now());
    let text = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["secrets", "staging"])
        .code(0)
        .run();
    let statuses: Value = serde_json::from_str(&secrets().stdout).expect("json");
    let tally = statuses
        .as_array()
        .expect("statuses")
        .iter()
        .find(|s| s["secret"] == "TALLY_SIGNING_SECRET")
        .expect("tally")
        .clone();
    assert_eq!(tally["generation"], 1, "{tally}");
    assert_eq!(tally["age_days"], 100, "{tally}");
    assert_eq!(tally["verdict"], "fail", "{tally}");
    let check = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["check", "staging", "--no-probe"])
        .code(3)
        .run();
    assert!(
        check.stdout.contains("last rotated 100 days ago"),
        "{check}"
    );
    let json = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["check", "staging", "--no-probe", "--format", "json"])
        .code(3)
        .run();
    let report: Value = serde_json::from_str(&json.stdout).expect("json");
    let failing = report["rotations"]
        .as_array()
        .expect("the rotation section")
        .iter()
        .find(|s| s["secret"] == "TALLY_SIGNING_SECRET")
        .expect("tally");
    assert_eq!(failing["verdict"], "fail", "{report:#}");
    let value = std::fs::read_to_string(&revealed).expect("revealed");
    assert_eq!(value.len(), 64, "32 bytes as hex");
    assert_eq!(
        webhook_now(&sandbox, &value),
        200,
        "the generated value is the one in use"
    );
    for run in [&staged, &promoted, &text, &check] {
        assert_no_leak(run, &[&value]);
    }
    let versions = sandbox
        .get(&format!("{SCRIPTS}/lms-api-staging/versions"))
        .to_string();
    assert!(!versions.contains(&value));
}

#[test]
fn raising_generation_requests_a_rotation_that_apply_makes_only_with_a_value() {
    let sandbox = TestSandbox::new();
    let project = rotating_project();
    staging_worker(&sandbox);
    crate::apply::with_secrets(Lmsinfra::new(&sandbox).project(&project).args([
        "apply",
        "staging",
        "--auto-approve",
    ]))
    .code(0)
    .run();
    // The manifest asks for generation 1 of TALLY_SIGNING_SECRET; none is recorded.
    let saved = project.path().join("staging.plan.json");
    let planned = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "plan",
            "staging",
            "--no-probe",
            "--detailed-exitcode",
            "--out",
        ])
        .arg(&saved)
        .code(3)
        .run();
    assert!(planned.stdout.contains("rotation requested"), "{planned}");
    let blocked = Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["apply", "staging", "--auto-approve"])
        .code(3)
        .run();
    assert!(blocked.stdout.contains("rotation requested"), "{blocked}");

    let value = "tally-generation-canary-31d9e0";
    let rotated = Lmsinfra::new(&sandbox)
        .project(&project)
        .args([
            "-vvv",
            "apply",
            "staging",
            "--auto-approve",
            "--secret",
            "TALLY_SIGNING_SECRET=env:TALLY_V1",
        ])
        .env("TALLY_V1", value)
        .code(0)
        .run();
    assert!(
        rotated.stderr.contains("rotated to generation 1"),
        "{rotated}"
    );
    assert_no_leak(&rotated, &[value]);
    assert_eq!(webhook_now(&sandbox, value), 200);
    Lmsinfra::new(&sandbox)
        .project(&project)
        .args(["plan", "staging", "--no-probe", "--detailed-exitcode"])
        .code(0)
        .run();
    let versions = sandbox
        .get(&format!("{SCRIPTS}/lms-api-staging/versions"))
        .to_string();
    assert!(
        versions.contains("lmsinfra rotate TALLY_SIGNING_SECRET generation 1 phase promote"),
        "{versions}"
    );
    assert!(!versions.contains(value));
    let plan_file = std::fs::read_to_string(&saved).expect("the plan file");
    assert!(plan_file.contains("rotation_requested"), "{plan_file}");
}

#[test]
fn a_rollback_across_a_finished_rotation_is_refused_naming_the_secret() {
    let sandbox = TestSandbox::new();
    let project = rotating_project();
    staging_worker(&sandbox);
    put_secret(
        &sandbox,
        "lms-api-staging",
        "TALLY_SIGNING_SECRET",
        "tally-rollback-old-0b1c",
    );
    let value = "tally-rollback-new-7e2d";
    for phase in ["stage", "promote"] {
        rotate(
            &sandbox,
            &project,
            &[
                "TALLY_SIGNING_SECRET",
                "--phase",
                phase,
                "--secret",
                "TALLY_SIGNING_SECRET=env:NEW_TALLY",
                "--auto-approve",
            ],
        )
        .env("NEW_TALLY", value)
        .code(0)
        .run();
    }
    let rollback = |extra: &[&str]| {
        Lmsinfra::new(&sandbox)
            .project(&project)
            .args([
                "rollback",
                "staging",
                "--worker",
                "api",
                "--steps",
                "2",
                "--auto-approve",
            ])
            .args(extra)
            .run()
    };
    let refused = rollback(&[]);
    assert_ne!(refused.code, 0, "{refused}");
    assert!(refused.stderr.contains("TALLY_SIGNING_SECRET"), "{refused}");
    assert_eq!(webhook_now(&sandbox, value), 200, "nothing was rolled back");
    // The target predates the database binding, so the smoke checks would fail its health.
    let allowed = rollback(&["--allow-secret-revert", "--no-verify"]);
    assert_eq!(allowed.code, 0, "{allowed}");
    assert_eq!(
        webhook_now(&sandbox, value),
        401,
        "the old value is back, as asked"
    );
}

#[test]
fn ctrl_c_between_a_stream_keys_creation_and_its_write_lets_the_phase_finish() {
    // The new key is made at once but answered 3 s later: the signal lands between the key's
    // creation and the Worker write that puts it to use.
    let sandbox = TestSandbox::with(crate::client::faults(
        "after_create@create-signing-keys=1:3000ms",
    ));
    let project = rotating_project();
    staging_worker(&sandbox);
    let before = sandbox.get(&format!("{SCRIPTS}/lms-api-staging/versions"))["items"]
        .as_array()
        .expect("versions")
        .len();
    let child = rotate(
        &sandbox,
        &project,
        &["CLOUDFLARE_STREAM_SIGNING_KEY_PEM", "--auto-approve"],
    )
    .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while key_ids(&sandbox).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no key was created");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill has no memory effects; the pid is our own child, not yet waited for.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGINT) },
        0,
        "the signal is sent"
    );
    let output = child.wait_with_output().expect("rotate ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Interrupt received"), "{stderr}");
    let after = sandbox.get(&format!("{SCRIPTS}/lms-api-staging/versions"))["items"]
        .as_array()
        .expect("versions")
        .len();
    assert_eq!(after, before + 1, "the key's id and PEM were written");
    let token = worker(&sandbox, "GET", "/lms-api-staging/video-token", &[], "");
    assert_eq!(token, 200, "the Worker serves the new key's pair");
}
