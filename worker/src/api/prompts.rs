//! Steering a session's agent: prompts queued, withdrawn, and the running turn interrupted. The
//! session's object decides; these carry the caller's request to it and its answer back.

use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::session_calls::{Abort, CancelPrompt, Prompt};
use agent_ops_protocol::MAX_PROMPT_BYTES;
use worker::{Env, Request};

use crate::db::sessions::SessionRow;
use crate::edge::http::{answer, answer_with, body, random_id, Handled};
use crate::session::call;

/// `POST /api/sessions/{id}/prompts`: 202 when queued, 200 when the request id was seen before.
pub async fn post(mut req: Request, env: &Env, session: &SessionRow) -> Handled {
    let new = body::<endpoint::PostPrompt>(&mut req, MAX_PROMPT_BYTES + 4096).await?;
    let prompt = Prompt {
        text: new.text,
        client_request_id: new.client_request_id.unwrap_or_else(random_id),
    };
    let accepted = call(env, &session.id, prompt).await?;
    let status = if accepted.duplicate { 200 } else { 202 };
    answer_with::<endpoint::PostPrompt>(status, &accepted)
}

pub async fn cancel(env: &Env, session: &SessionRow, prompt_id: &str) -> Handled {
    let prompt_id = prompt_id.to_owned();
    let cancelled = call(env, &session.id, CancelPrompt { prompt_id }).await?;
    answer::<endpoint::CancelPrompt>(&cancelled)
}

pub async fn abort(env: &Env, session: &SessionRow) -> Handled {
    let aborting = call(env, &session.id, Abort {}).await?;
    answer::<endpoint::Abort>(&aborting)
}
