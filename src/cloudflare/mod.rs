//! The Cloudflare API client: one request path that every call goes through.
//!
//! Every request passes, in order: the shared rate-limit gate (a 429 holds back all requests),
//! a concurrency permit, and the pacer (the budget Cloudflare reports on every answer, or 1,100
//! requests per 5 minutes when it reports none); then its
//! answer's envelope is decoded in one place. Retries happen here too, so the API families
//! (`workers`, `d1`, `zones`, `rulesets`) only say what to send and what comes back.
//!
//! The token goes only to the configured base URL, which must be https unless it is loopback,
//! and it is never logged: it is a [`Secret`] and its header is marked sensitive. The base URL
//! is shown without its user and password, if it has any.
//!
//! Nothing an answer says is trusted to size anything: a body is read up to
//! [`ANSWER_SIZE_LIMIT`], a list up to [`PAGE_LIMIT`] pages (a page that repeats an earlier one
//! ends it with an error), and a call, retries included, ends by its deadline. A retry is
//! announced as a warning, so a slow or failing API is never silence.

mod d1;
mod d1_export;
mod d1_import;
mod d1_query;
mod envelope;
mod error;
mod pace;
mod r2;
mod retry;
pub mod rotation;
mod rulesets;
mod time_travel;
mod workers;
mod zones;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;
use url::{Host, Url};

pub use self::d1::{Database, DatabaseDetails};
pub use self::d1_export::{Download, Export, SignedUrl};
pub use self::d1_import::{Imported, POLL_LIMIT as IMPORT_POLL_LIMIT};
pub use self::d1_query::StatementResult;
pub use self::envelope::ApiMessage;
use self::envelope::{Decoded, ResultInfo};
pub use self::error::Error;
pub use self::pace::PacePolicy;
use self::pace::{Pacer, Report};
pub use self::r2::R2Object;
pub use self::retry::RetryPolicy;
use self::retry::{Gate, Replay, Verdict};
pub use self::rulesets::{Phase, Rule, Ruleset};
pub use self::time_travel::{Restored, TimeTravelTarget};
pub use self::workers::{
    Annotations, Binding, DeployedVersion, Deployment, OtherBinding, Script, ScriptLevelSettings,
    ScriptSettings, SecretInfo, SettingsPatch, Version, VersionDetail, VersionMetadata,
    VersionResources,
};
pub use self::zones::{Zone, ZoneAccount, ZonePlan};
use crate::secret::Secret;

/// Where to reach the API, with what credentials, and how hard to push it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API root, e.g. `https://api.cloudflare.com/client/v4`.
    pub base_url: String,
    /// The API token, sent as `Authorization: Bearer`.
    pub token: Secret,
    /// The account every account-scoped call addresses.
    pub account_id: String,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// `per_page` for the D1 database list (the API's default and ours: 1000).
    pub d1_page_size: u32,
    /// How long one attempt may take, connection, headers and body, before it counts as a
    /// timeout.
    pub request_timeout: Duration,
    /// How long one call may take, every attempt and the backoff between them included (waits
    /// for a rate limit's `retry-after` are not counted: they are announced and bounded apart).
    pub deadline: Duration,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// The long-run request rate.
    pub pace: PacePolicy,
}

impl ClientConfig {
    /// Cloudflare's API root.
    pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

    /// A configuration with the default limits.
    pub fn new(base_url: impl Into<String>, token: Secret, account_id: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            token,
            account_id: account_id.into(),
            concurrency: 16,
            d1_page_size: 1_000,
            request_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            pace: PacePolicy::default(),
        }
    }

    /// The configuration the command line uses: `CLOUDFLARE_API_BASE_URL`,
    /// `CLOUDFLARE_API_TOKEN` and `CLOUDFLARE_ACCOUNT_ID` (the names wrangler reads), the
    /// manifest's account id when the variable is unset, and `concurrency` requests in flight.
    pub fn from_env(concurrency: usize, manifest_account_id: &str) -> Result<Self, Error> {
        Self::from_vars(
            |name| std::env::var(name).ok(),
            concurrency,
            manifest_account_id,
        )
    }

    /// [`ClientConfig::from_env`] with the variables read through `var`: a variable set to
    /// blanks counts as unset, and the token is trimmed.
    pub(crate) fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        concurrency: usize,
        manifest_account_id: &str,
    ) -> Result<Self, Error> {
        let set = |name| var(name).filter(|v: &String| !v.trim().is_empty());
        let token = set("CLOUDFLARE_API_TOKEN").ok_or(Error::TokenMissing)?;
        let from_env = set("CLOUDFLARE_ACCOUNT_ID").map(|id| id.trim().to_owned());
        if let Some(id) = &from_env
            && !is_account_id(id)
        {
            return Err(Error::AccountInvalid {
                value: crate::secret::scrub(id),
            });
        }
        let account_id = from_env
            .or_else(|| Some(manifest_account_id.to_owned()).filter(|a| !a.is_empty()))
            .ok_or(Error::AccountMissing)?;
        let base_url =
            set("CLOUDFLARE_API_BASE_URL").unwrap_or_else(|| Self::DEFAULT_BASE_URL.to_owned());
        let mut config = Self::new(base_url, Secret::new(token.trim()), account_id);
        config.concurrency = concurrency;
        if let Some(seconds) = set("LMSINFRA_API_TIMEOUT") {
            config.set_deadline(&seconds)?;
        }
        if let Some(reserve) = set("LMSINFRA_API_RESERVE") {
            config.set_reserve(&reserve)?;
        }
        Ok(config)
    }
}

/// Whether `id` is a Cloudflare account id: 32 hexadecimal characters, as a manifest's must be.
pub(crate) fn is_account_id(id: &str) -> bool {
    id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())
}

impl ClientConfig {
    /// `LMSINFRA_API_TIMEOUT`: whole seconds one call may take, retries included; each attempt
    /// gets at most the default 30 s of it.
    fn set_deadline(&mut self, seconds: &str) -> Result<(), Error> {
        let seconds = seconds
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=3_600).contains(s))
            .ok_or_else(|| Error::TimeoutInvalid {
                value: crate::secret::scrub(seconds),
            })?;
        self.deadline = Duration::from_secs(seconds);
        self.request_timeout = self.request_timeout.min(self.deadline);
        Ok(())
    }

    /// `LMSINFRA_API_RESERVE`: requests of the reported budget left for the account's other
    /// users (the dashboard, wrangler, other pipelines); never less than the concurrency.
    fn set_reserve(&mut self, requests: &str) -> Result<(), Error> {
        self.pace.reserve = requests
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|r| *r <= 1_200)
            .ok_or_else(|| Error::ReserveInvalid {
                value: crate::secret::scrub(requests),
            })?;
        Ok(())
    }
}

/// The largest answer body read; a larger one is cut off and the call fails. Cloudflare's
/// largest answers lmsinfra reads (a page of 1,000 databases, a Worker's settings) are well
/// under 1 MiB.
pub const ANSWER_SIZE_LIMIT: usize = 8 * 1024 * 1024;

/// The most pages of one list that are read (200,000 D1 databases at 1,000 a page; an account
/// holds at most 50,000).
pub const PAGE_LIMIT: u32 = 200;

/// The most answer bytes read for one list, all its pages together.
pub const LIST_SIZE_LIMIT: usize = 64 * 1024 * 1024;

/// A Cloudflare API client for one account. Cheap to clone: clones share the connection pool,
/// the concurrency limit, the pacer and the rate-limit gate.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    authorization: HeaderValue,
    account_id: String,
    d1_page_size: u32,
    request_timeout: Duration,
    deadline: Duration,
    retry: RetryPolicy,
    permits: Semaphore,
    gate: Gate,
    pacer: Pacer,
    rng: Mutex<SmallRng>,
    /// Attempts sent so far, retries included: what the account's API budget counts.
    sent: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &shown_url(self.inner.base.as_str()))
            .field("account_id", &self.inner.account_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`. Refuses, before any request, a base URL that would send the
    /// token over plain http to anything but this machine.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let base = checked_base_url(&config.base_url)?;
        if config.token.is_empty() {
            return Err(Error::TokenMissing);
        }
        crate::secret::register([&config.token]);
        if config.account_id.is_empty() {
            return Err(Error::AccountMissing);
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", config.token.expose()))
            .map_err(|_| Error::TokenInvalid)?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("lmsinfra/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            // Cloudflare's edge accepts a connection in milliseconds; a host that has not in 5 s
            // will not, and three tries of it must still end within seconds.
            .connect_timeout(Duration::from_secs(5).min(config.request_timeout))
            .build()
            .map_err(Error::ClientBuild)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                authorization,
                account_id: config.account_id,
                d1_page_size: config.d1_page_size.max(1),
                request_timeout: config.request_timeout.max(Duration::from_millis(1)),
                deadline: config.deadline,
                retry: config.retry,
                permits: Semaphore::new(config.concurrency.max(1)),
                gate: Gate::default(),
                pacer: Pacer::new(config.pace, config.concurrency),
                rng: Mutex::new(SmallRng::from_os_rng()),
                sent: AtomicU64::new(0),
            }),
        })
    }

    /// The client the command line uses, configured by [`ClientConfig::from_env`].
    pub fn from_env(concurrency: usize, manifest_account_id: &str) -> Result<Self, Error> {
        Self::new(ClientConfig::from_env(concurrency, manifest_account_id)?)
    }

    /// The API root this client calls.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// How many requests this client (and its clones) has sent, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Relaxed)
    }

    /// The account this client addresses.
    pub fn account_id(&self) -> &str {
        &self.inner.account_id
    }

    /// The URL of an account-scoped endpoint; each segment is percent-encoded.
    fn account_url(&self, segments: &[&str]) -> Url {
        let account = ["accounts", self.inner.account_id.as_str()];
        self.url(account.iter().chain(segments))
    }

    fn url<'a>(&self, segments: impl IntoIterator<Item = &'a &'a str>) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The path of `url` below the base URL, for errors and logs.
    fn display_path(&self, url: &Url) -> String {
        let base = self.inner.base.path().trim_end_matches('/');
        let path = url.path().strip_prefix(base).unwrap_or(url.path());
        match url.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        }
    }

    /// Send one call (with retries) and type its `result`.
    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T, Error> {
        let (method, path) = (call.method.clone(), self.display_path(&call.url));
        let answer = self.send(call).await?;
        envelope::typed(&answer.result).map_err(|detail| Error::Decode {
            method,
            path,
            detail,
        })
    }

    /// Every item of a page-based list, whose `result` is an array or `{items: [...]}`.
    /// When the first page says how many pages there are, the rest are fetched at once.
    ///
    /// Nothing the answers claim is trusted to bound the work: at most [`PAGE_LIMIT`] pages and
    /// [`LIST_SIZE_LIMIT`] bytes are read, and a page that holds the same items as an earlier
    /// one (an API that ignores `page`) ends the list with an error instead of going on forever.
    async fn call_pages<T: DeserializeOwned>(
        &self,
        url: Url,
        per_page: u32,
    ) -> Result<Vec<T>, Error> {
        let list_path = self.display_path(&url);
        let paging = |detail: String| Error::Paging {
            method: Method::GET,
            path: list_path.clone(),
            detail,
        };
        let page_url = |page: u32| {
            let mut url = url.clone();
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &per_page.to_string());
            url
        };
        let read = std::sync::atomic::AtomicUsize::new(0);
        let fetch = |page: u32| {
            let url = page_url(page);
            let (read, paging) = (&read, &paging);
            async move {
                let (method, path) = (Method::GET, self.display_path(&url));
                let answer = self.send(Call::get(url)).await?;
                let size = answer.size;
                let total = read.fetch_add(size, std::sync::atomic::Ordering::Relaxed) + size;
                if total > LIST_SIZE_LIMIT {
                    return Err(paging(format!(
                        "its pages come to more than {} MiB, the most lmsinfra reads of one list",
                        LIST_SIZE_LIMIT >> 20
                    )));
                }
                let digest: [u8; 32] = Sha256::digest(answer.result.as_bytes()).into();
                let items = envelope::typed::<PageItems<T>>(&answer.result)
                    .map_err(|detail| Error::Decode {
                        method,
                        path,
                        detail,
                    })?
                    .into_vec();
                Ok::<_, Error>(Page {
                    items,
                    info: answer.info,
                    digest,
                })
            }
        };
        let mut seen = HashMap::new();
        // An empty page ends a list; a page of items seen before means the API ignores `page`.
        let mut repeated = |page: u32, fetched: &Page<T>| {
            if fetched.items.is_empty() {
                return Ok(());
            }
            match seen.insert(fetched.digest, page) {
                None => Ok(()),
                Some(earlier) => Err(paging(format!(
                    "page {page} repeats page {earlier}: the API does not turn pages, and the list would never end"
                ))),
            }
        };
        let first = fetch(1).await?;
        repeated(1, &first)?;
        let info = first.info;
        let mut all = first.items;
        if !envelope::has_more(1, per_page, all.len(), all.len(), info.as_ref()) {
            return Ok(all);
        }
        if let Some(total_pages) = info.and_then(|i| i.total_pages) {
            if total_pages > PAGE_LIMIT {
                return Err(paging(format!(
                    "the API says the list has {total_pages} pages, more than the {PAGE_LIMIT} pages lmsinfra reads"
                )));
            }
            let rest = futures::future::try_join_all((2..=total_pages).map(fetch)).await?;
            for (page, fetched) in (2..).zip(rest) {
                repeated(page, &fetched)?;
                all.extend(fetched.items);
            }
            return Ok(all);
        }
        let mut page = 1;
        loop {
            page += 1;
            if page > PAGE_LIMIT {
                let counted = info
                    .and_then(|i| i.total_count)
                    .map(|count| format!(" (the API counts {count} items)"))
                    .unwrap_or_default();
                return Err(paging(format!(
                    "the list has more than {PAGE_LIMIT} pages{counted}, the most lmsinfra reads"
                )));
            }
            let fetched = fetch(page).await?;
            repeated(page, &fetched)?;
            let got = fetched.items.len();
            all.extend(fetched.items);
            if !envelope::has_more(page, per_page, got, all.len(), fetched.info.as_ref()) {
                return Ok(all);
            }
        }
    }

    /// Send a call, retrying as [`retry`] says within the call's deadline, and decode the
    /// envelope. Each retry is announced on stderr (a warning): what, why, and how long it waits.
    async fn send(&self, call: Call) -> Result<Answer, Error> {
        let path = self.display_path(&call.url);
        let span = tracing::debug_span!("cloudflare_request", method = %call.method, path = %path);
        async {
            let started = Instant::now();
            // Time in attempts and backoffs: what the deadline counts.
            let mut spent = Duration::ZERO;
            let mut retries = 0;
            loop {
                self.inner.gate.pass().await;
                let budget = self
                    .inner
                    .request_timeout
                    .min(self.inner.deadline.saturating_sub(spent));
                let attempt = {
                    let _permit = self.inner.permits.acquire().await.ok();
                    // Paced after the permit: a request the pacer lets go is sent at once, so
                    // the requests still unanswered never outnumber the concurrency, which the
                    // pacer's reserve covers.
                    self.inner.pacer.slot().await;
                    let attempt_started = Instant::now();
                    let attempt = tokio::time::timeout(budget, self.attempt(&call))
                        .await
                        .unwrap_or(Err(Failure::TimedOut(budget)));
                    spent += attempt_started.elapsed();
                    attempt
                };
                let verdict = match &attempt {
                    Ok(reply) => {
                        retry::judge_status(reply.status.as_u16(), reply.retry_after, call.replay)
                    }
                    Err(Failure::Transport(err)) => retry::judge_transport(err, call.replay),
                    Err(Failure::TimedOut(_)) => retry::judge_timeout(call.replay),
                    Err(Failure::TooLarge | Failure::Read(_)) => Verdict::Final,
                };
                let rate_limited = matches!(verdict, Verdict::RateLimited(_));
                let wait = match verdict {
                    Verdict::Final => None,
                    Verdict::Retry => Some(self.backoff(retries)),
                    Verdict::RateLimited(after) => after
                        .filter(|after| *after <= self.inner.retry.max_retry_after)
                        .or_else(|| after.is_none().then(|| self.backoff(retries))),
                };
                let in_time = |wait: Duration| rate_limited || spent + wait < self.inner.deadline;
                let most = match &attempt {
                    Err(Failure::Transport(err)) if err.is_connect() => {
                        retry::CONNECT_RETRIES.min(self.inner.retry.max_retries)
                    }
                    _ => self.inner.retry.max_retries,
                };
                match wait {
                    Some(wait) if retries < most && in_time(wait) => {
                        let why = match &attempt {
                            Ok(reply) => format!("HTTP {}", reply.status.as_u16()),
                            Err(failure) => failure.to_string(),
                        };
                        let (retry, of) = (retries + 1, most);
                        let wait_for = seconds(wait);
                        if rate_limited {
                            tracing::warn!(
                                "{} {path}: rate limited ({why}); every request waits {wait_for}, then retry {retry} of {of}",
                                call.method
                            );
                            self.inner.gate.close_until(Instant::now() + wait);
                        } else {
                            tracing::warn!(
                                "{} {path}: {why}; retry {retry} of {of} in {wait_for}",
                                call.method
                            );
                            tokio::time::sleep(wait).await;
                            spent += wait;
                        }
                        retries += 1;
                    }
                    _ => {
                        let duration_ms = started.elapsed().as_millis() as u64;
                        return match attempt {
                            Ok(reply) => {
                                tracing::debug!(
                                    status = reply.status.as_u16(),
                                    duration_ms,
                                    retries,
                                    "answered"
                                );
                                self.interpret(&call, &path, reply, retries)
                            }
                            Err(failure) => {
                                tracing::debug!(error = %failure, duration_ms, retries, "no answer");
                                let (method, path) = (call.method.clone(), path.clone());
                                let reason = failure.to_string();
                                Err(match failure {
                                    Failure::Transport(source) if source.is_connect() => {
                                        Error::Unreachable {
                                            host: self.inner.base[url::Position::BeforeHost..url::Position::AfterPort].to_owned(),
                                            retries,
                                            reason,
                                        }
                                    }
                                    Failure::Transport(source) => Error::Transport {
                                        method,
                                        path,
                                        retries,
                                        source,
                                    },
                                    Failure::TimedOut(budget) => {
                                        let out_of_time = budget < self.inner.request_timeout
                                            || wait.is_some_and(|wait| !in_time(wait));
                                        Error::Timeout {
                                            method,
                                            path,
                                            retries,
                                            limit: seconds(if out_of_time {
                                                self.inner.deadline
                                            } else {
                                                budget
                                            }),
                                        }
                                    }
                                    Failure::TooLarge => Error::TooLarge {
                                        method,
                                        path,
                                        limit_mib: ANSWER_SIZE_LIMIT >> 20,
                                    },
                                    Failure::Read(source) => Error::FileRead {
                                        method,
                                        path,
                                        source,
                                    },
                                })
                            }
                        };
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    fn backoff(&self, retry: u32) -> Duration {
        let mut rng = self.inner.rng.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.retry.backoff(retry, &mut *rng)
    }

    /// One attempt: the request, its headers, and its body, read up to [`ANSWER_SIZE_LIMIT`].
    async fn attempt(&self, call: &Call) -> Result<Reply, Failure> {
        self.inner.sent.fetch_add(1, Ordering::Relaxed);
        let request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(AUTHORIZATION, self.inner.authorization.clone());
        let request = match &call.body {
            Body::Empty => request,
            Body::Json(json) => request.json(json),
            Body::SettingsForm(json) => {
                let part = reqwest::multipart::Part::text(json.clone())
                    .mime_str("application/json")
                    .map_err(Failure::transport)?;
                request.multipart(reqwest::multipart::Form::new().part("settings", part))
            }
            Body::File(path) => {
                let file = tokio::fs::File::open(path).await.map_err(Failure::Read)?;
                let length = file.metadata().await.map_err(Failure::Read)?.len();
                let stream = tokio_util::io::ReaderStream::new(file);
                request
                    .header(reqwest::header::CONTENT_LENGTH, length)
                    .body(reqwest::Body::wrap_stream(stream))
            }
        };
        let mut response = request.send().await.map_err(Failure::transport)?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let retry_after = header(RETRY_AFTER.as_str()).and_then(retry::parse_retry_after);
        if let Some(report) = Report::parse(header("ratelimit"), header("ratelimit-policy")) {
            self.inner.pacer.observe(report);
        }
        if response
            .content_length()
            .is_some_and(|length| length > ANSWER_SIZE_LIMIT as u64)
        {
            return Err(Failure::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Failure::transport)? {
            if body.len() + chunk.len() > ANSWER_SIZE_LIMIT {
                return Err(Failure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    fn interpret(
        &self,
        call: &Call,
        path: &str,
        reply: Reply,
        retries: u32,
    ) -> Result<Answer, Error> {
        let api_error = |errors: Vec<ApiMessage>| {
            let status = reply.status.as_u16();
            Error::Api {
                hint: error::hint(&call.method, path, status, &errors),
                method: call.method.clone(),
                path: path.to_owned(),
                status,
                errors,
                retries,
            }
        };
        match envelope::decode(&reply.body) {
            Some(Decoded::Success { result, info }) if reply.status.is_success() => Ok(Answer {
                result,
                info,
                size: reply.body.len(),
            }),
            Some(Decoded::Failure(errors)) => Err(api_error(errors)),
            _ if !reply.status.is_success() => Err(api_error(Vec::new())),
            _ => Err(Error::Decode {
                method: call.method.clone(),
                path: path.to_owned(),
                detail: "the body is not a Cloudflare API envelope".to_owned(),
            }),
        }
    }
}

/// Why an attempt got no usable answer.
#[derive(Debug)]
enum Failure {
    /// No answer, or the connection broke while it came (the error carries no URL).
    Transport(reqwest::Error),
    /// No complete answer within this long.
    TimedOut(Duration),
    /// The answer was larger than [`ANSWER_SIZE_LIMIT`].
    TooLarge,
    /// The file a request sends could not be read.
    Read(std::io::Error),
}

impl Failure {
    fn transport(err: reqwest::Error) -> Self {
        Self::Transport(err.without_url())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(err) => {
                write!(f, "{err}")?;
                let mut source = std::error::Error::source(err);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            Self::TimedOut(budget) => write!(f, "no complete answer within {}", seconds(*budget)),
            Self::TooLarge => write!(f, "an answer larger than {} MiB", ANSWER_SIZE_LIMIT >> 20),
            Self::Read(err) => write!(f, "could not read the file to send: {err}"),
        }
    }
}

/// A duration for people: `3 s`, `0.6 s`.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// `raw` without the user and password a URL may carry, for messages (also when it does not
/// parse: everything up to the last `@` of what looks like its authority goes).
fn shown_url(raw: &str) -> String {
    if let Ok(mut url) = Url::parse(raw.trim())
        && !url.cannot_be_a_base()
    {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        return url.to_string();
    }
    let (scheme, rest) = raw.split_once("://").map_or(("", raw), |(s, r)| (s, r));
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) if scheme.is_empty() => rest[at + 1..].to_owned(),
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => raw.to_owned(),
    }
}

/// Parse the base URL and apply the token policy: https anywhere, plain http only to loopback.
fn checked_base_url(raw: &str) -> Result<Url, Error> {
    let invalid = || Error::BaseUrlInvalid {
        url: shown_url(raw),
    };
    let url = Url::parse(raw.trim()).map_err(|_| invalid())?;
    let host = url.host().ok_or_else(invalid)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&host) => Ok(url),
        "http" => Err(Error::BaseUrlInsecure {
            host: host.to_string(),
        }),
        _ => Err(invalid()),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// One request, as data, so that it can be sent again.
struct Call {
    method: Method,
    url: Url,
    body: Body,
    replay: Replay,
}

impl Call {
    fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            body: Body::Empty,
            replay: Replay::Safe,
        }
    }

    fn with(method: Method, url: Url, body: Body) -> Self {
        Self {
            method,
            url,
            body,
            replay: Replay::Safe,
        }
    }
}

enum Body {
    Empty,
    Json(serde_json::Value),
    /// `multipart/form-data` with one `settings` part holding this JSON.
    SettingsForm(String),
    /// The raw bytes of this file, streamed (read again for each attempt).
    File(std::path::PathBuf),
}

struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

struct Answer {
    /// The `result`, as raw JSON text.
    result: String,
    info: Option<ResultInfo>,
    /// The body's length in bytes.
    size: usize,
}

/// One page of a list, with a digest of its items to spot a page served twice.
struct Page<T> {
    items: Vec<T>,
    info: Option<ResultInfo>,
    digest: [u8; 32],
}

/// A list page's `result`: a bare array, or `{items: [...]}` (Worker versions).
///
/// Read by looking at the first token rather than as an untagged enum, which would first copy
/// the whole result into a generic tree (megabytes of `[0,0,…]` become a hundred times that),
/// and whose error names no field.
struct PageItems<T>(Vec<T>);

impl<T> PageItems<T> {
    fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for PageItems<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of items, or an object with `items`")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
                serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Vec<T>, A::Error> {
                let mut items = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "items" {
                        items = Some(map.next_value()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                items.ok_or_else(|| serde::de::Error::missing_field("items"))
            }
        }

        deserializer
            .deserialize_any(Visitor(std::marker::PhantomData))
            .map(PageItems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_except_to_loopback() {
        for ok in [
            "https://api.cloudflare.com/client/v4",
            "http://127.0.0.1:8787/client/v4",
            "http://127.8.9.10/client/v4",
            "http://[::1]:9000/client/v4",
            "http://localhost:8787/client/v4",
            "http://LOCALHOST/client/v4",
        ] {
            assert!(checked_base_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://api.cloudflare.com/client/v4",
            "http://10.0.0.1/client/v4",
            "http://localhost.evil.example/client/v4",
            "http://128.0.0.1/client/v4",
            "http://[::2]/client/v4",
        ] {
            assert!(
                matches!(
                    checked_base_url(insecure),
                    Err(Error::BaseUrlInsecure { .. })
                ),
                "{insecure}"
            );
        }
        for invalid in ["ftp://example.com", "not a url", "file:///tmp/x"] {
            assert!(
                matches!(checked_base_url(invalid), Err(Error::BaseUrlInvalid { .. })),
                "{invalid}"
            );
        }
    }

    #[test]
    fn config_reads_wranglers_variables() {
        let vars = |name: &str| match name {
            "CLOUDFLARE_API_TOKEN" => Some("tok".to_owned()),
            "CLOUDFLARE_API_BASE_URL" => Some("http://127.0.0.1:1/client/v4".to_owned()),
            _ => None,
        };
        let config = ClientConfig::from_vars(vars, 4, "manifestaccount").unwrap();
        assert_eq!(config.base_url, "http://127.0.0.1:1/client/v4");
        assert_eq!(config.account_id, "manifestaccount");
        assert_eq!(config.concurrency, 4);
        let with_account = |name: &str| match name {
            "CLOUDFLARE_API_TOKEN" => Some("tok".to_owned()),
            "CLOUDFLARE_ACCOUNT_ID" => Some(" 0123456789ABCDEF0123456789abcdef\n".to_owned()),
            _ => None,
        };
        let config = ClientConfig::from_vars(with_account, 16, "manifestaccount").unwrap();
        assert_eq!(config.account_id, "0123456789ABCDEF0123456789abcdef");
        assert_eq!(config.base_url, ClientConfig::DEFAULT_BASE_URL);
    }

    #[test]
    fn an_account_id_variable_that_is_not_32_hex_is_refused() {
        for wrong in [
            "envaccount",
            "0123456789abcdef0123456789abcdeg",
            "lms@example.com",
        ] {
            let vars = |name: &str| match name {
                "CLOUDFLARE_API_TOKEN" => Some("tok".to_owned()),
                "CLOUDFLARE_ACCOUNT_ID" => Some(wrong.to_owned()),
                _ => None,
            };
            let err = ClientConfig::from_vars(vars, 4, "a").unwrap_err();
            assert!(matches!(err, Error::AccountInvalid { .. }), "{wrong}");
            assert!(err.to_string().contains("CLOUDFLARE_ACCOUNT_ID"), "{err}");
        }
    }

    #[test]
    fn missing_token_says_which_variable_and_permissions() {
        let err = ClientConfig::from_vars(|_| None, 16, "a").unwrap_err();
        assert!(matches!(err, Error::TokenMissing));
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(
            help.contains("CLOUDFLARE_API_TOKEN") && help.contains("D1 Edit"),
            "{help}"
        );
    }

    #[test]
    fn the_api_timeout_sets_the_deadline_of_a_call() {
        let vars = |timeout: &'static str| {
            move |name: &str| match name {
                "CLOUDFLARE_API_TOKEN" => Some("tok".to_owned()),
                "LMSINFRA_API_TIMEOUT" => Some(timeout.to_owned()),
                _ => None,
            }
        };
        let config = ClientConfig::from_vars(vars("3"), 4, "a").unwrap();
        assert_eq!(config.deadline, Duration::from_secs(3));
        assert_eq!(config.request_timeout, Duration::from_secs(3));
        let config = ClientConfig::from_vars(vars("600"), 4, "a").unwrap();
        assert_eq!(config.deadline, Duration::from_secs(600));
        assert_eq!(config.request_timeout, Duration::from_secs(30));
        for wrong in ["0", "soon", "1.5", "99999"] {
            let err = ClientConfig::from_vars(vars(wrong), 4, "a").unwrap_err();
            assert!(matches!(err, Error::TimeoutInvalid { .. }), "{wrong}");
        }
    }

    #[test]
    fn the_reserve_comes_from_lmsinfra_api_reserve() {
        let vars = |reserve: &'static str| {
            move |name: &str| match name {
                "CLOUDFLARE_API_TOKEN" => Some("tok".to_owned()),
                "LMSINFRA_API_RESERVE" => Some(reserve.to_owned()),
                _ => None,
            }
        };
        let config = ClientConfig::from_vars(vars("250"), 4, "a").unwrap();
        assert_eq!(config.pace.reserve, 250);
        for wrong in ["-1", "many", "1201"] {
            let err = ClientConfig::from_vars(vars(wrong), 4, "a").unwrap_err();
            assert!(matches!(err, Error::ReserveInvalid { .. }), "{wrong}");
        }
    }

    #[test]
    fn a_url_is_shown_without_user_or_password() {
        assert_eq!(
            shown_url("https://user:pass@api.example.com/client/v4"),
            "https://api.example.com/client/v4"
        );
        assert_eq!(
            shown_url("https://user:p@ss@exa mple.com/client/v4"),
            "https://exa mple.com/client/v4"
        );
        assert_eq!(shown_url("user:pass@host/x"), "host/x");
        assert_eq!(shown_url("not a url"), "not a url");
        let err = checked_base_url("https://user:hunter2@exa mple.com").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let client = Client::new(ClientConfig::new(
            "http://user:hunter2@127.0.0.1:1/client/v4",
            Secret::new("shown-url-test-token"),
            "acc",
        ))
        .unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn a_page_is_an_array_or_items_and_its_errors_name_the_item() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Item {
            id: u32,
        }
        let items = |json: &str| envelope::typed::<PageItems<Item>>(json).map(PageItems::into_vec);
        assert_eq!(items(r#"[{"id":1}]"#).unwrap(), [Item { id: 1 }]);
        assert_eq!(
            items(r#"{"x":[0],"items":[{"id":2}]}"#).unwrap(),
            [Item { id: 2 }]
        );
        let err = items("[0,0,0]").unwrap_err();
        assert!(err.contains("result.[0]"), "{err}");
        assert!(items(r#"{"x":1}"#).unwrap_err().contains("items"));
        assert!(items("7").is_err());
    }

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(seconds(Duration::from_secs(3)), "3 s");
        assert_eq!(seconds(Duration::from_millis(600)), "0.6 s");
        assert_eq!(seconds(Duration::from_millis(29_500)), "29.5 s");
    }

    #[test]
    fn paths_are_percent_encoded_below_the_base() {
        let client = Client::new(ClientConfig::new(
            "http://127.0.0.1:1/client/v4",
            Secret::new("paths-test-token"),
            "acc",
        ))
        .unwrap();
        let url = client.account_url(&["workers", "scripts", "a b/c", "settings"]);
        assert_eq!(
            client.display_path(&url),
            "/accounts/acc/workers/scripts/a%20b%2Fc/settings"
        );
        assert!(format!("{client:?}").contains("127.0.0.1"));
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_without_echoing_it() {
        let config = ClientConfig::new(
            "https://api.cloudflare.com/client/v4",
            Secret::new("canary\ntoken"),
            "acc",
        );
        let err = Client::new(config).unwrap_err();
        assert!(matches!(err, Error::TokenInvalid));
        assert!(!format!("{err} {err:?}").contains("canary"));
    }
}
