//! `/api/admin/workflows/settings`: the rules administrators set for every workflow. Until one
//! is set, the deployment's var (`WORKFLOW_MIN_INTERVAL_MINUTES`) is the default.

use agent_ops_protocol::api::{AuditAction, WorkflowSettings};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Request};

use crate::api::audit;
use crate::db::{settings, Db};
use crate::edge::auth::Principal;
use crate::edge::config::var;
use crate::edge::http::{answer, body, now_ms, Handled};

fn default(env: &Env) -> WorkflowSettings {
    WorkflowSettings {
        min_interval_minutes: var(env, "WORKFLOW_MIN_INTERVAL_MINUTES")
            .and_then(|v| v.parse().ok())
            .unwrap_or(15),
    }
}

/// The rules in force: the administrators', else the deployment's default.
pub async fn current(env: &Env, db: &Db) -> Handled<WorkflowSettings> {
    Ok(settings::workflows(db)
        .await?
        .unwrap_or_else(|| default(env)))
}

pub async fn get(env: &Env) -> Handled {
    answer::<endpoint::GetWorkflowSettings>(&current(env, &Db::of(env)?).await?)
}

/// Saving changes what schedules may be saved from now on; a schedule saved before keeps
/// running as it was accepted.
pub async fn put(mut req: Request, env: &Env, admin: &Principal) -> Handled {
    let asked = body::<endpoint::PutWorkflowSettings>(&mut req, 1024).await?;
    asked
        .check()
        .map_err(|why| ApiError::new(ErrorCode::InvalidBody, why))?;
    let db = Db::of(env)?;
    settings::put_workflows(&db, &asked, now_ms()).await?;
    let detail = format!("min_interval_minutes={}", asked.min_interval_minutes);
    audit::record(
        &db,
        &admin.user_id,
        AuditAction::WorkflowSettingsChanged,
        "workflows",
        &detail,
    )
    .await?;
    answer::<endpoint::PutWorkflowSettings>(&asked)
}
