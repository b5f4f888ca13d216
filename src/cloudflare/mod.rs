//! The Cloudflare API client: one request path that every call goes through.
//!
//! Every request passes, in order: the shared rate-limit gate (a 429 holds back all requests),
//! the pacer (1,100 requests per 5 minutes over a long run), and a concurrency permit; then its
//! answer's envelope is decoded in one place. Retries happen here too, so the API families
//! (`workers`, `d1`, `zones`, `rulesets`) only say what to send and what comes back.
//!
//! The token goes only to the configured base URL, which must be https unless it is loopback,
//! and it is never logged: it is a [`Secret`] and its header is marked sensitive.

mod d1;
mod envelope;
mod error;
mod pace;
mod retry;
mod rulesets;
mod workers;
mod zones;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;
use url::{Host, Url};

pub use self::d1::Database;
pub use self::envelope::ApiMessage;
use self::envelope::{Decoded, ResultInfo};
pub use self::error::Error;
pub use self::pace::PacePolicy;
use self::pace::Pacer;
pub use self::retry::RetryPolicy;
use self::retry::{Gate, Replay, Verdict};
pub use self::rulesets::{Phase, Rule, Ruleset};
pub use self::workers::{
    Binding, DeployedVersion, Deployment, OtherBinding, Script, ScriptLevelSettings,
    ScriptSettings, SecretInfo, SettingsPatch,
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
    /// How long one attempt may take before it counts as a timeout.
    pub request_timeout: Duration,
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
        let account_id = set("CLOUDFLARE_ACCOUNT_ID")
            .or_else(|| Some(manifest_account_id.to_owned()).filter(|a| !a.is_empty()))
            .ok_or(Error::AccountMissing)?;
        let base_url =
            set("CLOUDFLARE_API_BASE_URL").unwrap_or_else(|| Self::DEFAULT_BASE_URL.to_owned());
        let mut config = Self::new(base_url, Secret::new(token.trim()), account_id);
        config.concurrency = concurrency;
        Ok(config)
    }
}

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
    retry: RetryPolicy,
    permits: Semaphore,
    gate: Gate,
    pacer: Pacer,
    rng: Mutex<SmallRng>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
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
        if config.account_id.is_empty() {
            return Err(Error::AccountMissing);
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", config.token.expose()))
            .map_err(|_| Error::TokenInvalid)?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("lmsinfra/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10).min(config.request_timeout))
            .timeout(config.request_timeout)
            .build()
            .map_err(Error::ClientBuild)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                authorization,
                account_id: config.account_id,
                d1_page_size: config.d1_page_size.max(1),
                retry: config.retry,
                permits: Semaphore::new(config.concurrency.max(1)),
                gate: Gate::default(),
                pacer: Pacer::new(config.pace),
                rng: Mutex::new(SmallRng::from_os_rng()),
            }),
        })
    }

    /// The client the command line uses, configured by [`ClientConfig::from_env`].
    pub fn from_env(concurrency: usize, manifest_account_id: &str) -> Result<Self, Error> {
        Self::new(ClientConfig::from_env(concurrency, manifest_account_id)?)
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
        envelope::typed(answer.result).map_err(|detail| Error::Decode {
            method,
            path,
            detail,
        })
    }

    /// Every item of a page-based list, whose `result` is an array or `{items: [...]}`.
    /// When the first page says how many pages there are, the rest are fetched at once.
    async fn call_pages<T: DeserializeOwned>(
        &self,
        url: Url,
        per_page: u32,
    ) -> Result<Vec<T>, Error> {
        let page_url = |page: u32| {
            let mut url = url.clone();
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &per_page.to_string());
            url
        };
        let fetch = |page: u32| {
            let url = page_url(page);
            async move {
                let (method, path) = (Method::GET, self.display_path(&url));
                let answer = self.send(Call::get(url)).await?;
                let items = envelope::typed::<PageItems<T>>(answer.result)
                    .map_err(|detail| Error::Decode {
                        method,
                        path,
                        detail,
                    })?
                    .into_vec();
                Ok::<_, Error>((items, answer.info))
            }
        };
        let (mut all, info) = fetch(1).await?;
        let got = all.len();
        if !envelope::has_more(1, per_page, got, all.len(), info.as_ref()) {
            return Ok(all);
        }
        if let Some(total_pages) = info.and_then(|i| i.total_pages) {
            let rest = futures::future::try_join_all((2..=total_pages).map(fetch)).await?;
            all.extend(rest.into_iter().flat_map(|(items, _)| items));
            return Ok(all);
        }
        let mut page = 1;
        loop {
            page += 1;
            let (items, info) = fetch(page).await?;
            let got = items.len();
            all.extend(items);
            if !envelope::has_more(page, per_page, got, all.len(), info.as_ref()) {
                return Ok(all);
            }
        }
    }

    /// Send a call, retrying as [`retry`] says, and decode the envelope.
    async fn send(&self, call: Call) -> Result<Answer, Error> {
        let path = self.display_path(&call.url);
        let span = tracing::debug_span!("cloudflare_request", method = %call.method, path = %path);
        async {
            let started = Instant::now();
            let mut retries = 0;
            loop {
                self.inner.gate.pass().await;
                self.inner.pacer.slot().await;
                let attempt = {
                    let _permit = self.inner.permits.acquire().await.ok();
                    self.attempt(&call).await
                };
                let verdict = match &attempt {
                    Ok(reply) => {
                        retry::judge_status(reply.status.as_u16(), reply.retry_after, call.replay)
                    }
                    Err(err) => retry::judge_transport(err, call.replay),
                };
                let wait = match verdict {
                    Verdict::Final => None,
                    Verdict::Retry => Some(self.backoff(retries)),
                    Verdict::RateLimited(after) => after
                        .filter(|after| *after <= self.inner.retry.max_retry_after)
                        .or_else(|| after.is_none().then(|| self.backoff(retries))),
                };
                match wait {
                    Some(wait) if retries < self.inner.retry.max_retries => {
                        tracing::debug!(
                            status = attempt.as_ref().ok().map(|r| r.status.as_u16()),
                            error = attempt.as_ref().err().map(|e| e.to_string()),
                            retry = retries + 1,
                            wait_ms = wait.as_millis() as u64,
                            "retrying"
                        );
                        if matches!(verdict, Verdict::RateLimited(_)) {
                            self.inner.gate.close_until(Instant::now() + wait);
                        } else {
                            tokio::time::sleep(wait).await;
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
                            Err(source) => {
                                tracing::debug!(error = %source, duration_ms, retries, "no answer");
                                Err(Error::Transport {
                                    method: call.method.clone(),
                                    path: path.clone(),
                                    retries,
                                    source: source.without_url(),
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

    async fn attempt(&self, call: &Call) -> Result<Reply, reqwest::Error> {
        let request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(AUTHORIZATION, self.inner.authorization.clone());
        let request = match &call.body {
            Body::Empty => request,
            Body::Json(json) => request.json(json),
            Body::SettingsForm(json) => {
                let part =
                    reqwest::multipart::Part::text(json.clone()).mime_str("application/json")?;
                request.multipart(reqwest::multipart::Form::new().part("settings", part))
            }
        };
        let response = request.send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        let body = response.bytes().await?.to_vec();
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
            Some(Decoded::Success { result, info }) if reply.status.is_success() => {
                Ok(Answer { result, info })
            }
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

/// Parse the base URL and apply the token policy: https anywhere, plain http only to loopback.
fn checked_base_url(raw: &str) -> Result<Url, Error> {
    let invalid = || Error::BaseUrlInvalid {
        url: raw.to_owned(),
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
}

struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

struct Answer {
    result: serde_json::Value,
    info: Option<ResultInfo>,
}

/// A list page's `result`: a bare array, or `{items: [...]}` (Worker versions).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PageItems<T> {
    Array(Vec<T>),
    Items { items: Vec<T> },
}

impl<T> PageItems<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::Array(items) | Self::Items { items } => items,
        }
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
            "CLOUDFLARE_ACCOUNT_ID" => Some("envaccount".to_owned()),
            _ => None,
        };
        let config = ClientConfig::from_vars(with_account, 16, "manifestaccount").unwrap();
        assert_eq!(config.account_id, "envaccount");
        assert_eq!(config.base_url, ClientConfig::DEFAULT_BASE_URL);
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
    fn paths_are_percent_encoded_below_the_base() {
        let client = Client::new(ClientConfig::new(
            "http://127.0.0.1:1/client/v4",
            Secret::new("t"),
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
