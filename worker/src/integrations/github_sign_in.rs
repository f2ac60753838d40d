//! GitHub sign-in. The OAuth `state` is signed (HMAC with `AUTH_SECRET`), bound to the browser
//! that started the flow (it carries the hash of a nonce kept in that browser's HttpOnly cookie),
//! expires after ten minutes and is accepted once. GitHub's base URLs are configuration, so the
//! whole flow runs against a local stand-in in tests.

use agent_ops_protocol::api::AuditAction;
use agent_ops_protocol::signing::{ct_eq, hmac_hex, sha256_hex};
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::api::audit;
use crate::db::{oauth_states, users, Db};
use crate::edge::auth::{self, COOKIE, LOGIN_TTL_MS};
use crate::edge::http::{now_ms, random_hex, random_id, refuse, Handled};
use crate::edge::origins::app_cookie;

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
fn origin(env: &Env) -> std::result::Result<String, ApiError> {
    crate::edge::origins::app(env)
}

fn redirect(location: &str, cookies: &[String]) -> Handled {
    let headers = Headers::new();
    headers.set("location", location)?;
    for c in cookies {
        headers.append("set-cookie", c)?;
    }
    Ok(Response::empty()?.with_status(302).with_headers(headers))
}

/// `GET /auth/github`: off to GitHub's authorize page with a fresh, browser-bound state.
pub async fn start(env: &Env) -> Handled {
    let client_id = var(env, "GITHUB_CLIENT_ID", "");
    if client_id.is_empty() {
        return refuse(ErrorCode::NotFound, "GitHub sign-in is not configured");
    }
    let key = secret(env)?;
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
    let cookie = app_cookie(env, NONCE_COOKIE, &nonce, "/auth/github", "Lax", 600);
    redirect(url.as_str(), &[cookie])
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    let all = req.headers().get("cookie").ok().flatten()?;
    all.split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

fn bad_state<T>(why: &str) -> Handled<T> {
    refuse(
        ErrorCode::InvalidOauthState,
        format!("invalid OAuth state: {why}; start the sign-in again"),
    )
}

/// What this sign-in sends to and reads from GitHub's OAuth and REST APIs.
#[derive(Serialize)]
struct TokenRequest<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    code: &'a str,
    redirect_uri: &'a str,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
}

async fn github_json<T: DeserializeOwned>(req: Request) -> std::result::Result<T, ApiError> {
    let failed = |e: worker::Error| {
        ApiError::new(ErrorCode::SignInFailed, format!("GitHub unreachable: {e}"))
    };
    let mut resp = Fetch::Request(req).send().await.map_err(failed)?;
    let status = resp.status_code();
    let text = resp.text().await.map_err(failed)?;
    let refused = || {
        ApiError::new(
            ErrorCode::SignInFailed,
            format!("GitHub refused the sign-in ({status}): {text}"),
        )
    };
    if status >= 300 {
        return Err(refused());
    }
    // GitHub answers a refused code with 200 and an `error`, which no answer type reads.
    serde_json::from_str(&text).map_err(|_| refused())
}

/// The callback's code, once its state is verified: signed, unexpired, bound to this browser,
/// and used for the first time.
async fn verified_code(req: &Request, env: &Env, db: &Db) -> Handled<String> {
    let key = secret(env)?;
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
        cookie(req, NONCE_COOKIE).as_deref(),
        now_ms(),
    ) {
        Ok(c) => c,
        Err(why) => return bad_state(why),
    };
    if !oauth_states::use_once(db, &claims.jti, now_ms()).await? {
        return bad_state("already used");
    }
    Ok(code)
}

/// Trades the code for a token and looks up whose it is.
async fn github_user(env: &Env, code: &str) -> Handled<GithubUser> {
    let client_secret = env
        .secret("GITHUB_CLIENT_SECRET")
        .map(|s| s.to_string())
        .unwrap_or_default();
    let body = TokenRequest {
        client_id: &var(env, "GITHUB_CLIENT_ID", ""),
        client_secret: &client_secret,
        code,
        redirect_uri: &format!("{}/auth/github/callback", origin(env)?),
    };
    let headers = Headers::new();
    headers.set("accept", "application/json")?;
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(serde_json::to_string(&body)?.into()));
    let exchange = Request::new_with_init(
        &format!(
            "{}/login/oauth/access_token",
            var(env, "GITHUB_OAUTH_URL", "https://github.com")
        ),
        &init,
    )?;
    let token: TokenAnswer = github_json(exchange).await?;
    let headers = Headers::new();
    headers.set("accept", "application/vnd.github+json")?;
    headers.set("authorization", &format!("Bearer {}", token.access_token))?;
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
    Ok(github_json(lookup).await?)
}

/// `GET /auth/github/callback`: verify the state, trade the code for a token, look the user up,
/// and start a login session.
pub async fn callback(req: Request, env: &Env) -> Handled {
    let db = Db::of(env)?;
    let code = verified_code(&req, env, &db).await?;
    let gh = github_user(env, &code).await?;
    // Linked by GitHub id; the first person to sign in administers the organisation.
    let user = users::upsert_by_github(&db, &random_id(), &gh.login, gh.id, now_ms()).await?;
    let Some(user) = user else {
        return refuse(
            ErrorCode::Conflict,
            format!("the login {} belongs to another account", gh.login),
        );
    };
    let (session, _) = auth::start_login(&db, &user.id).await?;
    audit::record(&db, &user.id, AuditAction::SignIn, &user.id, "github").await?;
    redirect(
        "/",
        &[
            app_cookie(env, COOKIE, &session, "/", "Strict", LOGIN_TTL_MS / 1000),
            app_cookie(env, NONCE_COOKIE, "", "/auth/github", "Lax", 0),
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
