//! The conversation as the client shows it, folded from the session's events. Pure: no browser
//! types, so it is unit-tested natively. Events are applied strictly in sequence order; a repeat
//! (after a reconnect or a reload) is ignored and a gap is reported, never papered over.

use std::collections::HashMap;

use agent_ops_protocol::events::{
    AgentState, EventBody, MessageRole, OpenPort, SessionEvent, SessionStatus, ToolStatus,
    TurnOutcome,
};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum TurnState {
    Queued,
    Thinking,
    RunningTool(String),
    Done,
    Failed(String),
    Interrupted,
}

impl TurnState {
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Queued | Self::Thinking | Self::RunningTool(_))
    }

    pub fn label(&self) -> String {
        match self {
            Self::Queued => "queued".into(),
            Self::Thinking => "thinking".into(),
            Self::RunningTool(tool) => format!("running {tool}"),
            Self::Done => "done".into(),
            Self::Failed(_) => "failed".into(),
            Self::Interrupted => "interrupted".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCard {
    pub call_id: String,
    pub tool: String,
    pub status: ToolStatus,
    pub input: Value,
    pub output: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Text { part_id: String, text: String },
    Tool(ToolCard),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub prompt_id: String,
    pub prompt: String,
    pub state: TurnState,
    pub items: Vec<Item>,
    pub tokens: u64,
    /// Bumped on every change, so a view keyed by it redraws only the turns that changed.
    pub rev: u64,
}

impl Turn {
    /// Streamed text goes to its part: a new part is a new paragraph after what came before.
    fn add_text(&mut self, part_id: &str, delta: &str) {
        if matches!(self.state, TurnState::RunningTool(_)) {
            self.state = TurnState::Thinking;
        }
        let existing = self.items.iter_mut().find_map(|item| match item {
            Item::Text { part_id: p, text } if p == part_id => Some(text),
            _ => None,
        });
        match existing {
            Some(text) => text.push_str(delta),
            None => self.items.push(Item::Text {
                part_id: part_id.to_owned(),
                text: delta.to_owned(),
            }),
        }
    }

    /// A tool call's card is replaced by its newest state, where it first appeared.
    fn update_tool(&mut self, card: ToolCard) {
        if self.state.is_open() {
            self.state = match card.status {
                ToolStatus::Pending | ToolStatus::Running => {
                    TurnState::RunningTool(card.tool.clone())
                }
                _ => TurnState::Thinking,
            };
        }
        let slot = self
            .items
            .iter_mut()
            .find(|item| matches!(item, Item::Tool(c) if c.call_id == card.call_id));
        match slot {
            Some(item) => *item = Item::Tool(card),
            None => self.items.push(Item::Tool(card)),
        }
    }

    fn end(&mut self, outcome: TurnOutcome, reason: Option<&str>) {
        self.state = match outcome {
            TurnOutcome::Completed => TurnState::Done,
            TurnOutcome::Interrupted => TurnState::Interrupted,
            TurnOutcome::Failed => TurnState::Failed(reason.unwrap_or("unknown").to_owned()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Already seen: a replay overlapping what this transcript holds.
    Duplicate,
    /// Events were skipped; the caller must resubscribe from `last_seq`.
    Gap {
        expected: u64,
        got: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    pub last_seq: u64,
    pub status: Option<SessionStatus>,
    pub status_reason: Option<String>,
    pub agent: Option<(AgentState, Option<String>)>,
    pub runner_connected: bool,
    /// The apps listening in the sandbox now, for their previews.
    pub ports: Vec<OpenPort>,
    runner_instance: Option<String>,
    pub turns: Vec<Turn>,
    message_turn: HashMap<String, usize>,
}

impl Transcript {
    pub fn apply(&mut self, ev: &SessionEvent) -> Applied {
        if ev.seq <= self.last_seq {
            return Applied::Duplicate;
        }
        if ev.seq != self.last_seq + 1 {
            return Applied::Gap {
                expected: self.last_seq + 1,
                got: ev.seq,
            };
        }
        self.last_seq = ev.seq;
        self.fold(&ev.body);
        Applied::Applied
    }

    fn fold(&mut self, body: &EventBody) {
        match body {
            EventBody::Status { status, reason } => {
                self.status = Some(*status);
                self.status_reason.clone_from(reason);
                if status.is_terminal() {
                    self.ports.clear();
                }
            }
            EventBody::PromptQueued {
                prompt_id, text, ..
            } => self.turns.push(Turn {
                prompt_id: prompt_id.clone(),
                prompt: text.clone(),
                state: TurnState::Queued,
                items: Vec::new(),
                tokens: 0,
                rev: 0,
            }),
            EventBody::PromptCancelled { prompt_id } => {
                // Only a queued prompt can be cancelled, and queued turns come after every turn
                // that has messages, so the message index stays valid.
                self.turns.retain(|t| &t.prompt_id != prompt_id);
            }
            EventBody::TurnStarted { prompt_id } => {
                self.with_turn(prompt_id, |t| t.state = TurnState::Thinking)
            }
            EventBody::AgentStatus { state, detail } => self.agent = Some((*state, detail.clone())),
            EventBody::MessageStarted {
                prompt_id,
                message_id,
                role,
            } => {
                if *role == MessageRole::Assistant {
                    if let Some(i) = self.turn_index(prompt_id) {
                        self.message_turn.insert(message_id.clone(), i);
                    }
                }
            }
            EventBody::TextDelta {
                message_id,
                part_id,
                delta,
            } => self.with_message(message_id, |t| t.add_text(part_id, delta)),
            EventBody::ToolUpdated {
                message_id,
                call_id,
                tool,
                status,
                input,
                output,
                error,
            } => self.with_message(message_id, |t| {
                t.update_tool(ToolCard {
                    call_id: call_id.clone(),
                    tool: tool.clone(),
                    status: *status,
                    input: input.clone(),
                    output: output.clone(),
                    error: error.clone(),
                })
            }),
            EventBody::Usage {
                prompt_id,
                input_tokens,
                output_tokens,
                ..
            } => self.with_turn(prompt_id, |t| t.tokens += input_tokens + output_tokens),
            EventBody::TurnEnded {
                prompt_id,
                outcome,
                reason,
            } => self.with_turn(prompt_id, |t| t.end(*outcome, reason.as_deref())),
            EventBody::PortsChanged { ports } => self.ports.clone_from(ports),
            EventBody::RunnerConnected { instance } => {
                self.runner_connected = true;
                // Another runner is another sandbox: the apps of the one before are gone, and
                // the new one reports its own as they listen.
                if self.runner_instance.as_ref() != Some(instance) {
                    self.ports.clear();
                    self.runner_instance = Some(instance.clone());
                }
            }
            EventBody::RunnerDisconnected { .. } => self.runner_connected = false,
        }
    }

    fn turn_index(&self, prompt_id: &str) -> Option<usize> {
        self.turns.iter().position(|t| t.prompt_id == prompt_id)
    }

    fn with_turn(&mut self, prompt_id: &str, f: impl FnOnce(&mut Turn)) {
        if let Some(i) = self.turn_index(prompt_id) {
            let turn = &mut self.turns[i];
            f(turn);
            turn.rev += 1;
        }
    }

    fn with_message(&mut self, message_id: &str, f: impl FnOnce(&mut Turn)) {
        if let Some(&i) = self.message_turn.get(message_id) {
            let turn = &mut self.turns[i];
            f(turn);
            turn.rev += 1;
        }
    }

    /// Prompts waiting behind the running turn, oldest first.
    pub fn queued(&self) -> impl Iterator<Item = &Turn> {
        self.turns.iter().filter(|t| t.state == TurnState::Queued)
    }

    pub fn running(&self) -> Option<&Turn> {
        self.turns
            .iter()
            .find(|t| t.state.is_open() && t.state != TurnState::Queued)
    }

    /// What the sandbox is doing while it starts, for the progress strip; `None` once ready.
    pub fn startup(&self) -> Option<&'static str> {
        match self.status? {
            SessionStatus::Provisioning => Some("Provisioning the sandbox"),
            SessionStatus::Starting => Some("Starting the agent"),
            SessionStatus::Disconnected => Some("Reconnecting to the sandbox"),
            _ => match self.agent {
                Some((AgentState::Starting, _)) => Some("Starting the agent"),
                Some((AgentState::Restarting, _)) => Some("Restarting the agent"),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(seq: u64, body: Value) -> SessionEvent {
        let mut v = body;
        v["seq"] = seq.into();
        v["ts"] = 0.into();
        serde_json::from_value(v).unwrap()
    }

    fn script() -> Vec<SessionEvent> {
        vec![
            ev(
                1,
                json!({"type": "session.status", "status": "provisioning"}),
            ),
            ev(
                2,
                json!({"type": "prompt.queued", "prompt_id": "p1", "client_request_id": "c", "text": "hi"}),
            ),
            ev(3, json!({"type": "turn.started", "prompt_id": "p1"})),
            ev(
                4,
                json!({"type": "message.started", "prompt_id": "p1", "message_id": "m1", "role": "assistant"}),
            ),
            ev(
                5,
                json!({"type": "text.delta", "message_id": "m1", "part_id": "a", "delta": "Hel"}),
            ),
            ev(
                6,
                json!({"type": "tool.updated", "message_id": "m1", "call_id": "t", "tool": "bash", "status": "running", "input": {"command": "ls"}}),
            ),
            ev(
                7,
                json!({"type": "text.delta", "message_id": "m1", "part_id": "a", "delta": "lo"}),
            ),
            ev(
                8,
                json!({"type": "tool.updated", "message_id": "m1", "call_id": "t", "tool": "bash", "status": "completed", "input": {"command": "ls"}, "output": "x"}),
            ),
            ev(
                9,
                json!({"type": "turn.ended", "prompt_id": "p1", "outcome": "completed"}),
            ),
        ]
    }

    #[test]
    fn folds_a_turn_with_text_and_a_tool_card() {
        let mut t = Transcript::default();
        for e in script() {
            assert_eq!(t.apply(&e), Applied::Applied);
        }
        let turn = &t.turns[0];
        assert_eq!(turn.state, TurnState::Done);
        assert_eq!(turn.items.len(), 2);
        assert_eq!(
            turn.items[0],
            Item::Text {
                part_id: "a".into(),
                text: "Hello".into()
            }
        );
        assert!(matches!(&turn.items[1], Item::Tool(c) if c.output.as_deref() == Some("x")));
    }

    #[test]
    fn a_replay_overlapping_what_is_held_changes_nothing() {
        let mut once = Transcript::default();
        let mut twice = Transcript::default();
        for e in script() {
            once.apply(&e);
            twice.apply(&e);
        }
        for e in &script()[3..] {
            assert_eq!(twice.apply(e), Applied::Duplicate);
        }
        assert_eq!(once, twice);
    }

    #[test]
    fn the_apps_listed_are_the_latest_of_this_runner() {
        let mut t = Transcript::default();
        let events = [
            json!({"type": "runner.connected", "instance": "r1"}),
            json!({"type": "ports.changed", "ports": [{"port": 5173, "process": "node"}]}),
            // The same runner back after a dropped link: its apps are still there.
            json!({"type": "runner.connected", "instance": "r1"}),
        ];
        for (i, e) in events.into_iter().enumerate() {
            t.apply(&ev(i as u64 + 1, e));
        }
        assert_eq!(t.ports.len(), 1);
        assert_eq!(t.ports[0].process.as_deref(), Some("node"));
        t.apply(&ev(
            4,
            json!({"type": "runner.connected", "instance": "r2"}),
        ));
        assert!(t.ports.is_empty(), "another runner, another sandbox");
        t.apply(&ev(
            5,
            json!({"type": "ports.changed", "ports": [{"port": 3000}]}),
        ));
        assert_eq!(t.ports[0].port, 3000);
        t.apply(&ev(
            6,
            json!({"type": "session.status", "status": "terminated"}),
        ));
        assert!(t.ports.is_empty());
    }

    #[test]
    fn a_gap_is_reported_not_applied() {
        let mut t = Transcript::default();
        let s = script();
        t.apply(&s[0]);
        assert_eq!(
            t.apply(&s[2]),
            Applied::Gap {
                expected: 2,
                got: 3
            }
        );
        assert_eq!(t.last_seq, 1);
    }

    #[test]
    fn tool_state_shows_while_running_and_cancelled_prompts_leave() {
        let mut t = Transcript::default();
        for e in &script()[..6] {
            t.apply(e);
        }
        assert_eq!(t.running().unwrap().state.label(), "running bash");
        t.apply(&ev(7, json!({"type": "prompt.queued", "prompt_id": "p2", "client_request_id": "d", "text": "next"})));
        assert_eq!(t.queued().count(), 1);
        t.apply(&ev(
            8,
            json!({"type": "prompt.cancelled", "prompt_id": "p2"}),
        ));
        assert_eq!(t.queued().count(), 0);
        assert_eq!(t.startup(), Some("Provisioning the sandbox"));
    }
}
