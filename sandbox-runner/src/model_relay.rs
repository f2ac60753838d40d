//! The agent's way to its model: a listener on the sandbox's loopback that passes each call on
//! to the session's Worker, authenticated with the runner's token. The Worker adds the model's
//! key, so no process in the sandbox ever holds it (see the Worker's `model_proxy`).
//!
//! The relay asks for a key of its own, made at each start and handed to the agent as its
//! "API key": it is worth nothing outside the sandbox, and it keeps the relay closed to app
//! previews, which reach any loopback port through the gateway.

use std::sync::Arc;
use std::time::Duration;

use agent_ops_protocol::signing::{hash_token, token_matches};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the agent finds the relay, and the key it must send.
pub struct ModelRelay {
    pub base_url: String,
    pub port: u16,
    pub key: String,
}

struct Relay {
    /// The session's model route on the Worker, e.g. `http://host/api/sessions/<id>/model`.
    upstream: String,
    runner_token: String,
    key_hash: String,
    http: reqwest::Client,
}

/// The Worker's model route for this session, from the runner's link URL.
pub fn upstream(control_url: &str) -> Option<String> {
    let base = control_url.strip_suffix("/runner")?;
    let base = if let Some(rest) = base.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        format!("http://{}", base.strip_prefix("ws://")?)
    };
    Some(format!("{base}/model"))
}

/// The key a call carries, in whichever header its SDK puts it.
fn sent_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

/// Headers that belong to one hop, or carry credentials: never passed on.
fn hop_only(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "authorization"
            | "x-api-key"
            | "connection"
            | "content-length"
            | "transfer-encoding"
            | "keep-alive"
            | "upgrade"
            | "te"
            | "trailer"
    )
}

pub async fn start(
    control_url: &str,
    runner_token: String,
    tls: &rustls::ClientConfig,
) -> Result<ModelRelay, String> {
    let upstream = upstream(control_url)
        .ok_or_else(|| format!("the link URL {control_url} names no session's runner route"))?;
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).map_err(|e| format!("model relay key: {e}"))?;
    let key = hex::encode(raw);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("model relay: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("model relay: {e}"))?;
    let relay = Arc::new(Relay {
        upstream,
        runner_token,
        key_hash: hash_token(&key),
        // A model's answer may stream for minutes: no overall timeout.
        http: reqwest::Client::builder()
            .use_preconfigured_tls(tls.clone())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("model relay: {e}"))?,
    });
    let app = axum::Router::new().fallback(pass_on).with_state(relay);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(ModelRelay {
        base_url: format!("http://{addr}"),
        port: addr.port(),
        key,
    })
}

async fn pass_on(State(relay): State<Arc<Relay>>, req: Request) -> Response {
    if !sent_key(req.headers()).is_some_and(|k| token_matches(k, &relay.key_hash)) {
        return (StatusCode::UNAUTHORIZED, "the model relay needs its key").into_response();
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut call = relay
        .http
        .request(parts.method, format!("{}{path}", relay.upstream))
        .bearer_auth(&relay.runner_token)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    for (name, value) in parts.headers.iter().filter(|(n, _)| !hop_only(n)) {
        call = call.header(name, value);
    }
    match call.send().await {
        Ok(resp) => {
            let mut out = Response::builder().status(resp.status());
            for (name, value) in resp.headers().iter().filter(|(n, _)| !hop_only(n)) {
                out = out.header(name, value);
            }
            out.body(Body::from_stream(resp.bytes_stream()))
                .unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response())
        }
        Err(e) => {
            tracing::warn!("model call failed: {e}");
            (StatusCode::BAD_GATEWAY, format!("the model relay: {e}")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_route_is_beside_the_runner_link() {
        assert_eq!(
            upstream("ws://127.0.0.1:8787/api/sessions/ab/runner").as_deref(),
            Some("http://127.0.0.1:8787/api/sessions/ab/model")
        );
        assert_eq!(
            upstream("wss://ops.example.com/api/sessions/ab/runner").as_deref(),
            Some("https://ops.example.com/api/sessions/ab/model")
        );
        assert_eq!(upstream("ws://h/api/sessions/ab/other"), None);
        assert_eq!(upstream("ftp://h/api/sessions/ab/runner"), None);
    }

    #[test]
    fn a_call_carries_its_key_as_its_sdk_sends_it() {
        let mut openai = HeaderMap::new();
        openai.insert(header::AUTHORIZATION, "Bearer k1".parse().unwrap());
        assert_eq!(sent_key(&openai), Some("k1"));
        let mut anthropic = HeaderMap::new();
        anthropic.insert("x-api-key", "k2".parse().unwrap());
        assert_eq!(sent_key(&anthropic), Some("k2"));
        assert_eq!(sent_key(&HeaderMap::new()), None);
    }

    #[test]
    fn credentials_stay_on_their_hop() {
        for name in ["authorization", "x-api-key", "host", "content-length"] {
            assert!(hop_only(&HeaderName::from_static(name)), "{name}");
        }
        assert!(!hop_only(&header::CONTENT_TYPE));
    }
}
