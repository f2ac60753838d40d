//! `session_members`: who else may see or steer a session, and with which role.

use agent_ops_protocol::access::SessionRole;
use worker::Result;

use super::{num, text, Db};

/// Gives the user `role` on the session (replacing the role they had).
pub async fn set(
    db: &Db,
    session_id: &str,
    user_id: &str,
    role: SessionRole,
    now: u64,
) -> Result<()> {
    db.write(
        "INSERT INTO session_members (session_id, user_id, role, added_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (session_id, user_id) DO UPDATE SET role = excluded.role",
        &[text(session_id), text(user_id), text(role.as_str()), num(now)],
    )
    .await?;
    Ok(())
}

/// Gives the user `role` on the session unless they own it or already hold a higher role.
pub async fn raise(
    db: &Db,
    session_id: &str,
    user_id: &str,
    role: SessionRole,
    now: u64,
) -> Result<()> {
    db.write(
        "INSERT INTO session_members (session_id, user_id, role, added_at) \
         SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND owner_id = ?2) \
         ON CONFLICT (session_id, user_id) DO UPDATE SET role = CASE WHEN role = 'collaborator' THEN role ELSE excluded.role END",
        &[text(session_id), text(user_id), text(role.as_str()), num(now)],
    )
    .await?;
    Ok(())
}

/// Whether `login` was a member (and is no longer).
pub async fn remove_by_login(db: &Db, session_id: &str, login: &str) -> Result<bool> {
    db.write(
        "DELETE FROM session_members WHERE session_id = ?1 \
         AND user_id = (SELECT id FROM users WHERE login = ?2)",
        &[text(session_id), text(login)],
    )
    .await
}
