//! A scripted model server speaking the OpenAI chat-completions streaming protocol, close enough
//! to the real thing that the real OpenCode binary runs whole turns against it: tool calls, tool
//! results, streamed text, usage. What it answers is decided by directives in the prompt
//! (see [`script`]).

pub mod script;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use script::{Script, ToolCall};

/// Every request the server answered (its body, and the names of its headers), and how many
/// streamed answers their callers stopped reading before the end, for tests to inspect.
#[derive(Clone, Default)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<Recorded>>>,
    cut_short: Arc<AtomicUsize>,
}

/// One request: its body, and the names of its headers.
type Recorded = (Value, Vec<String>);

impl Recorder {
    pub fn requests(&self) -> Vec<Value> {
        let seen = self.seen.lock().expect("recorder lock");
        seen.iter().map(|(body, _)| body.clone()).collect()
    }

    /// The header names of each request, lowercase, in the order of `requests`.
    pub fn header_names(&self) -> Vec<Vec<String>> {
        let seen = self.seen.lock().expect("recorder lock");
        seen.iter().map(|(_, names)| names.clone()).collect()
    }

    /// How many streamed answers were dropped before their end: a real provider stops
    /// generating (and billing) when its caller hangs up, so the hang-up must reach it.
    pub fn cut_short(&self) -> usize {
        self.cut_short.load(Ordering::SeqCst)
    }
}

/// A streamed answer's frames still to send; counted as cut short if dropped with any left.
struct Answer {
    frames: std::vec::IntoIter<(u64, Bytes)>,
    recorder: Recorder,
}

impl Drop for Answer {
    fn drop(&mut self) {
        if self.frames.len() > 0 {
            self.recorder.cut_short.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The largest call the server reads, as a real provider's front door bounds it.
const REQUEST_BYTES: usize = 64 << 20;

/// The model's context window, in tokens (a token taken as four bytes of the call).
const CONTEXT_TOKENS: usize = 128_000;

/// `api_key`: the key every request must carry (`Authorization: Bearer`), as a real model
/// provider's does; `None` takes any request.
pub fn router(recorder: Recorder, api_key: Option<String>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        // A provider takes calls far larger than axum's default 2 MB and judges them by their
        // tokens (below), so an agent's oversized context is refused as the real one refuses it.
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BYTES))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let refusal = api_key.as_deref().and_then(|key| refuse_key(&req, key));
                async move {
                    match refusal {
                        Some(refusal) => refusal,
                        None => next.run(req).await,
                    }
                }
            },
        ))
        .with_state(recorder)
}

/// OpenAI's answer to a missing or wrong key.
fn refuse_key(req: &axum::extract::Request, key: &str) -> Option<Response> {
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if sent == Some(key) {
        return None;
    }
    let error = json!({"error": {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }});
    Some((axum::http::StatusCode::UNAUTHORIZED, Json(error)).into_response())
}

/// OpenAI's answer to a call whose messages overflow the context window: a client error, which an
/// agent reports rather than retries.
fn context_exceeded(tokens: usize) -> Response {
    let error = json!({"error": {
        "message": format!("This model's maximum context length is {CONTEXT_TOKENS} tokens. \
            However, your messages resulted in {tokens} tokens. Please reduce the length of the messages."),
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }});
    (axum::http::StatusCode::BAD_REQUEST, Json(error)).into_response()
}

/// Serves on `addr` (port 0 for any) and returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    api_key: Option<String>,
) -> std::io::Result<(SocketAddr, Recorder)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let recorder = Recorder::default();
    let app = router(recorder.clone(), api_key);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((bound, recorder))
}

async fn models() -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "agent-ops"}]}),
    )
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn chunk(delta: Value, finish: Option<&str>) -> Bytes {
    let body = json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    Bytes::from(format!("data: {body}\n\n"))
}

fn usage_chunk(prompt_tokens: usize, completion_tokens: usize) -> Bytes {
    let body = json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "scripted",
        "choices": [],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    });
    Bytes::from(format!("data: {body}\n\n"))
}

fn tool_call_json(i: usize, call: &ToolCall) -> Value {
    let (name, args) = match call {
        ToolCall::Write { path, content } => {
            ("write", json!({"filePath": path, "content": content}))
        }
        ToolCall::Bash { command } => (
            "bash",
            json!({"command": command, "description": "Run the scripted command"}),
        ),
    };
    json!({"index": i, "id": format!("call_{i}"), "type": "function",
           "function": {"name": name, "arguments": args.to_string()}})
}

async fn chat(
    State(recorder): State<Recorder>,
    headers: axum::http::HeaderMap,
    Json(req): Json<Value>,
) -> Response {
    let tokens = req["messages"].to_string().len() / 4;
    if tokens > CONTEXT_TOKENS {
        return context_exceeded(tokens);
    }
    let names = headers.keys().map(|k| k.as_str().to_owned()).collect();
    recorder
        .seen
        .lock()
        .expect("recorder lock")
        .push((req.clone(), names));
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let has_tools = req
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let prompt = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    let after_tool = messages.last().is_some_and(|m| m["role"] == "tool");
    let script = Script::parse(&prompt);
    let prompt_tokens = messages
        .iter()
        .map(|m| text_of(&m["content"]).len() / 4 + 1)
        .sum();

    let mut frames: Vec<(u64, Bytes)> =
        vec![(0, chunk(json!({"role": "assistant", "content": ""}), None))];
    if !has_tools {
        // Title generation and other tool-less side calls.
        frames.push((0, chunk(json!({"content": "Scripted session"}), None)));
        frames.push((0, chunk(json!({}), Some("stop"))));
    } else if !after_tool && !script.tools.is_empty() {
        let calls: Vec<Value> = script
            .tools
            .iter()
            .enumerate()
            .map(|(i, c)| tool_call_json(i, c))
            .collect();
        frames.push((0, chunk(json!({"tool_calls": calls}), None)));
        frames.push((0, chunk(json!({}), Some("tool_calls"))));
    } else {
        for piece in script.pieces() {
            frames.push((script.delay_ms, chunk(json!({"content": piece}), None)));
        }
        frames.push((0, chunk(json!({}), Some("stop"))));
    }
    let completion_tokens = script.say.len() / 4 + 1;
    frames.push((0, usage_chunk(prompt_tokens, completion_tokens)));
    frames.push((0, Bytes::from_static(b"data: [DONE]\n\n")));

    let wants_stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !wants_stream {
        return Json(json!({
            "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": "scripted",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": if has_tools { script.say.clone() } else { "Scripted session".into() }}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
        }))
        .into_response();
    }
    let answer = Answer {
        frames: frames.into_iter(),
        recorder,
    };
    let stream = futures::stream::unfold(answer, |mut answer| async move {
        let (delay, bytes) = answer.frames.next()?;
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Some((Ok::<_, Infallible>(bytes), answer))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("static response parts are valid")
}
