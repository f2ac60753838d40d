//! Slack end to end, against the real stack (workerd, the runner, the real OpenCode, the
//! scripted model) and a Slack stand-in that checks tokens and payloads: every request signed
//! (and refused when it is not), people linked before they act and then acting with their roles,
//! every slash command, and threads that are sessions, posting progress and answers exactly
//! once through rate limits and a Worker restart.

use std::time::{Duration, Instant};

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::api::{AddMember, LinkSlack, SlackChannels, SlackIdentities};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::slack::wire::Message;
use agent_ops_protocol::EventBody;
use e2e::slack::{message_event, now_secs, session_named, BOT_ID};
use e2e::{Stack, StackOptions};
use serde_json::{json, Value};

const TURN: Duration = Duration::from_secs(90);

/// The reply's text, of a command Slack got 200 for.
fn text(reply: (u16, Value)) -> String {
    assert_eq!(reply.0, 200, "{}", reply.1);
    assert_eq!(reply.1["response_type"], "ephemeral", "{}", reply.1);
    reply.1["text"].as_str().expect("text").to_owned()
}

/// Links Slack user `user` to the account `token` signs in; the link works once.
async fn link(stack: &Stack, token: &str, user: &str) {
    let link = stack.slack_link(token, user).await;
    let again = stack
        .api::<endpoint::LinkSlack>(token, &[], &LinkSlack { token: link })
        .await;
    assert_eq!(again.unwrap_err().0, 404, "a link works once");
}

/// Waits until the thread has a message of the bot's for which `pred` holds.
async fn bot_says(
    stack: &Stack,
    channel: &str,
    thread: &str,
    pred: impl Fn(&str) -> bool,
) -> Vec<Message> {
    let deadline = Instant::now() + TURN;
    loop {
        let messages = stack.slack.thread(channel, thread);
        if messages
            .iter()
            .any(|m| m.bot_id.as_deref() == Some(BOT_ID) && pred(&m.text))
        {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "the thread never said it: {messages:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many of the bot's messages say `needle`.
fn count(messages: &[Message], needle: &str) -> usize {
    messages
        .iter()
        .filter(|m| m.bot_id.as_deref() == Some(BOT_ID) && m.text.contains(needle))
        .count()
}

/// No message of the bot's was updated twice within Slack's pace for it.
fn updates_are_paced(stack: &Stack) {
    let updates = stack.slack.calls_of("chat.update");
    for (i, a) in updates.iter().enumerate() {
        let later = updates[i + 1..]
            .iter()
            .find(|b| b.body["ts"] == a.body["ts"] && b.body["channel"] == a.body["channel"]);
        if let Some(b) = later {
            let gap = b.at.duration_since(a.at);
            let ended = b.body["text"]
                .as_str()
                .is_some_and(|t| !t.contains("Working"));
            assert!(
                ended || gap >= Duration::from_millis(1900),
                "updated {gap:?} apart: {} then {}",
                a.body,
                b.body
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_requests_signed_by_slack_are_served() {
    let stack = Stack::start(StackOptions::default()).await;
    let body =
        "team_id=T0AGENTOPS&channel_id=C1&user_id=U1&command=%2Fagent-ops&text=list&response_url=x";
    let form = "application/x-www-form-urlencoded";
    let now = now_secs();
    let post = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let stack = &stack;
        async move {
            stack
                .slack_post("/slack/commands", form, body, &headers)
                .await
        }
    };
    let (status, reply) = post(stack.slack.signed(body, now).to_vec(), body).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["text"].as_str().unwrap().contains("link"), "{reply}");

    let signed = stack.slack.signed(body, now);
    let forged = e2e::slack::SlackStandIn::sign_with("not the secret", body, now);
    type Headers = Vec<(&'static str, String)>;
    let cases: Vec<(&str, Headers, &'static str, &str)> = vec![
        ("wrong secret", forged.to_vec(), body, "invalid_signature"),
        (
            "altered body",
            signed.to_vec(),
            "team_id=T0AGENTOPS&channel_id=C1&user_id=U1&command=%2Fagent-ops&text=end&response_url=x",
            "invalid_signature",
        ),
        ("stale", stack.slack.signed(body, now - 400).to_vec(), body, "stale_signature"),
        ("future", stack.slack.signed(body, now + 400).to_vec(), body, "stale_signature"),
        ("no headers", vec![], body, "missing_signature"),
        ("no timestamp", vec![signed[0].clone()], body, "missing_signature"),
        ("no signature", vec![signed[1].clone()], body, "missing_signature"),
        (
            "malformed timestamp",
            vec![signed[0].clone(), (signed[1].0, "soon".into())],
            body,
            "missing_signature",
        ),
    ];
    for (name, headers, body, code) in cases {
        let (status, v) = post(headers, body).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (401, Some(code)),
            "{name}: {v}"
        );
        assert!(v["message"].is_string(), "{name}: {v}");
    }

    let huge = format!("text={}", "x".repeat(70 * 1024));
    let headers = stack.slack.signed(&huge, now_secs());
    let (status, v) = stack
        .slack_post("/slack/commands", form, &huge, &headers)
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );

    // Slack checks the events URL once, with a challenge.
    let challenge = json!({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "token": "x"}).to_string();
    let headers = stack.slack.signed(&challenge, now_secs());
    let (status, v) = stack
        .slack_post("/slack/events", "application/json", &challenge, &headers)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert!(
        stack.slack.calls().is_empty(),
        "nothing reached Slack: {:?}",
        stack.slack.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signing_secret_slack_is_not_served_at_all() {
    let stack = Stack::start(StackOptions {
        slack: false,
        ..Default::default()
    })
    .await;
    for path in ["/slack/commands", "/slack/events", "/slack/interactivity"] {
        let body = "team_id=T0AGENTOPS&text=help";
        let headers = stack.slack.signed(body, now_secs());
        let (status, v) = stack.slack_post(path, "text/plain", body, &headers).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (503, Some("not_configured")),
            "{path}: {v}"
        );
    }
    let admin = stack.dev_login("root").await;
    let identities = stack
        .api::<endpoint::SlackIdentities>(&admin, &[], &Default::default())
        .await
        .unwrap();
    assert!(!identities.configured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_act_as_the_linked_account_with_its_roles() {
    let stack = Stack::start(StackOptions::default()).await;
    stack.dev_login("root").await;
    let alice = stack.dev_login("alice").await;
    let bob = stack.dev_login("bob").await;
    link(&stack, &alice, "U0ALICE").await;
    let identities = stack
        .api::<endpoint::SlackIdentities>(&alice, &[], &Default::default())
        .await
        .unwrap();
    assert_eq!(
        identities,
        SlackIdentities {
            configured: true,
            identities: vec![agent_ops_protocol::api::SlackIdentity {
                team_id: e2e::slack::TEAM.into(),
                slack_user_id: "U0ALICE".into(),
                linked_at: identities.identities[0].linked_at,
            }],
        }
    );

    let say = |user: &'static str, text: String| {
        let stack = &stack;
        async move { self::text(stack.slack_command(user, "C0GENERAL", &text).await) }
    };
    assert!(say("U0ALICE", "help".into()).await.contains("*Usage:*"));
    assert!(say("U0ALICE", "deploy prod".into())
        .await
        .contains("*Usage:*"));
    assert!(say("U0ALICE", "list".into())
        .await
        .contains("no active sessions"));
    // Acknowledged at once, before any work; the answer follows on the command's response_url.
    let body = stack.slack_command_body("U0ALICE", "C0GENERAL", "list");
    let ack = text(stack.slack_command_ack(&body).await);
    assert!(ack.starts_with("Looking up"), "{ack}");
    // A response_url that is not Slack's is never posted to: that command is done at once and
    // answered in the acknowledgement.
    let mut form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
    for (name, value) in &mut form {
        if name == "response_url" {
            *value = "http://127.0.0.1:9/hooks/elsewhere".into();
        } else if name == "trigger_id" {
            value.push_str(".foreign");
        }
    }
    let foreign = serde_urlencoded::to_string(&form).unwrap();
    let answered = text(stack.slack_command_ack(&foreign).await);
    assert!(answered.contains("no active sessions"), "{answered}");

    let started = say(
        "U0ALICE",
        "new Write a greeting\n@write hello.txt Hello from Slack\n@say I wrote *hello.txt*.".into(),
    )
    .await;
    assert!(started.starts_with("Started"), "{started}");
    // The same command again, signed anew (a replay within the signature's window): not run.
    let replayed = stack.slack_command_body("U0ALICE", "C0GENERAL", "list");
    let first = text(stack.slack_signed_command(&replayed).await);
    assert!(first.contains("Your active sessions"), "{first}");
    let again = text(stack.slack_signed_command(&replayed).await);
    assert!(again.contains("already done"), "{again}");
    let id = started
        .split('`')
        .nth(1)
        .expect("the session's id")
        .to_owned();
    let root = stack
        .slack
        .roots("C0GENERAL")
        .into_iter()
        .rfind(|m| m.bot_id.as_deref() == Some(BOT_ID))
        .expect("the session's message in the channel");
    assert!(
        root.text.contains(&format!("/sessions/{id}")),
        "{}",
        root.text
    );
    let thread = root.ts;
    let messages = bot_says(&stack, "C0GENERAL", &thread, |t| {
        t.contains("I wrote _hello.txt_.")
    })
    .await;
    assert_eq!(count(&messages, "I wrote _hello.txt_."), 1, "{messages:#?}");
    assert_eq!(
        std::fs::read_to_string(stack.workspace(&id).join("hello.txt")).unwrap(),
        "Hello from Slack"
    );
    bot_says(&stack, "C0GENERAL", &thread, |t| t.contains("Done")).await;

    let status = say("U0ALICE", format!("status {id}")).await;
    assert!(status.contains(&id) && status.contains("idle"), "{status}");
    assert!(say("U0ALICE", "list".into()).await.contains(&id));
    let stop = say("U0ALICE", format!("stop {id}")).await;
    assert!(stop.contains("`nothing_to_abort`"), "{stop}");

    // Bob sees the session, as a viewer: he may look, not stop or end it, from Slack either.
    stack
        .api::<endpoint::AddMember>(
            &alice,
            &[&id],
            &AddMember {
                login: "bob".into(),
                role: SessionRole::Viewer,
            },
        )
        .await
        .unwrap();
    link(&stack, &bob, "U0BOB").await;
    assert!(say("U0BOB", format!("status {id}")).await.contains(&id));
    for verb in ["stop", "end"] {
        let refused = say("U0BOB", format!("{verb} {id}")).await;
        assert!(refused.contains("`forbidden`"), "{verb}: {refused}");
    }
    let stranger = say("U0BOB", "status 0123456789abcdef0123456789abcdef".into()).await;
    assert!(stranger.contains("`not_found`"), "{stranger}");

    let ended = say("U0ALICE", format!("end {id}")).await;
    assert!(ended.starts_with("Ended"), "{ended}");
    bot_says(&stack, "C0GENERAL", &thread, |t| {
        t.contains("session has ended")
    })
    .await;
    assert!(say("U0ALICE", "list".into())
        .await
        .contains("no active sessions"));
    updates_are_paced(&stack);

    // Unlinked, Bob is offered a link again.
    let unlinked = stack
        .api::<endpoint::UnlinkSlack>(&bob, &[e2e::slack::TEAM, "U0BOB"], &Default::default())
        .await;
    assert!(unlinked.is_ok(), "{unlinked:?}");
    assert!(say("U0BOB", "list".into()).await.contains("/link/slack#"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_are_sessions_and_every_message_lands_once() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack.dev_login("root").await;
    let alice = stack.dev_login("alice").await;
    link(&stack, &alice, "U0ALICE").await;
    let channel = "C0WORK";

    // A mention starts a session bound to the thread.
    let asked = stack.slack.say(
        "U0ALICE",
        channel,
        "<@U0AGENTBOT> Take notes\n@write notes.txt first\n@say Noted: first.",
        None,
    );
    let thread = asked.ts.clone();
    let mention = message_event(&asked, true);
    assert_eq!(stack.slack_event("Ev01", mention.clone()).await.0, 200);
    let messages = bot_says(&stack, channel, &thread, |t| t.contains("Noted: first.")).await;
    let id = session_named(&messages).expect("the thread names its session");
    // Slack's retry of the event, and the same message as a `message` event: neither runs again.
    assert_eq!(stack.slack_event("Ev01", mention).await.0, 200);
    assert_eq!(
        stack
            .slack_event("Ev02", message_event(&asked, false))
            .await
            .0,
        200
    );

    // A reply in the thread is the session's next prompt.
    let reply = stack.slack.say(
        "U0ALICE",
        channel,
        "And more\n@write more.txt second\n@say Noted: second.",
        Some(&thread),
    );
    stack
        .slack_event("Ev03", message_event(&reply, false))
        .await;
    bot_says(&stack, channel, &thread, |t| t.contains("Noted: second.")).await;
    assert_eq!(
        std::fs::read_to_string(stack.workspace(&id).join("more.txt")).unwrap(),
        "second"
    );

    // The bot's own messages, and edits, are not prompts.
    let mut own = stack
        .slack
        .say("U0AGENTBOT", channel, "Noted.", Some(&thread));
    own.bot_id = Some(BOT_ID.into());
    stack.slack_event("Ev04", message_event(&own, false)).await;
    let mut edit = stack
        .slack
        .say("U0ALICE", channel, "@say edited", Some(&thread));
    edit.subtype = Some("message_changed".into());
    stack.slack_event("Ev05", message_event(&edit, false)).await;

    // `-stop` interrupts a long turn.
    let long = stack.slack.say(
        "U0ALICE",
        channel,
        "Go on\n@say slowly and at length\n@repeat 400\n@chunk 6\n@delay_ms 40",
        Some(&thread),
    );
    stack.slack_event("Ev06", message_event(&long, false)).await;
    bot_says(&stack, channel, &thread, |t| t.contains("Working")).await;
    let status = text(
        stack
            .slack_command("U0ALICE", channel, &format!("status {id}"))
            .await,
    );
    assert!(
        status.contains("running") && status.contains("Now: "),
        "{status}"
    );
    let stop = stack.slack.say("U0ALICE", channel, "-stop", Some(&thread));
    stack.slack_event("Ev07", message_event(&stop, false)).await;
    bot_says(&stack, channel, &thread, |t| t.contains("Interrupted")).await;

    // Slack refusing posts for a while, then the Worker restarting mid-turn: every answer
    // arrives once.
    stack.slack.throttle("chat.postMessage", 2, 1);
    let busy = stack.slack.say(
        "U0ALICE",
        channel,
        "Once more\n@say Noted: third. \n@repeat 40\n@chunk 4\n@delay_ms 60",
        Some(&thread),
    );
    stack.slack_event("Ev08", message_event(&busy, false)).await;
    bot_says(&stack, channel, &thread, |t| t.contains("Working")).await;
    stack.stop_worker();
    stack.start_worker().await;
    let messages = bot_says(&stack, channel, &thread, |t| t.contains("Noted: third.")).await;
    let third = messages
        .iter()
        .find(|m| m.bot_id.as_deref() == Some(BOT_ID) && m.text.contains("Noted: third."))
        .unwrap();
    // The whole answer (a model call the restart cut is made again by the agent, and the
    // part it had streamed stays in its message).
    assert!(
        third.text.matches("Noted: third.").count() >= 40,
        "{}",
        third.text
    );
    for answer in ["Noted: first.", "Noted: second.", "Noted: third."] {
        assert_eq!(count(&messages, answer), 1, "{answer}: {messages:#?}");
    }
    assert!(
        stack.slack.calls().iter().any(|c| c.status == 429),
        "Slack's 429s were met"
    );

    // Slack takes a post but its answer is lost: the post is found, not made again.
    stack.slack.lose_answers("chat.postMessage", 1);
    let last = stack.slack.say(
        "U0ALICE",
        channel,
        "Last one\n@say Noted: fourth.",
        Some(&thread),
    );
    stack.slack_event("Ev09", message_event(&last, false)).await;
    let messages = bot_says(&stack, channel, &thread, |t| t.contains("Noted: fourth.")).await;
    assert_eq!(count(&messages, "Noted: fourth."), 1, "{messages:#?}");
    assert!(stack.slack.calls().iter().any(|c| c.status == 500));

    let history = stack.history(&id).await;
    let prompts: Vec<&str> = history
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::PromptQueued { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(prompts.len(), 5, "one prompt per message: {prompts:#?}");
    assert!(!prompts
        .iter()
        .any(|p| p.contains("edited") || *p == "Noted."));
    updates_are_paced(&stack);

    // Mentioned inside a thread people started, the app takes what they said as context.
    let root = stack
        .slack
        .say("U0BOB", "C0CTX", "The build broke on main", None);
    stack
        .slack
        .say("U0BOB", "C0CTX", "I think it is the linker", Some(&root.ts));
    let asked = stack.slack.say(
        "U0ALICE",
        "C0CTX",
        "<@U0AGENTBOT> look into it\n@say Looking.",
        Some(&root.ts),
    );
    stack.slack_event("Ev20", message_event(&asked, true)).await;
    let messages = bot_says(&stack, "C0CTX", &root.ts, |t| t.contains("Looking.")).await;
    let id = session_named(&messages).expect("the thread names its session");
    let first = stack
        .history(&id)
        .await
        .into_iter()
        .find_map(|e| match e.body {
            EventBody::PromptQueued { text, .. } => Some(text),
            _ => None,
        })
        .expect("the first prompt");
    assert!(
        first.starts_with(
            "Earlier in this Slack thread:\n<@U0BOB>: The build broke on main\n\
             <@U0BOB>: I think it is the linker\n\nlook into it"
        ),
        "{first}"
    );

    // A direct message with the app is a thread of its own.
    let mut dm = stack
        .slack
        .say("U0ALICE", "D0ALICE", "@say Hi in a DM.", None);
    dm.channel_type = Some("im".into());
    stack.slack_event("Ev21", message_event(&dm, false)).await;
    let deadline = Instant::now() + TURN;
    while !stack
        .slack
        .roots("D0ALICE")
        .iter()
        .any(|m| m.bot_id.as_deref() == Some(BOT_ID) && m.text.contains("Hi in a DM."))
    {
        assert!(
            Instant::now() < deadline,
            "{:#?}",
            stack.slack.roots("D0ALICE")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A thread whose session has ended says so, and runs nothing.
    stack.terminate_session(&id).await;
    let late = stack
        .slack
        .say("U0ALICE", "C0CTX", "one more thing", Some(&root.ts));
    stack.slack_event("Ev22", message_event(&late, false)).await;
    bot_says(&stack, "C0CTX", &root.ts, |t| {
        t.contains("session has ended (")
    })
    .await;
}

/// The manifest an operator pastes into Slack names this deployment's routes, the command it
/// serves and the events and scopes the app needs (read with PyYAML, from the tools the
/// contract test installs).
#[test]
fn the_slack_manifest_matches_the_routes() {
    use agent_ops_protocol::routes::RouteId;
    let out = std::process::Command::new(e2e::repo_root().join(".tools/contract/bin/python"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(e2e::repo_root().join("slack/manifest.yaml"))
        .output()
        .expect("python with PyYAML (make setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = |v: &Value| {
        v.as_str()
            .and_then(|u| u.strip_prefix("https://agents.example.com"))
            .unwrap_or_else(|| panic!("a URL of the deployment: {v}"))
            .to_owned()
    };
    let command = &manifest["features"]["slash_commands"][0];
    assert_eq!(command["command"], "/agent-ops");
    assert_eq!(url(&command["url"]), RouteId::SlackCommands.spec().path);
    let settings = &manifest["settings"];
    assert_eq!(
        url(&settings["event_subscriptions"]["request_url"]),
        RouteId::SlackEvents.spec().path
    );
    assert_eq!(
        url(&settings["interactivity"]["request_url"]),
        RouteId::SlackInteractivity.spec().path
    );
    let events = settings["event_subscriptions"]["bot_events"].to_string();
    for event in [
        "app_mention",
        "message.channels",
        "message.groups",
        "message.im",
    ] {
        assert!(events.contains(&format!("\"{event}\"")), "{event}");
    }
    let scopes = manifest["oauth_config"]["scopes"]["bot"].to_string();
    for scope in [
        "app_mentions:read",
        "chat:write",
        "commands",
        "channels:history",
        "im:history",
    ] {
        assert!(scopes.contains(&format!("\"{scope}\"")), "{scope}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_installs_the_app_and_uninstalling_forgets_its_token() {
    use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
    let stack = Stack::start(StackOptions::default()).await;
    let admin = stack.dev_login("root").await;
    let member = stack.dev_login("mia").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let install = |token: String| {
        let http = http.clone();
        let url = stack.url("/slack/install");
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(
        install(member).await.status(),
        403,
        "administrators install the app"
    );
    let started = install(admin.clone()).await;
    assert_eq!(started.status(), 302);
    let nonce = started
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .filter(|kv| kv.starts_with("aops_slack_oauth="))
        })
        .expect("the browser-binding cookie")
        .to_owned();
    let consent = started.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(consent.starts_with(&stack.slack.base), "{consent}");
    let approved = http.get(&consent).send().await.unwrap();
    assert_eq!(approved.status(), 303, "the stand-in approves");
    let callback = approved.headers()[LOCATION].to_str().unwrap().to_owned();
    let from_elsewhere = http.get(&callback).send().await.unwrap();
    assert_eq!(from_elsewhere.status(), 400, "the state is this browser's");
    let done = http
        .get(&callback)
        .header(COOKIE, &nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 302);
    assert_eq!(done.headers()[LOCATION], "/settings");
    let again = http
        .get(&callback)
        .header(COOKIE, &nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400, "a state is used once");

    let installed = stack
        .api::<endpoint::SlackWorkspaces>(&admin, &[], &Default::default())
        .await
        .unwrap();
    assert_eq!(installed.workspaces.len(), 1);
    assert_eq!(installed.workspaces[0].team_id, "T0OTHER");
    assert_eq!(installed.workspaces[0].team_name, "Other Co");

    // The new workspace's requests are answered with its own token.
    let hello = stack
        .slack
        .say("U0OTHER", "C0OTHER", "<@U0AGENTBOT> hi", None);
    stack
        .slack_event_in("T0OTHER", "EvO1", message_event(&hello, true))
        .await;
    let told = stack.slack.calls_of("chat.postEphemeral");
    assert_eq!(told.last().and_then(|c| c.team.as_deref()), Some("T0OTHER"));

    // Uninstalled, its token is forgotten.
    let gone = json!({"type": "app_uninstalled"});
    assert_eq!(stack.slack_event_in("T0OTHER", "EvO2", gone).await.0, 200);
    let installed = stack
        .api::<endpoint::SlackWorkspaces>(&admin, &[], &Default::default())
        .await
        .unwrap();
    assert!(installed.workspaces.is_empty(), "{installed:?}");
    let hello = stack
        .slack
        .say("U0OTHER", "C0OTHER", "<@U0AGENTBOT> still?", None);
    stack
        .slack_event_in("T0OTHER", "EvO3", message_event(&hello, true))
        .await;
    let told = stack.slack.calls_of("chat.postEphemeral");
    assert_eq!(
        told.last().and_then(|c| c.team.as_deref()),
        Some(e2e::slack::TEAM),
        "only the deployment's own token is left"
    );

    // An administrator limits the app to listed channels; a DM is a channel like the others.
    let team = e2e::slack::TEAM;
    let only = |channels: &[&str]| SlackChannels {
        channels: channels.iter().map(|c| c.to_string()).collect(),
    };
    let set = stack
        .api::<endpoint::SetSlackChannels>(&admin, &[team], &only(&["C0ALLOWED"]))
        .await;
    assert_eq!(set.unwrap(), only(&["C0ALLOWED"]));
    let bad = stack
        .api::<endpoint::SetSlackChannels>(&admin, &[team], &only(&["c0; drop"]))
        .await;
    assert_eq!(bad.unwrap_err().1.code.as_str(), "invalid_body");
    let answer = |channel: &'static str| {
        let stack = &stack;
        async move { text(stack.slack_command("U0NEW", channel, "list").await) }
    };
    assert!(answer("C0GENERAL")
        .await
        .contains("does not work in this channel"));
    assert!(answer("D0NEW")
        .await
        .contains("does not work in this channel"));
    assert!(answer("C0ALLOWED").await.contains("/link/slack#"));
    let elsewhere = stack
        .slack
        .say("U0NEW", "C0GENERAL", "<@U0AGENTBOT> hi", None);
    stack
        .slack_event("EvC1", message_event(&elsewhere, true))
        .await;
    let told = stack.slack.calls_of("chat.postEphemeral");
    let last = &told.last().unwrap().body;
    assert!(
        last["text"]
            .as_str()
            .unwrap()
            .contains("does not work in this channel"),
        "{last}"
    );
    stack
        .api::<endpoint::SetSlackChannels>(&admin, &[team], &only(&[]))
        .await
        .unwrap();
    assert!(
        answer("D0NEW").await.contains("/link/slack#"),
        "none listed: everywhere"
    );
}
