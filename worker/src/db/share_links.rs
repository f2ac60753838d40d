//! `share_links`: links that grant a session role, by the hash of their token.

use agent_ops_protocol::access::SessionRole;
use serde::Deserialize;
use worker::Result;

use super::{num, text, Db};

pub struct NewLink<'a> {
    pub id: &'a str,
    pub session_id: &'a str,
    pub token_hash: &'a str,
    pub role: SessionRole,
    pub expires_at: u64,
    pub max_uses: u32,
    pub created_by: &'a str,
    pub created_at: u64,
}

pub async fn insert(db: &Db, link: &NewLink<'_>) -> Result<()> {
    db.write(
        "INSERT INTO share_links (id, session_id, token_hash, role, expires_at, max_uses, created_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            text(link.id),
            text(link.session_id),
            text(link.token_hash),
            text(link.role.as_str()),
            num(link.expires_at),
            num(link.max_uses.into()),
            text(link.created_by),
            num(link.created_at),
        ],
    )
    .await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct Redeemed {
    pub session_id: String,
    pub role: SessionRole,
}

/// Counts one use of the link if it is within its limit and expiry (atomically, so a limit holds
/// under concurrent redemptions), and returns what it grants.
pub async fn use_once(db: &Db, token_hash: &str, now: u64) -> Result<Option<Redeemed>> {
    db.first(
        "UPDATE share_links SET uses = uses + 1 \
         WHERE token_hash = ?1 AND uses < max_uses AND expires_at > ?2 RETURNING session_id, role",
        &[text(token_hash), num(now)],
    )
    .await
}

/// Whether a live link `id` of the session was revoked now.
pub async fn revoke(db: &Db, session_id: &str, id: &str, now: u64) -> Result<bool> {
    db.write(
        "UPDATE share_links SET expires_at = 0 WHERE id = ?1 AND session_id = ?2 AND expires_at > ?3",
        &[text(id), text(session_id), num(now)],
    )
    .await
}
