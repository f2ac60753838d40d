//! The spine, end to end: a prompt travels from an API client through the session Durable
//! Object (real workerd via wrangler dev) to the real OpenCode in a bubblewrap sandbox, driven by
//! the scripted model, and streams back with nothing lost.

use std::time::Duration;

use agent_ops_protocol::delivery::ACK_EVERY_EVENTS;
use agent_ops_protocol::frames::{ClientFrame, RunnerFrame, ToClientFrame};
use agent_ops_protocol::{EventBody, SessionEvent, SessionStatus, ToolStatus, TurnOutcome};
use e2e::client::{assert_contiguous, text_of};
use e2e::runner_link::{next_ack, take_over};
use e2e::{Stack, StackOptions, TURN_TIMEOUT};
use futures::SinkExt;
use reqwest::Method;
use tokio_tungstenite::tungstenite::Message;

const SLOW_SAY: &str = "The quick brown fox jumps over the lazy dog. ";

/// A prompt whose answer streams for a few seconds, in many small deltas. The tests that need
/// deltas before the end stream long enough (20 repeats: six seconds) that even a stream seen
/// only through the runner's once-a-second poll of OpenCode's messages has several.
fn slow_prompt(repeat: usize) -> String {
    format!("@say {SLOW_SAY}\n@repeat {repeat}\n@chunk 6\n@delay_ms 40")
}

fn slow_text(repeat: usize) -> String {
    SLOW_SAY.trim_end().repeat(repeat)
}

fn is_turn_end(e: &EventBody) -> bool {
    matches!(e, EventBody::TurnEnded { .. })
}

fn turn_end_of<'a>(events: &'a [SessionEvent], prompt: &str) -> Option<&'a SessionEvent> {
    events
        .iter()
        .find(|e| matches!(&e.body, EventBody::TurnEnded { prompt_id, .. } if prompt_id == prompt))
}

fn outcome(e: &SessionEvent) -> (TurnOutcome, Option<String>) {
    match &e.body {
        EventBody::TurnEnded {
            outcome, reason, ..
        } => (*outcome, reason.clone()),
        other => panic!("not a turn end: {other:?}"),
    }
}

fn deltas(events: &[SessionEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e.body, EventBody::TextDelta { .. }))
        .count()
}

/// Reads until at least `n` text deltas have arrived.
async fn until_deltas(client: &mut e2e::ClientSocket, n: usize) {
    while deltas(&client.events) < n {
        client.read_one(TURN_TIMEOUT).await.expect("more deltas");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_writes_a_file_and_streams_the_answer() {
    let stack = Stack::start(StackOptions::default()).await;
    let answer = "I wrote notes/hello.txt for you, as asked.";
    let prompt = format!("Create the file please.\n@write notes/hello.txt Hello from the agent\n@say {answer}\n@chunk 3\n@delay_ms 60");
    let info = stack.create_session(Some(&prompt)).await;
    assert_eq!(info.status, SessionStatus::Provisioning);
    let mut client = stack.client(&info.id, 0).await;
    let end = client.until(TURN_TIMEOUT, is_turn_end).await;
    assert_eq!(outcome(&end).0, TurnOutcome::Completed);

    let content = std::fs::read_to_string(stack.workspace(&info.id).join("notes/hello.txt"))
        .expect("the agent wrote the file");
    assert_eq!(content, "Hello from the agent");
    assert_eq!(text_of(&client.events), answer);
    assert!(
        deltas(&client.events) > 1,
        "the answer arrived as a stream, not at once"
    );
    let wrote = client.events.iter().any(|e| {
        matches!(&e.body, EventBody::ToolUpdated { tool, status: ToolStatus::Completed, input, .. }
            if tool == "write" && input["filePath"] == "notes/hello.txt")
    });
    assert!(wrote, "the write tool call was reported with its arguments");
    assert!(client
        .events
        .iter()
        .any(|e| matches!(e.body, EventBody::Usage { output_tokens, .. } if output_tokens > 0)));

    let history = stack.history(&info.id).await;
    assert_contiguous(&history, 1);
    assert_eq!(
        &history[..client.events.len()],
        &client.events[..],
        "history equals what was streamed"
    );
    assert_eq!(text_of(&history), answer);
    assert_eq!(stack.session(&info.id).await.status, SessionStatus::Idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_see_identical_sequences() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(Some(&slow_prompt(3))).await;
    let mut a = stack.client(&info.id, 0).await;
    let mut b = stack.client(&info.id, 0).await;
    let (ea, eb) = tokio::join!(
        a.until(TURN_TIMEOUT, is_turn_end),
        b.until(TURN_TIMEOUT, is_turn_end)
    );
    assert_eq!(ea, eb);
    let n = ea.seq as usize;
    assert_eq!(a.events[..n], b.events[..n]);
    assert_contiguous(&a.events[..n], 1);
    assert_eq!(text_of(&a.events), slow_text(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_from_its_last_sequence_number() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(Some(&slow_prompt(20))).await;
    let mut first = stack.client(&info.id, 0).await;
    until_deltas(&mut first, 5).await;
    let seen = first.events.clone();
    let last = first.last_seq();
    first.close().await;
    tokio::time::sleep(Duration::from_millis(600)).await; // events keep coming while we are away

    let mut second = stack.client(&info.id, last).await;
    second.until(TURN_TIMEOUT, is_turn_end).await;
    let mut all = seen;
    all.extend(second.events.iter().cloned());
    assert_contiguous(&all, 1);
    assert_eq!(text_of(&all), slow_text(20));
    assert_eq!(&stack.history(&info.id).await[..all.len()], &all[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_link_cut_mid_turn_loses_nothing() {
    let stack = Stack::start(StackOptions {
        proxy_runner: true,
        ..Default::default()
    })
    .await;
    let info = stack.create_session(Some(&slow_prompt(20))).await;
    let mut client = stack.client(&info.id, 0).await;
    until_deltas(&mut client, 5).await;
    stack.proxy.as_ref().expect("proxy").cut();
    let end = client.until(TURN_TIMEOUT, is_turn_end).await;
    assert_eq!(outcome(&end), (TurnOutcome::Completed, None));

    let history = stack.history(&info.id).await;
    assert_contiguous(&history, 1);
    assert_eq!(
        text_of(&history),
        slow_text(20),
        "no gap and no duplicate in the transcript"
    );
    let connects = history
        .iter()
        .filter(|e| matches!(e.body, EventBody::RunnerConnected { .. }))
        .count();
    assert!(
        connects >= 2,
        "the runner reconnected ({connects} connections)"
    );
    let instances: std::collections::HashSet<_> = history
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::RunnerConnected { instance } => Some(instance.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(instances.len(), 1, "the same runner process came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_restart_keeps_history_and_sessions_go_on() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(Some("first prompt")).await;
    let mut client = stack.client(&info.id, 0).await;
    client.until(TURN_TIMEOUT, is_turn_end).await;
    let before = stack.history(&info.id).await;

    stack.stop_worker();
    stack.start_worker().await;

    let after = stack.history(&info.id).await;
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "history survived the restart"
    );
    let mut client = stack.client(&info.id, before.len() as u64).await;
    client
        .until(TURN_TIMEOUT, |e| {
            matches!(e, EventBody::RunnerConnected { .. })
        })
        .await;
    let (status, v) = stack
        .prompt(&info.id, "second prompt", "after-restart")
        .await;
    assert_eq!(status, 202, "{v}");
    let prompt_id = v["prompt_id"].as_str().expect("prompt id").to_owned();
    let end = client
        .until(
            TURN_TIMEOUT,
            |e| matches!(e, EventBody::TurnEnded { prompt_id: p, .. } if *p == prompt_id),
        )
        .await;
    assert_eq!(outcome(&end).0, TurnOutcome::Completed);
    assert!(text_of(&client.events).contains("You said: second prompt"));
    assert_contiguous(&stack.history(&info.id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_queue_deduplicate_and_abort() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(Some(&slow_prompt(4))).await;
    let mut client = stack.client(&info.id, 0).await;
    let first_turn = client
        .until(TURN_TIMEOUT, |e| matches!(e, EventBody::TurnStarted { .. }))
        .await;
    let EventBody::TurnStarted { prompt_id: p1 } = first_turn.body else {
        unreachable!()
    };

    // A queued prompt can be withdrawn before it runs; a second cancel, an unknown prompt and
    // the running turn each get their own stable answer.
    let (status, v) = stack.prompt(&info.id, "never runs", "crid-cancel").await;
    assert_eq!(status, 202, "{v}");
    let withdrawn = v["prompt_id"].as_str().expect("prompt id").to_owned();
    let cancel = |pid: String| {
        let stack = &stack;
        let path = format!("/api/sessions/{}/prompts/{pid}", info.id);
        async move {
            let (status, v) = stack.call(Method::DELETE, &path, None).await;
            (status, v["code"].as_str().map(str::to_owned))
        }
    };
    assert_eq!(cancel(withdrawn.clone()).await, (200, None));
    assert_eq!(
        cancel(withdrawn.clone()).await,
        (409, Some("conflict".into()))
    );
    assert_eq!(cancel(p1.clone()).await, (409, Some("conflict".into())));
    assert_eq!(
        cancel("0123456789abcdef0123456789abcdef".into()).await,
        (404, Some("not_found".into()))
    );

    let (status, v) = stack.prompt(&info.id, "queued while busy", "crid-2").await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["duplicate"], false);
    let p2 = v["prompt_id"].as_str().expect("prompt id").to_owned();
    let (status, again) = stack.prompt(&info.id, "queued while busy", "crid-2").await;
    assert_eq!(
        (status, &again["prompt_id"], &again["duplicate"]),
        (200, &v["prompt_id"], &serde_json::json!(true))
    );
    client
        .send(&ClientFrame::Prompt {
            text: "queued while busy".into(),
            client_request_id: "crid-2".into(),
        })
        .await;
    let ack = client
        .until_frame(TURN_TIMEOUT, |f| {
            matches!(f, ToClientFrame::PromptAccepted { .. })
        })
        .await;
    assert_eq!(
        ack,
        ToClientFrame::PromptAccepted {
            client_request_id: "crid-2".into(),
            prompt_id: p2.clone(),
            duplicate: true
        }
    );

    let end2 = client
        .until(
            TURN_TIMEOUT,
            |e| matches!(e, EventBody::TurnEnded { prompt_id, .. } if *prompt_id == p2),
        )
        .await;
    assert_eq!(outcome(&end2).0, TurnOutcome::Completed);
    let end1 = turn_end_of(&client.events, &p1).expect("first turn ended");
    let start2 = client
        .events
        .iter()
        .find(|e| matches!(&e.body, EventBody::TurnStarted { prompt_id } if *prompt_id == p2))
        .expect("second turn started");
    assert!(end1.seq < start2.seq, "one turn at a time, in order");
    let queued = |crid: &str| {
        client
            .events
            .iter()
            .filter(|e| matches!(&e.body, EventBody::PromptQueued { client_request_id, .. } if client_request_id == crid))
            .count()
    };
    assert_eq!(
        queued("crid-2"),
        1,
        "a repeated client request id runs once"
    );
    let runs = client
        .events
        .iter()
        .filter(|e| matches!(&e.body, EventBody::TurnStarted { prompt_id } if *prompt_id == p2))
        .count();
    assert_eq!(runs, 1);
    assert!(client.events.iter().any(
        |e| matches!(&e.body, EventBody::PromptCancelled { prompt_id } if *prompt_id == withdrawn)
    ));
    assert!(
        !client.events.iter().any(
            |e| matches!(&e.body, EventBody::TurnStarted { prompt_id } if *prompt_id == withdrawn)
        ),
        "a cancelled prompt never runs"
    );

    let (_, v3) = stack.prompt(&info.id, &slow_prompt(20), "crid-3").await;
    let p3 = v3["prompt_id"].as_str().expect("prompt id").to_owned();
    let delta_count = deltas(&client.events);
    client
        .until(
            TURN_TIMEOUT,
            |e| matches!(e, EventBody::TurnStarted { prompt_id } if *prompt_id == p3),
        )
        .await;
    while deltas(&client.events) < delta_count + 3 {
        client
            .read_one(TURN_TIMEOUT)
            .await
            .expect("the third turn streams");
    }
    let (status, v) = stack
        .call(
            Method::POST,
            &format!("/api/sessions/{}/abort", info.id),
            None,
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let end3 = client
        .until(
            TURN_TIMEOUT,
            |e| matches!(e, EventBody::TurnEnded { prompt_id, .. } if *prompt_id == p3),
        )
        .await;
    assert_eq!(outcome(&end3).0, TurnOutcome::Interrupted);
    let (status, v) = stack
        .call(
            Method::POST,
            &format!("/api/sessions/{}/abort", info.id),
            None,
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("nothing_to_abort"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runner_fails_the_turn_and_keeps_the_queue() {
    let stack = Stack::start(StackOptions {
        runner_grace_ms: 3_000,
        ..Default::default()
    })
    .await;
    let info = stack.create_session(Some(&slow_prompt(30))).await;
    let mut client = stack.client(&info.id, 0).await;
    client
        .until(TURN_TIMEOUT, |e| matches!(e, EventBody::TextDelta { .. }))
        .await;
    let (status, v) = stack
        .prompt(&info.id, "waits in the queue", "queued-1")
        .await;
    assert_eq!(status, 202, "{v}");
    let p2 = v["prompt_id"].as_str().expect("prompt id").to_owned();

    stack.kill_runner(&info.id);
    client
        .until(TURN_TIMEOUT, |e| {
            matches!(e, EventBody::RunnerDisconnected { .. })
        })
        .await;
    let end = client.until(TURN_TIMEOUT, is_turn_end).await;
    let (outcome, reason) = outcome(&end);
    assert_eq!(outcome, TurnOutcome::Failed);
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("runner lost")),
        "reason: {reason:?}"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let history = stack.history(&info.id).await;
    assert!(!history
        .iter()
        .any(|e| matches!(&e.body, EventBody::TurnStarted { prompt_id } if *prompt_id == p2)));
    assert!(history
        .iter()
        .any(|e| matches!(&e.body, EventBody::PromptQueued { prompt_id, .. } if *prompt_id == p2)));
    assert_eq!(
        stack.session(&info.id).await.status,
        SessionStatus::Disconnected
    );
    assert_contiguous(&history, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reaches_the_worker_over_tls() {
    let stack = Stack::start(StackOptions {
        tls_runner: true,
        ..Default::default()
    })
    .await;
    let info = stack.create_session(Some("@say over TLS")).await;
    let mut client = stack.client(&info.id, 0).await;
    let end = client.until(TURN_TIMEOUT, is_turn_end).await;
    assert_eq!(outcome(&end), (TurnOutcome::Completed, None));
    assert!(text_of(&client.events).contains("over TLS"));
    let front = stack.tls_front.as_ref().expect("TLS front");
    // The link (wss://) and the agent's model calls (https://) both came through it.
    assert!(
        front.handshakes() >= 2,
        "{} TLS connections",
        front.handshakes()
    );
}

/// The session acknowledges the runner's events in bulk, not frame by frame: once the runner
/// holds `ACK_EVERY_EVENTS` persisted ones, and whenever its heartbeat says it holds some (the
/// runner keeps each until acknowledged, to send it again after a reconnect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_is_acknowledged_in_bulk_and_when_its_heartbeat_asks() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(None).await;
    let mut viewer = stack.client(&info.id, 0).await;
    viewer
        .until(TURN_TIMEOUT, |e| {
            matches!(e, EventBody::RunnerConnected { .. })
        })
        .await;
    let (mut runner, acked) = take_over(&stack, &info.id, "acks").await;
    let frame = |first: u64, n: u64| {
        let events = (first..first + n)
            .map(|i| EventBody::TextDelta {
                message_id: "m".into(),
                part_id: "p".into(),
                delta: format!("d{i}"),
            })
            .collect();
        Message::text(
            serde_json::to_string(&RunnerFrame::Events {
                first_rseq: first,
                events,
            })
            .unwrap(),
        )
    };
    let delivered = |rseq: u64| {
        let want = format!("d{rseq}");
        move |e: &EventBody| matches!(e, EventBody::TextDelta { delta, .. } if *delta == want)
    };

    runner.send(frame(acked + 1, 1)).await.unwrap();
    viewer.until(TURN_TIMEOUT, delivered(acked + 1)).await;
    assert_eq!(
        next_ack(&mut runner, Duration::from_millis(500)).await,
        None,
        "one event, persisted and delivered, is not acknowledged alone"
    );
    let heartbeat = RunnerFrame::Heartbeat { busy: true };
    runner
        .send(Message::text(serde_json::to_string(&heartbeat).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        next_ack(&mut runner, TURN_TIMEOUT).await,
        Some(acked + 1),
        "a busy heartbeat is answered with how far the events are persisted"
    );

    // As many again as the bound, in four frames: the last of them is acknowledged unasked.
    let mut next = acked + 2;
    let per_frame = ACK_EVERY_EVENTS / 4;
    for _ in 0..4 {
        runner.send(frame(next, per_frame)).await.unwrap();
        next += per_frame;
    }
    assert_eq!(next_ack(&mut runner, TURN_TIMEOUT).await, Some(next - 1));
    viewer.until(TURN_TIMEOUT, delivered(next - 1)).await;
}
