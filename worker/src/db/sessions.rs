//! `sessions`: the index of sessions (who owns each, its status, its sandbox), and the caller's
//! role on one, read together in one query.

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::api::{AgentKind, ModelUsage, PanelInfo, SessionInfo};
use agent_ops_protocol::SessionStatus;
use serde::Deserialize;
use worker::Result;

use super::{json_text, num, opt_text, text, Db};

/// A row of `sessions`, as every reader needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub owner_id: String,
    pub title: Option<String>,
    pub repo: Option<String>,
    pub branch: Option<String>,
    #[serde(deserialize_with = "json_text", default)]
    pub panels: Vec<PanelInfo>,
    pub agent: AgentKind,
    pub model: String,
    pub status: SessionStatus,
    pub created_at: u64,
    pub updated_at: u64,
    /// The sandbox's gateway (never shown to anyone).
    pub gateway_url: Option<String>,
    #[serde(default)]
    pub model_input_tokens: u64,
    #[serde(default)]
    pub model_output_tokens: u64,
    #[serde(default)]
    pub model_calls: u64,
}

impl SessionRow {
    pub fn info(&self, your_role: Option<SessionRole>) -> SessionInfo {
        SessionInfo {
            id: self.id.clone(),
            status: self.status,
            title: self.title.clone(),
            repo: self.repo.clone(),
            branch: self.branch.clone(),
            agent: self.agent,
            model: self.model.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            panels: self.panels.clone(),
            your_role,
            model_usage: ModelUsage {
                input_tokens: self.model_input_tokens,
                output_tokens: self.model_output_tokens,
                calls: self.model_calls,
            },
        }
    }
}

const COLUMNS: &str =
    "s.id, s.owner_id, s.title, s.repo, s.branch, s.panels, s.agent, s.model, s.status, \
     s.created_at, s.updated_at, s.gateway_url, s.model_input_tokens, \
     s.model_output_tokens, s.model_calls";

pub struct NewSession<'a> {
    pub id: &'a str,
    pub owner_id: &'a str,
    pub title: Option<&'a str>,
    pub repo: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub agent: AgentKind,
    pub model: &'a str,
    pub now: u64,
}

/// Inserts the session unless its owner already has `limit` active ones (one conditional
/// statement: concurrent creates cannot all pass a count read before any of them inserted).
/// Whether it was inserted.
pub async fn insert_within_limit(db: &Db, s: &NewSession<'_>, limit: u64) -> Result<bool> {
    db.write(
        "INSERT INTO sessions (id, owner_id, title, repo, branch, agent, model, status, created_at, updated_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'provisioning', ?8, ?8 \
         WHERE (SELECT COUNT(*) FROM sessions WHERE owner_id = ?2 AND status != 'terminated') < ?9",
        &[
            text(s.id),
            text(s.owner_id),
            opt_text(s.title),
            opt_text(s.repo),
            opt_text(s.branch),
            text(s.agent.as_str()),
            text(s.model),
            num(s.now),
            num(limit),
        ],
    )
    .await
}

pub async fn set_sandbox(
    db: &Db,
    id: &str,
    gateway_url: Option<&str>,
    panels: &[PanelInfo],
) -> Result<()> {
    db.write(
        "UPDATE sessions SET gateway_url = ?1, panels = ?2 WHERE id = ?3",
        &[
            opt_text(gateway_url),
            text(&serde_json::to_string(panels)?),
            text(id),
        ],
    )
    .await?;
    Ok(())
}

pub async fn set_status(db: &Db, id: &str, status: SessionStatus, now: u64) -> Result<()> {
    db.write(
        "UPDATE sessions SET status = ?1, updated_at = ?2 WHERE id = ?3",
        &[text(status.as_str()), num(now), text(id)],
    )
    .await?;
    Ok(())
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<SessionRow>> {
    db.first(
        &format!("SELECT {COLUMNS} FROM sessions s WHERE s.id = ?1"),
        &[text(id)],
    )
    .await
}

/// A session with the role user `user_id` holds on it as a member (the owner's is the owner's).
#[derive(Deserialize)]
pub struct WithMembership {
    #[serde(flatten)]
    pub session: SessionRow,
    pub member_role: Option<SessionRole>,
}

pub async fn by_id_for(db: &Db, id: &str, user_id: &str) -> Result<Option<WithMembership>> {
    db.first(
        &format!(
            "SELECT {COLUMNS}, m.role AS member_role FROM sessions s \
             LEFT JOIN session_members m ON m.session_id = s.id AND m.user_id = ?2 WHERE s.id = ?1"
        ),
        &[text(id), text(user_id)],
    )
    .await
}

/// The newest 200 sessions `user_id` owns or is a member of (every session, for `all`).
pub async fn visible_to(db: &Db, user_id: &str, all: bool) -> Result<Vec<SessionRow>> {
    db.all(
        &format!(
            "SELECT {COLUMNS} FROM sessions s WHERE ?2 = 1 OR s.owner_id = ?1 \
             OR s.id IN (SELECT session_id FROM session_members WHERE user_id = ?1) \
             ORDER BY s.created_at DESC LIMIT 200"
        ),
        &[text(user_id), num(all.into())],
    )
    .await
}

/// The ids of the live sessions `user_id` owns or is a member of (every live one, for `all`).
pub async fn live_ids_visible_to(db: &Db, user_id: &str, all: bool) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let rows: Vec<Row> = db
        .all(
            "SELECT id FROM sessions WHERE status != 'terminated' AND (?2 = 1 OR owner_id = ?1 \
             OR id IN (SELECT session_id FROM session_members WHERE user_id = ?1))",
            &[text(user_id), num(all.into())],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Adds one model answer's usage to the session's count.
pub async fn add_model_usage(db: &Db, id: &str, usage: ModelUsage) -> Result<()> {
    db.write(
        "UPDATE sessions SET model_input_tokens = model_input_tokens + ?1, \
         model_output_tokens = model_output_tokens + ?2, model_calls = model_calls + ?3 WHERE id = ?4",
        &[num(usage.input_tokens), num(usage.output_tokens), num(usage.calls), text(id)],
    )
    .await?;
    Ok(())
}
