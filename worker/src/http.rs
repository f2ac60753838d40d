//! Small HTTP helpers shared by the routes and the Durable Object.

use agent_ops_protocol::{ApiError, ErrorCode};
use serde::{de::DeserializeOwned, Serialize};
use worker::{Date, Request, Response, Result};

pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

pub fn error(err: &ApiError) -> Result<Response> {
    json(err.code.http_status(), err)
}

pub fn fail(code: ErrorCode, message: impl Into<String>) -> Result<Response> {
    error(&ApiError::new(code, message))
}

pub fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// 32 hex characters of randomness: ids that cannot be guessed or enumerated.
pub fn random_id() -> String {
    random_hex(16)
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the runtime provides crypto.getRandomValues");
    hex::encode(buf)
}

/// Reads a JSON body with a size cap, mapping every failure to a stable error.
pub async fn read_json<T: DeserializeOwned>(
    req: &mut Request,
    max_bytes: usize,
) -> std::result::Result<T, ApiError> {
    let bytes = req
        .bytes()
        .await
        .map_err(|_| ApiError::new(ErrorCode::InvalidBody, "request body could not be read"))?;
    if bytes.len() > max_bytes {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "body of {} bytes exceeds the {max_bytes}-byte limit",
                bytes.len()
            ),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("invalid JSON body: {e}")))
}

/// Reads a response produced by `error()` back into an `ApiError`, or wraps an unexpected one.
pub async fn into_api_error(mut resp: Response) -> ApiError {
    let status = resp.status_code();
    match resp.json::<ApiError>().await {
        Ok(err) => err,
        Err(_) => ApiError::new(ErrorCode::Internal, format!("unexpected status {status}")),
    }
}

/// Whether a conditional write changed any row: how the single-use and revocation checks tell a
/// claim that won from one that found nothing to claim.
pub fn changed_rows(result: &worker::D1Result) -> Result<bool> {
    Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
}
