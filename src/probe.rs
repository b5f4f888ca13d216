//! Fetches a deployed Worker's URL to see which headers its responses carry.
//!
//! A probe is evidence for the plan, never a reason for `plan` to fail: a URL that cannot be
//! reached becomes [`Probe::Unreachable`]. Redirects are reported, not followed, because the
//! headers that matter are the ones of the URL the manifest names. Probes use their own HTTP
//! client, which has never seen the API token. What a probe reports is text from outside, so
//! every value in it is scrubbed of secret values and cut to a printable length.

use std::collections::BTreeMap;
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

/// An HTTP client for probes, with a timeout per probe.
#[derive(Debug, Clone)]
pub struct Prober {
    http: Result<reqwest::Client, String>,
    timeout: Duration,
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
        Self { http, timeout }
    }

    /// GET `url` and report its status and headers (names lowercase, repeated headers joined
    /// with ", "). The body is not read.
    pub async fn probe(&self, url: &str) -> Probe {
        let http = match &self.http {
            Ok(http) => http,
            Err(reason) => return unreachable(reason.clone()),
        };
        let started = std::time::Instant::now();
        let sent = tokio::time::timeout(self.timeout, http.get(url).send()).await;
        let probe = match sent {
            Err(_) => unreachable(format!("no answer within {} ms", self.timeout.as_millis())),
            Ok(Err(err)) => unreachable(describe(&err)),
            Ok(Ok(response)) => {
                let mut headers = BTreeMap::<String, String>::new();
                for (name, value) in response.headers() {
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
