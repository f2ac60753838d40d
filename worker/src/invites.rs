//! Organisation invites: an administrator mints one with a role and an expiry; a signed-in user
//! accepts it once to take that role (an administrator is never demoted by a member invite).

use agent_ops_protocol::access::OrgRole;
use agent_ops_protocol::ErrorCode;
use serde::Deserialize;
use worker::{Env, Request, Response, Result};

use crate::accounts_api::audit;
use crate::auth::Principal;
use crate::grant;
use crate::http::{error, fail, json, now_ms, read_json};

pub async fn create(mut req: Request, env: &Env, user: &Principal) -> Result<Response> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        role: OrgRole,
        #[serde(default = "grant::default_ttl_secs")]
        expires_in_secs: u64,
    }
    let body: Body = match read_json(&mut req, 1024).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let minted = match grant::mint("ainv", body.expires_in_secs) {
        Ok(m) => m,
        Err(e) => return error(&e),
    };
    let role = grant::role_name(body.role);
    env.d1("DB")?
        .prepare("INSERT INTO invites (id, token_hash, role, expires_at, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(&[
            minted.id.clone().into(),
            minted.token_hash.into(),
            role.clone().into(),
            (minted.expires_at as f64).into(),
            user.user_id.clone().into(),
            (minted.created_at as f64).into(),
        ])?
        .run()
        .await?;
    audit(env, &user.user_id, "invite_created", &minted.id, &role).await?;
    json(
        201,
        &serde_json::json!({"id": minted.id, "token": minted.token, "role": role, "expires_at": minted.expires_at}),
    )
}

pub async fn accept(mut req: Request, env: &Env, user: &Principal) -> Result<Response> {
    let hash = match grant::presented(&mut req).await {
        Ok(h) => h,
        Err(e) => return error(&e),
    };
    let db = env.d1("DB")?;
    let now = now_ms() as f64;
    let claimed = db
        .prepare("UPDATE invites SET used_by = ?1, used_at = ?2 WHERE token_hash = ?3 AND used_at IS NULL AND expires_at > ?2")
        .bind(&[user.user_id.clone().into(), now.into(), hash.clone().into()])?
        .run()
        .await?;
    if !crate::http::changed_rows(&claimed)? {
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
