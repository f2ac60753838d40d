//! `workflow_executions`: every run of a workflow. A run is made by one insert that its
//! idempotency key makes unique, and started by one conditional update: concurrent deliveries,
//! ticks and sweeps cannot make two, nor start one twice.

use agent_ops_protocol::api::{Concurrency, Execution, ExecutionStatus, TriggerKind};
use serde::Deserialize;
use worker::Result;

use super::{flag, num, opt_num, opt_text, text, Db, Read};

#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionRow {
    pub id: String,
    pub workflow_id: String,
    pub trigger_id: Option<String>,
    pub trigger_kind: TriggerKind,
    pub status: ExecutionStatus,
    pub session_id: Option<String>,
    pub reason: Option<String>,
    #[serde(deserialize_with = "flag")]
    pub catch_up: bool,
    pub scheduled_for: Option<u64>,
    pub prompt: Option<String>,
    pub title: Option<String>,
    pub created_at: u64,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
}

impl ExecutionRow {
    pub fn info(&self) -> Execution {
        Execution {
            id: self.id.clone(),
            workflow_id: self.workflow_id.clone(),
            trigger_id: self.trigger_id.clone(),
            trigger_kind: self.trigger_kind,
            status: self.status,
            session_id: self.session_id.clone(),
            reason: self.reason.clone(),
            catch_up: self.catch_up,
            scheduled_for: self.scheduled_for,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

const COLUMNS: &str = "e.*";

pub struct NewExecution<'a> {
    pub id: &'a str,
    pub workflow_id: &'a str,
    pub trigger_id: Option<&'a str>,
    pub trigger_kind: TriggerKind,
    pub key: &'a str,
    /// `queued` to run; `skipped` or `failed` (with the reason) when it never will.
    pub status: ExecutionStatus,
    pub reason: Option<&'a str>,
    pub catch_up: bool,
    pub scheduled_for: Option<u64>,
    pub prompt: Option<&'a str>,
    pub title: Option<&'a str>,
    pub now: u64,
}

/// The execution, made: `Ok(true)` when this call made it, `Ok(false)` when its key had
/// made one before (that one is answered, and nothing is started again).
pub async fn insert_once(db: &Db, e: &NewExecution<'_>) -> Result<(ExecutionRow, bool)> {
    let done = !matches!(e.status, ExecutionStatus::Queued | ExecutionStatus::Running);
    let made: Option<ExecutionRow> = db
        .first(
            "INSERT INTO workflow_executions (id, workflow_id, trigger_id, trigger_kind, idempotency_key, \
                 status, reason, catch_up, scheduled_for, prompt, title, created_at, finished_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT (workflow_id, idempotency_key) DO NOTHING RETURNING *",
            &[
                text(e.id),
                text(e.workflow_id),
                opt_text(e.trigger_id),
                text(e.trigger_kind.as_str()),
                text(e.key),
                text(e.status.as_str()),
                opt_text(e.reason),
                num(e.catch_up as u64),
                opt_num(e.scheduled_for),
                opt_text(e.prompt),
                opt_text(e.title),
                num(e.now),
                opt_num(done.then_some(e.now)),
            ],
        )
        .await?;
    if let Some(row) = made {
        return Ok((row, true));
    }
    let before: Option<ExecutionRow> = db
        .first(
            &format!(
                "SELECT {COLUMNS} FROM workflow_executions e WHERE e.workflow_id = ?1 AND e.idempotency_key = ?2"
            ),
            &[text(e.workflow_id), text(e.key)],
        )
        .await?;
    before.map(|row| (row, false)).ok_or_else(|| {
        worker::Error::RustError("an execution's key conflicted and vanished".into())
    })
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<ExecutionRow>> {
    db.first(
        &format!("SELECT {COLUMNS} FROM workflow_executions e WHERE e.id = ?1"),
        &[text(id)],
    )
    .await
}

/// Execution `id`, when `user_id` may see its workflow.
pub async fn visible(db: &Db, id: &str, user_id: &str, all: bool) -> Result<Option<ExecutionRow>> {
    db.first(
        &format!(
            "SELECT {COLUMNS} FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id \
             WHERE e.id = ?1 AND (w.owner_id = ?2 OR ?3 = 1)"
        ),
        &[text(id), text(user_id), num(all as u64)],
    )
    .await
}

pub async fn of_workflow(db: &Db, workflow_id: &str, limit: u64) -> Result<Vec<ExecutionRow>> {
    db.all(
        &format!(
            "SELECT {COLUMNS} FROM workflow_executions e WHERE e.workflow_id = ?1 \
             ORDER BY e.created_at DESC, e.rowid DESC LIMIT ?2"
        ),
        &[text(workflow_id), num(limit)],
    )
    .await
}

/// What admission looks at: the workflow's runs going now, and those started in the last hour.
#[derive(Debug, Deserialize)]
pub struct Load {
    pub running: u32,
    pub last_hour: u32,
}

pub async fn load(db: &Db, workflow_id: &str, now: u64) -> Result<Load> {
    let load: Option<Load> = db
        .first(
            "SELECT \
             (SELECT COUNT(*) FROM workflow_executions WHERE workflow_id = ?1 AND status = 'running') AS running, \
             (SELECT COUNT(*) FROM workflow_executions WHERE workflow_id = ?1 AND started_at > ?2) AS last_hour",
            &[text(workflow_id), num(now.saturating_sub(3_600_000))],
        )
        .await?;
    Ok(load.unwrap_or(Load {
        running: 0,
        last_hour: 0,
    }))
}

/// Starts queued execution `id`, if it still is queued and the policy lets it start now: the
/// conditions are the update's own, so of two racing claims one wins, and a `skip` or `queue`
/// workflow never has two running.
pub async fn claim(
    db: &Db,
    id: &str,
    workflow_id: &str,
    policy: Concurrency,
    now: u64,
) -> Result<bool> {
    let only_one = if policy == Concurrency::Allow {
        ""
    } else {
        "AND NOT EXISTS (SELECT 1 FROM workflow_executions WHERE workflow_id = ?2 AND status = 'running')"
    };
    let in_order = if policy == Concurrency::Queue {
        "AND id = (SELECT id FROM workflow_executions WHERE workflow_id = ?2 AND status = 'queued' \
         ORDER BY created_at, rowid LIMIT 1)"
    } else {
        ""
    };
    db.write(
        &format!(
            "UPDATE workflow_executions SET status = 'running', started_at = ?3 \
             WHERE id = ?1 AND status = 'queued' {only_one} {in_order}"
        ),
        &[text(id), text(workflow_id), num(now)],
    )
    .await
}

pub async fn set_session(db: &Db, id: &str, session_id: &str) -> Result<()> {
    db.write(
        "UPDATE workflow_executions SET session_id = ?2, prompt = NULL, title = NULL WHERE id = ?1",
        &[text(id), text(session_id)],
    )
    .await?;
    Ok(())
}

/// Ends an execution that has not ended; whether this call ended it.
pub async fn finish(
    db: &Db,
    id: &str,
    status: ExecutionStatus,
    reason: Option<&str>,
    now: u64,
) -> Result<bool> {
    db.write(
        "UPDATE workflow_executions SET status = ?2, reason = ?3, finished_at = ?4, prompt = NULL, title = NULL \
         WHERE id = ?1 AND status IN ('queued', 'running')",
        &[text(id), text(status.as_str()), opt_text(reason), num(now)],
    )
    .await
}

/// The workflow's oldest queued execution.
pub async fn first_queued(db: &Db, workflow_id: &str) -> Result<Option<ExecutionRow>> {
    db.first(
        &format!(
            "SELECT {COLUMNS} FROM workflow_executions e WHERE e.workflow_id = ?1 AND e.status = 'queued' \
             ORDER BY e.created_at, e.rowid LIMIT 1"
        ),
        &[text(workflow_id)],
    )
    .await
}

/// Executions left queued since before `before` (their start was lost: the isolate stopped),
/// and those running since before it without a session: each workflow's oldest.
pub async fn stranded(db: &Db, before: u64, limit: u64) -> Result<Read<ExecutionRow>> {
    db.all_read(
        &format!(
            "SELECT {COLUMNS} FROM workflow_executions e WHERE e.status IN ('queued', 'running') AND \
             ((e.status = 'queued' AND e.created_at < ?1) OR \
             (e.status = 'running' AND e.session_id IS NULL AND e.started_at < ?1)) \
             ORDER BY e.created_at LIMIT ?2"
        ),
        &[num(before), num(limit)],
    )
    .await
}
