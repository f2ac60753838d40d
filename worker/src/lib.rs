//! The Agent Ops Worker: REST and WebSocket routing, authentication, and the per-session
//! Durable Object (`SessionObject`) that owns each session's log, queue and runner link.

mod accounts_api;
mod auth;
mod credentials_api;
mod echo;
mod github_auth;
mod grant;
mod http;
mod invites;
mod model_proxy;
mod model_usage;
mod origins;
mod panels;
mod provider;
mod rate_limit;
mod routes;
mod session;
mod sessions_api;
mod share_links;

pub use echo::EchoObject;
pub use rate_limit::RateLimiter;
pub use session::SessionObject;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    routes::dispatch(req, env).await
}
