//! Authentication: a bearer token (header, `bearer.<token>` WebSocket subprotocol, or the SPA's
//! cookie) becomes a `Principal`, or is refused. Tokens are stored only as SHA-256 hashes.
//!
//! Three kinds: the bootstrap administrator key from configuration, login sessions (`aos_...`,
//! 7 days, revocable) and API keys (`aok_<prefix>_...`, scoped, optionally expiring, revocable).

use agent_ops_protocol::access::{Caller, OrgRole, Scope};
use agent_ops_protocol::signing::{ct_eq, hash_token};
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::Deserialize;
use worker::{Env, Request};

use crate::http::now_ms;

pub const LOGIN_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
pub const COOKIE: &str = "aops_session";

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub login: String,
    pub caller: Caller,
    /// The login session's token hash, when that is how the principal authenticated.
    pub login_session: Option<String>,
    /// When the API key the principal authenticated with expires, if it does: a key it makes
    /// expires no later.
    pub key_expires_at: Option<u64>,
    /// Names the credential itself (never its secret), so what was opened with it can be closed
    /// when it is revoked: `login:<hash of its hash>`, `key:<id>`, or `admin`.
    pub credential: String,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// Browsers cannot set headers on a WebSocket, so the token may also arrive as the
/// subprotocol `bearer.<token>`, or as the SPA's HttpOnly cookie (never in the URL).
pub fn bearer_token(req: &Request) -> Option<String> {
    let headers = req.headers();
    if let Ok(Some(value)) = headers.get("authorization") {
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    if let Ok(Some(protocols)) = headers.get("sec-websocket-protocol") {
        if let Some(t) = protocols
            .split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("bearer."))
        {
            return Some(t.to_owned());
        }
    }
    let cookies = headers.get("cookie").ok().flatten()?;
    agent_ops_protocol::cookies::value(&cookies, COOKIE).map(str::to_owned)
}

/// Whether the credential the request authenticates with is the cookie, which a browser attaches
/// by itself and which therefore needs protection from cross-site use. Any page may name
/// subprotocols on a WebSocket it opens, so one that carries no token changes nothing.
pub fn cookie_only(req: &Request) -> bool {
    let h = req.headers();
    let has = |name: &str| h.get(name).ok().flatten().is_some();
    let bearer_protocol = h
        .get("sec-websocket-protocol")
        .ok()
        .flatten()
        .is_some_and(|p| p.split(',').any(|p| p.trim().starts_with("bearer.")));
    !has("authorization") && !bearer_protocol && has("cookie")
}

fn role_of(s: &str) -> OrgRole {
    if s == "admin" {
        OrgRole::Admin
    } else {
        OrgRole::Member
    }
}

fn all_scopes(role: OrgRole) -> Vec<Scope> {
    Scope::ALL.into_iter().filter(|s| role.allows(*s)).collect()
}

/// `Ok(None)` for a request without credentials; an error for credentials that are not valid.
pub async fn authenticate(req: &Request, env: &Env) -> Result<Option<Principal>, ApiError> {
    let Some(token) = bearer_token(req) else {
        return Ok(None);
    };
    let hash = hash_token(&token);
    if let Ok(admin_key) = env.secret("ADMIN_API_KEY") {
        // Hashes compared: constant-time and independent of the key's length.
        if ct_eq(
            hash.as_bytes(),
            hash_token(&admin_key.to_string()).as_bytes(),
        ) {
            return Ok(Some(Principal {
                user_id: "admin".into(),
                login: "admin".into(),
                caller: Caller {
                    role: OrgRole::Admin,
                    scopes: all_scopes(OrgRole::Admin),
                },
                login_session: None,
                key_expires_at: None,
                credential: "admin".into(),
            }));
        }
    }
    let db = env
        .d1("DB")
        .map_err(|_| ApiError::new(ErrorCode::Internal, "no database"))?;
    let internal =
        |e: worker::Error| ApiError::new(ErrorCode::Internal, format!("auth lookup: {e}"));
    let now = now_ms() as f64;
    if token.starts_with("aos_") {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            login: String,
            role: String,
        }
        let row: Option<Row> = db
            .prepare(
                "SELECT u.id, u.login, u.role FROM auth_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2",
            )
            .bind(&[hash.clone().into(), now.into()])
            .map_err(internal)?
            .first(None)
            .await
            .map_err(internal)?;
        let row =
            row.ok_or_else(|| unauthorized("the login session is unknown, expired or revoked"))?;
        let role = role_of(&row.role);
        return Ok(Some(Principal {
            user_id: row.id,
            login: row.login,
            caller: Caller {
                role,
                scopes: all_scopes(role),
            },
            credential: login_credential(&hash),
            login_session: Some(hash),
            key_expires_at: None,
        }));
    }
    if token.starts_with("aok_") {
        #[derive(Deserialize)]
        struct Row {
            key_id: String,
            id: String,
            login: String,
            role: String,
            scopes: String,
            expires_at: Option<f64>,
        }
        let row: Option<Row> = db
            .prepare(
                "SELECT k.id AS key_id, u.id, u.login, u.role, k.scopes, k.expires_at FROM api_keys k JOIN users u ON u.id = k.user_id \
                 WHERE k.token_hash = ?1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?2)",
            )
            .bind(&[hash.into(), now.into()])
            .map_err(internal)?
            .first(None)
            .await
            .map_err(internal)?;
        let row = row.ok_or_else(|| unauthorized("the API key is unknown, expired or revoked"))?;
        db.prepare("UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2")
            .bind(&[now.into(), row.key_id.clone().into()])
            .map_err(internal)?
            .run()
            .await
            .map_err(internal)?;
        let role = role_of(&row.role);
        // A key never carries more than its owner has now (a demoted owner's keys shrink too).
        let scopes: Vec<Scope> = serde_json::from_str::<Vec<Scope>>(&row.scopes)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| role.allows(*s))
            .collect();
        return Ok(Some(Principal {
            user_id: row.id,
            login: row.login,
            caller: Caller { role, scopes },
            credential: key_credential(&row.key_id),
            login_session: None,
            key_expires_at: row.expires_at.map(|e| e as u64),
        }));
    }
    Err(unauthorized("invalid credentials"))
}

/// The id by which a login session's sockets and panel cookies are found when it signs out:
/// derived from the stored hash, so the sandbox, which sees the id, learns nothing it could
/// look up.
pub fn login_credential(token_hash: &str) -> String {
    format!("login:{}", &hash_token(token_hash)[..32])
}

/// The key session `session_id`'s panel tokens are signed with, which its sandbox's gateway
/// holds: derived from `AUTH_SECRET`, which never leaves the Worker.
pub fn panel_key(env: &Env, session_id: &str) -> std::result::Result<Vec<u8>, ApiError> {
    let master = env
        .secret("AUTH_SECRET")
        .map(|s| s.to_string())
        .map_err(|_| ApiError::new(ErrorCode::Internal, "AUTH_SECRET is not configured"))?;
    Ok(agent_ops_protocol::panel::session_key(
        master.as_bytes(),
        session_id,
    ))
}

pub fn key_credential(key_id: &str) -> String {
    format!("key:{key_id}")
}

/// Issues a login session for a user: the token is returned once and stored only as a hash.
pub async fn start_login(env: &Env, user_id: &str) -> worker::Result<(String, u64)> {
    let token = format!("aos_{}", crate::http::random_hex(32));
    let now = now_ms();
    let expires = now + LOGIN_TTL_MS;
    env.d1("DB")?
        .prepare("INSERT INTO auth_sessions (token_hash, user_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(&[hash_token(&token).into(), user_id.into(), (expires as f64).into(), (now as f64).into()])?
        .run()
        .await?;
    Ok((token, expires))
}
