//! A session's conversation as a chat channel shows it (a Slack thread today; a GitHub issue
//! next): a consumer of the session's event log with a cursor of its own. Events are folded in
//! strictly in order into what the channel owes: one progress line per running turn, kept up to
//! date no more often than a channel allows, and an outbox of posts (answers, notices) each of
//! which leaves only once the channel has it. The session's object persists the feed with its
//! cursor, so a restart, an outage or a rate limit resumes where it stopped: nothing is skipped
//! and nothing is posted twice.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events::{EventBody, MessageRole, SessionEvent, ToolStatus, TurnOutcome};
use crate::SessionStatus;

/// The longest activity line (a command can be long).
const ACTIVITY_CHARS: usize = 120;

/// Where a feed posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeedTarget {
    /// A Slack thread; a direct message with the app has no `thread_ts` (the conversation is
    /// the thread).
    SlackThread {
        team_id: String,
        channel: String,
        thread_ts: Option<String>,
    },
    /// A workflow's run, which ends with the session's first turn.
    Execution { execution_id: String },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Feed {
    /// The last event folded in.
    pub cursor: u64,
    /// The turn running now, as far as the log has said.
    pub turn: Option<TurnView>,
    /// Owed to the channel, oldest first.
    pub outbox: VecDeque<Post>,
    /// How many messages of the first post the channel already has (a long answer is several).
    #[serde(default)]
    pub sent: usize,
    /// The key of a message sent without an answer (lost, or the object stopped): before it is
    /// sent again, the channel is asked whether it has it.
    #[serde(default)]
    pub pending: Option<String>,
    /// The progress message of the turn, once the channel has one.
    pub shown: Option<Shown>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnView {
    pub prompt_id: String,
    /// What the agent is doing, in a line ("running bash: cargo test").
    pub activity: String,
    /// The agent's messages in this turn.
    pub messages: Vec<String>,
    /// The turn's text so far, part by part in order.
    pub parts: Vec<(String, String)>,
}

/// A progress message the channel shows: which turn's, the channel's id for it (Slack's `ts`),
/// what it says and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    pub prompt_id: String,
    pub message: String,
    pub text: String,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "post", rename_all = "snake_case")]
pub enum Post {
    /// A turn ended: its progress line says how, and its answer follows (Markdown).
    TurnEnded {
        prompt_id: String,
        outcome: TurnOutcome,
        reason: Option<String>,
        answer: String,
    },
    /// The session ended.
    SessionEnded,
}

/// What to do next about the progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressStep {
    Create {
        text: String,
    },
    Update {
        message: String,
        text: String,
    },
    /// Changed too recently: come back at this time.
    WaitUntil(u64),
    Nothing,
}

impl Feed {
    /// Folds `event`, the one after the cursor. An event out of order is not folded (the log
    /// is read in order, so it can only be one already seen).
    pub fn fold(&mut self, event: &SessionEvent) {
        if event.seq != self.cursor + 1 {
            return;
        }
        self.cursor = event.seq;
        match &event.body {
            EventBody::TurnStarted { prompt_id } => {
                self.turn = Some(TurnView {
                    prompt_id: prompt_id.clone(),
                    activity: "thinking".into(),
                    messages: Vec::new(),
                    parts: Vec::new(),
                })
            }
            EventBody::MessageStarted {
                prompt_id,
                message_id,
                role: MessageRole::Assistant,
            } => {
                if let Some(turn) = self.turn.as_mut().filter(|t| &t.prompt_id == prompt_id) {
                    turn.messages.push(message_id.clone());
                }
            }
            EventBody::TextDelta {
                message_id,
                part_id,
                delta,
            } => {
                let Some(turn) = self.turn.as_mut() else {
                    return;
                };
                if !turn.messages.contains(message_id) {
                    return;
                }
                turn.activity = "writing the answer".into();
                match turn.parts.iter_mut().find(|(id, _)| id == part_id) {
                    Some((_, text)) => text.push_str(delta),
                    None => turn.parts.push((part_id.clone(), delta.clone())),
                }
            }
            EventBody::ToolUpdated {
                tool,
                status: ToolStatus::Pending | ToolStatus::Running,
                input,
                ..
            } => {
                if let Some(turn) = self.turn.as_mut() {
                    turn.activity = activity(tool, input);
                }
            }
            EventBody::TurnEnded {
                prompt_id,
                outcome,
                reason,
            } => {
                let answer = match self.turn.take() {
                    Some(turn) if &turn.prompt_id == prompt_id => {
                        let texts: Vec<&str> = turn.parts.iter().map(|(_, t)| t.trim()).collect();
                        texts.join("\n\n")
                    }
                    other => {
                        self.turn = other;
                        String::new()
                    }
                };
                self.outbox.push_back(Post::TurnEnded {
                    prompt_id: prompt_id.clone(),
                    outcome: *outcome,
                    reason: reason.clone(),
                    answer,
                });
            }
            EventBody::Status {
                status: SessionStatus::Terminated,
                ..
            } => self.outbox.push_back(Post::SessionEnded),
            _ => {}
        }
    }

    /// The progress line's next step at `now_ms`, changed at most once per `every_ms`.
    pub fn progress(&self, now_ms: u64, every_ms: u64) -> ProgressStep {
        let Some(turn) = &self.turn else {
            return ProgressStep::Nothing;
        };
        let text = running_line(&turn.activity);
        match &self.shown {
            Some(shown) if shown.prompt_id == turn.prompt_id => {
                if shown.text == text {
                    ProgressStep::Nothing
                } else if now_ms < shown.at_ms + every_ms {
                    ProgressStep::WaitUntil(shown.at_ms + every_ms)
                } else {
                    ProgressStep::Update {
                        message: shown.message.clone(),
                        text,
                    }
                }
            }
            _ => ProgressStep::Create { text },
        }
    }
}

pub fn running_line(activity: &str) -> String {
    format!(":hourglass_flowing_sand: Working: {activity}")
}

/// How a turn's progress line reads once it has ended.
pub fn ended_line(outcome: TurnOutcome, reason: Option<&str>) -> String {
    match (outcome, reason) {
        (TurnOutcome::Completed, _) => ":white_check_mark: Done".into(),
        (TurnOutcome::Failed, Some(why)) => format!(":x: Failed: {why}"),
        (TurnOutcome::Failed, None) => ":x: Failed".into(),
        (TurnOutcome::Interrupted, _) => ":black_square_for_stop: Interrupted".into(),
    }
}

/// "running bash: cargo test": the tool and the argument that says most about the call.
fn activity(tool: &str, input: &Value) -> String {
    let arg = ["command", "filePath", "path", "pattern", "url", "query"]
        .iter()
        .find_map(|k| input.get(k).and_then(Value::as_str))
        .or_else(|| {
            input
                .as_object()
                .and_then(|o| o.values().find_map(Value::as_str))
        });
    let line = match arg {
        Some(arg) => format!("running {tool}: {}", arg.lines().next().unwrap_or_default()),
        None => format!("running {tool}"),
    };
    match line.char_indices().nth(ACTIVITY_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(bodies: Vec<EventBody>) -> Vec<SessionEvent> {
        (1..)
            .zip(bodies)
            .map(|(seq, body)| SessionEvent { seq, ts: 0, body })
            .collect()
    }

    fn turn(prompt: &str) -> Vec<EventBody> {
        vec![
            EventBody::TurnStarted {
                prompt_id: prompt.into(),
            },
            EventBody::MessageStarted {
                prompt_id: prompt.into(),
                message_id: "m1".into(),
                role: MessageRole::Assistant,
            },
            EventBody::ToolUpdated {
                message_id: "m1".into(),
                call_id: "c1".into(),
                tool: "bash".into(),
                status: ToolStatus::Running,
                input: json!({"command": "cargo test\n--all", "description": "tests"}),
                output: None,
                error: None,
            },
            EventBody::TextDelta {
                message_id: "m1".into(),
                part_id: "t1".into(),
                delta: "All **green**".into(),
            },
            EventBody::TextDelta {
                message_id: "m1".into(),
                part_id: "t1".into(),
                delta: ".".into(),
            },
        ]
    }

    #[test]
    fn a_turn_shows_its_activity_then_owes_its_answer() {
        let mut bodies = turn("p1");
        bodies.push(EventBody::TurnEnded {
            prompt_id: "p1".into(),
            outcome: TurnOutcome::Completed,
            reason: None,
        });
        let evs = events(bodies);
        let mut feed = Feed::default();
        for e in &evs[..3] {
            feed.fold(e);
        }
        assert_eq!(
            feed.turn.as_ref().unwrap().activity,
            "running bash: cargo test"
        );
        assert_eq!(
            feed.progress(0, 2000),
            ProgressStep::Create {
                text: running_line("running bash: cargo test")
            }
        );
        for e in &evs[3..] {
            feed.fold(e);
        }
        assert_eq!(feed.cursor, 6);
        assert_eq!(feed.turn, None);
        assert_eq!(
            feed.outbox,
            [Post::TurnEnded {
                prompt_id: "p1".into(),
                outcome: TurnOutcome::Completed,
                reason: None,
                answer: "All **green**.".into()
            }]
        );
        assert_eq!(feed.progress(0, 2000), ProgressStep::Nothing);
    }

    #[test]
    fn each_event_is_folded_once_and_in_order() {
        let evs = events(turn("p1"));
        let mut feed = Feed::default();
        for e in evs.iter().chain(&evs) {
            feed.fold(e);
        }
        feed.fold(&SessionEvent {
            seq: 9,
            ts: 0,
            body: EventBody::TurnEnded {
                prompt_id: "p1".into(),
                outcome: TurnOutcome::Failed,
                reason: None,
            },
        });
        assert_eq!(feed.cursor, 5, "a gap is not jumped");
        let TurnView { parts, .. } = feed.turn.unwrap();
        assert_eq!(parts, [("t1".to_string(), "All **green**.".to_string())]);
        assert!(feed.outbox.is_empty());
    }

    #[test]
    fn the_progress_line_changes_at_most_once_per_interval() {
        let mut feed = Feed::default();
        for e in &events(turn("p1")) {
            feed.fold(e);
        }
        feed.shown = Some(Shown {
            prompt_id: "p1".into(),
            message: "1.1".into(),
            text: running_line("thinking"),
            at_ms: 10_000,
        });
        assert_eq!(feed.progress(11_000, 2000), ProgressStep::WaitUntil(12_000));
        assert_eq!(
            feed.progress(12_000, 2000),
            ProgressStep::Update {
                message: "1.1".into(),
                text: running_line("writing the answer")
            }
        );
        feed.shown.as_mut().unwrap().text = running_line("writing the answer");
        assert_eq!(feed.progress(99_000, 2000), ProgressStep::Nothing);
        feed.shown.as_mut().unwrap().prompt_id = "p0".into();
        assert!(
            matches!(feed.progress(0, 2000), ProgressStep::Create { .. }),
            "a new turn gets a line of its own"
        );
    }

    #[test]
    fn the_sessions_end_is_told_and_lines_say_how_turns_ended() {
        let mut feed = Feed::default();
        feed.fold(&SessionEvent {
            seq: 1,
            ts: 0,
            body: EventBody::Status {
                status: SessionStatus::Terminated,
                reason: None,
            },
        });
        assert_eq!(feed.outbox, [Post::SessionEnded]);
        assert_eq!(
            ended_line(TurnOutcome::Failed, Some("runner lost")),
            ":x: Failed: runner lost"
        );
        let long = activity("bash", &json!({"command": "x".repeat(500)}));
        assert_eq!(long.chars().count(), ACTIVITY_CHARS + 1);
        assert_eq!(activity("todo", &json!({})), "running todo");
    }
}
