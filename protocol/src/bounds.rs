//! How big one event, and one batch of them, may be on the runner's link. Nothing an agent does
//! may wedge a session: an edit's diff, a file it read, a tool's output or a long answer can be
//! any size, and a frame over the link's limit could never be delivered. So the runner bounds
//! each event before it keeps it (text cut with a marker saying how much was cut; an answer's
//! text split, losing nothing) and each batch by bytes as well as by count.

use serde_json::Value;

use crate::events::EventBody;

/// The most text one field of an event carries (a tool's output, its input's strings, a delta).
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// The most a tool's whole input carries, once serialized.
pub const MAX_INPUT_BYTES: usize = 128 * 1024;
/// Events per batch: enough for a burst of deltas.
pub const BATCH_EVENTS: usize = 256;
/// Bytes per batch (events' JSON): far below the link's frame limit, with room for the frame.
pub const BATCH_BYTES: usize = 1024 * 1024;

/// The close code with which the session object refuses a runner's frame over the link's limit
/// (it cannot be acknowledged, so the runner would send it forever): the runner then sends
/// smaller batches.
pub const FRAME_TOO_LARGE: u16 = 4413;

/// The largest char boundary of `s` at or before `at`.
fn floor(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0)
}

/// `s` cut to about `max` bytes, keeping its head and its tail (a command's last lines say how
/// it ended), with a marker between them saying how much was cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let head = floor(s, max / 2);
    let mut tail = s.len() - max / 2;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n[... {} bytes cut by Agent Ops ...]\n{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

/// Every string in a tool's input cut to `MAX_FIELD_BYTES`; if the whole is still too big, a
/// note of its size in its place.
fn cut_input(input: Value) -> Value {
    fn walk(v: Value) -> Value {
        match v {
            Value::String(s) if s.len() > MAX_FIELD_BYTES => {
                Value::String(cut(&s, MAX_FIELD_BYTES))
            }
            Value::Array(a) => Value::Array(a.into_iter().map(walk).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, walk(v))).collect()),
            v => v,
        }
    }
    let input = walk(input);
    let size = serde_json::to_string(&input).map_or(0, |s| s.len());
    if size <= MAX_INPUT_BYTES {
        return input;
    }
    serde_json::json!({ "cut_by_agent_ops": format!("the tool's input was {size} bytes") })
}

/// `body` made small enough to travel: one event, or for an answer's text several deltas whose
/// concatenation is the original.
pub fn bounded(body: EventBody) -> Vec<EventBody> {
    match body {
        EventBody::TextDelta {
            message_id,
            part_id,
            delta,
        } if delta.len() > MAX_FIELD_BYTES => {
            let mut pieces = Vec::new();
            let mut rest = delta.as_str();
            while !rest.is_empty() {
                let at = match floor(rest, MAX_FIELD_BYTES) {
                    0 => rest.len(),
                    at => at,
                };
                pieces.push(EventBody::TextDelta {
                    message_id: message_id.clone(),
                    part_id: part_id.clone(),
                    delta: rest[..at].to_owned(),
                });
                rest = &rest[at..];
            }
            pieces
        }
        EventBody::ToolUpdated {
            message_id,
            call_id,
            tool,
            status,
            input,
            output,
            error,
        } => vec![EventBody::ToolUpdated {
            message_id,
            call_id,
            tool: cut(&tool, 256),
            status,
            input: cut_input(input),
            output: output.map(|o| cut(&o, MAX_FIELD_BYTES)),
            error: error.map(|e| cut(&e, MAX_FIELD_BYTES)),
        }],
        EventBody::AgentStatus { state, detail } => vec![EventBody::AgentStatus {
            state,
            detail: detail.map(|d| cut(&d, MAX_FIELD_BYTES)),
        }],
        EventBody::TurnEnded {
            prompt_id,
            outcome,
            reason,
        } => vec![EventBody::TurnEnded {
            prompt_id,
            outcome,
            reason: reason.map(|r| cut(&r, MAX_FIELD_BYTES)),
        }],
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ToolStatus;

    fn tool(input: Value, output: &str) -> EventBody {
        EventBody::ToolUpdated {
            message_id: "m".into(),
            call_id: "c".into(),
            tool: "bash".into(),
            status: ToolStatus::Completed,
            input,
            output: Some(output.to_owned()),
            error: None,
        }
    }

    #[test]
    fn a_cut_keeps_head_and_tail_and_says_how_much_went() {
        let s = format!("{}{}", "a".repeat(100_000), "é".repeat(50_000));
        let c = cut(&s, 1000);
        assert!(c.len() < 1100, "{}", c.len());
        assert!(c.starts_with("aaaa") && c.ends_with("éé"));
        let (head, rest) = c.split_once("\n[... ").unwrap();
        let (n, tail) = rest.split_once(" bytes cut by Agent Ops ...]\n").unwrap();
        assert_eq!(
            n.parse::<usize>().unwrap(),
            s.len() - head.len() - tail.len()
        );
        assert_eq!(cut("short", 1000), "short");
    }

    #[test]
    fn every_event_is_bounded_and_text_is_split_not_lost() {
        let huge = "x".repeat(5 << 20);
        let [t] = bounded(tool(
            serde_json::json!({"content": huge, "path": "a"}),
            &huge,
        ))
        .try_into()
        .unwrap();
        let size = serde_json::to_string(&t).unwrap().len();
        assert!(size < MAX_INPUT_BYTES + 2 * MAX_FIELD_BYTES, "{size}");
        let EventBody::ToolUpdated { input, output, .. } = t else {
            unreachable!()
        };
        assert_eq!(input["path"], "a");
        assert!(output.unwrap().contains("bytes cut by Agent Ops"));
        let many: serde_json::Map<String, Value> = (0..100)
            .map(|i| (format!("k{i}"), Value::String("y".repeat(60_000))))
            .collect();
        let [t] = bounded(tool(Value::Object(many), "")).try_into().unwrap();
        let EventBody::ToolUpdated { input, .. } = t else {
            unreachable!()
        };
        assert!(input["cut_by_agent_ops"]
            .as_str()
            .unwrap()
            .contains("bytes"));

        let text = "ü".repeat(200_000);
        let pieces = bounded(EventBody::TextDelta {
            message_id: "m".into(),
            part_id: "p".into(),
            delta: text.clone(),
        });
        assert!(pieces.len() > 1);
        let mut joined = String::new();
        for p in pieces {
            let EventBody::TextDelta { delta, .. } = p else {
                unreachable!()
            };
            assert!(delta.len() <= MAX_FIELD_BYTES);
            joined.push_str(&delta);
        }
        assert_eq!(joined, text);
    }
}
