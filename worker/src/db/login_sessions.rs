//! `auth_sessions`: login sessions, by the hash of their token.

use agent_ops_protocol::api::User;
use worker::Result;

use super::{num, text, Db};

pub async fn insert(
    db: &Db,
    token_hash: &str,
    user_id: &str,
    expires_at: u64,
    now: u64,
) -> Result<()> {
    db.write(
        "INSERT INTO auth_sessions (token_hash, user_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
        &[text(token_hash), text(user_id), num(expires_at), num(now)],
    )
    .await?;
    Ok(())
}

/// The user of a live (unexpired, unrevoked) login session.
pub async fn live_user(db: &Db, token_hash: &str, now: u64) -> Result<Option<User>> {
    db.first(
        "SELECT u.id, u.login, u.role FROM auth_sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2",
        &[text(token_hash), num(now)],
    )
    .await
}

pub async fn revoke(db: &Db, token_hash: &str, now: u64) -> Result<()> {
    db.write(
        "UPDATE auth_sessions SET revoked_at = ?1 WHERE token_hash = ?2",
        &[num(now), text(token_hash)],
    )
    .await?;
    Ok(())
}
