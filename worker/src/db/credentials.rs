//! `credentials`: sealed secrets, by owner (a user's id, or `org`) and kind.

use agent_ops_protocol::api::CredentialInfo;
use serde::Deserialize;
use worker::Result;

use super::{num, text, Db};

/// A sealed credential as stored.
#[derive(Deserialize)]
pub struct Stored {
    pub owner_id: String,
    pub kind: String,
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

pub async fn upsert(db: &Db, stored: &Stored, now: u64) -> Result<()> {
    db.write(
        "INSERT INTO credentials (owner_id, kind, key_id, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (owner_id, kind) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, \
         ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        &[
            text(&stored.owner_id),
            text(&stored.kind),
            text(&stored.key_id),
            text(&stored.nonce),
            text(&stored.ciphertext),
            num(now),
        ],
    )
    .await?;
    Ok(())
}

pub async fn of_owner(db: &Db, owner: &str) -> Result<Vec<CredentialInfo>> {
    db.all(
        "SELECT kind, key_id, updated_at FROM credentials WHERE owner_id = ?1 ORDER BY kind",
        &[text(owner)],
    )
    .await
}

/// Those of the `wanted` (owner, kind) pairs that are stored, read at once: a lookup that falls
/// back from one owner to another costs one read, not one per owner.
pub async fn any_of(db: &Db, wanted: &[(&str, &str)]) -> Result<Vec<Stored>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let pairs = (1..=wanted.len())
        .map(|i| format!("(owner_id = ?{} AND kind = ?{})", 2 * i - 1, 2 * i))
        .collect::<Vec<_>>()
        .join(" OR ");
    let params: Vec<_> = wanted
        .iter()
        .flat_map(|(owner, kind)| [text(owner), text(kind)])
        .collect();
    db.all(
        &format!("SELECT owner_id, kind, key_id, nonce, ciphertext FROM credentials WHERE {pairs}"),
        &params,
    )
    .await
}

/// Whether there was one to delete.
pub async fn delete(db: &Db, owner: &str, kind: &str) -> Result<bool> {
    db.write(
        "DELETE FROM credentials WHERE owner_id = ?1 AND kind = ?2",
        &[text(owner), text(kind)],
    )
    .await
}

/// Every credential not sealed with master key `key_id`.
pub async fn not_under(db: &Db, key_id: &str) -> Result<Vec<Stored>> {
    db.all(
        "SELECT owner_id, kind, key_id, nonce, ciphertext FROM credentials WHERE key_id != ?1",
        &[text(key_id)],
    )
    .await
}

/// Replaces `old` with `fresh` only if it is still as read (compare-and-swap on the nonce, new
/// with every seal): whether it was replaced.
pub async fn reseal(db: &Db, old: &Stored, fresh: &Stored) -> Result<bool> {
    db.write(
        "UPDATE credentials SET key_id = ?1, nonce = ?2, ciphertext = ?3 WHERE owner_id = ?4 AND kind = ?5 AND nonce = ?6",
        &[
            text(&fresh.key_id),
            text(&fresh.nonce),
            text(&fresh.ciphertext),
            text(&old.owner_id),
            text(&old.kind),
            text(&old.nonce),
        ],
    )
    .await
}
