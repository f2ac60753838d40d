//! The Events API: a mention starts a session bound to its thread; every later message of a
//! person in that thread is one of its prompts, run in order, exactly once; `-stop` alone
//! interrupts the running turn. A direct message with the app is a thread of its own.
//!
//! Exactly once, though Slack delivers an event until it is answered and sends a mention twice
//! (as `app_mention` and as `message`): a prompt's request id is the message's own
//! (`slack:<team>:<channel>:<ts>`), which the session's object accepts once; and an event is
//! claimed before it is handled, so a retry that arrives while it is handled does nothing.

use agent_ops_protocol::api::{CreateSession, SlackEventAck};
use agent_ops_protocol::feed::FeedTarget;
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::session_calls::Prompt;
use agent_ops_protocol::slack::prompt_text;
use agent_ops_protocol::slack::wire::{
    Envelope, Event, Message, PostEphemeral, PostMessage, Replies,
};
use agent_ops_protocol::ErrorCode;
use serde::Serialize;
use worker::Env;

use super::people::{self, sentence};
use super::{link, session_url, web};
use crate::db::{slack, Db};
use crate::edge::auth::Principal;
use crate::edge::http::{answer, now_ms, Failure, Handled};

/// A claim older than this failed midway (the Worker stopped): Slack's retry takes it over.
const CLAIM_STALE_MS: u64 = 30_000;
/// How much of a thread a session started inside it is given as context.
const CONTEXT_MESSAGES: u32 = 20;
const STOP: &str = "-stop";

pub async fn handle(env: &Env, body: &[u8]) -> Handled {
    let ack = SlackEventAck::default();
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        // Signed by Slack but not an envelope we read: answering anything else would only
        // make Slack send it again.
        return answer::<endpoint::SlackEvents>(&ack);
    };
    if let Envelope::UrlVerification { challenge } = envelope {
        return answer::<endpoint::SlackEvents>(&SlackEventAck {
            challenge: Some(challenge),
        });
    }
    if let Envelope::EventCallback {
        team_id,
        event_id,
        event,
        ..
    } = envelope
    {
        let (message, mentioned) = match *event {
            Event::AppMention(m) => (m, true),
            Event::Message(m) => (m, false),
            Event::AppUninstalled {} | Event::TokensRevoked {} => {
                super::install::forget(env, &team_id).await?;
                return answer::<endpoint::SlackEvents>(&ack);
            }
            Event::Other => return answer::<endpoint::SlackEvents>(&ack),
        };
        if message.is_a_persons() {
            on_message(env, &team_id, &event_id, &message, mentioned).await?;
        }
    }
    answer::<endpoint::SlackEvents>(&ack)
}

/// The conversation a message belongs to, as the platform binds it.
struct Conversation<'a> {
    env: &'a Env,
    token: String,
    team: &'a str,
    message: &'a Message,
    /// None in a direct message, which is one conversation.
    thread: Option<String>,
}

impl Conversation<'_> {
    fn target(&self) -> FeedTarget {
        FeedTarget::SlackThread {
            team_id: self.team.to_owned(),
            channel: self.message.channel.clone(),
            thread_ts: self.thread.clone(),
        }
    }

    /// The message's own id, as the prompt's request id: the same message is one prompt.
    fn request_id(&self) -> String {
        format!(
            "slack:{}:{}:{}",
            self.team, self.message.channel, self.message.ts
        )
    }

    async fn say<T: Serialize>(&self, method: &str, body: &T) {
        if let Err(e) = web::call(self.env, &self.token, method, body).await {
            worker::console_error!("slack {method}: {e}");
        }
    }

    /// In the thread, for everyone.
    async fn post(&self, text: String) {
        let message = PostMessage {
            channel: self.message.channel.clone(),
            text,
            thread_ts: self.thread.clone(),
            unfurl_links: false,
            metadata: None,
        };
        self.say("chat.postMessage", &message).await
    }

    /// To the person who wrote, alone.
    async fn tell(&self, text: String) {
        let message = PostEphemeral {
            channel: self.message.channel.clone(),
            user: self.message.user.clone().unwrap_or_default(),
            text,
            thread_ts: self.thread.clone(),
        };
        self.say("chat.postEphemeral", &message).await
    }

    /// The thread's earlier messages, as the context of a session started inside it.
    async fn context(&self) -> String {
        let Some(thread) = self.message.thread_ts.as_deref() else {
            return String::new();
        };
        let args = Replies {
            channel: self.message.channel.clone(),
            ts: thread.to_owned(),
            limit: CONTEXT_MESSAGES,
            include_all_metadata: false,
        };
        let earlier = match web::read(self.env, &self.token, "conversations.replies", &args).await {
            Ok(answer) => answer.messages,
            Err(e) => {
                worker::console_error!("slack conversations.replies: {e}");
                return String::new();
            }
        };
        let lines: Vec<String> = earlier
            .iter()
            .filter(|m| m.ts != self.message.ts && !m.text.trim().is_empty())
            .map(|m| {
                let who = m
                    .user
                    .as_deref()
                    .map_or("a bot".into(), |u| format!("<@{u}>"));
                format!("{who}: {}", m.text.trim())
            })
            .collect();
        match lines.is_empty() {
            true => String::new(),
            false => format!("Earlier in this Slack thread:\n{}\n\n", lines.join("\n")),
        }
    }
}

async fn on_message(
    env: &Env,
    team: &str,
    event_id: &str,
    message: &Message,
    mentioned: bool,
) -> Handled<()> {
    let direct = message.channel_type.as_deref() == Some("im");
    let thread = (!direct).then(|| message.thread().to_owned());
    let db = Db::of(env)?;
    let key = thread.as_deref().unwrap_or_default();
    let bound = slack::thread_session(&db, team, &message.channel, key).await?;
    if bound.is_none() && !mentioned && !direct {
        // People talking in a channel, not to the app: nothing is claimed or read for them.
        return Ok(());
    }
    if !slack::claim_event(&db, event_id, now_ms(), CLAIM_STALE_MS).await? {
        return Ok(());
    }
    // Done only once handled: a failure answers Slack with an error, and Slack's retry (once
    // the claim has gone stale) does it again.
    act(env, team, message, mentioned, thread, bound).await?;
    slack::event_done(&db, event_id).await?;
    Ok(())
}

/// What a message to the app does, once its event is claimed.
async fn act(
    env: &Env,
    team: &str,
    message: &Message,
    mentioned: bool,
    thread: Option<String>,
    bound: Option<String>,
) -> Handled<()> {
    let db = Db::of(env)?;
    let user = message.user.as_deref().unwrap_or_default();
    let (allowed, person, token) = futures::join!(
        slack::channel_allowed(&db, team, &message.channel),
        people::linked(env, team, user),
        web::bot_token(env, team),
    );
    let conversation = Conversation {
        env,
        token: token?.unwrap_or_default(),
        team,
        message,
        thread,
    };
    if !allowed? {
        conversation
            .tell("Agent Ops does not work in this channel; an administrator can enable it in Settings.".into())
            .await;
        return Ok(());
    }
    let Some(person) = person? else {
        conversation.tell(link::offer(env, team, user).await?).await;
        return Ok(());
    };
    let text = prompt_text(&message.text);
    let text = text.as_str();
    let done = match bound {
        Some(session_id) if text == STOP => people::stop(env, &person, &session_id).await,
        Some(session_id) => {
            let prompt = Prompt {
                text: text.to_owned(),
                client_request_id: conversation.request_id(),
            };
            match people::prompt(env, &person, &session_id, prompt).await {
                Err(Failure::Api(e)) if e.code == ErrorCode::SessionTerminated && mentioned => {
                    start(&conversation, &person, text).await
                }
                Err(Failure::Api(e)) if e.code == ErrorCode::SessionTerminated => {
                    conversation
                        .post(format!(
                            "This thread's session has ended (<{}|see it>). Mention me to start a new one.",
                            session_url(env, &session_id)
                        ))
                        .await;
                    Ok(())
                }
                other => other.map(|_| ()),
            }
        }
        None => start(&conversation, &person, text).await,
    };
    if let Err(failure) = done {
        conversation.tell(sentence(failure)).await;
    }
    Ok(())
}

/// A session for the conversation, its first prompt the message (with the thread before it).
async fn start(conversation: &Conversation<'_>, person: &Principal, text: &str) -> Handled<()> {
    if text.is_empty() {
        conversation
            .tell(
                "Tell me what to do after mentioning me, e.g. `@Agent Ops fix the failing test`."
                    .into(),
            )
            .await;
        return Ok(());
    }
    let env = conversation.env;
    let new = CreateSession {
        title: Some(
            text.lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(80)
                .collect(),
        ),
        ..Default::default()
    };
    let info = people::start(env, person, new, conversation.target()).await?;
    let prompt = Prompt {
        text: format!("{}{text}", conversation.context().await),
        client_request_id: conversation.request_id(),
    };
    crate::session::call(env, &info.id, prompt).await?;
    conversation
        .post(format!(
            "On it: <{}|session `{}`>. Reply in this thread to add to it; `-stop` interrupts.",
            session_url(env, &info.id),
            info.id
        ))
        .await;
    Ok(())
}
