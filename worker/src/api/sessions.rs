//! The sessions REST API. D1 holds the index (who owns what, its status); everything about a
//! session's activity is its Durable Object's (see `prompts` and `streams`).

use agent_ops_protocol::access::{OrgRole, Revocation, SessionRole};
use agent_ops_protocol::api::{
    valid_branch, AgentKind, AuditAction, CreateSandbox, CreateSession, ModelConfig, SandboxInfo,
    SessionInfo, SessionList,
};
use agent_ops_protocol::repo::RepoPolicy;
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::session_calls::{CloseSockets, Init, ModelCaller, Terminate};
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::{ApiError, ErrorCode, SessionStatus, MAX_PROMPT_BYTES};
use worker::{Env, Request};

use crate::api::audit;
use crate::db::sessions::{self, NewSession, SessionRow};
use crate::db::Db;
use crate::edge::auth::Principal;
use crate::edge::config::var;
use crate::edge::http::{answer, body, now_ms, random_hex, random_id, Handled};
use crate::sandbox::provider;
use crate::session;

pub fn is_session_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The deployment's model provider, serving the named model.
pub fn model_config(env: &Env, model: String) -> ModelConfig {
    ModelConfig {
        provider: var(env, "MODEL_PROVIDER").unwrap_or_else(|| "openai-compatible".into()),
        base_url: var(env, "MODEL_BASE_URL"),
        model,
    }
}

/// Which repositories this deployment clones (see `agent_ops_protocol::repo`).
fn repo_policy(env: &Env) -> RepoPolicy {
    RepoPolicy::from_config(
        &var(env, "GITHUB_BASE_URL").unwrap_or_else(|| "https://github.com".into()),
        &var(env, "REPO_FILE_ROOTS").unwrap_or_default(),
        &var(env, "REPO_ALLOW_SSH").unwrap_or_default(),
    )
}

/// Whether a session could be started as `body` asks (a workflow is checked so when saved):
/// its clone URL, when it has a repository.
pub fn check_new(env: &Env, body: &CreateSession) -> Result<Option<String>, ApiError> {
    validate(body, &repo_policy(env))
}

/// The session's clone URL, when it has a repository, once the request is otherwise valid.
fn validate(body: &CreateSession, repos: &RepoPolicy) -> Result<Option<String>, ApiError> {
    if let Some(prompt) = &body.prompt {
        agent_ops_protocol::lifecycle::check_prompt(prompt)?;
    }
    let clone_url = body
        .repo
        .as_deref()
        .map(|r| repos.clone_url(r))
        .transpose()?;
    if body.branch.is_some() && body.repo.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "a branch needs a repo",
        ));
    }
    if body.branch.as_deref().is_some_and(|b| !valid_branch(b)) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "branch must be letters, digits and ._/- (not starting with - or /, without ..)",
        ));
    }
    if let Some(agent) = body.agent.filter(|a| *a != AgentKind::Opencode) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "agent `{}` is not available yet; available: opencode",
                agent.as_str()
            ),
        ));
    }
    Ok(clone_url)
}

/// `POST /api/sessions`: the row (within the owner's limit), then the session's object and its
/// sandbox (see `start`).
pub async fn create(mut req: Request, env: &Env, user: &Principal) -> Handled {
    let new = body::<endpoint::CreateSession>(&mut req, MAX_PROMPT_BYTES + 16 * 1024).await?;
    answer::<endpoint::CreateSession>(&start_new(env, user, new).await?)
}

/// A new session of `user`'s, wherever it is asked for (the API, Slack): one path, one set of
/// checks and limits.
pub async fn start_new(env: &Env, user: &Principal, new: CreateSession) -> Handled<SessionInfo> {
    let clone_url = check_new(env, &new)?;
    let runner_base = crate::edge::origins::runner_base(env)?;
    let db = Db::of(env)?;
    let id = random_id();
    let runner_token = random_hex(32);
    let runner_token_hash = hash_token(&runner_token);
    let agent = new.agent.unwrap_or_default();
    let model = model_config(
        env,
        new.model
            .clone()
            .or_else(|| var(env, "DEFAULT_MODEL"))
            .unwrap_or_else(|| "scripted".into()),
    );
    let limit = var(env, "MAX_ACTIVE_SESSIONS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let now = now_ms();
    let model_name = model.model.clone();
    let row = NewSession {
        id: &id,
        owner_id: &user.user_id,
        title: new.title.as_deref(),
        repo: new.repo.as_deref(),
        branch: new.branch.as_deref(),
        agent,
        model: &model_name,
        now,
    };
    if !sessions::insert_within_limit(&db, &row, limit).await? {
        return Err(ApiError::new(
            ErrorCode::LimitExceeded,
            format!("you have {limit} active sessions, the most allowed; terminate one to start another"),
        )
        .into());
    }
    let init = Init {
        session_id: id.clone(),
        runner_token_hash,
        prompt: new.prompt.clone(),
        model: ModelCaller {
            model: model_name.clone(),
            owner_id: user.user_id.clone(),
        },
    };
    let sandbox = CreateSandbox {
        session_id: id.clone(),
        control_url: format!(
            "{}/api/sessions/{id}/runner",
            runner_base.replacen("http", "ws", 1)
        ),
        runner_token,
        agent,
        model,
        repo: clone_url,
        branch: new.branch.clone(),
        panel_key: crate::edge::auth::panel_key(env, &id).map(hex::encode)?,
    };
    let created = start(env, &db, init, &sandbox).await?;
    sessions::set_sandbox(&db, &id, created.gateway_url.as_deref(), &created.panels).await?;
    Ok(SessionInfo {
        id,
        status: SessionStatus::Provisioning,
        title: new.title,
        repo: new.repo,
        branch: new.branch,
        panels: created.panels,
        agent,
        model: model_name,
        created_at: now,
        updated_at: now,
        your_role: Some(SessionRole::Owner),
        model_usage: Default::default(),
    })
}

/// Starts the session's object and its sandbox side by side (the runner dials the object, which
/// is ready long before a sandbox is up). A session that cannot start both is ended rather than
/// left provisioning, its sandbox destroyed if it had one.
async fn start(env: &Env, db: &Db, init: Init, sandbox: &CreateSandbox) -> Handled<SandboxInfo> {
    let id = init.session_id.clone();
    let (inited, created) = futures::join!(
        session::call(env, &id, init),
        provider::create(env, sandbox)
    );
    let failed = match (inited, created) {
        (Ok(_), Ok(created)) => return Ok(created),
        (Ok(_), Err(e)) => {
            session::call(env, &id, Terminate {}).await.ok();
            e.into()
        }
        (Err(e), created) => {
            if created.is_ok() {
                provider::destroy(env, &id).await.ok();
            }
            e
        }
    };
    sessions::set_status(db, &id, SessionStatus::Terminated, now_ms())
        .await
        .ok();
    Err(failed)
}

/// The caller's sessions: owned or shared with them (administrators see every session).
pub async fn list(env: &Env, user: &Principal) -> Handled {
    let all = user.caller.role == OrgRole::Admin;
    let rows = sessions::visible_to(&Db::of(env)?, &user.user_id, all).await?;
    answer::<endpoint::ListSessions>(&SessionList {
        sessions: rows.iter().map(|r| r.info(None)).collect(),
    })
}

pub fn get(session: &SessionRow, role: Option<SessionRole>) -> Handled {
    answer::<endpoint::GetSession>(&session.info(role))
}

pub async fn delete(env: &Env, user: &Principal, session: &SessionRow) -> Handled {
    answer::<endpoint::DeleteSession>(&terminate(env, user, session).await?)
}

/// Ends `session` for `user` (who may), and says so in the audit log.
pub async fn terminate(env: &Env, user: &Principal, session: &SessionRow) -> Handled<SessionInfo> {
    session::call(env, &session.id, Terminate {}).await?;
    let db = Db::of(env)?;
    audit::record(
        &db,
        &user.user_id,
        AuditAction::SessionTerminated,
        &session.id,
        "",
    )
    .await?;
    let mut info = session.info(None);
    info.status = SessionStatus::Terminated;
    Ok(info)
}

/// Closes the open sockets on session `id` that `revoked` covers, the sandbox gateway's too.
pub async fn close_sockets(env: &Env, id: &str, revoked: &Revocation) -> Handled<()> {
    let revoked = revoked.clone();
    session::call(env, id, CloseSockets { revoked }).await?;
    Ok(())
}

/// Closes what was opened with `credential` (see [`Principal::credential`]), which has just gone
/// (a sign-out, a revoked key), on every live session its holder `user` can reach.
pub async fn close_sockets_of_credential(
    env: &Env,
    db: &Db,
    user: &Principal,
    credential: &str,
) -> Handled<()> {
    let admin = user.caller.role == OrgRole::Admin;
    let live = sessions::live_ids_visible_to(db, &user.user_id, admin).await?;
    let revoked = Revocation::Credential {
        id: credential.to_owned(),
    };
    let closing = live.iter().map(|id| close_sockets(env, id, &revoked));
    for closed in futures::future::join_all(closing).await {
        closed?;
    }
    Ok(())
}
