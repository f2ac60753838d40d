//! Calls to the Worker's REST API, on the same origin (the sign-in cookie rides along). Every
//! failure becomes an `ApiError` with a stable code, so the views show code and sentence alike.

use std::any::TypeId;

use agent_ops_protocol::api::NoBody;
use agent_ops_protocol::routes::Endpoint;
use agent_ops_protocol::{ApiError, ErrorCode};
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;

pub type ApiResult<T> = Result<T, ApiError>;

fn network(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::Internal,
        format!("the server could not be reached ({e})"),
    )
}

async fn read<T: DeserializeOwned>(resp: Response) -> ApiResult<T> {
    if resp.ok() {
        // A 204 has no body: it reads as JSON `null`.
        let text = resp.text().await.map_err(network)?;
        let text = if text.is_empty() { "null" } else { &text };
        return serde_json::from_str(text).map_err(network);
    }
    let status = resp.status();
    Err(resp.json::<ApiError>().await.unwrap_or_else(|_| {
        ApiError::new(
            ErrorCode::Internal,
            format!("the server answered {status} without an explanation"),
        )
    }))
}

async fn send<T: DeserializeOwned>(req: RequestBuilder, body: Option<String>) -> ApiResult<T> {
    let resp = match body {
        Some(b) => {
            req.header("content-type", "application/json")
                .body(b)
                .map_err(network)?
                .send()
                .await
        }
        None => req.send().await,
    }
    .map_err(network)?;
    read(resp).await
}

/// Calls route `E` with its path parameters (in order) and its typed body, and reads its typed
/// answer: the route table names the method, the path and both types.
pub async fn call<E: Endpoint>(params: &[&str], body: &E::Req) -> ApiResult<E::Resp> {
    let spec = E::ROUTE.spec();
    let path = spec.path_with(params);
    let req = match spec.method {
        "POST" => Request::post(&path),
        "PUT" => Request::put(&path),
        "DELETE" => Request::delete(&path),
        _ => Request::get(&path),
    };
    let body = if TypeId::of::<E::Req>() == TypeId::of::<NoBody>() {
        None
    } else {
        Some(serde_json::to_string(body).map_err(network)?)
    };
    send(req, body).await
}

/// Calls route `E`, which takes no body.
pub async fn fetch<E: Endpoint<Req = NoBody>>(params: &[&str]) -> ApiResult<E::Resp> {
    call::<E>(params, &NoBody {}).await
}

/// A fresh id for an idempotent request: retrying with it never runs the request twice.
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    // The browser's crypto.getRandomValues, through getrandom's `js` backend.
    getrandom::getrandom(&mut b).expect("the browser provides randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
