//! A session's runner link, taken over with the runner's own token (as its provider received
//! it), so that a test or the bench speaks for the runner frame by frame.

use std::time::Duration;

use agent_ops_protocol::frames::{RunnerFrame, ToRunnerFrame};
use agent_ops_protocol::PROTOCOL_VERSION;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Stack;

pub type RunnerSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens session `id`'s runner socket with `token`, or says the HTTP status it was refused with.
pub async fn runner_socket(stack: &Stack, id: &str, token: &str) -> Result<RunnerSocket, u16> {
    let mut req = stack
        .ws_url(&format!("/api/sessions/{id}/runner"))
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("runner socket: {e}"),
    }
}

/// Stops session `id`'s runner and says `hello` in its place as runner `instance`: the socket,
/// and how far the session says that instance's events are persisted.
pub async fn take_over(stack: &Stack, id: &str, instance: &str) -> (RunnerSocket, u64) {
    let token = stack.runner_token(id).expect("runner token");
    stack.kill_runner(id);
    let mut ws = runner_socket(stack, id, &token)
        .await
        .expect("runner socket with the runner's token");
    let acked = hello(&mut ws, instance).await;
    (ws, acked)
}

/// Says `hello` on `ws` as runner `instance`: how far the session says that instance's events
/// are persisted.
pub async fn hello(ws: &mut RunnerSocket, instance: &str) -> u64 {
    let hello = RunnerFrame::Hello {
        instance: instance.into(),
        protocol: PROTOCOL_VERSION,
        agent: "e2e".into(),
    };
    ws.send(Message::text(serde_json::to_string(&hello).unwrap()))
        .await
        .unwrap();
    loop {
        if let Some(ToRunnerFrame::Welcome { acked_rseq }) = next_frame(ws).await {
            return acked_rseq;
        }
    }
}

/// The next frame the session sends the runner (None for a frame that is not one).
async fn next_frame(ws: &mut RunnerSocket) -> Option<ToRunnerFrame> {
    match ws.next().await.expect("open").expect("frame") {
        Message::Text(t) => serde_json::from_str(&t).ok(),
        _ => None,
    }
}

/// The position of the next `ack` the session sends within `wait`, the frames before it passed
/// over; None when none comes.
pub async fn next_ack(ws: &mut RunnerSocket, wait: Duration) -> Option<u64> {
    tokio::time::timeout(wait, async {
        loop {
            if let Some(ToRunnerFrame::Ack { rseq }) = next_frame(ws).await {
                return rseq;
            }
        }
    })
    .await
    .ok()
}
