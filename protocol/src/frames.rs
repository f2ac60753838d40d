//! WebSocket frames, one JSON object per text message, tagged by `type`.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::access::Revocation;
use crate::errors::{ApiError, ErrorCode};
use crate::events::{EventBody, SessionEvent};

/// Runner -> session Durable Object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunnerFrame {
    /// First frame on every connection. `instance` is random per runner process: a new instance
    /// means the previous process is gone, with whatever it was doing.
    Hello {
        instance: String,
        protocol: u32,
        agent: String,
    },
    /// Events numbered `first_rseq`, `first_rseq + 1`, ... in the runner's own sequence.
    Events {
        first_rseq: u64,
        events: Vec<EventBody>,
    },
    /// The runner received command `id` (it will execute it at most once).
    CommandAck { id: u64 },
    /// `busy`: the runner holds events not yet acknowledged (the answer is an `ack`).
    Heartbeat { busy: bool },
}

/// Session Durable Object -> runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToRunnerFrame {
    /// Answer to `hello`: every event up to `acked_rseq` of this instance is persisted.
    Welcome {
        acked_rseq: u64,
    },
    /// Cumulative: every event up to `rseq` is persisted. Sent in bulk, not for every frame
    /// (`delivery::ack_due`).
    Ack {
        rseq: u64,
    },
    Command {
        id: u64,
        command: Command,
    },
    Error(ApiError),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    Prompt {
        prompt_id: String,
        text: String,
    },
    Abort {
        prompt_id: String,
    },
    Stop,
    /// For the gateway: drop the cookies and close the sockets this covers.
    Revoke {
        revoked: Revocation,
    },
}

/// Client (viewer) -> session Durable Object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Prompt {
        text: String,
        client_request_id: String,
    },
    Abort {},
    Ping {},
}

/// Session Durable Object -> client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToClientFrame {
    /// Events in sequence order: first the replay after the subscriber's `after_seq`, then live.
    Events {
        events: Vec<SessionEvent>,
    },
    /// Sent once after the replay: everything up to `seq` has been delivered.
    CaughtUp {
        seq: u64,
    },
    PromptAccepted {
        client_request_id: String,
        prompt_id: String,
        duplicate: bool,
    },
    Pong {},
    /// Who is watching the session now; sent whenever that changes.
    Presence {
        viewers: Vec<Viewer>,
    },
    Error(ApiError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub login: String,
    pub role: crate::access::SessionRole,
}

/// The text of `RunnerFrame::Events` from events already serialized (the runner keeps them so).
pub fn runner_events_frame(first_rseq: u64, events: &[&str]) -> String {
    format!(
        r#"{{"type":"events","first_rseq":{first_rseq},"events":[{}]}}"#,
        events.join(",")
    )
}

/// The text of `ToClientFrame::Events` from events already serialized (the log keeps them so),
/// their JSON separated by commas.
pub fn client_events_frame(events: &str) -> String {
    [r#"{"type":"events","events":["#, events, "]}"].concat()
}

/// Parses a runner's frame. Events are nearly all it sends, and read in one pass here: serde's
/// tagged enum buffers a whole frame before it looks at its `type`, and copies its events once
/// more to read their own.
pub fn parse_runner_frame(text: &str, max_bytes: usize) -> Result<RunnerFrame, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Tag {
        Events,
    }
    #[derive(Deserialize)]
    struct Events {
        #[serde(rename = "type")]
        _type: Tag,
        first_rseq: u64,
        events: Vec<EventBody>,
    }
    if text.len() <= max_bytes {
        if let Ok(Events {
            first_rseq, events, ..
        }) = serde_json::from_str(text)
        {
            return Ok(RunnerFrame::Events { first_rseq, events });
        }
    }
    parse_frame(text, max_bytes)
}

/// Parses a frame, telling a frame of an unknown type apart from one that is not a frame at all,
/// so each gets its own stable error code.
pub fn parse_frame<T: DeserializeOwned>(text: &str, max_bytes: usize) -> Result<T, ApiError> {
    if text.len() > max_bytes {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "frame of {} bytes exceeds the {max_bytes}-byte limit",
                text.len()
            ),
        ));
    }
    // The common case, well-formed, pays for one parse; only a bad frame is parsed again to
    // tell the sender exactly what is wrong with it.
    if let Ok(frame) = serde_json::from_str::<T>(text) {
        return Ok(frame);
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::new(ErrorCode::MalformedFrame, format!("frame is not JSON: {e}")))?;
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return Err(ApiError::new(
            ErrorCode::MalformedFrame,
            "frame has no string field `type`",
        ));
    };
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("unknown variant") {
            ApiError::new(
                ErrorCode::UnknownFrameType,
                format!("unknown frame type `{kind}`"),
            )
        } else {
            ApiError::new(
                ErrorCode::MalformedFrame,
                format!("invalid `{kind}` frame: {msg}"),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_frame_reads_as_its_enum_does() {
        let delta = EventBody::TextDelta {
            message_id: "m".into(),
            part_id: "p".into(),
            delta: "d".into(),
        };
        let frames = [
            RunnerFrame::Events {
                first_rseq: 3,
                events: vec![delta.clone(), delta],
            },
            RunnerFrame::Heartbeat { busy: true },
            RunnerFrame::CommandAck { id: 2 },
        ];
        for frame in frames {
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(parse_runner_frame(&text, usize::MAX).unwrap(), frame);
        }
        // Whatever is wrong is told as the enum's parse tells it.
        for bad in [
            r#"{"type":"events","first_rseq":1}"#,
            r#"{"type":"events","first_rseq":1,"events":[{"type":"nope"}]}"#,
            r#"{"type":"nope"}"#,
            "[1]",
        ] {
            assert_eq!(
                parse_runner_frame(bad, usize::MAX).unwrap_err(),
                parse_frame::<RunnerFrame>(bad, usize::MAX).unwrap_err()
            );
        }
        let big = serde_json::to_string(&RunnerFrame::Heartbeat { busy: false }).unwrap();
        assert_eq!(
            parse_runner_frame(&big, 3).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
    }

    #[test]
    fn an_events_frame_from_json_is_the_frame() {
        let e = EventBody::PortsChanged { ports: vec![] };
        let json = serde_json::to_string(&e).unwrap();
        let text = runner_events_frame(7, &[json.as_str(), json.as_str()]);
        assert_eq!(
            serde_json::from_str::<RunnerFrame>(&text).unwrap(),
            RunnerFrame::Events {
                first_rseq: 7,
                events: vec![e.clone(), e],
            }
        );
        assert!(serde_json::from_str::<RunnerFrame>(&runner_events_frame(1, &[])).is_ok());
    }

    #[test]
    fn a_viewers_events_frame_from_json_is_the_frame() {
        let body = EventBody::PortsChanged { ports: vec![] };
        let events: Vec<String> = (1..=2)
            .map(|seq| SessionEvent::json(seq, 5, &body).unwrap())
            .collect();
        let text = client_events_frame(&events.join(","));
        let expected = (1..=2)
            .map(|seq| SessionEvent {
                seq,
                ts: 5,
                body: body.clone(),
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<ToClientFrame>(&text).unwrap(),
            ToClientFrame::Events { events: expected }
        );
        assert!(serde_json::from_str::<ToClientFrame>(&client_events_frame("")).is_ok());
    }

    #[test]
    fn parses_known_frames() {
        let f: ClientFrame = parse_frame(
            r#"{"type":"prompt","text":"hi","client_request_id":"c1"}"#,
            1024,
        )
        .unwrap();
        assert_eq!(
            f,
            ClientFrame::Prompt {
                text: "hi".into(),
                client_request_id: "c1".into()
            }
        );
        let f: ClientFrame = parse_frame(r#"{"type":"abort"}"#, 1024).unwrap();
        assert_eq!(f, ClientFrame::Abort {});
    }

    #[test]
    fn classifies_bad_frames() {
        let e = parse_frame::<ClientFrame>("nope", 1024).unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedFrame);
        let e = parse_frame::<ClientFrame>(r#"{"type":"launch"}"#, 1024).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownFrameType);
        let e = parse_frame::<ClientFrame>(r#"{"type":"prompt"}"#, 1024).unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedFrame);
        let e = parse_frame::<ClientFrame>(r#"{"text":"x"}"#, 1024).unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedFrame);
        let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(2000));
        let e = parse_frame::<ClientFrame>(&big, 1024).unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn command_round_trips() {
        let f = ToRunnerFrame::Command {
            id: 3,
            command: Command::Prompt {
                prompt_id: "p".into(),
                text: "t".into(),
            },
        };
        let s = serde_json::to_string(&f).unwrap();
        assert!(s.contains(r#""type":"command""#) && s.contains(r#""kind":"prompt""#));
        assert_eq!(parse_frame::<ToRunnerFrame>(&s, 1 << 20).unwrap(), f);
    }
}
