//! Turns OpenCode's event stream (and, after a gap, its message list) into protocol events.
//! Pure: it sees JSON values and returns `EventBody`s, so every rule is unit-tested.
//!
//! The stream is known to stall and to drop events, so nothing here trusts it to be complete:
//! `reconcile` compares what was streamed with OpenCode's stored messages and emits exactly the
//! missing text, so the concatenated deltas always equal the agent's final text.

use std::collections::{HashMap, HashSet};

use agent_ops_protocol::events::MessageRole;
use agent_ops_protocol::{EventBody, ToolStatus};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    Other,
}

#[derive(Debug)]
struct Part {
    kind: PartKind,
    message_id: String,
    /// What has been emitted for this part.
    streamed: String,
    /// What the event stream's deltas add up to, which may lag behind `streamed` when a
    /// reconciliation already emitted text the stream delivers later.
    from_stream: String,
    tool: Option<(ToolStatus, Value)>,
}

impl Part {
    /// Learns that the part's text is at least `known`; returns what was not emitted yet. Both
    /// the stream and the stored messages report through here, so neither can repeat the other.
    fn advance(&mut self, known: &str) -> Option<String> {
        let missing = known
            .strip_prefix(self.streamed.as_str())
            .filter(|m| !m.is_empty())?
            .to_owned();
        self.streamed.push_str(&missing);
        Some(missing)
    }
}

/// Signals about the agent's own state that drive the turn, apart from the events it emits.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    Busy,
    Idle,
    Error(String),
}

#[derive(Debug)]
pub struct Translator {
    prompt_id: String,
    session_id: String,
    assistant: HashSet<String>,
    parts: HashMap<String, Part>,
    /// Text streamed for parts not known yet: OpenCode may publish a part's first deltas before
    /// the part itself (or its message), and they are the stream's, not to be lost to the poll.
    early: HashMap<String, String>,
}

fn tool_status(s: &str) -> ToolStatus {
    match s {
        "running" => ToolStatus::Running,
        "completed" => ToolStatus::Completed,
        "error" => ToolStatus::Error,
        _ => ToolStatus::Pending,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Translator {
    pub fn new(prompt_id: &str, session_id: &str) -> Self {
        Self {
            prompt_id: prompt_id.to_owned(),
            session_id: session_id.to_owned(),
            assistant: HashSet::new(),
            parts: HashMap::new(),
            early: HashMap::new(),
        }
    }

    fn start_message(&mut self, id: &str, out: &mut Vec<EventBody>) {
        if self.assistant.insert(id.to_owned()) {
            out.push(EventBody::MessageStarted {
                prompt_id: self.prompt_id.clone(),
                message_id: id.to_owned(),
                role: MessageRole::Assistant,
            });
        }
    }

    /// One event from `GET /event`.
    pub fn on_event(&mut self, ev: &Value) -> (Vec<EventBody>, Option<Signal>) {
        let mut out = Vec::new();
        let props = &ev["properties"];
        let session = props
            .get("sessionID")
            .or_else(|| props.get("part").and_then(|p| p.get("sessionID")))
            .or_else(|| props.get("info").and_then(|i| i.get("sessionID")))
            .and_then(Value::as_str);
        if session.is_some_and(|s| s != self.session_id) {
            return (out, None);
        }
        let signal = match str_of(ev, "type") {
            "message.updated" => {
                let info = &props["info"];
                if str_of(info, "role") == "assistant" {
                    self.start_message(str_of(info, "id"), &mut out);
                }
                None
            }
            "message.part.updated" => {
                self.on_part(&props["part"], &mut out);
                None
            }
            "message.part.delta" => {
                let part_id = str_of(props, "partID");
                if str_of(props, "field") == "text" {
                    let delta = str_of(props, "delta");
                    match self.parts.get_mut(part_id) {
                        Some(part) if part.kind == PartKind::Text => {
                            part.from_stream.push_str(delta);
                            let known = part.from_stream.clone();
                            if let Some(delta) = part.advance(&known) {
                                out.push(EventBody::TextDelta {
                                    message_id: part.message_id.clone(),
                                    part_id: part_id.to_owned(),
                                    delta,
                                });
                            }
                        }
                        Some(_) => {}
                        None => self
                            .early
                            .entry(part_id.to_owned())
                            .or_default()
                            .push_str(delta),
                    }
                }
                None
            }
            "session.status" => match str_of(&props["status"], "type") {
                "idle" => Some(Signal::Idle),
                "busy" => Some(Signal::Busy),
                _ => None,
            },
            "session.idle" => Some(Signal::Idle),
            "session.error" => {
                let err = &props["error"];
                let msg = err["data"]["message"]
                    .as_str()
                    .or_else(|| err["name"].as_str())
                    .unwrap_or("agent error");
                Some(Signal::Error(msg.to_owned()))
            }
            _ => None,
        };
        (out, signal)
    }

    fn on_part(&mut self, part: &Value, out: &mut Vec<EventBody>) {
        let message_id = str_of(part, "messageID");
        // Parts of the user's own message (the prompt) are not the agent's output.
        if !self.assistant.contains(message_id) {
            return;
        }
        let id = str_of(part, "id").to_owned();
        match str_of(part, "type") {
            "text" => {
                let entry = self.parts.entry(id.clone()).or_insert_with(|| Part {
                    kind: PartKind::Text,
                    message_id: message_id.to_owned(),
                    streamed: String::new(),
                    from_stream: String::new(),
                    tool: None,
                });
                if let Some(early) = self.early.remove(&id) {
                    entry.from_stream.push_str(&early);
                }
                // The part's text as stored, then as streamed where the stream is ahead.
                let streamed = entry.from_stream.clone();
                let delta: String = [str_of(part, "text"), streamed.as_str()]
                    .into_iter()
                    .filter_map(|known| entry.advance(known))
                    .collect();
                if !delta.is_empty() {
                    out.push(EventBody::TextDelta {
                        message_id: message_id.to_owned(),
                        part_id: id,
                        delta,
                    });
                }
            }
            "tool" => {
                let state = &part["state"];
                let status = tool_status(str_of(state, "status"));
                let input = state.get("input").cloned().unwrap_or(Value::Null);
                let entry = self.parts.entry(id).or_insert_with(|| Part {
                    kind: PartKind::Other,
                    message_id: message_id.to_owned(),
                    streamed: String::new(),
                    from_stream: String::new(),
                    tool: None,
                });
                if entry.tool.as_ref() == Some(&(status, input.clone())) {
                    return;
                }
                entry.tool = Some((status, input.clone()));
                out.push(EventBody::ToolUpdated {
                    message_id: message_id.to_owned(),
                    call_id: str_of(part, "callID").to_owned(),
                    tool: str_of(part, "tool").to_owned(),
                    status,
                    input,
                    output: state
                        .get("output")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    error: state
                        .get("error")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
            _ => {
                self.parts.entry(id).or_insert_with(|| Part {
                    kind: PartKind::Other,
                    message_id: message_id.to_owned(),
                    streamed: String::new(),
                    from_stream: String::new(),
                    tool: None,
                });
            }
        }
    }

    /// Brings the stream up to date with OpenCode's stored messages of this turn (as returned
    /// by `GET /session/:id/message`, already cut to the turn's messages).
    pub fn reconcile(&mut self, messages: &[Value]) -> Vec<EventBody> {
        let mut out = Vec::new();
        for m in messages {
            let info = &m["info"];
            if str_of(info, "role") != "assistant" {
                continue;
            }
            self.start_message(str_of(info, "id"), &mut out);
            for part in m["parts"].as_array().into_iter().flatten() {
                self.on_part(part, &mut out);
            }
        }
        out
    }

    /// Token usage of the turn, from the stored messages (authoritative, counted once).
    pub fn usage(&self, messages: &[Value]) -> EventBody {
        let (mut input, mut output, mut reasoning, mut cache_read, mut cost) = (0, 0, 0, 0, 0.0);
        for m in messages
            .iter()
            .filter(|m| str_of(&m["info"], "role") == "assistant")
        {
            let t = &m["info"]["tokens"];
            input += t["input"].as_u64().unwrap_or(0);
            output += t["output"].as_u64().unwrap_or(0);
            reasoning += t["reasoning"].as_u64().unwrap_or(0);
            cache_read += t["cache"]["read"].as_u64().unwrap_or(0);
            cost += m["info"]["cost"].as_f64().unwrap_or(0.0);
        }
        EventBody::Usage {
            prompt_id: self.prompt_id.clone(),
            input_tokens: input,
            output_tokens: output,
            reasoning_tokens: reasoning,
            cache_read_tokens: cache_read,
            cost_usd: cost,
        }
    }
}

/// How the turn ended, judged from its stored messages: the last assistant message carries the
/// error, if any (an abort shows up as `MessageAbortedError`).
pub fn turn_error(messages: &[Value]) -> Option<(bool, String)> {
    let last = messages
        .iter()
        .rev()
        .find(|m| str_of(&m["info"], "role") == "assistant")?;
    let err = last["info"].get("error")?;
    let name = str_of(err, "name");
    let msg = err["data"]["message"].as_str().unwrap_or(name).to_owned();
    Some((name == "MessageAbortedError", msg))
}

/// Whether the turn's stored messages show it finished: an assistant message that completed
/// with a final reason (not a tool-call step) or with an error.
pub fn turn_finished(messages: &[Value]) -> bool {
    messages
        .iter()
        .rev()
        .find(|m| str_of(&m["info"], "role") == "assistant")
        .is_some_and(|m| {
            let info = &m["info"];
            info.get("error").is_some()
                || (info["time"].get("completed").is_some()
                    && str_of(info, "finish") != "tool-calls")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(t: &str, props: Value) -> Value {
        json!({"type": t, "properties": props})
    }

    fn assistant(id: &str) -> Value {
        ev(
            "message.updated",
            json!({"sessionID": "s", "info": {"id": id, "role": "assistant", "sessionID": "s"}}),
        )
    }

    fn text_part(msg: &str, id: &str, text: &str) -> Value {
        ev(
            "message.part.updated",
            json!({"sessionID": "s", "part": {"id": id, "messageID": msg, "sessionID": "s", "type": "text", "text": text}}),
        )
    }

    fn delta(msg: &str, id: &str, d: &str) -> Value {
        ev(
            "message.part.delta",
            json!({"sessionID": "s", "messageID": msg, "partID": id, "field": "text", "delta": d}),
        )
    }

    fn all_text(events: &[EventBody]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                EventBody::TextDelta { delta, .. } => Some(delta.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn deltas_streamed_before_their_part_is_known_are_kept() {
        let mut t = Translator::new("p", "s");
        let mut out = Vec::new();
        for e in [
            delta("m1", "t1", "Hel"),
            assistant("m1"),
            delta("m1", "t1", "lo"),
            text_part("m1", "t1", "He"),
            delta("m1", "t1", " wor"),
            delta("m1", "t1", "ld"),
            text_part("m1", "t1", "Hello world"),
        ] {
            out.extend(t.on_event(&e).0);
        }
        assert_eq!(all_text(&out), "Hello world");
        let deltas = out
            .iter()
            .filter(|e| matches!(e, EventBody::TextDelta { .. }))
            .count();
        assert_eq!(
            deltas, 3,
            "the early text at once, then each delta: {out:?}"
        );
    }

    #[test]
    fn streams_deltas_and_ignores_the_final_duplicate() {
        let mut t = Translator::new("p", "s");
        let mut out = Vec::new();
        for e in [
            assistant("m1"),
            text_part("m1", "t1", ""),
            delta("m1", "t1", "Hel"),
            delta("m1", "t1", "lo"),
            text_part("m1", "t1", "Hello"),
        ] {
            out.extend(t.on_event(&e).0);
        }
        assert!(matches!(out[0], EventBody::MessageStarted { .. }));
        assert_eq!(all_text(&out), "Hello");
    }

    #[test]
    fn reconcile_emits_exactly_the_missing_text() {
        let mut t = Translator::new("p", "s");
        let mut out = Vec::new();
        for e in [
            assistant("m1"),
            text_part("m1", "t1", ""),
            delta("m1", "t1", "Hel"),
        ] {
            out.extend(t.on_event(&e).0);
        }
        let stored = vec![json!({"info": {"id": "m1", "role": "assistant"},
            "parts": [{"id": "t1", "messageID": "m1", "type": "text", "text": "Hello world"}]})];
        out.extend(t.reconcile(&stored));
        assert_eq!(all_text(&out), "Hello world");
        assert!(
            t.reconcile(&stored).is_empty(),
            "reconciling twice adds nothing"
        );
    }

    #[test]
    fn a_delta_arriving_after_reconciliation_is_not_repeated() {
        let mut t = Translator::new("p", "s");
        let mut out = Vec::new();
        for e in [
            assistant("m1"),
            text_part("m1", "t1", ""),
            delta("m1", "t1", "Hello "),
        ] {
            out.extend(t.on_event(&e).0);
        }
        let stored = vec![json!({"info": {"id": "m1", "role": "assistant"},
            "parts": [{"id": "t1", "messageID": "m1", "type": "text", "text": "Hello world"}]})];
        out.extend(t.reconcile(&stored));
        // The stream was only late: its deltas now bring nothing new.
        out.extend(t.on_event(&delta("m1", "t1", "wor")).0);
        out.extend(t.on_event(&delta("m1", "t1", "ld")).0);
        out.extend(t.on_event(&delta("m1", "t1", "!")).0);
        assert_eq!(all_text(&out), "Hello world!");
    }

    #[test]
    fn user_parts_and_other_sessions_are_ignored() {
        let mut t = Translator::new("p", "s");
        let (out, _) = t.on_event(&text_part("user-msg", "u1", "the prompt"));
        assert!(out.is_empty());
        let other = ev(
            "message.updated",
            json!({"sessionID": "other", "info": {"id": "x", "role": "assistant"}}),
        );
        assert!(t.on_event(&other).0.is_empty());
    }

    #[test]
    fn tool_updates_only_on_change() {
        let mut t = Translator::new("p", "s");
        t.on_event(&assistant("m1"));
        let tool = |status: &str| {
            ev(
                "message.part.updated",
                json!({"sessionID": "s", "part": {"id": "t", "messageID": "m1", "type": "tool",
                "tool": "write", "callID": "c1", "state": {"status": status, "input": {"filePath": "a"}, "output": "ok"}}}),
            )
        };
        assert_eq!(t.on_event(&tool("running")).0.len(), 1);
        assert!(t.on_event(&tool("running")).0.is_empty());
        let (out, _) = t.on_event(&tool("completed"));
        assert!(
            matches!(&out[0], EventBody::ToolUpdated { status: ToolStatus::Completed, output: Some(o), .. } if o == "ok")
        );
    }

    #[test]
    fn signals_and_turn_end() {
        let mut t = Translator::new("p", "s");
        let (_, sig) = t.on_event(&ev(
            "session.status",
            json!({"sessionID": "s", "status": {"type": "idle"}}),
        ));
        assert_eq!(sig, Some(Signal::Idle));
        let msgs = vec![
            json!({"info": {"role": "user"}}),
            json!({"info": {"role": "assistant", "finish": "tool-calls", "time": {"completed": 1}}}),
        ];
        assert!(!turn_finished(&msgs));
        let mut done = msgs.clone();
        done.push(
            json!({"info": {"role": "assistant", "finish": "stop", "time": {"completed": 2},
            "tokens": {"input": 10, "output": 3, "cache": {"read": 1}}}}),
        );
        assert!(turn_finished(&done));
        assert_eq!(turn_error(&done), None);
        assert!(matches!(
            t.usage(&done),
            EventBody::Usage {
                input_tokens: 10,
                output_tokens: 3,
                cache_read_tokens: 1,
                ..
            }
        ));
        let aborted = vec![
            json!({"info": {"role": "assistant", "error": {"name": "MessageAbortedError", "data": {"message": "Aborted"}}}}),
        ];
        assert_eq!(turn_error(&aborted), Some((true, "Aborted".into())));
    }
}
