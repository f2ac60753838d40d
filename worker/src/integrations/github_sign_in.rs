//! GitHub sign-in, with an OAuth `state` that is signed, bound to this browser, short-lived and
//! used once (see `edge::oauth_state`). GitHub's base URLs are configuration, so the whole flow
//! runs against a local stand-in in tests.

use agent_ops_protocol::api::AuditAction;
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

use crate::api::audit;
use crate::db::{users, Db};
use crate::edge::auth::{self, COOKIE, LOGIN_TTL_MS};
use crate::edge::http::{now_ms, random_id, redirect, refuse, Handled};
use crate::edge::oauth_state;
use crate::edge::origins::app_cookie;

const NONCE_COOKIE: &str = "aops_oauth";
const COOKIE_PATH: &str = "/auth/github";

fn var(env: &Env, name: &str, default: &str) -> String {
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The app's origin, from configuration: GitHub sends people back to it.
fn origin(env: &Env) -> std::result::Result<String, ApiError> {
    crate::edge::origins::app(env)
}

/// `GET /auth/github`: off to GitHub's authorize page with a fresh, browser-bound state.
pub async fn start(env: &Env) -> Handled {
    let client_id = var(env, "GITHUB_CLIENT_ID", "");
    if client_id.is_empty() {
        return refuse(ErrorCode::NotFound, "GitHub sign-in is not configured");
    }
    let (state, cookie) = oauth_state::begin(env, NONCE_COOKIE, COOKIE_PATH, None)?;
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
    redirect(url.as_str(), &[cookie])
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
    let (code, _) = oauth_state::verified_code(&req, env, &db, NONCE_COOKIE).await?;
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
            oauth_state::spent_cookie(env, NONCE_COOKIE, COOKIE_PATH),
        ],
    )
}
