//! Authentication: a bearer token (header, `bearer.<token>` WebSocket subprotocol, or the SPA's
//! cookie) becomes a `Principal`, or is refused. Tokens are stored only as SHA-256 hashes.
//!
//! Three kinds: the bootstrap administrator key from configuration, login sessions (`aos_...`,
//! 7 days, revocable) and API keys (`aok_<prefix>_...`, scoped, optionally expiring, revocable).

use agent_ops_protocol::access::{Caller, OrgRole, Scope};
use agent_ops_protocol::signing::{ct_eq, hash_token};
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Request};

use crate::db::{api_keys, login_sessions, Db};
use crate::edge::http::{now_ms, random_hex};

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

fn internal(e: worker::Error) -> ApiError {
    worker::console_error!("authentication lookup failed: {e}");
    ApiError::new(
        ErrorCode::Internal,
        "the credentials could not be checked; retry",
    )
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

fn all_scopes(role: OrgRole) -> Vec<Scope> {
    Scope::ALL.into_iter().filter(|s| role.allows(*s)).collect()
}

/// Someone acting as account `user_id` by another way in (a linked Slack identity, the
/// account's workflow), with the account's role and every scope that role has, as a sign-in
/// does. `credential` names that way in (`slack:<team>:<user>`, `workflow:<id>`).
pub fn acting_principal(
    user_id: String,
    login: String,
    role: OrgRole,
    credential: &str,
) -> Principal {
    Principal {
        user_id,
        login,
        caller: Caller {
            role,
            scopes: all_scopes(role),
        },
        login_session: None,
        key_expires_at: None,
        credential: credential.to_owned(),
    }
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
    let db = Db::of(env).map_err(internal)?;
    let now = now_ms();
    if token.starts_with("aos_") {
        let user = login_sessions::live_user(&db, &hash, now)
            .await
            .map_err(internal)?
            .ok_or_else(|| unauthorized("the login session is unknown, expired or revoked"))?;
        return Ok(Some(Principal {
            user_id: user.id,
            login: user.login,
            caller: Caller {
                role: user.role,
                scopes: all_scopes(user.role),
            },
            credential: login_credential(&hash),
            login_session: Some(hash),
            key_expires_at: None,
        }));
    }
    if token.starts_with("aok_") {
        let key = api_keys::use_live(&db, &hash, now)
            .await
            .map_err(internal)?
            .ok_or_else(|| unauthorized("the API key is unknown, expired or revoked"))?;
        // A key never carries more than its owner has now (a demoted owner's keys shrink too).
        let scopes: Vec<Scope> = key
            .scopes
            .into_iter()
            .filter(|s| key.role.allows(*s))
            .collect();
        return Ok(Some(Principal {
            user_id: key.user_id,
            login: key.login,
            caller: Caller {
                role: key.role,
                scopes,
            },
            credential: key_credential(&key.key_id),
            login_session: None,
            key_expires_at: key.expires_at,
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
pub async fn start_login(db: &Db, user_id: &str) -> worker::Result<(String, u64)> {
    let token = format!("aos_{}", random_hex(32));
    let now = now_ms();
    let expires = now + LOGIN_TTL_MS;
    login_sessions::insert(db, &hash_token(&token), user_id, expires, now).await?;
    Ok((token, expires))
}
