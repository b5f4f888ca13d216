//! An apply killed part-way leaves an account that the next apply finishes, without duplicates
//! and without losing anything — also when it was running many steps at once.
//!
//! How the process is stopped after exactly k writes: a first, whole apply counts the writes it
//! makes (create a database, the few requests of a migration, patch a Worker's settings with
//! its secrets, patch its Workers Logs, put a zone's ruleset; every answered request but a GET
//! counts, so the ledger reads and import polls D1 takes as POSTs are kill points too); then,
//! for each k, apply runs on a fresh account and is killed at write k. The sandbox calls its
//! observer once a request has taken effect and before the answer goes out, so an observer that
//! counts answered writes sends SIGKILL to the real `lmsinfra apply` process when the k-th one
//! is answered. The process dies with k writes done and the k-th unacknowledged — the worst
//! moment, since it never learned that its last create succeeded. One step at a time, it cannot
//! send write k + 1, which would need that answer first. With steps in parallel
//! (`--concurrency`), "after write k" means after the k-th answered write, whichever step it
//! belonged to: the writes of other steps already on their way may still take effect, so at
//! least k are done, and some steps the dead process started are done while others never began.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lmsinfra::manifest::Manifest;
use lmsinfra::manifest::model::{
    Binding, D1Database, Headers, Migrations, Observability, RateLimits, Route, Transport, Worker,
};
use lmsinfra_sandbox::{Exchange, SandboxConfig};
use serde_json::{Value, json};

use crate::convergence::{
    PHASES, ZONE, foreign_rules, kept_unchanged, seeded_ruleset, seeded_zone, zone_rules,
};
use crate::support::{
    ACCOUNT_ID, Body, Lmsinfra, TestSandbox, binding_names_by_script, secret_digest,
};

/// Counts a run's answered writes, kills the apply process at one of them, and tells which
/// Worker each Worker write went to.
#[derive(Default)]
struct Killer {
    /// The apply process: 0 until it is spawned, -1 once it is reaped.
    pid: AtomicI32,
    /// The write whose answer kills the process; 0 for none.
    kill_at: AtomicUsize,
    /// Answered writes of the current run.
    writes: AtomicUsize,
    /// Answered writes to each Worker in the current run, by the Worker's seeded tag; writes
    /// to a Worker that carry no such tag count under the empty name.
    per_worker: Mutex<BTreeMap<String, usize>>,
}

impl Killer {
    /// A sandbox with `tweak` applied to its configuration, watched by a new killer.
    fn sandbox(tweak: impl FnOnce(&mut SandboxConfig)) -> (TestSandbox, Arc<Killer>) {
        let killer = Arc::new(Killer::default());
        let watching = killer.clone();
        let sandbox = TestSandbox::with(move |config| {
            tweak(config);
            config.observer = Some(Arc::new(move |exchange: &Exchange| {
                watching.answered(exchange)
            }));
        });
        (sandbox, killer)
    }

    fn answered(&self, exchange: &Exchange) {
        if exchange.method == "GET" || !(200..300).contains(&exchange.status) {
            return;
        }
        let to_worker = exchange
            .route
            .as_deref()
            .is_some_and(|route| route.contains("/workers/scripts/{script_name}"));
        if to_worker {
            // The settings and the script-level settings both answer the script's tags.
            let tag = exchange.body["result"]["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find(|tag| tag.starts_with(TAG))
                .unwrap_or_default();
            let mut per_worker = self.per_worker.lock().unwrap_or_else(|p| p.into_inner());
            *per_worker.entry(tag.to_owned()).or_default() += 1;
        }
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.kill_at.load(Ordering::SeqCst) {
            // The pid is stored right after spawning, long before apply's first write.
            let mut target = self.pid.load(Ordering::SeqCst);
            for _ in 0..1000 {
                if target > 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
                target = self.pid.load(Ordering::SeqCst);
            }
            if target > 0 {
                // SAFETY: `target` is the apply process this test spawned, not reaped.
                unsafe { libc::kill(target, libc::SIGKILL) };
            }
        }
    }

    /// Start counting a new run that is killed at write `kill_at` (0: never), once the
    /// sandbox has finished with whatever the previous run sent: requests of a killed
    /// process can still be on their way when it has been reaped.
    fn next_run(&self, sandbox: &TestSandbox, kill_at: usize) {
        let mut seen = sandbox.sandbox().stats().total;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = sandbox.sandbox().stats().total;
            if now == seen {
                break;
            }
            seen = now;
        }
        self.pid.store(0, Ordering::SeqCst);
        self.writes.store(0, Ordering::SeqCst);
        self.kill_at.store(kill_at, Ordering::SeqCst);
        self.per_worker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Spawn `apply` and wait for it, with the pid the observer needs to kill it.
    fn run(&self, apply: Lmsinfra) -> std::process::Output {
        let child = apply.spawn();
        self.pid.store(child.id() as i32, Ordering::SeqCst);
        let output = child.wait_with_output().expect("apply ends");
        self.pid.store(-1, Ordering::SeqCst);
        output
    }

    fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn per_worker(&self) -> BTreeMap<String, usize> {
        self.per_worker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The migrations recorded in database `id`'s ledger, in order.
fn ledger(sandbox: &TestSandbox, id: &str) -> Vec<String> {
    let answer = sandbox.send(
        "POST",
        &format!("/accounts/{{account}}/d1/database/{id}/query"),
        Body::Json(json!({ "sql": format!("SELECT name FROM {LEDGER} ORDER BY id") })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["result"][0]["results"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn read_state(sandbox: &TestSandbox) -> Value {
    let text = std::fs::read_to_string(sandbox.state_path()).expect("state file");
    serde_json::from_str(&text).expect("state JSON")
}

/// Whether `output` is the end of a process killed by SIGKILL.
fn killed(output: &std::process::Output) -> bool {
    std::os::unix::process::ExitStatusExt::signal(&output.status) == Some(libc::SIGKILL)
}

const STAGING_SECRETS: [&str; 4] = [
    "TALLY_WEBHOOK_SECRET",
    "TALLY_SIGNING_SECRET",
    "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
    "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
];

fn apply_staging(sandbox: &TestSandbox) -> Lmsinfra {
    let mut args = vec![
        "apply".to_owned(),
        "staging".to_owned(),
        "--auto-approve".to_owned(),
    ];
    for name in STAGING_SECRETS {
        args.push("--secret".to_owned());
        args.push(format!("{name}=env:CRASH_{name}"));
    }
    let mut command = Lmsinfra::new(sandbox).args(args);
    for name in STAGING_SECRETS {
        command = command.env(&format!("CRASH_{name}"), format!("value of {name}"));
    }
    command
}

/// Staging of the audited account: create the database, run its two migrations (a few requests
/// each), patch the API Worker's settings with its four secrets, patch its Workers Logs.
#[test]
fn apply_killed_after_any_step_converges_on_the_next_run_without_duplicates_or_losses() {
    let writes = {
        let (sandbox, killer) = Killer::sandbox(|_| {});
        killer.next_run(&sandbox, 0);
        let whole = killer.run(apply_staging(&sandbox));
        assert!(
            whole.status.success(),
            "a whole apply of staging fails:\n{}",
            String::from_utf8_lossy(&whole.stderr)
        );
        killer.writes()
    };
    assert!(
        writes >= 5,
        "a whole apply of staging writes {writes} times"
    );
    for k in 1..=writes {
        let (sandbox, killer) = Killer::sandbox(|_| {});
        let before = binding_names_by_script(&read_state(&sandbox));

        killer.next_run(&sandbox, k);
        let output = killer.run(apply_staging(&sandbox));
        assert!(
            killed(&output),
            "apply should be killed after write {k}: {output:?}"
        );
        assert!(killer.writes() >= k, "writes done when killed");

        let again = apply_staging(&sandbox).output();
        assert!(
            again.status.success(),
            "apply after a kill at step {k} fails:\n{}",
            String::from_utf8_lossy(&again.stderr)
        );
        let plan = Lmsinfra::new(&sandbox)
            .args(["plan", "staging", "--detailed-exitcode", "--no-probe"])
            .output();
        assert_eq!(plan.status.code(), Some(0), "plan after a kill at step {k}");

        let state = read_state(&sandbox);
        let staging_databases = state["account"]["d1_databases"]
            .as_array()
            .expect("databases")
            .iter()
            .filter(|d| d["name"] == "lms-db-staging")
            .count();
        assert_eq!(
            staging_databases, 1,
            "databases named lms-db-staging after a kill at step {k}"
        );
        let after = binding_names_by_script(&state);
        for (script, names) in &before {
            let kept = &after[script];
            let lost: Vec<_> = names.difference(kept).collect();
            assert!(
                lost.is_empty(),
                "{script} lost {lost:?} after a kill at step {k}"
            );
        }
    }
}

/// New databases of the fleet, each bound by one Worker.
const DATABASES: usize = 6;
/// How many of the fleet's databases, from the first, get [`MIGRATION`].
const MIGRATED: usize = 1;
/// The one migration of the fleet's migrated databases: its file name and SQL.
const MIGRATION: (&str, &str) = (
    "0001_courses.sql",
    "CREATE TABLE courses (id TEXT PRIMARY KEY, title TEXT NOT NULL);\n",
);
/// The migrations ledger, wrangler's.
const LEDGER: &str = "d1_migrations";
/// Workers of the fleet, all already deployed.
const WORKERS: usize = 12;
/// Secrets the fleet's Workers declare.
const FLEET_SECRETS: [&str; 2] = ["API_SECRET", "SIGNING_KEY"];
/// The prefix of the tag each Worker is seeded with, by which a write's answer names its Worker.
const TAG: &str = "seeded:";
/// The `--concurrency` of the fleet's applies: apply's default.
const CONCURRENCY: &str = "16";
/// The compatibility date the manifest wants; every Worker has an older one.
const DATE: &str = "2024-12-01";

fn fleet_script(j: usize) -> String {
    format!("crash-worker-{j}")
}

fn fleet_database(i: usize) -> String {
    format!("crash-db-{i}")
}

/// The host Worker `j` is routed on.
fn fleet_host(j: usize) -> String {
    format!("crash{j}.{}", ZONE.0)
}

/// An environment of new databases and many Workers whose steps have few dependencies
/// between them, so that apply runs many at once: every Worker changes its compatibility date;
/// every other one binds a new database (one each), the first of which gets a migration before
/// the Worker that binds it is written; some Workers gain a plain-text binding, some secrets,
/// two their Workers Logs; one is routed with a header rule and one with a rate limit, so each
/// of the zone's two phases is written.
fn fleet_manifest() -> Manifest {
    let d1_databases = (0..DATABASES)
        .map(|i| {
            let database = D1Database {
                name: fleet_database(i),
                location_hint: None,
                protect: true,
                absent: false,
                migrations: (i < MIGRATED).then(|| Migrations {
                    directory: "migrations".to_owned(),
                    table: LEDGER.to_owned(),
                    transport: Transport::Import,
                }),
                backup: None,
            };
            (format!("db{i}"), database)
        })
        .collect();
    let workers = (0..WORKERS)
        .map(|j| {
            let mut bindings = Vec::new();
            if j % 2 == 0 {
                let database = format!("db{}", j / 2);
                bindings.push(("DB".to_owned(), Binding::D1 { database }));
            }
            if j % 3 == 0 {
                let text = format!("https://{}", fleet_host(j));
                bindings.push(("APP_ORIGIN".to_owned(), Binding::PlainText { text }));
            }
            let secrets = match j % 4 {
                1 => FLEET_SECRETS.to_vec(),
                3 => FLEET_SECRETS[..1].to_vec(),
                _ => Vec::new(),
            };
            let routed = j < 2;
            let worker = Worker {
                name: fleet_script(j),
                compatibility_date: DATE.to_owned(),
                compatibility_flags: Vec::new(),
                bindings: bindings.into_iter().collect(),
                secrets: secrets.into_iter().map(str::to_owned).collect(),
                observability: [4, 7].contains(&j).then_some(Observability {
                    enabled: true,
                    head_sampling_rate: Some(0.5),
                }),
                headers: (j == 0).then(|| Headers {
                    url: format!("https://{}/health", fleet_host(j)),
                    require: [("X-Frame-Options".to_owned(), "DENY".to_owned())]
                        .into_iter()
                        .collect(),
                }),
                routes: routed
                    .then(|| Route {
                        zone: ZONE.0.to_owned(),
                        pattern: format!("{}/*", fleet_host(j)),
                    })
                    .into_iter()
                    .collect(),
                rate_limits: (j == 1).then_some(RateLimits {
                    requests: 100,
                    period: 60,
                    mitigation_timeout: 600,
                    paths: Vec::new(),
                }),
                smoke: None,
            };
            (format!("w{j}"), worker)
        })
        .collect();
    Manifest {
        environment: "crash".to_owned(),
        account_id: ACCOUNT_ID.to_owned(),
        d1_databases,
        workers,
        parity: Default::default(),
        capacity: Default::default(),
    }
}

/// The account before apply: the Workers deployed with an older compatibility date, each
/// with a tag and something another tool put there (a plain-text binding on even ones, a
/// secret on odd ones), none of the databases, and another owner's rule in each of the zone's
/// phases.
fn fleet_seed() -> Value {
    let scripts: serde_json::Map<String, Value> = (0..WORKERS)
        .map(|j| {
            let name = fleet_script(j);
            let (bindings, secrets) = if j % 2 == 0 {
                let legacy = json!({"name": "LEGACY_MODE", "type": "plain_text", "text": "1"});
                (vec![legacy], json!({}))
            } else {
                let old = json!({"name": "OLD_WEBHOOK_SECRET", "type": "secret_text"});
                (vec![old], json!({"OLD_WEBHOOK_SECRET": "1".repeat(64)}))
            };
            let module =
                format!("export default {{ fetch() {{ return new Response(\"{name}\"); }} }};");
            let script = json!({
                "created_on": "2024-12-02T09:30:00Z",
                "modified_on": "2024-12-02T09:30:00Z",
                "main_module": "worker.js",
                "modules": [{"name": "worker.js", "content_type": "application/javascript+module", "content": module}],
                "settings": {"compatibility_date": "2024-09-23", "tags": [format!("{TAG}{name}")]},
                "bindings": bindings,
                "secrets": secrets,
            });
            (name, script)
        })
        .collect();
    let [headers, limits] = foreign_rules();
    json!({
        "account": {
            "id": ACCOUNT_ID,
            "name": "Crash",
            "created_on": "2024-11-01T08:00:00Z",
            "subdomain": "example",
            "scripts": scripts,
            "d1_databases": [],
        },
        "user": {"id": "fedcba9876543210fedcba9876543210", "email": "ops@example.com"},
        "zones": [seeded_zone(json!({
            "http_response_headers_transform": seeded_ruleset(1, vec![headers]),
            "http_ratelimit": seeded_ruleset(2, vec![limits]),
        }))],
    })
}

/// The fleet's project (manifest and seed) in a temporary folder.
struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let yaml = yaml_serde::to_string(&fleet_manifest()).expect("a manifest serialises");
        std::fs::create_dir(dir.path().join("environments")).expect("environments");
        std::fs::write(dir.path().join("environments/crash.yaml"), yaml).expect("manifest");
        std::fs::create_dir(dir.path().join("migrations")).expect("migrations");
        std::fs::write(dir.path().join("migrations").join(MIGRATION.0), MIGRATION.1)
            .expect("migration");
        std::fs::write(dir.path().join("seed.json"), fleet_seed().to_string()).expect("seed");
        Fleet { dir }
    }

    /// A sandbox seeded with the fleet's account, watched by a killer.
    fn sandbox(&self) -> (TestSandbox, Arc<Killer>) {
        let seed = self.dir.path().join("seed.json");
        Killer::sandbox(|config| config.seed = Some(seed))
    }

    fn command(&self, sandbox: &TestSandbox) -> Lmsinfra {
        Lmsinfra::new(sandbox).args(["--dir".as_ref(), self.dir.path().as_os_str()])
    }

    fn apply(&self, sandbox: &TestSandbox) -> Lmsinfra {
        let mut apply = self.command(sandbox).args([
            "apply",
            "crash",
            "--auto-approve",
            "--concurrency",
            CONCURRENCY,
        ]);
        for name in FLEET_SECRETS {
            apply = apply
                .args(["--secret".to_owned(), format!("{name}=env:CRASH_{name}")])
                .env(&format!("CRASH_{name}"), format!("value of {name}"));
        }
        apply
    }
}

/// Every Worker's writes of one run: at most two each (its settings with its secrets, its
/// Workers Logs), and none to a Worker the sandbox's answer does not name.
fn assert_writes_per_worker(killer: &Killer, run: &str) {
    let per_worker = killer.per_worker();
    assert!(
        !per_worker.contains_key(""),
        "{run}: a Worker write whose answer names no seeded Worker: {per_worker:?}"
    );
    let over: Vec<_> = per_worker.iter().filter(|(_, n)| **n > 2).collect();
    assert!(
        over.is_empty(),
        "{run}: Workers written more than twice: {over:?}"
    );
}

#[test]
fn a_parallel_apply_killed_after_any_write_converges_on_the_next_run_without_duplicates_or_losses()
{
    let fleet = Fleet::new();

    // A whole apply, to count its writes: the kills below stop the process after each of them.
    let (sandbox, killer) = fleet.sandbox();
    killer.next_run(&sandbox, 0);
    let whole = killer.run(fleet.apply(&sandbox));
    assert!(
        whole.status.success(),
        "a whole apply fails:\n{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let writes = killer.writes();
    assert!(writes >= 20, "a whole apply writes {writes} times");
    assert_writes_per_worker(&killer, "a whole apply");
    assert_eq!(
        killer.per_worker().len(),
        WORKERS,
        "every Worker is written: {:?}",
        killer.per_worker()
    );
    drop(sandbox);

    for k in 1..=writes {
        let (sandbox, killer) = fleet.sandbox();
        let before = read_state(&sandbox);

        killer.next_run(&sandbox, k);
        let output = killer.run(fleet.apply(&sandbox));
        assert!(
            killed(&output),
            "apply should be killed after write {k}: {output:?}"
        );
        assert!(killer.writes() >= k, "writes done when killed at {k}");
        assert_writes_per_worker(&killer, &format!("the apply killed at write {k}"));

        killer.next_run(&sandbox, 0);
        let again = killer.run(fleet.apply(&sandbox));
        assert!(
            again.status.success(),
            "apply after a kill at write {k} fails:\n{}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_writes_per_worker(&killer, &format!("the apply after a kill at write {k}"));
        let plan = fleet
            .command(&sandbox)
            .args(["plan", "crash", "--detailed-exitcode", "--no-probe"])
            .output();
        assert_eq!(
            plan.status.code(),
            Some(0),
            "plan after a kill at write {k}:\n{}",
            String::from_utf8_lossy(&plan.stdout)
        );

        assert_nothing_duplicated_or_lost(&sandbox, &before, k);
    }
}

/// One database per name, each migration run once; every binding, secret, tag and other
/// owner's rule of `before` still there, every secret with its value; the declared secrets hold
/// theirs.
fn assert_nothing_duplicated_or_lost(sandbox: &TestSandbox, before: &Value, k: usize) {
    let after = &read_state(sandbox);
    let databases = after["account"]["d1_databases"]
        .as_array()
        .expect("databases");
    for i in 0..DATABASES {
        let name = fleet_database(i);
        let named: Vec<_> = databases.iter().filter(|d| d["name"] == name).collect();
        assert_eq!(
            named.len(),
            1,
            "databases named {name} after a kill at write {k}"
        );
        if i < MIGRATED {
            let id = named[0]["uuid"].as_str().expect("uuid");
            assert_eq!(
                ledger(sandbox, id),
                [MIGRATION.0],
                "{name}'s ledger after a kill at write {k}"
            );
        }
    }
    let kept = binding_names_by_script(after);
    for (script, names) in binding_names_by_script(before) {
        let lost: Vec<_> = names.difference(&kept[&script]).collect();
        assert!(
            lost.is_empty(),
            "{script} lost {lost:?} after a kill at write {k}"
        );
    }
    let manifest = fleet_manifest();
    for worker in manifest.workers.values() {
        let script = &after["account"]["scripts"][&worker.name];
        let seeded = &before["account"]["scripts"][&worker.name];
        for (name, digest) in seeded["secrets"].as_object().expect("secrets") {
            assert_eq!(
                &script["secrets"][name], digest,
                "{}'s {name} after a kill at write {k}",
                worker.name
            );
        }
        for name in &worker.secrets {
            assert_eq!(
                script["secrets"][name],
                json!(secret_digest(after, &format!("value of {name}"))),
                "{}'s {name} after a kill at write {k}",
                worker.name
            );
        }
        assert_eq!(
            script["settings"]["tags"], seeded["settings"]["tags"],
            "{}'s tags after a kill at write {k}",
            worker.name
        );
    }
    for (phase, foreign) in PHASES.iter().zip(foreign_rules()) {
        let rules = zone_rules(after, phase);
        assert!(
            kept_unchanged(&rules, &foreign),
            "{phase} lost or changed {} after a kill at write {k}: {rules:?}",
            foreign["ref"]
        );
    }
}
