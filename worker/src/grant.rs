//! One-time tokens that grant a role (share links, invites): minted with an expiry, shown once,
//! stored only as a hash.

use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use worker::Request;

use crate::http::{now_ms, random_hex, random_id, read_json};

pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

pub fn default_ttl_secs() -> u64 {
    7 * 24 * 3600
}

pub struct Minted {
    pub id: String,
    /// Shown to the caller once.
    pub token: String,
    /// All that is stored.
    pub token_hash: String,
    pub created_at: u64,
    pub expires_at: u64,
}

pub fn mint(prefix: &str, ttl_secs: u64) -> Result<Minted, ApiError> {
    if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("expires_in_secs must be 1..={MAX_TTL_SECS}"),
        ));
    }
    let token = format!("{prefix}_{}", random_hex(32));
    let created_at = now_ms();
    Ok(Minted {
        id: random_id(),
        token_hash: hash_token(&token),
        token,
        created_at,
        expires_at: created_at + ttl_secs * 1000,
    })
}

/// A role's wire name (`viewer`, `admin`, ...), as stored.
pub fn role_name<R: Serialize>(role: R) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The hash of the token presented in a `{"token": ...}` body, the form in which it is looked up.
pub async fn presented(req: &mut Request) -> Result<String, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        token: String,
    }
    let body: Body = read_json(req, 1024).await?;
    Ok(hash_token(&body.token))
}
