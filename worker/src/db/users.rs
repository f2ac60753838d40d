//! `users`: everyone who has signed in, with their organisation role.

use agent_ops_protocol::access::OrgRole;
use agent_ops_protocol::api::User;
use worker::Result;

use super::{num, text, Db};

/// The first person to sign in administers the organisation; everyone after is a member. One
/// statement, so concurrent first sign-ins cannot both become administrators.
const FIRST_IS_ADMIN: &str =
    "CASE WHEN EXISTS (SELECT 1 FROM users WHERE id != 'admin') THEN 'member' ELSE 'admin' END";

/// Creates the user `login` unless it exists, and returns it.
pub async fn upsert_by_login(db: &Db, id: &str, login: &str, now: u64) -> Result<Option<User>> {
    db.write(
        &format!(
            "INSERT INTO users (id, login, role, created_at) SELECT ?1, ?2, {FIRST_IS_ADMIN}, ?3 \
             ON CONFLICT (login) DO NOTHING"
        ),
        &[text(id), text(login), num(now)],
    )
    .await?;
    by_login(db, login).await
}

/// Creates the user linked to GitHub account `github_id` unless one is, and returns the user
/// linked to it: none when `login` is already another account's.
pub async fn upsert_by_github(
    db: &Db,
    id: &str,
    login: &str,
    github_id: u64,
    now: u64,
) -> Result<Option<User>> {
    db.write(
        &format!(
            "INSERT INTO users (id, login, role, created_at, github_id) \
             SELECT ?1, ?2, {FIRST_IS_ADMIN}, ?3, ?4 ON CONFLICT DO NOTHING"
        ),
        &[text(id), text(login), num(now), num(github_id)],
    )
    .await?;
    db.first(
        "SELECT id, login, role FROM users WHERE github_id = ?1",
        &[num(github_id)],
    )
    .await
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>> {
    db.first(
        "SELECT id, login, role FROM users WHERE id = ?1",
        &[text(id)],
    )
    .await
}

pub async fn by_login(db: &Db, login: &str) -> Result<Option<User>> {
    db.first(
        "SELECT id, login, role FROM users WHERE login = ?1",
        &[text(login)],
    )
    .await
}

/// Raises a member to `role` (an administrator is never lowered by an invite).
pub async fn set_role_unless_admin(db: &Db, id: &str, role: OrgRole) -> Result<()> {
    db.write(
        "UPDATE users SET role = ?1 WHERE id = ?2 AND role != 'admin'",
        &[text(role.as_str()), text(id)],
    )
    .await?;
    Ok(())
}
