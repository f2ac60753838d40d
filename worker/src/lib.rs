//! The Agent Ops Worker: REST and WebSocket routing, authentication, and the per-session
//! Durable Object (`SessionObject`) that owns each session's log, queue and runner link.
//!
//! - `edge`: every request's way in (dispatch from the route table, authentication, rate
//!   limits, origins) and how handlers answer.
//! - `api`: one module per resource of the REST API.
//! - `session`: the session's Durable Object.
//! - `db`: every D1 query. `vault`: credentials sealed at rest.
//! - `sandbox`: what crosses to a sandbox (the provider, the gateway proxy, the model calls).
//! - `integrations`: third parties (GitHub sign-in).
//! - `bench`: the benchmarks' baseline objects, in the benchmark build only (`--features bench`).

mod api;
#[cfg(feature = "bench")]
mod bench;
mod db;
mod edge;
mod integrations;
mod sandbox;
mod session;
mod vault;

#[cfg(feature = "bench")]
pub use bench::echo::EchoObject;
pub use edge::rate_limit::RateLimiter;
pub use session::SessionObject;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    edge::dispatch::dispatch(req, env).await
}
