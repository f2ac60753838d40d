//! Accounts end to end: sign-in sessions (bearer and cookie), API keys that never exceed their
//! owner, logout, per-user limits with a clear error, and the audit log.

use e2e::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};

async fn login(stack: &Stack, name: &str) -> (String, String) {
    let resp = reqwest::Client::new()
        .post(stack.url("/auth/dev/login"))
        .body(json!({"login": name}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let v: Value = resp.json().await.unwrap();
    (v["token"].as_str().unwrap().to_owned(), cookie)
}

async fn call(
    stack: &Stack,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    stack
        .call_as(Some(token), method, path, body.map(|b| b.to_string()))
        .await
}

const REDEEM: &str = "/api/share-links/redeem";
const ACCEPT: &str = "/api/invites/accept";

/// Presents a one-time token (a share link's or an invite's) at `path`, as `who`.
async fn present(stack: &Stack, who: &str, path: &str, token: &str) -> (u16, Value) {
    call(
        stack,
        who,
        Method::POST,
        path,
        Some(json!({"token": token})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_keys_limits_and_audit() {
    let stack = Stack::start(StackOptions {
        max_active_sessions: 2,
        ..Default::default()
    })
    .await;
    let (alice, _) = login(&stack, "alice").await;
    let (bob, cookie) = login(&stack, "bob").await;

    let (_, me) = call(&stack, &alice, Method::GET, "/api/me", None).await;
    assert_eq!(
        (me["login"].as_str(), me["role"].as_str()),
        (Some("alice"), Some("admin")),
        "first person is admin"
    );
    let (_, me) = call(&stack, &bob, Method::GET, "/api/me", None).await;
    assert_eq!(me["role"], "member");
    assert!(!me["scopes"].as_array().unwrap().contains(&json!("admin")));

    // The SPA's cookie: HttpOnly, SameSite, and it authenticates.
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let token_cookie = cookie.split(';').next().unwrap().to_owned();
    let resp = reqwest::Client::new()
        .get(stack.url("/api/me"))
        .header("cookie", &token_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // CSRF: a state-changing request on the cookie alone must come from our own origin.
    let put = |origin: Option<String>| {
        let mut r = reqwest::Client::new()
            .put(stack.url("/api/credentials/github_token"))
            .header("cookie", &token_cookie)
            .body(json!({"secret": "ghp_csrf"}).to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    assert_eq!(put(None).await.unwrap().status(), 403, "no Origin");
    assert_eq!(
        put(Some("https://evil.example".into()))
            .await
            .unwrap()
            .status(),
        403,
        "foreign Origin"
    );
    let ours = stack.url("").trim_end_matches('/').to_owned();
    assert_eq!(put(Some(ours)).await.unwrap().status(), 200, "same origin");

    // Keys: shown once, never more than the owner has, refused once revoked.
    let (s, v) = call(
        &stack,
        &bob,
        Method::POST,
        "/api/keys",
        Some(json!({"name": "ci", "scopes": ["admin"]})),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (403, Some("forbidden")), "{v}");
    let (s, k) = call(
        &stack,
        &bob,
        Method::POST,
        "/api/keys",
        Some(json!({"name": "ci", "scopes": ["sessions:read"]})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(k["prefix"].as_str().unwrap()));
    let (s, _) = call(&stack, &key, Method::GET, "/api/sessions", None).await;
    assert_eq!(s, 200);
    let (s, v) = call(&stack, &key, Method::POST, "/api/sessions", Some(json!({}))).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("forbidden")),
        "a read key cannot create"
    );
    let (_, keys) = call(&stack, &bob, Method::GET, "/api/keys", None).await;
    assert!(
        !keys.to_string().contains(&key),
        "listing never shows a key"
    );
    assert!(keys["keys"][0]["last_used_at"].as_u64().is_some(), "{keys}");
    let (s, _) = call(
        &stack,
        &bob,
        Method::DELETE,
        &format!("/api/keys/{}", k["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(&stack, &key, Method::GET, "/api/sessions", None).await;
    assert_eq!(s, 401);

    // An expiring key works until its time, then is refused.
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 2_000;
    let (s, short) = call(
        &stack,
        &bob,
        Method::POST,
        "/api/keys",
        Some(json!({"name": "short", "scopes": ["sessions:read"], "expires_at": soon})),
    )
    .await;
    assert_eq!(s, 201, "{short}");
    let short = short["key"].as_str().unwrap().to_owned();
    assert_eq!(
        call(&stack, &short, Method::GET, "/api/sessions", None)
            .await
            .0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(
        call(&stack, &short, Method::GET, "/api/sessions", None)
            .await
            .0,
        401,
        "expired key refused"
    );

    // Limits: a clear error, not a silent pause.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (s, v) = call(&stack, &bob, Method::POST, "/api/sessions", Some(json!({}))).await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (s, v) = call(&stack, &bob, Method::POST, "/api/sessions", Some(json!({}))).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("limit_exceeded")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("terminate one"));
    let (s, _) = call(
        &stack,
        &bob,
        Method::DELETE,
        &format!("/api/sessions/{}", ids[0]),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(&stack, &bob, Method::POST, "/api/sessions", Some(json!({}))).await;
    assert_eq!(s, 201, "room again after terminating one: {v}");

    let body = json!({"login": "alice", "role": "viewer"});
    let (s, _) = call(
        &stack,
        &bob,
        Method::POST,
        &format!("/api/sessions/{}/members", ids[1]),
        Some(body),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = call(
        &stack,
        &bob,
        Method::PUT,
        "/api/credentials/github_token",
        Some(json!({"secret": "ghp_x"})),
    )
    .await;
    assert_eq!(s, 200);

    // Logout revokes the login session.
    let (s, _) = call(&stack, &bob, Method::POST, "/auth/logout", None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&stack, &bob, Method::GET, "/api/me", None).await;
    assert_eq!(s, 401);

    let (s, audit) = call(&stack, &alice, Method::GET, "/api/admin/audit", None).await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "sign_in",
        "api_key_created",
        "api_key_revoked",
        "session_terminated",
        "role_changed",
        "credential_stored",
        "sign_out",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let (s, _) = call(&stack, &key, Method::GET, "/api/admin/audit", None).await;
    assert_eq!(s, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_links_grant_a_role_until_they_expire_or_run_out() {
    let stack = Stack::start(StackOptions::default()).await;
    login(&stack, "root").await;
    let (owner, _) = login(&stack, "olivia").await;
    let (guest, _) = login(&stack, "gus").await;
    let (late, _) = login(&stack, "lena").await;
    let (_, v) = call(
        &stack,
        &owner,
        Method::POST,
        "/api/sessions",
        Some(json!({})),
    )
    .await;
    let session = v["id"].as_str().unwrap().to_owned();
    let links = format!("/api/sessions/{session}/share-links");

    let (s, v) = call(
        &stack,
        &owner,
        Method::POST,
        &links,
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_body")));
    let (s, link) = call(
        &stack,
        &owner,
        Method::POST,
        &links,
        Some(json!({"role": "viewer", "max_uses": 1})),
    )
    .await;
    assert_eq!(s, 201, "{link}");
    let token = link["token"].as_str().unwrap().to_owned();

    let (s, _) = call(
        &stack,
        &guest,
        Method::GET,
        &format!("/api/sessions/{session}/events"),
        None,
    )
    .await;
    assert_eq!(s, 404, "a stranger does not see the session");
    let (s, v) = present(&stack, &guest, REDEEM, &token).await;
    assert_eq!((s, v["role"].as_str()), (200, Some("viewer")), "{v}");
    let (s, _) = call(
        &stack,
        &guest,
        Method::GET,
        &format!("/api/sessions/{session}/events"),
        None,
    )
    .await;
    assert_eq!(s, 200, "the viewer watches");
    let (s, v) = call(
        &stack,
        &guest,
        Method::POST,
        &format!("/api/sessions/{session}/prompts"),
        Some(json!({"text": "hi"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("forbidden")),
        "a viewer cannot prompt"
    );
    let (s, v) = present(&stack, &late, REDEEM, &token).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("not_found")),
        "the single use is spent: {v}"
    );

    let (_, short) = call(
        &stack,
        &owner,
        Method::POST,
        &links,
        Some(json!({"role": "collaborator", "expires_in_secs": 1})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (s, _) = present(&stack, &late, REDEEM, short["token"].as_str().unwrap()).await;
    assert_eq!(s, 404, "an expired link is refused");

    let (_, audit) = stack.call(Method::GET, "/api/admin/audit", None).await;
    assert!(audit.to_string().contains("share_link_used"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_grant_an_org_role_once_before_they_expire() {
    let stack = Stack::start(StackOptions::default()).await;
    let (admin, _) = login(&stack, "root").await;
    let (bob, _) = login(&stack, "bob").await;
    let (carol, _) = login(&stack, "carol").await;
    let (s, v) = call(
        &stack,
        &bob,
        Method::POST,
        "/api/admin/invites",
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("forbidden")),
        "members cannot invite"
    );

    let (s, invite) = call(
        &stack,
        &admin,
        Method::POST,
        "/api/admin/invites",
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 201, "{invite}");
    let token = invite["token"].as_str().unwrap().to_owned();
    let (s, v) = present(&stack, &bob, ACCEPT, &token).await;
    assert_eq!((s, v["role"].as_str()), (200, Some("admin")), "{v}");
    let (_, me) = call(&stack, &bob, Method::GET, "/api/me", None).await;
    assert_eq!(me["role"], "admin");
    let (s, _) = present(&stack, &carol, ACCEPT, &token).await;
    assert_eq!(s, 404, "an invite is used once");

    let (_, short) = call(
        &stack,
        &admin,
        Method::POST,
        "/api/admin/invites",
        Some(json!({"role": "admin", "expires_in_secs": 1})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (s, _) = present(&stack, &carol, ACCEPT, short["token"].as_str().unwrap()).await;
    assert_eq!(s, 404, "an expired invite is refused");
    let (_, me) = call(&stack, &carol, Method::GET, "/api/me", None).await;
    assert_eq!(me["role"], "member");

    let (_, member_invite) = call(
        &stack,
        &admin,
        Method::POST,
        "/api/admin/invites",
        Some(json!({"role": "member"})),
    )
    .await;
    let (s, _) = present(
        &stack,
        &bob,
        ACCEPT,
        member_invite["token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let (_, me) = call(&stack, &bob, Method::GET, "/api/me", None).await;
    assert_eq!(
        me["role"], "admin",
        "a member invite never demotes an administrator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_sign_in_exists_only_in_development() {
    let stack = Stack::start(StackOptions {
        environment: "production",
        ..Default::default()
    })
    .await;
    let (s, v) = stack
        .call_as(
            None,
            Method::POST,
            "/auth/dev/login",
            Some(json!({"login": "mallory"}).to_string()),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_authenticate_sockets_without_a_token_in_the_url() {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
    let stack = Stack::start(StackOptions::default()).await;
    let (owner, cookie) = login(&stack, "olivia").await;
    let (_, v) = call(
        &stack,
        &owner,
        Method::POST,
        "/api/sessions",
        Some(json!({})),
    )
    .await;
    let url = stack.ws_url(&format!("/api/sessions/{}/ws", v["id"].as_str().unwrap()));
    let connect = |headers: Vec<(&'static str, String)>| {
        let mut req = url.as_str().into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut()
                .insert(k, HeaderValue::from_str(&v).unwrap());
        }
        async move {
            match tokio_tungstenite::connect_async(req).await {
                Ok((_, resp)) => (
                    101,
                    resp.headers()
                        .get("sec-websocket-protocol")
                        .map(|p| p.to_str().unwrap().to_owned()),
                ),
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) => (r.status().as_u16(), None),
                Err(e) => panic!("{e}"),
            }
        }
    };
    // The subprotocol carries the token; the server answers with `agent-ops`, never the token.
    let (s, proto) = connect(vec![(
        "sec-websocket-protocol",
        format!("agent-ops, bearer.{owner}"),
    )])
    .await;
    assert_eq!((s, proto.as_deref()), (101, Some("agent-ops")));
    // The HttpOnly cookie, from our own origin only.
    let session_cookie = cookie.split(';').next().unwrap().to_owned();
    let origin = stack.url("").trim_end_matches('/').to_owned();
    let (s, _) = connect(vec![("cookie", session_cookie.clone()), ("origin", origin)]).await;
    assert_eq!(s, 101);
    let (s, _) = connect(vec![
        ("cookie", session_cookie.clone()),
        ("origin", "https://evil.example".into()),
    ])
    .await;
    assert_eq!(s, 403, "cross-site socket hijacking is refused");
    // Any page may name subprotocols on a socket it opens: naming one that carries no token
    // leaves the cookie the credential, and the rule with it.
    let (s, _) = connect(vec![
        ("cookie", session_cookie.clone()),
        ("origin", "https://evil.example".into()),
        ("sec-websocket-protocol", "agent-ops".into()),
    ])
    .await;
    assert_eq!(s, 403, "a subprotocol does not lift the Origin rule");
}
