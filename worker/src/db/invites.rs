//! `invites`: single-use organisation invites, by the hash of their token.

use agent_ops_protocol::access::OrgRole;
use serde::Deserialize;
use worker::Result;

use super::{num, text, Db};

pub struct NewInvite<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub role: OrgRole,
    pub expires_at: u64,
    pub created_by: &'a str,
    pub created_at: u64,
}

pub async fn insert(db: &Db, invite: &NewInvite<'_>) -> Result<()> {
    db.write(
        "INSERT INTO invites (id, token_hash, role, expires_at, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            text(invite.id),
            text(invite.token_hash),
            text(invite.role.as_str()),
            num(invite.expires_at),
            text(invite.created_by),
            num(invite.created_at),
        ],
    )
    .await?;
    Ok(())
}

/// Claims the invite for `user_id` if it is unused and unexpired (one statement, so only one of
/// two concurrent claims wins), and returns the role it grants.
pub async fn claim(db: &Db, token_hash: &str, user_id: &str, now: u64) -> Result<Option<OrgRole>> {
    #[derive(Deserialize)]
    struct Row {
        role: OrgRole,
    }
    let row: Option<Row> = db
        .first(
            "UPDATE invites SET used_by = ?1, used_at = ?2 \
             WHERE token_hash = ?3 AND used_at IS NULL AND expires_at > ?2 RETURNING role",
            &[text(user_id), num(now), text(token_hash)],
        )
        .await?;
    Ok(row.map(|r| r.role))
}
