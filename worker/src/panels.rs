//! A session's panels (terminal, VS Code, VNC, previews): short-lived panel tokens for the
//! browser, and the proxy from the session's own sandbox origin to its gateway, so nobody handles
//! a sandbox address, the sandbox never sees the user's credentials, and nothing a sandbox
//! serves runs on the app's origin.

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::api::{PanelToken, PanelTokenRequest};
use agent_ops_protocol::cookies;
use agent_ops_protocol::panel::{self, PanelGrant};
use agent_ops_protocol::ErrorCode;
use worker::{Env, Fetch, Method, Request, RequestInit, RequestRedirect, Response, Result, Url};

use crate::auth::Principal;
use crate::http::{error, fail, json, random_id, read_json};
use crate::sessions_api;

/// Panel tokens live two minutes: long enough to load an iframe, useless once leaked.
const TOKEN_TTL_SECS: u64 = 120;

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
    let role = agent_ops_protocol::access::acting_role(&user.caller, role);
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
    let key = match crate::auth::panel_key(env, id) {
        Ok(k) => k,
        Err(e) => return error(&e),
    };
    let grant = PanelGrant {
        session: id.to_owned(),
        login: user.login.clone(),
        role,
        credential: user.credential.clone(),
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
    let origin = match crate::origins::sandboxes(env) {
        Ok(s) => s.origin(id),
        Err(e) => return error(&e),
    };
    // Traded on the sandbox's own origin, so the cookie it is traded for lives there.
    let mut url = Url::parse(&format!("{origin}/sandbox/{id}/auth"))?;
    url.query_pairs_mut()
        .append_pair("token", &token)
        .append_pair("next", &entry);
    let url = url.to_string();
    json(
        201,
        &PanelToken {
            token,
            url,
            expires_in_secs: TOKEN_TTL_SECS,
        },
    )
}

/// The address of a session's gateway (never shown to anyone), if its sandbox has one.
async fn gateway_of(env: &Env, id: &str) -> Result<Option<String>> {
    env.d1("DB")?
        .prepare("SELECT gateway_url FROM sessions WHERE id = ?1 AND status != 'terminated'")
        .bind(&[id.into()])?
        .first(Some("gateway_url"))
        .await
}

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
    let Some(base) = gateway_of(env, id).await? else {
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
    let app = match crate::origins::app(env) {
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
