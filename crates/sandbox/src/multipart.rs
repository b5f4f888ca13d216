//! multipart/form-data bodies (script uploads, settings patches), read whole and checked.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart};
use axum::http::{Request, StatusCode};

use super::envelope::ApiError;

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) data: Bytes,
}

impl Part {
    /// The part as UTF-8 text.
    pub(crate) fn text(&self) -> Result<&str, ApiError> {
        std::str::from_utf8(&self.data).map_err(|_| {
            ApiError::bad_request(10021, format!("part `{}` is not valid UTF-8", self.name))
        })
    }
}

/// Split a multipart body into its parts; a broken body is a 400 in the envelope.
pub(crate) async fn parse(content_type: &str, body: Bytes) -> Result<Vec<Part>, ApiError> {
    let request = Request::builder()
        .header("content-type", content_type)
        .body(Body::from(body))
        .map_err(|_| malformed("the content-type header is not usable"))?;
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| malformed(&e.body_text()))?;
    let mut parts = Vec::new();
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(str::to_owned);
                let data = field.bytes().await.map_err(|e| malformed(&e.body_text()))?;
                parts.push(Part {
                    name,
                    content_type,
                    data,
                });
            }
            Ok(None) => return Ok(parts),
            Err(e) => return Err(malformed(&e.body_text())),
        }
    }
}

fn malformed(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        10001,
        format!("Malformed multipart/form-data body: {why}"),
    )
}
