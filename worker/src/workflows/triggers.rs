//! `/api/workflows/{id}/triggers`: what starts a workflow. A signed webhook's secret is made
//! here, shown once in the answer, and sealed in the vault; a schedule is checked against the
//! deployment's minimum interval and gets its first run time.

use agent_ops_protocol::api::{
    AuditAction, Trigger, TriggerCreated, TriggerList, TriggerSpec, WebhookScheme,
};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::workflows::check_trigger;
use agent_ops_protocol::workflows::schedule::Schedule;
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Request};

use crate::api::audit;
use crate::db::workflow_triggers::{self, TriggerRow};
use crate::db::workflows::WorkflowRow;
use crate::db::{credentials, Db};
use crate::edge::auth::Principal;
use crate::edge::http::{
    answer, answer_with, body, no_content, now_ms, random_hex, random_id, Handled,
};
use crate::vault;

use super::settings;

/// The kind a webhook's secret is sealed as, under owner `trigger:<id>`.
pub const SECRET_KIND: &str = "webhook_secret";
const NEXT_RUNS: usize = 5;

pub fn schedule_of(spec: &TriggerSpec) -> Option<Schedule> {
    match spec {
        TriggerSpec::Schedule { cron, timezone } => Schedule::parse(cron, timezone).ok(),
        TriggerSpec::Webhook { .. } => None,
    }
}

fn info(env: &Env, row: &TriggerRow, now: u64) -> Option<Trigger> {
    let spec = row.spec.clone()?;
    let url = match spec {
        TriggerSpec::Webhook { .. } => crate::edge::origins::app(env)
            .ok()
            .map(|app| format!("{app}/hooks/{}", row.id)),
        TriggerSpec::Schedule { .. } => None,
    };
    let next_runs = match (schedule_of(&spec), row.next_run_at) {
        (Some(s), Some(next)) => {
            let mut runs = vec![next];
            runs.extend(s.next_runs(next.max(now), NEXT_RUNS - 1));
            runs
        }
        _ => Vec::new(),
    };
    Some(Trigger {
        id: row.id.clone(),
        workflow_id: row.workflow_id.clone(),
        spec,
        url,
        next_runs,
        created_at: row.created_at,
    })
}

pub async fn list(env: &Env, wf: &WorkflowRow) -> Handled {
    let rows = workflow_triggers::of_workflow(&Db::of(env)?, &wf.id).await?;
    let now = now_ms();
    answer::<endpoint::ListTriggers>(&TriggerList {
        triggers: rows.iter().filter_map(|r| info(env, r, now)).collect(),
    })
}

pub async fn create(mut req: Request, env: &Env, user: &Principal, wf: &WorkflowRow) -> Handled {
    let spec = body::<endpoint::CreateTrigger>(&mut req, 16 * 1024).await?;
    let now = now_ms();
    let db = Db::of(env)?;
    let rules = settings::current(env, &db).await?;
    check_trigger(&spec, rules.min_interval_minutes.into(), now)?;
    let row = TriggerRow {
        id: random_id(),
        workflow_id: wf.id.clone(),
        spec: Some(spec.clone()),
        next_run_at: schedule_of(&spec).and_then(|s| s.next_after(now)),
        created_at: now,
    };
    let secret = match &spec {
        TriggerSpec::Webhook { scheme, .. } if *scheme != WebhookScheme::Bearer => {
            let secret = format!("whsec_{}", random_hex(32));
            let ring = vault::key_ring(env)?;
            let sealed = vault::seal(&ring, &format!("trigger:{}", row.id), SECRET_KIND, &secret)?;
            credentials::upsert(&db, &sealed, now).await?;
            Some(secret)
        }
        _ => None,
    };
    workflow_triggers::insert(&db, &row, &spec).await?;
    audit::record(
        &db,
        &user.user_id,
        AuditAction::TriggerCreated,
        &row.id,
        &wf.id,
    )
    .await?;
    let trigger = info(env, &row, now)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the trigger was saved unreadable"))?;
    answer_with::<endpoint::CreateTrigger>(201, &TriggerCreated { trigger, secret })
}

pub async fn delete(env: &Env, user: &Principal, wf: &WorkflowRow, id: &str) -> Handled {
    let db = Db::of(env)?;
    if !workflow_triggers::delete(&db, &wf.id, id).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no trigger {id} on this workflow"),
        )
        .into());
    }
    forget_secret(&db, id).await?;
    audit::record(&db, &user.user_id, AuditAction::TriggerDeleted, id, &wf.id).await?;
    no_content()
}

/// A deleted trigger's secret goes with it.
pub async fn forget_secret(db: &Db, trigger_id: &str) -> Handled<()> {
    credentials::delete(db, &format!("trigger:{trigger_id}"), SECRET_KIND).await?;
    Ok(())
}
