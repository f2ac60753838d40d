//! The Worker's side of its calls to a session's object (see `agent_ops_protocol::session_calls`).

use agent_ops_protocol::session_calls::{Call, SessionCall, CALL_HEADER};
use worker::{Env, Headers, Method, Request, RequestInit, Response, Stub};

use crate::edge::http::{into_api_error, Handled};

fn stub(env: &Env, id: &str) -> worker::Result<Stub> {
    env.durable_object("SESSIONS")?.id_from_name(id)?.get_stub()
}

/// Calls session `id`'s object; its refusal is passed on as the caller's.
pub async fn call<C: SessionCall>(env: &Env, id: &str, call: C) -> Handled<C::Reply> {
    let body = serde_json::to_string(&call.into())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://session/", &init)?;
    let mut resp = stub(env, id)?.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(into_api_error(resp).await.into());
    }
    Ok(resp.json().await?)
}

/// Opens a socket on session `id`'s object: the upgrade it answers, or its refusal. The request
/// is the Worker's own, so nothing of the caller's (a header it set) reaches the object.
pub async fn open_socket(env: &Env, id: &str, call: impl Into<Call>) -> Handled<Response> {
    let headers = Headers::new();
    headers.set("upgrade", "websocket")?;
    headers.set(CALL_HEADER, &serde_json::to_string(&call.into())?)?;
    let mut init = RequestInit::new();
    init.with_headers(headers);
    let req = Request::new_with_init("https://session/socket", &init)?;
    let resp = stub(env, id)?.fetch_with_request(req).await?;
    if resp.status_code() != 101 {
        return Err(into_api_error(resp).await.into());
    }
    Ok(resp)
}
