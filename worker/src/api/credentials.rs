//! The credentials API: users store model provider keys and GitHub tokens; the values are
//! sealed (`crate::vault`) before they reach D1, and no route ever returns one.

use agent_ops_protocol::api::{
    AuditAction, CredentialInfo, CredentialList, VaultRotation, CREDENTIAL_KINDS as KINDS,
};
use agent_ops_protocol::routes::{endpoint, Endpoint};
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Request};

use crate::api::audit;
use crate::db::{credentials, Db};
use crate::edge::auth::Principal;
use crate::edge::http::{answer, body, no_content, now_ms, refuse, Handled};
use crate::vault;

const MAX_SECRET_BYTES: usize = 8 * 1024;

fn check_kind(kind: &str) -> Result<(), ApiError> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "unknown credential kind `{kind}`; known: {}",
                KINDS.join(", ")
            ),
        ))
    }
}

/// Stores `owner`'s credential (a user's id, or `org` for the organisation's, set by admins).
/// `E` is the route it came by (the user's or the organisation's).
pub async fn put<
    E: Endpoint<Req = agent_ops_protocol::api::PutCredential, Resp = CredentialInfo>,
>(
    mut req: Request,
    env: &Env,
    actor: &Principal,
    owner: &str,
    kind: &str,
) -> Handled {
    check_kind(kind)?;
    let secret = body::<E>(&mut req, MAX_SECRET_BYTES + 256).await?.secret;
    if secret.trim().is_empty() || secret.len() > MAX_SECRET_BYTES {
        return refuse(
            ErrorCode::InvalidBody,
            format!("secret must be 1 to {MAX_SECRET_BYTES} bytes"),
        );
    }
    let stored = vault::seal(&vault::key_ring(env)?, owner, kind, &secret)?;
    let now = now_ms();
    let db = Db::of(env)?;
    credentials::upsert(&db, &stored, now).await?;
    audit::record(
        &db,
        &actor.user_id,
        AuditAction::CredentialStored,
        kind,
        owner,
    )
    .await?;
    answer::<E>(&CredentialInfo {
        kind: kind.to_owned(),
        key_id: stored.key_id,
        updated_at: now,
    })
}

pub async fn list<E: Endpoint<Resp = CredentialList>>(env: &Env, owner: &str) -> Handled {
    let credentials = credentials::of_owner(&Db::of(env)?, owner).await?;
    answer::<E>(&CredentialList { credentials })
}

pub async fn delete(env: &Env, actor: &Principal, owner: &str, kind: &str) -> Handled {
    check_kind(kind)?;
    let db = Db::of(env)?;
    if !credentials::delete(&db, owner, kind).await? {
        return refuse(ErrorCode::NotFound, format!("no stored {kind}"));
    }
    audit::record(
        &db,
        &actor.user_id,
        AuditAction::CredentialDeleted,
        kind,
        owner,
    )
    .await?;
    no_content()
}

/// Re-seals every stored credential still under an older master key with the current one, so an
/// old key can then be dropped from `VAULT_KEYS`.
pub async fn rotate(env: &Env) -> Handled {
    let ring = vault::key_ring(env)?;
    let db = Db::of(env)?;
    let mut rotation = VaultRotation {
        resealed: 0,
        saved_meanwhile: 0,
        failed: Vec::new(),
    };
    for row in credentials::not_under(&db, ring.current_id()).await? {
        match vault::reseal(&ring, &row) {
            // A credential saved since it was read is already under the newest key, and kept.
            Ok(Some(fresh)) if credentials::reseal(&db, &row, &fresh).await? => {
                rotation.resealed += 1
            }
            Ok(Some(_)) => rotation.saved_meanwhile += 1,
            Ok(None) => {}
            Err(why) => rotation.failed.push(why),
        }
    }
    answer::<endpoint::RotateVault>(&rotation)
}
