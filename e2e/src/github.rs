//! A local stand-in for GitHub's OAuth and user endpoints that checks what GitHub checks: the
//! client id and secret, single-use codes issued for this redirect, and bearer tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Clone)]
pub struct GithubStandIn {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// code -> (redirect_uri, user id)
    codes: HashMap<String, (String, u64)>,
    tokens: HashMap<String, u64>,
    users: HashMap<u64, String>,
    /// Who approves the next authorization.
    next_user: u64,
}

impl GithubStandIn {
    pub async fn spawn() -> GithubStandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut inner = Inner {
            next_user: 1001,
            ..Default::default()
        };
        inner.users.insert(1001, "octocat".into());
        let me = GithubStandIn {
            base,
            client_id: format!("Iv1.{}", crate::random_hex(8)),
            client_secret: crate::random_hex(20),
            inner: Arc::new(Mutex::new(inner)),
        };
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(user))
            .with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        me
    }

    /// The GitHub user who approves the next sign-in.
    pub fn approve_as(&self, id: u64, login: &str) {
        let mut inner = self.inner.lock().expect("lock");
        inner.users.insert(id, login.to_owned());
        inner.next_user = id;
    }
}

async fn authorize(
    State(gh): State<GithubStandIn>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("client_id") != Some(&gh.client_id) {
        return (StatusCode::NOT_FOUND, "unknown client").into_response();
    }
    let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (
            StatusCode::BAD_REQUEST,
            "redirect_uri and state are required",
        )
            .into_response();
    };
    let code = crate::random_hex(10);
    let mut inner = gh.inner.lock().expect("lock");
    let user = inner.next_user;
    inner.codes.insert(code.clone(), (redirect.clone(), user));
    let sep = if redirect.contains('?') { '&' } else { '?' };
    Redirect::to(&format!(
        "{redirect}{sep}code={code}&state={}",
        urlencode(state)
    ))
    .into_response()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn access_token(State(gh): State<GithubStandIn>, body: String) -> Json<Value> {
    // GitHub answers 200 with an `error` field when the exchange is refused.
    let req: Value = serde_json::from_str(&body).unwrap_or_default();
    if req["client_id"] != gh.client_id.as_str()
        || req["client_secret"] != gh.client_secret.as_str()
    {
        return Json(json!({"error": "incorrect_client_credentials"}));
    }
    let mut inner = gh.inner.lock().expect("lock");
    let code = req["code"].as_str().unwrap_or_default();
    match inner.codes.remove(code) {
        Some((redirect, user)) if req["redirect_uri"] == redirect.as_str() => {
            let token = format!("gho_{}", crate::random_hex(16));
            inner.tokens.insert(token.clone(), user);
            Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user"}))
        }
        _ => Json(json!({"error": "bad_verification_code"})),
    }
}

async fn user(State(gh): State<GithubStandIn>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or_default();
    let inner = gh.inner.lock().expect("lock");
    match inner
        .tokens
        .get(token)
        .and_then(|id| inner.users.get(id).map(|l| (*id, l.clone())))
    {
        Some((id, login)) => Json(json!({"id": id, "login": login, "name": login})).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response(),
    }
}
