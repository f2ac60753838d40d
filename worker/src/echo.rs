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

    async fn fetch(&self, _req: Request) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
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
