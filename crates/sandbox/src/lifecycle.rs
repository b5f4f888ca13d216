//! What D1's data-lifecycle API needs beside the databases themselves: the clock, the knobs,
//! Time Travel histories, export and import jobs, the blobs behind signed URLs, and R2.
//!
//! Also the two unauthenticated `/__sandbox/` routes that go with them: `/__sandbox/clock` (GET
//! the time; POST `{"advance_secs": N}` or `{"set": "<RFC 3339>"}` to move it) and
//! `/__sandbox/blob/…`, which stands in for the presigned R2 URLs D1 hands out: GET
//! `/__sandbox/blob/<id>` downloads an export's dump until its signed URL expires, PUT
//! `/__sandbox/blob/upload/<filename>` stores an import's file and answers `ETag: "<md5>"`.
//! Neither takes the API token, exactly like the URLs they stand for.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{Method, Response, StatusCode, header};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::clock::Clock;
use super::d1_export::Exports;
use super::d1_import::Imports;
use super::r2::Buckets;
use super::time_travel::Histories;

/// The D1 and R2 lifecycle state, kept in the world beside the account.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    pub(crate) clock: Clock,
    /// `http://<addr>`, for the signed URLs handed out.
    pub(crate) origin: String,
    /// `/query` keeps the statements before a failing one.
    pub(crate) query_non_atomic: bool,
    /// Imports silently skip every other `INSERT`.
    pub(crate) corrupt_imports: bool,
    pub(crate) histories: Histories,
    pub(crate) exports: Exports,
    pub(crate) imports: Imports,
    pub(crate) blobs: HashMap<String, Blob>,
    pub(crate) r2: Buckets,
}

/// Bytes behind a URL that needs no token, until `expires`.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    pub(crate) bytes: Bytes,
    pub(crate) expires: Option<Timestamp>,
}

impl Lifecycle {
    pub(crate) fn new(
        clock: Clock,
        origin: String,
        query_non_atomic: bool,
        corrupt_imports: bool,
        r2: Buckets,
    ) -> Lifecycle {
        Lifecycle {
            clock,
            origin,
            query_non_atomic,
            corrupt_imports,
            histories: Histories::default(),
            exports: Exports::default(),
            imports: Imports::default(),
            blobs: HashMap::new(),
            r2,
        }
    }

    /// The unauthenticated routes under `/__sandbox/` this module serves; `None` for others.
    pub(crate) fn internal(
        &mut self,
        method: &Method,
        path: &str,
        body: &Bytes,
    ) -> Option<Response<Body>> {
        if path == "clock" {
            return Some(self.clock_route(method, body));
        }
        let id = path.strip_prefix("blob/")?;
        Some(match (method, id.strip_prefix("upload/")) {
            (&Method::PUT, Some(filename)) => {
                let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(body));
                self.blobs.insert(
                    format!("upload/{filename}"),
                    Blob {
                        bytes: body.clone(),
                        expires: None,
                    },
                );
                let mut response = plain(StatusCode::OK, Bytes::new());
                if let Ok(value) = format!("\"{md5}\"").parse() {
                    response.headers_mut().insert(header::ETAG, value);
                }
                response
            }
            (&Method::GET, None) => {
                let now = self.clock.now();
                match self.blobs.get(id) {
                    Some(blob) if blob.expires.is_none_or(|e| now < e) => {
                        plain(StatusCode::OK, blob.bytes.clone())
                    }
                    Some(_) => plain(StatusCode::FORBIDDEN, Bytes::from("Request has expired")),
                    None => plain(StatusCode::NOT_FOUND, Bytes::from("NoSuchKey")),
                }
            }
            _ => plain(StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
        })
    }

    fn clock_route(&mut self, method: &Method, body: &Bytes) -> Response<Body> {
        if method == Method::POST {
            let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            if let Some(secs) = request.get("advance_secs").and_then(Value::as_i64) {
                self.clock.advance(SignedDuration::from_secs(secs));
            } else if let Some(at) = request
                .get("set")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Timestamp>().ok())
            {
                self.clock.set(at);
            } else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "expected {\"advance_secs\": N} or {\"set\": \"<RFC 3339>\"}"}),
                );
            }
        } else if method != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
        }
        json_response(
            StatusCode::OK,
            &json!({"now": self.clock.now().to_string()}),
        )
    }
}

fn plain(status: StatusCode, bytes: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
