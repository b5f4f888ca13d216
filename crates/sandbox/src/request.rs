//! A request as handlers see it: matched route, decoded path parameters, query, whole body.

use axum::body::Bytes;
use serde_json::Value;

use super::envelope::{ApiError, Page};
use super::multipart::{self, Part};
use super::route::Route;

/// What a handler gets.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) route: &'static Route,
    pub(crate) params: Vec<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Bytes,
    pub(crate) token: String,
    /// Parsed up front when the body is multipart, because parsing is asynchronous.
    pub(crate) parts: Option<Result<Vec<Part>, ApiError>>,
    /// The `do_binding` fault hit this call: a settings PATCH with a Durable Object binding fails.
    pub(crate) refuse_durable_objects: bool,
}

impl Call {
    /// Build a call, parsing a multipart body if there is one.
    pub(crate) async fn new(
        route: &'static Route,
        params: Vec<String>,
        query: Option<&str>,
        content_type: Option<String>,
        body: Bytes,
        token: String,
    ) -> Call {
        let parts = match &content_type {
            Some(ct) if ct.starts_with("multipart/form-data") => {
                Some(multipart::parse(ct, body.clone()).await)
            }
            _ => None,
        };
        let query = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        Call {
            route,
            params,
            query,
            content_type,
            body,
            token,
            parts,
            refuse_durable_objects: false,
        }
    }

    /// Path parameter `i` (0 is the first `{…}` in the template).
    pub(crate) fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// A query parameter, if given.
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean query parameter (`true`/`false`); anything else is a 400.
    pub(crate) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.query(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::bad_request(
                10004,
                format!("Malformed URL parameter `{name}`: `{other}` is not true or false"),
            )),
        }
    }

    /// The JSON body; a missing or malformed body is a 400.
    pub(crate) fn json(&self) -> Result<Value, ApiError> {
        if self
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("multipart/"))
        {
            return Err(ApiError::bad_request(
                10001,
                "Unsupported Content-Type: this endpoint takes application/json",
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::bad_request(10001, format!("Malformed JSON in request body: {e}"))
        })
    }

    /// The JSON body, which must be an object.
    pub(crate) fn json_object(&self) -> Result<serde_json::Map<String, Value>, ApiError> {
        match self.json()? {
            Value::Object(map) => Ok(map),
            _ => Err(ApiError::bad_request(
                10001,
                "Malformed request body: expected a JSON object",
            )),
        }
    }

    /// The multipart parts; a body of another type is a 400.
    pub(crate) fn parts(&self) -> Result<&[Part], ApiError> {
        match &self.parts {
            Some(Ok(parts)) => Ok(parts),
            Some(Err(e)) => Err(e.clone()),
            None => Err(ApiError::bad_request(
                10001,
                "Unsupported Content-Type: this endpoint takes multipart/form-data",
            )),
        }
    }

    /// Page-based pagination with the endpoint's defaults and bounds.
    pub(crate) fn page(
        &self,
        default_per_page: usize,
        max_per_page: usize,
    ) -> Result<Page, ApiError> {
        let number = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
            match self.query(name) {
                None => Ok(default),
                Some(text) => text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            10004,
                            format!("Malformed URL parameter `{name}`: `{text}` must be a whole number from 1 to {max}"),
                        )
                    }),
            }
        };
        Ok(Page {
            page: number("page", 1, usize::MAX / max_per_page)?,
            per_page: number("per_page", default_per_page, max_per_page)?,
        })
    }
}
