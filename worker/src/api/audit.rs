//! The audit log: recorded by every security-relevant handler, read by administrators.

use agent_ops_protocol::api::{AuditAction, AuditLog};
use agent_ops_protocol::routes::endpoint;

use crate::db::{audit, Db};
use crate::edge::http::{answer, now_ms, Handled};

pub async fn record(
    db: &Db,
    actor: &str,
    action: AuditAction,
    target: &str,
    detail: &str,
) -> worker::Result<()> {
    audit::append(db, now_ms(), actor, action, target, detail).await
}

/// `GET /api/admin/audit`: the newest security-relevant actions first.
pub async fn list(db: &Db) -> Handled {
    let entries = audit::newest(db, 500).await?;
    answer::<endpoint::ListAudit>(&AuditLog { entries })
}
