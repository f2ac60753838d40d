//! A viewer's WebSocket to a session, collecting the events it receives.

use std::time::Duration;

use agent_ops_protocol::frames::{ClientFrame, ToClientFrame};
use agent_ops_protocol::{EventBody, SessionEvent};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct ClientSocket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every event received, in arrival order.
    pub events: Vec<SessionEvent>,
    /// Non-event frames (errors, acks, pongs), in arrival order.
    pub others: Vec<ToClientFrame>,
}

impl ClientSocket {
    pub async fn connect(
        url: &str,
        token: &str,
    ) -> Result<ClientSocket, tokio_tungstenite::tungstenite::Error> {
        Self::connect_with(url, token, &[]).await
    }

    /// Connects with `headers` besides the credential (a hostile client's own).
    pub async fn connect_with(
        url: &str,
        token: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<ClientSocket, tokio_tungstenite::tungstenite::Error> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        );
        for (name, value) in headers {
            req.headers_mut()
                .insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await?;
        Ok(ClientSocket {
            ws,
            events: Vec::new(),
            others: Vec::new(),
        })
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_raw(Message::text(serde_json::to_string(frame).expect("frame")))
            .await;
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send on client socket");
    }

    /// Reads until the server closes the socket; its close code (`None` on a timeout or a close
    /// without one).
    pub async fn closed_with(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            if let Ok(Message::Close(frame)) = msg {
                return frame.map(|f| u16::from(f.code));
            }
        }
    }

    /// Reads one frame (or times out), recording it.
    pub async fn read_one(&mut self, timeout: Duration) -> Option<ToClientFrame> {
        loop {
            let msg = tokio::time::timeout(timeout, self.ws.next())
                .await
                .ok()??
                .ok()?;
            let Message::Text(text) = msg else { continue };
            let frame: ToClientFrame = serde_json::from_str(&text).expect("server frames parse");
            match &frame {
                ToClientFrame::Events { events } => self.events.extend(events.iter().cloned()),
                other => self.others.push(other.clone()),
            }
            return Some(frame);
        }
    }

    /// Reads until an event satisfies `pred`; panics on timeout with what arrived.
    pub async fn until(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&EventBody) -> bool,
    ) -> SessionEvent {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut checked = 0;
        loop {
            if let Some(e) = self.events[checked..].iter().find(|e| pred(&e.body)) {
                return e.clone();
            }
            checked = self.events.len();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.read_one(left).await.is_none() {
                panic!(
                    "timed out; received {} events: {:#?}",
                    self.events.len(),
                    self.events.iter().rev().take(8).collect::<Vec<_>>()
                );
            }
        }
    }

    /// Reads until a non-event frame satisfies `pred`.
    pub async fn until_frame(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&ToClientFrame) -> bool,
    ) -> ToClientFrame {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(f) = self.others.iter().find(|f| pred(f)) {
                return f.clone();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.read_one(left).await.is_none() {
                panic!("timed out waiting for a frame; others: {:?}", self.others);
            }
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.events.last().map(|e| e.seq).unwrap_or(0)
    }

    pub async fn close(mut self) {
        self.ws.close(None).await.ok();
    }
}

/// The agent's text in a list of events, per prompt order: all deltas concatenated.
pub fn text_of(events: &[SessionEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::TextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

/// Sequence numbers must be consecutive: no gap, no duplicate, in order.
pub fn assert_contiguous(events: &[SessionEvent], first: u64) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.seq,
            first + i as u64,
            "event {i} out of sequence: {:?}",
            e
        );
    }
}
