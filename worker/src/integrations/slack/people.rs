//! What a person in Slack does, as their linked account: each action is the API's own, under
//! the same rule as its route, so a viewer cannot stop a session from Slack any more than from
//! the web.

use agent_ops_protocol::api::{CreateSession, PromptAccepted, SessionInfo};
use agent_ops_protocol::feed::FeedTarget;
use agent_ops_protocol::routes::RouteId;
use agent_ops_protocol::session_calls::{Abort, Activity, Follow, Prompt};
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::Env;

use crate::api::sessions as sessions_api;
use crate::db::{sessions, slack, Db};
use crate::edge::auth::{acting_principal, Principal};
use crate::edge::dispatch::{authorize, authorize_session};
use crate::edge::http::{now_ms, Failure, Handled};
use crate::session::call;

/// The account `team:slack_user` is linked to, if it is.
pub async fn linked(env: &Env, team: &str, slack_user: &str) -> Handled<Option<Principal>> {
    let found = slack::linked_user(&Db::of(env)?, team, slack_user).await?;
    Ok(found.map(|u| {
        acting_principal(
            u.user_id,
            u.login,
            u.role,
            &format!("slack:{team}:{slack_user}"),
        )
    }))
}

/// A new session whose thread is `target`'s: its progress and answers are posted there.
pub async fn start(
    env: &Env,
    person: &Principal,
    new: CreateSession,
    target: FeedTarget,
) -> Handled<SessionInfo> {
    authorize(person, RouteId::CreateSession)?;
    let info = sessions_api::start_new(env, person, new).await?;
    let FeedTarget::SlackThread {
        team_id,
        channel,
        thread_ts,
    } = &target
    else {
        return Err(ApiError::new(
            ErrorCode::Internal,
            "a Slack session follows a Slack thread",
        )
        .into());
    };
    let thread = thread_ts.as_deref().unwrap_or_default();
    slack::bind_thread(&Db::of(env)?, team_id, channel, thread, &info.id, now_ms()).await?;
    call(env, &info.id, Follow { target }).await?;
    Ok(info)
}

pub async fn prompt(
    env: &Env,
    person: &Principal,
    session_id: &str,
    prompt: Prompt,
) -> Handled<PromptAccepted> {
    authorize_session(env, person, RouteId::PostPrompt, session_id).await?;
    call(env, session_id, prompt).await
}

pub async fn stop(env: &Env, person: &Principal, session_id: &str) -> Handled<()> {
    authorize_session(env, person, RouteId::Abort, session_id).await?;
    call(env, session_id, Abort {}).await?;
    Ok(())
}

pub async fn end(env: &Env, person: &Principal, session_id: &str) -> Handled<SessionInfo> {
    let (session, _) = authorize_session(env, person, RouteId::DeleteSession, session_id).await?;
    sessions_api::terminate(env, person, &session).await
}

/// The session, and what its running turn is doing (when the thread's feed has seen it).
pub async fn status(
    env: &Env,
    person: &Principal,
    session_id: &str,
) -> Handled<(SessionInfo, Option<String>)> {
    let (session, role) = authorize_session(env, person, RouteId::GetSession, session_id).await?;
    let activity = call(env, session_id, Activity {}).await?;
    Ok((session.info(Some(role)), activity))
}

/// The person's own sessions, and those shared with them, that have not ended (an
/// administrator's too: not everyone's).
pub async fn active(env: &Env, person: &Principal) -> Handled<Vec<SessionInfo>> {
    authorize(person, RouteId::ListSessions)?;
    let rows = sessions::visible_to(&Db::of(env)?, &person.user_id, false).await?;
    Ok(rows
        .iter()
        .filter(|r| !r.status.is_terminal())
        .map(|r| r.info(None))
        .collect())
}

/// A refusal as a sentence for Slack, with its stable code.
pub fn sentence(failure: Failure) -> String {
    match failure {
        Failure::Api(e) => format!("{} (`{}`)", e.message, e.code.as_str()),
        Failure::Limited { retry_after_secs } => {
            format!("Too many requests; try again in {retry_after_secs} s (`rate_limited`)")
        }
        Failure::Runtime(e) => {
            worker::console_error!("slack: {e}");
            "Something failed on our side; try again (`internal`)".into()
        }
    }
}
