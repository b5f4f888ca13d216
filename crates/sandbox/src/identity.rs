//! Token verification, the user, the accounts and memberships the token can see.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::auth::TokenKind;
use super::envelope::{ApiError, Reply};
use super::request::Call;
use super::state::{State, sha256_hex};

/// A stable id per token, without keeping or echoing the token itself.
fn token_id(token: &str) -> String {
    sha256_hex(token.as_bytes())[..32].to_owned()
}

fn verified(call: &Call) -> Reply {
    Reply::ok(json!({
        "id": token_id(&call.token),
        "status": "active",
    }))
}

/// `GET /user/tokens/verify`: only user tokens pass; an account token gets 1000.
pub(crate) fn user_token_verify(call: &Call) -> Result<Reply, ApiError> {
    match TokenKind::of(&call.token) {
        TokenKind::User => Ok(verified(call)),
        TokenKind::Account => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            1000,
            "Invalid API Token",
        )),
    }
}

/// `GET /accounts/{id}/tokens/verify`: only account tokens pass.
pub(crate) fn account_token_verify(call: &Call) -> Result<Reply, ApiError> {
    match TokenKind::of(&call.token) {
        TokenKind::Account => Ok(verified(call)),
        TokenKind::User => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            1000,
            "Invalid API Token",
        )),
    }
}

/// `GET /user`.
pub(crate) fn user(call: &Call, state: &State) -> Result<Reply, ApiError> {
    match TokenKind::of(&call.token) {
        TokenKind::User => Ok(Reply::ok(json!({
            "id": state.user.id,
            "email": state.user.email,
            "has_pro_zones": false,
            "has_business_zones": false,
            "has_enterprise_zones": false,
            "suspended": false,
            "two_factor_authentication_enabled": true,
        }))),
        TokenKind::Account => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            9109,
            "Unauthorized to access requested resource",
        )),
    }
}

fn account_json(state: &State) -> Value {
    json!({
        "id": state.account.id,
        "name": state.account.name,
        "type": "standard",
        "created_on": state.account.created_on,
        "settings": {"enforce_twofactor": false},
    })
}

/// `GET /accounts`, paged (default 20, at most 50 per page).
pub(crate) fn accounts(call: &Call, state: &State) -> Result<Reply, ApiError> {
    let page = call.page(20, 50)?;
    let all = vec![account_json(state)];
    Ok(Reply::page(page.slice(&all), &page, all.len()))
}

/// `GET /memberships`, paged; account tokens have no memberships to read.
pub(crate) fn memberships(call: &Call, state: &State) -> Result<Reply, ApiError> {
    if TokenKind::of(&call.token) == TokenKind::Account {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            10000,
            "Authentication error",
        ));
    }
    let page = call.page(20, 50)?;
    let all = vec![json!({
        "id": sha256_hex(format!("{}{}", state.user.id, state.account.id).as_bytes())[..32],
        "account": account_json(state),
        "status": "accepted",
        "roles": ["Administrator"],
        "permissions": {},
    })];
    Ok(Reply::page(page.slice(&all), &page, all.len()))
}
