//! Slack's Web API (`SLACK_API_URL`, `https://slack.com` by default) and the `response_url` of a
//! slash command. Each call says whether it worked, or when to try again.

use agent_ops_protocol::api::SlackCommandReply;
use agent_ops_protocol::slack::wire::WebAnswer;
use serde::Serialize;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

use crate::edge::config::{secret, var};

/// Why a call did not work.
#[derive(Debug)]
pub enum Refused {
    /// Slack's rate limit: come back after this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// Slack answered `ok: false` with this error, or could not be reached.
    Failed(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::RateLimited { retry_after_secs } => {
                write!(f, "rate limited for {retry_after_secs} s")
            }
            Refused::Failed(why) => f.write_str(why),
        }
    }
}

/// Workspace `team`'s bot token: the one its installation sealed, else a one-workspace
/// deployment's `SLACK_BOT_TOKEN`.
pub async fn bot_token(env: &Env, team: &str) -> worker::Result<Option<String>> {
    let owner = super::install::token_owner(team);
    if let Some(token) = crate::vault::open_stored(env, &owner, super::install::TOKEN_KIND).await? {
        return Ok(Some(token));
    }
    Ok(secret(env, "SLACK_BOT_TOKEN"))
}

fn api_base(env: &Env) -> String {
    var(env, "SLACK_API_URL").unwrap_or_else(|| "https://slack.com".into())
}

async fn post_json<T: Serialize>(
    url: &str,
    token: Option<&str>,
    body: &T,
) -> Result<(u16, Option<String>, String), Refused> {
    let failed = |e: worker::Error| Refused::Failed(format!("Slack could not be reached: {e}"));
    let headers = Headers::new();
    headers
        .set("content-type", "application/json; charset=utf-8")
        .map_err(failed)?;
    if let Some(token) = token {
        headers
            .set("authorization", &format!("Bearer {token}"))
            .map_err(failed)?;
    }
    let body = serde_json::to_string(body).map_err(|e| Refused::Failed(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let req = Request::new_with_init(url, &init).map_err(failed)?;
    let mut resp = Fetch::Request(req).send().await.map_err(failed)?;
    let retry_after = resp.headers().get("retry-after").ok().flatten();
    let text = resp.text().await.map_err(failed)?;
    Ok((resp.status_code(), retry_after, text))
}

/// Calls Web API `method` with `body` and the bot's `token`.
pub async fn call<T: Serialize>(
    env: &Env,
    token: &str,
    method: &str,
    body: &T,
) -> Result<WebAnswer, Refused> {
    let url = format!("{}/api/{method}", api_base(env));
    let answered = post_json(&url, Some(token), body).await?;
    read_answer(method, answered)
}

/// Calls a Web API method that reads (`conversations.replies`): its arguments in the query, as
/// Slack takes them for such methods (they accept no JSON body).
pub async fn read<T: Serialize>(
    env: &Env,
    token: &str,
    method: &str,
    args: &T,
) -> Result<WebAnswer, Refused> {
    let failed = |e: worker::Error| Refused::Failed(format!("Slack could not be reached: {e}"));
    let query = serde_urlencoded::to_string(args).map_err(|e| Refused::Failed(e.to_string()))?;
    let headers = Headers::new();
    headers
        .set("authorization", &format!("Bearer {token}"))
        .map_err(failed)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let url = format!("{}/api/{method}?{query}", api_base(env));
    let req = Request::new_with_init(&url, &init).map_err(failed)?;
    let mut resp = Fetch::Request(req).send().await.map_err(failed)?;
    let retry_after = resp.headers().get("retry-after").ok().flatten();
    let text = resp.text().await.map_err(failed)?;
    read_answer(method, (resp.status_code(), retry_after, text))
}

fn read_answer(
    method: &str,
    (status, retry_after, text): (u16, Option<String>, String),
) -> Result<WebAnswer, Refused> {
    if status == 429 {
        let retry_after_secs = retry_after.and_then(|s| s.parse().ok()).unwrap_or(30);
        return Err(Refused::RateLimited { retry_after_secs });
    }
    let answer: WebAnswer = serde_json::from_str(&text)
        .map_err(|_| Refused::Failed(format!("{method}: HTTP {status}, not a Web API answer")))?;
    match (answer.ok, answer.error.as_deref()) {
        (true, _) => Ok(answer),
        (false, Some("ratelimited")) => Err(Refused::RateLimited {
            retry_after_secs: 30,
        }),
        (false, error) => Err(Refused::Failed(format!(
            "{method}: {}",
            error.unwrap_or("failed")
        ))),
    }
}

/// Answers a slash command later, on its `response_url` (which needs no token).
pub async fn respond(response_url: &str, text: String) -> Result<(), Refused> {
    let (status, _, _) = post_json(response_url, None, &SlackCommandReply::ephemeral(text)).await?;
    match status {
        200..=299 => Ok(()),
        429 => Err(Refused::RateLimited {
            retry_after_secs: 30,
        }),
        status => Err(Refused::Failed(format!("response_url: HTTP {status}"))),
    }
}
