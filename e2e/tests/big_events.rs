//! No event, and no batch of them, can wedge a session: tool calls far bigger than the link's
//! frame limit, one at a time or many buffered while the link is down, are delivered (bounded),
//! the turn ends, the next prompt works, and the log has no gap and nothing twice. Before the
//! fix the runner resent the same over-limit frame after every reconnect, forever.

use std::collections::HashSet;
use std::time::Duration;

use agent_ops_protocol::{EventBody, SessionEvent, ToolStatus, TurnOutcome};
use e2e::client::{assert_contiguous, text_of};
use e2e::{Stack, StackOptions, TURN_TIMEOUT};

fn is_end(e: &EventBody) -> bool {
    matches!(e, EventBody::TurnEnded { .. })
}

/// The log is whole (no gap), every tool call's completion is in it, and no stored event is
/// bigger than the bounds allow.
fn assert_delivered(history: &[SessionEvent], calls: usize) {
    assert_contiguous(history, 1);
    let mut completed: HashSet<&str> = HashSet::new();
    for e in history {
        if let EventBody::ToolUpdated {
            call_id,
            status: ToolStatus::Completed,
            ..
        } = &e.body
        {
            completed.insert(call_id);
        }
        let size = serde_json::to_string(e).unwrap().len();
        assert!(size < 512 << 10, "an event of {size} bytes was stored");
    }
    assert_eq!(completed.len(), calls, "{completed:?}");
}

/// The turn ended, completed or failed by the agent itself (no model takes a context of a
/// million tokens, and OpenCode says so), never by a link that could not carry its events.
fn assert_ended_by_the_agent(end: &SessionEvent) {
    let EventBody::TurnEnded {
        outcome, reason, ..
    } = &end.body
    else {
        panic!("not a turn's end: {end:?}")
    };
    assert!(
        *outcome == TurnOutcome::Completed
            || reason
                .as_deref()
                .is_some_and(|r| !r.starts_with("runner lost")),
        "{end:?}"
    );
}

/// The session is not wedged: the next prompt runs to its end.
async fn next_prompt_runs(stack: &Stack, id: &str) {
    let tail = stack.history_tail_seq(id).await;
    let (status, v) = stack.prompt(id, "@say after-the-big-ones", "next").await;
    assert_eq!(status, 202, "{v}");
    let mut c = stack.client(id, tail).await;
    let end = c.until(TURN_TIMEOUT, is_end).await;
    assert_ended_by_the_agent(&end);
    assert_contiguous(&stack.history(id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_over_the_frame_limit_does_not_wedge_the_session() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack
        .create_session(Some("@write_bytes big.txt 5000000\n@say wrote it"))
        .await;
    let mut c = stack.client(&info.id, 0).await;
    let end = c.until(TURN_TIMEOUT, is_end).await;
    assert_ended_by_the_agent(&end);
    // The agent's work is whole; only what the log says of it is cut.
    let written = std::fs::metadata(stack.workspace(&info.id).join("big.txt")).unwrap();
    assert_eq!(written.len(), 5_000_000);
    let history = stack.history(&info.id).await;
    assert_delivered(&history, 1);
    let cut = history.iter().any(|e| {
        matches!(&e.body, EventBody::ToolUpdated { input, .. }
            if input.to_string().contains("bytes cut by Agent Ops"))
    });
    assert!(cut, "the tool's input says it was cut");
    next_prompt_runs(&stack, &info.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_tool_calls_buffered_while_the_link_is_down_are_delivered() {
    let stack = Stack::start(StackOptions {
        proxy_runner: true,
        // The link is down for longer than a runner would be let go otherwise.
        runner_grace_ms: 120_000,
        ..Default::default()
    })
    .await;
    let info = stack.create_session(None).await;
    let mut c = stack.client(&info.id, 0).await;
    let files = 8;
    let prompt: String = (0..files)
        .map(|i| format!("@write_bytes f{i}.txt 1500000\n"))
        .chain(["@say all written".to_owned()])
        .collect();
    let (status, v) = stack.prompt(&info.id, &prompt, "big-batch").await;
    assert_eq!(status, 202, "{v}");
    // Down once the agent is at work on it.
    c.until(TURN_TIMEOUT, |e| matches!(e, EventBody::ToolUpdated { .. }))
        .await;
    let proxy = stack.proxy.as_ref().expect("proxy");
    proxy.take_down();
    // The agent goes on while its link is down: its events wait in the runner's outbox (tens
    // of MiB before they were bounded, far over one frame).
    let workspace = stack.workspace(&info.id);
    let deadline = tokio::time::Instant::now() + TURN_TIMEOUT;
    while (0..files).any(|i| {
        std::fs::metadata(workspace.join(format!("f{i}.txt"))).map_or(true, |m| m.len() < 1_500_000)
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent never wrote its files"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    let end = c.until(TURN_TIMEOUT, is_end).await;
    assert_ended_by_the_agent(&end);
    let history = stack.history(&info.id).await;
    assert_delivered(&history, files);
    let connects = history
        .iter()
        .filter(|e| matches!(e.body, EventBody::RunnerConnected { .. }))
        .count();
    assert!(connects >= 2, "the link was down and came back: {connects}");
    if matches!(
        end.body,
        EventBody::TurnEnded {
            outcome: TurnOutcome::Completed,
            ..
        }
    ) {
        assert_eq!(text_of(&history), "all written", "each delta once");
    }
    next_prompt_runs(&stack, &info.id).await;
}
