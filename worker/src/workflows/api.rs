//! `/api/workflows` and `/api/executions`: a person's workflows (an administrator sees every
//! one), their history, a run by hand, and the editor's preview. Another person's workflow is
//! `not_found`, never `forbidden`: its existence is not revealed.

use agent_ops_protocol::access::OrgRole;
use agent_ops_protocol::api::{
    AuditAction, CreateSession, ExecutionAccepted, ExecutionList, ExecutionStatus, Preview,
    TriggerKind, WorkflowList, WorkflowSpec,
};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::workflows::check_workflow;
use agent_ops_protocol::workflows::schedule::Schedule;
use agent_ops_protocol::workflows::template::{self, Context, VARIABLES};
use agent_ops_protocol::{ApiError, ErrorCode};
use serde_json::Map;
use worker::{Env, Request};

use super::runs::{self, Start};
use super::settings;
use super::triggers::{forget_secret, schedule_of};
use crate::api::{audit, sessions as sessions_api};
use crate::db::workflow_executions as executions;
use crate::db::workflow_triggers;
use crate::db::workflows::{self, WorkflowRow};
use crate::db::Db;
use crate::edge::auth::Principal;
use crate::edge::http::{answer, answer_with, body, no_content, now_ms, random_id, Handled};

const MAX_SPEC_BYTES: usize = 96 * 1024;
const HISTORY: u64 = 100;

fn sees_all(user: &Principal) -> bool {
    user.caller.role == OrgRole::Admin
}

/// Workflow `id`, when `user` may see it.
pub async fn visible(env: &Env, user: &Principal, id: &str) -> Handled<WorkflowRow> {
    workflows::visible(&Db::of(env)?, id, &user.user_id, sees_all(user))
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("workflow {id} not found")).into()
        })
}

/// A workflow as it may be saved: its templates parse, and what its sessions would be started
/// with passes the checks a session's creation makes (the repository policy, the agent).
fn check(spec: &WorkflowSpec, env: &Env) -> Handled<()> {
    check_workflow(spec)?;
    let t = &spec.template;
    sessions_api::check_new(
        env,
        &CreateSession {
            repo: t.repo.clone(),
            branch: t.branch.clone(),
            prompt: None,
            agent: t.agent,
            model: t.model.clone(),
            title: None,
        },
    )?;
    Ok(())
}

pub async fn list(env: &Env, user: &Principal) -> Handled {
    let rows = workflows::visible_to(&Db::of(env)?, &user.user_id, sees_all(user)).await?;
    answer::<endpoint::ListWorkflows>(&WorkflowList {
        workflows: rows.iter().map(WorkflowRow::info).collect(),
    })
}

pub async fn create(mut req: Request, env: &Env, user: &Principal) -> Handled {
    let spec = body::<endpoint::CreateWorkflow>(&mut req, MAX_SPEC_BYTES).await?;
    check(&spec, env)?;
    let db = Db::of(env)?;
    let id = random_id();
    workflows::insert(&db, &id, &user.user_id, &spec, now_ms()).await?;
    audit::record(
        &db,
        &user.user_id,
        AuditAction::WorkflowSaved,
        &id,
        &spec.name,
    )
    .await?;
    let row = visible(env, user, &id).await?;
    answer_with::<endpoint::CreateWorkflow>(201, &row.info())
}

pub fn get(wf: &WorkflowRow) -> Handled {
    answer::<endpoint::GetWorkflow>(&wf.info())
}

/// Saves the workflow. Enabling it again clears its pause, and its schedules run from now on
/// (what they would have run while it was off is not caught up).
pub async fn update(mut req: Request, env: &Env, user: &Principal, wf: &WorkflowRow) -> Handled {
    let spec = body::<endpoint::UpdateWorkflow>(&mut req, MAX_SPEC_BYTES).await?;
    check(&spec, env)?;
    let db = Db::of(env)?;
    let now = now_ms();
    workflows::update(&db, &wf.id, &spec, now).await?;
    if spec.enabled && !wf.enabled {
        for t in workflow_triggers::of_workflow(&db, &wf.id).await? {
            if let Some(s) = t.spec.as_ref().and_then(schedule_of) {
                workflow_triggers::reschedule(&db, &t.id, s.next_after(now)).await?;
            }
        }
    }
    audit::record(
        &db,
        &user.user_id,
        AuditAction::WorkflowSaved,
        &wf.id,
        &spec.name,
    )
    .await?;
    answer::<endpoint::UpdateWorkflow>(&visible(env, user, &wf.id).await?.info())
}

pub async fn delete(env: &Env, user: &Principal, wf: &WorkflowRow) -> Handled {
    let db = Db::of(env)?;
    for t in workflow_triggers::of_workflow(&db, &wf.id).await? {
        forget_secret(&db, &t.id).await?;
    }
    workflows::delete(&db, &wf.id).await?;
    audit::record(
        &db,
        &user.user_id,
        AuditAction::WorkflowDeleted,
        &wf.id,
        &wf.name,
    )
    .await?;
    no_content()
}

/// `POST /api/workflows/{id}/run`: a run by hand, with inputs; it starts before the answer.
pub async fn run(mut req: Request, env: &Env, wf: &WorkflowRow) -> Handled {
    let asked = body::<endpoint::RunWorkflow>(&mut req, MAX_SPEC_BYTES).await?;
    if !wf.enabled {
        return Err(ApiError::new(
            ErrorCode::WorkflowDisabled,
            "the workflow is disabled; enable it to run it",
        )
        .into());
    }
    let db = Db::of(env)?;
    let start = Start {
        trigger_id: None,
        kind: TriggerKind::Manual,
        key: asked.idempotency_key.map(|k| format!("manual:{k}")),
        payload: serde_json::Value::Null,
        headers: Map::new(),
        inputs: asked.inputs,
        scheduled_for: None,
        catch_up: false,
        skipped: None,
    };
    let (made_run, made) = runs::make(&db, wf, start, now_ms()).await?;
    let mut status = made_run.status;
    if made && status == ExecutionStatus::Queued {
        runs::advance(env, &made_run).await?;
        status = executions::by_id(&db, &made_run.id)
            .await?
            .map_or(status, |r| r.status);
    }
    answer_with::<endpoint::RunWorkflow>(
        if made { 202 } else { 200 },
        &ExecutionAccepted {
            execution_id: made_run.id,
            status,
        },
    )
}

pub async fn executions(env: &Env, wf: &WorkflowRow) -> Handled {
    let rows = executions::of_workflow(&Db::of(env)?, &wf.id, HISTORY).await?;
    answer::<endpoint::ListExecutions>(&ExecutionList {
        executions: rows.iter().map(|r| r.info()).collect(),
    })
}

pub async fn execution(env: &Env, user: &Principal, id: &str) -> Handled {
    let found = executions::visible(&Db::of(env)?, id, &user.user_id, sees_all(user)).await?;
    let run = found
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("execution {id} not found")))?;
    answer::<endpoint::GetExecution>(&run.info())
}

/// `POST /api/workflows/preview`: what the editor shows before anything is saved.
pub async fn preview(mut req: Request, env: &Env) -> Handled {
    let asked = body::<endpoint::PreviewWorkflow>(&mut req, MAX_SPEC_BYTES).await?;
    let now = now_ms();
    let mut out = Preview {
        variables: VARIABLES.iter().map(|v| v.to_string()).collect(),
        ..Preview::default()
    };
    if let Some(source) = &asked.template {
        let inputs = Map::new();
        let context = Context {
            workflow_id: "preview",
            workflow_name: "preview",
            trigger_id: None,
            trigger_kind: TriggerKind::Webhook.as_str(),
            payload: &asked.payload,
            headers: Map::new(),
            inputs: &inputs,
            now_ms: now,
            scheduled_for: None,
        }
        .to_value();
        match template::render(source, &context) {
            Ok(text) => out.rendered = Some(template::prompt(&text, &asked.payload)),
            Err(why) => out.error = Some(why),
        }
    }
    if let Some(cron) = &asked.cron {
        let tz = asked.timezone.clone().unwrap_or_else(|| "UTC".into());
        let rules = settings::current(env, &Db::of(env)?).await?;
        match Schedule::checked(cron, &tz, rules.min_interval_minutes.into(), now) {
            Ok(s) => out.next_runs = s.next_runs(now, 5),
            Err(why) => out.error = Some(why),
        }
    }
    answer::<endpoint::PreviewWorkflow>(&out)
}
