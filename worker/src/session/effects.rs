//! Carrying out what the lifecycle machine decided: events, commands to the runner, alarms and
//! the I/O that waits until an event's synchronous part is done.

use std::collections::VecDeque;

use agent_ops_protocol::frames::{Command, ToRunnerFrame};
use agent_ops_protocol::lifecycle::{Effect, Input};
use agent_ops_protocol::{EventBody, SessionStatus};
use worker::{Result, WebSocket};

use super::store::PromptState;
use super::{prompt_state, send, SessionObject, SocketInfo};
use crate::edge::http::now_ms;

/// I/O that must wait until the synchronous part of an event is done.
enum Job {
    IndexStatus(SessionStatus),
    Alarm(u64),
    DestroySandbox,
}

impl SessionObject {
    pub(super) async fn apply(&self, effects: Vec<Effect>) -> Result<()> {
        let mut queue: VecDeque<Effect> = effects.into();
        let mut jobs = Vec::new();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Status(status) => {
                    self.emit(vec![EventBody::Status {
                        status,
                        reason: None,
                    }])?;
                    jobs.push(Job::IndexStatus(status));
                }
                Effect::StartTurn { prompt_id } => {
                    let text = self.store()?.prompt_text(&prompt_id)?.ok_or_else(|| {
                        worker::Error::RustError(format!("prompt {prompt_id} has no text"))
                    })?;
                    self.store()?
                        .set_prompt_state(&prompt_id, PromptState::Running)?;
                    self.emit(vec![EventBody::TurnStarted {
                        prompt_id: prompt_id.clone(),
                    }])?;
                    self.send_command(Command::Prompt { prompt_id, text })?;
                }
                Effect::EndTurn {
                    prompt_id,
                    outcome,
                    reason,
                } => {
                    self.store()?
                        .set_prompt_state(&prompt_id, prompt_state(outcome))?;
                    self.emit(vec![EventBody::TurnEnded {
                        prompt_id: prompt_id.clone(),
                        outcome,
                        reason: Some(reason),
                    }])?;
                    if let Ok(more) = self.step(Input::TurnEnded { prompt_id })? {
                        queue.extend(more);
                    }
                }
                Effect::SendAbort { prompt_id } => {
                    self.send_command(Command::Abort { prompt_id })?
                }
                Effect::DropRunner => {
                    // A runner that dies without closing its socket is noticed here, by silence.
                    self.emit(vec![EventBody::RunnerDisconnected {
                        reason: "runner stopped sending heartbeats".into(),
                    }])?;
                    self.close_runner(4408, "runner heartbeat timed out")?;
                }
                Effect::ArmAlarm { at_ms } => jobs.push(Job::Alarm(at_ms)),
                Effect::StopSandbox => {
                    self.send_command(Command::Stop)?;
                    self.close_runner(4001, "session terminated")?;
                    jobs.push(Job::DestroySandbox);
                }
            }
        }
        for job in jobs {
            match job {
                Job::IndexStatus(status) => {
                    let id = self.load()?.map(|p| p.session_id).unwrap_or_default();
                    crate::db::sessions::set_status(
                        &crate::db::Db::of(&self.env)?,
                        &id,
                        status,
                        now_ms(),
                    )
                    .await?;
                }
                Job::Alarm(at) => self.arm_alarm(at).await?,
                Job::DestroySandbox => {
                    let id = self.load()?.map(|p| p.session_id).unwrap_or_default();
                    if let Err(e) = crate::sandbox::provider::destroy(&self.env, &id).await {
                        worker::console_error!("destroying sandbox {id}: {e}");
                    }
                }
            }
        }
        self.wake_feeds().await
    }

    /// Any frame proves the runner alive. Recording that at most once a second keeps the hot
    /// path (a frame of deltas) to the one write it needs, while staleness is judged in seconds.
    pub(super) async fn runner_seen(&self) -> Result<()> {
        let now = now_ms();
        if now.saturating_sub(self.seen_at.get()) < 1000 {
            return Ok(());
        }
        self.seen_at.set(now);
        self.feed(Input::RunnerSeen { now_ms: now }).await?.ok();
        Ok(())
    }

    /// Records the command, then sends it if a runner is connected; unacknowledged commands are
    /// sent again when the runner comes back.
    pub(super) fn send_command(&self, command: Command) -> Result<()> {
        let id = self.store()?.enqueue_command(&command)?;
        if let Some(ws) = self.runner_socket()? {
            send(&ws, &ToRunnerFrame::Command { id, command });
        }
        Ok(())
    }

    pub(super) fn runner_socket(&self) -> Result<Option<WebSocket>> {
        let Some(conn) = self.load()?.and_then(|p| p.runner_conn) else {
            return Ok(None);
        };
        Ok(self
            .state
            .get_websockets_with_tag("runner")
            .into_iter()
            .find(|ws| {
                ws.deserialize_attachment::<SocketInfo>()
                    .ok()
                    .flatten()
                    .is_some_and(|i| i.conn == conn && i.instance.is_some())
            }))
    }

    pub(super) fn close_runner(&self, code: u16, reason: &str) -> Result<()> {
        self.update(|p| p.runner_conn = None)?;
        for ws in self.state.get_websockets_with_tag("runner") {
            ws.close(Some(code), Some(reason)).ok();
        }
        Ok(())
    }
}
