//! `workflows`: each saved way of starting a session, its owner, and how its runs have gone.

use agent_ops_protocol::api::{Concurrency, SessionTemplate, Workflow, WorkflowSpec};
use serde::Deserialize;
use worker::Result;

use super::{flag, json_text, num, opt_num, text, Db};

#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRow {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    #[serde(deserialize_with = "flag")]
    pub enabled: bool,
    #[serde(deserialize_with = "json_text")]
    pub template: Option<SessionTemplate>,
    pub concurrency: Concurrency,
    pub max_runs_per_hour: Option<u32>,
    pub pause_after_failures: u32,
    pub consecutive_failures: u32,
    pub paused_reason: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl WorkflowRow {
    pub fn template(&self) -> SessionTemplate {
        self.template.clone().unwrap_or(SessionTemplate {
            prompt: String::new(),
            title: None,
            repo: None,
            branch: None,
            agent: None,
            model: None,
        })
    }

    pub fn info(&self) -> Workflow {
        Workflow {
            id: self.id.clone(),
            spec: WorkflowSpec {
                name: self.name.clone(),
                enabled: self.enabled,
                template: self.template(),
                concurrency: self.concurrency,
                max_runs_per_hour: self.max_runs_per_hour,
                pause_after_failures: self.pause_after_failures,
            },
            paused_reason: self.paused_reason.clone(),
            consecutive_failures: self.consecutive_failures,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const COLUMNS: &str = "id, owner_id, name, enabled, template, concurrency, max_runs_per_hour, \
     pause_after_failures, consecutive_failures, paused_reason, created_at, updated_at";

pub async fn insert(
    db: &Db,
    id: &str,
    owner_id: &str,
    spec: &WorkflowSpec,
    now: u64,
) -> Result<()> {
    db.write(
        "INSERT INTO workflows (id, owner_id, name, enabled, template, concurrency, max_runs_per_hour, \
         pause_after_failures, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        &[
            text(id),
            text(owner_id),
            text(&spec.name),
            num(spec.enabled as u64),
            text(&serde_json::to_string(&spec.template)?),
            text(spec.concurrency.as_str()),
            opt_num(spec.max_runs_per_hour.map(u64::from)),
            num(spec.pause_after_failures.into()),
            num(now),
        ],
    )
    .await?;
    Ok(())
}

/// Saves `spec` over workflow `id`. Enabling it again clears a pause and its count of failures.
pub async fn update(db: &Db, id: &str, spec: &WorkflowSpec, now: u64) -> Result<()> {
    db.write(
        "UPDATE workflows SET name = ?2, template = ?3, concurrency = ?4, max_runs_per_hour = ?5, \
         pause_after_failures = ?6, updated_at = ?7, \
         paused_reason = CASE WHEN ?8 = 1 THEN NULL ELSE paused_reason END, \
         consecutive_failures = CASE WHEN ?8 = 1 AND enabled = 0 THEN 0 ELSE consecutive_failures END, \
         enabled = ?8 WHERE id = ?1",
        &[
            text(id),
            text(&spec.name),
            text(&serde_json::to_string(&spec.template)?),
            text(spec.concurrency.as_str()),
            opt_num(spec.max_runs_per_hour.map(u64::from)),
            num(spec.pause_after_failures.into()),
            num(now),
            num(spec.enabled as u64),
        ],
    )
    .await?;
    Ok(())
}

/// Workflow `id`, when `user_id` may see it (its owner; an administrator sees every one).
pub async fn visible(db: &Db, id: &str, user_id: &str, all: bool) -> Result<Option<WorkflowRow>> {
    db.first(
        &format!("SELECT {COLUMNS} FROM workflows WHERE id = ?1 AND (owner_id = ?2 OR ?3 = 1)"),
        &[text(id), text(user_id), num(all as u64)],
    )
    .await
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<WorkflowRow>> {
    db.first(
        &format!("SELECT {COLUMNS} FROM workflows WHERE id = ?1"),
        &[text(id)],
    )
    .await
}

pub async fn visible_to(db: &Db, user_id: &str, all: bool) -> Result<Vec<WorkflowRow>> {
    db.all(
        &format!(
            "SELECT {COLUMNS} FROM workflows WHERE owner_id = ?1 OR ?2 = 1 ORDER BY created_at DESC"
        ),
        &[text(user_id), num(all as u64)],
    )
    .await
}

pub async fn delete(db: &Db, id: &str) -> Result<bool> {
    db.write("DELETE FROM workflows WHERE id = ?1", &[text(id)])
        .await
}

/// Counts how a run ended (in the statement itself: runs that end together each count):
/// the workflow's failures in a row now.
pub async fn record_outcome(db: &Db, id: &str, failed: bool, now: u64) -> Result<u32> {
    #[derive(Deserialize)]
    struct Count {
        consecutive_failures: u32,
    }
    let count: Option<Count> = db
        .first(
            "UPDATE workflows SET consecutive_failures = CASE WHEN ?2 = 1 THEN consecutive_failures + 1 ELSE 0 END, \
             updated_at = ?3 WHERE id = ?1 RETURNING consecutive_failures",
            &[text(id), num(failed as u64), num(now)],
        )
        .await?;
    Ok(count.map_or(0, |c| c.consecutive_failures))
}

/// Disables the workflow, saying why.
pub async fn pause(db: &Db, id: &str, why: &str, now: u64) -> Result<()> {
    db.write(
        "UPDATE workflows SET enabled = 0, paused_reason = ?2, updated_at = ?3 WHERE id = ?1",
        &[text(id), text(why), num(now)],
    )
    .await?;
    Ok(())
}
