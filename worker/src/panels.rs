//! A session's panels (terminal, VS Code, VNC): short-lived panel tokens for the browser, and the
//! proxy from the worker's own origin to the sandbox's gateway, so nobody handles a sandbox
//! address and the sandbox never sees the user's credentials.

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::api::{PanelToken, PanelTokenRequest};
use agent_ops_protocol::cookies;
use agent_ops_protocol::panel::{self, PanelGrant};
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Fetch, Method, Request, RequestInit, RequestRedirect, Response, Result, Url};

use crate::auth::{Principal, COOKIE as SESSION_COOKIE};
use crate::http::{error, fail, json, random_id, read_json};
use crate::sessions_api;

/// Panel tokens live two minutes: long enough to load an iframe, useless once leaked.
const TOKEN_TTL_SECS: u64 = 120;

pub fn session_key(env: &Env, session_id: &str) -> std::result::Result<Vec<u8>, ApiError> {
    let master = env
        .secret("AUTH_SECRET")
        .map(|s| s.to_string())
        .map_err(|_| ApiError::new(ErrorCode::Internal, "AUTH_SECRET is not configured"))?;
    Ok(panel::session_key(master.as_bytes(), session_id))
}

pub async fn token(
    mut req: Request,
    env: &Env,
    user: &Principal,
    role: SessionRole,
    id: &str,
) -> Result<Response> {
    let body: PanelTokenRequest = match read_json(&mut req, 256).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let entry = match body.entry(id) {
        Ok(entry) => entry,
        Err(why) => return fail(ErrorCode::InvalidBody, why),
    };
    if role == SessionRole::Viewer && !body.panel.viewers_may_open() {
        return fail(
            ErrorCode::Forbidden,
            "viewers watch the terminal; the desktop, the editor and app previews need the collaborator role",
        );
    }
    let Some(info) = sessions_api::find(env, id).await? else {
        return fail(ErrorCode::NotFound, format!("session {id} not found"));
    };
    if info.status.is_terminal() {
        return fail(
            ErrorCode::SessionTerminated,
            "the session has been terminated",
        );
    }
    match info.panels.iter().find(|p| p.kind == body.panel) {
        Some(p) if p.available => {}
        Some(p) => {
            return fail(
                ErrorCode::Conflict,
                p.reason
                    .clone()
                    .unwrap_or_else(|| "this panel is not available".into()),
            )
        }
        None => {
            return fail(
                ErrorCode::Conflict,
                "this session's sandbox offers no panels",
            )
        }
    }
    let key = match session_key(env, id) {
        Ok(k) => k,
        Err(e) => return error(&e),
    };
    let grant = PanelGrant {
        session: id.to_owned(),
        login: user.login.clone(),
        role,
    };
    let token = match panel::issue(&key, &user.user_id, grant, &random_id(), TOKEN_TTL_SECS) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                ErrorCode::Internal,
                format!("could not sign a panel token: {e}"),
            )
        }
    };
    let mut trade = Url::parse(&format!("http://gateway/sandbox/{id}/auth"))?;
    trade
        .query_pairs_mut()
        .append_pair("token", &token)
        .append_pair("next", &entry);
    let url = format!("{}?{}", trade.path(), trade.query().unwrap_or_default());
    json(
        201,
        &PanelToken {
            token,
            url,
            expires_in_secs: TOKEN_TTL_SECS,
        },
    )
}

/// Hands a request (WebSocket upgrades included) to the session's gateway at `gateway_url`,
/// path unchanged, without the user's own credentials.
pub async fn proxy(req: Request, gateway_url: Option<String>) -> Result<Response> {
    let Some(base) = gateway_url else {
        return fail(ErrorCode::NotFound, "this session's sandbox has no gateway");
    };
    let url = req.url()?;
    let target = format!(
        "{}{}{}",
        base.trim_end_matches('/'),
        url.path(),
        url.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    // A copy of the headers (WebSocket upgrade ones included), minus the user's credentials.
    let headers = req.headers().clone();
    headers.delete("authorization")?;
    // The host the browser sees, which the fetch below replaces with the gateway's: services that
    // refuse cross-origin WebSockets (code-server) compare the browser's Origin with it.
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    };
    headers.set("x-forwarded-host", &host)?;
    headers.set("x-forwarded-proto", url.scheme())?;
    if let Some(cookies) = headers.get("cookie")? {
        match cookies::without(&cookies, SESSION_COOKIE) {
            Some(kept) => headers.set("cookie", &kept)?,
            None => headers.delete("cookie")?,
        }
    }
    let mut init = RequestInit::new();
    // The gateway's redirects (after a token exchange) are for the browser to follow, with the
    // cookie it was just given.
    init.with_method(req.method())
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if !matches!(req.method(), Method::Get | Method::Head) {
        init.with_body(req.inner().body().map(Into::into));
    }
    let forwarded = Request::new_with_init(&target, &init)?;
    match Fetch::Request(forwarded).send().await {
        Ok(resp) => Ok(resp),
        Err(e) => fail(
            ErrorCode::ProviderError,
            format!("the sandbox's gateway is not answering: {e}"),
        ),
    }
}
