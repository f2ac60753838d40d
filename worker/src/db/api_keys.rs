//! `api_keys`: scoped keys, by the hash of their secret.

use agent_ops_protocol::access::{OrgRole, Scope};
use agent_ops_protocol::api::KeyInfo;
use serde::Deserialize;
use worker::Result;

use super::{json_text, num, opt_num, text, Db};

/// A key as listed (never its secret).
#[derive(Deserialize)]
struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    #[serde(deserialize_with = "json_text")]
    scopes: Vec<Scope>,
    expires_at: Option<u64>,
    revoked_at: Option<u64>,
    last_used_at: Option<u64>,
    created_at: u64,
}

impl From<KeyRow> for KeyInfo {
    fn from(k: KeyRow) -> Self {
        KeyInfo {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
        }
    }
}

pub async fn insert(db: &Db, user_id: &str, key: &KeyInfo, token_hash: &str) -> Result<()> {
    db.write(
        "INSERT INTO api_keys (id, user_id, name, prefix, token_hash, scopes, expires_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            text(&key.id),
            text(user_id),
            text(&key.name),
            text(&key.prefix),
            text(token_hash),
            text(&serde_json::to_string(&key.scopes)?),
            opt_num(key.expires_at),
            num(key.created_at),
        ],
    )
    .await?;
    Ok(())
}

pub async fn of_user(db: &Db, user_id: &str) -> Result<Vec<KeyInfo>> {
    let rows: Vec<KeyRow> = db
        .all(
            "SELECT id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at \
             FROM api_keys WHERE user_id = ?1 ORDER BY created_at",
            &[text(user_id)],
        )
        .await?;
    Ok(rows.into_iter().map(KeyInfo::from).collect())
}

/// Whether the user's active key `id` was revoked now.
pub async fn revoke(db: &Db, user_id: &str, id: &str, now: u64) -> Result<bool> {
    db.write(
        "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND user_id = ?3 AND revoked_at IS NULL",
        &[num(now), text(id), text(user_id)],
    )
    .await
}

/// A live key and its owner, as authentication needs them.
#[derive(Deserialize)]
pub struct LiveKey {
    pub key_id: String,
    pub user_id: String,
    pub login: String,
    pub role: OrgRole,
    #[serde(deserialize_with = "json_text")]
    pub scopes: Vec<Scope>,
    pub expires_at: Option<u64>,
}

/// The live (unexpired, unrevoked) key with this hash, marked as used now.
pub async fn use_live(db: &Db, token_hash: &str, now: u64) -> Result<Option<LiveKey>> {
    let key: Option<LiveKey> = db
        .first(
            "SELECT k.id AS key_id, u.id AS user_id, u.login, u.role, k.scopes, k.expires_at \
             FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.token_hash = ?1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?2)",
            &[text(token_hash), num(now)],
        )
        .await?;
    if let Some(key) = &key {
        db.write(
            "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2",
            &[num(now), text(&key.key_id)],
        )
        .await?;
    }
    Ok(key)
}
