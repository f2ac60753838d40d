//! The proxy from a session's own sandbox origin to its sandbox's gateway (terminal, VS Code,
//! VNC, previews), so nobody handles a sandbox address, the sandbox never sees the user's
//! credentials, and nothing a sandbox serves runs on the app's origin.

use agent_ops_protocol::cookies;
use agent_ops_protocol::ErrorCode;
use worker::{Env, Fetch, Method, Request, RequestInit, RequestRedirect, Response, Result};

use crate::db::{sessions, Db};
use crate::edge::http::{error, fail};

/// Hands a request on the session's own sandbox origin (WebSocket upgrades included) to its
/// gateway, path unchanged. The browser sends no credential of the app's here (the login cookie
/// is the app origin's alone); the gateway admits by its panel token or cookie.
/// `own` is that origin.
pub async fn proxy(req: Request, env: &Env, id: &str, own: &str) -> Result<Response> {
    let headers = req.headers().clone();
    // A page of another session (or any other site) may send its requests here with this
    // session's cookie attached: what could change anything must come from this origin.
    let upgrade = headers
        .get("upgrade")?
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let origin = headers.get("origin")?;
    // Sessions' origins are siblings (one site), so another session's page sends its requests
    // here with this session's cookie: only the app's framing of a panel (a navigation) comes
    // from elsewhere, and anything that could change something must come from this origin.
    let foreign = headers
        .get("sec-fetch-site")?
        .is_some_and(|s| s == "same-site" || s == "cross-site");
    let navigation = headers.get("sec-fetch-mode")?.as_deref() == Some("navigate");
    let changes = upgrade || !matches!(req.method(), Method::Get | Method::Head);
    if (foreign && !navigation) || (changes && origin.as_deref().is_some_and(|o| o != own)) {
        return fail(
            ErrorCode::Forbidden,
            "cross-origin request refused: a sandbox answers its own pages, and the app's frames",
        );
    }
    let session = sessions::by_id(&Db::of(env)?, id).await?;
    let Some(base) = session
        .filter(|s| !s.status.is_terminal())
        .and_then(|s| s.gateway_url)
    else {
        return fail(ErrorCode::NotFound, "this session's sandbox has no gateway");
    };
    let url = req.url()?;
    let target = format!(
        "{}{}{}",
        base.trim_end_matches('/'),
        url.path(),
        url.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    headers.delete("authorization")?;
    // A token offered as a WebSocket subprotocol is the app's credential, not the sandbox's.
    if let Some(protocols) = headers.get("sec-websocket-protocol")? {
        let kept: Vec<&str> = protocols
            .split(',')
            .map(str::trim)
            .filter(|p| !p.starts_with("bearer.") && !p.is_empty())
            .collect();
        if kept.is_empty() {
            headers.delete("sec-websocket-protocol")?;
        } else {
            headers.set("sec-websocket-protocol", &kept.join(", "))?;
        }
    }
    // The host the browser sees, which the fetch below replaces with the gateway's: services that
    // refuse cross-origin WebSockets (code-server) compare the browser's Origin with it.
    let host = own.split_once("://").map_or("", |(_, h)| h).to_owned();
    headers.set("x-forwarded-host", &host)?;
    headers.set("x-forwarded-proto", url.scheme())?;
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
    let resp = match Fetch::Request(forwarded).send().await {
        Ok(resp) => resp,
        Err(e) => {
            return fail(
                ErrorCode::ProviderError,
                format!("the sandbox's gateway is not answering: {e}"),
            )
        }
    };
    if resp.status_code() == 101 {
        return Ok(resp);
    }
    let app = match crate::edge::origins::app(env) {
        Ok(app) => app,
        Err(e) => return error(&e),
    };
    confine(resp, &app)
}

/// What a sandbox's response may do in the browser: be framed by the app alone, and set cookies
/// for its own origin only (a `Domain` would reach every session's origin under it).
fn confine(resp: Response, app_origin: &str) -> Result<Response> {
    let headers = resp.headers().clone();
    headers.set(
        "content-security-policy",
        &agent_ops_protocol::origins::frame_ancestors(app_origin),
    )?;
    let set: Vec<String> = resp
        .headers()
        .entries()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v)
        .collect();
    headers.delete("set-cookie")?;
    for cookie in set {
        headers.append("set-cookie", &cookies::host_only(&cookie))?;
    }
    Ok(resp.with_headers(headers))
}
