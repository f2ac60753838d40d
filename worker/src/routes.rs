//! Dispatch from the route table (`agent_ops_protocol::routes`): authenticate, authorize by the
//! route's rule, then hand over to the handler. No handler runs before its rule has passed.

use agent_ops_protocol::access::{decide, Denial, Need, SessionRole};
use agent_ops_protocol::routes::{match_route, RouteId};
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::Deserialize;
use worker::{Env, Request, Response, Result};

use crate::auth::{self, Principal};
use crate::credentials_api::ORG;
use crate::http::{error, fail, json};
use crate::{
    accounts_api, credentials_api, github_auth, invites, model_proxy, panels, rate_limit,
    sessions_api, share_links,
};

/// The caller's role on a session (owner, a member's role, or none; org admins act as owners).
async fn session_role(
    env: &Env,
    user: &Principal,
    session_id: &str,
) -> Result<Option<SessionRole>> {
    if !sessions_api::is_session_id(session_id) {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Row {
        owner_id: String,
        member_role: Option<String>,
    }
    let row: Option<Row> = env
        .d1("DB")?
        .prepare(
            "SELECT s.owner_id, m.role AS member_role FROM sessions s \
             LEFT JOIN session_members m ON m.session_id = s.id AND m.user_id = ?2 WHERE s.id = ?1",
        )
        .bind(&[session_id.into(), user.user_id.clone().into()])?
        .first(None)
        .await?;
    Ok(row.and_then(|r| {
        if r.owner_id == user.user_id {
            Some(SessionRole::Owner)
        } else {
            r.member_role
                .and_then(|m| serde_json::from_value(m.into()).ok())
        }
    }))
}

fn denial(d: Denial, path: &str) -> ApiError {
    match d {
        Denial::Unauthenticated => {
            ApiError::new(ErrorCode::Unauthorized, "sign in or present an API key")
        }
        Denial::MissingScope(s) => ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "these credentials lack the `{}` scope",
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
        ),
        Denial::RoleTooLow(r) => ApiError::new(
            ErrorCode::Forbidden,
            format!("this needs the {r:?} role on the session").to_lowercase(),
        ),
        Denial::NotAMember => ApiError::new(ErrorCode::NotFound, format!("{path} not found")),
    }
}

pub async fn dispatch(req: Request, env: Env) -> Result<Response> {
    let path = req.path();
    let method = req.method().to_string();
    let Some((route, params)) = match_route(&method, &path) else {
        return fail(ErrorCode::NotFound, format!("no route for {method} {path}"));
    };
    // A sandbox's origin serves that sandbox and nothing else; the app's never serves one.
    let sandbox = sandbox_of(&req, &env);
    let gateway = route.spec().need == Need::Gateway;
    match (sandbox, gateway) {
        (Some((id, own)), true) if params.first() == Some(&id) => {
            if let Some(refused) = limit(&req, &env, route).await? {
                return Ok(refused);
            }
            return panels::proxy(req, &env, &id, &own).await;
        }
        (Some((id, _)), _) => {
            return fail(
                ErrorCode::NotFound,
                format!("this origin serves the sandbox of session {id} under /sandbox/{id}/ and nothing else"),
            )
        }
        (None, true) => {
            return fail(
                ErrorCode::NotFound,
                "a sandbox is served on its session's own origin, never the app's (see the panel token's url)",
            )
        }
        (None, false) => {}
    }
    if let Some(refused) = limit(&req, &env, route).await? {
        return Ok(refused);
    }
    if let Some(e) = cross_site(&req, &env, route) {
        return error(&e);
    }
    let need = route.spec().need;
    let principal = match need {
        Need::Public | Need::Runner | Need::Gateway => None,
        _ => match auth::authenticate(&req, &env).await {
            Ok(p) => p,
            Err(e) => return error(&e),
        },
    };
    let param = params.first().cloned().unwrap_or_default();
    let role = match (&principal, need) {
        (Some(p), Need::Session(..)) => session_role(&env, p, &param).await?,
        _ => None,
    };
    if let Err(d) = decide(need, principal.as_ref().map(|p| &p.caller), role) {
        return error(&denial(d, &path));
    }
    let Some(user) = principal else {
        return public(route, req, &env, &params).await;
    };
    // The effective role, for the session object to authorize each WebSocket message.
    let role = if user.caller.role == agent_ops_protocol::access::OrgRole::Admin {
        Some(SessionRole::Owner)
    } else {
        role
    };
    match route {
        RouteId::Health
        | RouteId::OpenApi
        | RouteId::AuthProviders
        | RouteId::DevLogin
        | RouteId::GithubStart
        | RouteId::GithubCallback
        | RouteId::RunnerSocket
        | RouteId::RunnerModel
        | RouteId::SandboxGet
        | RouteId::SandboxPost => public(route, req, &env, &params).await,
        RouteId::Logout => accounts_api::logout(&env, &user).await,
        RouteId::Me => accounts_api::me(&user),
        RouteId::CreateSession => sessions_api::create(req, &env, &user).await,
        RouteId::ListSessions => sessions_api::list(&env, &user).await,
        RouteId::GetSession => sessions_api::get(&env, &param, role).await,
        RouteId::DeleteSession => sessions_api::delete(&env, &user, &param).await,
        RouteId::PostPrompt
        | RouteId::CancelPrompt
        | RouteId::Abort
        | RouteId::Events
        | RouteId::ClientSocket => sessions_api::forward(req, &env, &user, role, &param).await,
        RouteId::AddMember => accounts_api::add_member(req, &env, &user, &param).await,
        RouteId::RemoveMember => {
            accounts_api::remove_member(&env, &user, &param, second(&params)).await
        }
        RouteId::RevokeShareLink => share_links::revoke(&env, &user, &param, second(&params)).await,
        RouteId::CreateShareLink => share_links::create(req, &env, &user, &param).await,
        RouteId::PanelToken => match role {
            Some(role) => panels::token(req, &env, &user, role, &param).await,
            None => fail(ErrorCode::NotFound, format!("{path} not found")),
        },
        RouteId::RedeemShareLink => share_links::redeem(req, &env, &user).await,
        RouteId::ListKeys => accounts_api::list_keys(&env, &user).await,
        RouteId::CreateKey => accounts_api::create_key(req, &env, &user).await,
        RouteId::RevokeKey => accounts_api::revoke_key(&env, &user, &param).await,
        RouteId::ListCredentials => credentials_api::list(&env, &user.user_id).await,
        RouteId::PutCredential => {
            credentials_api::put(req, &env, &user, &user.user_id, &param).await
        }
        RouteId::DeleteCredential => {
            credentials_api::delete(&env, &user, &user.user_id, &param).await
        }
        RouteId::ListOrgCredentials => credentials_api::list(&env, ORG).await,
        RouteId::PutOrgCredential => credentials_api::put(req, &env, &user, ORG, &param).await,
        RouteId::DeleteOrgCredential => credentials_api::delete(&env, &user, ORG, &param).await,
        RouteId::RotateVault => credentials_api::rotate(&env).await,
        RouteId::ListAudit => accounts_api::list_audit(&env).await,
        RouteId::CreateInvite => invites::create(req, &env, &user).await,
        RouteId::AcceptInvite => invites::accept(req, &env, &user).await,
        RouteId::BenchEcho => {
            if env
                .var("ENABLE_BENCH_ECHO")
                .map(|v| v.to_string() == "1")
                .unwrap_or(false)
            {
                env.durable_object("ECHO")?
                    .id_from_name("echo")?
                    .get_stub()?
                    .fetch_with_request(req)
                    .await
            } else {
                fail(ErrorCode::NotFound, "the benchmark echo is not enabled")
            }
        }
    }
}

/// A route's second path parameter.
fn second(params: &[String]) -> &str {
    params.get(1).map_or("", String::as_str)
}

/// Routes that need no user: health, development sign-in, and the runner's own link and model calls.
async fn public(route: RouteId, req: Request, env: &Env, params: &[String]) -> Result<Response> {
    let param = |i: usize| params.get(i).map_or("", String::as_str);
    match route {
        RouteId::Health => json(
            200,
            &serde_json::json!({"ok": true, "service": "agent-ops"}),
        ),
        RouteId::OpenApi => json(
            200,
            &agent_ops_protocol::openapi::document(env!("CARGO_PKG_VERSION")),
        ),
        RouteId::AuthProviders => accounts_api::providers(env),
        RouteId::DevLogin => accounts_api::dev_login(req, env).await,
        RouteId::GithubStart => github_auth::start(env).await,
        RouteId::GithubCallback => github_auth::callback(req, env).await,
        RouteId::RunnerSocket => sessions_api::forward_runner(req, env, param(0)).await,
        RouteId::RunnerModel => model_proxy::call(req, env, param(0), param(1)).await,
        _ => fail(ErrorCode::Internal, "route needs a user"),
    }
}

/// The bucket a request counts against, and its limit: sign-in by client address, the API by
/// token (or address when there is none). Health checks and runners are not limited.
async fn limit(req: &Request, env: &Env, route: RouteId) -> Result<Option<Response>> {
    let per_min = |name: &str, default: u32| {
        env.var(name)
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .unwrap_or(default)
    };
    let ip = req
        .headers()
        .get("cf-connecting-ip")?
        .unwrap_or_else(|| "local".into());
    let (bucket, limit) = match route {
        RouteId::Health
        | RouteId::OpenApi
        | RouteId::AuthProviders
        | RouteId::RunnerSocket
        | RouteId::RunnerModel => return Ok(None),
        RouteId::DevLogin | RouteId::GithubStart | RouteId::GithubCallback => (
            format!("signin:{ip}"),
            per_min("RATE_LIMIT_SIGNIN_PER_MIN", 20),
        ),
        // An editor or a desktop loads hundreds of files at once: panels have their own budget,
        // so opening one never starves the API (or the other way round).
        RouteId::SandboxGet | RouteId::SandboxPost => {
            let panels = per_min("RATE_LIMIT_PANEL_PER_MIN", 6000);
            match auth::bearer_token(req) {
                Some(token) => (format!("panel:{}", &hash_token(&token)[..32]), panels),
                None => (format!("panel-ip:{ip}"), panels),
            }
        }
        _ => {
            let api = per_min("RATE_LIMIT_API_PER_MIN", 600);
            match auth::bearer_token(req) {
                Some(token) => (format!("token:{}", &hash_token(&token)[..32]), api),
                None => (format!("ip:{ip}"), api),
            }
        }
    };
    rate_limit::check(env, &bucket, limit).await
}

/// The session whose sandbox origin the request was sent to, with that origin, if it was sent
/// to one.
fn sandbox_of(req: &Request, env: &Env) -> Option<(String, String)> {
    let url = req.url().ok()?;
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str()?),
        None => url.host_str()?.to_owned(),
    };
    let sandboxes = crate::origins::sandboxes(env).ok()?;
    let id = sandboxes.session_of(&host)?;
    let own = sandboxes.origin(&id);
    Some((id, own))
}

/// CSRF protection for cookie-authenticated requests: a state-changing request (or a viewer's
/// socket) must come from the app's own origin (`PUBLIC_URL`), as the browser's `Origin`
/// header says. A sandbox's pages are on origins of their own, so this refuses them too.
fn cross_site(req: &Request, env: &Env, route: RouteId) -> Option<ApiError> {
    let method = route.spec().method;
    let guarded = method != "GET" || route == RouteId::ClientSocket;
    if !guarded || !auth::cookie_only(req) {
        return None;
    }
    let ours = match crate::origins::app(env) {
        Ok(origin) => origin,
        Err(e) => return Some(e),
    };
    let origin = req.headers().get("origin").ok().flatten();
    if origin.as_deref() == Some(ours.as_str()) {
        None
    } else {
        Some(ApiError::new(
            ErrorCode::Forbidden,
            "cross-site request refused: a cookie-authenticated request must come from this origin",
        ))
    }
}
