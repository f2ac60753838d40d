//! The sandbox gateway, end to end: panels opened with real panel tokens through the worker's
//! origin, a real PTY, real Xvfb + x11vnc + websockify, and a local upstream for previews.

use std::time::Duration;

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::api::PanelKind;
use agent_ops_protocol::events::{AgentState, EventBody};
use agent_ops_protocol::panel::{session_key, PanelGrant, AUDIENCE};
use axum::routing::{get, post};
use e2e::panels::{self, exchange, open, socket, token_url, viewer_token};
use e2e::{Stack, StackOptions};
use futures::{SinkExt, StreamExt};
use jwt_simple::prelude::{Claims, Clock, HS256Key, MACLike};
use reqwest::Method;
use tokio_tungstenite::tungstenite::Message;

const SHORT: Duration = Duration::from_secs(20);

async fn session(stack: &Stack) -> String {
    stack.create_session(None).await.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panel_tokens_expired_replayed_foreign_or_missing_are_refused() {
    let stack = Stack::start(StackOptions::default()).await;
    let a = session(&stack).await;
    let b = session(&stack).await;
    let admin = stack.admin_key.clone();

    // Missing: no cookie, no entry.
    let (status, body) = stack
        .call_as(
            Some(&admin),
            Method::GET,
            &format!("/sandbox/{a}/terminal/"),
            None,
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));

    // Replayed: a token works once.
    let url = token_url(&stack, &admin, &a, "terminal").await;
    assert_eq!(exchange(&stack, &admin, &url).await.0, 303);
    let (status, cookie, body) = exchange(&stack, &admin, &url).await;
    assert_eq!(
        (status, cookie, body["code"].as_str()),
        (401, None, Some("invalid_token"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("used already"),
        "{body}"
    );

    // Another session's token, presented at this session's gateway.
    let url_b = token_url(&stack, &admin, &b, "terminal").await;
    let token_b = url_b
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let (status, _, body) = exchange(
        &stack,
        &admin,
        &format!("/sandbox/{a}/auth?token={token_b}"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token")),
        "{body}"
    );

    // Expired: signed with the right key, but its five minutes are over.
    let key = session_key(stack.auth_secret.as_bytes(), &a);
    let grant = PanelGrant {
        session: a.clone(),
        login: "x".into(),
        role: SessionRole::Owner,
        credential: String::new(),
    };
    let mut claims =
        Claims::with_custom_claims(grant, jwt_simple::prelude::Duration::from_secs(60))
            .with_audience(AUDIENCE)
            .with_subject("u")
            .with_jwt_id("old");
    let now = Clock::now_since_epoch();
    claims.issued_at = Some(now - jwt_simple::prelude::Duration::from_secs(600));
    claims.expires_at = Some(now - jwt_simple::prelude::Duration::from_secs(300));
    let expired = HS256Key::from_bytes(&key).authenticate(claims).unwrap();
    let (status, _, body) = exchange(
        &stack,
        &admin,
        &format!("/sandbox/{a}/auth?token={expired}"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token")),
        "{body}"
    );

    // The redirect never leaves the sandbox.
    let url = token_url(&stack, &admin, &a, "terminal").await;
    let evil = format!(
        "{}&next=%2F%2Fevil.example%2F",
        url.split("&next=").next().unwrap()
    );
    assert_eq!(exchange(&stack, &admin, &evil).await.0, 400);
}

/// "compressed", gzipped.
const GZIPPED: [u8; 30] = [
    31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 75, 206, 207, 45, 40, 74, 45, 46, 78, 77, 1, 0, 30, 75, 86,
    151, 10, 0, 0, 0,
];

/// A page gzipped whenever it may be, as development servers do.
async fn negotiated(headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    let accepted = headers
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let page = [("content-type", "text/html")];
    if accepted.contains("gzip") {
        (page, [("content-encoding", "gzip")], GZIPPED.to_vec()).into_response()
    } else {
        (page, "compressed").into_response()
    }
}

/// The loopback port the session's OpenCode serves its API on, once the runner reports the agent
/// ready: OpenCode can leave a request made during its own start-up unanswered.
async fn ready_opencode_port(stack: &Stack, id: &str) -> u16 {
    for _ in 0..600 {
        let ready = stack.history(id).await.iter().any(|e| {
            matches!(
                e.body,
                EventBody::AgentStatus {
                    state: AgentState::Ready,
                    ..
                }
            )
        });
        let listening = stack
            .sandbox_procs(id)
            .into_iter()
            .filter(|p| p.argv.iter().any(|a| a == "serve"))
            .flat_map(|p| e2e::procs::tcp_listeners(p.pid))
            .next();
        if let (true, Some(at)) = (ready, listening) {
            return at.port();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the agent never became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_own_api_is_closed_to_previews() {
    let stack = Stack::start(StackOptions::default()).await;
    let id = session(&stack).await;
    let admin = stack.admin_key.clone();
    let cookie = open(&stack, &admin, &id, "terminal").await;
    let port = ready_opencode_port(&stack, &id).await;
    // OpenCode listens on the sandbox's loopback like any app, so a preview reaches its port; it
    // asks for the password only the runner holds. (Its API would drive the agent around the
    // session's log and roles.) Every agent test shows the runner, which holds it, still drives
    // the agent.
    for path in ["config", "session", "event"] {
        let resp = panels::get(
            &stack,
            &admin,
            &cookie,
            &format!("/sandbox/{id}/preview/{port}/{path}"),
        )
        .await;
        assert_eq!(resp.status(), 401, "/{path}");
    }
    // So does the runner's model relay, which asks for the key it gave the agent: a preview
    // cannot spend the session's model.
    let gateway = stack
        .sandbox_info(&id)
        .await
        .gateway_url
        .expect("a gateway");
    let relay: Vec<u16> = stack
        .runners(&id)
        .iter()
        .flat_map(|r| e2e::procs::tcp_listeners(r.pid))
        .map(|at| at.port())
        .filter(|p| !gateway.ends_with(&format!(":{p}")))
        .collect();
    assert_eq!(
        relay.len(),
        1,
        "the runner listens for the agent's model calls alone"
    );
    let resp = panels::get(
        &stack,
        &admin,
        &cookie,
        &format!("/sandbox/{id}/preview/{}/chat/completions", relay[0]),
    )
    .await;
    assert_eq!(resp.status(), 401);
}

/// A local app the "agent" started: large bodies both ways, a slow stream and a WebSocket echo.
async fn upstream(stack: &Stack, id: &str) -> u16 {
    let app = axum::Router::new()
        .route("/big", get(|| async { vec![b'x'; 8 << 20] }))
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
        .route(
            "/slow",
            get(|| async {
                let chunks = futures::stream::unfold(0, |i| async move {
                    if i == 3 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(if i == 0 { 0 } else { 700 })).await;
                    Some((Ok::<_, std::io::Error>(format!("chunk{i};")), i + 1))
                });
                axum::body::Body::from_stream(chunks)
            }),
        )
        .route("/ws", get(panels::ws_echo))
        .route("/negotiated", get(negotiated))
        .layer(axum::extract::DefaultBodyLimit::disable());
    panels::serve_app(stack, id, app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_proxy_http_and_websockets_streaming_both_ways() {
    let stack = Stack::start(StackOptions::default()).await;
    let id = session(&stack).await;
    let admin = stack.admin_key.clone();
    let cookie = open(&stack, &admin, &id, "terminal").await;
    let port = upstream(&stack, &id).await;
    let at = |m: Method, p: &str| stack.request(m, &format!("/sandbox/{id}/preview/{port}/{p}"));

    let big = at(Method::GET, "big")
        .bearer_auth(&admin)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 200, "{:?}", big.headers());
    assert_eq!(big.bytes().await.unwrap().len(), 8 << 20);

    let payload: Vec<u8> = (0..(5 << 20)).map(|i| (i % 251) as u8).collect();
    let echoed = at(Method::POST, "echo")
        .bearer_auth(&admin)
        .header("cookie", &cookie)
        .header("origin", stack.sandbox_origin(&id))
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    assert!(
        echoed.bytes().await.unwrap() == payload,
        "a 5 MiB body arrives intact"
    );

    // Streaming: the first chunk arrives long before the upstream has finished.
    let started = std::time::Instant::now();
    let mut slow = at(Method::GET, "slow")
        .bearer_auth(&admin)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let first = slow.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("chunk0"));
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "not buffered: {:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    while let Some(c) = slow.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert!(String::from_utf8_lossy(&rest).ends_with("chunk2;"));

    // The Worker's own fetch always accepts compression, and the front line (Cloudflare's, or
    // wrangler's stand-in for it) negotiates the coding with the client: gzip to one that takes it,
    // decoded for one that does not.
    for (accepts, encoding) in [("gzip", Some("gzip")), ("identity", None)] {
        let resp = at(Method::GET, "negotiated")
            .bearer_auth(&admin)
            .header("cookie", &cookie)
            .header("accept-encoding", accepts)
            .send()
            .await
            .unwrap();
        let got = resp.headers().get("content-encoding").cloned();
        assert_eq!(got.as_ref().map(|v| v.to_str().unwrap()), encoding);
        let got = resp.bytes().await.unwrap();
        // Decoded and encoded again on the way: its gzip header is the Worker's, not the app's.
        match encoding {
            Some(_) => assert!(got.starts_with(&GZIPPED[..2]), "{got:?}"),
            None => assert_eq!(&got[..], b"compressed"),
        }
    }

    let mut ws = socket(
        &stack,
        &admin,
        &cookie,
        &format!("/sandbox/{id}/preview/{port}/ws"),
    )
    .await;
    let big_frame = "y".repeat(1 << 20);
    ws.send(Message::Text("hello".into())).await.unwrap();
    ws.send(Message::Text(big_frame.clone().into()))
        .await
        .unwrap();
    let one = ws.next().await.unwrap().unwrap();
    let two = ws.next().await.unwrap().unwrap();
    assert_eq!(one.into_text().unwrap().as_str(), "hello");
    assert_eq!(two.into_text().unwrap().len(), big_frame.len());
}

/// A stack with a session whose `kind` panel is offered (`make setup` installs what each needs),
/// and the admin's cookie for it.
async fn with_panel(kind: PanelKind) -> (Stack, String, String) {
    let stack = Stack::start(StackOptions::default()).await;
    let id = session(&stack).await;
    let info = stack.session(&id).await;
    let panel = info.panels.iter().find(|p| p.kind == kind).unwrap();
    assert!(panel.available, "make setup installs it: {panel:?}");
    let cookie = open(&stack, &stack.admin_key, &id, kind.as_str()).await;
    (stack, id, cookie)
}

/// VS Code: the real code-server, started by the first request for it, serves its workbench
/// through the gateway and takes its WebSocket; a viewer is kept out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vscode_serves_the_workbench_and_its_socket() {
    let (stack, id, cookie) = with_panel(PanelKind::Vscode).await;
    let admin = stack.admin_key.clone();
    // Its first answer redirects (relatively) to the workspace folder, whose page is the
    // workbench; its socket speaks VS Code's own binary protocol.
    let page = panels::get(&stack, &admin, &cookie, &format!("/sandbox/{id}/code/")).await;
    let (status, final_url) = (page.status(), page.url().clone());
    assert_eq!(status, 200, "{final_url}");
    let html = page
        .headers()
        .get("content-type")
        .and_then(|c| c.to_str().ok());
    assert!(html.is_some_and(|c| c.starts_with("text/html")), "{html:?}");
    let folder = format!("folder={}", stack.workspace(&id).display());
    assert!(
        final_url.query().is_some_and(|q| q.contains(&folder)),
        "it opens the session's workspace: {final_url}"
    );
    let query = "reconnectionToken=e2e&reconnection=false&skipWebSocketFrames=false";
    let mut ws = socket(
        &stack,
        &admin,
        &cookie,
        &format!("/sandbox/{id}/code/?{query}"),
    )
    .await;
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("code-server speaks first on its socket")
        .expect("a frame")
        .expect("a frame");
    assert!(first.is_binary(), "{first:?}");

    let viewer = viewer_token(&stack, &id).await;
    let vcookie = open(&stack, &viewer, &id, "terminal").await;
    let editor = panels::get(&stack, &viewer, &vcookie, &format!("/sandbox/{id}/code/")).await;
    assert_eq!(
        editor.status(),
        403,
        "the editor takes input: not for viewers"
    );
}

/// An app that speaks HTTP/1.0 and closes every connection, like Python's `http.server`.
fn closing_app(stack: &Stack, id: &str) -> u16 {
    use std::io::{Read, Write};
    let runner = stack.runner_pids(id)[0];
    let listener = e2e::procs::in_netns_of(runner, || std::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind in the sandbox");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let answer = b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
            conn.write_all(answer).ok();
        }
    });
    port
}

/// The client's connection to the gateway is the gateway's, not the app's: an app that closes
/// every connection does not close the client's, which stays open for the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_app_does_not_close_the_clients_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start(StackOptions::default()).await;
    let id = session(&stack).await;
    let listen = panels::gateway_listening(&stack, &id).await;
    let url = token_url(&stack, &stack.admin_key, &id, "terminal").await;
    let (_, cookie, _) = panels::trade(
        &format!("http://{listen}{}", panels::path_of(&url)),
        None,
        None,
    )
    .await;
    let cookie = cookie.expect("the gateway's cookie");
    let port = closing_app(&stack, &id);
    let mut conn = tokio::net::TcpStream::connect(&listen).await.unwrap();
    for round in 0..2 {
        let request = format!(
            "GET /sandbox/{id}/preview/{port}/ HTTP/1.1\r\nHost: {listen}\r\nCookie: {cookie}\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.ends_with(b"\r\n\r\nok") {
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            assert!(n > 0, "round {round}: the gateway closed the connection");
            seen.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&seen).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnc_completes_the_rfb_handshake_and_sends_a_framebuffer() {
    let (stack, id, cookie) = with_panel(PanelKind::Browser).await;
    let admin = stack.admin_key.clone();
    let page = panels::get(
        &stack,
        &admin,
        &cookie,
        &format!("/sandbox/{id}/vnc/vnc.html"),
    )
    .await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("noVNC"));

    let ws = socket(
        &stack,
        &admin,
        &cookie,
        &format!("/sandbox/{id}/vnc/websockify"),
    )
    .await;
    let mut rfb = Rfb::new(ws);
    let version = rfb.read(12).await;
    assert_eq!(&version, b"RFB 003.008\n");
    rfb.write(b"RFB 003.008\n").await;
    let n = rfb.read(1).await[0] as usize;
    let types = rfb.read(n).await;
    assert!(
        types.contains(&1),
        "no-auth offered (the gateway is the door): {types:?}"
    );
    rfb.write(&[1]).await;
    assert_eq!(rfb.read(4).await, vec![0, 0, 0, 0], "security result OK");
    rfb.write(&[1]).await; // ClientInit: shared
    let init = rfb.read(24).await;
    let (w, h) = (
        u16::from_be_bytes([init[0], init[1]]),
        u16::from_be_bytes([init[2], init[3]]),
    );
    assert_eq!((w, h), (1280, 800));
    let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    rfb.read(name_len).await;
    let mut req = vec![3u8, 0, 0, 0, 0, 0];
    req.extend_from_slice(&w.to_be_bytes());
    req.extend_from_slice(&h.to_be_bytes());
    rfb.write(&req).await;
    let header = rfb.read(4).await;
    assert_eq!(header[0], 0, "a FramebufferUpdate");
    assert!(
        u16::from_be_bytes([header[2], header[3]]) >= 1,
        "with at least one rectangle"
    );
}

/// RFB over a WebSocket's binary frames, read as a byte stream.
struct Rfb {
    ws: e2e::panels::Socket,
    buf: Vec<u8>,
}

impl Rfb {
    fn new(ws: e2e::panels::Socket) -> Rfb {
        Rfb {
            ws,
            buf: Vec::new(),
        }
    }

    async fn read(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match tokio::time::timeout(SHORT, self.ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => self.buf.extend_from_slice(&b),
                Ok(Some(Ok(_))) => {}
                other => panic!("the VNC stream ended: {other:?}"),
            }
        }
        self.buf.drain(..n).collect()
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .unwrap();
    }
}

/// Only the gateway and the agent's own API listen on TCP, on loopback; the panel services listen
/// on Unix sockets in the sandbox's private directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_services_listen_on_no_tcp_port() {
    let stack = Stack::start(StackOptions::default()).await;
    let id = session(&stack).await;
    let admin = stack.admin_key.clone();
    open(&stack, &admin, &id, "browser").await;
    let procs = stack.sandbox_procs(&id);
    let names: Vec<String> = procs.iter().map(|p| p.argv.join(" ")).collect();
    for service in ["Xvfb", "x11vnc", "websockify"] {
        let p = procs
            .iter()
            .find(|p| p.argv.iter().any(|a| a.ends_with(service)))
            .unwrap_or_else(|| panic!("{service} runs: {names:?}"));
        assert!(
            e2e::procs::tcp_listeners(p.pid).is_empty(),
            "{service} listens on TCP"
        );
    }
    let mut all = Vec::new();
    for p in &procs {
        all.extend(e2e::procs::tcp_listeners(p.pid));
    }
    assert!(
        all.iter().all(|a| a.ip().is_loopback()),
        "only loopback: {all:?}"
    );
    // The gateway's socket, handed down from the provider, stays with the runner: nothing the
    // runner starts (the agent, a shell, the desktop) could take its connections.
    let gateway: std::net::SocketAddr = panels::gateway_listening(&stack, &id)
        .await
        .parse()
        .unwrap();
    let runners = stack.runner_pids(&id);
    let holders: Vec<&e2e::procs::Proc> = procs
        .iter()
        .filter(|p| e2e::procs::tcp_listeners(p.pid).contains(&gateway))
        .collect();
    assert!(
        holders.iter().any(|p| runners.contains(&p.pid)),
        "the runner serves it"
    );
    for p in holders {
        assert!(
            runners.contains(&p.pid) || p.program_is("bwrap"),
            "{:?} holds the gateway's socket",
            p.argv
        );
    }
}
