//! Worker traffic: each script's serving deployment answers HTTP on the sandbox's own listener.
//!
//! Tests and `--sandbox` runs need Workers to probe (headers, smoke checks, version overrides)
//! without starting a site of their own, so the sandbox answers for its scripts:
//!
//! - by `Host: <script>.<subdomain>.workers.dev` (the account's subdomain; only while the
//!   script's workers.dev route is enabled, else 404 as Cloudflare does), and
//! - by the path prefix `/__sandbox/workers/<script>/…` (always; the rest is the Worker's path).
//!
//! The version comes from the serving deployment. A header
//! `Cloudflare-Workers-Version-Overrides: <script>="<version id>"` (an RFC 8941 dictionary) picks a version only when that
//! version is in the deployment (0 % included) and no `override_delay` fault is running;
//! otherwise it is silently ignored, as Cloudflare does. Without an honoured override, a
//! `Cloudflare-Workers-Version-Key` picks by its hash (affinity), and else the n-th request to a
//! script picks by a generator seeded with the fault seed (0 without faults), the script and n:
//! the same requests give the same versions on every run. Every answer names the version that
//! answered in [`VERSION_HEADER`]. What a version answers is declared, not executed (see
//! [`crate::workers::behaviour`]).
//!
//! These answers are not API answers: they skip authentication, the rate limit, the API's
//! faults, the counters of `/__sandbox/stats` and the observer. `GET /__sandbox/traffic` lists
//! the recent Worker requests (method, script, path, the names of the request headers, the
//! version that answered, status), so a test can show a client never sent `Authorization`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response, StatusCode, header};
use serde::Serialize;

use super::server::App;
use super::state::Script;
use super::workers::behaviour::{self, Answer, Request};

/// The response header that names the version that answered.
pub(crate) const VERSION_HEADER: &str = "x-sandbox-version-id";

/// The override header Cloudflare reads.
const OVERRIDES: &str = "cloudflare-workers-version-overrides";

/// The affinity header Cloudflare reads.
const VERSION_KEY: &str = "cloudflare-workers-version-key";

/// How many Worker requests `GET /__sandbox/traffic` remembers.
const LOG_CAPACITY: usize = 1000;

const PREFIX: &str = "/__sandbox/workers/";

/// One Worker request, as `GET /__sandbox/traffic` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Logged {
    method: String,
    script: String,
    path: String,
    /// Header names only, lowercase: values may be credentials.
    request_headers: Vec<String>,
    version: Option<String>,
    status: u16,
}

/// Per-script request numbers (for the seeded choice) and the recent requests.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    requests: Mutex<HashMap<String, u64>>,
    log: Mutex<VecDeque<Logged>>,
}

impl Traffic {
    fn next(&self, script: &str) -> u64 {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let n = requests.entry(script.to_owned()).or_default();
        *n += 1;
        *n
    }

    fn record(&self, entry: Logged) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// The recent Worker requests, oldest first.
    pub(crate) fn log(&self) -> Vec<Logged> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }
}

/// Where a request is addressed, if to a Worker.
enum Addressed {
    /// By the path prefix: the script and the Worker's path.
    Prefix(String, String),
    /// By `Host`: the host's first label, the subdomain label and the whole path.
    Host(String, String, String),
}

fn addressed(headers: &HeaderMap, path: &str) -> Option<Addressed> {
    if let Some(rest) = path.strip_prefix(PREFIX) {
        let (script, rest) = rest.split_once('/').unwrap_or((rest, ""));
        return Some(Addressed::Prefix(script.to_owned(), format!("/{rest}")));
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let rest = host.to_ascii_lowercase();
    let rest = rest.strip_suffix(".workers.dev")?;
    let (script, subdomain) = rest.split_once('.')?;
    Some(Addressed::Host(
        script.to_owned(),
        subdomain.to_owned(),
        path.to_owned(),
    ))
}

/// The version id `<script>="<id>"` names in an overrides header, if it parses.
fn overridden(headers: &HeaderMap, script: &str) -> Option<String> {
    let value = headers.get(OVERRIDES)?.to_str().ok()?;
    value.split(',').find_map(|member| {
        let (key, id) = member.trim().split_once('=')?;
        let id = id.trim().strip_prefix('"')?.strip_suffix('"')?;
        (key.trim() == script).then(|| id.to_owned())
    })
}

/// FNV-1a of `text` folded with `seed` and `n`, as a point in `[0, 100)`.
fn point(seed: u64, text: &str, n: u64) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in text.bytes().chain(n.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Fold the high bits in so consecutive n spread over the whole range.
    hash ^= hash >> 29;
    let unit = (hash % 1_000_000) as f64 / 1_000_000.0;
    unit * 100.0
}

/// The serving deployment's version for this request.
fn choose<'a>(
    app: &App,
    script_name: &str,
    script: &'a Script,
    headers: &HeaderMap,
) -> Option<&'a str> {
    let deployment = script.deployments.last()?;
    if let Some(id) = overridden(headers, script_name) {
        let delay = app.faults.as_ref().and_then(|f| f.override_delay());
        let settled = delay.is_none_or(|delay| {
            deployment
                .created_on
                .parse::<jiff::Timestamp>()
                .ok()
                .and_then(|at| {
                    let since = jiff::Timestamp::now().duration_since(at);
                    std::time::Duration::try_from(since).ok()
                })
                .is_none_or(|since| since >= delay)
        });
        if settled && let Some((id, _)) = deployment.versions.iter().find(|(v, _)| *v == id) {
            return Some(id);
        }
    }
    let seed = app.faults.as_ref().map_or(0, |f| f.seed());
    let at = match headers.get(VERSION_KEY).and_then(|v| v.to_str().ok()) {
        Some(key) => point(seed, key, 0),
        None => point(seed, script_name, app.traffic.next(script_name)),
    };
    let mut cumulative = 0.0;
    for (id, percentage) in &deployment.versions {
        cumulative += percentage;
        if at < cumulative {
            return Some(id);
        }
    }
    deployment
        .versions
        .iter()
        .rev()
        .find(|(_, p)| *p > 0.0)
        .map(|(id, _)| id.as_str())
}

/// A request's Worker: the script's name, the Worker's path and whether it came by `Host`.
pub(crate) struct Target {
    script: String,
    path: String,
    by_host: bool,
}

impl App {
    /// The Worker a request is addressed to, or `None` when it is not one (an API request).
    pub(crate) fn worker_target(&self, headers: &HeaderMap, path: &str) -> Option<Target> {
        Some(match addressed(headers, path)? {
            Addressed::Prefix(script, path) => Target {
                script,
                path,
                by_host: false,
            },
            Addressed::Host(script, subdomain, path) => {
                let world = self.world.lock().unwrap_or_else(|p| p.into_inner());
                if world.state.account.subdomain.as_deref() != Some(subdomain.as_str()) {
                    return None;
                }
                Target {
                    script,
                    path,
                    by_host: true,
                }
            }
        })
    }

    /// Answer a request addressed to a Worker.
    pub(crate) async fn worker_traffic(
        &self,
        method: &Method,
        headers: &HeaderMap,
        target: Target,
        body: &[u8],
    ) -> Response<Body> {
        let Target {
            script: script_name,
            path: worker_path,
            by_host,
        } = target;
        let (answer, version) = {
            let world = self.world.lock().unwrap_or_else(|p| p.into_inner());
            let account = &world.state.account;
            let script = account
                .scripts
                .get(&script_name)
                .filter(|s| !by_host || s.workers_dev.enabled);
            let chosen = script.and_then(|s| {
                let id = choose(self, &script_name, s, headers)?;
                s.versions.iter().find(|v| v.id == id).map(|v| (s, v))
            });
            match chosen {
                Some((script, version)) => (
                    behaviour::answer(
                        account,
                        script.behaviour.as_ref(),
                        version,
                        &Request {
                            method: method.as_str(),
                            path: &worker_path,
                            headers,
                            body,
                        },
                    ),
                    Some(version.id.clone()),
                ),
                None => (
                    Answer {
                        status: 404,
                        headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
                        body: "There is nothing here yet".to_owned(),
                    },
                    None,
                ),
            }
        };
        let answer = match &self.faults {
            Some(faults) if version.is_some() => {
                let decision = faults.decide_worker(&script_name);
                if let Some(slow) = decision.slow {
                    tokio::time::sleep(slow).await;
                }
                if decision.fail {
                    Answer {
                        status: 500,
                        headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
                        body: "error code: 1101".to_owned(),
                    }
                } else {
                    answer
                }
            }
            _ => answer,
        };
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        tracing::info!(
            "worker {script_name} {method} {worker_path} {} {}",
            answer.status,
            version.as_deref().unwrap_or("-")
        );
        self.traffic.record(Logged {
            method: method.to_string(),
            script: script_name,
            path: worker_path,
            request_headers: headers.keys().map(|k| k.as_str().to_owned()).collect(),
            version: version.clone(),
            status: answer.status,
        });
        response(answer, version.as_deref())
    }
}

fn response(answer: Answer, version: Option<&str>) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if let Some(version) = version {
        builder = builder.header(VERSION_HEADER, version);
    }
    for (name, value) in &answer.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::from(answer.body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::from("error code: 1101\ninvalid declared header"));
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_as_a_dictionary_of_strings() {
        let mut headers = HeaderMap::new();
        headers.insert(
            OVERRIDES,
            "other=\"x\", lms-api=\"0a1b\"".parse().expect("header"),
        );
        assert_eq!(overridden(&headers, "lms-api").as_deref(), Some("0a1b"));
        assert_eq!(overridden(&headers, "lms-viewer"), None);
        headers.insert(OVERRIDES, "lms-api=0a1b".parse().expect("header"));
        assert_eq!(
            overridden(&headers, "lms-api"),
            None,
            "a token is not a string"
        );
    }

    #[test]
    fn points_cover_the_range_deterministically() {
        let points: Vec<f64> = (1..=200).map(|n| point(0, "lms-api", n)).collect();
        assert!(points.iter().all(|p| (0.0..100.0).contains(p)));
        assert!(points.iter().any(|p| *p < 10.0) && points.iter().any(|p| *p > 90.0));
        assert_eq!(point(0, "lms-api", 7), point(0, "lms-api", 7));
    }
}
