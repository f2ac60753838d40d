//! The runner's link to its session object: one WebSocket, re-dialled with backoff for as long
//! as the runner lives. Events are numbered and kept until acknowledged, so a dropped connection
//! loses nothing; commands are acknowledged on receipt and executed once.

use std::time::Duration;

use agent_ops_protocol::bounds::{bounded, BATCH_BYTES, BATCH_EVENTS, FRAME_TOO_LARGE};
use agent_ops_protocol::delivery::{CommandDedup, Outbox};
use agent_ops_protocol::frames::{
    parse_frame, runner_events_frame, Command, RunnerFrame, ToRunnerFrame,
};
use agent_ops_protocol::{EventBody, PROTOCOL_VERSION};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub url: String,
    pub token: String,
    pub instance: String,
    pub agent: String,
    pub heartbeat: Duration,
    pub max_backoff: Duration,
    /// Whom to trust when the link's URL is `wss://` (see `tls`).
    pub tls: std::sync::Arc<rustls::ClientConfig>,
    /// Set once the session first welcomes the link.
    pub welcomed: tokio::sync::watch::Sender<bool>,
}

/// Why the link gave up for good.
#[derive(Debug, thiserror::Error)]
pub enum LinkEnd {
    #[error("the session was terminated")]
    Terminated,
    #[error("the session refused the runner token")]
    Refused,
    #[error("the agent stopped")]
    AgentGone,
}

/// Merges consecutive deltas of the same part: fewer frames and rows, same final text.
fn coalesce(events: Vec<EventBody>) -> Vec<EventBody> {
    let mut out: Vec<EventBody> = Vec::with_capacity(events.len());
    for e in events {
        if let (
            Some(EventBody::TextDelta {
                part_id: p1,
                delta: d1,
                ..
            }),
            EventBody::TextDelta {
                part_id: p2,
                delta: d2,
                ..
            },
        ) = (out.last_mut(), &e)
        {
            if p1 == p2 && d1.len() < 16 * 1024 {
                d1.push_str(d2);
                continue;
            }
        }
        out.push(e);
    }
    out
}

enum Session {
    Closed,
    Fatal(LinkEnd),
}

pub async fn run(
    cfg: LinkConfig,
    mut events: mpsc::Receiver<EventBody>,
    commands: mpsc::Sender<Command>,
) -> LinkEnd {
    let mut outbox = Outbox::new();
    let mut dedup = CommandDedup::default();
    let mut backoff = Duration::from_millis(100);
    let mut batch_bytes = BATCH_BYTES;
    loop {
        let link = Link {
            outbox: &mut outbox,
            dedup: &mut dedup,
            batch_bytes: &mut batch_bytes,
        };
        match connect_once(&cfg, link, &mut events, &commands).await {
            Ok(Session::Fatal(end)) => return end,
            Ok(Session::Closed) => backoff = Duration::from_millis(100),
            Err(e) => tracing::warn!("link: {e}"),
        }
        // Keep draining the agent while offline so it never blocks; events wait in the outbox.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                e = events.recv() => match e {
                    Some(e) => keep(&mut outbox, vec![e]),
                    None => return LinkEnd::AgentGone,
                }
            }
        }
        backoff = (backoff * 2).min(cfg.max_backoff);
    }
}

/// Keeps events for sending: neighbouring deltas merged, each bounded in size.
fn keep(outbox: &mut Outbox, events: Vec<EventBody>) {
    for e in coalesce(events).into_iter().flat_map(bounded) {
        outbox.push(&e);
    }
}

/// What outlives one connection.
struct Link<'a> {
    outbox: &'a mut Outbox,
    dedup: &'a mut CommandDedup,
    /// Bytes per batch: halved each time the session object refuses a frame as too large.
    batch_bytes: &'a mut usize,
}

async fn connect_once(
    cfg: &LinkConfig,
    link: Link<'_>,
    events: &mut mpsc::Receiver<EventBody>,
    commands: &mpsc::Sender<Command>,
) -> Result<Session, Box<dyn std::error::Error + Send + Sync>> {
    let Link {
        outbox,
        dedup,
        batch_bytes,
    } = link;
    let mut req = cfg.url.as_str().into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", cfg.token))?,
    );
    let tls = tokio_tungstenite::Connector::Rustls(cfg.tls.clone());
    let connected = tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(tls));
    let (mut ws, _) = match connected.await {
        Ok(ok) => ok,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let status = resp.status().as_u16();
            return match status {
                401 | 403 => Ok(Session::Fatal(LinkEnd::Refused)),
                404 | 409 => Ok(Session::Fatal(LinkEnd::Terminated)),
                _ => Err(format!("session answered HTTP {status}").into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let hello = RunnerFrame::Hello {
        instance: cfg.instance.clone(),
        protocol: PROTOCOL_VERSION,
        agent: cfg.agent.clone(),
    };
    ws.send(Message::text(serde_json::to_string(&hello)?))
        .await?;
    let mut welcomed = false;
    let mut heartbeat = tokio::time::interval(cfg.heartbeat);
    loop {
        if welcomed {
            while let Some((first_rseq, batch)) = outbox.take_unsent(BATCH_EVENTS, *batch_bytes) {
                let frame = runner_events_frame(first_rseq, &batch);
                ws.send(Message::text(frame)).await?;
            }
        }
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map(|f| f.code);
                        if code == Some(CloseCode::Library(4001)) {
                            return Ok(Session::Fatal(LinkEnd::Terminated));
                        }
                        if code == Some(CloseCode::Library(FRAME_TOO_LARGE)) {
                            *batch_bytes = (*batch_bytes / 2).max(1);
                            tracing::warn!("a batch was too large; sending at most {} bytes", *batch_bytes);
                        }
                        return Ok(Session::Closed);
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(Session::Closed),
                };
                match parse_frame::<ToRunnerFrame>(&text, usize::MAX) {
                    Ok(ToRunnerFrame::Welcome { acked_rseq }) => {
                        outbox.reconnected(acked_rseq);
                        welcomed = true;
                        cfg.welcomed.send_replace(true);
                    }
                    Ok(ToRunnerFrame::Ack { rseq }) => outbox.ack(rseq),
                    Ok(ToRunnerFrame::Command { id, command }) => {
                        ws.send(Message::text(serde_json::to_string(&RunnerFrame::CommandAck { id })?)).await?;
                        if dedup.first_time(id) && commands.send(command).await.is_err() {
                            return Ok(Session::Fatal(LinkEnd::AgentGone));
                        }
                    }
                    Ok(ToRunnerFrame::Error(e)) => tracing::warn!("session object reported {e}"),
                    Err(e) => tracing::warn!("unreadable frame from the session object: {e}"),
                }
            }
            e = events.recv() => {
                let Some(first) = e else { return Ok(Session::Fatal(LinkEnd::AgentGone)) };
                let mut burst = vec![first];
                while burst.len() < BATCH_EVENTS {
                    match events.try_recv() {
                        Ok(e) => burst.push(e),
                        Err(_) => break,
                    }
                }
                keep(outbox, burst);
            }
            _ = heartbeat.tick() => {
                if welcomed {
                    let frame = RunnerFrame::Heartbeat { busy: outbox.unacked() > 0 };
                    ws.send(Message::text(serde_json::to_string(&frame)?)).await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(part: &str, s: &str) -> EventBody {
        EventBody::TextDelta {
            message_id: "m".into(),
            part_id: part.into(),
            delta: s.into(),
        }
    }

    #[test]
    fn coalesces_only_same_part_neighbours() {
        let out = coalesce(vec![d("a", "1"), d("a", "2"), d("b", "3"), d("a", "4")]);
        assert_eq!(out, vec![d("a", "12"), d("b", "3"), d("a", "4")]);
    }
}
