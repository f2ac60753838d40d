//! Opening a sandbox's panels the way the web client does: a panel token from the worker, traded
//! at the gateway (through the worker, on the session's own sandbox origin) for the panel cookie.

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::Stack;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The address of the session's gateway, once it answers. (A TCP connect alone proves nothing:
/// the provider opens the gateway's socket before the runner serves it.)
pub async fn gateway_listening(stack: &Stack, session: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let url = stack
        .sandbox_info(session)
        .await
        .gateway_url
        .expect("a gateway");
    let listen = url.trim_start_matches("http://").to_owned();
    loop {
        let answered = reqwest::Client::new()
            .get(format!("{url}/"))
            .timeout(std::time::Duration::from_secs(1))
            .send()
            .await;
        if answered.is_ok() {
            return listen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session's gateway never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A panel token's URL for `panel`, as `token` (a bearer credential).
pub async fn token_url(stack: &Stack, token: &str, session: &str, panel: &str) -> String {
    let (status, v) = stack
        .call_as(
            Some(token),
            Method::POST,
            &format!("/api/sessions/{session}/panel-token"),
            Some(json!({"panel": panel}).to_string()),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["url"].as_str().expect("url").to_owned()
}

/// The path (and query) of a panel-token URL, to present it at a gateway's own address.
pub fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    &rest[rest.find('/').unwrap_or(rest.len())..]
}

/// Presents a panel-token URL (or a sandbox path) at the session's sandbox origin; returns the
/// status, the `Cookie` to send afterwards (if any) and the body.
pub async fn exchange(stack: &Stack, token: &str, url: &str) -> (u16, Option<String>, Value) {
    let (url, host) = stack.locate(url);
    trade(&url, host.as_deref(), Some(token)).await
}

/// Presents a panel-token URL at `full_url` (naming `host`: a sandbox's origin through the
/// worker, or a gateway's own address), without following the redirect, so the cookie it sets
/// can be read.
pub async fn trade(
    full_url: &str,
    host: Option<&str>,
    bearer: Option<&str>,
) -> (u16, Option<String>, Value) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = http.get(full_url);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("exchange");
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, cookie, body)
}

/// A GET of a sandbox path through the worker (on the session's sandbox origin), as `token`
/// with the panel `cookie`.
pub async fn get(stack: &Stack, token: &str, cookie: &str, path: &str) -> reqwest::Response {
    stack
        .request(Method::GET, path)
        .bearer_auth(token)
        .header("cookie", cookie)
        .send()
        .await
        .expect("request")
}

/// A WebSocket handler that sends back whatever it receives.
pub async fn ws_echo(ws: axum::extract::WebSocketUpgrade) -> axum::response::Response {
    ws.on_upgrade(|mut s| async move {
        while let Some(Ok(m)) = s.recv().await {
            if s.send(m).await.is_err() {
                break;
            }
        }
    })
}

/// Serves `app` on a free loopback port inside the session's sandbox: an app "the agent started",
/// for previews. The sandbox's runner must be up.
pub async fn serve_app(stack: &Stack, session: &str, app: axum::Router) -> u16 {
    let runner = *stack
        .runner_pids(session)
        .first()
        .expect("the sandbox runs");
    let listener = crate::procs::in_netns_of(runner, || {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(l)
    })
    .expect("bind in the sandbox");
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    port
}

/// Opens `panel` and returns the cookie that admits to it.
pub async fn open(stack: &Stack, token: &str, session: &str, panel: &str) -> String {
    let url = token_url(stack, token, session, panel).await;
    let (status, cookie, body) = exchange(stack, token, &url).await;
    assert_eq!(status, 303, "{body}");
    cookie.expect("the gateway sets its cookie")
}

/// A panel's WebSocket through the worker, as the panel's page in the web client's iframe opens
/// it (on the session's sandbox origin, with that Origin).
pub async fn socket(stack: &Stack, token: &str, cookie: &str, path: &str) -> Socket {
    let (_, host) = stack.locate(path);
    let host = host.expect("a sandbox path");
    let mut req = stack.ws_url(path).into_client_request().expect("request");
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req.headers_mut().insert("host", host.parse().unwrap());
    req.headers_mut()
        .insert("origin", format!("http://{host}").parse().unwrap());
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("socket {path}: {e}"))
        .0
}

/// Sends keystrokes to a terminal socket.
pub async fn type_keys(ws: &mut Socket, keys: &str) {
    let msg = json!({"type": "input", "data": keys}).to_string();
    ws.send(Message::Text(msg.into())).await.expect("send");
}

/// Reads terminal output until it contains `want`; panics with what it saw if it never does.
pub async fn read_until(
    ws: &mut Socket,
    want: &str,
    within: std::time::Duration,
) -> Option<String> {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while !seen.contains(want) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Ok(Some(Ok(Message::Text(t)))) => seen.push_str(&t),
            Ok(Some(Ok(_))) => {}
            other => panic!("never saw {want:?} ({other:?}); saw:\n{seen}"),
        }
    }
    Some(seen)
}

/// An API token of vera's, a viewer of session `id` (signed in after a first user, who becomes
/// the organisation's admin and so acts as owner everywhere).
pub async fn viewer_token(stack: &Stack, id: &str) -> String {
    stack.dev_login("first").await;
    let token = stack.dev_login("vera").await;
    let (status, v) = stack
        .call(
            Method::POST,
            &format!("/api/sessions/{id}/members"),
            Some(json!({"login": "vera", "role": "viewer"})),
        )
        .await;
    assert!(status < 300, "{v}");
    token
}
