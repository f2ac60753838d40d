//! A session's live feed: one WebSocket that replays from the last sequence number this page holds
//! and then streams. It reconnects by itself with backoff and always resumes from `last_seq`, so a
//! dropped network or a sleeping laptop never loses or repeats text; a gap (which the server never
//! sends, but a client must not paper over) resubscribes rather than guess.

use agent_ops_protocol::frames::{ToClientFrame, Viewer};
use agent_ops_protocol::ApiError;
use futures::channel::oneshot;
use futures::future::{select, Either};
use futures::StreamExt;
use gloo_net::websocket::{futures::WebSocket, Message};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::transcript::{Applied, Transcript};

#[derive(Debug, Clone, PartialEq)]
pub enum LinkState {
    Connecting,
    Live,
    Reconnecting { attempt: u32 },
}

#[derive(Clone, Copy)]
pub struct Feed {
    pub transcript: RwSignal<Transcript>,
    pub viewers: RwSignal<Vec<Viewer>>,
    pub link: RwSignal<LinkState>,
    pub error: RwSignal<Option<ApiError>>,
}

fn ws_url(path: &str) -> String {
    let loc = window().location();
    let scheme = if loc.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{}{path}", loc.host().unwrap_or_default())
}

/// Runs `fut` unless `stop` fires first.
async fn unless_stopped<F: std::future::Future + Unpin>(
    fut: F,
    stop: &mut oneshot::Receiver<()>,
) -> Option<F::Output> {
    match select(fut, stop).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// Subscribes to a session for as long as the calling component lives.
pub fn subscribe(session_id: String) -> Feed {
    let feed = Feed {
        transcript: RwSignal::new(Transcript::default()),
        viewers: RwSignal::new(Vec::new()),
        link: RwSignal::new(LinkState::Connecting),
        error: RwSignal::new(None),
    };
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    on_cleanup(move || {
        stop_tx.send(()).ok();
    });
    spawn_local(async move {
        let mut attempt = 0u32;
        loop {
            let after = feed.transcript.with_untracked(|t| t.last_seq);
            let url = ws_url(&format!("/api/sessions/{session_id}/ws?after_seq={after}"));
            if let Ok(ws) = WebSocket::open(&url) {
                let (_sink, mut rx) = ws.split();
                while let Some(Some(msg)) = unless_stopped(rx.next(), &mut stop).await {
                    let Ok(Message::Text(text)) = msg else {
                        break;
                    };
                    match handle(&feed, &text) {
                        Step::Continue => {}
                        Step::CaughtUp => attempt = 0,
                        Step::Resubscribe => break,
                    }
                }
            }
            if stop.try_recv().map_or(true, |s| s.is_some()) {
                return;
            }
            attempt += 1;
            feed.link.set(LinkState::Reconnecting { attempt });
            let delay = (250u32 << attempt.min(5)).min(5000);
            let sleep = Box::pin(gloo_timers::future::TimeoutFuture::new(delay));
            if unless_stopped(sleep, &mut stop).await.is_none() {
                return;
            }
        }
    });
    feed
}

enum Step {
    Continue,
    CaughtUp,
    Resubscribe,
}

fn handle(feed: &Feed, text: &str) -> Step {
    let Ok(frame) = serde_json::from_str::<ToClientFrame>(text) else {
        return Step::Continue;
    };
    match frame {
        ToClientFrame::Events { events } => {
            let mut gap = false;
            feed.transcript.update(|t| {
                for ev in &events {
                    if let Applied::Gap { .. } = t.apply(ev) {
                        gap = true;
                        break;
                    }
                }
            });
            if gap {
                return Step::Resubscribe;
            }
        }
        ToClientFrame::CaughtUp { .. } => {
            feed.link.set(LinkState::Live);
            return Step::CaughtUp;
        }
        ToClientFrame::Presence { viewers } => feed.viewers.set(viewers),
        ToClientFrame::Error(e) => feed.error.set(Some(e)),
        ToClientFrame::PromptAccepted { .. } | ToClientFrame::Pong {} => {}
    }
    Step::Continue
}
