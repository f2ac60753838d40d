//! `settings`: what administrators set for the whole deployment, one typed document per name.

use agent_ops_protocol::api::WorkflowSettings;
use serde::Deserialize;
use worker::Result;

use super::{num, text, Db};

const WORKFLOWS: &str = "workflows";

#[derive(Deserialize)]
struct Row {
    value: String,
}

/// The workflows' rules, when an administrator has set them.
pub async fn workflows(db: &Db) -> Result<Option<WorkflowSettings>> {
    let row: Option<Row> = db
        .first(
            "SELECT value FROM settings WHERE name = ?1",
            &[text(WORKFLOWS)],
        )
        .await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.value).ok()))
}

pub async fn put_workflows(db: &Db, settings: &WorkflowSettings, now: u64) -> Result<()> {
    db.write(
        "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        &[
            text(WORKFLOWS),
            text(&serde_json::to_string(settings)?),
            num(now),
        ],
    )
    .await?;
    Ok(())
}
