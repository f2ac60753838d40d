//! The authorization matrix, generated from the route table: every route x every kind of caller
//! gets the status its rule implies. The same for WebSocket messages by session role.

use agent_ops_protocol::access::{Need, OrgRole, Scope, SessionRole};
use agent_ops_protocol::frames::{ClientFrame, ToClientFrame};
use agent_ops_protocol::routes::RouteId;
use agent_ops_protocol::signing::hash_token;
use e2e::{ClientSocket, Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    ExpiredSession,
    RevokedKey,
    KeyWithoutScope,
    Viewer,
    Collaborator,
    Owner,
    Admin,
}

/// What the rule says, derived independently of the worker's code.
fn expected(need: Need, who: Who) -> Option<(u16, &'static str)> {
    let (scope, min_role) = match need {
        // On the session's sandbox origin, past the worker, the gateway's own door decides.
        Need::Public | Need::Gateway => return None,
        Need::Runner => return Some((401, "invalid_token")),
        // Whoever calls, it is not Slack: no signature, whatever else the request carries.
        Need::Slack => return Some((401, "missing_signature")),
        // The matrix's webhook trigger does not exist: found by no one, whoever calls.
        Need::Webhook => return Some((404, "not_found")),
        Need::Scope(s) => (s, None),
        Need::Session(s, r) => (s, Some(r)),
    };
    let (org, role) = match who {
        Who::Anonymous | Who::ExpiredSession | Who::RevokedKey => {
            return Some((401, "unauthorized"))
        }
        Who::KeyWithoutScope if scope != KEY_SCOPE => return Some((403, "forbidden")),
        Who::KeyWithoutScope => (OrgRole::Member, SessionRole::Owner),
        Who::Viewer => (OrgRole::Member, SessionRole::Viewer),
        Who::Collaborator => (OrgRole::Member, SessionRole::Collaborator),
        Who::Owner => (OrgRole::Member, SessionRole::Owner),
        Who::Admin => (OrgRole::Admin, SessionRole::Owner),
    };
    if scope == Scope::Admin && org != OrgRole::Admin {
        return Some((403, "forbidden"));
    }
    match min_role {
        Some(min) if role < min => Some((403, "forbidden")),
        _ => None,
    }
}

/// The one scope of the key "without scope": every route that needs another refuses it.
const KEY_SCOPE: Scope = Scope::WorkflowsRead;
const UNKNOWN: &str = "0123456789abcdef0123456789abcdef";

/// A request for each route (exhaustive: a new route does not compile until it is here).
fn request_for(route: RouteId, session: &str) -> (String, Option<Value>) {
    let s = session;
    match route {
        RouteId::Health => ("/health".into(), None),
        RouteId::OpenApi => ("/api/openapi.json".into(), None),
        RouteId::AuthProviders => ("/auth/providers".into(), None),
        RouteId::DevLogin => ("/auth/dev/login".into(), Some(json!({"login": "matrix"}))),
        RouteId::GithubStart => ("/auth/github".into(), None),
        RouteId::GithubCallback => ("/auth/github/callback?code=c&state=s".into(), None),
        RouteId::Logout => ("/auth/logout".into(), None),
        RouteId::Me => ("/api/me".into(), None),
        RouteId::CreateSession => ("/api/sessions".into(), Some(json!({"agent": "codex"}))),
        RouteId::ListSessions => ("/api/sessions".into(), None),
        RouteId::GetSession => (format!("/api/sessions/{s}"), None),
        RouteId::DeleteSession => (format!("/api/sessions/{s}"), None),
        RouteId::PostPrompt => (
            format!("/api/sessions/{s}/prompts"),
            Some(json!({"text": "hello"})),
        ),
        RouteId::CancelPrompt => (
            format!("/api/sessions/{s}/prompts/0123456789abcdef0123456789abcdef"),
            None,
        ),
        RouteId::Abort => (format!("/api/sessions/{s}/abort"), None),
        RouteId::Events => (format!("/api/sessions/{s}/events"), None),
        RouteId::ClientSocket => (format!("/api/sessions/{s}/ws"), None),
        RouteId::RunnerSocket => (format!("/api/sessions/{s}/runner"), None),
        RouteId::RunnerModel => (
            format!("/api/sessions/{s}/model/chat/completions"),
            Some(json!({"model": "scripted", "messages": []})),
        ),
        RouteId::AddMember => (
            format!("/api/sessions/{s}/members"),
            Some(json!({"login": "stranger", "role": "viewer"})),
        ),
        RouteId::RemoveMember => (format!("/api/sessions/{s}/members/nobody"), None),
        RouteId::RevokeShareLink => (
            format!("/api/sessions/{s}/share-links/0123456789abcdef0123456789abcdef"),
            None,
        ),
        RouteId::CreateShareLink => (
            format!("/api/sessions/{s}/share-links"),
            Some(json!({"role": "viewer"})),
        ),
        RouteId::RedeemShareLink => (
            "/api/share-links/redeem".into(),
            Some(json!({"token": "asl_unknown"})),
        ),
        RouteId::PanelToken => (
            format!("/api/sessions/{s}/panel-token"),
            Some(json!({"panel": "terminal"})),
        ),
        RouteId::SandboxGet => (format!("/sandbox/{s}/terminal/"), None),
        RouteId::SandboxPost => (format!("/sandbox/{s}/preview/9/form"), Some(json!({}))),
        RouteId::ListKeys => ("/api/keys".into(), None),
        RouteId::CreateKey => (
            "/api/keys".into(),
            Some(json!({"name": "m", "scopes": ["sessions:read"]})),
        ),
        RouteId::RevokeKey => ("/api/keys/0123456789abcdef0123456789abcdef".into(), None),
        RouteId::ListCredentials => ("/api/credentials".into(), None),
        RouteId::PutCredential => (
            "/api/credentials/github_token".into(),
            Some(json!({"secret": "ghp_x"})),
        ),
        RouteId::DeleteCredential => ("/api/credentials/github_token".into(), None),
        RouteId::ListOrgCredentials => ("/api/admin/credentials".into(), None),
        RouteId::PutOrgCredential => (
            "/api/admin/credentials/anthropic_api_key".into(),
            Some(json!({"secret": "sk-ant-x"})),
        ),
        RouteId::DeleteOrgCredential => ("/api/admin/credentials/anthropic_api_key".into(), None),
        RouteId::RotateVault => ("/api/admin/vault/rotate".into(), None),
        RouteId::ListAudit => ("/api/admin/audit".into(), None),
        RouteId::CreateInvite => ("/api/admin/invites".into(), Some(json!({"role": "member"}))),
        RouteId::AcceptInvite => (
            "/api/invites/accept".into(),
            Some(json!({"token": "ainv_unknown"})),
        ),
        RouteId::SlackCommands => ("/slack/commands".into(), Some(json!({}))),
        RouteId::SlackEvents => ("/slack/events".into(), Some(json!({}))),
        RouteId::SlackInteractivity => ("/slack/interactivity".into(), Some(json!({}))),
        RouteId::SlackInstall => ("/slack/install".into(), None),
        RouteId::SlackOauthCallback => ("/slack/oauth/callback?code=c&state=s".into(), None),
        RouteId::SlackWorkspaces => ("/api/slack/workspaces".into(), None),
        RouteId::SlackChannels => ("/api/slack/workspaces/T1/channels".into(), None),
        RouteId::SetSlackChannels => (
            "/api/slack/workspaces/T1/channels".into(),
            Some(json!({"channels": ["C1"]})),
        ),
        RouteId::LinkSlack => ("/api/slack/link".into(), Some(json!({"token": "unknown"}))),
        RouteId::SlackIdentities => ("/api/slack/identities".into(), None),
        RouteId::UnlinkSlack => ("/api/slack/identities/T1/U1".into(), None),
        RouteId::ListWorkflows => ("/api/workflows".into(), None),
        RouteId::CreateWorkflow => (
            "/api/workflows".into(),
            Some(json!({"name": "m", "template": {"prompt": "{{"}})),
        ),
        RouteId::PreviewWorkflow => (
            "/api/workflows/preview".into(),
            Some(json!({"template": "hi"})),
        ),
        RouteId::GetWorkflow => (format!("/api/workflows/{UNKNOWN}"), None),
        RouteId::UpdateWorkflow => (
            format!("/api/workflows/{UNKNOWN}"),
            Some(json!({"name": "m", "template": {"prompt": "x"}})),
        ),
        RouteId::DeleteWorkflow => (format!("/api/workflows/{UNKNOWN}"), None),
        RouteId::ListTriggers => (format!("/api/workflows/{UNKNOWN}/triggers"), None),
        RouteId::CreateTrigger => (
            format!("/api/workflows/{UNKNOWN}/triggers"),
            Some(json!({"kind": "webhook", "scheme": "hmac-sha256"})),
        ),
        RouteId::DeleteTrigger => (format!("/api/workflows/{UNKNOWN}/triggers/{UNKNOWN}"), None),
        RouteId::RunWorkflow => (format!("/api/workflows/{UNKNOWN}/run"), Some(json!({}))),
        RouteId::ListExecutions => (format!("/api/workflows/{UNKNOWN}/executions"), None),
        RouteId::GetExecution => (format!("/api/executions/{UNKNOWN}"), None),
        RouteId::SchedulerTick => ("/api/admin/scheduler/tick".into(), Some(json!({}))),
        RouteId::GetWorkflowSettings => ("/api/admin/workflows/settings".into(), None),
        RouteId::PutWorkflowSettings => (
            "/api/admin/workflows/settings".into(),
            Some(json!({"min_interval_minutes": 15})),
        ),
        RouteId::WebhookDelivery => (format!("/hooks/{UNKNOWN}"), Some(json!({}))),
    }
}

async fn key(stack: &Stack, token: &str, scopes: Value) -> (String, String) {
    let body = json!({"name": "k", "scopes": scopes}).to_string();
    let (status, v) = stack
        .call_as(Some(token), Method::POST, "/api/keys", Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

/// A session of `owner`'s, shared with carl (collaborator) and vera (viewer).
async fn shared_session(stack: &Stack, owner: &str) -> String {
    let (_, v) = stack
        .call_as(
            Some(owner),
            Method::POST,
            "/api/sessions",
            Some("{}".into()),
        )
        .await;
    let session = v["id"]
        .as_str()
        .expect("owner created a session")
        .to_owned();
    for (who, role) in [("carl", "collaborator"), ("vera", "viewer")] {
        let body = json!({"login": who, "role": role}).to_string();
        let (s, v) = stack
            .call_as(
                Some(owner),
                Method::POST,
                &format!("/api/sessions/{session}/members"),
                Some(body),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    session
}

async fn websocket_status(stack: &Stack, path: &str, token: Option<&str>) -> u16 {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Error};
    let mut req = stack.ws_url(path).into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => 101,
        Err(Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{path}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_by_every_kind_of_caller() {
    let stack = Stack::start(StackOptions::default()).await;
    let admin = stack.dev_login("root").await; // the first person to sign in administers
    let owner = stack.dev_login("olivia").await;
    let collaborator = stack.dev_login("carl").await;
    let viewer = stack.dev_login("vera").await;
    stack.dev_login("stranger").await;
    let expired = stack.dev_login("eve").await;
    stack.d1_execute(&format!(
        "UPDATE auth_sessions SET expires_at = 1 WHERE token_hash = '{}'",
        hash_token(&expired)
    ));

    let session = shared_session(&stack, &owner).await;
    let (_, no_scope) = key(&stack, &owner, json!([KEY_SCOPE])).await;
    let (revoked_id, revoked) =
        key(&stack, &owner, json!(["sessions:read", "sessions:write"])).await;
    let (s, _) = stack
        .call_as(
            Some(&owner),
            Method::DELETE,
            &format!("/api/keys/{revoked_id}"),
            None,
        )
        .await;
    assert_eq!(s, 204);

    let callers: Vec<(Who, Option<&str>)> = vec![
        (Who::Anonymous, None),
        (Who::ExpiredSession, Some(&expired)),
        (Who::RevokedKey, Some(&revoked)),
        (Who::KeyWithoutScope, Some(&no_scope)),
        (Who::Viewer, Some(&viewer)),
        (Who::Collaborator, Some(&collaborator)),
        (Who::Owner, Some(&owner)),
        (Who::Admin, Some(&admin)),
    ];
    // Logging out and deleting the session change what follows: they go last.
    let mut routes: Vec<RouteId> = RouteId::ALL
        .iter()
        .copied()
        .filter(|r| !matches!(r, RouteId::Logout | RouteId::DeleteSession))
        .collect();
    routes.extend([RouteId::DeleteSession, RouteId::Logout]);
    let mut checked = 0;
    for route in routes {
        let spec = route.spec();
        for (who, token) in &callers {
            let (path, body) = request_for(route, &session);
            let websocket = matches!(route, RouteId::ClientSocket | RouteId::RunnerSocket);
            let (status, v) = if websocket {
                (websocket_status(&stack, &path, *token).await, Value::Null)
            } else {
                let method = Method::from_bytes(spec.method.as_bytes()).unwrap();
                stack
                    .call_as(*token, method, &path, body.map(|b| b.to_string()))
                    .await
            };
            match expected(spec.need, *who) {
                Some((want, code)) => {
                    assert_eq!(status, want, "{route:?} as {who:?}: {v}");
                    if !websocket {
                        assert_eq!(v["code"].as_str(), Some(code), "{route:?} as {who:?}: {v}");
                    }
                }
                // Past the worker, a sandbox path meets the gateway's own door: no panel cookie.
                None if matches!(route, RouteId::SandboxGet | RouteId::SandboxPost) => assert!(
                    status == 401 && v["message"].as_str().unwrap_or("").contains("panel token"),
                    "{route:?} as {who:?} should reach the gateway's door, got {status}: {v}"
                ),
                None => assert!(
                    !matches!(status, 401 | 403) && status < 500,
                    "{route:?} as {who:?} should pass authorization, got {status}: {v}"
                ),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, RouteId::ALL.len() * callers.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_by_session_role() {
    let stack = Stack::start(StackOptions::default()).await;
    stack.dev_login("root").await;
    let owner = stack.dev_login("olivia").await;
    let collaborator = stack.dev_login("carl").await;
    let viewer = stack.dev_login("vera").await;
    let session = shared_session(&stack, &owner).await;
    let (_, read_only) = key(&stack, &owner, json!(["sessions:read"])).await;
    let url = stack.ws_url(&format!("/api/sessions/{session}/ws"));
    let t = Duration::from_secs(10);

    // A viewer claiming, in headers of its own, the access the Worker hands the session object:
    // the object is called with a request the Worker builds, so none of them reaches it.
    let owner_access = json!({"role": "owner", "scopes": ["sessions:read", "sessions:write"],
        "login": "vera", "credential": ""});
    let forged_call = json!({"call": "client_socket", "after_seq": 0, "access": owner_access});
    let (forged_call, owner_access) = (forged_call.to_string(), owner_access.to_string());
    let forged = [
        ("x-agent-ops-session-call", forged_call.as_str()),
        ("x-agent-ops-access", owner_access.as_str()),
    ];
    for (name, token, headers, may_steer) in [
        ("viewer", viewer.as_str(), &[][..], false),
        (
            "viewer forging its access",
            viewer.as_str(),
            &forged[..],
            false,
        ),
        ("owner with a read-only key", read_only.as_str(), &[], false),
        ("collaborator", collaborator.as_str(), &[], true),
        ("owner", owner.as_str(), &[], true),
    ] {
        let mut ws = ClientSocket::connect_with(&url, token, headers)
            .await
            .unwrap_or_else(|e| panic!("{name} connects: {e}"));
        ws.send(&ClientFrame::Ping {}).await;
        ws.until_frame(t, |f| matches!(f, ToClientFrame::Pong {}))
            .await;
        let crid = format!("from-{}", name.replace(' ', "-"));
        ws.send(&ClientFrame::Prompt {
            text: "hi".into(),
            client_request_id: crid.clone(),
        })
        .await;
        let reply = ws
            .until_frame(t, |f| {
                matches!(
                    f,
                    ToClientFrame::Error(_) | ToClientFrame::PromptAccepted { .. }
                )
            })
            .await;
        match (may_steer, reply) {
            (
                true,
                ToClientFrame::PromptAccepted {
                    client_request_id, ..
                },
            ) => assert_eq!(client_request_id, crid),
            (false, ToClientFrame::Error(e)) => assert_eq!(e.code.as_str(), "forbidden", "{name}"),
            (_, other) => panic!("{name}: {other:?}"),
        }
        if !may_steer {
            ws.others.clear();
            ws.send(&ClientFrame::Abort {}).await;
            let ToClientFrame::Error(e) = ws
                .until_frame(t, |f| matches!(f, ToClientFrame::Error(_)))
                .await
            else {
                unreachable!()
            };
            assert_eq!(e.code.as_str(), "forbidden", "{name} cannot abort");
        }
    }
    let history = stack.history(&session).await;
    let queued: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.body {
            agent_ops_protocol::EventBody::PromptQueued {
                client_request_id, ..
            } => Some(client_request_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        queued,
        vec!["from-collaborator", "from-owner"],
        "only permitted prompts were queued"
    );
}

/// The document lists every route, and the production Worker serves nothing more: the
/// benchmarks' echo is in their build only, not even behind the admin's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_api_document_lists_every_route() {
    let stack = Stack::start(StackOptions::default()).await;
    let (status, doc) = stack
        .call_as(None, Method::GET, "/api/openapi.json", None)
        .await;
    assert_eq!(status, 200);
    for route in RouteId::ALL {
        let spec = route.spec();
        let op = &doc["paths"][spec.doc_path()][spec.method.to_ascii_lowercase()];
        assert_eq!(
            op["operationId"],
            format!("{route:?}"),
            "{} {}",
            spec.method,
            spec.path
        );
    }
    assert!(!doc.to_string().contains("bench"), "no benchmark route");
    let (status, v) = stack.call(Method::GET, "/api/bench/echo", None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
}
