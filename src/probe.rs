//! Fetches a deployed Worker's URL to see which headers its responses carry.
//!
//! A probe is evidence for the plan, never a reason for `plan` to fail: a URL that cannot be
//! reached becomes [`Probe::Unreachable`]. Redirects are reported, not followed, because the
//! headers that matter are the ones of the URL the manifest names. Probes use their own HTTP
//! client, which has never seen the API token. What a probe reports is text from outside, so
//! every value in it is scrubbed of secret values and cut to a printable length.
//!
//! With `--sandbox` the Workers live in the in-process sandbox, not on the Internet, so a prober
//! made [`Prober::onto_sandbox`] sends a Worker's URL to the sandbox's Worker traffic instead: a
//! `*.workers.dev` URL keeps its host in `Host`, any other URL goes through the sandbox's
//! `/__sandbox/workers/<script>/…` prefix. Loopback URLs are fetched as written.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret;

/// The outcome of fetching a worker's probe URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Probe {
    /// The URL answered; header names are lowercase.
    Answered {
        /// The HTTP status.
        status: u16,
        /// The response headers (lowercase names; repeated headers joined with ", ").
        headers: BTreeMap<String, String>,
        /// Where a redirect pointed, when the answer was one (redirects are not followed).
        redirect: Option<String>,
    },
    /// The URL could not be fetched.
    Unreachable {
        /// Why.
        reason: String,
    },
}

/// A Worker's full answer to one request: status, headers (as [`Probe::Answered`] has them)
/// and body (scrubbed, cut to [`BODY_LIMIT`] bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The response headers (lowercase names; repeated headers joined with ", ").
    pub headers: BTreeMap<String, String>,
    /// The body, lossily decoded.
    pub body: String,
}

/// How much of a body an [`Answer`] keeps.
pub const BODY_LIMIT: usize = 64 * 1024;

/// An HTTP client for probes, with a timeout per probe.
#[derive(Debug, Clone)]
pub struct Prober {
    http: Result<reqwest::Client, String>,
    timeout: Duration,
    sandbox: Option<SocketAddr>,
}

impl Prober {
    /// A prober whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "lmsinfra/",
                env!("CARGO_PKG_VERSION"),
                " (header probe)"
            ))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|err| format!("could not set up the HTTP client: {err}"));
        Self {
            http,
            timeout,
            sandbox: None,
        }
    }

    /// This prober, sending Worker URLs to the Worker traffic of the sandbox listening on
    /// `addr` instead of the Internet.
    pub fn onto_sandbox(self, addr: SocketAddr) -> Self {
        Self {
            sandbox: Some(addr),
            ..self
        }
    }

    /// Where a request for `url` of the Worker `script` goes, and the `Host` to send with it.
    fn destination(&self, url: &str, script: &str) -> (String, Option<String>) {
        let Some(addr) = self.sandbox else {
            return (url.to_owned(), None);
        };
        let Ok(parsed) = url::Url::parse(url) else {
            return (url.to_owned(), None);
        };
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        if matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
            return (url.to_owned(), None);
        }
        let rest = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        if host.ends_with(".workers.dev") {
            (format!("http://{addr}{rest}"), Some(host))
        } else {
            (
                format!("http://{addr}/__sandbox/workers/{script}{rest}"),
                None,
            )
        }
    }

    /// Send `method url` with `headers` to the Worker `script` and read the whole answer; the
    /// reason, scrubbed, when there is none within the timeout. Redirects are answers.
    pub async fn fetch(
        &self,
        method: &str,
        url: &str,
        script: &str,
        headers: &[(String, String)],
    ) -> Result<Answer, String> {
        let http = self.http.as_ref().map_err(|reason| secret::scrub(reason))?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("`{method}` is not an HTTP method"))?;
        let (target, host) = self.destination(url, script);
        let mut request = http.request(method, &target);
        if let Some(host) = host {
            request = request.header(reqwest::header::HOST, host);
        }
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let read = async {
            let response = request.send().await.map_err(|err| describe(&err))?;
            let status = response.status().as_u16();
            let headers = lowercase_headers(response.headers());
            let bytes = response.bytes().await.map_err(|err| describe(&err))?;
            let body = &bytes[..bytes.len().min(BODY_LIMIT)];
            Ok(Answer {
                status,
                headers,
                body: secret::scrub(&String::from_utf8_lossy(body)),
            })
        };
        match tokio::time::timeout(self.timeout, read).await {
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            Ok(answer) => answer.map_err(|reason: String| secret::scrub(&reason)),
        }
    }

    /// GET the URL of the Worker `script` as [`Prober::probe`] does, through the sandbox's
    /// Worker traffic when this prober is [`Prober::onto_sandbox`].
    pub async fn probe_worker(&self, url: &str, script: &str) -> Probe {
        let (target, host) = self.destination(url, script);
        self.get(&target, host).await
    }

    /// GET `url` and report its status and headers (names lowercase, repeated headers joined
    /// with ", "). The body is not read.
    pub async fn probe(&self, url: &str) -> Probe {
        self.get(url, None).await
    }

    async fn get(&self, url: &str, host: Option<String>) -> Probe {
        let http = match &self.http {
            Ok(http) => http,
            Err(reason) => return unreachable(reason.clone()),
        };
        let started = std::time::Instant::now();
        let mut request = http.get(url);
        if let Some(host) = host {
            request = request.header(reqwest::header::HOST, host);
        }
        let sent = tokio::time::timeout(self.timeout, request.send()).await;
        let probe = match sent {
            Err(_) => unreachable(format!("no answer within {} ms", self.timeout.as_millis())),
            Ok(Err(err)) => unreachable(describe(&err)),
            Ok(Ok(response)) => {
                let headers = lowercase_headers(response.headers());
                let redirect = if response.status().is_redirection() {
                    headers.get("location").cloned()
                } else {
                    None
                };
                Probe::Answered {
                    status: response.status().as_u16(),
                    headers,
                    redirect,
                }
            }
        };
        tracing::debug!(
            url,
            duration_ms = started.elapsed().as_millis() as u64,
            ?probe,
            "probed"
        );
        probe
    }
}

/// Header names lowercase, repeated headers joined with ", ", values scrubbed.
fn lowercase_headers(from: &reqwest::header::HeaderMap) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in from {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    for value in headers.values_mut() {
        *value = secret::scrub(value);
    }
    headers
}

fn unreachable(reason: String) -> Probe {
    Probe::Unreachable {
        reason: secret::scrub(&reason),
    }
}

fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_builder() {
        "not a usable URL"
    } else {
        "request failed"
    };
    let mut reason = kind.to_owned();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}
