//! The session lifecycle as a pure state machine. The session Durable Object feeds it inputs
//! (runner link changes, heartbeats, prompts, turn ends, alarms) and carries out the effects it
//! returns; no clock, storage or socket is touched here.
//!
//! Liveness comes from the runner's link and heartbeats, never from how long a turn has run:
//! a turn may take hours as long as its runner keeps saying it is alive.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::events::{SessionStatus, TurnOutcome};
use crate::{ApiError, ErrorCode, MAX_PROMPT_BYTES};

/// Whether a prompt may be queued, wherever it comes from (a new session's first prompt, the
/// REST API, a viewer's socket): the one check of a prompt's text.
pub fn check_prompt(text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "prompt text must not be empty",
        ));
    }
    if text.len() > MAX_PROMPT_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("prompt exceeds {MAX_PROMPT_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Whether a prompt's `client_request_id` (its idempotency key) is usable.
pub fn check_request_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 128 {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "client_request_id must be 1 to 128 characters",
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a lost runner may take to come back before its turn fails.
    pub runner_grace_ms: u64,
    /// A connected runner silent this long is treated as lost.
    pub heartbeat_stale_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            runner_grace_ms: 20_000,
            heartbeat_stale_ms: 45_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "link", rename_all = "snake_case")]
pub enum Link {
    Never,
    Connected { last_seen_ms: u64 },
    Lost { since_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub link: Link,
    pub agent_ready: bool,
    /// The prompt whose turn is running.
    pub turn: Option<String>,
    pub aborting: bool,
    /// The prompts waiting for a turn, oldest first: the queue's one source of truth (the
    /// object's `prompts` table keeps their texts and how each ended).
    #[serde(default)]
    pub queue: VecDeque<String>,
    pub terminated: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            link: Link::Never,
            agent_ready: false,
            turn: None,
            aborting: false,
            queue: VecDeque::new(),
            terminated: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    RunnerConnected {
        now_ms: u64,
        same_instance: bool,
    },
    /// Any frame from the runner: it is alive.
    RunnerSeen {
        now_ms: u64,
    },
    RunnerDisconnected {
        now_ms: u64,
    },
    AgentReady(bool),
    PromptQueued {
        prompt_id: String,
    },
    /// Withdraw a prompt before it runs; refused with `NotQueued` once it has started.
    CancelPrompt {
        prompt_id: String,
    },
    TurnEnded {
        prompt_id: String,
    },
    AbortRequested,
    Alarm {
        now_ms: u64,
    },
    Terminate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Status(SessionStatus),
    /// The prompt's turn has begun (it left the queue): send it to the runner, report
    /// `turn.started`.
    StartTurn {
        prompt_id: String,
    },
    /// End the running turn here, without the runner (it is gone or the session is ending).
    EndTurn {
        prompt_id: String,
        outcome: TurnOutcome,
        reason: String,
    },
    SendAbort {
        prompt_id: String,
    },
    /// Close the runner's socket: it stopped heartbeating.
    DropRunner,
    ArmAlarm {
        at_ms: u64,
    },
    StopSandbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Terminated,
    NothingToAbort,
    NotQueued,
}

/// What a runner's `hello` means for the link: the same process coming back resumes after the
/// last event acknowledged to it; a new process (a restart) starts its numbering afresh and gets
/// none of the commands meant for the one that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerResume {
    pub same_instance: bool,
    /// The `acked_rseq` to welcome it with.
    pub acked_rseq: u64,
    /// Whether the commands still waiting for the old process are dropped.
    pub drop_pending_commands: bool,
}

pub fn runner_resume(known: Option<&str>, instance: &str, last_rseq: u64) -> RunnerResume {
    let same_instance = known == Some(instance);
    RunnerResume {
        same_instance,
        acked_rseq: if same_instance { last_rseq } else { 0 },
        drop_pending_commands: !same_instance,
    }
}

impl Lifecycle {
    /// Whether a runner's `turn.ended` for `prompt_id` ends the turn running now. A late end of
    /// a turn already closed (failed while the runner was away, or a new process's leftover) is
    /// dropped, not recorded twice.
    pub fn ends_current_turn(&self, prompt_id: &str) -> bool {
        self.turn.as_deref() == Some(prompt_id)
    }

    pub fn status(&self) -> SessionStatus {
        if self.terminated {
            return SessionStatus::Terminated;
        }
        match self.link {
            Link::Never => SessionStatus::Provisioning,
            Link::Lost { .. } => SessionStatus::Disconnected,
            Link::Connected { .. } if !self.agent_ready => SessionStatus::Starting,
            Link::Connected { .. } if self.turn.is_some() => SessionStatus::Running,
            Link::Connected { .. } => SessionStatus::Idle,
        }
    }

    pub fn handle(&mut self, input: Input, policy: &Policy) -> Result<Vec<Effect>, Rejection> {
        let before = self.status();
        let mut fx = Vec::new();
        match input {
            Input::RunnerConnected {
                now_ms,
                same_instance,
            } => {
                if self.terminated {
                    fx.push(Effect::DropRunner);
                    return Ok(fx);
                }
                if !same_instance {
                    self.agent_ready = false;
                    if let Some(prompt_id) = self.turn.take() {
                        self.aborting = false;
                        fx.push(Effect::EndTurn {
                            prompt_id,
                            outcome: TurnOutcome::Failed,
                            reason:
                                "the runner restarted; the agent process running this turn is gone"
                                    .into(),
                        });
                    }
                }
                self.link = Link::Connected {
                    last_seen_ms: now_ms,
                };
                fx.push(Effect::ArmAlarm {
                    at_ms: now_ms + policy.heartbeat_stale_ms,
                });
            }
            Input::RunnerSeen { now_ms } => {
                if let Link::Connected { last_seen_ms } = &mut self.link {
                    *last_seen_ms = now_ms;
                }
            }
            Input::RunnerDisconnected { now_ms } => {
                if matches!(self.link, Link::Connected { .. }) && !self.terminated {
                    self.link = Link::Lost { since_ms: now_ms };
                    fx.push(Effect::ArmAlarm {
                        at_ms: now_ms + policy.runner_grace_ms,
                    });
                }
            }
            Input::AgentReady(ready) => self.agent_ready = ready,
            Input::PromptQueued { prompt_id } => {
                if self.terminated {
                    return Err(Rejection::Terminated);
                }
                self.queue.push_back(prompt_id);
            }
            Input::CancelPrompt { prompt_id } => {
                let Some(at) = self.queue.iter().position(|p| *p == prompt_id) else {
                    return Err(Rejection::NotQueued);
                };
                self.queue.remove(at);
            }
            Input::TurnEnded { prompt_id } => {
                if self.ends_current_turn(&prompt_id) {
                    self.turn = None;
                    self.aborting = false;
                }
            }
            Input::AbortRequested => {
                let Some(prompt_id) = self.turn.clone() else {
                    return Err(Rejection::NothingToAbort);
                };
                if matches!(self.link, Link::Connected { .. }) {
                    self.aborting = true;
                    fx.push(Effect::SendAbort { prompt_id });
                } else {
                    self.turn = None;
                    fx.push(Effect::EndTurn {
                        prompt_id,
                        outcome: TurnOutcome::Interrupted,
                        reason: "aborted while the runner was unreachable".into(),
                    });
                }
            }
            Input::Alarm { now_ms } => self.on_alarm(now_ms, policy, &mut fx),
            Input::Terminate => {
                if self.terminated {
                    return Ok(fx);
                }
                self.terminated = true;
                if let Some(prompt_id) = self.turn.take() {
                    fx.push(Effect::EndTurn {
                        prompt_id,
                        outcome: TurnOutcome::Interrupted,
                        reason: "the session was terminated".into(),
                    });
                }
                fx.push(Effect::StopSandbox);
            }
        }
        if !self.terminated
            && matches!(self.link, Link::Connected { .. })
            && self.agent_ready
            && self.turn.is_none()
        {
            if let Some(prompt_id) = self.queue.pop_front() {
                self.turn = Some(prompt_id.clone());
                fx.push(Effect::StartTurn { prompt_id });
            }
        }
        let after = self.status();
        if after != before {
            fx.insert(0, Effect::Status(after));
        }
        Ok(fx)
    }

    fn on_alarm(&mut self, now_ms: u64, policy: &Policy, fx: &mut Vec<Effect>) {
        match self.link {
            Link::Connected { last_seen_ms } => {
                if now_ms >= last_seen_ms + policy.heartbeat_stale_ms {
                    self.link = Link::Lost {
                        since_ms: last_seen_ms,
                    };
                    self.agent_ready = false;
                    fx.push(Effect::DropRunner);
                    self.on_alarm(now_ms, policy, fx);
                } else {
                    fx.push(Effect::ArmAlarm {
                        at_ms: last_seen_ms + policy.heartbeat_stale_ms,
                    });
                }
            }
            Link::Lost { since_ms } => {
                let deadline = since_ms + policy.runner_grace_ms;
                if now_ms < deadline {
                    fx.push(Effect::ArmAlarm { at_ms: deadline });
                } else if let Some(prompt_id) = self.turn.take() {
                    self.aborting = false;
                    fx.push(Effect::EndTurn {
                        prompt_id,
                        outcome: TurnOutcome::Failed,
                        reason: format!(
                            "runner lost: no connection for {} s",
                            (now_ms - since_ms) / 1000
                        ),
                    });
                }
            }
            Link::Never => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_runner_starts_afresh_and_the_same_one_resumes() {
        let back = runner_resume(Some("r1"), "r1", 41);
        assert_eq!(
            back,
            RunnerResume {
                same_instance: true,
                acked_rseq: 41,
                drop_pending_commands: false
            }
        );
        for known in [Some("r1"), None] {
            let fresh = runner_resume(known, "r2", 41);
            assert!(!fresh.same_instance && fresh.drop_pending_commands);
            assert_eq!(fresh.acked_rseq, 0);
        }
    }

    #[test]
    fn only_the_running_turn_can_end() {
        let l = running("p1");
        assert!(l.ends_current_turn("p1"));
        assert!(!l.ends_current_turn("p0"), "a late end of an earlier turn");
        assert!(!Lifecycle::default().ends_current_turn("p1"));
    }

    #[test]
    fn a_prompt_has_text_within_its_bound_and_a_usable_request_id() {
        assert!(check_prompt("fix it").is_ok());
        assert_eq!(
            check_prompt(" \n").unwrap_err().code,
            ErrorCode::InvalidBody
        );
        let long = "x".repeat(MAX_PROMPT_BYTES + 1);
        assert_eq!(
            check_prompt(&long).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
        assert!(check_request_id("c1").is_ok());
        assert!(check_request_id("").is_err());
        assert!(check_request_id(&"c".repeat(129)).is_err());
    }

    const P: Policy = Policy {
        runner_grace_ms: 1_000,
        heartbeat_stale_ms: 5_000,
    };

    fn ready() -> Lifecycle {
        let mut l = Lifecycle::default();
        l.handle(
            Input::RunnerConnected {
                now_ms: 0,
                same_instance: false,
            },
            &P,
        )
        .unwrap();
        l.handle(Input::AgentReady(true), &P).unwrap();
        l
    }

    fn queued(prompt: &str) -> Input {
        Input::PromptQueued {
            prompt_id: prompt.into(),
        }
    }

    fn start(prompt: &str) -> Effect {
        Effect::StartTurn {
            prompt_id: prompt.into(),
        }
    }

    fn running(prompt: &str) -> Lifecycle {
        let mut l = ready();
        let fx = l.handle(queued(prompt), &P).unwrap();
        assert!(fx.contains(&start(prompt)));
        l
    }

    #[test]
    fn provisioning_until_runner_and_agent_ready() {
        let mut l = Lifecycle::default();
        assert_eq!(l.status(), SessionStatus::Provisioning);
        let fx = l.handle(queued("p1"), &P).unwrap();
        assert!(!fx.contains(&start("p1")), "no runner yet");
        let fx = l
            .handle(
                Input::RunnerConnected {
                    now_ms: 0,
                    same_instance: false,
                },
                &P,
            )
            .unwrap();
        assert_eq!(fx[0], Effect::Status(SessionStatus::Starting));
        assert!(!fx.contains(&start("p1")), "agent not ready");
        let fx = l.handle(Input::AgentReady(true), &P).unwrap();
        assert_eq!(
            fx,
            vec![Effect::Status(SessionStatus::Running), start("p1")]
        );
    }

    #[test]
    fn one_turn_at_a_time_then_queue_drains() {
        let mut l = running("p1");
        assert_eq!(l.status(), SessionStatus::Running);
        let fx = l.handle(queued("p2"), &P).unwrap();
        assert!(fx.is_empty(), "queued behind the running turn: {fx:?}");
        l.handle(queued("p3"), &P).unwrap();
        let fx = l
            .handle(
                Input::TurnEnded {
                    prompt_id: "p1".into(),
                },
                &P,
            )
            .unwrap();
        assert_eq!(fx, vec![start("p2")], "the next turn starts at once");
        assert_eq!(l.turn.as_deref(), Some("p2"));
        assert_eq!(l.queue, ["p3"]);
        let fx = l
            .handle(
                Input::TurnEnded {
                    prompt_id: "p2".into(),
                },
                &P,
            )
            .unwrap();
        assert_eq!(fx, vec![start("p3")]);
        let fx = l
            .handle(
                Input::TurnEnded {
                    prompt_id: "p3".into(),
                },
                &P,
            )
            .unwrap();
        assert_eq!(fx, vec![Effect::Status(SessionStatus::Idle)]);
    }

    #[test]
    fn only_a_prompt_still_queued_is_withdrawn() {
        let mut l = running("p1");
        l.handle(queued("p2"), &P).unwrap();
        l.handle(queued("p3"), &P).unwrap();
        let cancel = |p: &str| Input::CancelPrompt {
            prompt_id: p.into(),
        };
        assert_eq!(l.handle(cancel("p2"), &P), Ok(vec![]));
        assert_eq!(l.handle(cancel("p2"), &P), Err(Rejection::NotQueued));
        assert_eq!(
            l.handle(cancel("p1"), &P),
            Err(Rejection::NotQueued),
            "running, not queued"
        );
        let fx = l
            .handle(
                Input::TurnEnded {
                    prompt_id: "p1".into(),
                },
                &P,
            )
            .unwrap();
        assert_eq!(fx, vec![start("p3")], "the withdrawn one is skipped");
    }

    #[test]
    fn stale_turn_end_is_ignored() {
        let mut l = running("p2");
        l.handle(
            Input::TurnEnded {
                prompt_id: "p1".into(),
            },
            &P,
        )
        .unwrap();
        assert_eq!(l.turn.as_deref(), Some("p2"));
    }

    #[test]
    fn lost_runner_fails_turn_after_grace_and_keeps_queue() {
        let mut l = running("p1");
        l.handle(queued("p2"), &P).unwrap();
        let fx = l
            .handle(Input::RunnerDisconnected { now_ms: 100 }, &P)
            .unwrap();
        assert_eq!(
            fx,
            vec![
                Effect::Status(SessionStatus::Disconnected),
                Effect::ArmAlarm { at_ms: 1_100 }
            ]
        );
        let fx = l.handle(Input::Alarm { now_ms: 600 }, &P).unwrap();
        assert_eq!(fx, vec![Effect::ArmAlarm { at_ms: 1_100 }]);
        let fx = l.handle(Input::Alarm { now_ms: 1_200 }, &P).unwrap();
        assert!(matches!(
            &fx[0],
            Effect::EndTurn { prompt_id, outcome: TurnOutcome::Failed, reason } if prompt_id == "p1" && reason.contains("runner lost")
        ));
        assert_eq!(l.queue, ["p2"], "queued prompts survive");
        assert!(!fx.contains(&start("p2")));
    }

    #[test]
    fn reconnect_within_grace_keeps_turn() {
        let mut l = running("p1");
        l.handle(Input::RunnerDisconnected { now_ms: 100 }, &P)
            .unwrap();
        let fx = l
            .handle(
                Input::RunnerConnected {
                    now_ms: 500,
                    same_instance: true,
                },
                &P,
            )
            .unwrap();
        assert_eq!(fx[0], Effect::Status(SessionStatus::Running));
        assert_eq!(l.turn.as_deref(), Some("p1"));
        let fx = l.handle(Input::Alarm { now_ms: 1_200 }, &P).unwrap();
        assert_eq!(fx, vec![Effect::ArmAlarm { at_ms: 5_500 }]);
    }

    #[test]
    fn new_runner_instance_fails_the_old_turn() {
        let mut l = running("p1");
        let fx = l
            .handle(
                Input::RunnerConnected {
                    now_ms: 10,
                    same_instance: false,
                },
                &P,
            )
            .unwrap();
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::EndTurn {
                outcome: TurnOutcome::Failed,
                ..
            }
        )));
        assert_eq!(l.status(), SessionStatus::Starting);
    }

    #[test]
    fn silent_runner_is_dropped_then_fails_turn() {
        let mut l = running("p1");
        l.handle(Input::RunnerSeen { now_ms: 1_000 }, &P).unwrap();
        let fx = l.handle(Input::Alarm { now_ms: 5_000 }, &P).unwrap();
        assert_eq!(fx, vec![Effect::ArmAlarm { at_ms: 6_000 }]);
        let fx = l.handle(Input::Alarm { now_ms: 7_000 }, &P).unwrap();
        assert!(fx.contains(&Effect::DropRunner));
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::EndTurn {
                outcome: TurnOutcome::Failed,
                ..
            }
        )));
    }

    #[test]
    fn abort_goes_to_runner_or_ends_locally() {
        let mut l = ready();
        assert_eq!(
            l.handle(Input::AbortRequested, &P),
            Err(Rejection::NothingToAbort)
        );
        let mut l = running("p1");
        let fx = l.handle(Input::AbortRequested, &P).unwrap();
        assert_eq!(
            fx,
            vec![Effect::SendAbort {
                prompt_id: "p1".into()
            }]
        );
        let mut l = running("p1");
        l.handle(Input::RunnerDisconnected { now_ms: 0 }, &P)
            .unwrap();
        let fx = l.handle(Input::AbortRequested, &P).unwrap();
        assert!(matches!(
            &fx[0],
            Effect::EndTurn {
                outcome: TurnOutcome::Interrupted,
                ..
            }
        ));
    }

    #[test]
    fn terminate_is_final() {
        let mut l = running("p1");
        let fx = l.handle(Input::Terminate, &P).unwrap();
        assert_eq!(fx[0], Effect::Status(SessionStatus::Terminated));
        assert!(fx.contains(&Effect::StopSandbox));
        assert_eq!(l.handle(queued("p2"), &P), Err(Rejection::Terminated));
        let fx = l
            .handle(
                Input::RunnerConnected {
                    now_ms: 0,
                    same_instance: true,
                },
                &P,
            )
            .unwrap();
        assert_eq!(fx, vec![Effect::DropRunner]);
        assert_eq!(l.handle(Input::Terminate, &P), Ok(vec![]));
    }
}
