//! Users, login sessions, API keys and session membership; every security-relevant change is
//! written to the audit log.

use agent_ops_protocol::access::{Revocation, Scope, SessionRole};
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{Env, Request, Response, Result};

use crate::auth::{self, Principal, COOKIE, LOGIN_TTL_MS};
use crate::http::{error, fail, json, now_ms, random_hex, random_id, read_json};

pub async fn audit(env: &Env, actor: &str, action: &str, target: &str, detail: &str) -> Result<()> {
    env.d1("DB")?
        .prepare("INSERT INTO audit_log (at, actor_id, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)")
        .bind(&[(now_ms() as f64).into(), actor.into(), action.into(), target.into(), detail.into()])?
        .run()
        .await?;
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct UserRow {
    id: String,
    login: String,
    role: String,
}

fn valid_login(login: &str) -> bool {
    (1..=39).contains(&login.len()) && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Development sign-in: exists only when `ENVIRONMENT` is `development` (as under `make dev`).
fn development(env: &Env) -> bool {
    env.var("ENVIRONMENT")
        .map(|v| v.to_string())
        .ok()
        .as_deref()
        == Some("development")
}

/// Which sign-in methods this deployment offers, so the sign-in page shows only those.
pub fn providers(env: &Env) -> Result<Response> {
    let github = env
        .var("GITHUB_CLIENT_ID")
        .map(|v| !v.to_string().is_empty())
        .unwrap_or(false);
    json(
        200,
        &serde_json::json!({"github": github, "development": development(env)}),
    )
}

pub async fn dev_login(mut req: Request, env: &Env) -> Result<Response> {
    if !development(env) {
        return fail(ErrorCode::NotFound, "development sign-in is disabled");
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        login: String,
    }
    let body: Body = match read_json(&mut req, 1024).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    if !valid_login(&body.login) || body.login == "admin" {
        return fail(
            ErrorCode::InvalidBody,
            "login must be 1-39 letters, digits or dashes (and not `admin`)",
        );
    }
    let db = env.d1("DB")?;
    // One statement, so concurrent sign-ins neither collide nor both become the first person
    // (who administers the organisation).
    db.prepare(
        "INSERT INTO users (id, login, role, created_at) \
         SELECT ?1, ?2, CASE WHEN EXISTS (SELECT 1 FROM users WHERE id != 'admin') THEN 'member' ELSE 'admin' END, ?3 \
         ON CONFLICT (login) DO NOTHING",
    )
    .bind(&[random_id().into(), body.login.clone().into(), (now_ms() as f64).into()])?
    .run()
    .await?;
    let user: UserRow = db
        .prepare("SELECT id, login, role FROM users WHERE login = ?1")
        .bind(&[body.login.into()])?
        .first(None)
        .await?
        .ok_or_else(|| worker::Error::RustError("user vanished after upsert".into()))?;
    let (token, expires_at) = auth::start_login(env, &user.id).await?;
    audit(env, &user.id, "sign_in", &user.id, "development").await?;
    let cookie =
        crate::origins::app_cookie(env, COOKIE, &token, "/", "Strict", LOGIN_TTL_MS / 1000);
    let resp = json(
        200,
        &serde_json::json!({"token": token, "expires_at": expires_at, "user": user}),
    )?;
    let headers = resp.headers().clone();
    headers.set("set-cookie", &cookie)?;
    Ok(resp.with_headers(headers))
}

pub async fn logout(env: &Env, user: &Principal) -> Result<Response> {
    let Some(hash) = &user.login_session else {
        return fail(
            ErrorCode::InvalidBody,
            "only a login session can be logged out; revoke API keys instead",
        );
    };
    env.d1("DB")?
        .prepare("UPDATE auth_sessions SET revoked_at = ?1 WHERE token_hash = ?2")
        .bind(&[(now_ms() as f64).into(), hash.clone().into()])?
        .run()
        .await?;
    audit(env, &user.user_id, "sign_out", &user.user_id, "").await?;
    crate::sessions_api::close_sockets_of_credential(env, user, &user.credential).await?;
    let resp = Response::empty()?.with_status(204);
    let headers = resp.headers().clone();
    headers.set(
        "set-cookie",
        &crate::origins::app_cookie(env, COOKIE, "", "/", "Strict", 0),
    )?;
    Ok(resp.with_headers(headers))
}

pub fn me(user: &Principal) -> Result<Response> {
    json(
        200,
        &serde_json::json!({"id": user.user_id, "login": user.login, "role": user.caller.role, "scopes": user.caller.scopes}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<Scope>,
    #[serde(default)]
    expires_at: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    expires_at: Option<f64>,
    revoked_at: Option<f64>,
    last_used_at: Option<f64>,
    created_at: f64,
}

fn key_json(k: KeyRow) -> serde_json::Value {
    serde_json::json!({
        "id": k.id, "name": k.name, "prefix": k.prefix,
        "scopes": serde_json::from_str::<serde_json::Value>(&k.scopes).unwrap_or_default(),
        "expires_at": k.expires_at.map(|v| v as u64), "revoked_at": k.revoked_at.map(|v| v as u64),
        "last_used_at": k.last_used_at.map(|v| v as u64), "created_at": k.created_at as u64,
    })
}

pub async fn create_key(mut req: Request, env: &Env, user: &Principal) -> Result<Response> {
    let body: NewKey = match read_json(&mut req, 4096).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    if body.name.trim().is_empty() || body.name.len() > 100 || body.scopes.is_empty() {
        return fail(
            ErrorCode::InvalidBody,
            "a key needs a name (1-100 characters) and at least one scope",
        );
    }
    if let Some(s) = body
        .scopes
        .iter()
        .find(|s| !user.caller.scopes.contains(s) || !user.caller.role.allows(**s))
    {
        let s = serde_json::to_value(s)?;
        return fail(
            ErrorCode::Forbidden,
            format!("a key cannot carry more than its owner has: {s}"),
        );
    }
    let now = now_ms();
    if body.expires_at.is_some_and(|e| e <= now) {
        return fail(ErrorCode::InvalidBody, "expires_at must be in the future");
    }
    let expires_at =
        match agent_ops_protocol::access::key_expiry(body.expires_at, user.key_expires_at) {
            Ok(e) => e,
            Err(why) => return fail(ErrorCode::Forbidden, why),
        };
    let prefix = format!("aok_{}", random_hex(4));
    let key = format!("{prefix}_{}", random_hex(28));
    let row = KeyRow {
        id: random_id(),
        name: body.name,
        prefix,
        scopes: serde_json::to_string(&body.scopes)?,
        expires_at: expires_at.map(|e| e as f64),
        revoked_at: None,
        last_used_at: None,
        created_at: now as f64,
    };
    env.d1("DB")?
        .prepare(
            "INSERT INTO api_keys (id, user_id, name, prefix, token_hash, scopes, expires_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(&[
            row.id.clone().into(),
            user.user_id.clone().into(),
            row.name.clone().into(),
            row.prefix.clone().into(),
            hash_token(&key).into(),
            row.scopes.clone().into(),
            row.expires_at.map(JsValue::from).unwrap_or(JsValue::NULL),
            row.created_at.into(),
        ])?
        .run()
        .await?;
    audit(env, &user.user_id, "api_key_created", &row.id, &row.scopes).await?;
    let mut out = key_json(row);
    // Shown once: only its hash is kept.
    out["key"] = serde_json::Value::String(key);
    json(201, &out)
}

pub async fn list_keys(env: &Env, user: &Principal) -> Result<Response> {
    let rows: Vec<KeyRow> = env
        .d1("DB")?
        .prepare(
            "SELECT id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at \
             FROM api_keys WHERE user_id = ?1 ORDER BY created_at",
        )
        .bind(&[user.user_id.clone().into()])?
        .all()
        .await?
        .results()?;
    json(
        200,
        &serde_json::json!({"keys": rows.into_iter().map(key_json).collect::<Vec<_>>()}),
    )
}

pub async fn revoke_key(env: &Env, user: &Principal, id: &str) -> Result<Response> {
    let result = env
        .d1("DB")?
        .prepare("UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND user_id = ?3 AND revoked_at IS NULL")
        .bind(&[(now_ms() as f64).into(), id.into(), user.user_id.clone().into()])?
        .run()
        .await?;
    if !crate::http::changed_rows(&result)? {
        return fail(ErrorCode::NotFound, format!("no active key {id}"));
    }
    audit(env, &user.user_id, "api_key_revoked", id, "").await?;
    crate::sessions_api::close_sockets_of_credential(env, user, &crate::auth::key_credential(id))
        .await?;
    Ok(Response::empty()?.with_status(204))
}

/// Owners share a session with another user as a viewer or collaborator.
pub async fn add_member(
    mut req: Request,
    env: &Env,
    user: &Principal,
    session_id: &str,
) -> Result<Response> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        login: String,
        role: SessionRole,
    }
    let body: Body = match read_json(&mut req, 1024).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    if body.role == SessionRole::Owner {
        return fail(
            ErrorCode::InvalidBody,
            "a session has one owner; add viewers or collaborators",
        );
    }
    let db = env.d1("DB")?;
    let target: Option<UserRow> = db
        .prepare("SELECT id, login, role FROM users WHERE login = ?1")
        .bind(&[body.login.clone().into()])?
        .first(None)
        .await?;
    let Some(target) = target else {
        return fail(ErrorCode::NotFound, format!("no user {}", body.login));
    };
    let role = serde_json::to_value(body.role)?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    db.prepare(
        "INSERT INTO session_members (session_id, user_id, role, added_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (session_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(&[session_id.into(), target.id.clone().into(), role.clone().into(), (now_ms() as f64).into()])?
    .run()
    .await?;
    audit(
        env,
        &user.user_id,
        "role_changed",
        session_id,
        &format!("{}={role}", target.login),
    )
    .await?;
    // A changed role takes effect at once: their sockets reconnect with the new one.
    let revoked = Revocation::Member {
        login: target.login.clone(),
    };
    crate::sessions_api::close_sockets(env, session_id, &revoked).await?;
    json(
        201,
        &serde_json::json!({"session_id": session_id, "user": target, "role": role}),
    )
}

/// The newest security-relevant actions first (administrators only).
pub async fn list_audit(env: &Env) -> Result<Response> {
    #[derive(Serialize, Deserialize)]
    struct Entry {
        id: f64,
        at: f64,
        actor_id: String,
        action: String,
        target: Option<String>,
        detail: Option<String>,
    }
    let rows: Vec<Entry> = env
        .d1("DB")?
        .prepare("SELECT id, at, actor_id, action, target, detail FROM audit_log ORDER BY id DESC LIMIT 500")
        .all()
        .await?
        .results()?;
    let entries: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|e| {
            serde_json::json!({"id": e.id as u64, "at": e.at as u64, "actor_id": e.actor_id,
                "action": e.action, "target": e.target, "detail": e.detail})
        })
        .collect();
    json(200, &serde_json::json!({ "entries": entries }))
}

/// `DELETE /api/sessions/:id/members/:login` (owner): the member's role goes, and with it their
/// open sockets on the session, at once.
pub async fn remove_member(
    env: &Env,
    user: &Principal,
    session_id: &str,
    login: &str,
) -> Result<Response> {
    let removed = env
        .d1("DB")?
        .prepare(
            "DELETE FROM session_members WHERE session_id = ?1 \
             AND user_id = (SELECT id FROM users WHERE login = ?2)",
        )
        .bind(&[session_id.into(), login.into()])?
        .run()
        .await?;
    if !crate::http::changed_rows(&removed)? {
        return fail(
            ErrorCode::NotFound,
            format!("{login} is not a member of this session"),
        );
    }
    audit(env, &user.user_id, "member_removed", session_id, login).await?;
    let revoked = Revocation::Member {
        login: login.to_owned(),
    };
    crate::sessions_api::close_sockets(env, session_id, &revoked).await?;
    Ok(Response::empty()?.with_status(204))
}
