//! Baselines for the relay benchmark: Durable Objects doing the least a relay could, in the same
//! runtime over the same hops. Built only into the benchmarks' Worker (`--features bench`), and
//! reachable there only with the admin's credentials.
//!
//! - `/api/bench/echo`: echo each message back.
//! - `?persist=1`: write each message to SQLite first (the least a persist-before-deliver relay does).
//! - `?relay=in` / `?relay=out`: a message on an `in` socket goes to every `out` socket (the least a
//!   fan-out from a runner to a viewer does).
//! - `?relay=in&persist=1`: written to SQLite first, then to every `out` socket (the least a
//!   persist-before-deliver relay from a runner to a viewer does).

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
        let tag = match req.url()?.query() {
            Some("persist=1") => "persist",
            Some("relay=in") => "relay-in",
            Some("relay=out") => "relay-out",
            Some("relay=in&persist=1") => "relay-in-persist",
            _ => "echo",
        };
        if tag.contains("persist") {
            // Once, here: each message then costs its INSERT alone, as a relay's frame does.
            self.state.storage().sql().exec(
                "CREATE TABLE IF NOT EXISTS echo (id INTEGER PRIMARY KEY, body TEXT)",
                None,
            )?;
        }
        let pair = WebSocketPair::new()?;
        self.state.accept_websocket_with_tags(&pair.server, &[tag]);
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            return Ok(());
        };
        let tags = self.state.get_tags(&ws);
        match tags.first().map(String::as_str) {
            Some("relay-in") => relay(&self.state, &text),
            Some("relay-in-persist") => {
                persist(&self.state, &text)?;
                relay(&self.state, &text)
            }
            Some("persist") => {
                persist(&self.state, &text)?;
                ws.send_with_str(text)
            }
            _ => ws.send_with_str(text),
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

fn relay(state: &State, text: &str) -> Result<()> {
    for out in state.get_websockets_with_tag("relay-out") {
        out.send_with_str(text)?;
    }
    Ok(())
}

fn persist(state: &State, text: &str) -> Result<()> {
    state
        .storage()
        .sql()
        .exec("INSERT INTO echo (body) VALUES (?)", vec![text.into()])?;
    Ok(())
}
