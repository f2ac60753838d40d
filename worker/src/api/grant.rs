//! One-time tokens that grant a role (share links, invites): minted with an expiry, shown once,
//! stored only as a hash.

use agent_ops_protocol::api::MAX_GRANT_TTL_SECS;
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::{ApiError, ErrorCode};

use crate::edge::http::{now_ms, random_hex, random_id};

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
    if !(1..=MAX_GRANT_TTL_SECS).contains(&ttl_secs) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("expires_in_secs must be 1..={MAX_GRANT_TTL_SECS}"),
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
