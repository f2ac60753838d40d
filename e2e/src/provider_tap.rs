//! Stands between the Worker and the sandbox provider and passes every request on unchanged (so
//! its signature still holds), noting the runner token the Worker hands each new sandbox. The
//! runner keeps its token where no process can read it, so a test that takes a runner's place
//! learns it here, on the wire, as the provider does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agent_ops_protocol::api::CreateSandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

type Tokens = Arc<Mutex<HashMap<String, String>>>;

pub struct ProviderTap {
    pub port: u16,
    tokens: Tokens,
}

#[derive(Clone)]
struct Tap {
    provider: String,
    tokens: Tokens,
    http: reqwest::Client,
}

impl ProviderTap {
    pub async fn start(provider_port: u16) -> ProviderTap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the provider tap");
        let port = listener.local_addr().expect("tap addr").port();
        let tokens = Tokens::default();
        let tap = Tap {
            provider: format!("http://127.0.0.1:{provider_port}"),
            tokens: tokens.clone(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(pass_on).with_state(tap);
        tokio::spawn(async move { axum::serve(listener, app).await });
        ProviderTap { port, tokens }
    }

    /// The runner token the Worker gave the sandbox of session `id`.
    pub fn runner_token(&self, id: &str) -> Option<String> {
        self.tokens.lock().expect("tap lock").get(id).cloned()
    }
}

async fn pass_on(
    State(tap): State<Tap>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST && uri.path() == "/v1/sandboxes" {
        if let Ok(create) = serde_json::from_slice::<CreateSandbox>(&body) {
            tap.tokens
                .lock()
                .expect("tap lock")
                .insert(create.session_id, create.runner_token);
        }
    }
    let mut headers = headers;
    headers.remove(axum::http::header::HOST);
    let sent = tap
        .http
        .request(method, format!("{}{uri}", tap.provider))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status();
            let mut headers = resp.headers().clone();
            // The body is passed on whole: its framing is this hop's to set.
            for framing in ["transfer-encoding", "content-length", "connection"] {
                headers.remove(framing);
            }
            let body = resp.bytes().await.unwrap_or_default();
            (status, headers, body).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
