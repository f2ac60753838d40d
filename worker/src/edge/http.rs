//! How handlers answer and fail. A handler returns `Handled`: its typed answer, or a `Failure`
//! that renders as `{code, message}`; handlers never build an error response themselves.

use agent_ops_protocol::routes::Endpoint;
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::{de::DeserializeOwned, Serialize};
use worker::{Request, Response};

/// Why a request was not served: an answer for the caller, or a failure of the runtime itself
/// (D1, a binding), which is logged and answered as `internal` without its details.
#[derive(Debug)]
pub enum Failure {
    Api(ApiError),
    /// A rate limit refused the request; `Retry-After` says when to come back.
    Limited {
        retry_after_secs: u64,
    },
    Runtime(worker::Error),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<worker::Error> for Failure {
    fn from(e: worker::Error) -> Self {
        Self::Runtime(e)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Self::Runtime(e.into())
    }
}

pub type Handled<T = Response> = std::result::Result<T, Failure>;

impl From<worker::url::ParseError> for Failure {
    fn from(e: worker::url::ParseError) -> Self {
        Self::Runtime(worker::Error::RustError(format!("bad URL: {e}")))
    }
}

/// A refusal, as a handler's `Err`.
pub fn refuse<T>(code: ErrorCode, message: impl Into<String>) -> Handled<T> {
    Err(ApiError::new(code, message).into())
}

/// The error response for `failure`.
pub fn render(failure: Failure) -> worker::Result<Response> {
    match failure {
        Failure::Api(e) => error(&e),
        Failure::Limited { retry_after_secs } => {
            let refused = error(&ApiError::new(
                ErrorCode::RateLimited,
                format!("too many requests; try again in {retry_after_secs} s"),
            ))?;
            let headers = refused.headers().clone();
            headers.set("retry-after", &retry_after_secs.to_string())?;
            Ok(refused.with_headers(headers))
        }
        Failure::Runtime(e) => {
            worker::console_error!("internal error: {e}");
            error(&ApiError::new(
                ErrorCode::Internal,
                "the server failed to complete the request; it is safe to retry",
            ))
        }
    }
}

pub fn json<T: Serialize>(status: u16, body: &T) -> worker::Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

pub fn error(err: &ApiError) -> worker::Result<Response> {
    json(err.code.http_status(), err)
}

/// Route `E`'s answer, with its usual success status.
pub fn answer<E: Endpoint>(body: &E::Resp) -> Handled {
    answer_with::<E>(E::ROUTE.spec().statuses[0], body)
}

/// Route `E`'s answer with one of its other success statuses.
pub fn answer_with<E: Endpoint>(status: u16, body: &E::Resp) -> Handled {
    debug_assert!(E::ROUTE.spec().statuses.contains(&status));
    Ok(json(status, body)?)
}

/// A `302` to `location`, setting `cookies`.
pub fn redirect(location: &str, cookies: &[String]) -> Handled {
    let headers = worker::Headers::new();
    headers.set("location", location)?;
    for c in cookies {
        headers.append("set-cookie", c)?;
    }
    Ok(Response::empty()?.with_status(302).with_headers(headers))
}

/// A 204 answer.
pub fn no_content() -> Handled {
    Ok(Response::empty()?.with_status(204))
}

/// Route `E`'s request body, read with a size cap.
pub async fn body<E: Endpoint>(req: &mut Request, max_bytes: usize) -> Handled<E::Req> {
    Ok(read_json(req, max_bytes).await?)
}

/// How long work that follows an answer waits before it starts. The answers that have such work
/// are the ones with a deadline (Slack's 3 s for a slash command, a webhook sender's timeout),
/// while what follows has none (a `response_url` is good for 30 minutes): the answer goes first.
/// A zero timer is not enough: the work's first steps (a D1 query, a fetch) then share the cores
/// with the answer while it is still on its way out, and `make bench` measured the
/// acknowledgement of `list` 0.3-0.4 ms slower than that of `help`, which has no work after it.
/// After 5 ms the two are alike (alternating builds), and the answer that follows is 5 ms later.
const AFTER_ANSWER_DELAY: std::time::Duration = std::time::Duration::from_millis(5);

/// Work that follows a request's answer: it starts `AFTER_ANSWER_DELAY` after the answer is
/// handed to workerd, so that none of it delays the answer. It runs on to its end as
/// `Context::wait_until` work does.
pub fn after_answer(ctx: &worker::Context, work: impl std::future::Future<Output = ()> + 'static) {
    ctx.wait_until(async move {
        worker::Delay::from(AFTER_ANSWER_DELAY).await;
        work.await
    });
}

pub fn now_ms() -> u64 {
    // `Date.now()`: one call out of wasm, where `worker::Date` makes a `Date` object to read.
    js_sys::Date::now() as u64
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

/// An error response, for code that answers with a `Response` directly (the session object,
/// the model proxy).
pub fn fail(code: ErrorCode, message: impl Into<String>) -> worker::Result<Response> {
    error(&ApiError::new(code, message))
}
