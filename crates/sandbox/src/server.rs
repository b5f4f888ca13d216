//! The request pipeline and the accept loop.
//!
//! Order per request: route → authentication → rate limit → faults before → body → handler
//! (under the state lock; D1's SQL then runs off it, see [`d1_guard`](super::d1_guard)) →
//! faults after a create → latency → answer, then counters, the request log and the observer.
//! The accept loop is hyper's, not `axum::serve`, because a dropped connection (a fault) is a
//! service error that makes hyper close the socket without answering. A client gets
//! `header_read_timeout` to send each request's headers, and the connection is closed when it
//! does not, so a client that stalls mid-request holds no task forever.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};

use super::auth;
use super::d1;
use super::d1_export;
use super::d1_guard::Job;
use super::d1_import;
use super::envelope::{ApiError, Reply};
use super::faults::{AfterCreate, Before, Injector};
use super::identity;
use super::r2;
use super::ratelimit::Limiter;
use super::request::Call;
use super::route::{self, Match, Op, Route};
use super::stats::Counters;
use super::stream;
use super::time_travel;
use super::traffic::Traffic;
use super::workers;
use super::world::World;
use super::zones;
use super::{Exchange, Observer};

/// How long a client may take over a request's headers unless configured otherwise.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Cloudflare's largest accepted request body.
const MAX_BODY_BYTES: usize = 100 * 1024 * 1024;
/// The largest file the sandbox takes at an import upload URL (R2 allows 5 GB; the sandbox keeps
/// uploads in memory).
const MAX_UPLOAD_BYTES: usize = 1024 * 1024 * 1024;

/// Everything the pipeline needs, shared by all connections.
pub(crate) struct App {
    pub(crate) world: Mutex<World>,
    pub(crate) token: Option<String>,
    pub(crate) latency: Duration,
    pub(crate) faults: Option<Injector>,
    pub(crate) limiter: Limiter,
    pub(crate) counters: Counters,
    pub(crate) observer: Option<Observer>,
    pub(crate) traffic: Traffic,
    pub(crate) d1_query_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
}

/// What a handler did under the state lock: answered, or left SQL to run off it.
pub(crate) enum Step {
    Done(Reply),
    Sql(Job),
}

/// A fault that closes the connection without an answer.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

enum Outcome {
    Answer(Reply),
    Drop,
}

impl App {
    /// Answer one request, or drop the connection.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Dropped> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        if let Some(target) = self.worker_target(req.headers(), &path) {
            let headers = req.headers().clone();
            // A Worker reads its own body (a webhook verifies its signature over it).
            let body = axum::body::to_bytes(Body::new(req.into_body()), MAX_UPLOAD_BYTES)
                .await
                .unwrap_or_default();
            return Ok(self.worker_traffic(&method, &headers, target, &body).await);
        }
        if let Some(internal) = path.strip_prefix("/__sandbox/") {
            // Import files go to the upload URL, which is R2's limit, not the API's.
            let body = match axum::body::to_bytes(Body::new(req.into_body()), MAX_UPLOAD_BYTES)
                .await
            {
                Ok(body) => body,
                Err(_) => {
                    let mut refused = Response::new(Body::from("upload too large or unreadable"));
                    *refused.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                    return Ok(refused);
                }
            };
            let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(world
                .lifecycle
                .internal(&method, internal, &body)
                .unwrap_or_else(|| self.internal(&method, internal)));
        }
        let (outcome, route) = self.api(req, &path).await;
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let template = route.map(|r| r.template);
        let status = match &outcome {
            Outcome::Answer(reply) => reply.status.as_u16(),
            Outcome::Drop => 0,
        };
        self.counters.record(method.as_str(), template, status);
        tracing::info!(
            "{method} {path} {} {}ms",
            if status == 0 {
                "dropped".to_owned()
            } else {
                status.to_string()
            },
            started.elapsed().as_millis()
        );
        let Outcome::Answer(reply) = outcome else {
            return Err(Dropped);
        };
        if let Some(observer) = &self.observer {
            observer(&Exchange {
                method: method.to_string(),
                path: path.clone(),
                route: template.map(str::to_owned),
                operation: route.map(|r| r.operation.to_owned()),
                status: reply.status.as_u16(),
                body: reply.body.clone(),
            });
        }
        Ok(response(reply))
    }

    async fn api(&self, req: Request<Incoming>, path: &str) -> (Outcome, Option<&'static Route>) {
        let Some(rest) = path.strip_prefix("/client/v4") else {
            return (Outcome::Answer(ApiError::no_route().into_reply()), None);
        };
        let (route, params) = match route::resolve(req.method(), rest) {
            Match::Found(route, params) => (route, params),
            Match::WrongMethod => {
                let error = ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    7001,
                    format!("Method {} not allowed for this endpoint", req.method()),
                );
                return (Outcome::Answer(error.into_reply()), None);
            }
            Match::NotFound => return (Outcome::Answer(ApiError::no_route().into_reply()), None),
        };
        let outcome = match self.admitted(req, route, params).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Answer(error.into_reply()),
        };
        (outcome, Some(route))
    }

    async fn admitted(
        &self,
        req: Request<Incoming>,
        route: &'static Route,
        params: Vec<String>,
    ) -> Result<Outcome, ApiError> {
        let token = auth::authenticate(req.headers(), self.token.as_deref(), route.template)?;
        let limit_headers = self.limiter.admit()?;
        let decision = self
            .faults
            .as_ref()
            .map(|f| {
                f.decide(
                    route.method.as_str(),
                    route.template,
                    route.operation,
                    route.creates,
                )
            })
            .unwrap_or_default();
        match decision.before {
            Some(Before::TooMany(wait)) => return Err(too_many(wait.as_secs().max(1))),
            Some(Before::Internal) => return Err(internal()),
            Some(Before::Unavailable) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    10013,
                    "Service temporarily unavailable",
                ));
            }
            Some(Before::Drop) => return Ok(Outcome::Drop),
            None => {}
        }
        if let Some(slow) = decision.slow {
            tokio::time::sleep(slow).await;
        }
        let query = req.uri().query().map(str::to_owned);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(req.into_body()).await?;
        let mut call = Call::new(route, params, query.as_deref(), content_type, body, token).await;
        call.refuse_durable_objects = decision.durable_object;
        let step = {
            let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
            // A bug in a handler must still answer in the envelope, never drop or answer bare.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&call, &mut world)))
                .unwrap_or_else(|_| {
                tracing::error!(
                    "sandbox handler panicked on {} {}",
                    route.method,
                    route.template
                );
                Err(internal())
            })?
        };
        let mut reply = match step {
            Step::Done(reply) => reply,
            Step::Sql(job) => {
                let (reply, after) = job.run(self.d1_query_timeout).await;
                if let Some(after) = after {
                    let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
                    after(&mut world)?;
                }
                reply?
            }
        };
        reply.headers.extend(limit_headers);
        match decision.after_create {
            Some(AfterCreate::Internal) => Err(internal()),
            Some(AfterCreate::Drop) => Ok(Outcome::Drop),
            Some(AfterCreate::Stall(wait)) => {
                tokio::time::sleep(wait).await;
                Ok(Outcome::Answer(reply))
            }
            None => Ok(Outcome::Answer(reply)),
        }
    }

    fn internal(&self, method: &Method, path: &str) -> Response<Body> {
        let body = match (method, path) {
            (&Method::GET, "stats") => json!(self.counters.snapshot()),
            (&Method::GET, "traffic") => json!(self.traffic.log()),
            (&Method::POST, "stats/reset") => {
                self.counters.reset();
                json!(self.counters.snapshot())
            }
            _ => return response(ApiError::no_route().into_reply()),
        };
        response(Reply {
            status: StatusCode::OK,
            body,
            headers: Vec::new(),
            raw: None,
        })
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                10027,
                format!(
                    "Request body too large or unreadable; the limit is {MAX_BODY_BYTES} bytes"
                ),
            )
        })
}

fn too_many(wait_secs: u64) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        1015,
        "You are being rate limited: please wait and consider throttling your request speed",
    );
    error.headers.push(("retry-after", wait_secs.to_string()));
    error
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        10002,
        "Internal server error",
    )
}

fn dispatch(call: &Call, world: &mut World) -> Result<Step, ApiError> {
    let _clock = crate::clock::Reading::start(&world.lifecycle.clock);
    if call.route.template.starts_with("/accounts/{account_id}") {
        auth::check_account(call.route.template, call.param(0), &world.state.account.id)?;
    }
    let reply = match call.route.op {
        Op::UserTokenVerify => identity::user_token_verify(call),
        Op::AccountTokenVerify => identity::account_token_verify(call),
        Op::User => identity::user(call, &world.state),
        Op::Accounts => identity::accounts(call, &world.state),
        Op::Memberships => identity::memberships(call, &world.state),
        Op::ScriptList => workers::scripts::list(world),
        Op::ScriptUpload => workers::scripts::upload(call, world),
        Op::ScriptDelete => workers::scripts::delete(call, world),
        Op::SettingsGet => workers::settings::get(call, world),
        Op::SettingsPatch => workers::settings::patch(call, world),
        Op::ScriptSettingsGet => workers::script_settings::get(call, world),
        Op::ScriptSettingsPatch => workers::script_settings::patch(call, world),
        Op::SecretList => workers::secrets::list(call, world),
        Op::SecretPut => workers::secrets::put(call, world),
        Op::SecretGet => workers::secrets::get(call, world),
        Op::SecretDelete => workers::secrets::delete(call, world),
        Op::VersionList => workers::versions::list(call, world),
        Op::VersionUpload => workers::versions::upload(call, world),
        Op::VersionGet => workers::versions::get(call, world),
        Op::DeploymentList => workers::versions::deployment_list(call, world),
        Op::DeploymentCreate => workers::versions::deployment_create(call, world),
        Op::DeploymentGet => workers::versions::deployment_get(call, world),
        Op::DeploymentDelete => workers::versions::deployment_delete(call, world),
        Op::ServiceGet => workers::services::get(call, world),
        Op::ScriptSubdomainGet => workers::subdomain::script_get(call, world),
        Op::ScriptSubdomainPost => workers::subdomain::script_post(call, world),
        Op::ScriptSubdomainDelete => workers::subdomain::script_delete(call, world),
        Op::AccountSubdomainGet => workers::subdomain::account_get(world),
        Op::AccountSubdomainPut => workers::subdomain::account_put(call, world),
        Op::D1List => d1::list(call, world),
        Op::D1Create => d1::create(call, world),
        Op::D1Get => return d1::get(call, world).map(Step::Sql),
        Op::D1Delete => d1::delete(call, world),
        Op::D1Query => return d1::run(call, world, d1::Shape::Objects).map(Step::Sql),
        Op::D1Raw => return d1::run(call, world, d1::Shape::Arrays).map(Step::Sql),
        Op::D1Export => d1_export::export(call, world),
        Op::D1Import => d1_import::import(call, world),
        Op::D1Bookmark => time_travel::get_bookmark(call, world),
        Op::D1Restore => time_travel::restore(call, world),
        Op::R2BucketList => r2::list_buckets(call, world),
        Op::R2BucketCreate => r2::create_bucket(call, world),
        Op::R2BucketGet => r2::get_bucket(call, world),
        Op::R2BucketDelete => r2::delete_bucket(call, world),
        Op::R2ObjectList => r2::list_objects(call, world),
        Op::R2ObjectPut => r2::put_object(call, world),
        Op::R2ObjectGet => r2::get_object(call, world),
        Op::R2ObjectDelete => r2::delete_object(call, world),
        Op::Zones => zones::list(call, world),
        Op::RulesetGet => zones::get(call, world),
        Op::RulesetPut => zones::put(call, world),
        Op::StreamKeyList => stream::list(world),
        Op::StreamKeyCreate => stream::create(world),
        Op::StreamKeyDelete => stream::delete(call, world),
    };
    reply.map(Step::Done)
}

fn response(reply: Reply) -> Response<Body> {
    if let Some(bytes) = reply.raw {
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = reply.status;
        for (name, value) in reply.headers {
            if let Ok(value) = value.parse() {
                response.headers_mut().insert(name, value);
            }
        }
        return response;
    }
    let body = serde_json::to_vec(&reply.body).unwrap_or_else(|_| b"{}".to_vec());
    let mut builder = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::from(json!({"success": false, "errors": [{"code": 10002, "message": "Internal server error"}], "messages": [], "result": Value::Null}).to_string()));
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// Accept connections until `shutdown` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                tokio::spawn(async move {
                    let header_read_timeout = app.header_read_timeout;
                    let service = hyper::service::service_fn(move |req| app.clone().handle(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_read_timeout)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}
