//! How fast `apply` is, measured against the in-process sandbox with injected latency.
//!
//! An apply's cost is round trips and Cloudflare's request budget: the sandbox delays every
//! answer by a fixed latency and counts requests the way Cloudflare does (1200 per 5 minutes
//! per user, the real limit), so the difference between the median wall time at 50 ms and at
//! 0 ms, divided by 50 ms, is the number of round trips on the critical path. Every sample runs
//! the real binary, `lmsinfra apply ENV --auto-approve --no-verify`, as a child process (its
//! peak RSS read with `wait4`) against a sandbox in a fresh state, for staging's first apply on
//! the audited account (workload A) and for 200 Workers and 50 new D1 databases (workload B),
//! straight and from a plan saved by `plan --out` (the pipeline's way; the plan runs against
//! the same state beforehand, on a budget of its own, as a pull request's plan does), and once
//! more on an account whose budget another token has half spent. The sandbox's observer counts
//! the writes (non-GET requests) to each Worker. The same end state is then reached with the
//! wrangler commands the audited scripts run, pointed at the same sandbox at 50 ms. It prints
//! the table, then PASS/FAIL per target, and exits non-zero on a miss. Run it with
//! `cargo bench --bench apply`; it is never part of `cargo test`.

#[path = "support/child.rs"]
mod child;
#[path = "support/workload_b.rs"]
mod workload_b;
#[path = "support/wrangler.rs"]
mod wrangler;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lmsinfra_sandbox::{BusyAccount, Sandbox, SandboxConfig};
use workload_b::{ACCOUNT_ID, DATABASES, WORKERS};
use wrangler::Wrangler;

const TOKEN: &str = "bench-token";
const MIB: u64 = 1024 * 1024;
/// Workload B's `--concurrency`: wide, yet leaving the run the budget it needs. The client
/// keeps a reserve of the reported budget that is never less than its concurrency, so at 128
/// it may use 1,072 of Cloudflare's 1,200 requests, enough for B straight (about 1,050: a
/// whole read, then a re-read and a write per Worker) and from its saved plan (about 650).
const WIDE: usize = 128;
/// The command line's cap, for information: its reserve of 256 leaves 944 requests, enough for
/// B from its saved plan; a straight apply of B would wait for Cloudflare's 5-minute window.
const WIDEST: usize = 256;
/// apply's default `--concurrency`.
const DEFAULT_CONCURRENCY: usize = 16;
/// Samples per configuration and latency.
const A_SAMPLES: usize = 11;
const B_SAMPLES: usize = 3;
/// A sample still running after this long is stopped and the configuration reported as not
/// finished, so one slow configuration cannot hold the whole benchmark up.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// The busy account of "B busy": half of Cloudflare's 1200 spent by another token, leaving the
/// window 10 s after the start.
const BUSY: BusyAccount = BusyAccount {
    used: 600,
    frees_in: Duration::from_secs(10),
};
/// What stderr says while apply waits for the budget (`src/cloudflare/pace.rs`).
const WAITING: &str = "for Cloudflare's rate limit";
/// Staging's required secrets (workload A).
const STAGING_SECRETS: [&str; 4] = [
    "TALLY_WEBHOOK_SECRET",
    "TALLY_SIGNING_SECRET",
    "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
    "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lmsinfra() -> &'static str {
    env!("CARGO_BIN_EXE_lmsinfra")
}

/// One environment to apply: the project folder, the account it starts from, its secrets.
struct Workload {
    name: &'static str,
    dir: PathBuf,
    environment: &'static str,
    seed: PathBuf,
    secrets: Vec<&'static str>,
}

/// How apply is started.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    /// `apply ENV`: apply plans for itself.
    Straight,
    /// `plan ENV --out FILE` first, then `apply ENV --plan FILE` (timed).
    SavedPlan,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::Straight => "apply",
            Way::SavedPlan => "apply --plan",
        }
    }
}

/// What one apply did.
struct Sample {
    code: i32,
    wall: Duration,
    peak_rss: u64,
    requests: u64,
    throttled: u64,
    writes_per_worker: u64,
    waited: bool,
    stderr: String,
}

/// A sandbox in a fresh state whose observer counts the writes to each Worker.
struct Counted {
    sandbox: Sandbox,
    writes: Arc<Mutex<BTreeMap<String, u64>>>,
}

fn start_sandbox(
    seed: &Path,
    state: Option<&Path>,
    latency_ms: u64,
    busy_account: Option<BusyAccount>,
) -> Counted {
    let writes = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let counted = writes.clone();
    let sandbox = Sandbox::start(SandboxConfig {
        seed: Some(seed.to_owned()),
        state: state.map(Path::to_owned),
        latency: Duration::from_millis(latency_ms),
        busy_account,
        observer: Some(Arc::new(move |exchange| {
            if exchange.method == "GET" {
                return;
            }
            let Some((_, rest)) = exchange.path.split_once("/workers/scripts/") else {
                return;
            };
            let script = rest.split('/').next().unwrap_or_default().to_owned();
            *counted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(script)
                .or_default() += 1;
        })),
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts");
    Counted { sandbox, writes }
}

/// `lmsinfra --color never --dir DIR` pointed at `sandbox`.
fn command(sandbox: &Sandbox, dir: &Path) -> Command {
    let mut command = Command::new(lmsinfra());
    command
        .args(["--color", "never", "--dir"])
        .arg(dir)
        .env("CLOUDFLARE_API_BASE_URL", sandbox.base_url())
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
        .env("NO_COLOR", "1");
    command
}

/// One apply of `workload` in a fresh sandbox; `None` when it ran past [`TIME_LIMIT`].
fn apply_once(
    workload: &Workload,
    way: Way,
    latency_ms: u64,
    concurrency: usize,
    busy: Option<BusyAccount>,
) -> Option<Sample> {
    let scratch = tempfile::tempdir().expect("temp dir");
    let saved = scratch.path().join("plan.json");
    // The account apply starts from. The timed sandbox keeps it in memory: a state file is
    // rewritten whole after every change, which for B's 200 Workers costs the sandbox more
    // than the whole apply costs the client.
    let mut start = workload.seed.clone();
    if way == Way::SavedPlan {
        start = scratch.path().join("planned.json");
        let planner = start_sandbox(&workload.seed, Some(&start), 0, None);
        let (code, _, _) = child::run(
            Stdio::null(),
            command(&planner.sandbox, &workload.dir)
                .args(["plan", workload.environment, "--no-probe", "--out"])
                .arg(&saved),
        );
        // Blocked on the secrets apply will be given (3), or changes (0).
        assert!(code == 0 || code == 3, "plan --out exited {code}");
    }
    let counted = start_sandbox(&start, None, latency_ms, busy);
    let mut apply = command(&counted.sandbox, &workload.dir);
    apply
        .args(["--concurrency", &concurrency.to_string()])
        .args([
            "apply",
            workload.environment,
            "--auto-approve",
            "--no-verify",
        ]);
    if way == Way::SavedPlan {
        apply.arg("--plan").arg(&saved);
    }
    for (i, name) in workload.secrets.iter().enumerate() {
        let var = format!("LMSINFRA_BENCH_SECRET_{i}");
        apply
            .env(&var, format!("bench value of {name}"))
            .args(["--secret", &format!("{name}=env:{var}")]);
    }
    let log = scratch.path().join("stderr.log");
    let stderr = Stdio::from(std::fs::File::create(&log).expect("stderr log"));
    let (code, wall, peak_rss) = child::run_within(stderr, &mut apply, Some(TIME_LIMIT))?;
    let stats = counted.sandbox.stats();
    let writes_per_worker = counted
        .writes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .copied()
        .max()
        .unwrap_or(0);
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    Some(Sample {
        code,
        wall,
        peak_rss,
        requests: stats.total,
        throttled: stats.statuses.get(&429).copied().unwrap_or(0),
        writes_per_worker,
        waited: stderr.contains(WAITING),
        stderr,
    })
}

/// The samples of one configuration at one latency; stops early at the first that fails or
/// runs past the time limit.
fn samples(
    workload: &Workload,
    way: Way,
    latency_ms: u64,
    concurrency: usize,
    count: usize,
) -> Result<Vec<Sample>, String> {
    let mut taken = Vec::new();
    for _ in 0..count {
        let Some(sample) = apply_once(workload, way, latency_ms, concurrency, None) else {
            return Err(format!("not finished in {} s", TIME_LIMIT.as_secs()));
        };
        if sample.code != 0 {
            let tail: Vec<&str> = sample.stderr.lines().rev().take(8).collect();
            eprintln!(
                "{} {} at {latency_ms} ms exited {}:\n{}",
                workload.name,
                way.label(),
                sample.code,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            return Err(format!("exit {}", sample.code));
        }
        taken.push(sample);
    }
    Ok(taken)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// One configuration, measured at 0 and 50 ms.
struct Row {
    what: String,
    way: Way,
    concurrency: usize,
    at_0: Result<Vec<Sample>, String>,
    at_50: Result<Vec<Sample>, String>,
}

impl Row {
    fn measure(workload: &Workload, way: Way, concurrency: usize, count: usize) -> Row {
        let at_0 = samples(workload, way, 0, concurrency, count);
        let at_50 = samples(workload, way, 50, concurrency, count);
        Row {
            what: workload.name.to_owned(),
            way,
            concurrency,
            at_0,
            at_50,
        }
    }

    fn median(samples: &Result<Vec<Sample>, String>) -> Option<Duration> {
        samples
            .as_ref()
            .ok()
            .map(|s| median(s.iter().map(|s| s.wall).collect()))
    }

    fn round_trips(&self) -> Option<f64> {
        let (fast, slow) = (Row::median(&self.at_0)?, Row::median(&self.at_50)?);
        Some((slow.as_secs_f64() - fast.as_secs_f64()) / 0.050)
    }

    /// Over every finished sample at both latencies.
    fn most<T: Ord + Copy>(&self, of: impl Fn(&Sample) -> T) -> Option<T> {
        let all: Vec<&Sample> = [&self.at_0, &self.at_50]
            .into_iter()
            .filter_map(|s| s.as_ref().ok())
            .flatten()
            .collect();
        all.iter().map(|s| of(s)).max()
    }

    fn print(&self) {
        let time = |samples: &Result<Vec<Sample>, String>| match (samples, Row::median(samples)) {
            (_, Some(median)) => format!("{:.1} ms", median.as_secs_f64() * 1000.0),
            (Err(why), None) => why.clone(),
            (Ok(_), None) => "-".to_owned(),
        };
        let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
        println!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.what,
            self.way.label(),
            self.concurrency,
            time(&self.at_0),
            time(&self.at_50),
            or_dash(self.round_trips().map(|r| format!("{r:.1}"))),
            or_dash(self.most(|s| s.requests).map(|r| r.to_string())),
            or_dash(self.most(|s| s.writes_per_worker).map(|r| r.to_string())),
            or_dash(self.most(|s| s.throttled).map(|r| r.to_string())),
            or_dash(
                self.most(|s| s.peak_rss)
                    .map(|r| format!("{:.1} MiB", r as f64 / MIB as f64))
            ),
        );
    }
}

/// A target: its description, and whether the run met it.
struct Target {
    what: String,
    measured: String,
    met: bool,
}

impl Target {
    fn new(what: impl Into<String>, measured: impl Into<String>, met: bool) -> Target {
        Target {
            what: what.into(),
            measured: measured.into(),
            met,
        }
    }

    /// Met when `row`'s median at 50 ms is within `budget`.
    fn median_within(what: String, row: &Row, budget: Duration) -> Target {
        let median = Row::median(&row.at_50);
        Target::new(
            what,
            median.map_or_else(
                || "did not finish".to_owned(),
                |m| format!("{:.1} ms", m.as_secs_f64() * 1000.0),
            ),
            median.is_some_and(|m| m <= budget),
        )
    }
}

/// A copy of the LMS project whose staging manifest has no `migrations:` entry: staging's
/// first apply as the issue measured it (gather, create, one write per Worker, the
/// convergence read), without the two D1 imports the migrations add.
fn without_migrations(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("environments")).expect("environments folder");
    let manifest = std::fs::read_to_string(root().join("environments/staging.yaml"))
        .expect("staging's manifest");
    let kept: String = manifest
        .lines()
        .filter(|line| !line.trim_start().starts_with("migrations:"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(kept.len(), manifest.len(), "staging declares migrations");
    std::fs::write(dir.join("environments/staging.yaml"), kept).expect("manifest written");
    dir.to_owned()
}

/// The wrangler side of workload A at 50 ms: the commands the audited scripts run to reach the
/// state staging's first apply reaches, one after another (`d1 create`; `deploy` of the api
/// Worker with the configuration `lmsinfra wrangler-config` writes, its bindings, vars and
/// observability; `secret bulk` of its four secrets), with `d1 migrations apply`
/// after the create when `project`'s staging declares migrations. Their wall time, and what a
/// plan of `project`'s staging says afterwards.
fn wrangler_a(wrangler: &Wrangler, project: &Path, migrations: bool) -> (Duration, String) {
    let scratch = tempfile::tempdir().expect("temp dir");
    let seed = root().join("examples/sandbox/audited-account.json");
    let counted = start_sandbox(&seed, None, 50, None);
    let sandbox = &counted.sandbox;
    let mut took = wrangler.run(
        sandbox,
        &["d1", "create", "lms-db-staging", "--location", "weur"],
    );
    // The scripts keep a wrangler configuration in the repository; writing it is not timed.
    let work = scratch.path().join("api");
    std::fs::create_dir_all(&work).expect("work folder");
    std::fs::copy(
        root().join("tests/fixtures/worker/index.js"),
        work.join("index.js"),
    )
    .expect("worker copied");
    let (code, _, _) = child::run(
        Stdio::null(),
        command(sandbox, project)
            .args(["wrangler-config", "staging", "--worker", "api", "--main"])
            .arg("index.js")
            .arg("--write")
            .arg(work.join("wrangler.json")),
    );
    assert_eq!(code, 0, "wrangler-config staging");
    let config = work.join("wrangler.json");
    let mut written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).expect("configuration")).expect("JSON");
    if migrations {
        // wrangler's own ledger, the one lmsinfra's migrations write too.
        written["env"]["staging"]["d1_databases"][0]["migrations_dir"] = "migrations".into();
        std::fs::create_dir_all(work.join("migrations")).expect("migrations folder");
        for entry in std::fs::read_dir(root().join("migrations")).expect("the LMS's migrations") {
            let entry = entry.expect("an entry");
            if entry.file_type().expect("a type").is_file() {
                std::fs::copy(
                    entry.path(),
                    work.join("migrations").join(entry.file_name()),
                )
                .expect("migration copied");
            }
        }
    }
    std::fs::write(&config, written.to_string()).expect("configuration written");
    if migrations {
        took += wrangler.run_in(
            sandbox,
            &work,
            &[
                "d1",
                "migrations",
                "apply",
                "lms-db-staging",
                "--remote",
                "--env",
                "staging",
            ],
        );
    }
    let secrets = work.join("secrets.json");
    let values: serde_json::Map<String, serde_json::Value> = STAGING_SECRETS
        .iter()
        .map(|name| ((*name).to_owned(), format!("bench value of {name}").into()))
        .collect();
    std::fs::write(&secrets, serde_json::to_vec(&values).expect("JSON")).expect("secrets file");
    took += wrangler.run_in(sandbox, &work, &["deploy", "--env", "staging"]);
    took += wrangler.run_in(
        sandbox,
        &work,
        &[
            "secret",
            "bulk",
            "secrets.json",
            "--name",
            "lms-api-staging",
        ],
    );
    let (code, _, _) = child::run(
        Stdio::null(),
        command(sandbox, project).args(["plan", "staging", "--no-probe", "--detailed-exitcode"]),
    );
    let verdict = match code {
        0 => "a plan afterwards finds nothing to do".to_owned(),
        2 => "a plan afterwards still finds changes".to_owned(),
        other => format!("a plan afterwards exits {other}"),
    };
    (took, verdict)
}

/// The wrangler side of workload B at 50 ms, from a measured sample scaled linearly (every
/// wrangler process costs about the same): `d1 create` for 2 of the 50 databases, `deploy`
/// and `secret bulk` for 3 of the 200 Workers.
fn wrangler_b(wrangler: &Wrangler, project: &Path, seed: &Path) -> (f64, Duration) {
    let scratch = tempfile::tempdir().expect("temp dir");
    let counted = start_sandbox(seed, None, 50, None);
    let sandbox = &counted.sandbox;
    let creates = 2;
    let mut creating = Duration::ZERO;
    for db in 0..creates {
        creating += wrangler.run(sandbox, &["d1", "create", &format!("bench-db-{db:03}")]);
    }
    let values: serde_json::Map<String, serde_json::Value> = workload_b::SECRETS
        .iter()
        .map(|name| ((*name).to_owned(), format!("bench value of {name}").into()))
        .collect();
    // Worker i binds database i % 50: these three bind the two just created.
    let workers = [0, 1, DATABASES];
    let mut per_worker = Duration::ZERO;
    for i in workers {
        let work = scratch.path().join(format!("w{i:03}"));
        std::fs::create_dir_all(&work).expect("work folder");
        std::fs::copy(
            root().join("tests/fixtures/worker/index.js"),
            work.join("index.js"),
        )
        .expect("worker copied");
        std::fs::write(
            work.join("secrets.json"),
            serde_json::to_vec(&values).expect("JSON"),
        )
        .expect("secrets file");
        let (code, _, _) = child::run(
            Stdio::null(),
            command(sandbox, project)
                .args(["wrangler-config", workload_b::ENVIRONMENT, "--worker"])
                .arg(format!("w{i:03}"))
                .args(["--main", "index.js", "--write"])
                .arg(work.join("wrangler.json")),
        );
        assert_eq!(code, 0, "wrangler-config of w{i:03}");
        let name = workload_b::worker_name(i);
        per_worker += wrangler.run_in(
            sandbox,
            &work,
            &["deploy", "--env", workload_b::ENVIRONMENT],
        );
        per_worker += wrangler.run_in(
            sandbox,
            &work,
            &["secret", "bulk", "secrets.json", "--name", &name],
        );
    }
    let estimate = creating.as_secs_f64() / creates as f64 * DATABASES as f64
        + per_worker.as_secs_f64() / workers.len() as f64 * WORKERS as f64;
    (estimate, creating + per_worker)
}

fn main() -> ExitCode {
    let without = tempfile::tempdir().expect("temp dir");
    let audited = root().join("examples/sandbox/audited-account.json");
    let a = Workload {
        name: "A: staging",
        dir: root().to_owned(),
        environment: "staging",
        seed: audited.clone(),
        secrets: STAGING_SECRETS.to_vec(),
    };
    let a_bare = Workload {
        name: "A: staging without migrations",
        dir: without_migrations(without.path()),
        environment: "staging",
        seed: audited,
        secrets: STAGING_SECRETS.to_vec(),
    };
    let project_b = tempfile::tempdir().expect("temp dir");
    let b = Workload {
        name: "B: 200 workers, 50 new dbs",
        dir: project_b.path().to_owned(),
        environment: workload_b::ENVIRONMENT,
        seed: workload_b::generate(project_b.path(), false),
        secrets: workload_b::SECRETS.to_vec(),
    };

    let started = Instant::now();
    let a_rows = [
        Row::measure(&a_bare, Way::Straight, DEFAULT_CONCURRENCY, A_SAMPLES),
        Row::measure(&a, Way::Straight, DEFAULT_CONCURRENCY, A_SAMPLES),
        Row::measure(&a_bare, Way::SavedPlan, DEFAULT_CONCURRENCY, A_SAMPLES),
    ];
    let b_rows = [
        Row::measure(&b, Way::SavedPlan, WIDE, B_SAMPLES),
        Row::measure(&b, Way::Straight, WIDE, B_SAMPLES),
        Row::measure(&b, Way::SavedPlan, WIDEST, B_SAMPLES),
        Row::measure(&b, Way::SavedPlan, DEFAULT_CONCURRENCY, B_SAMPLES),
    ];
    let busy = apply_once(&b, Way::SavedPlan, 50, WIDE, Some(BUSY));

    let mut targets = Vec::new();
    let judged_a = &a_rows[0];
    let a_budget = Duration::from_millis(4 * 50 + 20);
    targets.push(Target::median_within(
        format!(
            "A (staging without migrations) at 50 ms <= 4 round trips + 20 ms = {} ms",
            a_budget.as_millis()
        ),
        judged_a,
        a_budget,
    ));
    let judged_b = &b_rows[0];
    let b_budget = Duration::from_millis(6 * 50 + 500);
    targets.push(Target::median_within(
        format!(
            "B (apply --plan, --concurrency {WIDE}) at 50 ms <= 6 round trips + 0.5 s = {} ms",
            b_budget.as_millis()
        ),
        judged_b,
        b_budget,
    ));
    let writes = judged_b.most(|s| s.writes_per_worker);
    targets.push(Target::new(
        "B <= 2 writes per Worker",
        writes.map_or("-".to_owned(), |w| w.to_string()),
        writes.is_some_and(|w| w <= 2),
    ));
    let requests = judged_b.most(|s| s.requests);
    targets.push(Target::new(
        "B <= 700 requests",
        requests.map_or("-".to_owned(), |r| r.to_string()),
        requests.is_some_and(|r| r <= 700),
    ));
    let throttled = judged_b.most(|s| s.throttled);
    targets.push(Target::new(
        "B 0 x 429 with the real limit on (1200 / 300 s)",
        throttled.map_or("-".to_owned(), |t| t.to_string()),
        throttled == Some(0),
    ));
    let rss = judged_b.most(|s| s.peak_rss);
    targets.push(Target::new(
        "B peak RSS <= 40 MiB",
        rss.map_or("-".to_owned(), |r| {
            format!("{:.1} MiB", r as f64 / MIB as f64)
        }),
        rss.is_some_and(|r| r <= 40 * MIB),
    ));
    let (busy_measured, busy_met) = match &busy {
        None => (format!("not finished in {} s", TIME_LIMIT.as_secs()), false),
        Some(s) => (
            format!(
                "exit {}, {} x 429, {:.1} s, waiting line {}",
                s.code,
                s.throttled,
                s.wall.as_secs_f64(),
                if s.waited { "shown" } else { "missing" }
            ),
            s.code == 0 && s.throttled == 0 && s.waited,
        ),
    };
    targets.push(Target::new(
        format!(
            "B busy ({} of 1200 used by another token, freeing after {} s): finishes, no 429, says it waits",
            BUSY.used,
            BUSY.frees_in.as_secs()
        ),
        busy_measured,
        busy_met,
    ));

    let wrangler = Wrangler::locate();
    let mut comparisons = Vec::new();
    if let Some(wrangler) = &wrangler {
        for (row, migrations, command) in [
            (&a_rows[0], false, "`d1 create`, `deploy`, `secret bulk`"),
            (
                &a_rows[1],
                true,
                "`d1 create`, `d1 migrations apply`, `deploy`, `secret bulk`",
            ),
        ] {
            let project = if migrations { &a.dir } else { &a_bare.dir };
            let (took, verdict) = wrangler_a(wrangler, project, migrations);
            comparisons.push(format!(
                "| {} ({command}) | {:.0} ms | {} | {verdict} |",
                row.what,
                took.as_secs_f64() * 1000.0,
                Row::median(&row.at_50).map_or("-".to_owned(), |m| format!(
                    "{:.0} ms",
                    m.as_secs_f64() * 1000.0
                )),
            ));
        }
        let (estimate, sampled) = wrangler_b(wrangler, &b.dir, &b.seed);
        comparisons.push(format!(
            "| B (`d1 create` x {DATABASES}, `deploy` + `secret bulk` x {WORKERS}; measured {:.1} s for 2 creates and 3 Workers, scaled) | ~{estimate:.0} s | {} | - |",
            sampled.as_secs_f64(),
            Row::median(&judged_b.at_50).map_or("-".to_owned(), |m| format!(
                "{:.0} ms",
                m.as_secs_f64() * 1000.0
            )),
        ));
    }

    println!(
        "| workload | command | concurrency | median 0 ms | median 50 ms | round trips | requests | writes per Worker | 429s | peak RSS |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in a_rows.iter().chain(&b_rows) {
        row.print();
    }
    if let Some(s) = &busy {
        println!(
            "| B busy ({} used, frees in {} s) | `apply --plan` | {WIDE} | - | {:.1} ms | - | {} | {} | {} | {:.1} MiB |",
            BUSY.used,
            BUSY.frees_in.as_secs(),
            s.wall.as_secs_f64() * 1000.0,
            s.requests,
            s.writes_per_worker,
            s.throttled,
            s.peak_rss as f64 / MIB as f64
        );
    }
    println!();
    println!(
        "Judged: A without migrations (`apply`), B from the saved plan at --concurrency {WIDE}; the other rows are for information."
    );
    println!();
    match &wrangler {
        None => println!(
            "wrangler: skipped (set LMSINFRA_WRANGLER to a wrangler executable; .ci/run installs one)"
        ),
        Some(_) => {
            println!("| wrangler at 50 ms | wrangler | lmsinfra apply | end state |");
            println!("| --- | ---: | ---: | --- |");
            for line in &comparisons {
                println!("{line}");
            }
        }
    }
    println!();
    for target in &targets {
        let verdict = if target.met { "PASS" } else { "FAIL" };
        println!("{verdict}  {}: {}", target.what, target.measured);
    }
    println!();
    println!("(measured in {:.0} s)", started.elapsed().as_secs_f64());
    if targets.iter().all(|t| t.met) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
