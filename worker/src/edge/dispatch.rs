//! Dispatch from the route table (`agent_ops_protocol::routes`): authenticate, authorize by the
//! route's rule, then hand over to the handler. No handler runs before its rule has passed.

use agent_ops_protocol::access::{decide, Denial, Need, OrgRole, SessionRole};
use agent_ops_protocol::api::Health;
use agent_ops_protocol::routes::{endpoint, match_route, RouteId};
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Context, Env, Request, Response};

use crate::api::sessions as sessions_api;
use crate::api::{
    accounts, audit, credentials, invites, keys, members, panels, prompts, share_links, streams,
};
use crate::db::{self, sessions::SessionRow, Db};
use crate::edge::auth::{self, Principal};
use crate::edge::http::{answer, refuse, render, Handled};
use crate::edge::rate_limit;
use crate::integrations::{github_sign_in, slack};
use crate::sandbox::{gateway_proxy, model_proxy};
use crate::vault::ORG;

/// The session a session route names, with the caller's role on it (owner, a member's role, or
/// none), read in one query that the handler then uses too.
async fn session_and_role(
    env: &Env,
    user: &Principal,
    session_id: &str,
) -> Handled<Option<(SessionRow, Option<SessionRole>)>> {
    if !sessions_api::is_session_id(session_id) {
        return Ok(None);
    }
    let found = db::sessions::by_id_for(&Db::of(env)?, session_id, &user.user_id).await?;
    Ok(found.map(|f| {
        let role = if f.session.owner_id == user.user_id {
            Some(SessionRole::Owner)
        } else {
            f.member_role
        };
        (f.session, role)
    }))
}

/// What `user` may do to session `session_id` by `route`'s rule, decided exactly as for the
/// route's HTTP request (another way in, such as Slack, acts through this): the session, with
/// the role they act in, or the refusal the API would answer.
pub async fn authorize_session(
    env: &Env,
    user: &Principal,
    route: RouteId,
    session_id: &str,
) -> Handled<(SessionRow, SessionRole)> {
    let found = session_and_role(env, user, session_id).await?;
    let role = found.as_ref().and_then(|(_, role)| *role);
    decide(route.spec().need, Some(&user.caller), role)
        .map_err(|d| denial(d, &format!("session {session_id}")))?;
    let role = match user.caller.role {
        OrgRole::Admin => Some(SessionRole::Owner),
        _ => role,
    };
    match (found, role) {
        (Some((session, _)), Some(role)) => Ok((session, role)),
        _ => Err(ApiError::session_not_found(session_id).into()),
    }
}

/// Whether `user` may use `route`, which names no session.
pub fn authorize(user: &Principal, route: RouteId) -> Handled<()> {
    decide(route.spec().need, Some(&user.caller), None)
        .map_err(|d| denial(d, route.spec().path).into())
}

fn denial(d: Denial, path: &str) -> ApiError {
    match d {
        Denial::Unauthenticated => {
            ApiError::new(ErrorCode::Unauthorized, "sign in or present an API key")
        }
        Denial::MissingScope(s) => ApiError::new(
            ErrorCode::Forbidden,
            format!("these credentials lack the `{}` scope", s.as_str()),
        ),
        Denial::RoleTooLow(r) => ApiError::new(
            ErrorCode::Forbidden,
            format!("this needs the {} role on the session", r.as_str()),
        ),
        Denial::NotAMember => ApiError::new(ErrorCode::NotFound, format!("{path} not found")),
    }
}

pub async fn dispatch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    match route(req, &env, &ctx).await {
        Ok(resp) => Ok(resp),
        Err(failure) => render(failure),
    }
}

async fn route(req: Request, env: &Env, ctx: &Context) -> Handled {
    let path = req.path();
    let method = req.method().to_string();
    let Some((route, params)) = match_route(&method, &path) else {
        return refuse(ErrorCode::NotFound, format!("no route for {method} {path}"));
    };
    // A sandbox's origin serves that sandbox and nothing else; the app's never serves one.
    let sandbox = sandbox_of(&req, env);
    let gateway = route.spec().need == Need::Gateway;
    match (sandbox, gateway) {
        (Some((id, own)), true) if params.first() == Some(&id) => {
            limit(&req, env, route).await?;
            return Ok(gateway_proxy::proxy(req, env, &id, &own).await?);
        }
        (Some((id, _)), _) => {
            return refuse(
                ErrorCode::NotFound,
                format!("this origin serves the sandbox of session {id} under /sandbox/{id}/ and nothing else"),
            )
        }
        (None, true) => {
            return refuse(
                ErrorCode::NotFound,
                "a sandbox is served on its session's own origin, never the app's (see the panel token's url)",
            )
        }
        (None, false) => {}
    }
    cross_site(&req, env, route)?;
    let need = route.spec().need;
    let param = params.first().cloned().unwrap_or_default();
    // Who is calling, and the session they name, are read while the rate limiter counts the
    // request (reads only: nothing is done for a caller until the count has admitted it).
    let caller = async {
        let principal = match need {
            Need::Public | Need::Runner | Need::Gateway | Need::Slack | Need::Webhook => None,
            _ => auth::authenticate(&req, env).await?,
        };
        let found = match (&principal, need) {
            (Some(p), Need::Session(..)) => session_and_role(env, p, &param).await?,
            _ => None,
        };
        Handled::Ok((principal, found))
    };
    let (admitted, caller) = futures::join!(limit(&req, env, route), caller);
    admitted?;
    let (principal, found) = caller?;
    let role = found.as_ref().and_then(|(_, role)| *role);
    decide(need, principal.as_ref().map(|p| &p.caller), role).map_err(|d| denial(d, &path))?;
    let Some(user) = principal else {
        return public(route, req, env, ctx, &params).await;
    };
    // The effective role, for the session object to authorize each WebSocket message.
    let role = if user.caller.role == OrgRole::Admin {
        Some(SessionRole::Owner)
    } else {
        role
    };
    match (found, role) {
        (Some((session, _)), Some(role)) => {
            on_session(route, req, env, &user, role, &session, &params).await
        }
        (Some(_), None) => Err(ApiError::session_not_found(&param).into()),
        (None, _) if matches!(need, Need::Session(..)) => {
            Err(ApiError::session_not_found(&param).into())
        }
        (None, _) if is_workflows(route) => on_workflows(route, req, env, &user, &params).await,
        (None, _) => signed_in(route, req, env, ctx, &user, &params).await,
    }
}

/// Routes of one session, once the caller's role on it has passed the route's rule.
async fn on_session(
    route: RouteId,
    req: Request,
    env: &Env,
    user: &Principal,
    role: SessionRole,
    session: &SessionRow,
    params: &[String],
) -> Handled {
    let second = params.get(1).map_or("", String::as_str);
    let id = &session.id;
    match route {
        RouteId::GetSession => sessions_api::get(session, Some(role)),
        RouteId::DeleteSession => sessions_api::delete(env, user, session).await,
        RouteId::PostPrompt => prompts::post(req, env, session).await,
        RouteId::CancelPrompt => prompts::cancel(env, session, second).await,
        RouteId::Abort => prompts::abort(env, session).await,
        RouteId::Events => streams::page(&req, env, session).await,
        RouteId::ClientSocket => streams::client(&req, env, user, role, session).await,
        RouteId::AddMember => members::add(req, env, user, id).await,
        RouteId::RemoveMember => members::remove(env, user, id, second).await,
        RouteId::CreateShareLink => share_links::create(req, env, user, id).await,
        RouteId::RevokeShareLink => share_links::revoke(env, user, id, second).await,
        RouteId::PanelToken => panels::token(req, env, user, role, session).await,
        _ => refuse(ErrorCode::Internal, "route is not a session's"),
    }
}

/// Routes of a signed-in caller that name no session.
async fn signed_in(
    route: RouteId,
    req: Request,
    env: &Env,
    ctx: &Context,
    user: &Principal,
    params: &[String],
) -> Handled {
    let param = params.first().map_or("", String::as_str);
    match route {
        RouteId::Logout => accounts::logout(env, user).await,
        RouteId::Me => accounts::me(user),
        RouteId::CreateSession => sessions_api::create(req, env, user).await,
        RouteId::ListSessions => sessions_api::list(env, user).await,
        RouteId::RedeemShareLink => share_links::redeem(req, env, user).await,
        RouteId::SlackInstall => slack::install::start(env, user).await,
        RouteId::SlackWorkspaces => slack::install::workspaces(env).await,
        RouteId::SlackChannels => slack::install::channels(env, param).await,
        RouteId::SetSlackChannels => slack::install::set_channels(req, env, param).await,
        RouteId::LinkSlack => slack::link::link(req, env, user).await,
        RouteId::SlackIdentities => slack::link::identities(env, user).await,
        RouteId::UnlinkSlack => {
            let slack_user = params.get(1).map_or("", String::as_str);
            slack::link::unlink(env, user, param, slack_user).await
        }
        RouteId::ListKeys => keys::list(env, user).await,
        RouteId::CreateKey => keys::create(req, env, user).await,
        RouteId::RevokeKey => keys::revoke(env, user, param).await,
        RouteId::ListCredentials => {
            credentials::list::<endpoint::ListCredentials>(env, &user.user_id).await
        }
        RouteId::PutCredential => {
            credentials::put::<endpoint::PutCredential>(req, env, user, &user.user_id, param).await
        }
        RouteId::DeleteCredential => credentials::delete(env, user, &user.user_id, param).await,
        RouteId::ListOrgCredentials => {
            credentials::list::<endpoint::ListOrgCredentials>(env, ORG).await
        }
        RouteId::PutOrgCredential => {
            credentials::put::<endpoint::PutOrgCredential>(req, env, user, ORG, param).await
        }
        RouteId::DeleteOrgCredential => credentials::delete(env, user, ORG, param).await,
        RouteId::RotateVault => credentials::rotate(env).await,
        RouteId::SchedulerTick => crate::workflows::scheduler::tick_now(req, env).await,
        RouteId::GetWorkflowSettings => crate::workflows::settings::get(env).await,
        RouteId::PutWorkflowSettings => crate::workflows::settings::put(req, env, user).await,
        RouteId::ListAudit => audit::list(&Db::of(env)?).await,
        RouteId::CreateInvite => invites::create(req, env, user).await,
        RouteId::AcceptInvite => invites::accept(req, env, user).await,
        #[cfg(feature = "bench")]
        RouteId::BenchEcho => bench_echo(req, env).await,
        _ => public(route, req, env, ctx, &[]).await,
    }
}

/// The workflow routes, by where the route table puts them (no second list to keep).
fn is_workflows(route: RouteId) -> bool {
    let path = route.spec().path;
    path.starts_with("/api/workflows") || path.starts_with("/api/executions")
}

/// Workflow routes: those naming a workflow find it first (another person's is `not_found`).
async fn on_workflows(
    route: RouteId,
    req: Request,
    env: &Env,
    user: &Principal,
    params: &[String],
) -> Handled {
    use crate::workflows::{api, triggers};
    let param = params.first().map_or("", String::as_str);
    match route {
        RouteId::ListWorkflows => return api::list(env, user).await,
        RouteId::CreateWorkflow => return api::create(req, env, user).await,
        RouteId::PreviewWorkflow => return api::preview(req, env).await,
        RouteId::GetExecution => return api::execution(env, user, param).await,
        _ => {}
    }
    let wf = api::visible(env, user, param).await?;
    match route {
        RouteId::GetWorkflow => api::get(&wf),
        RouteId::UpdateWorkflow => api::update(req, env, user, &wf).await,
        RouteId::DeleteWorkflow => api::delete(env, user, &wf).await,
        RouteId::ListTriggers => triggers::list(env, &wf).await,
        RouteId::CreateTrigger => triggers::create(req, env, user, &wf).await,
        RouteId::DeleteTrigger => {
            triggers::delete(env, user, &wf, params.get(1).map_or("", String::as_str)).await
        }
        RouteId::RunWorkflow => api::run(req, env, &wf).await,
        RouteId::ListExecutions => api::executions(env, &wf).await,
        _ => refuse(ErrorCode::Internal, "route is not a workflow's"),
    }
}

#[cfg(feature = "bench")]
async fn bench_echo(req: Request, env: &Env) -> Handled {
    let stub = env
        .durable_object("ECHO")?
        .id_from_name("echo")?
        .get_stub()?;
    Ok(stub.fetch_with_request(req).await?)
}

/// Routes that need no user: health, sign-in, and the runner's own link and model calls.
async fn public(
    route: RouteId,
    req: Request,
    env: &Env,
    ctx: &Context,
    params: &[String],
) -> Handled {
    let param = |i: usize| params.get(i).map_or("", String::as_str);
    match route {
        RouteId::Health => answer::<endpoint::Health>(&Health {
            ok: true,
            service: "agent-ops".into(),
        }),
        // Written from the route table and the body types (`make openapi`), and committed.
        RouteId::OpenApi => {
            let resp = Response::ok(include_str!("../../openapi.json"))?;
            let headers = resp.headers().clone();
            headers.set("content-type", "application/json")?;
            Ok(resp.with_headers(headers))
        }
        RouteId::AuthProviders => accounts::providers(env),
        RouteId::DevLogin => accounts::dev_login(req, env).await,
        RouteId::GithubStart => github_sign_in::start(env).await,
        RouteId::GithubCallback => github_sign_in::callback(req, env).await,
        RouteId::RunnerSocket => streams::runner(&req, env, param(0)).await,
        RouteId::RunnerModel => model_proxy::call(req, env, param(0), param(1)).await,
        RouteId::SlackCommands | RouteId::SlackEvents | RouteId::SlackInteractivity => {
            slack::serve(route, req, env, ctx).await
        }
        RouteId::SlackOauthCallback => slack::install::callback(req, env).await,
        RouteId::WebhookDelivery => crate::workflows::hooks::deliver(req, env, ctx, param(0)).await,
        _ => refuse(ErrorCode::Internal, "route needs a user"),
    }
}

/// The bucket a request counts against, and its limit: sign-in by client address, the API by
/// token (or address when there is none). Health checks, runners and
/// Slack (whose signature is checked first) are not limited.
async fn limit(req: &Request, env: &Env, route: RouteId) -> Handled<()> {
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
        // Slack's routes are verified before anything else runs, with no I/O: a flood of
        // unsigned requests costs an HMAC each and fills no bucket that Slack's own need.
        RouteId::Health
        | RouteId::OpenApi
        | RouteId::AuthProviders
        | RouteId::RunnerSocket
        | RouteId::RunnerModel
        | RouteId::SlackCommands
        | RouteId::SlackEvents
        | RouteId::SlackInteractivity => return Ok(()),
        RouteId::DevLogin
        | RouteId::GithubStart
        | RouteId::GithubCallback
        | RouteId::SlackOauthCallback => (
            format!("signin:{ip}"),
            per_min("RATE_LIMIT_SIGNIN_PER_MIN", 20),
        ),

        // A webhook counts against its trigger: a sender flooding one holds up no other.
        RouteId::WebhookDelivery => {
            let path = req.path();
            let trigger = path.rsplit('/').next().unwrap_or_default();
            (
                format!("hook:{}", &trigger[..trigger.len().min(64)]),
                per_min("RATE_LIMIT_HOOK_PER_MIN", 600),
            )
        }
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
    let sandboxes = crate::edge::origins::sandboxes(env).ok()?;
    let id = sandboxes.session_of(&host)?;
    let own = sandboxes.origin(&id);
    Some((id, own))
}

/// CSRF protection for cookie-authenticated requests: a state-changing request (or a viewer's
/// socket) must come from the app's own origin (`PUBLIC_URL`), as the browser's `Origin`
/// header says. A sandbox's pages are on origins of their own, so this refuses them too.
fn cross_site(req: &Request, env: &Env, route: RouteId) -> Result<(), ApiError> {
    let method = route.spec().method;
    let guarded = method != "GET" || route == RouteId::ClientSocket;
    if !guarded || !auth::cookie_only(req) {
        return Ok(());
    }
    let ours = crate::edge::origins::app(env)?;
    let origin = req.headers().get("origin").ok().flatten();
    if origin.as_deref() == Some(ours.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "cross-site request refused: a cookie-authenticated request must come from this origin",
        ))
    }
}
