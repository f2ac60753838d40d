//! The session Durable Object: one per session, the single writer of its event log.
//!
//! Invariant: every event is appended to the log (with the next sequence number) before it is
//! sent to anyone, and every socket receives events in sequence order. Decisions about the
//! session's lifecycle are made by the pure `Lifecycle` machine; this module only performs the
//! I/O its effects call for.

mod calls;
mod effects;
mod feeds;
mod link;
mod model_calls;
mod presence;
mod store;

pub use calls::{call, open_socket};

use std::cell::{Cell, OnceCell, RefCell};

use agent_ops_protocol::access::{Revocation, SessionAccess};
use agent_ops_protocol::api::{Aborting, NoContent, PromptAccepted, PromptCancelled};
use agent_ops_protocol::frames::{client_events_frame, Command, ToClientFrame, ToRunnerFrame};
use agent_ops_protocol::lifecycle::{
    check_prompt, check_request_id, Effect, Input, Lifecycle, Policy, Rejection,
};
use agent_ops_protocol::session_calls::{self as calls_, Call, SessionCall, CALL_HEADER};
use agent_ops_protocol::{
    ApiError, ErrorCode, EventBody, SessionStatus, TurnOutcome, MAX_PAGE_EVENTS, MAX_PROMPT_BYTES,
};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::edge::http::{error, fail, json, now_ms, random_id, read_json};
use store::{PromptState, Store};

/// What the object keeps about itself between events (and across hibernation, in `meta`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Persisted {
    session_id: String,
    runner_token_hash: String,
    lifecycle: Lifecycle,
    /// The runner process whose events we are numbering (how far is on the log's rows).
    runner_instance: Option<String>,
    /// The connection currently trusted as the runner's link.
    runner_conn: Option<String>,
    /// For the model calls (kept since `Init` carried it; see `model_calls`).
    #[serde(default)]
    model: Option<calls_::ModelCaller>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    Client,
    Runner,
}

/// The close code of a viewer's socket whose access was taken back or changed: a client may
/// reconnect, and gets what its access is now.
const ACCESS_CHANGED: u16 = 4403;

/// Kept on each socket (survives hibernation).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SocketInfo {
    role: Role,
    conn: String,
    #[serde(default)]
    instance: Option<String>,
    /// A viewer's access, as the worker vouched for it when the socket opened.
    #[serde(default)]
    access: Option<SessionAccess>,
}

#[durable_object]
pub struct SessionObject {
    state: State,
    env: Env,
    store: OnceCell<Store>,
    persisted: RefCell<Option<Persisted>>,
    last_seq: RefCell<Option<u64>>,
    /// How far the runner's events are persisted (see `runner_position`).
    rseq: Cell<Option<u64>>,
    /// How far the runner's link was last told its events are persisted (see `ack_due`).
    acked: Cell<u64>,
    /// The runner's socket and what it carries, so that its every frame does not read the
    /// socket's attachment again (an object woken from hibernation reads it once more).
    runner: RefCell<Option<(WebSocket, SocketInfo)>>,
    /// When the runner was last recorded alive (in memory; see `runner_seen`).
    seen_at: Cell<u64>,
    /// Whether any feed follows the log (read once), whether events were persisted since the
    /// feeds last looked, and whether the alarm will look at them.
    has_feeds: Cell<Option<bool>>,
    unfed: Cell<bool>,
    feeds_armed: Cell<bool>,
    /// The model calls' rate window: its start, and the calls counted in it.
    model_window: Cell<(u64, u32)>,
}

fn env_ms(env: &Env, name: &str, default: u64) -> u64 {
    env.var(name)
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(default)
}

impl SessionObject {
    fn store(&self) -> Result<&Store> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let s = Store::open(self.state.storage())?;
        Ok(self.store.get_or_init(|| s))
    }

    fn policy(&self) -> Policy {
        let d = Policy::default();
        Policy {
            runner_grace_ms: env_ms(&self.env, "RUNNER_GRACE_MS", d.runner_grace_ms),
            heartbeat_stale_ms: env_ms(&self.env, "HEARTBEAT_STALE_MS", d.heartbeat_stale_ms),
        }
    }

    /// The persisted state, or None when the session was never initialised.
    fn load(&self) -> Result<Option<Persisted>> {
        self.read(Persisted::clone)
    }

    /// Reads the persisted state in place (a runner's every frame does, so no copy).
    fn read<R>(&self, f: impl FnOnce(&Persisted) -> R) -> Result<Option<R>> {
        if self.persisted.borrow().is_none() {
            let p: Option<Persisted> = self.store()?.meta("state")?;
            *self.persisted.borrow_mut() = p;
        }
        Ok(self.persisted.borrow().as_ref().map(f))
    }

    fn update<R>(&self, f: impl FnOnce(&mut Persisted) -> R) -> Result<R> {
        self.read(|_| ())?;
        let mut guard = self.persisted.borrow_mut();
        let p = guard
            .as_mut()
            .ok_or_else(|| worker::Error::RustError("session not initialised".into()))?;
        let r = f(p);
        self.store()?.set_meta("state", p)?;
        Ok(r)
    }

    /// The last sequence number written.
    fn last_seq(&self) -> Result<u64> {
        if let Some(s) = *self.last_seq.borrow() {
            return Ok(s);
        }
        let s = self.store()?.last_seq()?;
        *self.last_seq.borrow_mut() = Some(s);
        Ok(s)
    }

    /// How far the runner's events are persisted.
    fn runner_position(&self) -> Result<u64> {
        if let Some(rseq) = self.rseq.get() {
            return Ok(rseq);
        }
        let rseq = self.store()?.runner_position()?;
        self.rseq.set(Some(rseq));
        Ok(rseq)
    }

    /// Persists the events, then sends them to every client in one frame.
    fn emit(&self, bodies: Vec<EventBody>) -> Result<()> {
        self.emit_with(bodies, None)
    }

    /// Persists the events with the next sequence numbers, and the runner's position `rseq`
    /// with them when given, in one statement (one transaction for a batch filling several rows
    /// of the log): all of it lands or none of it, and the sequence advances by exactly what was
    /// written (a failed write leaves neither a gap nor a half-stored batch that a resend would
    /// store again). Then sends the events to every client in one frame.
    fn emit_with(&self, bodies: Vec<EventBody>, rseq: Option<u64>) -> Result<()> {
        if bodies.is_empty() {
            return Ok(());
        }
        let base = self.last_seq()?;
        let events = self.store()?.append(base + 1, now_ms(), &bodies, rseq)?;
        *self.last_seq.borrow_mut() = Some(base + bodies.len() as u64);
        if rseq.is_some() {
            self.rseq.set(rseq);
        }
        self.unfed.set(true);
        let frame = client_events_frame(&events[1..events.len() - 1]);
        broadcast(&self.state.get_websockets_with_tag("client"), &frame);
        Ok(())
    }

    fn step(&self, input: Input) -> Result<std::result::Result<Vec<Effect>, Rejection>> {
        let policy = self.policy();
        self.update(|p| p.lifecycle.handle(input, &policy))
    }

    /// Feeds the machine and carries out everything it decides, in order.
    async fn feed(&self, input: Input) -> Result<std::result::Result<(), Rejection>> {
        match self.step(input)? {
            Ok(fx) => {
                self.apply(fx).await?;
                Ok(Ok(()))
            }
            Err(r) => Ok(Err(r)),
        }
    }

    pub async fn submit_prompt(
        &self,
        text: String,
        client_request_id: String,
    ) -> Result<std::result::Result<PromptAccepted, ApiError>> {
        if let Err(e) = check_prompt(&text).and_then(|()| check_request_id(&client_request_id)) {
            return Ok(Err(e));
        }
        if let Some(prompt_id) = self.store()?.prompt_by_request(&client_request_id)? {
            return Ok(Ok(PromptAccepted {
                prompt_id,
                client_request_id,
                duplicate: true,
            }));
        }
        let terminated = self.load()?.is_some_and(|p| p.lifecycle.terminated);
        if terminated {
            return Ok(Err(ApiError::session_terminated()));
        }
        let prompt_id = random_id();
        self.store()?
            .insert_prompt(&prompt_id, &client_request_id, &text, now_ms())?;
        self.emit(vec![EventBody::PromptQueued {
            prompt_id: prompt_id.clone(),
            client_request_id: client_request_id.clone(),
            text,
        }])?;
        let queued = Input::PromptQueued {
            prompt_id: prompt_id.clone(),
        };
        match self.feed(queued).await? {
            Ok(()) => Ok(Ok(PromptAccepted {
                prompt_id,
                client_request_id,
                duplicate: false,
            })),
            Err(_) => Ok(Err(ApiError::session_terminated())),
        }
    }

    /// Withdraws a prompt that has not started. One that is running is aborted instead; one that
    /// has ended or was cancelled already answers `conflict`, so a retry is harmless and clear.
    pub async fn cancel_prompt(
        &self,
        prompt_id: &str,
    ) -> Result<std::result::Result<(), ApiError>> {
        let cancel = Input::CancelPrompt {
            prompt_id: prompt_id.to_owned(),
        };
        match self.step(cancel)? {
            Ok(fx) => {
                self.store()?
                    .set_prompt_state(prompt_id, PromptState::Cancelled)?;
                self.emit(vec![EventBody::PromptCancelled {
                    prompt_id: prompt_id.to_owned(),
                }])?;
                self.apply(fx).await?;
                Ok(Ok(()))
            }
            Err(_) if self.store()?.has_prompt(prompt_id)? => Ok(Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "prompt {prompt_id} is not queued (it has started, ended or been cancelled)"
                ),
            ))),
            Err(_) => Ok(Err(ApiError::new(
                ErrorCode::NotFound,
                format!("prompt {prompt_id} not found"),
            ))),
        }
    }

    pub async fn abort(&self) -> Result<std::result::Result<(), ApiError>> {
        Ok(match self.feed(Input::AbortRequested).await? {
            Ok(()) => Ok(()),
            Err(Rejection::NothingToAbort) => Err(ApiError::new(
                ErrorCode::NothingToAbort,
                "no turn is running",
            )),
            Err(_) => Err(ApiError::session_terminated()),
        })
    }

    /// Serves one of the Worker's calls: the object's only way in besides its sockets.
    async fn serve(&self, call: Call) -> Result<Response> {
        if let Call::Init(init) = call {
            return reply::<calls_::Init>(self.init(init).await?);
        }
        let Some(persisted) = self.load()? else {
            return fail(ErrorCode::NotFound, "session not found");
        };
        match call {
            Call::Init(_) => unreachable!("answered above"),
            Call::Prompt(p) => {
                reply::<calls_::Prompt>(self.submit_prompt(p.text, p.client_request_id).await?)
            }
            Call::CancelPrompt(c) => {
                reply::<calls_::CancelPrompt>(self.cancel_prompt(&c.prompt_id).await?.map(|()| {
                    PromptCancelled {
                        cancelled: c.prompt_id,
                    }
                }))
            }
            Call::Abort(_) => {
                reply::<calls_::Abort>(self.abort().await?.map(|()| Aborting { aborting: true }))
            }
            Call::Events(page) => self.events(&page),
            Call::Terminate(_) => {
                self.feed(Input::Terminate).await?.ok();
                reply::<calls_::Terminate>(Ok(NoContent))
            }
            Call::CloseSockets(c) => {
                reply::<calls_::CloseSockets>(Ok(self.close_sockets(&c.revoked, &persisted)?))
            }
            Call::Activity(_) => reply::<calls_::Activity>(Ok(self.activity()?)),
            Call::Follow(follow) => {
                self.follow(follow.target).await?;
                reply::<calls_::Follow>(Ok(NoContent))
            }
            Call::ModelCall(c) => {
                reply::<calls_::ModelCall>(self.admit_model_call(&c, &persisted).await?)
            }
            Call::ClientSocket(socket) => self.accept_client(socket),
            Call::RunnerSocket(socket) => self.accept_runner(&socket, &persisted),
        }
    }

    async fn init(&self, init: calls_::Init) -> Result<std::result::Result<NoContent, ApiError>> {
        if self.load()?.is_some() {
            return Ok(Err(ApiError::new(
                ErrorCode::Conflict,
                "session already initialised",
            )));
        }
        let persisted = Persisted {
            session_id: init.session_id,
            runner_token_hash: init.runner_token_hash,
            model: Some(init.model),
            ..Default::default()
        };
        self.store()?.set_meta("state", &persisted)?;
        *self.persisted.borrow_mut() = Some(persisted);
        self.emit(vec![EventBody::Status {
            status: SessionStatus::Provisioning,
            reason: None,
        }])?;
        if let Some(prompt) = init.prompt {
            if let Err(e) = self.submit_prompt(prompt, "initial".into()).await? {
                return Ok(Err(e));
            }
        }
        Ok(Ok(NoContent))
    }

    /// A page of the log, written from the JSON it stores of each event: the page `EventPage`
    /// would serialize, without parsing the events to write them again.
    fn events(&self, page: &calls_::Events) -> Result<Response> {
        let limit = page.limit.clamp(1, MAX_PAGE_EVENTS);
        let (events, count) = self.store()?.events_after(page.after_seq, limit)?;
        let next = page.after_seq + count as u64;
        let has_more = next < self.last_seq()?;
        let body =
            format!(r#"{{"events":[{events}],"next_after_seq":{next},"has_more":{has_more}}}"#);
        Ok(Response::ok(body)?.with_headers(json_headers()))
    }

    fn close_sockets(&self, revoked: &Revocation, persisted: &Persisted) -> Result<usize> {
        let mut closed = 0;
        for ws in self.state.get_websockets_with_tag("client") {
            let info = ws.deserialize_attachment::<SocketInfo>()?;
            let covered = info
                .and_then(|i| i.access)
                .is_some_and(|a| revoked.covers(&a.login, &a.credential));
            if covered {
                ws.close(
                    Some(ACCESS_CHANGED),
                    Some("your access to this session changed"),
                )
                .ok();
                closed += 1;
            }
        }
        // The gateway's cookies and sockets too; a runner not linked now is told when it is
        // (commands wait for their ack).
        if !persisted.lifecycle.status().is_terminal() {
            self.send_command(Command::Revoke {
                revoked: revoked.clone(),
            })?;
        }
        Ok(closed)
    }

    fn accept_client(&self, socket: calls_::ClientSocket) -> Result<Response> {
        let after = socket.after_seq;
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &["client"]);
        pair.server.serialize_attachment(SocketInfo {
            role: Role::Client,
            conn: random_id(),
            instance: None,
            access: Some(socket.access),
        })?;
        // Replay and subscription happen in one synchronous stretch: no event can be appended
        // between the last replayed one and the first live one.
        let mut cursor = after;
        loop {
            let (events, count) = self.store()?.events_after(cursor, MAX_PAGE_EVENTS)?;
            if count == 0 {
                break;
            }
            cursor += count as u64;
            pair.server.send_with_str(client_events_frame(&events))?;
        }
        send(&pair.server, &ToClientFrame::CaughtUp { seq: cursor });
        presence::announce(&self.state, None);
        Response::from_websocket(pair.client)
    }

    fn accept_runner(
        &self,
        socket: &calls_::RunnerSocket,
        persisted: &Persisted,
    ) -> Result<Response> {
        if !agent_ops_protocol::signing::token_matches(&socket.token, &persisted.runner_token_hash)
        {
            return fail(ErrorCode::InvalidToken, "invalid runner token");
        }
        if persisted.lifecycle.terminated {
            return error(&ApiError::session_terminated());
        }
        // One link at a time: a new connection replaces the old one.
        for ws in self.state.get_websockets_with_tag("runner") {
            ws.close(Some(4000), Some("replaced by a newer runner connection"))
                .ok();
        }
        let conn = random_id();
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &["runner"]);
        pair.server.serialize_attachment(SocketInfo {
            role: Role::Runner,
            conn: conn.clone(),
            instance: None,
            access: None,
        })?;
        self.update(|p| p.runner_conn = Some(conn))?;
        Response::from_websocket(pair.client)
    }
}

impl DurableObject for SessionObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            store: OnceCell::new(),
            persisted: RefCell::new(None),
            last_seq: RefCell::new(None),
            rseq: Cell::new(None),
            acked: Cell::new(0),
            runner: RefCell::new(None),
            seen_at: Cell::new(0),
            has_feeds: Cell::new(None),
            unfed: Cell::new(false),
            feeds_armed: Cell::new(false),
            model_window: Cell::new((0, 0)),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let call = match read_call(req).await {
            Ok(call) => call,
            Err(e) => return error(&e),
        };
        match self.serve(call).await {
            Ok(resp) => Ok(resp),
            Err(e) => fail(ErrorCode::Internal, format!("session object error: {e}")),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if self.load()?.is_some() {
            self.feed(Input::Alarm { now_ms: now_ms() }).await?.ok();
        }
        self.deliver_feeds().await?;
        Response::ok("")
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(info) = self.socket_info(&ws)? else {
            return Ok(());
        };
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(_) => {
                let err = ApiError::new(
                    ErrorCode::MalformedFrame,
                    "binary frames are not accepted; send JSON text",
                );
                match info.role {
                    Role::Client => send(&ws, &ToClientFrame::Error(err)),
                    Role::Runner => send(&ws, &ToRunnerFrame::Error(err)),
                }
                return Ok(());
            }
        };
        match info.role {
            Role::Client => self.client_message(&ws, &info, &text).await,
            Role::Runner => self.runner_message(&ws, info, &text).await,
        }
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        self.socket_gone(&ws).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.socket_gone(&ws).await
    }
}

impl SessionObject {
    /// What `ws` carries (see `runner`).
    fn socket_info(&self, ws: &WebSocket) -> Result<Option<SocketInfo>> {
        if let Some((known, info)) = self.runner.borrow().as_ref() {
            if known == ws {
                return Ok(Some(info.clone()));
            }
        }
        let info = ws.deserialize_attachment::<SocketInfo>()?;
        if let Some(runner) = info.as_ref().filter(|i| i.role == Role::Runner) {
            self.remember_runner(ws, runner);
        }
        Ok(info)
    }

    fn remember_runner(&self, ws: &WebSocket, info: &SocketInfo) {
        *self.runner.borrow_mut() = Some((ws.clone(), info.clone()));
    }

    async fn socket_gone(&self, ws: &WebSocket) -> Result<()> {
        let Some(info) = ws.deserialize_attachment::<SocketInfo>()? else {
            return Ok(());
        };
        if info.role != Role::Runner {
            presence::announce(&self.state, Some(&info.conn));
            return Ok(());
        }
        let current = self
            .load()?
            .and_then(|p| p.runner_conn)
            .is_some_and(|c| c == info.conn);
        if current {
            self.update(|p| p.runner_conn = None)?;
            self.emit(vec![EventBody::RunnerDisconnected {
                reason: "runner connection closed".into(),
            }])?;
            self.feed(Input::RunnerDisconnected { now_ms: now_ms() })
                .await?
                .ok();
        }
        Ok(())
    }
}

fn prompt_state(outcome: TurnOutcome) -> PromptState {
    match outcome {
        TurnOutcome::Completed => PromptState::Completed,
        TurnOutcome::Failed => PromptState::Failed,
        TurnOutcome::Interrupted => PromptState::Interrupted,
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A socket as workerd has it, sent a JS string: `web_sys`'s `send` takes a Rust string and
    /// copies it out of wasm again for every socket.
    type JsSocket;
    #[wasm_bindgen(method, catch)]
    fn send(this: &JsSocket, text: &JsValue) -> std::result::Result<(), JsValue>;
}

/// Sends `text` to every one of `sockets`, copied out of wasm once.
fn broadcast(sockets: &[WebSocket], text: &str) {
    if sockets.is_empty() {
        return;
    }
    let text = JsValue::from_str(text);
    for ws in sockets {
        let raw: &worker::web_sys::WebSocket = ws.as_ref();
        raw.unchecked_ref::<JsSocket>().send(&text).ok();
    }
}

fn send<T: Serialize>(ws: &WebSocket, frame: &T) {
    if let Ok(text) = serde_json::to_string(frame) {
        ws.send_with_str(text).ok();
    }
}

fn json_headers() -> worker::Headers {
    let h = worker::Headers::new();
    h.set("content-type", "application/json").ok();
    h
}

/// A call from the Worker: in its header when it opens a socket, else the body.
async fn read_call(mut req: Request) -> std::result::Result<Call, ApiError> {
    let header = req.headers().get(CALL_HEADER).ok().flatten();
    match header {
        Some(call) => serde_json::from_str(&call)
            .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("invalid call: {e}"))),
        None => read_json(&mut req, MAX_PROMPT_BYTES + 4096).await,
    }
}

/// The answer to call `C`: its reply, or the refusal as `{code, message}` with its status.
fn reply<C: SessionCall>(answer: std::result::Result<C::Reply, ApiError>) -> Result<Response> {
    match answer {
        Ok(reply) => json(200, &reply),
        Err(e) => error(&e),
    }
}
