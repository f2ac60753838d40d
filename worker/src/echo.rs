//! A bare Durable Object that echoes WebSocket messages: the baseline the relay benchmark is
//! measured against (same runtime, same hops, none of the session's work). Reachable only when
//! `ENABLE_BENCH_ECHO` is set, and only with valid credentials.

use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

#[durable_object]
pub struct EchoObject {
    state: State,
}

impl DurableObject for EchoObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        // `?persist=1`: write each message to SQLite before echoing it, the least any relay that
        // persists before it delivers must do.
        let persist = req.url()?.query() == Some("persist=1");
        let tag = if persist { "persist" } else { "bare" };
        self.state.accept_websocket_with_tags(&pair.server, &[tag]);
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        match message {
            WebSocketIncomingMessage::String(s) => ws.send_with_str(s),
            WebSocketIncomingMessage::Binary(b) => ws.send_with_bytes(b),
        }
    }

    async fn websocket_close(
        &self,
        _ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        Ok(())
    }
}
