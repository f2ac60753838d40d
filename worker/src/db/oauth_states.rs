//! `oauth_states_used`: the sign-in states already redeemed, so none is redeemed twice.

use worker::Result;

use super::{num, text, Db};

/// Whether `jti` was fresh (and is now used).
pub async fn use_once(db: &Db, jti: &str, now: u64) -> Result<bool> {
    db.write(
        "INSERT INTO oauth_states_used (jti, used_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
        &[text(jti), num(now)],
    )
    .await
}
