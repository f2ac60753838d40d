//! Frames arriving on the session's sockets: viewers' commands and the runner's events.

use agent_ops_protocol::access::STEER;
use agent_ops_protocol::bounds::{bounded, FRAME_TOO_LARGE};
use agent_ops_protocol::delivery::{accept_batch, ack_due, Accept};
use agent_ops_protocol::events::AgentState;
use agent_ops_protocol::frames::{
    parse_frame, parse_runner_frame, ClientFrame, RunnerFrame, ToClientFrame, ToRunnerFrame,
};
use agent_ops_protocol::lifecycle::{runner_resume, Input};
use agent_ops_protocol::{
    ApiError, ErrorCode, EventBody, MAX_CLIENT_FRAME_BYTES, MAX_RUNNER_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use worker::{Result, WebSocket};

use super::{prompt_state, send, SessionObject, SocketInfo};
use crate::edge::http::now_ms;

impl SessionObject {
    pub(super) async fn client_message(
        &self,
        ws: &WebSocket,
        info: &SocketInfo,
        text: &str,
    ) -> Result<()> {
        let frame = match parse_frame::<ClientFrame>(text, MAX_CLIENT_FRAME_BYTES) {
            Ok(f) => f,
            Err(e) => {
                send(ws, &ToClientFrame::Error(e));
                return Ok(());
            }
        };
        // Every message is authorized, not just the connection: a viewer watches, it does not steer.
        let steers = matches!(frame, ClientFrame::Prompt { .. } | ClientFrame::Abort {});
        if steers && info.access.as_ref().is_none_or(|a| a.check(STEER).is_err()) {
            let e = ApiError::new(
                ErrorCode::Forbidden,
                "only collaborators and owners with write access can prompt or abort",
            );
            send(ws, &ToClientFrame::Error(e));
            return Ok(());
        }
        match frame {
            ClientFrame::Ping {} => send(ws, &ToClientFrame::Pong {}),
            ClientFrame::Prompt {
                text,
                client_request_id,
            } => match self.submit_prompt(text, client_request_id).await? {
                Ok(a) => send(
                    ws,
                    &ToClientFrame::PromptAccepted {
                        client_request_id: a.client_request_id,
                        prompt_id: a.prompt_id,
                        duplicate: a.duplicate,
                    },
                ),
                Err(e) => send(ws, &ToClientFrame::Error(e)),
            },
            ClientFrame::Abort {} => {
                if let Err(e) = self.abort().await? {
                    send(ws, &ToClientFrame::Error(e));
                }
            }
        }
        Ok(())
    }

    pub(super) async fn runner_message(
        &self,
        ws: &WebSocket,
        mut info: SocketInfo,
        text: &str,
    ) -> Result<()> {
        let frame = match parse_runner_frame(text, MAX_RUNNER_FRAME_BYTES) {
            Ok(f) => f,
            Err(e) => {
                let too_large = e.code == ErrorCode::PayloadTooLarge;
                send(ws, &ToRunnerFrame::Error(e));
                if too_large {
                    // Without an ack the runner would send the same frame forever: the close
                    // code tells it to send smaller batches after it reconnects.
                    ws.close(Some(FRAME_TOO_LARGE), Some("frame too large"))
                        .ok();
                }
                return Ok(());
            }
        };
        let current = self
            .read(|p| p.runner_conn.as_deref() == Some(info.conn.as_str()))?
            .unwrap_or(false);
        if !current {
            ws.close(Some(4000), Some("replaced by a newer runner connection"))
                .ok();
            return Ok(());
        }
        if let RunnerFrame::Hello {
            instance, protocol, ..
        } = frame
        {
            return self.hello(ws, &mut info, instance, protocol).await;
        }
        if info.instance.is_none() {
            let e = ApiError::new(
                ErrorCode::ProtocolViolation,
                "the first frame must be `hello`",
            );
            send(ws, &ToRunnerFrame::Error(e));
            return Ok(());
        }
        self.runner_seen().await?;
        match frame {
            RunnerFrame::Hello { .. } => unreachable!("handled above"),
            RunnerFrame::Heartbeat { busy } => {
                if busy {
                    self.acknowledge(ws, self.runner_position()?, true);
                }
                Ok(())
            }
            RunnerFrame::CommandAck { id } => self.store()?.ack_command(id),
            RunnerFrame::Events { first_rseq, events } => {
                self.runner_events(ws, first_rseq, events).await
            }
        }
    }

    async fn hello(
        &self,
        ws: &WebSocket,
        info: &mut SocketInfo,
        instance: String,
        protocol: u32,
    ) -> Result<()> {
        if protocol != PROTOCOL_VERSION {
            let e = ApiError::new(
                ErrorCode::ProtocolViolation,
                format!(
                    "protocol {protocol} is not supported; this session speaks {PROTOCOL_VERSION}"
                ),
            );
            send(ws, &ToRunnerFrame::Error(e));
            ws.close(Some(4400), Some("unsupported protocol")).ok();
            return Ok(());
        }
        let known = self.load()?.and_then(|p| p.runner_instance);
        let last = self.runner_position()?;
        let resume = runner_resume(known.as_deref(), &instance, last);
        if resume.drop_pending_commands {
            self.store()?.drop_pending_commands()?;
        }
        let acked = resume.acked_rseq;
        // The position first, then whose it is: should the second write fail, the runner's
        // next hello is a new instance's again, which starts from 0 whatever the log says.
        let connected = EventBody::RunnerConnected {
            instance: instance.clone(),
        };
        self.emit_with(vec![connected], Some(acked))?;
        self.update(|p| p.runner_instance = Some(instance.clone()))?;
        self.acked.set(acked);
        let same_instance = resume.same_instance;
        info.instance = Some(instance);
        ws.serialize_attachment(&*info)?;
        self.remember_runner(ws, info);
        send(ws, &ToRunnerFrame::Welcome { acked_rseq: acked });
        for (id, command) in self.store()?.pending_commands()? {
            send(ws, &ToRunnerFrame::Command { id, command });
        }
        self.feed(Input::RunnerConnected {
            now_ms: now_ms(),
            same_instance,
        })
        .await?
        .ok();
        Ok(())
    }

    async fn runner_events(
        &self,
        ws: &WebSocket,
        first_rseq: u64,
        events: Vec<EventBody>,
    ) -> Result<()> {
        if let Some(bad) = events.iter().find(|e| !e.is_runner_event()) {
            let e = ApiError::new(
                ErrorCode::ProtocolViolation,
                format!("a runner may not emit `{}` events", bad.kind()),
            );
            send(ws, &ToRunnerFrame::Error(e));
            return Ok(());
        }
        let last = self.runner_position()?;
        let skip = match accept_batch(last, first_rseq, events.len()) {
            Accept::From { skip } => skip,
            Accept::Gap { expected } => {
                let e = ApiError::new(
                    ErrorCode::ProtocolViolation,
                    format!("event {first_rseq} arrived before {expected}"),
                );
                send(ws, &ToRunnerFrame::Error(e));
                // Reconnecting makes the runner resend everything after what we acknowledged.
                ws.close(Some(4409), Some("event sequence gap")).ok();
                return Ok(());
            }
        };
        let count = events.len() as u64;
        let fresh = events.len() > skip;
        let mut inputs = Vec::new();
        let mut keep = Vec::with_capacity(events.len());
        for event in events.into_iter().skip(skip) {
            match &event {
                EventBody::TurnEnded {
                    prompt_id, outcome, ..
                } => {
                    let ends = self.read(|p| p.lifecycle.ends_current_turn(prompt_id))?;
                    if ends != Some(true) {
                        continue;
                    }
                    self.store()?
                        .set_prompt_state(prompt_id, prompt_state(*outcome))?;
                    inputs.push(Input::TurnEnded {
                        prompt_id: prompt_id.clone(),
                    });
                }
                EventBody::AgentStatus { state, .. } => {
                    inputs.push(Input::AgentReady(*state == AgentState::Ready))
                }
                _ => {}
            }
            keep.push(event);
        }
        let acked = if count == 0 {
            last
        } else {
            (first_rseq + count - 1).max(last)
        };
        // The runner is not trusted to have bounded what it sends.
        let keep: Vec<EventBody> = keep.into_iter().flat_map(bounded).collect();
        if !keep.is_empty() {
            // The events and how far the runner is acknowledged, together.
            self.emit_with(keep, Some(acked))?;
        } else if acked != last {
            self.store()?.set_runner_position(acked)?;
            self.rseq.set(Some(acked));
        }
        self.acknowledge(ws, acked, !fresh);
        for input in inputs {
            self.feed(input).await?.ok();
        }
        self.wake_feeds().await
    }

    /// Tells the runner how far its events are persisted, when `ack_due` says so.
    fn acknowledge(&self, ws: &WebSocket, persisted: u64, prompted: bool) {
        if ack_due(persisted, self.acked.get(), prompted) {
            send(ws, &ToRunnerFrame::Ack { rseq: persisted });
            self.acked.set(persisted);
        }
    }
}
