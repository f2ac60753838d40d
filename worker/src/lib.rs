//! The Agent Ops Worker: REST and WebSocket routing, authentication, and the per-session
//! Durable Object (`SessionObject`) that owns each session's log, queue and runner link.
//!
//! - `edge`: every request's way in (dispatch from the route table, authentication, rate
//!   limits, origins) and how handlers answer.
//! - `api`: one module per resource of the REST API.
//! - `session`: the session's Durable Object.
//! - `db`: every D1 query. `vault`: credentials sealed at rest.
//! - `sandbox`: what crosses to a sandbox (the provider, the gateway proxy, the model calls).
//! - `integrations`: third parties (GitHub sign-in, Slack).
//! - `workflows`: saved ways of starting a session, run by a webhook, a schedule or a person.
//! - `bench`: the benchmarks' baseline objects, in the benchmark build only (`--features bench`).

/// Every frame a session relays allocates a little (its parse, its row, its frame): talc, made
/// for wasm, measured faster there than the default allocator (see `Cargo.toml`).
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

mod api;
#[cfg(feature = "bench")]
mod bench;
mod db;
mod edge;
mod integrations;
mod sandbox;
mod session;
mod vault;
mod workflows;

#[cfg(feature = "bench")]
pub use bench::echo::EchoObject;
pub use edge::rate_limit::RateLimiter;
pub use session::SessionObject;

use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    edge::dispatch::dispatch(req, env, ctx).await
}

/// The cron trigger (every minute): workflows' schedules, at the time the runtime gives.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let at = event.schedule().max(0.0) as u64;
    if let Err(e) = workflows::scheduler::tick(&env, at).await.map(|_| ()) {
        worker::console_error!("scheduler at {at}: {e:?}");
    }
}
