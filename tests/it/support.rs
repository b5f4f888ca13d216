//! Shared test support: a seeded in-process sandbox whose every answer is checked against the
//! official schema subset, a small HTTP client for it, and a builder that runs the real binary
//! against it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use lmsinfra_sandbox::{Exchange, Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// The account id of the audited account seed.
pub const ACCOUNT_ID: &str = "0123456789abcdef0123456789abcdef";
/// The token tests send.
pub const TOKEN: &str = "test-token";

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The digest a sandbox keeps for the secret `value` in `state` (a state file as JSON):
/// SHA-256 over the state's salt and the SHA-256 (hex) of the value, as hex.
pub fn secret_digest(state: &Value, value: &str) -> String {
    use sha2::{Digest, Sha256};
    let salt = state["account"]["secret_salt"]
        .as_str()
        .expect("the state has a secret salt");
    let inner = hex::encode(Sha256::digest(value.as_bytes()));
    hex::encode(Sha256::digest(format!("{salt}{inner}").as_bytes()))
}

/// Binding names (secrets included) of every script in a sandbox state or seed file.
pub fn binding_names_by_script(
    state: &Value,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let scripts = state["account"]["scripts"].as_object().expect("scripts");
    scripts
        .iter()
        .map(|(name, script)| {
            let names = script["bindings"]
                .as_array()
                .expect("bindings")
                .iter()
                .filter_map(|b| b["name"].as_str().map(str::to_owned))
                .collect();
            (name.clone(), names)
        })
        .collect()
}

/// The seed that reproduces the audited account.
pub fn audited_seed() -> PathBuf {
    root().join("examples/sandbox/audited-account.json")
}

/// A copy of `cloudflare-api/openapi-subset.json`, the official schema trimmed to our subset.
fn openapi_path() -> PathBuf {
    root().join("tests/fixtures/openapi-subset.json")
}

/// The schema subset, with OpenAPI 3.0 `nullable` rewritten into JSON Schema.
fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = openapi_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut doc: Value = serde_json::from_str(&text).expect("openapi-subset.json is JSON");
        rewrite_nullable(&mut doc);
        // The 2024 spec types D1's common `result` as an object, yet D1 lists and queries
        // answer arrays and deletes answer null (per the same spec's own operations); that
        // one constraint is dropped so each operation's own `result` schema decides.
        doc["components"]["schemas"]["d1_api-response-common"]["properties"]["result"] = json!({});
        // The spec's 0.01 % minimum contradicts the gradual-deployment docs and wrangler
        // (`versions deploy` takes 0 to 100): a version at 0 % serves overridden requests only.
        doc["components"]["schemas"]["workers_deployments-strategy-percentage"]["properties"]
            ["versions"]["items"]["properties"]["percentage"]["minimum"] = json!(0);
        add_ratelimit_binding(&mut doc);
        doc
    })
}

/// The 2024 spec predates the Workers rate-limiting binding; its shape is the one the current
/// SDKs type (`WorkersBindingKindRatelimit`: `namespace_id` and `simple: {limit, period}`), added
/// to every binding list beside the service binding.
fn add_ratelimit_binding(doc: &mut Value) {
    const REF: &str = "#/components/schemas/workers_binding_kind_ratelimit";
    doc["components"]["schemas"]["workers_binding_kind_ratelimit"] = json!({
        "type": "object",
        "required": ["name", "type", "namespace_id", "simple"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["ratelimit"]},
            "namespace_id": {"type": "string"},
            "simple": {
                "type": "object",
                "required": ["limit", "period"],
                "properties": {
                    "limit": {"type": "number"},
                    "period": {"type": "integer", "enum": [10, 60]}
                }
            }
        }
    });
    fn visit(value: &mut Value) {
        match value {
            Value::Array(items) => {
                let service = json!({"$ref": "#/components/schemas/workers_binding_kind_service"});
                if items.contains(&service) {
                    items.push(json!({"$ref": REF}));
                }
                items.iter_mut().for_each(visit);
            }
            Value::Object(fields) => fields.values_mut().for_each(visit),
            _ => {}
        }
    }
    visit(doc);
}

/// `{"type": T, "nullable": true}` means `{"type": [T, "null"]}`; an `enum` beside it gains `null`.
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(items)) = map.get_mut("enum")
                    && !items.contains(&Value::Null)
                {
                    items.push(Value::Null);
                }
            }
            map.values_mut().for_each(rewrite_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

/// Operation ids that differ between the subset and the newer official spec (NOTES.md, "Notes
/// on the day-2 additions"): the subset's first, the newer one second. Either names the same
/// operation.
const OPERATION_ALIASES: [(&str, &str); 4] = [
    ("worker-script-list-secrets", "worker-list-script-secrets"),
    ("worker-script-put-secret", "worker-put-script-secret"),
    ("worker-script-get-secret", "worker-get-script-secret"),
    ("worker-script-delete-secret", "worker-delete-script-secret"),
];

/// Operations that answer raw bytes rather than the JSON envelope; their answers are not checked.
const RAW_BYTE_OPERATIONS: [&str; 1] = ["r2-get-object"];

/// The response schema an operation documents for `status`, if any.
fn response_schema(operation: &str, status: u16) -> Option<Value> {
    let doc = openapi();
    let find = |id: &str| {
        doc["paths"].as_object()?.values().find_map(|item| {
            item.as_object()?
                .values()
                .find(|op| op["operationId"] == id)
        })
    };
    let op = find(operation).or_else(|| {
        OPERATION_ALIASES.iter().find_map(|(old, new)| {
            if *old == operation {
                find(new)
            } else if *new == operation {
                find(old)
            } else {
                None
            }
        })
    })?;
    let responses = &op["responses"];
    let code = status.to_string();
    let class = format!("{}XX", status / 100);
    let mut response = [code.as_str(), class.as_str(), "default"]
        .iter()
        .find_map(|key| responses.get(*key))?
        .clone();
    if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next()?;
        response = doc["components"]["responses"][name].clone();
    }
    response
        .get("content")
        .and_then(|c| c.get("application/json"))
        .and_then(|c| c.get("schema"))
        .cloned()
}

fn compile(schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    if let Value::Object(map) = &mut root {
        map.insert("components".into(), openapi()["components"].clone());
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

fn check(validator: &jsonschema::Validator, body: &Value, what: &str) -> Result<(), String> {
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}: {}", errors.join("; ")))
    }
}

/// Validate one answer: against its operation's documented schema for that status, and always
/// against the subset's common envelope (success or failure).
pub fn validate(operation: Option<&str>, status: u16, body: &Value) -> Result<(), String> {
    if operation.is_some_and(|op| RAW_BYTE_OPERATIONS.contains(&op)) {
        return Ok(());
    }
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let get =
        |key: String, schema: &dyn Fn() -> Option<Value>| -> Option<Arc<jsonschema::Validator>> {
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = cache.get(&key) {
                return Some(v.clone());
            }
            let validator = Arc::new(compile(&schema()?));
            cache.insert(key, validator.clone());
            Some(validator)
        };
    let envelope = if (200..300).contains(&status) {
        "workers_api-response-common"
    } else {
        "workers_api-response-common-failure"
    };
    let common = get(format!("#{envelope}"), &|| {
        Some(json!({"$ref": format!("#/components/schemas/{envelope}")}))
    })
    .expect("the subset has the common envelope");
    check(&common, body, envelope)?;
    // Some operations document their 4XX answers with a *success* envelope (`success: true`);
    // no failure can match those, so a schema that rejects the canonical failure envelope
    // is not used for failures (the common failure envelope above still applies).
    let canonical_failure = json!({"success": false, "errors": [{"code": 7003, "message": "No route for the URI"}], "messages": [], "result": null});
    if let Some(operation) = operation
        && let Some(validator) = get(format!("{operation} {status}"), &|| {
            response_schema(operation, status)
        })
        && ((200..300).contains(&status) || validator.is_valid(&canonical_failure))
    {
        check(&validator, body, &format!("{operation} {status}"))?;
    }
    Ok(())
}

/// A sandbox seeded with the audited account in a temporary folder; on drop it fails the test
/// if any answer did not match the schema.
pub struct TestSandbox {
    pub sandbox: Option<Sandbox>,
    pub dir: tempfile::TempDir,
    violations: Arc<Mutex<Vec<String>>>,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl TestSandbox {
    /// The audited account, default settings.
    pub fn new() -> TestSandbox {
        TestSandbox::with(|_| {})
    }

    /// The audited account, with the configuration adjusted by `tweak`.
    pub fn with(tweak: impl FnOnce(&mut SandboxConfig)) -> TestSandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let violations = Arc::new(Mutex::new(Vec::new()));
        let mut config = SandboxConfig {
            state: Some(dir.path().join("state.json")),
            seed: Some(audited_seed()),
            ..Default::default()
        };
        tweak(&mut config);
        config.observer = Some(observer(violations.clone(), config.observer.take()));
        let sandbox = Sandbox::start(config).expect("sandbox starts");
        TestSandbox {
            sandbox: Some(sandbox),
            dir,
            violations,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            // The sandbox closes a connection that sends no request for 10 s (its header read
            // timeout); a test that waits longer than that (on wrangler, say) must not reuse
            // such a connection, or its next request is lost with it.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("test HTTP client"),
        }
    }

    /// Start a second sandbox on the same state file (after stopping this one, for restarts).
    pub fn restart(&mut self, tweak: impl FnOnce(&mut SandboxConfig)) {
        self.sandbox = None;
        let mut config = SandboxConfig {
            state: Some(self.state_path()),
            seed: Some(audited_seed()),
            ..Default::default()
        };
        tweak(&mut config);
        config.observer = Some(observer(self.violations.clone(), config.observer.take()));
        self.sandbox = Some(Sandbox::start(config).expect("sandbox restarts"));
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("running")
    }

    pub fn base_url(&self) -> String {
        self.sandbox().base_url()
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// Send a request with the test token; `path` is relative to `/client/v4`, and
    /// `{account}` in it becomes the account id.
    pub fn send(&self, method: &str, path: &str, body: Body) -> Answer {
        self.send_as(Some(TOKEN), method, path, body)
    }

    /// Send a request with `token` (or none).
    pub fn send_as(&self, token: Option<&str>, method: &str, path: &str, body: Body) -> Answer {
        let url = format!(
            "{}{}",
            self.base_url(),
            path.replace("{account}", ACCOUNT_ID)
        );
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Raw(content_type, bytes) => {
                request.header("content-type", content_type).body(bytes)
            }
            Body::Form(parts) => {
                let mut form = reqwest::multipart::Form::new();
                for (name, content_type, data) in parts {
                    let part =
                        reqwest::multipart::Part::bytes(data.into_bytes()).file_name(name.clone());
                    let part = match content_type {
                        Some(ct) => part.mime_str(&ct).expect("mime"),
                        None => part,
                    };
                    form = form.part(name, part);
                }
                request.multipart(form)
            }
        };
        self.runtime.block_on(async {
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let text = response.text().await.unwrap_or_default();
                    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    Answer {
                        status,
                        body,
                        headers,
                    }
                }
                Err(_) => Answer {
                    status: 0,
                    body: Value::Null,
                    headers: Default::default(),
                },
            }
        })
    }

    /// Create a D1 database through the API; its id.
    pub fn create_d1(&self, name: &str) -> String {
        let answer = self.send(
            "POST",
            "/accounts/{account}/d1/database",
            Body::Json(serde_json::json!({ "name": name })),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["result"]["uuid"]
            .as_str()
            .expect("uuid")
            .to_owned()
    }

    /// `GET`, expecting success; returns `result`.
    pub fn get(&self, path: &str) -> Value {
        let answer = self.send("GET", path, Body::None);
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        answer.body["result"].clone()
    }

    /// Violations seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        self.sandbox = None;
        let violations = self.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "the sandbox sent {} answer(s) that do not match openapi-subset.json:\n{}",
                violations.len(),
                violations.join("\n")
            );
        }
    }
}

/// Checks every answer against the schema, then hands it to the test's own observer, if any.
fn observer(
    violations: Arc<Mutex<Vec<String>>>,
    then: Option<lmsinfra_sandbox::Observer>,
) -> lmsinfra_sandbox::Observer {
    Arc::new(move |exchange: &Exchange| {
        if let Some(then) = &then {
            then(exchange);
        }
        // An R2 object read answers the object's raw bytes, not the envelope.
        if exchange.operation.as_deref() == Some("r2-get-object") && exchange.status == 200 {
            return;
        }
        if let Err(e) = validate(
            exchange.operation.as_deref(),
            exchange.status,
            &exchange.body,
        ) {
            violations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!(
                    "{} {} -> {}: {e}",
                    exchange.method,
                    exchange.route.as_deref().unwrap_or("(unmatched)"),
                    exchange.status
                ));
        }
    })
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
    /// Parts: name, content type, data.
    Form(Vec<(String, Option<String>, String)>),
}

/// A multipart body from `(name, content type, data)` triples.
pub fn form(parts: &[(&str, Option<&str>, &str)]) -> Body {
    Body::Form(
        parts
            .iter()
            .map(|(n, ct, d)| ((*n).to_owned(), ct.map(str::to_owned), (*d).to_owned()))
            .collect(),
    )
}

/// An answer: status (0 when the connection dropped), JSON body, headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The first error code.
    pub fn code(&self) -> Option<i64> {
        self.body["errors"][0]["code"].as_i64()
    }
}

/// Runs the real `lmsinfra` binary against a sandbox. Expectations (`.stdout`, `.stderr`,
/// `.code`) are stated before `.run()`, which checks them all and shows the whole run when one
/// fails.
pub struct Lmsinfra {
    command: Command,
    stdin: Option<Vec<u8>>,
    stdout: Option<String>,
    stderr: Option<String>,
    code: Option<i32>,
}

impl Lmsinfra {
    /// `lmsinfra --color never`, pointed at `sandbox`, run from the repository root.
    pub fn new(sandbox: &TestSandbox) -> Lmsinfra {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lmsinfra"));
        command
            .current_dir(root())
            .env("CLOUDFLARE_API_BASE_URL", sandbox.base_url())
            .env("CLOUDFLARE_API_TOKEN", TOKEN)
            .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
            .env("NO_COLOR", "1")
            .args(["--color", "never"]);
        Lmsinfra {
            command,
            stdin: None,
            stdout: None,
            stderr: None,
            code: None,
        }
    }

    /// Give `input` on stdin, then end of file (stdin is closed otherwise).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Lmsinfra {
        self.stdin = Some(input.into());
        self
    }

    /// Expect exactly this on stdout.
    pub fn stdout(mut self, expected: impl Into<String>) -> Lmsinfra {
        self.stdout = Some(expected.into());
        self
    }

    /// Expect exactly this on stderr.
    pub fn stderr(mut self, expected: impl Into<String>) -> Lmsinfra {
        self.stderr = Some(expected.into());
        self
    }

    /// Expect this exit code.
    pub fn code(mut self, expected: i32) -> Lmsinfra {
        self.code = Some(expected);
        self
    }

    /// Run to completion and check every expectation; the run is returned for more checks.
    pub fn run(mut self) -> Run {
        let expected = (self.stdout.take(), self.stderr.take(), self.code.take());
        let run = Run::from(match self.stdin.take() {
            Some(input) => self.output_with_stdin(&input),
            None => self.output(),
        });
        let (stdout, stderr, code) = expected;
        if let Some(code) = code {
            assert_eq!(run.code, code, "exit code\n{run}");
        }
        if let Some(stdout) = stdout {
            assert_eq!(run.stdout, stdout, "stdout\n{run}");
        }
        if let Some(stderr) = stderr {
            assert_eq!(run.stderr, stderr, "stderr\n{run}");
        }
        run
    }

    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Lmsinfra
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Add one argument.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Lmsinfra {
        self.command.arg(arg);
        self
    }

    /// Set an environment variable for the child.
    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Lmsinfra {
        self.command.env(name, value);
        self
    }

    /// Run inside `project` (`--dir` and the working directory both point at it).
    pub fn project(mut self, project: &Project) -> Lmsinfra {
        self.command
            .current_dir(project.path())
            .arg("--dir")
            .arg(project.path());
        self
    }

    /// Run to completion, stdin closed (reads see end of file at once).
    pub fn output(mut self) -> Output {
        self.command.output().expect("lmsinfra runs")
    }

    /// Run to completion with `input` on stdin, then end of file.
    pub fn output_with_stdin(mut self, input: &[u8]) -> Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lmsinfra runs");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            // The child may exit without reading; a broken pipe is its answer, not ours.
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().expect("lmsinfra runs");
        let _ = writer.join();
        output
    }

    /// Run to completion with a stdin pipe that stays open and never carries a byte: a child
    /// that reads stdin waits forever, so a test that returns proves it did not read.
    pub fn output_with_idle_stdin(mut self) -> Output {
        use std::process::Stdio;
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lmsinfra runs");
        // Taken out of the child so that `wait_with_output` cannot close it.
        let idle = child.stdin.take().expect("piped stdin");
        let output = child.wait_with_output().expect("lmsinfra runs");
        drop(idle);
        output
    }

    /// Run to completion with stdin closed, failing the test when it has not exited after
    /// `patience` (see [`wait_within`]).
    pub fn output_within(mut self, patience: std::time::Duration) -> Output {
        use std::process::Stdio;
        let child = self
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lmsinfra runs");
        wait_within(child, patience)
    }

    /// Start without waiting, output discarded (for tests that kill it or run many at once).
    pub fn spawn(mut self) -> std::process::Child {
        self.command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("lmsinfra starts")
    }
}

/// Wait for `child` and collect its output, killing it and failing the test when it has not
/// exited after `patience`: for inputs that used to make lmsinfra hang or take minutes.
pub fn wait_within(mut child: std::process::Child, patience: std::time::Duration) -> Output {
    use std::io::Read;
    // Drained on threads, so a child that writes much cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + patience;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().expect("the child can be killed");
            let _ = child.wait();
            panic!("lmsinfra was still running after {patience:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout is drained"),
        stderr: stderr.join().expect("stderr is drained"),
    }
}

/// Snapshot a [`Run`] (exit code, stdout and stderr together) with [`snapshot_filters`]
/// applied, named after the test or as given; evaluates to the run for further checks.
macro_rules! lmsinfra_snapshot {
    ($run:expr) => {{
        let run: $crate::support::Run = $run;
        $crate::support::snapshot_settings().bind(|| insta::assert_snapshot!(run.to_string()));
        run
    }};
    ($name:expr, $run:expr) => {{
        let run: $crate::support::Run = $run;
        $crate::support::snapshot_settings()
            .bind(|| insta::assert_snapshot!($name, run.to_string()));
        run
    }};
}
pub(crate) use lmsinfra_snapshot;

/// What differs between two runs of the same test, and what it becomes in a snapshot: the
/// repository and temporary paths, loopback ports, database ids, hashes, step durations and
/// the operating system's error numbers.
pub fn snapshot_filters() -> Vec<(String, &'static str)> {
    vec![
        (regex_escape(&root().display().to_string()), "[ROOT]"),
        (
            regex_escape(&std::env::temp_dir().display().to_string()) + r"/\.tmp\w+",
            "[TEMP]",
        ),
        (r"127\.0\.0\.1:\d+".to_owned(), "127.0.0.1:[PORT]"),
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b".to_owned(),
            "[UUID]",
        ),
        (r"\b[0-9a-f]{64}\b".to_owned(), "[SHA256]"),
        // D1 Time Travel bookmarks carry the time they were taken.
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}\b".to_owned(),
            "[BOOKMARK]",
        ),
        (r"\(\d+ ms\)".to_owned(), "([N] ms)"),
        (r"\(os error \d+\)".to_owned(), "(os error [N])"),
    ]
}

/// The insta settings of [`lmsinfra_snapshot!`]: the current ones plus [`snapshot_filters`].
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in snapshot_filters() {
        settings.add_filter(&pattern, replacement);
    }
    settings
}

/// `text` as a regular expression that matches exactly it.
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// What one run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().expect("lmsinfra exits with a code"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A copy of the LMS's `environments/` in a temporary folder, for tests that edit manifests
/// or must see every file a command writes.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// The LMS's own manifests, unchanged.
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let environments = dir.path().join("environments");
        std::fs::create_dir(&environments).expect("environments/ is created");
        for entry in std::fs::read_dir(root().join("environments")).expect("environments/") {
            let entry = entry.expect("an entry of environments/");
            std::fs::copy(entry.path(), environments.join(entry.file_name()))
                .expect("a manifest is copied");
        }
        copy_tree(&root().join("migrations"), &dir.path().join("migrations"));
        Project { dir }
    }

    /// The project root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `environments/ENV.yaml` of the project.
    pub fn manifest(&self, environment: &str) -> PathBuf {
        self.path()
            .join("environments")
            .join(format!("{environment}.yaml"))
    }

    /// Set the manifest of `environment` to `edit` applied to the repository's own.
    pub fn edit(&self, environment: &str, edit: impl FnOnce(String) -> String) {
        let original = root()
            .join("environments")
            .join(format!("{environment}.yaml"));
        let text = std::fs::read_to_string(original).expect("the LMS manifest is readable");
        std::fs::write(self.manifest(environment), edit(text)).expect("the manifest is written");
    }
}

/// Copy the folder `from` (files and folders) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder is made");
    for entry in std::fs::read_dir(from).expect("a folder of the repository") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("a file is copied");
        }
    }
}

/// A run of the binary with what it cost: wall time and peak resident memory.
pub struct Measured {
    pub run: Run,
    pub wall: std::time::Duration,
    /// Peak resident set size in bytes, from the kernel's accounting of the child: the larger
    /// of the child's own peak and `inherited`.
    pub peak_rss: u64,
    /// This process's peak resident memory when the child started, which the kernel counts as
    /// the child's too (the child begins as a copy of this process).
    pub inherited: u64,
}

impl Lmsinfra {
    /// Run to completion (stdin closed) and measure it; killed after `limit`, so that a run
    /// that would hang fails the test instead.
    #[expect(
        clippy::zombie_processes,
        reason = "wait4 reaps the child, so that its resource usage can be read"
    )]
    pub fn output_measured(mut self, limit: std::time::Duration) -> Measured {
        use std::io::Read;
        use std::process::Stdio;
        // A child starts in this process's memory, and the kernel counts that memory's high
        // water mark as the child's too; what this process reached so far bounds the figure.
        let inherited = high_water_mark();
        let started = std::time::Instant::now();
        let mut child = self
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lmsinfra runs");
        let pid = child.id() as libc::pid_t;
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
        let (exited, exit_seen) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if exit_seen.recv_timeout(limit).is_err() {
                // The child is not reaped before this thread is joined, so `pid` is still ours.
                // SAFETY: sending a signal has no memory effects.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        // Wait for the exit without reaping, so that the watchdog never signals a reused pid.
        // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child; `info` is a live local.
        let waited = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(waited, 0, "waitid sees the child exit");
        let wall = started.elapsed();
        let _ = exited.send(());
        watchdog.join().expect("watchdog");
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, exited and not yet reaped; pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(reaped, pid, "wait4 reaps the child");
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        };
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        Measured {
            run: Run {
                code,
                stdout: text(stdout.join().expect("stdout")),
                stderr: text(stderr.join().expect("stderr")),
            },
            wall,
            // Linux reports ru_maxrss in KiB.
            peak_rss: usage.ru_maxrss as u64 * 1024,
            inherited,
        }
    }
}

/// This process's peak resident memory so far (`VmHWM`), in bytes.
pub fn high_water_mark() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/self/status")
        * 1024
}
