//! Where the app and the sandboxes are served (`PUBLIC_URL`, `SANDBOX_ORIGIN`): configuration,
//! never the request's own `Host`, which whoever sends the request chooses.

use crate::edge::config::var;
use agent_ops_protocol::origins::SandboxOrigins;
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Url};

/// The app's origin, e.g. `https://agents.example.com`.
pub fn app(env: &Env) -> Result<String, ApiError> {
    let url = var(env, "PUBLIC_URL")
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "PUBLIC_URL is not configured"))?;
    Url::parse(&url)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("PUBLIC_URL: {e}")))
}

/// A `Set-Cookie` value for one of the app's cookies (see `cookies::app_cookie`), `Secure`
/// whenever the public URL is https.
pub fn app_cookie(
    env: &Env,
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: u64,
) -> String {
    let secure = app(env).is_ok_and(|o| o.starts_with("https://"));
    agent_ops_protocol::cookies::app_cookie(name, value, path, same_site, max_age, secure)
}

/// The sandboxes' origins, one per session.
pub fn sandboxes(env: &Env) -> Result<SandboxOrigins, ApiError> {
    let template = var(env, "SANDBOX_ORIGIN")
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "SANDBOX_ORIGIN is not configured"))?;
    SandboxOrigins::parse(&template).map_err(|e| ApiError::new(ErrorCode::Internal, e))
}

/// Where a sandbox's runner reaches the Worker: `RUNNER_BASE_URL` when the runners see it at
/// another address than people do, else the public URL.
pub fn runner_base(env: &Env) -> Result<String, ApiError> {
    match var(env, "RUNNER_BASE_URL") {
        Some(base) => Ok(base.trim_end_matches('/').to_owned()),
        None => app(env),
    }
}
