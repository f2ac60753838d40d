//! `slack_links`, `slack_link_tokens`, `slack_threads`, `slack_events`: who a Slack user is
//! here, the one-time tokens that say so, which session a thread is, and which events were
//! handled.

use agent_ops_protocol::access::OrgRole;
use serde::Deserialize;
use worker::Result;

use super::{num, text, Db};

/// The platform user a Slack identity is linked to.
#[derive(Debug, Deserialize)]
pub struct Linked {
    pub user_id: String,
    pub login: String,
    pub role: OrgRole,
}

pub async fn linked_user(db: &Db, team: &str, slack_user: &str) -> Result<Option<Linked>> {
    db.first(
        "SELECT u.id AS user_id, u.login, u.role FROM slack_links l JOIN users u ON u.id = l.user_id \
         WHERE l.team_id = ?1 AND l.slack_user_id = ?2",
        &[text(team), text(slack_user)],
    )
    .await
}

/// A user's linked Slack identities.
#[derive(Debug, Deserialize)]
pub struct Identity {
    pub team_id: String,
    pub slack_user_id: String,
    pub linked_at: u64,
}

pub async fn identities_of(db: &Db, user_id: &str) -> Result<Vec<Identity>> {
    db.all(
        "SELECT team_id, slack_user_id, linked_at FROM slack_links WHERE user_id = ?1 ORDER BY linked_at",
        &[text(user_id)],
    )
    .await
}

pub async fn unlink(db: &Db, user_id: &str, team: &str, slack_user: &str) -> Result<bool> {
    db.write(
        "DELETE FROM slack_links WHERE user_id = ?1 AND team_id = ?2 AND slack_user_id = ?3",
        &[text(user_id), text(team), text(slack_user)],
    )
    .await
}

pub async fn insert_link_token(
    db: &Db,
    token_hash: &str,
    team: &str,
    slack_user: &str,
    expires_at: u64,
) -> Result<()> {
    db.write(
        "INSERT INTO slack_link_tokens (token_hash, team_id, slack_user_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
        &[text(token_hash), text(team), text(slack_user), num(expires_at)],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct Claimed {
    pub team_id: String,
    pub slack_user_id: String,
}

/// Uses a live link token, once: the identity it links, or None when it is unknown, expired or
/// used.
pub async fn claim_link_token(db: &Db, token_hash: &str, now: u64) -> Result<Option<Claimed>> {
    db.first(
        "UPDATE slack_link_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 \
         RETURNING team_id, slack_user_id",
        &[text(token_hash), num(now)],
    )
    .await
}

/// Links the identity to `user_id`, replacing whoever it was linked to.
pub async fn link(db: &Db, team: &str, slack_user: &str, user_id: &str, now: u64) -> Result<()> {
    db.write(
        "INSERT INTO slack_links (team_id, slack_user_id, user_id, linked_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (team_id, slack_user_id) DO UPDATE SET user_id = excluded.user_id, linked_at = excluded.linked_at",
        &[text(team), text(slack_user), text(user_id), num(now)],
    )
    .await?;
    Ok(())
}

pub async fn thread_session(
    db: &Db,
    team: &str,
    channel: &str,
    thread: &str,
) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Row {
        session_id: String,
    }
    let row: Option<Row> = db
        .first(
            "SELECT session_id FROM slack_threads WHERE team_id = ?1 AND channel_id = ?2 AND thread_ts = ?3",
            &[text(team), text(channel), text(thread)],
        )
        .await?;
    Ok(row.map(|r| r.session_id))
}

/// Binds a thread to a session (a thread ending its session may be bound to a new one).
pub async fn bind_thread(
    db: &Db,
    team: &str,
    channel: &str,
    thread: &str,
    session_id: &str,
    now: u64,
) -> Result<()> {
    db.write(
        "INSERT INTO slack_threads (team_id, channel_id, thread_ts, session_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (team_id, channel_id, thread_ts) DO UPDATE SET session_id = excluded.session_id, created_at = excluded.created_at",
        &[text(team), text(channel), text(thread), text(session_id), num(now)],
    )
    .await?;
    Ok(())
}

/// Claims event `event_id` for handling: false when it was handled, or is being handled and was
/// claimed less than `stale_ms` ago (a claim older than that failed midway and is taken over).
pub async fn claim_event(db: &Db, event_id: &str, now: u64, stale_ms: u64) -> Result<bool> {
    db.write(
        "INSERT INTO slack_events (event_id, claimed_at) VALUES (?1, ?2) \
         ON CONFLICT (event_id) DO UPDATE SET claimed_at = excluded.claimed_at \
         WHERE slack_events.done = 0 AND slack_events.claimed_at < ?3",
        &[text(event_id), num(now), num(now.saturating_sub(stale_ms))],
    )
    .await
}

pub async fn event_done(db: &Db, event_id: &str) -> Result<()> {
    db.write(
        "UPDATE slack_events SET done = 1 WHERE event_id = ?1",
        &[text(event_id)],
    )
    .await?;
    Ok(())
}

pub struct NewWorkspace<'a> {
    pub team_id: &'a str,
    pub team_name: &'a str,
    pub bot_user_id: &'a str,
    pub app_id: &'a str,
    pub installed_by: &'a str,
    pub now: u64,
}

/// Records an installation, replacing an earlier one of the workspace.
pub async fn upsert_workspace(db: &Db, w: &NewWorkspace<'_>) -> Result<()> {
    db.write(
        "INSERT INTO slack_workspaces (team_id, team_name, bot_user_id, app_id, installed_by, installed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (team_id) DO UPDATE SET team_name = excluded.team_name, \
         bot_user_id = excluded.bot_user_id, app_id = excluded.app_id, installed_by = excluded.installed_by, \
         installed_at = excluded.installed_at",
        &[
            text(w.team_id),
            text(w.team_name),
            text(w.bot_user_id),
            text(w.app_id),
            text(w.installed_by),
            num(w.now),
        ],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct Workspace {
    pub team_id: String,
    pub team_name: String,
    pub bot_user_id: String,
    pub installed_at: u64,
}

pub async fn workspaces(db: &Db) -> Result<Vec<Workspace>> {
    db.all(
        "SELECT team_id, team_name, bot_user_id, installed_at FROM slack_workspaces ORDER BY installed_at",
        &[],
    )
    .await
}

/// Forgets an installation: whether there was one.
pub async fn forget_workspace(db: &Db, team: &str) -> Result<bool> {
    db.write(
        "DELETE FROM slack_workspaces WHERE team_id = ?1",
        &[text(team)],
    )
    .await
}

/// Whether the app serves `channel` of `team`: it does everywhere unless the workspace lists
/// channels, and then only in those.
pub async fn channel_allowed(db: &Db, team: &str, channel: &str) -> Result<bool> {
    #[derive(Deserialize)]
    struct Row {
        listed: u64,
        this: u64,
    }
    let row: Option<Row> = db
        .first(
            "SELECT COUNT(*) AS listed, COALESCE(SUM(channel_id = ?2), 0) AS this \
             FROM slack_channels WHERE team_id = ?1",
            &[text(team), text(channel)],
        )
        .await?;
    Ok(row.is_none_or(|r| r.listed == 0 || r.this > 0))
}

pub async fn channels(db: &Db, team: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Row {
        channel_id: String,
    }
    let rows: Vec<Row> = db
        .all(
            "SELECT channel_id FROM slack_channels WHERE team_id = ?1 ORDER BY channel_id",
            &[text(team)],
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.channel_id).collect())
}

/// Replaces the workspace's list (none: every channel), at once.
pub async fn set_channels(db: &Db, team: &str, channels: &[String]) -> Result<()> {
    let mut writes = vec![(
        "DELETE FROM slack_channels WHERE team_id = ?1",
        vec![text(team)],
    )];
    for channel in channels {
        writes.push((
            "INSERT INTO slack_channels (team_id, channel_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            vec![text(team), text(channel)],
        ));
    }
    db.batch(&writes).await
}
