//! Share links: an owner mints a link carrying a session role, an expiry and a use limit; a
//! signed-in user redeems it to become a member. The token is shown once and stored as a hash;
//! each use is counted atomically, so a limit holds under concurrent redemptions.

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::ErrorCode;
use serde::Deserialize;
use worker::{Env, Request, Response, Result};

use crate::accounts_api::audit;
use crate::auth::Principal;
use crate::grant;
use crate::http::{error, fail, json, now_ms, read_json};

pub async fn create(
    mut req: Request,
    env: &Env,
    user: &Principal,
    session_id: &str,
) -> Result<Response> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        role: SessionRole,
        #[serde(default = "grant::default_ttl_secs")]
        expires_in_secs: u64,
        #[serde(default = "default_uses")]
        max_uses: u32,
    }
    fn default_uses() -> u32 {
        1
    }
    let body: Body = match read_json(&mut req, 1024).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    if body.role == SessionRole::Owner {
        return fail(
            ErrorCode::InvalidBody,
            "a share link grants viewer or collaborator, never owner",
        );
    }
    if !(1..=1000).contains(&body.max_uses) {
        return fail(ErrorCode::InvalidBody, "max_uses must be 1..=1000");
    }
    let minted = match grant::mint("asl", body.expires_in_secs) {
        Ok(m) => m,
        Err(e) => return error(&e),
    };
    let role = grant::role_name(body.role);
    env.d1("DB")?
        .prepare(
            "INSERT INTO share_links (id, session_id, token_hash, role, expires_at, max_uses, created_by, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(&[
            minted.id.clone().into(),
            session_id.into(),
            minted.token_hash.into(),
            role.clone().into(),
            (minted.expires_at as f64).into(),
            body.max_uses.into(),
            user.user_id.clone().into(),
            (minted.created_at as f64).into(),
        ])?
        .run()
        .await?;
    audit(env, &user.user_id, "share_link_created", session_id, &role).await?;
    json(
        201,
        &serde_json::json!({"id": minted.id, "token": minted.token, "session_id": session_id, "role": role,
            "expires_at": minted.expires_at, "max_uses": body.max_uses}),
    )
}

pub async fn redeem(mut req: Request, env: &Env, user: &Principal) -> Result<Response> {
    let hash = match grant::presented(&mut req).await {
        Ok(h) => h,
        Err(e) => return error(&e),
    };
    let db = env.d1("DB")?;
    let now = now_ms() as f64;
    // Count the use first, atomically: only a use within the limit and the expiry succeeds.
    let used = db
        .prepare("UPDATE share_links SET uses = uses + 1 WHERE token_hash = ?1 AND uses < max_uses AND expires_at > ?2")
        .bind(&[hash.clone().into(), now.into()])?
        .run()
        .await?;
    if !crate::http::changed_rows(&used)? {
        return fail(
            ErrorCode::NotFound,
            "this share link does not exist, has expired or has been used up",
        );
    }
    #[derive(Deserialize)]
    struct Link {
        session_id: String,
        role: String,
    }
    let link: Option<Link> = db
        .prepare("SELECT session_id, role FROM share_links WHERE token_hash = ?1")
        .bind(&[hash.into()])?
        .first(None)
        .await?;
    let Some(link) = link else {
        return fail(ErrorCode::NotFound, "this share link does not exist");
    };
    // Never lowers a role the user already has (an owner stays owner, a collaborator stays one).
    db.prepare(
        "INSERT INTO session_members (session_id, user_id, role, added_at) \
         SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND owner_id = ?2) \
         ON CONFLICT (session_id, user_id) DO UPDATE SET role = CASE WHEN role = 'collaborator' THEN role ELSE excluded.role END",
    )
    .bind(&[link.session_id.clone().into(), user.user_id.clone().into(), link.role.clone().into(), now.into()])?
    .run()
    .await?;
    audit(
        env,
        &user.user_id,
        "share_link_used",
        &link.session_id,
        &link.role,
    )
    .await?;
    json(
        200,
        &serde_json::json!({"session_id": link.session_id, "role": link.role}),
    )
}

/// `DELETE /api/sessions/:id/share-links/:link_id` (owner): the link redeems no more. Whoever
/// redeemed it already keeps their role until removed.
pub async fn revoke(
    env: &Env,
    user: &Principal,
    session_id: &str,
    link_id: &str,
) -> Result<Response> {
    let revoked = env
        .d1("DB")?
        .prepare(
            "UPDATE share_links SET expires_at = 0 WHERE id = ?1 AND session_id = ?2 AND expires_at > ?3",
        )
        .bind(&[link_id.into(), session_id.into(), (now_ms() as f64).into()])?
        .run()
        .await?;
    if !crate::http::changed_rows(&revoked)? {
        return fail(
            ErrorCode::NotFound,
            format!("no live share link {link_id} on this session"),
        );
    }
    audit(
        env,
        &user.user_id,
        "share_link_revoked",
        session_id,
        link_id,
    )
    .await?;
    Ok(Response::empty()?.with_status(204))
}
