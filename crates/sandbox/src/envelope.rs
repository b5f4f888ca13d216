//! The response envelope every Cloudflare API answer is wrapped in.
//!
//! `{success, errors, messages, result[, result_info]}`: a success carries `errors: []` and a
//! result; a failure carries `success: false`, at least one `{code, message}` and `result: null`.
//! Handlers return [`Reply`] or [`ApiError`]; nothing else reaches the wire, so no answer, not
//! even an unknown route or a rejected token, leaves without the envelope.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// A successful answer: status, envelope body and extra headers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// Raw bytes sent instead of the envelope (R2 object reads); `body` is then `null`.
    pub(crate) raw: Option<Bytes>,
}

impl Reply {
    /// `200` with `result`.
    pub(crate) fn ok(result: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: json!({"success": true, "errors": [], "messages": [], "result": result}),
            headers: Vec::new(),
            raw: None,
        }
    }

    /// `200` with raw bytes instead of the envelope.
    pub(crate) fn raw(bytes: Bytes) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Value::Null,
            headers: Vec::new(),
            raw: Some(bytes),
        }
    }

    /// `200` with a page of `items` and its `result_info`.
    pub(crate) fn page(items: Vec<Value>, page: &Page, total_count: usize) -> Reply {
        let total_pages = total_count.div_ceil(page.per_page.max(1));
        let mut reply = Reply::ok(Value::Array(items));
        let count = reply.body["result"].as_array().map_or(0, Vec::len);
        reply.body["result_info"] = json!({
            "page": page.page,
            "per_page": page.per_page,
            "count": count,
            "total_count": total_count,
            "total_pages": total_pages,
        });
        reply
    }
}

/// Page-based pagination parameters, already checked against the endpoint's bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub(crate) page: usize,
    pub(crate) per_page: usize,
}

impl Page {
    /// The slice of `items` this page covers.
    pub(crate) fn slice<T: Clone>(&self, items: &[T]) -> Vec<T> {
        let start = (self.page - 1).saturating_mul(self.per_page);
        items
            .iter()
            .skip(start)
            .take(self.per_page)
            .cloned()
            .collect()
    }
}

/// A failed answer: HTTP status plus one Cloudflare error code and message.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: u32,
    pub(crate) message: String,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// `400` for a request the sandbox understood but refuses.
    pub(crate) fn bad_request(code: u32, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `404` for a missing resource.
    pub(crate) fn not_found(code: u32, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// `7003`: no route matches the path.
    pub(crate) fn no_route() -> ApiError {
        ApiError::not_found(7003, "No route for the URI")
    }

    /// The envelope for this error.
    pub(crate) fn into_reply(self) -> Reply {
        Reply {
            status: self.status,
            body: json!({
                "success": false,
                "errors": [{"code": self.code, "message": self.message}],
                "messages": [],
                "result": null,
            }),
            headers: self.headers,
            raw: None,
        }
    }
}
