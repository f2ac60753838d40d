//! The sandbox provider client. Every request is signed (HMAC over method, path, timestamp and
//! body) so the provider can refuse anyone else.

use agent_ops_protocol::api::{CreateSandbox, SandboxInfo};
use agent_ops_protocol::signing::{sign_request, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

use crate::edge::http::{now_ms, random_hex};

struct Provider {
    base: String,
    secret: String,
}

fn provider(env: &Env) -> Result<Provider, ApiError> {
    let base = env
        .var("SANDBOX_PROVIDER_URL")
        .map(|v| v.to_string())
        .map_err(|_| {
            ApiError::new(
                ErrorCode::ProviderError,
                "SANDBOX_PROVIDER_URL is not configured",
            )
        })?;
    let secret = env
        .secret("PROVIDER_SECRET")
        .map(|v| v.to_string())
        .map_err(|_| {
            ApiError::new(
                ErrorCode::ProviderError,
                "PROVIDER_SECRET is not configured",
            )
        })?;
    Ok(Provider {
        base: base.trim_end_matches('/').to_owned(),
        secret,
    })
}

async fn send(env: &Env, method: Method, path: &str, body: Vec<u8>) -> Result<String, ApiError> {
    let p = provider(env)?;
    let ts = now_ms() / 1000;
    // Fresh for every request: the provider accepts each once.
    let nonce = random_hex(16);
    let sig = sign_request(
        p.secret.as_bytes(),
        method.as_ref(),
        path,
        ts,
        &nonce,
        &body,
    );
    let headers = Headers::new();
    let internal = |_| ApiError::new(ErrorCode::Internal, "could not build provider request");
    headers
        .set(TIMESTAMP_HEADER, &ts.to_string())
        .map_err(internal)?;
    headers.set(SIGNATURE_HEADER, &sig).map_err(internal)?;
    headers.set(NONCE_HEADER, &nonce).map_err(internal)?;
    headers
        .set("content-type", "application/json")
        .map_err(internal)?;
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if !body.is_empty() {
        init.with_body(Some(js_sys_bytes(&body)));
    }
    let req = Request::new_with_init(&format!("{}{path}", p.base), &init).map_err(internal)?;
    let mut resp = Fetch::Request(req).send().await.map_err(|e| {
        ApiError::new(
            ErrorCode::ProviderError,
            format!("sandbox provider unreachable: {e}"),
        )
    })?;
    if resp.status_code() >= 300 {
        let text = resp.text().await.unwrap_or_default();
        // The provider's own check of the user's repository (on its real path): the user's to
        // hear as it is.
        if let Ok(refused) = serde_json::from_str::<ApiError>(&text) {
            if refused.code == ErrorCode::RepoNotAllowed {
                return Err(refused);
            }
        }
        return Err(ApiError::new(
            ErrorCode::ProviderError,
            format!("sandbox provider answered {}: {text}", resp.status_code()),
        ));
    }
    Ok(resp.text().await.unwrap_or_default())
}

fn js_sys_bytes(body: &[u8]) -> wasm_bindgen::JsValue {
    // A string body keeps the exact bytes we signed (the body is JSON, always UTF-8).
    wasm_bindgen::JsValue::from_str(std::str::from_utf8(body).unwrap_or_default())
}

pub async fn create(env: &Env, req: &CreateSandbox) -> Result<SandboxInfo, ApiError> {
    let body =
        serde_json::to_vec(req).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let answer = send(env, Method::Post, "/v1/sandboxes", body).await?;
    serde_json::from_str(&answer).map_err(|e| {
        ApiError::new(
            ErrorCode::ProviderError,
            format!("the sandbox provider's answer is not a sandbox: {e}"),
        )
    })
}

pub async fn destroy(env: &Env, session_id: &str) -> Result<(), ApiError> {
    send(
        env,
        Method::Delete,
        &format!("/v1/sandboxes/{session_id}"),
        Vec::new(),
    )
    .await
    .map(drop)
}
