//! Session membership: owners share a session with others as viewers or collaborators, and
//! take it back; either way the person's open sockets reconnect with what they have now.

use agent_ops_protocol::access::{Revocation, SessionRole};
use agent_ops_protocol::api::{AuditAction, Membership};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ErrorCode;
use worker::{Env, Request};

use crate::api::{audit, sessions};
use crate::db::{members, users, Db};
use crate::edge::auth::Principal;
use crate::edge::http::{answer, body, no_content, now_ms, refuse, Handled};

pub async fn add(mut req: Request, env: &Env, user: &Principal, session_id: &str) -> Handled {
    let new = body::<endpoint::AddMember>(&mut req, 1024).await?;
    if new.role == SessionRole::Owner {
        return refuse(
            ErrorCode::InvalidBody,
            "a session has one owner; add viewers or collaborators",
        );
    }
    let db = Db::of(env)?;
    let Some(target) = users::by_login(&db, &new.login).await? else {
        return refuse(ErrorCode::NotFound, format!("no user {}", new.login));
    };
    members::set(&db, session_id, &target.id, new.role, now_ms()).await?;
    let detail = format!("{}={}", target.login, new.role.as_str());
    audit::record(
        &db,
        &user.user_id,
        AuditAction::RoleChanged,
        session_id,
        &detail,
    )
    .await?;
    // A changed role takes effect at once: their sockets reconnect with the new one.
    let revoked = Revocation::Member {
        login: target.login.clone(),
    };
    sessions::close_sockets(env, session_id, &revoked).await?;
    answer::<endpoint::AddMember>(&Membership {
        session_id: session_id.to_owned(),
        user: target,
        role: new.role,
    })
}

/// `DELETE /api/sessions/:id/members/:login` (owner): the member's role goes, and with it their
/// open sockets on the session, at once.
pub async fn remove(env: &Env, user: &Principal, session_id: &str, login: &str) -> Handled {
    let db = Db::of(env)?;
    if !members::remove_by_login(&db, session_id, login).await? {
        return refuse(
            ErrorCode::NotFound,
            format!("{login} is not a member of this session"),
        );
    }
    audit::record(
        &db,
        &user.user_id,
        AuditAction::MemberRemoved,
        session_id,
        login,
    )
    .await?;
    let revoked = Revocation::Member {
        login: login.to_owned(),
    };
    sessions::close_sockets(env, session_id, &revoked).await?;
    no_content()
}
