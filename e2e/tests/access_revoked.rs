//! Access taken back takes effect at once (SECURITY.md): removal, demotion, signing out and a
//! revoked key close the sockets opened with that access, on the session and in the sandbox's
//! gateway alike, and the gateway's cookie admits nothing more.

use std::time::Duration;

use e2e::panels::{self, Socket};
use e2e::{ClientSocket, Stack, StackOptions};
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const SHORT: Duration = Duration::from_secs(10);

/// Opens `id`'s terminal as `token`: the gateway cookie, and the shell's socket once it said hello.
async fn terminal(stack: &Stack, token: &str, id: &str) -> (String, Socket) {
    let cookie = panels::open(stack, token, id, "terminal").await;
    let path = format!("/sandbox/{id}/terminal/ws");
    let mut ws = panels::socket(stack, token, &cookie, &path).await;
    assert!(panels::read_until(&mut ws, "\"writable\"", SHORT)
        .await
        .is_some());
    (cookie, ws)
}

/// Whether the gateway's socket ends (closed or dropped) within `within`.
async fn ends(ws: &mut Socket, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The status of the terminal's page for the holder of `cookie`.
async fn panel_page(stack: &Stack, cookie: &str, id: &str) -> u16 {
    let path = format!("/sandbox/{id}/terminal/");
    let admin = &stack.admin_key;
    panels::get(stack, admin, cookie, &path)
        .await
        .status()
        .as_u16()
}

/// What was opened with access just taken back: the session socket is closed (4403), the
/// gateway's terminal socket ends, and its cookie admits nothing more.
async fn assert_taken_back(
    stack: &Stack,
    id: &str,
    (socket, terminal, cookie): (&mut ClientSocket, &mut Socket, &str),
    whose: &str,
) {
    assert_eq!(
        socket.closed_with(SHORT).await,
        Some(4403),
        "{whose} socket"
    );
    assert!(ends(terminal, SHORT).await, "{whose} terminal ends");
    assert_eq!(panel_page(stack, cookie, id).await, 401, "{whose} cookie");
}

/// Signing out and revoking a key take back what was opened with them alone, at once: the
/// session socket closes, the gateway's terminal socket ends and its cookie admits nothing more,
/// while the same person's other sign-in keeps everything of its own. Before the fix a signed-out
/// browser's open sockets went on streaming (and typing into the shell) for as long as they were
/// open, and its panel cookie for eight hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_and_revoking_a_key_close_what_they_opened() {
    let stack = Stack::start(StackOptions::default()).await;
    stack.dev_login("root").await;
    let laptop = stack.dev_login("olivia").await;
    let phone = stack.dev_login("olivia").await;
    let id = stack.create_session_as(&laptop, None).await.id;
    let (s, k) = stack
        .call_as(
            Some(&phone),
            Method::POST,
            "/api/keys",
            Some(json!({"name": "ci", "scopes": ["sessions:read", "sessions:write"]}).to_string()),
        )
        .await;
    assert_eq!(s, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    let url = stack.ws_url(&format!("/api/sessions/{id}/ws"));
    let mut laptops = ClientSocket::connect(&url, &laptop).await.unwrap();
    let mut phones = ClientSocket::connect(&url, &phone).await.unwrap();
    let mut keys = ClientSocket::connect(&url, &key).await.unwrap();
    let (laptop_cookie, mut laptop_terminal) = terminal(&stack, &laptop, &id).await;
    let (phone_cookie, mut phone_terminal) = terminal(&stack, &phone, &id).await;
    let (key_cookie, mut key_terminal) = terminal(&stack, &key, &id).await;

    let (s, v) = stack
        .call_as(Some(&laptop), Method::POST, "/auth/logout", None)
        .await;
    assert_eq!(s, 204, "{v}");
    let laptop_had = (&mut laptops, &mut laptop_terminal, laptop_cookie.as_str());
    assert_taken_back(&stack, &id, laptop_had, "the laptop's").await;

    let (s, v) = stack
        .call_as(
            Some(&phone),
            Method::DELETE,
            &format!("/api/keys/{}", k["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let key_had = (&mut keys, &mut key_terminal, key_cookie.as_str());
    assert_taken_back(&stack, &id, key_had, "the key's").await;

    // The phone's sign-in was neither: its socket, its shell and its cookie are as they were.
    assert_eq!(phones.closed_with(Duration::from_secs(2)).await, None);
    panels::type_keys(&mut phone_terminal, "echo still-$((40+2))\r").await;
    assert!(panels::read_until(&mut phone_terminal, "still-42", SHORT)
        .await
        .is_some());
    assert_eq!(panel_page(&stack, &phone_cookie, &id).await, 200);
}

/// Access taken back takes effect at once: a removed member's open socket is closed and they
/// can no longer reach the session; a demoted collaborator's socket is closed and comes back a
/// viewer's; a revoked share link redeems no more. Before the fix a removed member kept
/// watching (and steering) on the socket they had open, and typing into the sandbox's shell,
/// and neither removal nor revocation had a route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_taken_back_takes_effect_at_once() {
    use agent_ops_protocol::frames::{ClientFrame, ToClientFrame};
    let stack = Stack::start(StackOptions::default()).await;
    stack.dev_login("root").await;
    let owner = stack.dev_login("olivia").await;
    let carl = stack.dev_login("carl").await;
    let vera = stack.dev_login("vera").await;
    let id = stack.create_session_as(&owner, None).await.id;
    let members = format!("/api/sessions/{id}/members");
    let share = |login: &str, role: &str| {
        let body = json!({"login": login, "role": role}).to_string();
        stack.call_as(Some(&owner), Method::POST, &members, Some(body))
    };
    for (who, role) in [("carl", "collaborator"), ("vera", "collaborator")] {
        let (s, v) = share(who, role).await;
        assert_eq!(s, 201, "{v}");
    }
    let url = stack.ws_url(&format!("/api/sessions/{id}/ws"));
    let mut carls = ClientSocket::connect(&url, &carl).await.unwrap();
    let (carls_cookie, mut carls_terminal) = terminal(&stack, &carl, &id).await;
    let mut veras = ClientSocket::connect(&url, &vera).await.unwrap();
    let short = Duration::from_secs(10);

    // Removed: the socket closes, and the session is gone from carl's reach.
    let (s, v) = stack
        .call_as(
            Some(&owner),
            Method::DELETE,
            &format!("/api/sessions/{id}/members/carl"),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let carl_had = (&mut carls, &mut carls_terminal, carls_cookie.as_str());
    assert_taken_back(&stack, &id, carl_had, "carl's").await;
    let (s, _) = stack
        .call_as(
            Some(&carl),
            Method::GET,
            &format!("/api/sessions/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    assert!(ClientSocket::connect(&url, &carl).await.is_err());
    let (s, v) = stack
        .call_as(
            Some(&owner),
            Method::DELETE,
            &format!("/api/sessions/{id}/members/carl"),
            None,
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")), "{v}");

    // Demoted: the collaborator's socket closes, and the one she opens again cannot steer.
    let (s, v) = share("vera", "viewer").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(veras.closed_with(short).await, Some(4403));
    let mut veras = ClientSocket::connect(&url, &vera).await.unwrap();
    veras
        .send(&ClientFrame::Prompt {
            text: "steer".into(),
            client_request_id: "demoted".into(),
        })
        .await;
    let refused = veras
        .until_frame(short, |f| matches!(f, ToClientFrame::Error(_)))
        .await;
    assert!(
        matches!(&refused, ToClientFrame::Error(e) if e.code == agent_ops_protocol::ErrorCode::Forbidden),
        "{refused:?}"
    );

    // A revoked share link redeems no more; revoking it twice is a stable not-found.
    let (s, link) = stack
        .call_as(
            Some(&owner),
            Method::POST,
            &format!("/api/sessions/{id}/share-links"),
            Some(json!({"role": "viewer", "max_uses": 5}).to_string()),
        )
        .await;
    assert_eq!(s, 201, "{link}");
    let revoke = format!(
        "/api/sessions/{id}/share-links/{}",
        link["id"].as_str().unwrap()
    );
    let (s, _) = stack
        .call_as(Some(&owner), Method::DELETE, &revoke, None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = stack
        .call_as(Some(&owner), Method::DELETE, &revoke, None)
        .await;
    assert_eq!(s, 404);
    let (s, v) = stack
        .call_as(
            Some(&carl),
            Method::POST,
            "/api/share-links/redeem",
            Some(json!({"token": link["token"]}).to_string()),
        )
        .await;
    assert!(s >= 400, "a revoked link was redeemed: {v}");
    let (s, _) = stack
        .call_as(
            Some(&carl),
            Method::GET,
            &format!("/api/sessions/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 404, "carl is still out");
}
