//! Session events: what the session's log holds and what every viewer receives.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of a session's log. `seq` is assigned by the session's Durable Object when the event
/// is persisted; it starts at 1 and has no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionEvent {
    pub seq: u64,
    /// Milliseconds since the Unix epoch, when the event was persisted.
    pub ts: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

impl SessionEvent {
    /// The JSON of `SessionEvent { seq, ts, body }`, byte for byte, written without serde's
    /// `flatten` (which buffers the body as a map first): the session object writes one per
    /// event it persists.
    pub fn json(seq: u64, ts: u64, body: &EventBody) -> serde_json::Result<String> {
        let mut numbers = itoa::Buffer::new();
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(br#"{"seq":"#);
        out.extend_from_slice(numbers.format(seq).as_bytes());
        out.extend_from_slice(br#","ts":"#);
        out.extend_from_slice(numbers.format(ts).as_bytes());
        out.push(b',');
        let body_at = out.len();
        serde_json::to_writer(&mut out, body)?;
        // The body's own `{`: a body is always an object with its `type`, so never `{}`.
        out.remove(body_at);
        String::from_utf8(out).map_err(serde::ser::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// The sandbox has been requested; no runner has connected yet.
    Provisioning,
    /// A runner is connected and its agent is starting.
    Starting,
    Idle,
    Running,
    /// The runner's link is down; it has a grace period to come back.
    Disconnected,
    Terminated,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Starting => "starting",
            Self::Idle => "idle",
            Self::Running => "running",
            Self::Disconnected => "disconnected",
            Self::Terminated => "terminated",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Terminated)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    Pending,
    Running,
    Completed,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    Completed,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Starting,
    Ready,
    Restarting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    User,
    Assistant,
}

/// A TCP port an app in the sandbox listens on, where the gateway reaches it (loopback or every
/// address), with the name of the program listening when the runner could tell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OpenPort {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// What happened. Variants a runner may emit are listed by [`EventBody::is_runner_event`]; the
/// others are produced only by the session's Durable Object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type")]
pub enum EventBody {
    #[serde(rename = "session.status")]
    Status {
        status: SessionStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    #[serde(rename = "prompt.queued")]
    PromptQueued {
        prompt_id: String,
        client_request_id: String,
        text: String,
    },
    /// A queued prompt withdrawn before it ran.
    #[serde(rename = "prompt.cancelled")]
    PromptCancelled { prompt_id: String },
    #[serde(rename = "turn.started")]
    TurnStarted { prompt_id: String },
    #[serde(rename = "agent.status")]
    AgentStatus {
        state: AgentState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    #[serde(rename = "message.started")]
    MessageStarted {
        prompt_id: String,
        message_id: String,
        role: MessageRole,
    },
    /// Text the agent streamed. Consecutive deltas of one part may be coalesced; their
    /// concatenation is exactly the part's final text.
    #[serde(rename = "text.delta")]
    TextDelta {
        message_id: String,
        part_id: String,
        delta: String,
    },
    #[serde(rename = "tool.updated")]
    ToolUpdated {
        message_id: String,
        call_id: String,
        tool: String,
        status: ToolStatus,
        #[serde(default)]
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    #[serde(rename = "usage")]
    Usage {
        prompt_id: String,
        input_tokens: u64,
        output_tokens: u64,
        #[serde(default)]
        reasoning_tokens: u64,
        #[serde(default)]
        cache_read_tokens: u64,
        #[serde(default)]
        cost_usd: f64,
    },
    #[serde(rename = "turn.ended")]
    TurnEnded {
        prompt_id: String,
        outcome: TurnOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The apps listening in the sandbox changed: `ports` is the whole new list (previews of the
    /// agent's and the sandbox's own services are never in it). A new runner instance starts
    /// from none.
    #[serde(rename = "ports.changed")]
    PortsChanged { ports: Vec<OpenPort> },
    #[serde(rename = "runner.connected")]
    RunnerConnected { instance: String },
    #[serde(rename = "runner.disconnected")]
    RunnerDisconnected { reason: String },
}

impl EventBody {
    /// Whether a runner is allowed to emit this event. Everything else is the Durable Object's
    /// to say: a runner cannot forge a queued prompt or a status change.
    pub fn is_runner_event(&self) -> bool {
        matches!(
            self,
            Self::AgentStatus { .. }
                | Self::MessageStarted { .. }
                | Self::TextDelta { .. }
                | Self::ToolUpdated { .. }
                | Self::Usage { .. }
                | Self::TurnEnded { .. }
                | Self::PortsChanged { .. }
        )
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Status { .. } => "session.status",
            Self::PromptQueued { .. } => "prompt.queued",
            Self::PromptCancelled { .. } => "prompt.cancelled",
            Self::TurnStarted { .. } => "turn.started",
            Self::AgentStatus { .. } => "agent.status",
            Self::MessageStarted { .. } => "message.started",
            Self::TextDelta { .. } => "text.delta",
            Self::ToolUpdated { .. } => "tool.updated",
            Self::Usage { .. } => "usage",
            Self::TurnEnded { .. } => "turn.ended",
            Self::PortsChanged { .. } => "ports.changed",
            Self::RunnerConnected { .. } => "runner.connected",
            Self::RunnerDisconnected { .. } => "runner.disconnected",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_flattens_with_type_tag() {
        let ev = SessionEvent {
            seq: 7,
            ts: 1,
            body: EventBody::TextDelta {
                message_id: "m".into(),
                part_id: "p".into(),
                delta: "hi".into(),
            },
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["type"], "text.delta");
        assert_eq!(json["seq"], 7);
        let back: SessionEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn an_events_json_is_what_serde_writes() {
        let bodies = [
            EventBody::TextDelta {
                message_id: "m".into(),
                part_id: "p".into(),
                delta: "quote \" and \u{e9}".into(),
            },
            EventBody::ToolUpdated {
                message_id: "m".into(),
                call_id: "c".into(),
                tool: "bash".into(),
                status: ToolStatus::Completed,
                input: serde_json::json!({"command": "ls", "n": [1, 2]}),
                output: Some("out".into()),
                error: None,
            },
            EventBody::Status {
                status: SessionStatus::Idle,
                reason: None,
            },
        ];
        for body in bodies {
            let serde = serde_json::to_string(&SessionEvent {
                seq: 42,
                ts: 1_700_000_000_123,
                body: body.clone(),
            })
            .unwrap();
            assert_eq!(
                SessionEvent::json(42, 1_700_000_000_123, &body).unwrap(),
                serde
            );
        }
    }

    #[test]
    fn runner_cannot_emit_queue_or_status_events() {
        let forged = EventBody::PromptQueued {
            prompt_id: "p".into(),
            client_request_id: "c".into(),
            text: "t".into(),
        };
        assert!(!forged.is_runner_event());
        let status = EventBody::Status {
            status: SessionStatus::Idle,
            reason: None,
        };
        assert!(!status.is_runner_event());
    }
}
