//! The sessions REST API. D1 holds the index (who owns what, its status); everything about a
//! session's activity is forwarded to its Durable Object.

use agent_ops_protocol::access::{OrgRole, Revocation, SessionAccess, SessionRole, ACCESS_HEADER};
use agent_ops_protocol::api::{
    valid_branch, AgentKind, CreateSession, ModelConfig, SessionInfo, SessionList,
};
use agent_ops_protocol::repo::RepoPolicy;
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::{ApiError, ErrorCode, SessionStatus, MAX_PROMPT_BYTES};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{Env, Method, Request, RequestInit, Response, Result, Stub};

use crate::auth::Principal;
use crate::http::{
    changed_rows, error, fail, into_api_error, json, now_ms, random_hex, random_id, read_json,
};
use crate::provider;
use crate::session::InitSession;

/// A row of the `sessions` table.
#[derive(Deserialize)]
struct Row {
    id: String,
    title: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    panels: Option<String>,
    agent: String,
    model: String,
    status: String,
    created_at: f64,
    updated_at: f64,
    #[serde(default)]
    model_input_tokens: f64,
    #[serde(default)]
    model_output_tokens: f64,
    #[serde(default)]
    model_calls: f64,
}

impl Row {
    fn into_info(self) -> SessionInfo {
        SessionInfo {
            id: self.id,
            status: serde_json::from_value(self.status.into())
                .unwrap_or(SessionStatus::Provisioning),
            title: self.title,
            repo: self.repo,
            branch: self.branch,
            panels: self
                .panels
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or_default(),
            agent: serde_json::from_value(self.agent.into()).unwrap_or_default(),
            model: self.model,
            created_at: self.created_at as u64,
            updated_at: self.updated_at as u64,
            your_role: None,
            model_usage: agent_ops_protocol::api::ModelUsage {
                input_tokens: self.model_input_tokens as u64,
                output_tokens: self.model_output_tokens as u64,
                calls: self.model_calls as u64,
            },
        }
    }
}

pub fn is_session_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn stub(env: &Env, id: &str) -> Result<Stub> {
    env.durable_object("SESSIONS")?.id_from_name(id)?.get_stub()
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
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

/// The session's clone URL, when it has a repository, once the request is otherwise valid.
fn validate(
    body: &CreateSession,
    repos: &RepoPolicy,
) -> std::result::Result<Option<String>, ApiError> {
    if body
        .prompt
        .as_ref()
        .is_some_and(|p| p.len() > MAX_PROMPT_BYTES)
    {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("prompt exceeds {MAX_PROMPT_BYTES} bytes"),
        ));
    }
    if body.prompt.as_ref().is_some_and(|p| p.trim().is_empty()) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "prompt must not be empty",
        ));
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

pub async fn create(mut req: Request, env: &Env, user: &Principal) -> Result<Response> {
    let body: CreateSession = match read_json(&mut req, MAX_PROMPT_BYTES + 16 * 1024).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let clone_url = match validate(&body, &repo_policy(env)) {
        Ok(url) => url,
        Err(e) => return error(&e),
    };
    let base = match crate::origins::runner_base(env) {
        Ok(base) => base,
        Err(e) => return error(&e),
    };
    let id = random_id();
    let runner_token = random_hex(32);
    let runner_token_hash = hash_token(&runner_token);
    let now = now_ms();
    let agent = body.agent.unwrap_or_default();
    let model = model_config(
        env,
        body.model
            .clone()
            .or_else(|| var(env, "DEFAULT_MODEL"))
            .unwrap_or_else(|| "scripted".into()),
    );
    let db = env.d1("DB")?;
    let limit: f64 = var(env, "MAX_ACTIVE_SESSIONS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    // One conditional statement: concurrent creates cannot all pass a count read before any
    // of them inserted.
    let inserted = db
        .prepare(
            "INSERT INTO sessions (id, owner_id, title, repo, branch, agent, model, status, created_at, updated_at, runner_token_hash) \
             SELECT ?1, ?2, ?3, ?4, ?8, ?5, ?6, 'provisioning', ?7, ?7, ?9 \
             WHERE (SELECT COUNT(*) FROM sessions WHERE owner_id = ?2 AND status != 'terminated') < ?10",
        )
        .bind(&[
            id.clone().into(),
            user.user_id.clone().into(),
            body.title.clone().map(JsValue::from).unwrap_or(JsValue::NULL),
            body.repo.clone().map(JsValue::from).unwrap_or(JsValue::NULL),
            agent.as_str().into(),
            model.model.clone().into(),
            (now as f64).into(),
            body.branch.clone().map(JsValue::from).unwrap_or(JsValue::NULL),
            runner_token_hash.clone().into(),
            limit.into(),
        ])?
        .run()
        .await?;
    if !changed_rows(&inserted)? {
        return fail(
            ErrorCode::LimitExceeded,
            format!("you have {limit} active sessions, the most allowed; terminate one to start another"),
        );
    }

    let init = InitSession {
        session_id: id.clone(),
        runner_token_hash,
        prompt: body.prompt.clone(),
    };
    let resp = call(
        env,
        &id,
        Method::Post,
        "/init",
        Some(serde_json::to_string(&init)?),
    )
    .await?;
    if resp.status_code() != 200 {
        return error(&into_api_error(resp).await);
    }
    let control_url = format!(
        "{}/api/sessions/{id}/runner",
        base.replacen("http", "ws", 1)
    );
    let sandbox = agent_ops_protocol::api::CreateSandbox {
        session_id: id.clone(),
        control_url,
        runner_token,
        agent,
        model: model.clone(),
        repo: clone_url,
        branch: body.branch.clone(),
        panel_key: crate::auth::panel_key(env, &id)
            .map(hex::encode)
            .unwrap_or_default(),
    };
    let created = match provider::create(env, &sandbox).await {
        Ok(info) => info,
        Err(e) => {
            // The session cannot run without a sandbox: end it rather than leave it provisioning.
            call(env, &id, Method::Post, "/terminate", None).await.ok();
            set_status(env, &id, SessionStatus::Terminated).await.ok();
            return error(&e);
        }
    };
    db.prepare("UPDATE sessions SET gateway_url = ?1, panels = ?2 WHERE id = ?3")
        .bind(&[
            created
                .gateway_url
                .clone()
                .map(JsValue::from)
                .unwrap_or(JsValue::NULL),
            serde_json::to_string(&created.panels)?.into(),
            id.clone().into(),
        ])?
        .run()
        .await?;
    let info = SessionInfo {
        id,
        status: SessionStatus::Provisioning,
        title: body.title,
        repo: body.repo,
        branch: body.branch,
        panels: created.panels,
        agent,
        model: model.model,
        created_at: now,
        updated_at: now,
        your_role: Some(SessionRole::Owner),
        model_usage: Default::default(),
    };
    json(201, &info)
}

pub async fn set_status(env: &Env, id: &str, status: SessionStatus) -> Result<()> {
    let status = serde_json::to_value(status)?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    env.d1("DB")?
        .prepare("UPDATE sessions SET status = ?1, updated_at = ?2 WHERE id = ?3")
        .bind(&[status.into(), (now_ms() as f64).into(), id.into()])?
        .run()
        .await?;
    Ok(())
}

/// Where the session's sandbox gateway answers, if it has one.
pub async fn find(env: &Env, id: &str) -> Result<Option<SessionInfo>> {
    if !is_session_id(id) {
        return Ok(None);
    }
    let row: Option<Row> = env
        .d1("DB")?
        .prepare("SELECT * FROM sessions WHERE id = ?1")
        .bind(&[id.into()])?
        .first(None)
        .await?;
    Ok(row.map(Row::into_info))
}

fn not_found(id: &str) -> Result<Response> {
    fail(ErrorCode::NotFound, format!("session {id} not found"))
}

/// The caller's sessions: owned or shared with them (administrators see every session).
pub async fn list(env: &Env, user: &Principal) -> Result<Response> {
    let all = user.caller.role == OrgRole::Admin;
    let rows: Vec<Row> = env
        .d1("DB")?
        .prepare(
            "SELECT * FROM sessions WHERE ?2 OR owner_id = ?1              OR id IN (SELECT session_id FROM session_members WHERE user_id = ?1)              ORDER BY created_at DESC LIMIT 200",
        )
        .bind(&[user.user_id.clone().into(), all.into()])?
        .all()
        .await?
        .results()?;
    json(
        200,
        &SessionList {
            sessions: rows.into_iter().map(Row::into_info).collect(),
        },
    )
}

pub async fn get(env: &Env, id: &str, role: Option<SessionRole>) -> Result<Response> {
    match find(env, id).await? {
        Some(info) => json(
            200,
            &SessionInfo {
                your_role: role,
                ..info
            },
        ),
        None => not_found(id),
    }
}

pub async fn delete(env: &Env, user: &Principal, id: &str) -> Result<Response> {
    let Some(mut info) = find(env, id).await? else {
        return not_found(id);
    };
    let resp = call(env, id, Method::Post, "/terminate", None).await?;
    if resp.status_code() != 200 {
        return error(&into_api_error(resp).await);
    }
    crate::accounts_api::audit(env, &user.user_id, "session_terminated", id, "").await?;
    info.status = SessionStatus::Terminated;
    json(200, &info)
}

/// Hands a session-scoped request (prompt, abort, history, client socket) to its object, with
/// the caller's access to the session, which the object uses to authorize each socket message.
pub async fn forward(
    req: Request,
    env: &Env,
    user: &Principal,
    role: Option<SessionRole>,
    id: &str,
) -> Result<Response> {
    if find(env, id).await?.is_none() {
        return not_found(id);
    }
    let Some(role) = role else {
        return not_found(id);
    };
    let access = SessionAccess {
        role,
        scopes: user.caller.scopes.clone(),
        login: user.login.clone(),
        credential: user.credential.clone(),
    };
    let mut forwarded = req.clone_mut()?;
    // Set, never trusted from outside: this overwrites whatever the client sent.
    forwarded
        .headers_mut()?
        .set(ACCESS_HEADER, &serde_json::to_string(&access)?)?;
    stub(env, id)?.fetch_with_request(forwarded).await
}

/// The runner authenticates to the session object itself, with its per-session token.
pub async fn forward_runner(req: Request, env: &Env, id: &str) -> Result<Response> {
    if !is_session_id(id) {
        return not_found(id);
    }
    stub(env, id)?.fetch_with_request(req).await
}

/// Closes the open sockets on session `id` that `revoked` covers, the sandbox gateway's too.
pub async fn close_sockets(env: &Env, id: &str, revoked: &Revocation) -> Result<()> {
    let body = serde_json::to_string(revoked)?;
    call(env, id, Method::Post, "/close-sockets", Some(body)).await?;
    Ok(())
}

/// Closes what was opened with `credential` (see [`Principal::credential`]), which has just gone
/// (a sign-out, a revoked key), on every live session its holder `user` can reach.
pub async fn close_sockets_of_credential(
    env: &Env,
    user: &Principal,
    credential: &str,
) -> Result<()> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let admin = user.caller.role == OrgRole::Admin;
    let live: Vec<Row> = env
        .d1("DB")?
        .prepare(
            "SELECT id FROM sessions WHERE status != 'terminated' AND (?2 = 1 OR owner_id = ?1 \
             OR id IN (SELECT session_id FROM session_members WHERE user_id = ?1))",
        )
        .bind(&[
            user.user_id.clone().into(),
            f64::from(u8::from(admin)).into(),
        ])?
        .all()
        .await?
        .results()?;
    let revoked = Revocation::Credential {
        id: credential.to_owned(),
    };
    let closing = live.iter().map(|s| close_sockets(env, &s.id, &revoked));
    for closed in futures::future::join_all(closing).await {
        closed?;
    }
    Ok(())
}

async fn call(
    env: &Env,
    id: &str,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<Response> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        init.with_body(Some(body.into()));
    }
    let req = Request::new_with_init(&format!("https://session{path}"), &init)?;
    stub(env, id)?.fetch_with_request(req).await
}
