//! Share links: an owner mints a link carrying a session role, an expiry and a use limit; a
//! signed-in user redeems it to become a member. The token is shown once and stored as a hash;
//! each use is counted atomically, so a limit holds under concurrent redemptions.

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::api::{AuditAction, Joined, ShareLinkCreated};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::ErrorCode;
use worker::{Env, Request};

use crate::api::{audit, grant};
use crate::db::{members, share_links, Db};
use crate::edge::auth::Principal;
use crate::edge::http::{answer, body, no_content, now_ms, refuse, Handled};

pub async fn create(mut req: Request, env: &Env, user: &Principal, session_id: &str) -> Handled {
    let new = body::<endpoint::CreateShareLink>(&mut req, 1024).await?;
    if new.role == SessionRole::Owner {
        return refuse(
            ErrorCode::InvalidBody,
            "a share link grants viewer or collaborator, never owner",
        );
    }
    if !(1..=1000).contains(&new.max_uses) {
        return refuse(ErrorCode::InvalidBody, "max_uses must be 1..=1000");
    }
    let minted = grant::mint("asl", new.expires_in_secs)?;
    let db = Db::of(env)?;
    share_links::insert(
        &db,
        &share_links::NewLink {
            id: &minted.id,
            session_id,
            token_hash: &minted.token_hash,
            role: new.role,
            expires_at: minted.expires_at,
            max_uses: new.max_uses,
            created_by: &user.user_id,
            created_at: minted.created_at,
        },
    )
    .await?;
    let role = new.role.as_str();
    audit::record(
        &db,
        &user.user_id,
        AuditAction::ShareLinkCreated,
        session_id,
        role,
    )
    .await?;
    answer::<endpoint::CreateShareLink>(&ShareLinkCreated {
        id: minted.id,
        token: minted.token,
        session_id: session_id.to_owned(),
        role: new.role,
        expires_at: minted.expires_at,
        max_uses: new.max_uses,
    })
}

pub async fn redeem(mut req: Request, env: &Env, user: &Principal) -> Handled {
    let token = body::<endpoint::RedeemShareLink>(&mut req, 1024)
        .await?
        .token;
    let db = Db::of(env)?;
    let now = now_ms();
    let Some(link) = share_links::use_once(&db, &hash_token(&token), now).await? else {
        return refuse(
            ErrorCode::NotFound,
            "this share link does not exist, has expired or has been used up",
        );
    };
    // Never lowers a role the user already has (an owner stays owner, a collaborator stays one).
    members::raise(&db, &link.session_id, &user.user_id, link.role, now).await?;
    let role = link.role.as_str();
    audit::record(
        &db,
        &user.user_id,
        AuditAction::ShareLinkUsed,
        &link.session_id,
        role,
    )
    .await?;
    answer::<endpoint::RedeemShareLink>(&Joined {
        session_id: link.session_id,
        role: link.role,
    })
}

/// `DELETE /api/sessions/:id/share-links/:link_id` (owner): the link redeems no more. Whoever
/// redeemed it already keeps their role until removed.
pub async fn revoke(env: &Env, user: &Principal, session_id: &str, link_id: &str) -> Handled {
    let db = Db::of(env)?;
    if !share_links::revoke(&db, session_id, link_id, now_ms()).await? {
        return refuse(
            ErrorCode::NotFound,
            format!("no live share link {link_id} on this session"),
        );
    }
    audit::record(
        &db,
        &user.user_id,
        AuditAction::ShareLinkRevoked,
        session_id,
        link_id,
    )
    .await?;
    no_content()
}
