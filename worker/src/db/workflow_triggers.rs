//! `workflow_triggers`: what starts a workflow (a webhook, a schedule), and when each schedule
//! runs next.

use agent_ops_protocol::api::TriggerSpec;
use serde::Deserialize;
use worker::Result;

use super::{flag, json_text, num, opt_num, text, Db, Read};

#[derive(Debug, Clone, Deserialize)]
pub struct TriggerRow {
    pub id: String,
    pub workflow_id: String,
    #[serde(deserialize_with = "json_text")]
    pub spec: Option<TriggerSpec>,
    pub next_run_at: Option<u64>,
    pub created_at: u64,
}

pub async fn insert(db: &Db, row: &TriggerRow, spec: &TriggerSpec) -> Result<()> {
    let kind = match spec {
        TriggerSpec::Webhook { .. } => "webhook",
        TriggerSpec::Schedule { .. } => "schedule",
    };
    db.write(
        "INSERT INTO workflow_triggers (id, workflow_id, kind, spec, next_run_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            text(&row.id),
            text(&row.workflow_id),
            text(kind),
            text(&serde_json::to_string(spec)?),
            opt_num(row.next_run_at),
            num(row.created_at),
        ],
    )
    .await?;
    Ok(())
}

const COLUMNS: &str = "t.id, t.workflow_id, t.spec, t.next_run_at, t.created_at";

pub async fn of_workflow(db: &Db, workflow_id: &str) -> Result<Vec<TriggerRow>> {
    db.all(
        &format!("SELECT {COLUMNS} FROM workflow_triggers t WHERE t.workflow_id = ?1 ORDER BY t.created_at"),
        &[text(workflow_id)],
    )
    .await
}

pub async fn delete(db: &Db, workflow_id: &str, id: &str) -> Result<bool> {
    db.write(
        "DELETE FROM workflow_triggers WHERE workflow_id = ?1 AND id = ?2",
        &[text(workflow_id), text(id)],
    )
    .await
}

/// A webhook trigger with its workflow's owner and whether the workflow is enabled, in one
/// read: all a delivery needs before it checks the signature.
#[derive(Debug, Deserialize)]
pub struct HookTarget {
    pub id: String,
    pub workflow_id: String,
    #[serde(deserialize_with = "json_text")]
    pub spec: Option<TriggerSpec>,
    pub owner_id: String,
    #[serde(deserialize_with = "flag")]
    pub enabled: bool,
}

pub async fn webhook(db: &Db, id: &str) -> Result<Option<HookTarget>> {
    db.first(
        "SELECT t.id, t.workflow_id, t.spec, w.owner_id, w.enabled FROM workflow_triggers t \
         JOIN workflows w ON w.id = t.workflow_id WHERE t.id = ?1 AND t.kind = 'webhook'",
        &[text(id)],
    )
    .await
}

/// The schedules due by `until` of enabled workflows, soonest first, at most `limit`.
pub async fn due(db: &Db, until: u64, limit: u64) -> Result<Read<TriggerRow>> {
    db.all_read(
        &format!(
            "SELECT {COLUMNS} FROM workflow_triggers t JOIN workflows w ON w.id = t.workflow_id \
             WHERE t.next_run_at <= ?1 AND w.enabled = 1 ORDER BY t.next_run_at LIMIT ?2"
        ),
        &[num(until), num(limit)],
    )
    .await
}

/// Moves a schedule on from the run it was due for, unless another tick already did.
pub async fn advance(db: &Db, id: &str, from: u64, to: Option<u64>) -> Result<bool> {
    db.write(
        "UPDATE workflow_triggers SET next_run_at = ?3 WHERE id = ?1 AND next_run_at = ?2",
        &[text(id), num(from), opt_num(to)],
    )
    .await
}

/// Sets a schedule's next run (when its workflow is enabled again, it runs from now on).
pub async fn reschedule(db: &Db, id: &str, next: Option<u64>) -> Result<()> {
    db.write(
        "UPDATE workflow_triggers SET next_run_at = ?2 WHERE id = ?1",
        &[text(id), opt_num(next)],
    )
    .await?;
    Ok(())
}
