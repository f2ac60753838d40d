//! A feed's Slack thread (see `session::feeds`): the turn's progress line kept up to date with
//! `chat.update`, and what the feed owes posted in order, each message saved as delivered.

use agent_ops_protocol::feed::{ended_line, Feed, FeedTarget, Post, ProgressStep, Shown};
use agent_ops_protocol::slack::mrkdwn::{split, to_mrkdwn, MESSAGE_CHARS};
use agent_ops_protocol::slack::wire::{History, Metadata, PostMessage, Replies, UpdateMessage};
use agent_ops_protocol::TurnOutcome;
use worker::Env;

use super::web::{self, Refused};

/// A thread's progress line changes at most this often: Slack's `chat.update` allows about 50
/// a minute, and a person reads no faster.
pub const PROGRESS_EVERY_MS: u64 = 2000;

/// The key of a turn's progress line is this and the turn's prompt id.
const PROGRESS: &str = "progress:";

/// How far a delivery got.
#[derive(Debug)]
pub enum Delivered {
    All,
    /// The progress line changed too recently; come back then.
    WaitUntil(u64),
}

struct Thread<'a> {
    env: &'a Env,
    token: String,
    channel: &'a str,
    thread_ts: Option<&'a str>,
}

impl Thread<'_> {
    /// Posts `text` as the post `key`, once: the feed is saved with the key before the call,
    /// and a key still pending from an earlier try is first looked for in the thread, where
    /// the message carries it, in case Slack took it and only its answer was lost.
    async fn post(
        &self,
        feed: &mut Feed,
        key: String,
        text: String,
        saved: &impl Fn(&Feed) -> Result<(), Refused>,
    ) -> Result<String, Refused> {
        if feed.pending.as_deref() == Some(key.as_str()) {
            if let Some(ts) = self.find(&key).await? {
                feed.pending = None;
                return Ok(ts);
            }
        }
        feed.pending = Some(key.clone());
        saved(feed)?;
        let message = PostMessage {
            channel: self.channel.to_owned(),
            text,
            thread_ts: self.thread_ts.map(str::to_owned),
            unfurl_links: false,
            metadata: Some(Metadata::post(&key)),
        };
        let answer = web::call(self.env, &self.token, "chat.postMessage", &message).await?;
        feed.pending = None;
        answer
            .ts
            .ok_or_else(|| Refused::Failed("chat.postMessage answered no ts".into()))
    }

    /// The message posted as `key`, if the thread (or the DM) has it.
    async fn find(&self, key: &str) -> Result<Option<String>, Refused> {
        let answer = match self.thread_ts {
            Some(ts) => {
                let args = Replies {
                    channel: self.channel.to_owned(),
                    ts: ts.to_owned(),
                    limit: 1000,
                    include_all_metadata: true,
                };
                web::read(self.env, &self.token, "conversations.replies", &args).await?
            }
            None => {
                let args = History {
                    channel: self.channel.to_owned(),
                    limit: 200,
                    include_all_metadata: true,
                };
                web::read(self.env, &self.token, "conversations.history", &args).await?
            }
        };
        Ok(answer
            .messages
            .into_iter()
            .find(|m| {
                m.metadata
                    .as_ref()
                    .is_some_and(|d| d.event_payload.key == key)
            })
            .map(|m| m.ts))
    }

    async fn update(&self, ts: &str, text: String) -> Result<(), Refused> {
        let message = UpdateMessage {
            channel: self.channel.to_owned(),
            ts: ts.to_owned(),
            text,
        };
        web::call(self.env, &self.token, "chat.update", &message).await?;
        Ok(())
    }
}

/// The messages of an ended turn's answer.
fn answer_messages(outcome: TurnOutcome, reason: Option<&str>, answer: &str) -> Vec<String> {
    let mut text = to_mrkdwn(answer);
    if text.is_empty() {
        text = match outcome {
            TurnOutcome::Completed => "Done, with nothing to say.".into(),
            TurnOutcome::Failed => {
                format!("The turn failed: {}", reason.unwrap_or("the agent stopped"))
            }
            TurnOutcome::Interrupted => "Interrupted before it answered.".into(),
        };
    } else if outcome == TurnOutcome::Interrupted {
        text.push_str("\n\n_(interrupted)_");
    }
    split(&text, MESSAGE_CHARS)
}

/// Delivers what `feed` owes its thread at `now_ms`, calling `save` after each message Slack
/// has, so a retry never posts it again.
pub async fn deliver(
    env: &Env,
    target: &FeedTarget,
    feed: &mut Feed,
    now_ms: u64,
    save: impl Fn(&Feed) -> worker::Result<()>,
) -> Result<Delivered, Refused> {
    // Most wakes, while a turn streams, owe nothing yet: they need not read the token.
    if feed.outbox.is_empty() && feed.pending.is_none() {
        match feed.progress(now_ms, PROGRESS_EVERY_MS) {
            ProgressStep::Nothing => return Ok(Delivered::All),
            ProgressStep::WaitUntil(at) => return Ok(Delivered::WaitUntil(at)),
            ProgressStep::Create { .. } | ProgressStep::Update { .. } => {}
        }
    }
    let FeedTarget::SlackThread {
        team_id,
        channel,
        thread_ts,
    } = target
    else {
        return Err(Refused::Failed(format!("{target:?} is not a Slack thread")));
    };
    let token = web::bot_token(env, team_id)
        .await
        .map_err(|e| Refused::Failed(e.to_string()))?
        .ok_or_else(|| Refused::Failed(format!("no Slack bot token for {team_id}")))?;
    let thread = Thread {
        env,
        token,
        channel,
        thread_ts: thread_ts.as_deref(),
    };
    let saved = |feed: &Feed| save(feed).map_err(|e| Refused::Failed(e.to_string()));
    // A progress line sent without an answer: found, it is the line to keep up to date (the
    // turn may have ended since).
    let pending_line = feed
        .pending
        .as_deref()
        .and_then(|k| k.strip_prefix(PROGRESS));
    if let Some(prompt_id) = pending_line.map(str::to_owned) {
        if let Some(ts) = thread.find(&format!("{PROGRESS}{prompt_id}")).await? {
            feed.shown = Some(Shown {
                prompt_id,
                message: ts,
                text: String::new(),
                at_ms: 0,
            });
        }
        feed.pending = None;
        saved(feed)?;
    }
    while let Some(post) = feed.outbox.front().cloned() {
        match post {
            Post::TurnEnded {
                prompt_id,
                outcome,
                reason,
                answer,
            } => {
                let line = ended_line(outcome, reason.as_deref());
                if let Some(shown) = feed
                    .shown
                    .as_mut()
                    .filter(|s| s.prompt_id == prompt_id && s.text != line)
                {
                    thread.update(&shown.message, line.clone()).await?;
                    shown.text = line;
                    saved(feed)?;
                }
                let messages = answer_messages(outcome, reason.as_deref(), &answer);
                while feed.sent < messages.len() {
                    let key = format!("answer:{prompt_id}:{}", feed.sent);
                    let text = messages[feed.sent].clone();
                    thread.post(feed, key, text, &saved).await?;
                    feed.sent += 1;
                    saved(feed)?;
                }
            }
            Post::SessionEnded => {
                let text = "This session has ended. Mention me to start a new one.".into();
                thread.post(feed, "ended".into(), text, &saved).await?;
            }
        }
        feed.outbox.pop_front();
        feed.sent = 0;
        saved(feed)?;
    }
    match feed.progress(now_ms, PROGRESS_EVERY_MS) {
        ProgressStep::Nothing => Ok(Delivered::All),
        ProgressStep::WaitUntil(at) => Ok(Delivered::WaitUntil(at)),
        ProgressStep::Create { text } => {
            let prompt_id = feed.turn.as_ref().map(|t| t.prompt_id.clone());
            let key = format!("{PROGRESS}{}", prompt_id.as_deref().unwrap_or_default());
            let ts = thread.post(feed, key, text.clone(), &saved).await?;
            feed.shown = prompt_id.map(|prompt_id| Shown {
                prompt_id,
                message: ts,
                text,
                at_ms: now_ms,
            });
            saved(feed)?;
            Ok(Delivered::All)
        }
        ProgressStep::Update { message, text } => {
            thread.update(&message, text.clone()).await?;
            if let Some(shown) = feed.shown.as_mut() {
                shown.text = text;
                shown.at_ms = now_ms;
            }
            saved(feed)?;
            Ok(Delivered::All)
        }
    }
}
