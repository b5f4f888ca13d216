//! The sandbox: a local emulator of the Cloudflare API subset lmsinfra uses.
//!
//! No machine that builds or tests lmsinfra reaches Cloudflare, so the client, the plan/apply
//! loop and real third-party clients (`wrangler`, pointed here with `CLOUDFLARE_API_BASE_URL`)
//! are all exercised against this server instead. It serves `/client/v4` on loopback only,
//! answers in Cloudflare's envelope with Cloudflare's error codes, keeps its account in a JSON
//! state file (saved atomically after every change) and each D1 database in a real SQLite file.
//!
//! It is a server that a client cannot freeze or make lose data: a D1 query runs off the state
//! lock within a time limit (`d1_query_timeout`, D1's 30 s by default) and D1's size limits, and
//! cannot end its request's transaction or read host paths (`d1_guard`); a client gets
//! `header_read_timeout` (10 s by default) to send its headers; the state file is locked against
//! a second sandbox, written with mode 0600 and never leaves a temporary file
//! (`state_file`); secret digests are salted per state (`state`).
//!
//! Beyond the API it can make life hard on purpose: `latency` delays every answer, a
//! [`FaultSpec`] injects throttling, server errors, dropped connections, slow answers and creates
//! that fail *after* taking effect (grammar in [`faults`]), and the rate limit mirrors
//! Cloudflare's 1200 requests per five minutes per user, one budget for every token.
//! `GET /__sandbox/stats` counts requests per route and status; `POST /__sandbox/stats/reset`
//! zeroes the counters. For tests of read-modify-write clients, an [`Interleave`] makes another
//! client's ruleset write land right after a chosen read.
//!
//! Where the real API's behaviour is unknown, [`variants`] lets the sandbox play each plausible
//! answer (`lmsinfra sandbox --variant KEY=VALUE`); every documented behaviour is the default.
//!
//! A real account's budget is seldom whole: the dashboard, CI and other tools of the same user
//! draw on it. [`SandboxConfig::busy_account`] starts the sandbox with [`BusyAccount::used`]
//! requests already counted, made by another token of the user, that leave the window
//! [`BusyAccount::frees_in`] after the start (a real 300 s window, so a client that waits for
//! the reported reset waits seconds, not minutes). It reads `USED/SECONDS`, e.g. `600/10`
//! ([`BUSY_ACCOUNT_HELP`]), for a command line's flag.
//!
//! ## Worker traffic
//!
//! Besides the API, the listener answers for the account's Workers, so clients can probe them
//! without a site of their own (`traffic.rs` has the rules):
//!
//! - `Host: <script>.<subdomain>.workers.dev` (while the script's workers.dev route is enabled)
//!   and `/__sandbox/workers/<script>/<path>` (always) reach the script's serving deployment;
//! - the version is picked by the deployment's percentages, by a generator seeded with the fault
//!   seed (0 without faults) so runs repeat; `Cloudflare-Workers-Version-Key` pins a version;
//!   `Cloudflare-Workers-Version-Overrides: <script>="<version id>"` is honoured only for a
//!   version in the deployment (0 % included);
//! - every answer names its version in the `x-sandbox-version-id` header;
//! - what a version answers is declared, not executed: the seed field `behaviour` on a script
//!   (routes with status, headers and body; the D1 bindings and secrets `/health` requires;
//!   routes that break while a plain-text binding has a given value), or a module named
//!   `sandbox-behaviour.json` in the version itself (grammar in `workers/behaviour.rs`); the
//!   default `/health` answers `{"version": ID, "db": "ok"}`, or 500 when a D1 binding points
//!   at no database or a required binding or secret is missing; a declared webhook route
//!   accepts a `Tally-Signature` made with a secret or its `_NEXT` ([`tally_signature`]) and a
//!   declared token route answers 200 only while the version's Stream key id and PEM are an
//!   existing signing key's pair (the sandbox remembers secret values in memory for this, never
//!   in the state file or an answer);
//! - `GET /__sandbox/traffic` lists the recent Worker requests (header names, never values);
//! - fault kinds `worker_5xx`, `worker_slow` and `override_delay` act on Worker traffic only.
//!
//! Worker answers are not API answers: no token is needed, and they are not rate limited,
//! counted in the stats or shown to the observer.
//!
//! ## Versions and deployments
//!
//! Every change to a script's code, versioned settings or secrets is a new version deployed at
//! 100 %; `POST …/versions` uploads one without deploying it and `POST …/deployments` serves one
//! or two by percentage. Only the newest 100 versions can be deployed (`?deployable=true` lists
//! them); deployments are read and deleted by id (`GET`/`DELETE …/deployments/{id}`, not the
//! serving one); `workers/message` is cut at 1000 bytes and a `workers/tag` over 100 bytes is
//! refused; `workers/triggered_by` is set by the server (`upload`, `secret`, `settings`,
//! `rollback`, `deployment`). `…/script-settings` changes non-versioned settings without a
//! version, and `GET /workers/services/{name}` gives wrangler the Worker's tag and origin.
//! Details in `workers/versions.rs`. Stream signing keys (`…/stream/keys`) are created (the
//! material answered once), listed with their creation time (sandbox clock) and revoked.
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
mod d1_guard;
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
mod secret_values;
mod server;
mod state;
mod state_file;
mod stats;
mod stream;
mod time_travel;
mod traffic;
pub mod variants;
mod workers;
mod world;
mod zone_plan;
mod zones;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use clock::Clock;
pub use error::Error;
pub use faults::{FaultSpec, FaultSpecError};
pub use ratelimit::{BUSY_ACCOUNT_HELP, BusyAccount, BusyAccountError, RateLimit};
pub use state::InvalidAccount;
pub use stats::Stats;
pub use variants::{Variant, VariantError, Variants};
pub use zones::Interleave;

/// Called once per answered request (dropped connections excepted); tests validate bodies here.
pub type Observer = Arc<dyn Fn(&Exchange) + Send + Sync>;

/// One request and its answer, as the observer sees it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The HTTP method.
    pub method: String,
    /// The request's path, e.g. `/client/v4/accounts/{id}/workers/scripts/lms-api/settings`.
    pub path: String,
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
    /// The rate limit, counted per user: every token shares it.
    pub rate_limit: RateLimit,
    /// Start with part of the rate limit spent by another token of the same user.
    pub busy_account: Option<BusyAccount>,
    /// Sees every answer.
    pub observer: Option<Observer>,
    /// A concurrent ruleset write to make after a given read (a test hook).
    pub interleave: Option<Interleave>,
    /// How long one D1 `query` or `raw` request may run; `None` is D1's own limit, 30 s.
    pub d1_query_timeout: Option<Duration>,
    /// How long a client may take to send a request's headers; `None` is 10 s.
    pub header_read_timeout: Option<Duration>,
    /// Which variant of each unsettled behaviour to play (see [`variants`]).
    pub variants: Variants,
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
            .field("busy_account", &self.busy_account)
            .field("observer", &self.observer.is_some())
            .field("interleave", &self.interleave)
            .field("d1_query_timeout", &self.d1_query_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("variants", &self.variants)
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
    /// Released after the server thread has stopped.
    _lock: Option<state_file::StateLock>,
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
        let lock = config.state.as_deref().map(state_file::lock).transpose()?;
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
            _lock: lock,
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
    let _lock = config.state.as_deref().map(state_file::lock).transpose()?;
    let state = config.state.clone();
    let token = config.token.is_some();
    let app = Arc::new(app(config, addr)?);
    let account = app
        .world
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .state
        .account
        .id
        .clone();
    let listener = tokio::net::TcpListener::from_std(listener).map_err(start_error)?;
    tracing::info!("sandbox listening on http://{addr}/client/v4");
    let state = match &state {
        Some(path) => path.display().to_string(),
        None => "none: the account lives in memory and is lost on exit".to_owned(),
    };
    let token = if token {
        "<the token given to --token>"
    } else {
        "sandbox"
    };
    anstream::eprintln!(
        "sandbox: the Cloudflare API at http://{addr}/client/v4\n\
         sandbox: account {account}\n\
         sandbox: state {state}\n\
         sandbox: Workers answer at http://{addr}/__sandbox/workers/<script>/\n\
         sandbox: to point wrangler and lmsinfra at it, paste into another shell:\n\
         export CLOUDFLARE_API_BASE_URL=http://{addr}/client/v4\n\
         export CLOUDFLARE_API_TOKEN={token}\n\
         export CLOUDFLARE_ACCOUNT_ID={account}\n\
         sandbox: Ctrl-C stops it"
    );
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
    let d1_query_timeout = config
        .d1_query_timeout
        .unwrap_or(d1_guard::DEFAULT_QUERY_TIMEOUT);
    let header_read_timeout = config
        .header_read_timeout
        .unwrap_or(server::DEFAULT_HEADER_READ_TIMEOUT);
    world.variants = config.variants.clone();
    Ok(server::App {
        world: Mutex::new(world),
        token: config.token,
        latency: config.latency,
        faults: config.faults.map(faults::Injector::new),
        limiter: ratelimit::Limiter::new(
            config.rate_limit,
            config.variants.rate_limit,
            config.variants.rate_limit_headers,
            config.busy_account,
        ),
        counters: stats::Counters::default(),
        observer: config.observer,
        d1_query_timeout,
        header_read_timeout,
        traffic: traffic::Traffic::default(),
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
        variants: variants::Variants::default(),
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

/// The `Tally-Signature` of `body` under `secret`: base64(HMAC-SHA256(secret, body)), what a
/// declared webhook route accepts (see the Worker behaviours in `workers/behaviour.rs`).
pub fn tally_signature(secret: &str, body: &[u8]) -> String {
    stream::base64(&workers::behaviour::hmac_sha256(secret.as_bytes(), body))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;

    /// `GET /client/v4/accounts` with `token` over a plain connection: the status line and the
    /// `ratelimit` header's value.
    fn list_accounts(sandbox: &Sandbox, token: &str) -> (String, Option<String>) {
        let mut stream = std::net::TcpStream::connect(sandbox.addr()).unwrap();
        write!(
            stream,
            "GET /client/v4/accounts HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.lines().next().unwrap_or_default().to_owned();
        let ratelimit = answer
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("ratelimit: "))
            .map(str::to_owned);
        (status, ratelimit)
    }

    fn sandbox(busy_account: Option<BusyAccount>) -> Sandbox {
        Sandbox::start(SandboxConfig {
            rate_limit: RateLimit {
                requests: 10,
                window: Duration::from_secs(300),
            },
            busy_account,
            ..SandboxConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn every_token_of_the_user_draws_on_one_budget() {
        let sandbox = sandbox(None);
        let remaining: Vec<Option<String>> = ["ci-token", "user_dashboard", "ci-token"]
            .into_iter()
            .map(|token| list_accounts(&sandbox, token).1)
            .collect();
        let expected = ["r=9", "r=8", "r=7"].map(|r| Some(format!("\"default\";{r};t=300")));
        assert_eq!(remaining, expected);
    }

    #[test]
    fn a_busy_account_leaves_the_rest_of_the_budget_to_the_first_answer() {
        let sandbox = sandbox(Some(BusyAccount {
            used: 6,
            frees_in: Duration::from_secs(30),
        }));
        let (status, ratelimit) = list_accounts(&sandbox, "ci-token");
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(ratelimit.as_deref(), Some("\"default\";r=3;t=30"));
        for _ in 0..3 {
            assert!(
                list_accounts(&sandbox, "user_dashboard")
                    .0
                    .contains(" 200 ")
            );
        }
        let (refused, _) = list_accounts(&sandbox, "ci-token");
        assert!(refused.contains(" 429 "), "{refused}");
    }
}
