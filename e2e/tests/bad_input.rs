//! Bad input, from every side, gets a stable error code and message; nothing is persisted
//! wrongly and nothing panics (the connection stays usable afterwards).

use std::time::Duration;

use agent_ops_protocol::frames::{ClientFrame, RunnerFrame, ToClientFrame, ToRunnerFrame};
use agent_ops_protocol::{EventBody, PROTOCOL_VERSION};
use e2e::runner_link::{self, runner_socket};
use e2e::{ClientSocket, Stack, StackOptions, TURN_TIMEOUT};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use tokio_tungstenite::tungstenite::Message;

const SHORT: Duration = Duration::from_secs(10);

fn code(v: &serde_json::Value) -> &str {
    v["code"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_stable() {
    let stack = Stack::start(StackOptions::default()).await;
    let post = |body: &str| {
        stack.call_as(
            Some(&stack.admin_key),
            Method::POST,
            "/api/sessions",
            Some(body.to_owned()),
        )
    };

    let (s, v) = post("{not json").await;
    assert_eq!((s, code(&v)), (400, "invalid_body"));
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    let (s, v) = post(r#"{"prompt": "x", "launch_missiles": true}"#).await;
    assert_eq!((s, code(&v)), (400, "invalid_body"));
    let (s, v) = post(r#"{"prompt": "   "}"#).await;
    assert_eq!((s, code(&v)), (400, "invalid_body"));
    let (s, v) = post(&serde_json::json!({"prompt": "x".repeat(200_000)}).to_string()).await;
    assert_eq!((s, code(&v)), (413, "payload_too_large"));

    let (s, v) = stack
        .call_as(None, Method::GET, "/api/sessions", None)
        .await;
    assert_eq!((s, code(&v)), (401, "unauthorized"));
    let (s, v) = stack
        .call_as(Some("wrong-key"), Method::GET, "/api/sessions", None)
        .await;
    assert_eq!((s, code(&v)), (401, "unauthorized"));
    let (s, v) = stack.call(Method::GET, "/api/nowhere", None).await;
    assert_eq!((s, code(&v)), (404, "not_found"));

    let unknown = "0123456789abcdef0123456789abcdef";
    for (method, path) in [
        (Method::GET, format!("/api/sessions/{unknown}")),
        (Method::GET, format!("/api/sessions/{unknown}/events")),
        (Method::POST, format!("/api/sessions/{unknown}/prompts")),
        (Method::DELETE, format!("/api/sessions/{unknown}")),
        (Method::GET, "/api/sessions/not-an-id".to_owned()),
    ] {
        let (s, v) = stack
            .call(method, &path, Some(serde_json::json!({"text": "x"})))
            .await;
        assert_eq!((s, code(&v)), (404, "not_found"), "{path}");
    }

    // Nothing of the above created a session.
    let (s, v) = stack.call(Method::GET, "/api/sessions", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(0));

    let info = stack.create_session(None).await;
    let path = format!("/api/sessions/{}/prompts", info.id);
    let (s, v) = stack
        .call_as(
            Some(&stack.admin_key),
            Method::POST,
            &path,
            Some("[]".into()),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_body"));
    let (s, v) = stack
        .call(Method::POST, &path, Some(serde_json::json!({"text": ""})))
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_body"));
    let (s, v) = stack
        .call(
            Method::POST,
            &path,
            Some(serde_json::json!({"text": "x", "client_request_id": "c".repeat(500)})),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_body"));
    let history = stack.history(&info.id).await;
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.body, EventBody::PromptQueued { .. })),
        "no bad prompt was queued"
    );

    stack.terminate_session(&info.id).await;
    let (s, v) = stack.prompt(&info.id, "too late", "late").await;
    assert_eq!((s, code(&v)), (409, "session_terminated"));
    assert_eq!(
        stack.session(&info.id).await.status,
        agent_ops_protocol::SessionStatus::Terminated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_frame_errors_are_stable() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(None).await;
    let mut c = stack.client(&info.id, 0).await;
    c.until_frame(SHORT, |f| matches!(f, ToClientFrame::CaughtUp { .. }))
        .await;

    let cases: Vec<(Message, &str)> = vec![
        (Message::text("garbage"), "malformed_frame"),
        (Message::text(r#"{"type":"launch"}"#), "unknown_frame_type"),
        (Message::text(r#"{"type":"prompt"}"#), "malformed_frame"),
        (
            Message::text(format!(
                r#"{{"type":"ping","pad":"{}"}}"#,
                "x".repeat(300_000)
            )),
            "payload_too_large",
        ),
        (Message::binary(vec![1u8, 2, 3]), "malformed_frame"),
        (
            Message::text(r#"{"type":"prompt","text":"  ","client_request_id":"c"}"#),
            "invalid_body",
        ),
        (Message::text(r#"{"type":"abort"}"#), "nothing_to_abort"),
    ];
    for (i, (msg, expected)) in cases.into_iter().enumerate() {
        c.send_raw(msg).await;
        let frame = c
            .until_frame(SHORT, |f| matches!(f, ToClientFrame::Error(_)))
            .await;
        let ToClientFrame::Error(e) = frame else {
            unreachable!()
        };
        assert_eq!(e.code.as_str(), expected, "case {i}: {}", e.message);
        c.others.clear();
    }
    c.send(&ClientFrame::Ping {}).await;
    c.until_frame(SHORT, |f| matches!(f, ToClientFrame::Pong {}))
        .await;
    let history = stack.history(&info.id).await;
    assert!(!history
        .iter()
        .any(|e| matches!(e.body, EventBody::PromptQueued { .. })));

    let other = ClientSocket::connect(
        &stack.ws_url(&format!("/api/sessions/{}/ws", info.id)),
        "wrong-key",
    )
    .await;
    assert!(other.is_err(), "a client socket needs valid credentials");
}

async fn next_error<S>(ws: &mut S) -> String
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(SHORT, ws.next())
            .await
            .expect("a reply")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            if let Ok(ToRunnerFrame::Error(e)) = serde_json::from_str::<ToRunnerFrame>(&t) {
                return e.code.as_str().to_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_socket_is_authenticated_and_validated() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(None).await;
    let mut c = stack.client(&info.id, 0).await;
    c.until(TURN_TIMEOUT, |e| {
        matches!(e, EventBody::RunnerConnected { .. })
    })
    .await;

    assert_eq!(
        runner_socket(&stack, &info.id, "not-the-token").await.err(),
        Some(401)
    );
    assert_eq!(
        runner_socket(&stack, "0123456789abcdef0123456789abcdef", "x")
            .await
            .err(),
        Some(404)
    );

    // Take the real runner's place with its own token (as the provider received it), so the
    // session object sees our frames as the runner's.
    let token = stack.runner_token(&info.id).expect("runner token");
    stack.kill_runner(&info.id);
    let mut ws = runner_socket(&stack, &info.id, &token)
        .await
        .expect("runner socket with the right token");
    let events = RunnerFrame::Events {
        first_rseq: 1,
        events: vec![EventBody::AgentStatus {
            state: agent_ops_protocol::events::AgentState::Ready,
            detail: None,
        }],
    };
    ws.send(Message::text(serde_json::to_string(&events).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        "protocol_violation",
        "events before hello"
    );
    ws.send(Message::text("{]")).await.unwrap();
    assert_eq!(next_error(&mut ws).await, "malformed_frame");
    ws.send(Message::text(r#"{"type":"teleport"}"#))
        .await
        .unwrap();
    assert_eq!(next_error(&mut ws).await, "unknown_frame_type");

    let hello = RunnerFrame::Hello {
        instance: "impostor".into(),
        protocol: PROTOCOL_VERSION,
        agent: "opencode".into(),
    };
    ws.send(Message::text(serde_json::to_string(&hello).unwrap()))
        .await
        .unwrap();
    let forged = RunnerFrame::Events {
        first_rseq: 1,
        events: vec![EventBody::PromptQueued {
            prompt_id: "p".into(),
            client_request_id: "c".into(),
            text: "forged".into(),
        }],
    };
    ws.send(Message::text(serde_json::to_string(&forged).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        "protocol_violation",
        "a runner cannot forge a prompt"
    );
    let gap = RunnerFrame::Events {
        first_rseq: 5,
        events: vec![EventBody::AgentStatus {
            state: agent_ops_protocol::events::AgentState::Ready,
            detail: None,
        }],
    };
    ws.send(Message::text(serde_json::to_string(&gap).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut ws).await,
        "protocol_violation",
        "a gap in the runner's sequence"
    );

    let history = stack.history(&info.id).await;
    assert!(!history
        .iter()
        .any(|e| matches!(&e.body, EventBody::PromptQueued { text, .. } if text == "forged")));

    // A frame over the link's limit cannot be acknowledged: it is refused with a close code
    // the runner acts on (smaller batches), not left to be resent forever.
    let mut ws = runner_socket(&stack, &info.id, &token)
        .await
        .expect("again");
    let acked = runner_link::hello(&mut ws, "impostor").await;
    let big = |output: String| RunnerFrame::Events {
        first_rseq: acked + 1,
        events: vec![EventBody::ToolUpdated {
            message_id: "m".into(),
            call_id: "huge".into(),
            tool: "read".into(),
            status: agent_ops_protocol::ToolStatus::Completed,
            input: serde_json::Value::Null,
            output: Some(output),
            error: None,
        }],
    };
    // Within the frame limit but far over an event's: stored, cut to size (the object does not
    // trust the runner to have bounded it).
    ws.send(Message::text(
        serde_json::to_string(&big("r".repeat(3 << 20))).unwrap(),
    ))
    .await
    .unwrap();
    let history = loop {
        let h = stack.history(&info.id).await;
        if h.iter()
            .any(|e| matches!(&e.body, EventBody::ToolUpdated { call_id, .. } if call_id == "huge"))
        {
            break h;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let stored = history
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ToolUpdated {
                call_id, output, ..
            } if call_id == "huge" => output.clone(),
            _ => None,
        })
        .unwrap();
    assert!(stored.len() < 256 << 10, "{}", stored.len());
    assert!(stored.contains("bytes cut by Agent Ops"));
    ws.send(Message::text(
        serde_json::to_string(&big("r".repeat(5 << 20))).unwrap(),
    ))
    .await
    .unwrap();
    assert_eq!(next_error(&mut ws).await, "payload_too_large");
    let closed = loop {
        match tokio::time::timeout(SHORT, ws.next())
            .await
            .expect("closed")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(closed, Some(agent_ops_protocol::bounds::FRAME_TOO_LARGE));
}
