//! The sandbox's terminal through its gateway, end to end: a real PTY and a real shell, shared by
//! everyone on the session, typed into only by its writers.

use std::time::Duration;

use e2e::panels::{self, open, read_until, socket, type_keys, viewer_token};
use e2e::{Stack, StackOptions};
use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const SHORT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_is_a_real_shared_shell_that_viewers_only_watch() {
    let stack = Stack::start(StackOptions::default()).await;
    let id = stack.create_session(None).await.id;
    let admin = stack.admin_key.clone();
    let cookie = open(&stack, &admin, &id, "terminal").await;

    // The page and its xterm.js are served by the gateway itself.
    let page = panels::get(&stack, &admin, &cookie, &format!("/sandbox/{id}/terminal/")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("xterm.js"));

    let mut owner = socket(
        &stack,
        &admin,
        &cookie,
        &format!("/sandbox/{id}/terminal/ws"),
    )
    .await;
    let hello = read_until(&mut owner, "\"writable\":true", SHORT).await;
    assert!(hello.is_some(), "the owner may type");
    type_keys(&mut owner, "echo answer-$((6*7))\r").await;
    assert!(read_until(&mut owner, "answer-42", SHORT).await.is_some());
    // Resize, and the shell sees it.
    owner
        .send(Message::Text(
            json!({"type": "resize", "cols": 101, "rows": 33})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    // Everyone is told the shell's new size (the writer included: its resize took).
    let told = read_until(&mut owner, "\"type\":\"size\"", SHORT)
        .await
        .unwrap();
    assert!(
        told.contains("\"cols\":101") && told.contains("\"rows\":33"),
        "{told}"
    );
    type_keys(&mut owner, "stty size\r").await;
    assert!(
        read_until(&mut owner, "33 101", SHORT).await.is_some(),
        "resized to 33x101"
    );
    // The shell lives in the workspace and holds none of the runner's secrets.
    type_keys(
        &mut owner,
        "pwd; env | grep -c AGENT_OPS_ ; echo end-of-$((1))-env\r",
    )
    .await;
    let out = read_until(&mut owner, "end-of-1-env", SHORT).await.unwrap();
    assert!(
        out.contains(&stack.workspace(&id).display().to_string()),
        "{out}"
    );
    assert!(
        out.contains("\r\n0\r\n"),
        "no AGENT_OPS_ variable in the shell: {out}"
    );

    // A viewer (a member with the viewer role) watches the same shell but cannot type.
    let viewer = viewer_token(&stack, &id).await;
    let vcookie = open(&stack, &viewer, &id, "terminal").await;
    let mut watcher = socket(
        &stack,
        &viewer,
        &vcookie,
        &format!("/sandbox/{id}/terminal/ws"),
    )
    .await;
    let hello = read_until(&mut watcher, "\"writable\":false", SHORT)
        .await
        .unwrap();
    assert!(
        hello.contains("\"cols\":101"),
        "a viewer draws at the shell's size: {hello}"
    );
    // A new viewer gets the scrollback.
    read_until(&mut watcher, "answer-42", SHORT).await;
    type_keys(&mut watcher, "echo viewer-typed-$((2+2))\r").await;
    type_keys(&mut owner, "echo owner-typed-$((3+3))\r").await;
    let seen = read_until(&mut watcher, "owner-typed-6", SHORT)
        .await
        .unwrap();
    assert!(
        !seen.contains("viewer-typed-4"),
        "a viewer's keys never reach the shell"
    );
    assert!(
        seen.contains("\"code\":\"read_only\""),
        "and the viewer is told so: {seen}"
    );
    // A frame the terminal cannot use is refused with a reason, not dropped.
    owner
        .send(Message::Text(r#"{"type":"paste"}"#.into()))
        .await
        .unwrap();
    let refused = read_until(&mut owner, "\"code\":\"bad_frame\"", SHORT).await;
    assert!(refused.is_some());
    // The desktop takes input as it is, and so does an app (its forms and APIs change the
    // workspace as typing does): neither is for viewers.
    for panel in ["vnc/vnc.html", "preview/8080/"] {
        let seen = panels::get(&stack, &viewer, &vcookie, &format!("/sandbox/{id}/{panel}")).await;
        assert_eq!(seen.status(), 403, "{panel}");
    }
}
