//! Signing in and out, and who the caller is.

use agent_ops_protocol::api::{AuditAction, Me, SignInProviders, SignedIn};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ErrorCode;
use worker::{Env, Request, Response};

use crate::api::audit;
use crate::db::{login_sessions, users, Db};
use crate::edge::auth::{self, Principal, COOKIE, LOGIN_TTL_MS};
use crate::edge::config::is_development;
use crate::edge::http::{answer, body, now_ms, random_id, refuse, Handled};
use crate::edge::origins::app_cookie;

fn valid_login(login: &str) -> bool {
    (1..=39).contains(&login.len()) && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Which sign-in methods this deployment offers, so the sign-in page shows only those.
pub fn providers(env: &Env) -> Handled {
    let github = env
        .var("GITHUB_CLIENT_ID")
        .map(|v| !v.to_string().is_empty())
        .unwrap_or(false);
    answer::<endpoint::AuthProviders>(&SignInProviders {
        github,
        development: is_development(env),
    })
}

/// A response that also sets (or, with an empty token, clears) the sign-in cookie.
pub fn with_login_cookie(env: &Env, resp: Response, token: &str) -> Handled {
    let max_age = if token.is_empty() {
        0
    } else {
        LOGIN_TTL_MS / 1000
    };
    let headers = resp.headers().clone();
    headers.set(
        "set-cookie",
        &app_cookie(env, COOKIE, token, "/", "Strict", max_age),
    )?;
    Ok(resp.with_headers(headers))
}

pub async fn dev_login(mut req: Request, env: &Env) -> Handled {
    if !is_development(env) {
        return refuse(ErrorCode::NotFound, "development sign-in is disabled");
    }
    let login = body::<endpoint::DevLogin>(&mut req, 1024).await?.login;
    if !valid_login(&login) || login == "admin" {
        return refuse(
            ErrorCode::InvalidBody,
            "login must be 1-39 letters, digits or dashes (and not `admin`)",
        );
    }
    let db = Db::of(env)?;
    let Some(user) = users::upsert_by_login(&db, &random_id(), &login, now_ms()).await? else {
        return refuse(
            ErrorCode::Conflict,
            format!("{login} could not be signed in; retry"),
        );
    };
    let (token, expires_at) = auth::start_login(&db, &user.id).await?;
    audit::record(&db, &user.id, AuditAction::SignIn, &user.id, "development").await?;
    let resp = answer::<endpoint::DevLogin>(&SignedIn {
        token: token.clone(),
        expires_at,
        user,
    })?;
    with_login_cookie(env, resp, &token)
}

pub async fn logout(env: &Env, user: &Principal) -> Handled {
    let Some(hash) = &user.login_session else {
        return refuse(
            ErrorCode::InvalidBody,
            "only a login session can be logged out; revoke API keys instead",
        );
    };
    let db = Db::of(env)?;
    login_sessions::revoke(&db, hash, now_ms()).await?;
    audit::record(&db, &user.user_id, AuditAction::SignOut, &user.user_id, "").await?;
    crate::api::sessions::close_sockets_of_credential(env, &db, user, &user.credential).await?;
    with_login_cookie(env, Response::empty()?.with_status(204), "")
}

pub fn me(user: &Principal) -> Handled {
    answer::<endpoint::Me>(&Me {
        id: user.user_id.clone(),
        login: user.login.clone(),
        role: user.caller.role,
        scopes: user.caller.scopes.clone(),
    })
}
