//! A session's event log, read a page at a time or streamed over a socket, and the runner's
//! link. Each is served by the session's object; the socket calls carry what the edge decided
//! (the viewer's access, the runner's token), never the caller's own headers.

use agent_ops_protocol::access::{SessionAccess, SessionRole};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::session_calls::{ClientSocket, Events, RunnerSocket};
use agent_ops_protocol::{ApiError, MAX_PAGE_EVENTS};
use worker::{Env, Request};

use crate::api::sessions::is_session_id;
use crate::db::sessions::SessionRow;
use crate::edge::auth::{bearer_token, Principal};
use crate::edge::http::{answer, Handled};
use crate::session::{call, open_socket};

/// The subprotocol a browser offers beside its `bearer.<token>` one: the handshake must name
/// one of its offers back, and never the token.
const SUBPROTOCOL: &str = "agent-ops";

/// `GET /api/sessions/{id}/events`: a page of the log after `after_seq`.
pub async fn page(req: &Request, env: &Env, session: &SessionRow) -> Handled {
    let events = Events {
        after_seq: query_u64(req, "after_seq").unwrap_or(0),
        limit: query_u64(req, "limit").map_or(MAX_PAGE_EVENTS, |l| l as usize),
    };
    let page = call(env, &session.id, events).await?;
    answer::<endpoint::Events>(&page)
}

/// A viewer's socket, with their access to the session, which the object checks each of its
/// messages against.
pub async fn client(
    req: &Request,
    env: &Env,
    user: &Principal,
    role: SessionRole,
    session: &SessionRow,
) -> Handled {
    let socket = ClientSocket {
        after_seq: query_u64(req, "after_seq").unwrap_or(0),
        access: SessionAccess {
            role,
            scopes: user.caller.scopes.clone(),
            login: user.login.clone(),
            credential: user.credential.clone(),
        },
    };
    let resp = open_socket(env, &session.id, socket).await?;
    let offered = req
        .headers()
        .get("sec-websocket-protocol")?
        .unwrap_or_default();
    if offered.split(',').any(|p| p.trim() == SUBPROTOCOL) {
        let headers = resp.headers().clone();
        headers.set("sec-websocket-protocol", SUBPROTOCOL)?;
        return Ok(resp.with_headers(headers));
    }
    Ok(resp)
}

/// The runner's link: it authenticates to the session's object itself, with its per-session
/// token.
pub async fn runner(req: &Request, env: &Env, id: &str) -> Handled {
    if !is_session_id(id) {
        return Err(ApiError::session_not_found(id).into());
    }
    let token = bearer_token(req).unwrap_or_default();
    open_socket(env, id, RunnerSocket { token }).await
}

/// A number in the query, when it is one: the log's cursors are read leniently, as they were
/// always (a bad `limit` is the whole page, a bad `after_seq` the start).
fn query_u64(req: &Request, key: &str) -> Option<u64> {
    req.url()
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
}
