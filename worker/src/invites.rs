//! Organisation invites: an administrator mints one with a role and an expiry; a signed-in user
//! accepts it once to take that role (an administrator is never demoted by a member invite).

use agent_ops_protocol::access::OrgRole;
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::ErrorCode;
use serde::Deserialize;
use worker::{Env, Request, Response, Result};

use crate::accounts_api::audit;
use crate::auth::Principal;
use crate::http::{error, fail, json, now_ms, random_hex, random_id, read_json};

const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

pub async fn create(mut req: Request, env: &Env, user: &Principal) -> Result<Response> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        role: OrgRole,
        #[serde(default = "default_ttl")]
        expires_in_secs: u64,
    }
    fn default_ttl() -> u64 {
        7 * 24 * 3600
    }
    let body: Body = match read_json(&mut req, 1024).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    if !(1..=MAX_TTL_SECS).contains(&body.expires_in_secs) {
        return fail(
            ErrorCode::InvalidBody,
            format!("expires_in_secs must be 1..={MAX_TTL_SECS}"),
        );
    }
    let token = format!("ainv_{}", random_hex(32));
    let id = random_id();
    let now = now_ms();
    let expires_at = now + body.expires_in_secs * 1000;
    let role = serde_json::to_value(body.role)?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    env.d1("DB")?
        .prepare("INSERT INTO invites (id, token_hash, role, expires_at, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(&[
            id.clone().into(),
            hash_token(&token).into(),
            role.clone().into(),
            (expires_at as f64).into(),
            user.user_id.clone().into(),
            (now as f64).into(),
        ])?
        .run()
        .await?;
    audit(env, &user.user_id, "invite_created", &id, &role).await?;
    json(
        201,
        &serde_json::json!({"id": id, "token": token, "role": role, "expires_at": expires_at}),
    )
}

pub async fn accept(mut req: Request, env: &Env, user: &Principal) -> Result<Response> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        token: String,
    }
    let body: Body = match read_json(&mut req, 1024).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let db = env.d1("DB")?;
    let hash = hash_token(&body.token);
    let now = now_ms() as f64;
    let claimed = db
        .prepare("UPDATE invites SET used_by = ?1, used_at = ?2 WHERE token_hash = ?3 AND used_at IS NULL AND expires_at > ?2")
        .bind(&[user.user_id.clone().into(), now.into(), hash.clone().into()])?
        .run()
        .await?;
    if claimed.meta()?.and_then(|m| m.changes).unwrap_or(0) == 0 {
        return fail(
            ErrorCode::NotFound,
            "this invite does not exist, has expired or has been used",
        );
    }
    let role: Option<String> = db
        .prepare("SELECT role FROM invites WHERE token_hash = ?1")
        .bind(&[hash.into()])?
        .first(Some("role"))
        .await?;
    let role = role.unwrap_or_else(|| "member".into());
    db.prepare("UPDATE users SET role = ?1 WHERE id = ?2 AND role != 'admin'")
        .bind(&[role.clone().into(), user.user_id.clone().into()])?
        .run()
        .await?;
    audit(
        env,
        &user.user_id,
        "role_changed",
        &user.user_id,
        &format!("org={role} (invite)"),
    )
    .await?;
    json(200, &serde_json::json!({"role": role}))
}
