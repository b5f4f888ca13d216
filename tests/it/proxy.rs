//! A hostile API for tests: a loopback HTTP server in front of a sandbox that forwards every
//! request to it, except those its rule answers itself (an echo of the request, a lying
//! `result_info`, a body that never ends or arrives a byte at a time).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use futures::{Stream, StreamExt as _};
use serde_json::Value;

/// A request as the proxy received it.
pub struct Seen {
    pub method: Method,
    /// The path below `/client/v4`, e.g. `/accounts/…/d1/database`.
    pub path: String,
    /// The query's `page`, when it has one.
    pub page: Option<u32>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// The `Authorization` header, as sent.
    pub fn authorization(&self) -> String {
        self.headers
            .get("authorization")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    }
}

/// What the proxy does with a request.
pub enum Reply {
    /// Send it on to the sandbox and pass its answer back.
    Forward,
    /// Send it on, then change the JSON answer before passing it back.
    Rewrite(Box<dyn FnOnce(&mut Value) + Send>),
    /// Answer it without the sandbox.
    Json(StatusCode, Value),
    /// Answer 200 with a body produced by a stream (which may never end).
    Stream(std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>),
}

type Rule = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The proxy, serving until it is dropped.
pub struct Proxy {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Serve on a loopback port, forwarding to `upstream` (a sandbox's base URL, ending in
    /// `/client/v4`) what `rule` does not answer itself.
    pub fn start(upstream: String, rule: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let rule: std::sync::Arc<Rule> = std::sync::Arc::new(rule);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("proxy client");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (rule, http, upstream) = (rule.clone(), http.clone(), upstream.clone());
                async move { handle(&*rule, &http, &upstream, method, uri, headers, body).await }
            },
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy {
            addr,
            runtime: Some(runtime),
        }
    }

    /// The base URL to give the client instead of the sandbox's.
    pub fn base_url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn handle(
    rule: &Rule,
    http: &reqwest::Client,
    upstream: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path().strip_prefix("/client/v4").unwrap_or(uri.path());
    let page = uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "page")
            .and_then(|(_, value)| value.parse().ok())
    });
    let seen = Seen {
        method: method.clone(),
        path: path.to_owned(),
        page,
        headers: headers.clone(),
        body: body.clone(),
    };
    let edit = match rule(&seen) {
        Reply::Json(status, value) => return json(status, &value),
        Reply::Stream(stream) => {
            return axum::response::Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .expect("a streamed answer");
        }
        Reply::Forward => None,
        Reply::Rewrite(edit) => Some(edit),
    };
    let target = format!(
        "{}{}",
        upstream,
        uri.path_and_query()
            .map_or(path, |p| p.as_str())
            .strip_prefix("/client/v4")
            .unwrap_or(path)
    );
    let mut request = http.request(method, target).body(body);
    for name in ["authorization", "content-type"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return json(StatusCode::BAD_GATEWAY, &Value::Null);
    };
    let status = answer.status();
    let bytes = answer.bytes().await.unwrap_or_default();
    match (edit, serde_json::from_slice::<Value>(&bytes)) {
        (Some(edit), Ok(mut value)) => {
            edit(&mut value);
            json(status, &value)
        }
        _ => axum::response::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .expect("a forwarded answer"),
    }
}

fn json(status: StatusCode, value: &Value) -> axum::response::Response {
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .expect("a JSON answer")
}

/// A body that starts with `prefix` and then repeats `filler` until `total` bytes were sent,
/// in chunks of 64 KiB, as fast as the client reads.
pub fn endless_body(
    prefix: &'static str,
    filler: &'static str,
    total: usize,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    const CHUNK: usize = 64 * 1024;
    let chunk = Bytes::from(filler.repeat(CHUNK / filler.len()));
    let first = futures::stream::once(async move { Ok(Bytes::from_static(prefix.as_bytes())) });
    let count = total.saturating_sub(prefix.len()) / chunk.len();
    first.chain(futures::stream::iter(
        std::iter::repeat_n(chunk, count).map(Ok),
    ))
}

/// A body sent one byte every `every`, `prefix` first then spaces, for as long as the client
/// keeps reading.
pub fn drip(
    prefix: &'static str,
    every: Duration,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::unfold(0usize, move |sent| async move {
        if sent > 0 {
            tokio::time::sleep(every).await;
        }
        let byte = prefix.as_bytes().get(sent).copied().unwrap_or(b' ');
        Some((Ok(Bytes::copy_from_slice(&[byte])), sent + 1))
    })
}
