//! The web client in a real browser (Debian's headless Chromium over WebDriver) against the real
//! stack: workerd, the runner in bubblewrap, OpenCode and the scripted model. Screenshots of the
//! main screens are saved to `target/screenshots/`.

use e2e::browser::{Browser, Driver};
use e2e::{Stack, StackOptions};

/// A slow, numbered answer: slow so a reload lands mid-stream, numbered so a duplicated or lost
/// piece of text is visible.
fn scripted_task(sentences: usize) -> (String, Vec<String>) {
    let lines: Vec<String> = (1..=sentences)
        .map(|i| format!("Sentence {i:02} of the answer."))
        .collect();
    let say = format!(
        "I wrote **notes/hello.txt**. Here is how to read it:\\n\\n```rust\\nfn main() {{ println!(\"{{}}\", std::fs::read_to_string(\"notes/hello.txt\").unwrap()); }}\\n```\\n\\n{}",
        lines.join(" ")
    );
    let prompt = format!(
        "Write a notes file and explain it\n@write notes/hello.txt Hello from the agent\n@say {say}\n@chunk 6\n@delay_ms 35"
    );
    (prompt, lines)
}

async fn session_id(b: &Browser) -> String {
    let deadline = std::time::Instant::now() + e2e::browser::WAIT;
    loop {
        let url = b.client.current_url().await.expect("url");
        if let Some(id) = url.path().strip_prefix("/sessions/") {
            return id.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reached a session page: {url}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn wait_done(b: &Browser) -> String {
    b.wait_text("[data-test=transcript]", "a finished turn", |_| true)
        .await;
    b.find("article.turn[data-state=done]").await;
    b.text("[data-test=transcript]").await
}

fn assert_each_once(transcript: &str, lines: &[String]) {
    let mut at = 0;
    for line in lines {
        assert_eq!(
            transcript.matches(line.as_str()).count(),
            1,
            "`{line}` must appear exactly once in:\n{transcript}"
        );
        let pos = transcript.find(line.as_str()).unwrap();
        assert!(pos >= at, "`{line}` is out of order");
        at = pos;
    }
}

async fn create_session_in_ui(b: &Browser, prompt: &str) -> String {
    b.goto("/new").await;
    b.type_into("#task", prompt).await;
    b.click("form button[type=submit]").await;
    session_id(b).await
}

#[tokio::test]
async fn a_session_streams_survives_a_reload_and_shows_live_in_a_second_window() {
    let stack = Stack::start(StackOptions::default()).await;
    let driver = Driver::start().await;
    let alice = driver.open(&stack.url(""), 1366, 860).await;
    alice.sign_in("alice").await;
    alice.find(".empty").await;
    alice.screenshot("01-sessions-empty").await;

    let (prompt, lines) = scripted_task(60);
    alice.goto("/new").await;
    alice.type_into("#task", &prompt).await;
    alice.screenshot("02-new-session").await;
    alice.click("form button[type=submit]").await;
    let id = session_id(&alice).await;

    // Streaming has begun: the first sentences are on screen, the turn is still open.
    alice
        .wait_text(".turn .assistant", "the answer streaming", |t| {
            t.contains("Sentence 04")
        })
        .await;
    alice.screenshot("03-session-streaming").await;

    // A second window on the same session, opened mid-stream.
    let second = driver.open(&stack.url(""), 1100, 800).await;
    second.sign_in("alice").await;
    second.goto(&format!("/sessions/{id}")).await;

    // Reload mid-stream: the page resubscribes from scratch and must show the whole transcript.
    let before = alice.text(".turn .assistant").await;
    assert!(
        !before.contains(lines.last().unwrap()),
        "the answer finished before the reload; the test needs it mid-stream"
    );
    alice.client.refresh().await.expect("reload");
    let first_text = wait_done(&alice).await;
    let second_text = wait_done(&second).await;
    assert_each_once(&alice.text(".turn .assistant").await, &lines);
    assert_eq!(
        first_text, second_text,
        "both windows show the same transcript"
    );
    assert!(first_text.contains("I wrote notes/hello.txt"));

    // Markdown: bold, and a highlighted code block.
    alice.find(".md strong").await;
    alice.find(".md pre code.hljs span").await;
    // The file the agent wrote is reported as a tool card that folds open to its arguments.
    let card = alice.find("details.tool[data-tool=write]").await;
    assert!(card.text().await.unwrap().contains("notes/hello.txt"));
    alice.click("details.tool[data-tool=write] summary").await;
    let body = alice.text("details.tool[data-tool=write] .tool-body").await;
    assert!(body.contains("Hello from the agent"), "{body}");
    let written = std::fs::read_to_string(stack.workspace(&id).join("notes/hello.txt"))
        .expect("the file is in the session's workspace");
    assert_eq!(written.trim(), "Hello from the agent");
    alice.screenshot("04-session-done").await;

    // The list shows the session, with a live status badge.
    alice.goto("/").await;
    alice
        .find(&format!("[data-session='{id}'] .badge[data-status=idle]"))
        .await;
    alice.screenshot("05-sessions-list").await;

    // A phone-sized screen.
    let phone = driver.open(&stack.url(""), 390, 844).await;
    phone.sign_in("alice").await;
    phone.goto(&format!("/sessions/{id}")).await;
    wait_done(&phone).await;
    phone.find("[data-test=prompt]").await;
    phone.screenshot("06-phone-session").await;
    // The panels are a toggle away: they replace the conversation, and the toggle brings it back.
    assert!(!phone.shown(".panels").await, "panels hidden on a phone");
    phone.click("[data-test=panels-toggle]").await;
    assert!(phone.shown(".panels").await, "the toggle shows the panels");
    assert!(
        !phone.shown("[data-test=prompt]").await,
        "in place of the chat"
    );
    // The terminal, loaded while hidden, fits the screen once shown: the shell's prompt is there.
    let frame = phone.find("iframe[data-panel=terminal]").await;
    frame.enter_frame().await.expect("into the terminal panel");
    phone
        .wait_text(".xterm-rows", "the shell's prompt", |t| {
            !t.trim().is_empty()
        })
        .await;
    let height = phone
        .client
        .execute(
            "return document.querySelector('.xterm-screen').getBoundingClientRect().height",
            vec![],
        )
        .await
        .expect("measure the terminal");
    assert!(
        height.as_f64().unwrap_or(0.0) > 300.0,
        "the terminal fills the phone's screen: {height}"
    );
    phone.client.enter_parent_frame().await.expect("back out");
    phone.screenshot("06b-phone-panels").await;
    phone.click("[data-test=panels-toggle]").await;
    assert!(
        phone.shown("[data-test=prompt]").await,
        "and back to the chat"
    );

    for b in [alice, second, phone] {
        b.close().await;
    }
}

#[tokio::test]
async fn a_viewer_from_a_share_link_watches_without_a_prompt_box() {
    let stack = Stack::start(StackOptions::default()).await;
    let driver = Driver::start().await;
    let alice = driver.open(&stack.url(""), 1366, 860).await;
    alice.sign_in("alice").await;
    let id = create_session_in_ui(&alice, "@say Shared **answer** for the viewer.").await;
    wait_done(&alice).await;
    alice.click("[data-test=share-viewer]").await;
    let link = alice.value("[data-test=share-url]").await;
    assert!(link.contains("/join#asl_"), "{link}");

    // A smaller window than alice's, so a terminal fitted to it would have another size.
    let bob = driver.open(&stack.url(""), 1100, 760).await;
    bob.sign_in("bob").await;
    bob.client.goto(&link).await.expect("open the link");
    assert_eq!(session_id(&bob).await, id);
    let text = wait_done(&bob).await;
    assert!(text.contains("Shared answer for the viewer."), "{text}");
    // The token does not stay in the address bar.
    let url = bob.client.current_url().await.unwrap();
    assert!(url.fragment().is_none(), "{url}");
    let note = bob.text("[data-test=read-only]").await;
    assert!(note.contains("watching as a viewer"), "{note}");
    assert!(
        !bob.exists("[data-test=prompt]").await,
        "a viewer has no prompt box"
    );
    assert!(!bob.exists("[data-test=terminate]").await);
    // The owner sees who is watching.
    let deadline = std::time::Instant::now() + e2e::browser::WAIT;
    while alice.count("[data-test=viewers] li").await != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the owner never saw bob join"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bob.screenshot("07-viewer").await;

    // The owner's Terminal tab is a working shell, through the gateway.
    let frame = alice.find("iframe[data-panel=terminal]").await;
    frame.enter_frame().await.expect("into the terminal panel");
    alice.click(".xterm").await;
    alice
        .type_into(
            ".xterm-helper-textarea",
            "echo from-the-browser-$((20+22))\u{E007}",
        )
        .await;
    alice
        .wait_text(".xterm-rows", "the command's output", |t| {
            t.contains("from-the-browser-42")
        })
        .await;
    // And she starts a dev server there, for the Preview tab below.
    let [app_port] = e2e::free_ports::<1>();
    alice
        .type_into(
            ".xterm-helper-textarea",
            &format!(
                "mkdir -p site && echo '<h1>served-from-the-terminal</h1>' > site/index.html && \
                 python3 -m http.server {app_port} --bind 127.0.0.1 --directory site >/dev/null 2>&1 &\u{E007}"
            ),
        )
        .await;
    let size = "return [window.terminal.cols, window.terminal.rows]";
    let shell = alice.client.execute(size, vec![]).await.unwrap();
    alice.client.enter_parent_frame().await.expect("back out");
    alice.screenshot("10-terminal-panel").await;

    // Bob watches the same shell, drawn at its size rather than fitted to his smaller window.
    let frame = bob.find("iframe[data-panel=terminal]").await;
    frame
        .enter_frame()
        .await
        .expect("into bob's terminal panel");
    bob.wait_text(".xterm-rows", "alice's command", |t| {
        t.contains("from-the-browser-42")
    })
    .await;
    assert!(bob.shown("#note").await, "bob is told he is watching");
    let mut drawn = bob.client.execute(size, vec![]).await.unwrap();
    for _ in 0..100 {
        if drawn == shell {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        drawn = bob.client.execute(size, vec![]).await.unwrap();
    }
    assert_eq!(drawn, shell, "bob's terminal is drawn at the shell's size");
    bob.client.enter_parent_frame().await.expect("back out");

    // The VS Code tab is the real editor (code-server, started by this first visit), through the
    // Worker's origin: its workbench renders, with its parts in place.
    std::fs::write(stack.workspace(&id).join("hello.txt"), "hello\n").unwrap();
    alice.click("button[data-panel=vscode]").await;
    let frame = alice.find("iframe[data-panel=vscode]").await;
    frame.enter_frame().await.expect("into the editor panel");
    alice.find(".monaco-workbench .part.activitybar").await;
    // Connected to its server: the explorer lists the workspace's file, and no error dialog.
    alice
        .wait_text(".explorer-folders-view", "the workspace's files", |t| {
            t.contains("hello.txt")
        })
        .await;
    assert!(
        !alice.exists(".monaco-dialog-box").await,
        "the workbench reports an error"
    );
    alice.client.enter_parent_frame().await.expect("back out");
    alice.screenshot("11-vscode-panel").await;

    // The Preview tab lists the server she started (as the runner reports it) and shows its page.
    alice.click("button[data-panel=preview]").await;
    let app = alice
        .text(&format!("[data-test=apps] button[data-port='{app_port}']"))
        .await;
    assert_eq!(app, format!("{app_port} · python3"));
    let frame = alice
        .find(&format!(
            "iframe[data-panel=preview][data-port='{app_port}']"
        ))
        .await;
    frame.enter_frame().await.expect("into the preview panel");
    alice
        .wait_text("h1", "the app's page", |t| {
            t.contains("served-from-the-terminal")
        })
        .await;
    alice.client.enter_parent_frame().await.expect("back out");
    alice.screenshot("12-preview-panel").await;
    // Bob, a viewer, is told why he has no preview rather than shown an empty frame.
    bob.click("button[data-panel=preview]").await;
    bob.wait_text(
        ".unavailable[data-panel=preview]",
        "why a viewer has no preview",
        |t| t.contains("collaborator role"),
    )
    .await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn an_api_key_is_shown_once_works_and_stops_working_when_revoked() {
    let stack = Stack::start(StackOptions::default()).await;
    let driver = Driver::start().await;
    let alice = driver.open(&stack.url(""), 1366, 860).await;
    alice.sign_in("alice").await;
    alice.goto("/settings").await;
    alice.type_into("[data-test=key-name]", "ci").await;
    alice.click("[data-test=create-key]").await;
    let key = alice.value("[data-test=new-key]").await;
    assert!(key.starts_with("aok_"), "{key}");
    alice.find("tr[data-name=ci]").await;
    alice.screenshot("08-settings-key-created").await;

    let http = reqwest::Client::new();
    let sessions = |key: String| {
        let http = http.clone();
        let url = stack.url("/api/sessions");
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(sessions(key.clone()).await, 200);

    // Shown once: after leaving the page it is gone from the UI for good.
    alice.goto("/").await;
    alice.goto("/settings").await;
    alice.find("tr[data-name=ci]").await;
    assert!(!alice.exists("[data-test=new-key]").await);

    alice.click("tr[data-name=ci] [data-test=revoke-key]").await;
    alice.find("tr.revoked[data-name=ci]").await;
    assert_eq!(sessions(key).await, 401);
    alice.screenshot("09-settings-key-revoked").await;
    alice.close().await;
}

#[tokio::test]
async fn a_slack_identity_is_linked_only_once_confirmed_and_shown_in_settings() {
    let stack = Stack::start(StackOptions::default()).await;
    let driver = Driver::start().await;
    let alice = driver.open(&stack.url(""), 1366, 860).await;
    alice.sign_in("alice").await;
    let (_, offer) = stack.slack_command("U0ALICE", "C0GENERAL", "list").await;
    let offer = offer["text"].as_str().expect("an answer").to_owned();
    let token = offer
        .split("/link/slack#")
        .nth(1)
        .and_then(|rest| rest.split('|').next())
        .unwrap_or_else(|| panic!("a link is offered: {offer}"))
        .to_owned();
    alice.goto(&format!("/link/slack#{token}")).await;
    alice.find("[data-test=slack-link-confirm]").await;
    let (_, still) = stack.slack_command("U0ALICE", "C0GENERAL", "list").await;
    assert!(
        still["text"].as_str().unwrap().contains("/link/slack#"),
        "nothing is linked before the person confirms: {still}"
    );
    alice.click("[data-test=slack-link-confirm]").await;
    alice
        .wait_text("[data-test=slack-linked]", "linked", |t| {
            t.contains("U0ALICE")
        })
        .await;
    alice.screenshot("09-slack-linked").await;
    let (_, linked) = stack.slack_command("U0ALICE", "C0GENERAL", "list").await;
    assert!(
        linked["text"]
            .as_str()
            .unwrap()
            .contains("no active sessions"),
        "{linked}"
    );
    alice.goto("/settings").await;
    alice
        .wait_text("[data-test=slack-identity]", "the link", |t| {
            t.contains("T0AGENTOPS:U0ALICE")
        })
        .await;
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_made_in_the_ui_runs_from_its_curl_and_its_session_streams() {
    let stack = Stack::start(StackOptions::default()).await;
    let driver = Driver::start().await;
    let b = driver.open(&stack.url(""), 1366, 860).await;
    b.sign_in("wanda").await;
    b.goto("/workflows").await;
    b.type_into("#wf-name", "Triage").await;
    b.type_into(
        "#wf-prompt",
        "\n@write triage.txt {{ payload.issue.number }}\n@say Triaged {{ payload.issue.title }}.",
    )
    .await;
    // The editor renders the template against its sample payload, as a run would.
    b.wait_text("[data-test=wf-preview]", "the rendered prompt", |t| {
        t.contains("Triage issue #7: Crash on start") && t.contains("@say Triaged Crash on start.")
    })
    .await;
    b.click("[data-test=wf-create]").await;
    b.wait_text("[data-test=workflow-name]", "the workflow", |t| {
        t == "Triage"
    })
    .await;
    b.click("[data-test=add-webhook]").await;
    let cmd = b
        .wait_text("[data-test=trigger-curl]", "a curl", |t| t.contains("curl"))
        .await;
    let secret = b.value("[data-test=trigger-secret]").await;
    assert!(
        secret.starts_with("whsec_") && cmd.contains(&secret),
        "{cmd}"
    );
    b.screenshot("10-workflow-trigger").await;

    // The shown command, run as its reader would, is a signed delivery the Worker accepts.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .output()
        .expect("sh");
    let answer: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(answer["status"], "queued", "{answer}");

    // A turn of the real agent: longer than an element's usual wait, on a loaded machine.
    let deadline = std::time::Instant::now() + e2e::TURN_TIMEOUT;
    while !b
        .exists("[data-test=executions] [data-status=succeeded]")
        .await
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never succeeded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    b.click("[data-test=execution-session]").await;
    let id = session_id(&b).await;
    let transcript = wait_done(&b).await;
    assert!(
        transcript.contains("Triaged Crash on start."),
        "{transcript}"
    );
    let file = std::fs::read_to_string(stack.workspace(&id).join("triage.txt")).unwrap();
    assert_eq!(file.trim(), "7");
    b.close().await;
}
