//! What can go wrong talking to Cloudflare, with enough context (method, path, code) to act on,
//! and a hint for the errors users actually meet: a token without the right permission, a
//! Worker that was never deployed, a base URL that does not point at the API, rate limits.

use std::fmt;

use reqwest::Method;

use super::envelope::ApiMessage;

/// An error from the Cloudflare API client.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// No token was given.
    #[error("no Cloudflare API token")]
    #[diagnostic(help("set CLOUDFLARE_API_TOKEN (a token with Workers Scripts Edit and D1 Edit)"))]
    TokenMissing,
    /// The token cannot be sent in an HTTP header (a stray newline or non-ASCII character).
    #[error("the Cloudflare API token contains characters that cannot be sent in an HTTP header")]
    #[diagnostic(help("check CLOUDFLARE_API_TOKEN for stray quotes, spaces or line breaks"))]
    TokenInvalid,
    /// No account id was given.
    #[error("no Cloudflare account id")]
    #[diagnostic(help("set CLOUDFLARE_ACCOUNT_ID or `account_id` in the manifest"))]
    AccountMissing,
    /// `CLOUDFLARE_ACCOUNT_ID` is not an account id.
    #[error(
        "CLOUDFLARE_ACCOUNT_ID is `{value}`, not a Cloudflare account id (32 hexadecimal characters)"
    )]
    #[diagnostic(help(
        "copy the account id from the dashboard (Workers & Pages → Account details), or unset CLOUDFLARE_ACCOUNT_ID to use the manifest's `account_id`"
    ))]
    AccountInvalid {
        /// The value as given.
        value: String,
    },
    /// The base URL does not parse or is not http(s).
    #[error("the Cloudflare API base URL `{url}` is not a valid http(s) URL")]
    #[diagnostic(help("CLOUDFLARE_API_BASE_URL looks like https://api.cloudflare.com/client/v4"))]
    BaseUrlInvalid {
        /// The URL as given.
        url: String,
    },
    /// The base URL would send the token in clear text to a host other than this machine.
    #[error("refusing to send the API token over plain http to `{host}`")]
    #[diagnostic(help(
        "use an https:// CLOUDFLARE_API_BASE_URL; plain http is allowed only for loopback (127.0.0.0/8, ::1, localhost)"
    ))]
    BaseUrlInsecure {
        /// The host the URL names.
        host: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("could not set up the HTTP client")]
    ClientBuild(#[source] reqwest::Error),
    /// Cloudflare answered with an error envelope (or an error status without one).
    #[error("{method} {path} failed with HTTP {status}: {}", describe(errors))]
    Api {
        /// The request method.
        method: Method,
        /// The request path, relative to the base URL.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The envelope's errors (empty when the body was not an envelope).
        errors: Vec<ApiMessage>,
        /// How many times the request was retried before this answer.
        retries: u32,
        /// What to do about it, for codes with a known cause.
        #[help]
        hint: Option<String>,
    },
    /// The request never got an answer (connection refused or reset, timeout).
    #[error("{method} {path} failed after {retries} retries: {source}")]
    Transport {
        /// The request method.
        method: Method,
        /// The request path, relative to the base URL.
        path: String,
        /// How many times the request was retried.
        retries: u32,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The API's host could not be reached: its name does not resolve, or it refuses or drops
    /// connections.
    #[error("could not reach the Cloudflare API at {host} ({retries} retries): {reason}")]
    #[diagnostic(help(
        "check the network, DNS and any proxy (HTTPS_PROXY); a CLOUDFLARE_API_BASE_URL that is set must name the API, e.g. https://api.cloudflare.com/client/v4"
    ))]
    Unreachable {
        /// The host of the base URL.
        host: String,
        /// How many times the connection was tried again.
        retries: u32,
        /// Why, as the network stack said it.
        reason: String,
    },
    /// No complete answer (connection, headers and body) came in time.
    #[error("{method} {path} got no complete answer within {limit} ({retries} retries)")]
    #[diagnostic(help(
        "the API, or a proxy in between, is too slow; try again, or allow more time with LMSINFRA_API_TIMEOUT (seconds one call may take, retries included; default 60)"
    ))]
    Timeout {
        /// The request method.
        method: Method,
        /// The request path, relative to the base URL.
        path: String,
        /// How many times the request was retried.
        retries: u32,
        /// The time that ran out, e.g. `30 s`.
        limit: String,
    },
    /// An answer was larger than any Cloudflare sends; it was cut off while it was read.
    #[error("{method} {path} sent an answer larger than {limit_mib} MiB, the most lmsinfra reads")]
    #[diagnostic(help(
        "check that CLOUDFLARE_API_BASE_URL points at the Cloudflare API, or at a proxy that passes its answers on unchanged"
    ))]
    TooLarge {
        /// The request method.
        method: Method,
        /// The request path, relative to the base URL.
        path: String,
        /// The limit, in MiB.
        limit_mib: usize,
    },
    /// A list's pages do not add up: too many of them, or the same page served again.
    #[error("{method} {path}: {detail}")]
    #[diagnostic(help(
        "check that CLOUDFLARE_API_BASE_URL points at the Cloudflare API, or at a proxy that passes its answers on unchanged"
    ))]
    Paging {
        /// The request method.
        method: Method,
        /// The list's path, relative to the base URL, without its page.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// A file a request sends (a backup uploaded to R2) could not be read.
    #[error("{method} {path}: could not read the file to send")]
    FileRead {
        /// The request method.
        method: Method,
        /// The request path, relative to the base URL.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An export of a D1 database ended without a dump.
    #[error("the export of D1 database {database} failed: {reason}")]
    #[diagnostic(help(
        "an export must be polled without pause and blocks the database while it runs; run the backup again"
    ))]
    ExportFailed {
        /// The database's id.
        database: String,
        /// What the API said.
        reason: String,
    },
    /// The download of a signed URL (an export's dump) failed.
    #[error("could not download the export of D1 database {database}: {reason}")]
    Download {
        /// The database's id.
        database: String,
        /// Why (never the URL, whose query is a credential).
        reason: String,
    },
    /// `LMSINFRA_API_TIMEOUT` is not a number of seconds.
    #[error("LMSINFRA_API_TIMEOUT is `{value}`, not a whole number of seconds from 1 to 3600")]
    TimeoutInvalid {
        /// The value as given.
        value: String,
    },
    /// A D1 import ran a statement that failed: D1 rolled the whole file back.
    #[error("the import into D1 database {database} failed and was rolled back: {message}")]
    ImportRolledBack {
        /// The database's id.
        database: String,
        /// D1's error, scrubbed.
        message: String,
    },
    /// A D1 import could not be carried out (the upload failed or was damaged, an answer
    /// lacked what the protocol needs); nothing was ingested.
    #[error("the import into D1 database {database} failed: {detail}")]
    Import {
        /// The database's id.
        database: String,
        /// What went wrong.
        detail: String,
    },
    /// A D1 import may or may not have run: read the database to learn what happened.
    #[error("the import into D1 database {database} has an unknown outcome: {detail}")]
    #[diagnostic(help("read the database to learn whether the import ran before trying again"))]
    ImportUnknown {
        /// The database's id.
        database: String,
        /// Why the outcome is unknown.
        detail: String,
    },
    /// `LMSINFRA_API_RESERVE` is not a number of requests.
    #[error("LMSINFRA_API_RESERVE is `{value}`, not a whole number of requests from 0 to 1200")]
    ReserveInvalid {
        /// The value as given.
        value: String,
    },
    /// The answer was not the shape the API documents.
    #[error("{method} {path} answered something lmsinfra cannot read: {detail}")]
    Decode {
        /// The request method.
        method: Method,
        /// The request path, relative to the base URL.
        path: String,
        /// What did not match (a field path and the mismatch).
        detail: String,
    },
}

/// The errors shown of an answer that lists more.
const ERRORS_SHOWN: usize = 5;

fn describe(errors: &[ApiMessage]) -> String {
    if errors.is_empty() {
        return "no error details".to_owned();
    }
    let mut text = errors
        .iter()
        .take(ERRORS_SHOWN)
        .map(|e| format!("{} ({})", e.message, e.code))
        .collect::<Vec<_>>()
        .join("; ");
    if errors.len() > ERRORS_SHOWN {
        text.push_str(&format!("; and {} more", errors.len() - ERRORS_SHOWN));
    }
    text
}

impl Error {
    /// The HTTP status, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the API says the resource does not exist (HTTP 404, or Worker code 10007).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.has_code(WORKER_NOT_FOUND)
    }

    pub(crate) fn has_code(&self, code: u32) -> bool {
        matches!(self, Self::Api { errors, .. } if errors.iter().any(|e| e.code == code))
    }
}

/// "This Worker does not exist on your account."
pub(crate) const WORKER_NOT_FOUND: u32 = 10007;

/// The hint shown with an API error, chosen by error code and, for permission errors, by the
/// API family the path belongs to.
pub(crate) fn hint(
    method: &Method,
    path: &str,
    status: u16,
    errors: &[ApiMessage],
) -> Option<String> {
    let codes = || errors.iter().map(|e| e.code);
    if codes().any(|c| c == 10000 || c == 9109 || c == 7403) || (errors.is_empty() && status == 403)
    {
        let permission = Permission::for_request(method, path);
        let account = path
            .trim_start_matches('/')
            .strip_prefix("accounts/")
            .and_then(|rest| rest.split('/').next());
        return Some(match account {
            Some(account) => format!(
                "wrong account id, or the token lacks `{permission}`: check that `{account}` (CLOUDFLARE_ACCOUNT_ID, else the manifest's `account_id`) is the account id the dashboard shows, then that the token has `{permission}` for that account (dash.cloudflare.com → My Profile → API Tokens)"
            ),
            None => format!(
                "the token lacks `{permission}` for this zone; give it that permission (dash.cloudflare.com → My Profile → API Tokens)"
            ),
        });
    }
    if codes().any(|c| c == WORKER_NOT_FOUND) {
        return Some(
            "the Worker does not exist on this account; deploy its code once (wrangler deploy), lmsinfra manages settings, not code"
                .to_owned(),
        );
    }
    if codes().any(|c| c == 7003) {
        return Some(
            "no such API route: check that CLOUDFLARE_API_BASE_URL ends in /client/v4 and that the account id is the 32-character id from the dashboard"
                .to_owned(),
        );
    }
    if status == 429 || codes().any(|c| c == 971 || c == 10429) {
        return Some(
            "rate limited: Cloudflare allows 1,200 requests per 5 minutes per user, shared with the dashboard and other tools; wait a few minutes or lower --concurrency"
                .to_owned(),
        );
    }
    None
}

/// The token permission a request needs, named as the dashboard names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Permission {
    WorkersScriptsRead,
    WorkersScriptsEdit,
    D1Read,
    D1Edit,
    ZoneRead,
    ZoneTransformRulesEdit,
    AccountSettingsRead,
}

impl Permission {
    fn for_request(method: &Method, path: &str) -> Self {
        let read = *method == Method::GET;
        if path.contains("/rulesets") {
            Self::ZoneTransformRulesEdit
        } else if path.starts_with("/zones") {
            Self::ZoneRead
        } else if path.contains("/d1/") || path.ends_with("/d1") {
            if read { Self::D1Read } else { Self::D1Edit }
        } else if path.contains("/workers/") {
            if read {
                Self::WorkersScriptsRead
            } else {
                Self::WorkersScriptsEdit
            }
        } else {
            Self::AccountSettingsRead
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WorkersScriptsRead => "Workers Scripts Read",
            Self::WorkersScriptsEdit => "Workers Scripts Edit",
            Self::D1Read => "D1 Read",
            Self::D1Edit => "D1 Edit",
            Self::ZoneRead => "Zone Read",
            Self::ZoneTransformRulesEdit => "Zone Transform Rules Edit",
            Self::AccountSettingsRead => "Account Settings Read",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(code: u32) -> Vec<ApiMessage> {
        vec![ApiMessage {
            code,
            message: "Authentication error".to_owned(),
        }]
    }

    #[test]
    fn permission_hint_names_the_permission_of_the_api_family() {
        let cases = [
            (
                Method::GET,
                "/accounts/a/workers/scripts/x/settings",
                "Workers Scripts Read",
            ),
            (
                Method::PATCH,
                "/accounts/a/workers/scripts/x/settings",
                "Workers Scripts Edit",
            ),
            (Method::GET, "/accounts/a/d1/database", "D1 Read"),
            (Method::POST, "/accounts/a/d1/database", "D1 Edit"),
            (
                Method::PUT,
                "/zones/z/rulesets/phases/p/entrypoint",
                "Zone Transform Rules Edit",
            ),
        ];
        for (method, path, permission) in cases {
            for code in [10000, 9109] {
                let hint = hint(&method, path, 403, &message(code)).unwrap();
                assert!(hint.contains(permission), "{method} {path}: {hint}");
                let names_account = hint.starts_with("wrong account id, or the token lacks")
                    && hint.contains("`a`");
                assert_eq!(names_account, path.starts_with("/accounts/"), "{hint}");
            }
        }
    }

    #[test]
    fn worker_missing_and_bad_route_and_rate_limit_have_hints() {
        let path = "/accounts/a/workers/scripts/x/settings";
        assert!(
            hint(&Method::GET, path, 404, &message(10007))
                .unwrap()
                .contains("deploy")
        );
        assert!(
            hint(&Method::GET, path, 400, &message(7003))
                .unwrap()
                .contains("/client/v4")
        );
        assert!(
            hint(&Method::GET, path, 429, &[])
                .unwrap()
                .contains("1,200")
        );
        assert_eq!(hint(&Method::GET, path, 400, &message(10021)), None);
    }

    #[test]
    fn api_error_message_carries_method_path_and_code() {
        let err = Error::Api {
            method: Method::GET,
            path: "/accounts/a/d1/database".to_owned(),
            status: 403,
            errors: message(10000),
            retries: 0,
            hint: None,
        };
        let text = err.to_string();
        assert!(text.contains("GET /accounts/a/d1/database"), "{text}");
        assert!(text.contains("10000"), "{text}");
    }
}
