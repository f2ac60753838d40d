//! `/agent-ops ...`: acknowledged at once, before any I/O, as Slack asks (within 3 s, and
//! nothing depends on that reply arriving). What needs only its text (`help`, the usage) is
//! answered in the acknowledgement; the rest is done after it (`Context::wait_until`) and
//! answered on the command's `response_url`, shown to the caller alone. A new session also
//! gets a message in the channel whose thread is the session's.

use agent_ops_protocol::api::{SessionInfo, SlackCommandReply};
use agent_ops_protocol::feed::FeedTarget;
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::slack::command::{parse, SlashCommand, USAGE};
use agent_ops_protocol::slack::wire::{PostMessage, SlashCommandForm, UpdateMessage};
use worker::{Context, Env};

use super::people::{self, sentence};
use super::{link, session_url, web};
use crate::db::{slack, Db};
use crate::edge::auth::Principal;
use crate::edge::config::var;
use crate::edge::http::{after_answer, answer, now_ms, Handled};

pub async fn handle(env: &Env, ctx: &Context, body: &[u8]) -> Handled {
    let Ok(form) = serde_urlencoded::from_bytes::<SlashCommandForm>(body) else {
        return reply("That command could not be read (`invalid_body`).".into());
    };
    let command = match parse(&form.text) {
        Err(usage) => return reply(usage),
        Ok(SlashCommand::Help) => return reply(USAGE.to_owned()),
        Ok(command) => command,
    };
    // Only a URL of Slack's own is answered later; a command that names another is done now,
    // within Slack's wait, and answered in the reply.
    if !from_slack(env, &form.response_url) {
        return reply(work(env, &form, command).await.unwrap_or_else(sentence));
    }
    let ack = acknowledgement(&command);
    let env = env.clone();
    after_answer(ctx, async move {
        let text = work(&env, &form, command).await.unwrap_or_else(sentence);
        if let Err(e) = web::respond(&form.response_url, text).await {
            worker::console_error!("slack response_url: {e}");
        }
    });
    reply(ack)
}

/// What the caller sees until the answer comes.
fn acknowledgement(command: &SlashCommand) -> String {
    match command {
        SlashCommand::New(new) => {
            format!(
                "Starting *{}* …",
                new.title.as_deref().unwrap_or("a session")
            )
        }
        SlashCommand::Stop { session } => format!("Stopping the running turn of `{session}` …"),
        SlashCommand::End { session } => format!("Ending `{session}` …"),
        SlashCommand::Status { session } => format!("Looking up `{session}` …"),
        SlashCommand::List | SlashCommand::Help => "Looking up your sessions …".into(),
    }
}

/// The command, done as the linked person, in a channel the app may work in, once.
async fn work(env: &Env, form: &SlashCommandForm, command: SlashCommand) -> Handled<String> {
    // Slack never sends a command twice; the same one again is a replay within the signature's
    // window, and runs no second time.
    let db = Db::of(env)?;
    let claim = async {
        match &form.trigger_id {
            Some(trigger) => {
                let claim = format!("command:{trigger}");
                slack::claim_event(&db, &claim, now_ms(), u64::MAX).await
            }
            None => Ok(true),
        }
    };
    let (fresh, allowed, person) = futures::join!(
        claim,
        slack::channel_allowed(&db, &form.team_id, &form.channel_id),
        people::linked(env, &form.team_id, &form.user_id),
    );
    if !fresh? {
        return Ok("That command was already done (`conflict`).".into());
    }
    Ok(match person? {
        _ if !allowed? => "Agent Ops does not work in this channel; an administrator can \
            enable it in Settings (`forbidden`)."
            .into(),
        None => link::offer(env, &form.team_id, &form.user_id).await?,
        Some(person) => run(env, &person, form, command).await,
    })
}

fn reply(text: String) -> Handled {
    answer::<endpoint::SlackCommands>(&SlackCommandReply::ephemeral(text))
}

/// Whether a `response_url` is Slack's own (`SLACK_HOOKS_URL`): a request is signed, but the
/// platform posts nowhere else on its word.
fn from_slack(env: &Env, url: &str) -> bool {
    let hooks = var(env, "SLACK_HOOKS_URL").unwrap_or_else(|| "https://hooks.slack.com/".into());
    url.starts_with(&hooks)
}

fn line(env: &Env, s: &SessionInfo) -> String {
    let title = s.title.as_deref().unwrap_or("untitled");
    format!(
        "<{}|{title}> `{}`: {}",
        session_url(env, &s.id),
        s.id,
        s.status.as_str()
    )
}

async fn run(
    env: &Env,
    person: &Principal,
    form: &SlashCommandForm,
    command: SlashCommand,
) -> String {
    let done = match command {
        SlashCommand::Help => Ok(USAGE.to_owned()),
        SlashCommand::List => people::active(env, person).await.map(|sessions| {
            if sessions.is_empty() {
                return "You have no active sessions. `/agent-ops new <task>` starts one.".into();
            }
            let lines: Vec<String> = sessions
                .iter()
                .map(|s| format!("• {}", line(env, s)))
                .collect();
            format!("Your active sessions:\n{}", lines.join("\n"))
        }),
        SlashCommand::Status { session } => {
            people::status(env, person, &session)
                .await
                .map(|(s, activity)| {
                    let usage = s.model_usage;
                    let doing = activity.map(|a| format!("\nNow: {a}.")).unwrap_or_default();
                    format!(
                        "{}{doing}\nModel: {} tokens in, {} out over {} calls.",
                        line(env, &s),
                        usage.input_tokens,
                        usage.output_tokens,
                        usage.calls
                    )
                })
        }
        SlashCommand::Stop { session } => people::stop(env, person, &session)
            .await
            .map(|()| format!("Stopping the running turn of `{session}`.")),
        SlashCommand::End { session } => people::end(env, person, &session)
            .await
            .map(|s| format!("Ended {}.", line(env, &s))),
        SlashCommand::New(new) => start(env, person, form, new).await,
    };
    done.unwrap_or_else(sentence)
}

/// A new session, announced in the channel; the announcement's thread is the session's.
async fn start(
    env: &Env,
    person: &Principal,
    form: &SlashCommandForm,
    new: agent_ops_protocol::api::CreateSession,
) -> Handled<String> {
    let title = new.title.clone().unwrap_or_default();
    let repo = new.repo.clone();
    let token = web::bot_token(env, &form.team_id)
        .await?
        .unwrap_or_default();
    let announcement = PostMessage {
        channel: form.channel_id.clone(),
        text: format!(
            "*{title}*{} — starting for <@{}>",
            repo.map(|r| format!(" in `{r}`")).unwrap_or_default(),
            form.user_id
        ),
        thread_ts: None,
        unfurl_links: false,
        metadata: None,
    };
    // The thread first: a session that could not say where it reports would report nowhere.
    let posted = web::call(env, &token, "chat.postMessage", &announcement)
        .await
        .map_err(|e| {
            agent_ops_protocol::ApiError::new(
                agent_ops_protocol::ErrorCode::ProviderError,
                format!("Slack refused the session's message in this channel: {e}; is the app in the channel?"),
            )
        })?;
    let ts = posted.ts.unwrap_or_default();
    let target = FeedTarget::SlackThread {
        team_id: form.team_id.clone(),
        channel: form.channel_id.clone(),
        thread_ts: Some(ts.clone()),
    };
    let started = people::start(env, person, new, target).await;
    let text = match &started {
        Ok(info) => format!("{} — started by <@{}>", line(env, info), form.user_id),
        Err(_) => format!("*{title}* could not start."),
    };
    let update = UpdateMessage {
        channel: form.channel_id.clone(),
        ts,
        text,
    };
    if let Err(e) = web::call(env, &token, "chat.update", &update).await {
        worker::console_error!("slack: the session's announcement: {e}");
    }
    let info = started?;
    Ok(format!(
        "Started {}; it reports in the thread.",
        line(env, &info)
    ))
}
