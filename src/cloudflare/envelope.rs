//! The response envelope every Cloudflare v4 answer comes in, decoded in one place.
//!
//! `{success, errors[], messages[], result, result_info?}`: a success hands its `result` to
//! the caller's type, a failure becomes [`Error::Api`](super::Error::Api). Pagination is decided
//! here too, from `result_info`, so no list endpoint can quietly assume a single page.
//!
//! The `result` is kept as raw JSON until the caller's type reads it: decoding an answer never
//! builds a generic JSON tree, whose size can be dozens of times the body's (`[0,0,0,…]`). The
//! error messages are text from outside and are scrubbed of secret values here, where they
//! enter.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::secret;

/// One item of an envelope's `errors` or `messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMessage {
    /// Cloudflare's error code (1000 and up).
    pub code: u32,
    /// What Cloudflare says went wrong.
    pub message: String,
}

/// `result_info` on list answers. Every field is optional: per-product copies of the schema
/// leave some out (often `total_pages`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct ResultInfo {
    pub(crate) per_page: Option<u32>,
    pub(crate) total_count: Option<u64>,
    pub(crate) total_pages: Option<u32>,
    /// R2's object lists: whether more objects follow this page.
    pub(crate) is_truncated: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

/// What an envelope said.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// `success: true`: the result as raw JSON text (`null` when absent), typed later by
    /// [`typed`].
    Success {
        result: String,
        info: Option<ResultInfo>,
    },
    /// `success: false`, with the errors it listed, their messages scrubbed.
    Failure(Vec<ApiMessage>),
}

/// Decode an answer's body. `None` when the body is not an envelope at all (an HTML error
/// page from a proxy, an empty body).
pub(crate) fn decode(body: &[u8]) -> Option<Decoded> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).ok()?;
    Some(if envelope.success {
        let result = envelope.result.map_or("null", RawValue::get).to_owned();
        Decoded::Success {
            result,
            info: envelope.result_info,
        }
    } else {
        let errors = envelope
            .errors
            .into_iter()
            .map(|e| ApiMessage {
                code: e.code,
                message: secret::scrub(&e.message),
            })
            .collect();
        Decoded::Failure(errors)
    })
}

/// Turn a raw `result` into the caller's type; the error names the field that did not fit
/// (scrubbed and cut: it may quote the answer).
pub(crate) fn typed<T: DeserializeOwned>(result: &str) -> Result<T, String> {
    let mut json = serde_json::Deserializer::from_str(result);
    serde_path_to_error::deserialize(&mut json).map_err(|err| {
        let path = err.path().to_string();
        secret::scrub(&format!("at `result.{path}`: {}", err.into_inner()))
    })
}

/// Whether a paged list has another page after `page` (1-based), given how many items this page
/// held and how many were collected so far. Stops on an empty page, at `total_pages`, at
/// `total_count`, or, when the answer gives neither, on a short page.
pub(crate) fn has_more(
    page: u32,
    requested_per_page: u32,
    got: usize,
    collected: usize,
    info: Option<&ResultInfo>,
) -> bool {
    if got == 0 {
        return false;
    }
    let info = info.copied().unwrap_or_default();
    if let Some(total_pages) = info.total_pages {
        return page < total_pages;
    }
    if let Some(total_count) = info.total_count {
        return (collected as u64) < total_count;
    }
    got >= info.per_page.unwrap_or(requested_per_page) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_envelope_yields_result_and_result_info() {
        let body = br#"{"success":true,"errors":[],"messages":[],"result":[{"uuid":"u"}],
            "result_info":{"page":1,"per_page":10,"count":1,"total_count":1,"total_pages":1},"extra":1}"#;
        let Some(Decoded::Success { result, info }) = decode(body) else {
            panic!("not a success")
        };
        assert_eq!(result, r#"[{"uuid":"u"}]"#);
        assert_eq!(info.unwrap().total_pages, Some(1));
    }

    #[test]
    fn failure_envelope_yields_its_errors() {
        let body = br#"{"success":false,"errors":[{"code":7003,"message":"No route for the URI","documentation_url":"x"}],"messages":[],"result":null}"#;
        let Some(Decoded::Failure(errors)) = decode(body) else {
            panic!("not a failure")
        };
        assert_eq!(errors[0].code, 7003);
    }

    #[test]
    fn non_envelope_body_is_not_decoded() {
        assert!(decode(b"<html>502 Bad Gateway</html>").is_none());
        assert!(decode(b"").is_none());
    }

    #[test]
    fn typed_result_error_names_the_field() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Db {
            uuid: String,
            name: String,
        }
        let err = typed::<Vec<Db>>(r#"[{"uuid": "u"}]"#).unwrap_err();
        assert!(err.contains("result.[0]") && err.contains("name"), "{err}");
    }

    #[test]
    fn paging_stops_at_total_pages_total_count_or_a_short_page() {
        let pages = |total_pages| ResultInfo {
            total_pages: Some(total_pages),
            ..ResultInfo::default()
        };
        assert!(has_more(1, 10, 10, 10, Some(&pages(6))));
        assert!(!has_more(6, 10, 10, 60, Some(&pages(6))));
        let count = ResultInfo {
            total_count: Some(25),
            ..ResultInfo::default()
        };
        assert!(has_more(2, 10, 10, 20, Some(&count)));
        assert!(!has_more(3, 10, 5, 25, Some(&count)));
        assert!(has_more(1, 10, 10, 10, None));
        assert!(!has_more(2, 10, 3, 13, None));
        assert!(!has_more(2, 10, 0, 10, Some(&pages(9))));
        let capped = ResultInfo {
            per_page: Some(5),
            ..ResultInfo::default()
        };
        assert!(has_more(1, 50, 5, 5, Some(&capped)));
    }
}
