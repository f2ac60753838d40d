//! GitHub sign-in. The OAuth `state` is signed (HMAC with `AUTH_SECRET`), bound to the browser
//! that started the flow (it carries the hash of a nonce kept in that browser's HttpOnly cookie),
//! expires after ten minutes and is accepted once. GitHub's base URLs are configuration, so the
//! whole flow runs against a local stand-in in tests.

use agent_ops_protocol::signing::{ct_eq, hmac_hex, sha256_hex};
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

use crate::accounts_api::audit;
use crate::auth::{self, COOKIE, LOGIN_TTL_MS};
use crate::http::{error, fail, now_ms, random_hex, random_id};

const STATE_TTL_MS: u64 = 10 * 60 * 1000;
const NONCE_COOKIE: &str = "aops_oauth";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateClaims {
    pub nonce_hash: String,
    pub exp: u64,
    pub jti: String,
}

pub fn mint_state(secret: &[u8], claims: &StateClaims) -> String {
    let payload = hex::encode(serde_json::to_vec(claims).expect("claims serialize"));
    let mac = hmac_hex(secret, payload.as_bytes());
    format!("{payload}.{mac}")
}

/// Checks signature, expiry and browser binding (single use is checked against storage).
pub fn check_state(
    secret: &[u8],
    state: &str,
    nonce: Option<&str>,
    now: u64,
) -> std::result::Result<StateClaims, &'static str> {
    let (payload, mac) = state.split_once('.').ok_or("malformed")?;
    if !ct_eq(
        hmac_hex(secret, payload.as_bytes()).as_bytes(),
        mac.as_bytes(),
    ) {
        return Err("forged");
    }
    let bytes = hex::decode(payload).map_err(|_| "malformed")?;
    let claims: StateClaims = serde_json::from_slice(&bytes).map_err(|_| "malformed")?;
    if claims.exp <= now {
        return Err("expired");
    }
    let bound = nonce.is_some_and(|n| {
        ct_eq(
            sha256_hex(n.as_bytes()).as_bytes(),
            claims.nonce_hash.as_bytes(),
        )
    });
    if !bound {
        return Err("not started in this browser");
    }
    Ok(claims)
}

fn var(env: &Env, name: &str, default: &str) -> String {
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn secret(env: &Env) -> std::result::Result<String, ApiError> {
    env.secret("AUTH_SECRET")
        .map(|s| s.to_string())
        .map_err(|_| ApiError::new(ErrorCode::Internal, "AUTH_SECRET is not configured"))
}

/// The app's origin, from configuration: GitHub sends people back to it.
fn origin(env: &Env) -> Result<String> {
    crate::origins::app(env).map_err(|e| worker::Error::RustError(e.message))
}

fn redirect(location: &str, cookies: &[String]) -> Result<Response> {
    let headers = Headers::new();
    headers.set("location", location)?;
    for c in cookies {
        headers.append("set-cookie", c)?;
    }
    Ok(Response::empty()?.with_status(302).with_headers(headers))
}

/// `GET /auth/github`: off to GitHub's authorize page with a fresh, browser-bound state.
pub async fn start(env: &Env) -> Result<Response> {
    let Ok(client_id) = env.var("GITHUB_CLIENT_ID").map(|v| v.to_string()) else {
        return fail(ErrorCode::NotFound, "GitHub sign-in is not configured");
    };
    if client_id.is_empty() {
        return fail(ErrorCode::NotFound, "GitHub sign-in is not configured");
    }
    let key = match secret(env) {
        Ok(k) => k,
        Err(e) => return error(&e),
    };
    let nonce = random_hex(16);
    let claims = StateClaims {
        nonce_hash: sha256_hex(nonce.as_bytes()),
        exp: now_ms() + STATE_TTL_MS,
        jti: random_id(),
    };
    let state = mint_state(key.as_bytes(), &claims);
    let callback = format!("{}/auth/github/callback", origin(env)?);
    let mut url = worker::Url::parse(&format!(
        "{}/login/oauth/authorize",
        var(env, "GITHUB_OAUTH_URL", "https://github.com")
    ))?;
    url.query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &callback)
        .append_pair("state", &state)
        .append_pair("scope", "read:user");
    // Lax, not Strict: the browser must send it on the top-level redirect back from GitHub.
    let cookie = crate::origins::app_cookie(env, NONCE_COOKIE, &nonce, "/auth/github", "Lax", 600);
    redirect(url.as_str(), &[cookie])
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    let all = req.headers().get("cookie").ok().flatten()?;
    all.split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

fn bad_state(why: &str) -> Result<Response> {
    fail(
        ErrorCode::InvalidOauthState,
        format!("invalid OAuth state: {why}; start the sign-in again"),
    )
}

async fn github_json(req: Request) -> std::result::Result<serde_json::Value, ApiError> {
    let failed = |e: worker::Error| {
        ApiError::new(ErrorCode::SignInFailed, format!("GitHub unreachable: {e}"))
    };
    let mut resp = Fetch::Request(req).send().await.map_err(failed)?;
    let status = resp.status_code();
    let v: serde_json::Value = resp.json().await.map_err(failed)?;
    if status >= 300 || v.get("error").is_some() {
        return Err(ApiError::new(
            ErrorCode::SignInFailed,
            format!("GitHub refused the sign-in ({status}): {v}"),
        ));
    }
    Ok(v)
}

/// `GET /auth/github/callback`: verify the state, trade the code for a token, look the user up,
/// and start a login session.
pub async fn callback(req: Request, env: &Env) -> Result<Response> {
    let key = match secret(env) {
        Ok(k) => k,
        Err(e) => return error(&e),
    };
    let url = req.url()?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let (Some(code), Some(state)) = (param("code"), param("state")) else {
        return bad_state("the callback lacks code or state");
    };
    let claims = match check_state(
        key.as_bytes(),
        &state,
        cookie(&req, NONCE_COOKIE).as_deref(),
        now_ms(),
    ) {
        Ok(c) => c,
        Err(why) => return bad_state(why),
    };
    let db = env.d1("DB")?;
    let fresh = db
        .prepare("INSERT INTO oauth_states_used (jti, used_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING")
        .bind(&[claims.jti.into(), (now_ms() as f64).into()])?
        .run()
        .await?;
    if !crate::http::changed_rows(&fresh)? {
        return bad_state("already used");
    }

    let client_id = var(env, "GITHUB_CLIENT_ID", "");
    let client_secret = env
        .secret("GITHUB_CLIENT_SECRET")
        .map(|s| s.to_string())
        .unwrap_or_default();
    let body = serde_json::json!({"client_id": client_id, "client_secret": client_secret, "code": code,
        "redirect_uri": format!("{}/auth/github/callback", origin(env)?)});
    let headers = Headers::new();
    headers.set("accept", "application/json")?;
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.to_string().into()));
    let exchange = Request::new_with_init(
        &format!(
            "{}/login/oauth/access_token",
            var(env, "GITHUB_OAUTH_URL", "https://github.com")
        ),
        &init,
    )?;
    let token = match github_json(exchange).await {
        Ok(v) => v["access_token"].as_str().unwrap_or_default().to_owned(),
        Err(e) => return error(&e),
    };
    let headers = Headers::new();
    headers.set("accept", "application/vnd.github+json")?;
    headers.set("authorization", &format!("Bearer {token}"))?;
    headers.set("user-agent", "agent-ops")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let lookup = Request::new_with_init(
        &format!(
            "{}/user",
            var(env, "GITHUB_API_URL", "https://api.github.com")
        ),
        &init,
    )?;
    let gh = match github_json(lookup).await {
        Ok(v) => v,
        Err(e) => return error(&e),
    };
    let (Some(github_id), Some(login)) = (gh["id"].as_u64(), gh["login"].as_str()) else {
        return fail(ErrorCode::SignInFailed, "GitHub's user has no id or login");
    };
    // Linked by GitHub id; the first person to sign in administers the organisation.
    db.prepare(
        "INSERT INTO users (id, login, role, created_at, github_id) \
         SELECT ?1, ?2, CASE WHEN EXISTS (SELECT 1 FROM users WHERE id != 'admin') THEN 'member' ELSE 'admin' END, ?3, ?4 \
         ON CONFLICT DO NOTHING",
    )
    .bind(&[random_id().into(), login.into(), (now_ms() as f64).into(), (github_id as f64).into()])?
    .run()
    .await?;
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let user: Option<Row> = db
        .prepare("SELECT id FROM users WHERE github_id = ?1")
        .bind(&[(github_id as f64).into()])?
        .first(None)
        .await?;
    let Some(user) = user else {
        return fail(
            ErrorCode::Conflict,
            format!("the login {login} belongs to another account"),
        );
    };
    let (session, _) = auth::start_login(env, &user.id).await?;
    audit(env, &user.id, "sign_in", &user.id, "github").await?;
    redirect(
        "/",
        &[
            crate::origins::app_cookie(env, COOKIE, &session, "/", "Strict", LOGIN_TTL_MS / 1000),
            crate::origins::app_cookie(env, NONCE_COOKIE, "", "/auth/github", "Lax", 0),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> StateClaims {
        StateClaims {
            nonce_hash: sha256_hex(b"nonce"),
            exp,
            jti: "j".into(),
        }
    }

    #[test]
    fn state_is_signed_bound_and_expires() {
        let s = mint_state(b"k", &claims(1_000));
        assert_eq!(check_state(b"k", &s, Some("nonce"), 999), Ok(claims(1_000)));
        assert_eq!(check_state(b"other", &s, Some("nonce"), 999), Err("forged"));
        assert_eq!(check_state(b"k", &s, Some("nonce"), 1_000), Err("expired"));
        assert_eq!(
            check_state(b"k", &s, Some("another"), 999),
            Err("not started in this browser")
        );
        assert_eq!(
            check_state(b"k", &s, None, 999),
            Err("not started in this browser")
        );
        let forged = mint_state(b"k", &claims(9_999))
            .split_once('.')
            .unwrap()
            .0
            .to_owned()
            + "."
            + s.split_once('.').unwrap().1;
        assert_eq!(
            check_state(b"k", &forged, Some("nonce"), 999),
            Err("forged"),
            "a longer expiry cannot be spliced in"
        );
        assert_eq!(
            check_state(b"k", "garbage", Some("nonce"), 999),
            Err("malformed")
        );
    }
}
