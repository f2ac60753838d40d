//! Organisation invites: an administrator mints one with a role and an expiry; a signed-in user
//! accepts it once to take that role (an administrator is never demoted by a member invite).

use agent_ops_protocol::api::{AuditAction, InviteAccepted, InviteCreated};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::ErrorCode;
use worker::{Env, Request};

use crate::api::{audit, grant};
use crate::db::{invites, users, Db};
use crate::edge::auth::Principal;
use crate::edge::http::{answer, body, now_ms, refuse, Handled};

pub async fn create(mut req: Request, env: &Env, user: &Principal) -> Handled {
    let new = body::<endpoint::CreateInvite>(&mut req, 1024).await?;
    let minted = grant::mint("ainv", new.expires_in_secs)?;
    let db = Db::of(env)?;
    invites::insert(
        &db,
        &invites::NewInvite {
            id: &minted.id,
            token_hash: &minted.token_hash,
            role: new.role,
            expires_at: minted.expires_at,
            created_by: &user.user_id,
            created_at: minted.created_at,
        },
    )
    .await?;
    let role = new.role.as_str();
    audit::record(
        &db,
        &user.user_id,
        AuditAction::InviteCreated,
        &minted.id,
        role,
    )
    .await?;
    answer::<endpoint::CreateInvite>(&InviteCreated {
        id: minted.id,
        token: minted.token,
        role: new.role,
        expires_at: minted.expires_at,
    })
}

pub async fn accept(mut req: Request, env: &Env, user: &Principal) -> Handled {
    let token = body::<endpoint::AcceptInvite>(&mut req, 1024).await?.token;
    let db = Db::of(env)?;
    let Some(role) = invites::claim(&db, &hash_token(&token), &user.user_id, now_ms()).await?
    else {
        return refuse(
            ErrorCode::NotFound,
            "this invite does not exist, has expired or has been used",
        );
    };
    users::set_role_unless_admin(&db, &user.user_id, role).await?;
    let detail = format!("org={} (invite)", role.as_str());
    audit::record(
        &db,
        &user.user_id,
        AuditAction::RoleChanged,
        &user.user_id,
        &detail,
    )
    .await?;
    answer::<endpoint::AcceptInvite>(&InviteAccepted { role })
}
