//! How fast `plan` is, measured against the in-process sandbox with injected latency.
//!
//! `plan` is what every pull request and every apply waits for, and its cost is round trips:
//! the sandbox delays each answer by a fixed latency, so wall time divided by that latency is the
//! number of round trips on the critical path. The benchmark runs the real plan path in-process
//! (load + validate, client, gather, diff, render) for the LMS manifests (workload A) and for a
//! generated environment of 200 Workers and 50 D1 databases (workload B), takes peak memory from
//! the real binary run as a child process (`wait4` reports its peak RSS), times `validate` as a
//! whole process, and compares with the audited scripts' approach: `wrangler secret list` per
//! Worker plus `wrangler d1 list`. It prints a table, then PASS/FAIL per target, and exits
//! non-zero on a miss. Run it with `cargo bench --bench plan`; it is never part of `cargo test`.

#[path = "support/child.rs"]
mod child;
#[path = "support/workload_b.rs"]
mod workload_b;
#[path = "support/wrangler.rs"]
mod wrangler;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use lmsinfra::cloudflare::{Client, ClientConfig};
use lmsinfra::live::{self, GatherOptions};
use lmsinfra::manifest::{self, Manifest};
use lmsinfra::plan::{self, DiffOptions};
use lmsinfra::render::{self, Format};
use lmsinfra::secret::Secret;
use lmsinfra_sandbox::{RateLimit, Sandbox, SandboxConfig};
use workload_b::{ACCOUNT_ID, DATABASES, WORKERS};
use wrangler::Wrangler;

const TOKEN: &str = "bench-token";
/// Workload B's wide `--concurrency`, the command line's cap when these figures were first
/// measured (it accepts up to 256 now).
const WIDE: usize = 64;
const MIB: u64 = 1024 * 1024;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lmsinfra() -> &'static str {
    env!("CARGO_BIN_EXE_lmsinfra")
}

/// One measured configuration.
struct Row {
    what: String,
    latency_ms: u64,
    concurrency: usize,
    median: Duration,
    requests: u64,
    peak_rss: Option<u64>,
}

impl Row {
    fn round_trips(&self) -> String {
        if self.latency_ms == 0 {
            "-".to_owned()
        } else {
            format!(
                "{:.1}",
                self.median.as_secs_f64() * 1000.0 / self.latency_ms as f64
            )
        }
    }
}

/// A target: its description, and whether the run met it.
struct Target {
    what: String,
    measured: String,
    met: bool,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A sandbox seeded from `seed`. Its rate limit is lifted: one plan stays far below
/// Cloudflare's, but dozens of them back to back, as a benchmark runs them, would not.
fn start_sandbox(seed: &Path, latency_ms: u64) -> Sandbox {
    Sandbox::start(SandboxConfig {
        seed: Some(seed.to_owned()),
        latency: Duration::from_millis(latency_ms),
        rate_limit: RateLimit {
            requests: u32::MAX,
            window: Duration::from_secs(300),
        },
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts")
}

/// One plan, in-process, the way `lmsinfra plan ENV --no-probe` does it: a fresh client, one
/// gather, the diff and the text rendering.
fn plan_once(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    env: &str,
    base_url: &str,
    concurrency: usize,
) -> usize {
    let desired: Manifest = manifest::load_valid(dir, env).expect("the manifest is valid");
    let mut config = ClientConfig::new(base_url, Secret::new(TOKEN.to_owned()), ACCOUNT_ID);
    config.concurrency = concurrency;
    let client = Client::new(config).expect("the client builds");
    let options = GatherOptions {
        probes: false,
        ..GatherOptions::default()
    };
    let live = runtime
        .block_on(live::gather(&desired, &client, options))
        .expect("gather succeeds");
    let plan = plan::diff(&desired, &live, &DiffOptions::default());
    render::render(&plan, Format::Text, false).len()
}

/// The median of `runs` in-process plans (after one warm-up), and the requests one plan makes.
fn measure_plan(
    runtime: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    dir: &Path,
    env: &str,
    concurrency: usize,
    runs: usize,
) -> (Duration, u64) {
    let url = sandbox.base_url();
    plan_once(runtime, dir, env, &url, concurrency);
    let before = sandbox.stats().total;
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(plan_once(runtime, dir, env, &url, concurrency));
            start.elapsed()
        })
        .collect();
    let requests = (sandbox.stats().total - before) / runs as u64;
    (median(samples), requests)
}

/// `lmsinfra plan ENV --no-probe` as a process against `sandbox`: its peak RSS.
fn plan_process_rss(dir: &Path, env: &str, sandbox: &Sandbox, concurrency: usize) -> u64 {
    let (code, _, rss) = child::run(
        Stdio::null(),
        Command::new(lmsinfra())
            .args(["--color", "never", "-q", "--dir"])
            .arg(dir)
            .args(["--concurrency", &concurrency.to_string()])
            .args(["plan", env, "--no-probe"])
            .env("CLOUDFLARE_API_BASE_URL", sandbox.base_url())
            .env("CLOUDFLARE_API_TOKEN", TOKEN)
            .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID),
    );
    assert!(code == 0 || code == 3, "plan {env} exited {code}");
    rss
}

/// wrangler's approach, as the audited scripts run it: `wrangler d1 list`, then
/// `wrangler secret list --name SCRIPT` for each Worker, one process after another; the wall
/// time of them all.
fn survey(wrangler: &Wrangler, sandbox: &Sandbox, scripts: &[String]) -> Duration {
    let start = Instant::now();
    wrangler.run(sandbox, &["d1", "list", "--json"]);
    for script in scripts {
        wrangler.run(sandbox, &["secret", "list", "--name", script]);
    }
    start.elapsed()
}

fn script_names(dir: &Path, env: &str) -> Vec<String> {
    let desired = manifest::load_valid(dir, env).expect("the manifest is valid");
    desired.workers.into_values().map(|w| w.name).collect()
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let audited = root().join("examples/sandbox/audited-account.json");
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let wrangler = Wrangler::locate();
    let mut comparisons: Vec<String> = Vec::new();

    for latency_ms in [0, 50] {
        let sandbox = start_sandbox(&audited, latency_ms);
        for env in ["production", "staging"] {
            let runs = if latency_ms == 0 { 21 } else { 9 };
            let (median, requests) = measure_plan(&runtime, &sandbox, root(), env, 16, runs);
            let budget = Duration::from_millis(2 * latency_ms + 20);
            targets.push(Target {
                what: format!(
                    "A {env} plan at {latency_ms} ms <= {} ms",
                    budget.as_millis()
                ),
                measured: format!("{:.1} ms", median.as_secs_f64() * 1000.0),
                met: median <= budget,
            });
            let peak_rss = (latency_ms == 50).then(|| plan_process_rss(root(), env, &sandbox, 16));
            rows.push(Row {
                what: format!("A: {env}"),
                latency_ms,
                concurrency: 16,
                median,
                requests,
                peak_rss,
            });
            if let (Some(wrangler), 50) = (&wrangler, latency_ms) {
                let took = survey(wrangler, &sandbox, &script_names(root(), env));
                comparisons.push(format!(
                    "A: {env}: wrangler {:.0} ms vs lmsinfra {:.0} ms ({:.0}x)",
                    took.as_secs_f64() * 1000.0,
                    median.as_secs_f64() * 1000.0,
                    took.as_secs_f64() / median.as_secs_f64()
                ));
            }
        }
    }

    let project = tempfile::tempdir().expect("temp dir");
    let seed = workload_b::generate(project.path(), true);
    for (latency_ms, concurrency) in [(0, 16), (50, 16), (50, WIDE)] {
        let sandbox = start_sandbox(&seed, latency_ms);
        let (median, requests) = measure_plan(
            &runtime,
            &sandbox,
            project.path(),
            workload_b::ENVIRONMENT,
            concurrency,
            5,
        );
        let peak_rss = (latency_ms == 50).then(|| {
            plan_process_rss(
                project.path(),
                workload_b::ENVIRONMENT,
                &sandbox,
                concurrency,
            )
        });
        if latency_ms == 50 && concurrency == WIDE {
            targets.push(Target {
                what: format!("B plan at 50 ms, --concurrency {WIDE} <= 1000 ms"),
                measured: format!("{:.0} ms", median.as_secs_f64() * 1000.0),
                met: median <= Duration::from_secs(1),
            });
            targets.push(Target {
                what: "B plan <= 253 requests".to_owned(),
                measured: requests.to_string(),
                met: requests <= 253,
            });
            let rss = peak_rss.unwrap_or(u64::MAX);
            targets.push(Target {
                what: "B plan peak RSS <= 40 MiB".to_owned(),
                measured: format!("{:.1} MiB", rss as f64 / MIB as f64),
                met: rss <= 40 * MIB,
            });
            if let Some(wrangler) = &wrangler {
                // Every `wrangler` process costs the same; ten Workers stand for two hundred.
                let sample = 10;
                let names: Vec<String> = (0..sample).map(workload_b::worker_name).collect();
                let took = survey(wrangler, &sandbox, &names);
                let one_list = took.as_secs_f64() / (sample + 1) as f64;
                let estimate = one_list * (WORKERS + 1) as f64;
                comparisons.push(format!(
                    "B: wrangler ~{estimate:.0} s (measured {:.1} s for d1 list + {sample} secret lists, scaled to {WORKERS}) vs lmsinfra {:.0} ms ({:.0}x)",
                    took.as_secs_f64(),
                    median.as_secs_f64() * 1000.0,
                    estimate / median.as_secs_f64()
                ));
            }
        }
        rows.push(Row {
            what: format!("B: {WORKERS} workers, {DATABASES} dbs"),
            latency_ms,
            concurrency,
            median,
            requests,
            peak_rss,
        });
    }

    let samples: Vec<Duration> = (0..15)
        .map(|_| {
            let (code, took, _) = child::run(
                Stdio::null(),
                Command::new(lmsinfra())
                    .args(["--color", "never", "-q", "--dir"])
                    .arg(root())
                    .arg("validate"),
            );
            assert_eq!(code, 0, "validate of the LMS manifests fails");
            took
        })
        .collect();
    let validate = median(samples);
    targets.push(Target {
        what: "validate (whole process) <= 10 ms".to_owned(),
        measured: format!("{:.1} ms", validate.as_secs_f64() * 1000.0),
        met: validate <= Duration::from_millis(10),
    });

    println!("| workload | latency | concurrency | median | round trips | requests | peak RSS |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in &rows {
        println!(
            "| {} | {} ms | {} | {:.1} ms | {} | {} | {} |",
            row.what,
            row.latency_ms,
            row.concurrency,
            row.median.as_secs_f64() * 1000.0,
            row.round_trips(),
            row.requests,
            row.peak_rss.map_or("-".to_owned(), |r| format!(
                "{:.1} MiB",
                r as f64 / MIB as f64
            )),
        );
    }
    println!(
        "| validate (process) | - | - | {:.1} ms | - | 0 | - |",
        validate.as_secs_f64() * 1000.0
    );
    println!();
    if wrangler.is_none() {
        println!(
            "wrangler: skipped (set LMSINFRA_WRANGLER to a wrangler executable; .ci/run installs one)"
        );
    }
    for line in &comparisons {
        println!("wrangler at 50 ms, {line}");
    }
    println!();
    for target in &targets {
        let verdict = if target.met { "PASS" } else { "FAIL" };
        println!("{verdict}  {}: {}", target.what, target.measured);
    }
    if targets.iter().all(|t| t.met) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
