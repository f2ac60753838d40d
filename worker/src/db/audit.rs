//! `audit_log`: every security-relevant change, append-only.

use agent_ops_protocol::api::{AuditAction, AuditEntry};
use worker::Result;

use super::{num, text, Db};

pub async fn append(
    db: &Db,
    at: u64,
    actor: &str,
    action: AuditAction,
    target: &str,
    detail: &str,
) -> Result<()> {
    db.write(
        "INSERT INTO audit_log (at, actor_id, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            num(at),
            text(actor),
            text(action.as_str()),
            text(target),
            text(detail),
        ],
    )
    .await?;
    Ok(())
}

pub async fn newest(db: &Db, limit: u64) -> Result<Vec<AuditEntry>> {
    db.all(
        "SELECT id, at, actor_id, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?1",
        &[num(limit)],
    )
    .await
}
