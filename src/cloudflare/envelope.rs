//! The response envelope every Cloudflare v4 answer comes in, decoded in one place.
//!
//! `{success, errors[], messages[], result, result_info?}`: a success hands its `result` to
//! the caller's type, a failure becomes [`Error::Api`](super::Error::Api). Pagination is decided
//! here too, from `result_info`, so no list endpoint can quietly assume a single page.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
}

#[derive(Debug, Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

/// What an envelope said.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// `success: true`: the raw result, typed later by [`typed`].
    Success {
        result: serde_json::Value,
        info: Option<ResultInfo>,
    },
    /// `success: false`, with the errors it listed.
    Failure(Vec<ApiMessage>),
}

/// Decode an answer's body. `None` when the body is not an envelope at all (an HTML error
/// page from a proxy, an empty body).
pub(crate) fn decode(body: &[u8]) -> Option<Decoded> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    Some(if envelope.success {
        Decoded::Success {
            result: envelope.result,
            info: envelope.result_info,
        }
    } else {
        Decoded::Failure(envelope.errors)
    })
}

/// Turn a raw `result` into the caller's type; the error names the field that did not fit.
pub(crate) fn typed<T: DeserializeOwned>(result: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(result).map_err(|err| {
        let path = err.path().to_string();
        format!("at `result.{path}`: {}", err.into_inner())
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
        assert_eq!(result[0]["uuid"], "u");
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
        let err = typed::<Vec<Db>>(serde_json::json!([{"uuid": "u"}])).unwrap_err();
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
