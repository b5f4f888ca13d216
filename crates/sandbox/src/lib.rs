//! The sandbox: a local emulator of the Cloudflare API subset lmsinfra uses.
//!
//! No machine that builds or tests lmsinfra reaches Cloudflare, so the client, the plan/apply
//! loop and real third-party clients (`wrangler`, pointed here with `CLOUDFLARE_API_BASE_URL`)
//! are all exercised against this server instead. It serves `/client/v4` on loopback only,
//! answers in Cloudflare's envelope with Cloudflare's error codes, keeps its account in a JSON
//! state file (saved atomically after every change) and each D1 database in a real SQLite file.
//!
//! Beyond the API it can make life hard on purpose: `latency` delays every answer, a
//! [`FaultSpec`] injects throttling, server errors, dropped connections, slow answers and creates
//! that fail *after* taking effect (grammar in [`faults`]), and the rate limit
//! mirrors Cloudflare's 1200 requests per five minutes. `GET /__sandbox/stats` counts requests
//! per route and status; `POST /__sandbox/stats/reset` zeroes the counters. For tests of
//! read-modify-write clients, an [`Interleave`] makes another client's ruleset write land right
//! after a chosen read.
//!
//! D1's data lifecycle is emulated so that migrations, backups, restores and restore drills can
//! be built and tested without Cloudflare:
//!
//! - `POST …/d1/database/{id}/export`: a real SQLite dump honouring `dump_options`, through the
//!   polling protocol, downloaded from a signed URL on the sandbox (`/__sandbox/blob/<id>`) that
//!   needs no token and expires after an hour; an export nobody polls for 60 seconds is
//!   cancelled, and while one runs `/query` on that database answers 409 (7409) (module
//!   `d1_export`).
//! - `POST …/d1/database/{id}/import`: init (md5) → PUT to `/__sandbox/blob/upload/<file>` →
//!   ingest → poll, the whole file in one transaction (module `d1_import`).
//! - `GET …/time_travel/bookmark[?timestamp=]` and `POST …/time_travel/restore?bookmark=|timestamp=`:
//!   a snapshot after every committed write, sortable bookmarks, the 30-day window and 10
//!   restores per 10 minutes (module `time_travel`).
//! - `GET|POST …/r2/buckets`, `GET|DELETE …/r2/buckets/{b}`, `GET …/r2/buckets/{b}/objects` and
//!   `PUT|GET|DELETE …/r2/buckets/{b}/objects/{key}`, as far as backups need them (module `r2`).
//! - `GET|POST /__sandbox/clock` reads or moves the sandbox's [`Clock`] (`{"advance_secs": N}` or
//!   `{"set": "<RFC 3339>"}`); [`Sandbox::clock`] and [`SandboxConfig::clock`] do the same in
//!   process. Everything time-bound above reads that clock.
//!
//! Two [`SandboxConfig`] switches (also `lmsinfra sandbox` flags) make D1 worse on purpose:
//! `d1_query_non_atomic` (`--d1-query-non-atomic`) commits `/query` statement by statement, so a
//! failure keeps the statements before it, as real D1 may; `corrupt_imports`
//! (`--corrupt-imports`) makes imports drop every other `INSERT` while reporting success, so a
//! restore drill can be shown to catch a bad restore. `/query` refuses `BEGIN`, `COMMIT`,
//! `SAVEPOINT` and the like with D1's message in both modes.
//!
//! Where the official schema and notes are silent, the sandbox picks the strictest behaviour
//! Cloudflare could plausibly have (see each module), so a client that works here is unlikely to
//! be surprised by the real API.

mod auth;
mod clock;
mod d1;
mod d1_export;
mod d1_import;
mod envelope;
mod error;
pub mod faults;
mod identity;
mod lifecycle;
mod multipart;
mod r2;
mod ratelimit;
mod request;
mod route;
mod server;
mod state;
mod stats;
mod time_travel;
mod workers;
mod world;
mod zones;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use clock::Clock;
pub use error::Error;
pub use faults::{FaultSpec, FaultSpecError};
pub use ratelimit::RateLimit;
pub use state::InvalidAccount;
pub use stats::Stats;
pub use zones::Interleave;

/// Called once per answered request (dropped connections excepted); tests validate bodies here.
pub type Observer = Arc<dyn Fn(&Exchange) + Send + Sync>;

/// One request and its answer, as the observer sees it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The HTTP method.
    pub method: String,
    /// The matched route template, e.g. `/accounts/{account_id}/d1/database`.
    pub route: Option<String>,
    /// The operation id in the official schema, when the route matched.
    pub operation: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// The JSON body sent.
    pub body: Value,
}

/// How to run a sandbox.
#[derive(Clone, Default)]
pub struct SandboxConfig {
    /// Where to listen; `None` picks a free port on 127.0.0.1. Must be a loopback address.
    pub listen: Option<SocketAddr>,
    /// The state file; `None` keeps everything in memory.
    pub state: Option<PathBuf>,
    /// The account to start from when the state file does not exist yet.
    pub seed: Option<PathBuf>,
    /// Extra delay before every answer.
    pub latency: Duration,
    /// Faults to inject.
    pub faults: Option<FaultSpec>,
    /// The only token accepted; any non-empty token when `None`.
    pub token: Option<String>,
    /// The per-token rate limit.
    pub rate_limit: RateLimit,
    /// Sees every answer.
    pub observer: Option<Observer>,
    /// A concurrent ruleset write to make after a given read (a test hook).
    pub interleave: Option<Interleave>,
    /// The clock Time Travel, exports, signed URLs and R2 dates read; real time by default.
    pub clock: Clock,
    /// D1 `/query` and `/raw` commit each statement on its own, so the statements before a
    /// failing one stay (the worse case D1 may have); by default a request is one transaction.
    pub d1_query_non_atomic: bool,
    /// D1 imports silently skip every other `INSERT` yet report success (for restore drills).
    pub corrupt_imports: bool,
}

impl SandboxConfig {
    /// What `--sandbox` uses for the project in `dir`: state in `.lmsinfra/sandbox.json`,
    /// seeded from `examples/sandbox/audited-account.json` on first use (an empty account when
    /// the project has no seed).
    pub fn for_project(dir: &Path) -> SandboxConfig {
        let seed = dir.join("examples/sandbox/audited-account.json");
        SandboxConfig {
            state: Some(dir.join(".lmsinfra/sandbox.json")),
            seed: seed.exists().then_some(seed),
            ..SandboxConfig::default()
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("listen", &self.listen)
            .field("state", &self.state)
            .field("seed", &self.seed)
            .field("latency", &self.latency)
            .field("faults", &self.faults)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("rate_limit", &self.rate_limit)
            .field("observer", &self.observer.is_some())
            .field("interleave", &self.interleave)
            .field("clock", &self.clock.now())
            .field("d1_query_non_atomic", &self.d1_query_non_atomic)
            .field("corrupt_imports", &self.corrupt_imports)
            .finish()
    }
}

/// A sandbox running on its own thread and runtime; dropping it shuts it down.
pub struct Sandbox {
    addr: SocketAddr,
    app: Arc<server::App>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish()
    }
}

impl Sandbox {
    /// Load the account, bind, and serve on a background thread.
    pub fn start(config: SandboxConfig) -> Result<Sandbox, Error> {
        let listener = bind(config.listen)?;
        let addr = listener.local_addr().map_err(start_error)?;
        let app = Arc::new(app(config, addr)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sandbox")
            .enable_all()
            .build()
            .map_err(start_error)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = app.clone();
        let thread = std::thread::Builder::new()
            .name("sandbox".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            server::serve(listener, served, async {
                                let _ = rx.await;
                            })
                            .await;
                        }
                        Err(e) => tracing::error!("sandbox listener: {e}"),
                    }
                });
                runtime.shutdown_background();
            })
            .map_err(start_error)?;
        Ok(Sandbox {
            addr,
            app,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The API base URL, e.g. `http://127.0.0.1:40123/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The request counters, as `GET /__sandbox/stats` shows them.
    pub fn stats(&self) -> Stats {
        self.app.counters.snapshot()
    }

    /// The sandbox's clock; setting or advancing it moves the sandbox's time.
    pub fn clock(&self) -> Clock {
        self.app
            .world
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lifecycle
            .clock
            .clone()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Run a sandbox in the foreground until `shutdown` resolves (for `lmsinfra sandbox`).
pub async fn run(
    config: SandboxConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let listener = bind(config.listen)?;
    let addr = listener.local_addr().map_err(start_error)?;
    let app = Arc::new(app(config, addr)?);
    let listener = tokio::net::TcpListener::from_std(listener).map_err(start_error)?;
    tracing::info!("sandbox listening on http://{addr}/client/v4");
    anstream::eprintln!("sandbox: CLOUDFLARE_API_BASE_URL=http://{addr}/client/v4");
    server::serve(listener, app, shutdown).await;
    Ok(())
}

fn start_error(source: std::io::Error) -> Error {
    Error::Start { source }
}

fn bind(listen: Option<SocketAddr>) -> Result<std::net::TcpListener, Error> {
    let addr = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    if !addr.ip().is_loopback() {
        return Err(Error::NotLoopback { addr });
    }
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| Error::Listen { addr, source })?;
    listener.set_nonblocking(true).map_err(start_error)?;
    Ok(listener)
}

fn app(config: SandboxConfig, addr: SocketAddr) -> Result<server::App, Error> {
    let r2 = r2::Buckets::load(config.state.as_deref()).map_err(|source| Error::StateRead {
        path: config.state.clone().unwrap_or_default(),
        source,
    })?;
    let lifecycle = lifecycle::Lifecycle::new(
        config.clock,
        format!("http://{addr}"),
        config.d1_query_non_atomic,
        config.corrupt_imports,
        r2,
    );
    let mut world = load(config.state.as_deref(), config.seed.as_deref(), lifecycle)?;
    world.interleave = config.interleave.map(|i| (i, 0));
    Ok(server::App {
        world: Mutex::new(world),
        token: config.token,
        latency: config.latency,
        faults: config.faults.map(faults::Injector::new),
        limiter: ratelimit::Limiter::new(config.rate_limit),
        counters: stats::Counters::default(),
        observer: config.observer,
    })
}

fn read_account(path: &Path) -> Result<state::State, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::StateRead {
        path: path.to_owned(),
        source,
    })?;
    state::State::parse(&text).map_err(|source| Error::StateInvalid {
        path: path.to_owned(),
        source,
    })
}

/// The state file if it exists, else the seed, else an empty account; saved at once.
fn load(
    state_path: Option<&Path>,
    seed: Option<&Path>,
    lifecycle: lifecycle::Lifecycle,
) -> Result<world::World, Error> {
    let existing = state_path.filter(|p| p.exists());
    let state = match (existing, seed) {
        (Some(path), _) => read_account(path)?,
        (None, Some(seed)) => read_account(seed)?,
        (None, None) => state::State::empty(),
    };
    let world = world::World {
        state,
        d1: d1::Files::new(state_path.map(d1::Files::dir_for)),
        state_path: state_path.map(Path::to_owned),
        interleave: None,
        lifecycle,
    };
    if let Some(path) = state_path {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::StateWrite {
                path: dir.to_owned(),
                source,
            })?;
        }
        world.state.save(path).map_err(|source| Error::StateWrite {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(world)
}
