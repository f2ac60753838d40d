//! Drives OpenCode: supervises `opencode serve`, runs one turn at a time, and reports what the
//! agent does as protocol events. A turn ends when OpenCode's stored messages say so; the event
//! stream only makes it live.

mod server;
mod translate;

use std::time::Duration;

use agent_ops_protocol::events::AgentState;
use agent_ops_protocol::frames::Command;
use agent_ops_protocol::{EventBody, TurnOutcome};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use server::ServerConfig;
use server::{follow_events, Server, StreamItem};
use translate::{turn_error, turn_finished, Signal, Translator};

struct Turn {
    prompt_id: String,
    translator: Translator,
    /// How many stored messages existed before the prompt: the turn's are the ones after.
    baseline: usize,
    started: Instant,
    aborting: bool,
    error: Option<String>,
}

/// Why the agent loop returned.
enum Exit {
    Stopped,
    Crashed(String),
}

pub async fn drive(
    cfg: ServerConfig,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<EventBody>,
) {
    if let Some(url) = &cfg.repo {
        prepare_workspace(url, cfg.branch.as_deref(), &cfg.workspace, &events).await;
    }
    let mut backoff = Duration::from_millis(250);
    loop {
        let status = |state, detail: Option<String>| EventBody::AgentStatus { state, detail };
        if events
            .send(status(AgentState::Starting, None))
            .await
            .is_err()
        {
            return;
        }
        let server = match Server::start(&cfg).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                events
                    .send(status(AgentState::Restarting, Some(e.to_string())))
                    .await
                    .ok();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(250);
        match session_loop(server, &cfg, &mut commands, &events).await {
            Exit::Stopped => return,
            Exit::Crashed(why) => {
                tracing::warn!("opencode exited: {why}; restarting");
                events
                    .send(status(AgentState::Restarting, Some(why)))
                    .await
                    .ok();
            }
        }
    }
}

async fn session_loop(
    mut server: Server,
    cfg: &ServerConfig,
    commands: &mut mpsc::Receiver<Command>,
    events: &mpsc::Sender<EventBody>,
) -> Exit {
    let sid = match server.session(&cfg.state_dir).await {
        Ok(s) => s,
        Err(e) => return Exit::Crashed(e.to_string()),
    };
    let (stream_tx, mut stream) = mpsc::channel(1024);
    let follower = tokio::spawn(follow_events(
        server.base.clone(),
        server.events.clone(),
        stream_tx,
    ));
    events
        .send(EventBody::AgentStatus {
            state: AgentState::Ready,
            detail: None,
        })
        .await
        .ok();
    let mut turn: Option<Turn> = None;
    let mut poll = tokio::time::interval(Duration::from_millis(1000));
    let exit = loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                None | Some(Command::Stop) => break Exit::Stopped,
                // The gateway's (main.rs routes them there).
                Some(Command::Revoke { .. }) => {}
                Some(Command::Prompt { prompt_id, text }) => {
                    if let Some(t) = &turn {
                        // The session object runs one turn at a time; this is a protocol bug.
                        let reason = format!("turn {} is still running", t.prompt_id);
                        send_end(events, &prompt_id, TurnOutcome::Failed, Some(reason)).await;
                        continue;
                    }
                    turn = start_turn(&server, &sid, prompt_id, &text, events).await;
                }
                Some(Command::Abort { prompt_id }) => {
                    if let Some(t) = turn.as_mut().filter(|t| t.prompt_id == prompt_id) {
                        t.aborting = true;
                        if let Err(e) = server.abort(&sid).await {
                            tracing::warn!("abort: {e}");
                        }
                        finish_if_done(&server, &sid, &mut turn, events).await;
                    }
                }
            },
            item = stream.recv() => {
                let Some(item) = item else { break Exit::Crashed("event stream ended".into()) };
                let Some(t) = turn.as_mut() else { continue };
                match item {
                    StreamItem::Event(v) => {
                        let (out, signal) = t.translator.on_event(&v);
                        for e in out {
                            events.send(e).await.ok();
                        }
                        match signal {
                            Some(Signal::Idle) => finish_if_done(&server, &sid, &mut turn, events).await,
                            Some(Signal::Error(msg)) => t.error = Some(msg),
                            _ => {}
                        }
                    }
                    StreamItem::Gap => finish_if_done(&server, &sid, &mut turn, events).await,
                }
            }
            _ = poll.tick() => {
                if turn.as_ref().is_some_and(|t| t.started.elapsed() > Duration::from_millis(500)) {
                    finish_if_done(&server, &sid, &mut turn, events).await;
                }
            }
            status = server.child.wait() => {
                break Exit::Crashed(format!("opencode exited with {status:?}"));
            }
        }
    };
    follower.abort();
    if let Some(t) = turn {
        let reason = match &exit {
            Exit::Crashed(why) => format!("the agent process died mid-turn ({why})"),
            Exit::Stopped => "the sandbox is stopping".to_owned(),
        };
        send_end(events, &t.prompt_id, TurnOutcome::Failed, Some(reason)).await;
    }
    server.child.kill().await.ok();
    exit
}

async fn start_turn(
    server: &Server,
    sid: &str,
    prompt_id: String,
    text: &str,
    events: &mpsc::Sender<EventBody>,
) -> Option<Turn> {
    let baseline = match server.messages(sid).await {
        Ok(m) => m.len(),
        Err(e) => {
            send_end(events, &prompt_id, TurnOutcome::Failed, Some(e.to_string())).await;
            return None;
        }
    };
    if let Err(e) = server.prompt(sid, text).await {
        send_end(events, &prompt_id, TurnOutcome::Failed, Some(e.to_string())).await;
        return None;
    }
    Some(Turn {
        translator: Translator::new(&prompt_id, sid),
        prompt_id,
        baseline,
        started: Instant::now(),
        aborting: false,
        error: None,
    })
}

/// Checks OpenCode's stored messages: emits whatever the stream missed and, if the turn is
/// over, its usage and end.
async fn finish_if_done(
    server: &Server,
    sid: &str,
    turn: &mut Option<Turn>,
    events: &mpsc::Sender<EventBody>,
) {
    let Some(t) = turn.as_mut() else { return };
    let Ok(all) = server.messages(sid).await else {
        return;
    };
    let mine: Vec<Value> = all.into_iter().skip(t.baseline).collect();
    for e in t.translator.reconcile(&mine) {
        events.send(e).await.ok();
    }
    let busy = server.busy(sid).await.unwrap_or(true);
    let finished = !busy && (turn_finished(&mine) || t.aborting || t.error.is_some());
    if !finished {
        return;
    }
    let (outcome, reason) = match (turn_error(&mine), t.aborting, &t.error) {
        (Some((true, _)), _, _) | (_, true, _) => {
            (TurnOutcome::Interrupted, Some("aborted".to_owned()))
        }
        (Some((false, msg)), _, _) => (TurnOutcome::Failed, Some(msg)),
        (None, false, Some(msg)) => (TurnOutcome::Failed, Some(msg.clone())),
        (None, false, None) => (TurnOutcome::Completed, None),
    };
    events.send(t.translator.usage(&mine)).await.ok();
    send_end(events, &t.prompt_id, outcome, reason).await;
    *turn = None;
}

async fn send_end(
    events: &mpsc::Sender<EventBody>,
    prompt_id: &str,
    outcome: TurnOutcome,
    reason: Option<String>,
) {
    events
        .send(EventBody::TurnEnded {
            prompt_id: prompt_id.to_owned(),
            outcome,
            reason,
        })
        .await
        .ok();
}

/// Clones the session's repository into an empty workspace, reporting progress (and failure,
/// which leaves the agent an empty workspace rather than no agent at all).
async fn prepare_workspace(
    url: &str,
    branch: Option<&str>,
    workspace: &std::path::Path,
    events: &mpsc::Sender<EventBody>,
) {
    let empty = std::fs::read_dir(workspace)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty {
        return;
    }
    let status = |detail: String| EventBody::AgentStatus {
        state: AgentState::Starting,
        detail: Some(detail),
    };
    events.send(status(format!("cloning {url}"))).await.ok();
    let mut git = tokio::process::Command::new("git");
    git.args(["clone", "--quiet"]);
    if let Some(branch) = branch {
        git.args(["--branch", branch]);
    }
    let out = git
        .args(["--", url, "."])
        .current_dir(workspace)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await;
    let detail = match out {
        Ok(o) if o.status.success() => format!("cloned {url}"),
        Ok(o) => format!(
            "clone of {url} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("clone of {url} failed: {e}"),
    };
    events.send(status(detail)).await.ok();
}
