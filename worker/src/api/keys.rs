//! API keys: scoped, optionally expiring, revocable; shown once and stored as a hash.

use agent_ops_protocol::access::key_expiry;
use agent_ops_protocol::api::{AuditAction, KeyCreated, KeyInfo, KeyList};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::ErrorCode;
use worker::{Env, Request};

use crate::api::audit;
use crate::db::{api_keys, Db};
use crate::edge::auth::{key_credential, Principal};
use crate::edge::http::{answer, body, no_content, now_ms, random_hex, random_id, refuse, Handled};

pub async fn create(mut req: Request, env: &Env, user: &Principal) -> Handled {
    let new = body::<endpoint::CreateKey>(&mut req, 4096).await?;
    if new.name.trim().is_empty() || new.name.len() > 100 || new.scopes.is_empty() {
        return refuse(
            ErrorCode::InvalidBody,
            "a key needs a name (1-100 characters) and at least one scope",
        );
    }
    if let Some(s) = new
        .scopes
        .iter()
        .find(|s| !user.caller.scopes.contains(s) || !user.caller.role.allows(**s))
    {
        return refuse(
            ErrorCode::Forbidden,
            format!(
                "a key cannot carry more than its owner has: `{}`",
                s.as_str()
            ),
        );
    }
    let now = now_ms();
    if new.expires_at.is_some_and(|e| e <= now) {
        return refuse(ErrorCode::InvalidBody, "expires_at must be in the future");
    }
    let expires_at = match key_expiry(new.expires_at, user.key_expires_at) {
        Ok(e) => e,
        Err(why) => return refuse(ErrorCode::Forbidden, why),
    };
    let prefix = format!("aok_{}", random_hex(4));
    let key = format!("{prefix}_{}", random_hex(28));
    let info = KeyInfo {
        id: random_id(),
        name: new.name,
        prefix,
        scopes: new.scopes,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        created_at: now,
    };
    let db = Db::of(env)?;
    api_keys::insert(&db, &user.user_id, &info, &hash_token(&key)).await?;
    let scopes = serde_json::to_string(&info.scopes)?;
    audit::record(
        &db,
        &user.user_id,
        AuditAction::ApiKeyCreated,
        &info.id,
        &scopes,
    )
    .await?;
    answer::<endpoint::CreateKey>(&KeyCreated { info, key })
}

pub async fn list(env: &Env, user: &Principal) -> Handled {
    let keys = api_keys::of_user(&Db::of(env)?, &user.user_id).await?;
    answer::<endpoint::ListKeys>(&KeyList { keys })
}

/// The key stops working at once, and what was opened with it closes.
pub async fn revoke(env: &Env, user: &Principal, id: &str) -> Handled {
    let db = Db::of(env)?;
    if !api_keys::revoke(&db, &user.user_id, id, now_ms()).await? {
        return refuse(ErrorCode::NotFound, format!("no active key {id}"));
    }
    audit::record(&db, &user.user_id, AuditAction::ApiKeyRevoked, id, "").await?;
    crate::api::sessions::close_sockets_of_credential(env, &db, user, &key_credential(id)).await?;
    no_content()
}
