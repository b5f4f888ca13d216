//! Who is calling: the bearer token, and what kind of token it is.
//!
//! Any non-empty token is accepted unless the sandbox was started with one to require. Sandbox
//! tokens are *account* tokens, scoped to the one account, because that is what CI uses and what
//! `wrangler whoami` handles without a user: `/user/tokens/verify` answers 1000 ("Invalid API
//! Token"), which wrangler reads as "account token", `/user` answers 9109 and `/memberships`
//! 10000, both of which wrangler tolerates, and `/accounts/{id}/tokens/verify` succeeds. A token
//! that starts with `user_` is a *user* token instead: the user endpoints answer for the seeded
//! user, who is a member of the account.
//!
//! Refusals answer as Cloudflare does: no `Authorization` header is HTTP 400 with 9106, a header
//! that is not `Bearer <token>` is 400 with 6003 ("Invalid request headers"), and a token that
//! may not act on the account is 403 with 10000, or with 7403 on D1, which has its own code.

use axum::http::{HeaderMap, StatusCode};

use super::envelope::ApiError;

/// The two kinds of API token Cloudflare issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Account,
    User,
}

/// The prefix that makes a sandbox token a user token.
pub(crate) const USER_TOKEN_PREFIX: &str = "user_";

impl TokenKind {
    pub(crate) fn of(token: &str) -> TokenKind {
        if token.starts_with(USER_TOKEN_PREFIX) {
            TokenKind::User
        } else {
            TokenKind::Account
        }
    }
}

/// Check `Authorization: Bearer …` for a call to `template` and return the token.
pub(crate) fn authenticate(
    headers: &HeaderMap,
    required: Option<&str>,
    template: &str,
) -> Result<String, ApiError> {
    let Some(value) = headers.get("authorization") else {
        return Err(ApiError::bad_request(
            9106,
            "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                6003,
                "Invalid request headers: the Authorization header must be `Bearer <token>`",
            )
        })?;
    if required.is_some_and(|r| r != token) {
        return Err(forbidden(template));
    }
    Ok(token.to_owned())
}

/// The account in the path of a call to `template` must be the sandbox's account.
pub(crate) fn check_account(
    template: &str,
    path_account: &str,
    account: &str,
) -> Result<(), ApiError> {
    if path_account == account {
        Ok(())
    } else {
        Err(forbidden(template))
    }
}

/// 403: 7403 on D1, 10000 elsewhere.
fn forbidden(template: &str) -> ApiError {
    if template.starts_with("/accounts/{account_id}/d1/") {
        ApiError::new(
            StatusCode::FORBIDDEN,
            7403,
            "The given account is not valid or is not authorized to access this service",
        )
    } else {
        ApiError::new(StatusCode::FORBIDDEN, 10000, "Authentication error")
    }
}
