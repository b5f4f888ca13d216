//! Accounts and the token itself: which accounts the token can see, and whether it is active.
//! Used to explain an authentication failure, not by `gather`.

use serde::{Deserialize, Serialize};

use super::{Call, Client, Error};

/// An account the token can see (other fields tolerated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account id.
    pub id: String,
    /// The account's name.
    pub name: String,
}

/// What Cloudflare says about the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStatus {
    /// The token's id.
    pub id: String,
    /// `active`, `disabled` or `expired`.
    pub status: String,
    /// When it expires, if it does.
    #[serde(default)]
    pub expires_on: Option<String>,
}

impl Client {
    /// Every account the token can see, following every page.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, Error> {
        self.call_pages(self.url(&["accounts"]), 50).await
    }

    /// Check the token against the client's account (account-owned tokens are verified there;
    /// `/user/tokens/verify` rejects them with code 1000).
    pub async fn verify_token(&self) -> Result<TokenStatus, Error> {
        self.call(Call::get(self.account_url(&["tokens", "verify"])))
            .await
    }
}
