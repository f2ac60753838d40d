//! Slack as a way in (slash commands, mentions and thread replies) and a channel out (a feed of
//! the session posting to its thread; see `thread`). Every request is verified against the
//! signing secret over its raw body before anything reads it; a deployment without one answers
//! `not_configured`, it never skips the check.

pub mod commands;
pub mod events;
pub mod install;
pub mod link;
pub mod people;
pub mod thread;
pub mod web;

use agent_ops_protocol::api::NoContent;
use agent_ops_protocol::routes::{endpoint, RouteId};
use agent_ops_protocol::slack::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Context, Env, Request};

use crate::edge::config::{secret, var};
use crate::edge::http::{answer, now_ms, Handled};

/// Slack's requests are small (a command, an event); anything larger is not one.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The app's link to a session in the web app.
pub fn session_url(env: &Env, id: &str) -> String {
    let app = var(env, "PUBLIC_URL").unwrap_or_default();
    format!("{}/sessions/{id}", app.trim_end_matches('/'))
}

/// A Slack route's request: verified, then handed to its handler.
pub async fn serve(route: RouteId, mut req: Request, env: &Env, ctx: &Context) -> Handled {
    let Some(signing_secret) = secret(env, "SLACK_SIGNING_SECRET") else {
        return Err(not_configured().into());
    };
    let body = req.bytes().await?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("a Slack request is at most {MAX_BODY_BYTES} bytes"),
        )
        .into());
    }
    let header = |name: &str| req.headers().get(name).ok().flatten();
    signature::verify(
        &signing_secret,
        header(TIMESTAMP_HEADER).as_deref(),
        header(SIGNATURE_HEADER).as_deref(),
        &body,
        now_ms() / 1000,
    )?;
    match route {
        RouteId::SlackCommands => commands::handle(env, ctx, &body).await,
        RouteId::SlackEvents => events::handle(env, &body).await,
        // Verified, and nothing is offered yet that a button could press.
        _ => answer::<endpoint::SlackInteractivity>(&NoContent),
    }
}

fn not_configured() -> ApiError {
    ApiError::new(
        ErrorCode::NotConfigured,
        "Slack is not set up on this deployment (SLACK_SIGNING_SECRET)",
    )
}

/// Whether Slack is set up here: it can verify what Slack sends.
pub fn configured(env: &Env) -> bool {
    secret(env, "SLACK_SIGNING_SECRET").is_some()
}
