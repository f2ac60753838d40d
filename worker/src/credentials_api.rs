//! The credentials vault API: users store model provider keys and GitHub tokens; the values are
//! sealed (see `vault.rs`) before they reach D1, and no route ever returns one.

use agent_ops_protocol::api::{CredentialInfo, CredentialList, PutCredential};
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::Deserialize;
use worker::{Env, Request, Response, Result};

use crate::auth::Principal;
use crate::http::{changed_rows, error, fail, json, now_ms, random_hex, read_json};
use agent_ops_protocol::vault::{self, Binding, KeyRing, CREDENTIALS as PURPOSE, NONCE_LEN};

use agent_ops_protocol::api::CREDENTIAL_KINDS as KINDS;
const MAX_SECRET_BYTES: usize = 8 * 1024;

/// The owner of the credentials administrators store for the whole organisation.
pub const ORG: &str = "org";

fn key_ring(env: &Env) -> std::result::Result<KeyRing, ApiError> {
    let spec = env
        .secret("VAULT_KEYS")
        .map(|s| s.to_string())
        .map_err(|_| {
            ApiError::new(
                ErrorCode::Internal,
                "the vault has no master key (VAULT_KEYS)",
            )
        })?;
    KeyRing::parse(&spec).map_err(|_| ApiError::new(ErrorCode::Internal, "VAULT_KEYS is malformed"))
}

fn check_kind(kind: &str) -> std::result::Result<(), ApiError> {
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
pub async fn put(
    mut req: Request,
    env: &Env,
    actor: &Principal,
    owner: &str,
    kind: &str,
) -> Result<Response> {
    if let Err(e) = check_kind(kind) {
        return error(&e);
    }
    let body: PutCredential = match read_json(&mut req, MAX_SECRET_BYTES + 256).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    if body.secret.trim().is_empty() || body.secret.len() > MAX_SECRET_BYTES {
        return fail(
            ErrorCode::InvalidBody,
            format!("secret must be 1 to {MAX_SECRET_BYTES} bytes"),
        );
    }
    let ring = match key_ring(env) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let nonce = new_nonce();
    let binding = Binding {
        purpose: PURPOSE,
        owner,
        kind,
    };
    let Ok(sealed) = vault::seal(&ring, binding, body.secret.as_bytes(), nonce) else {
        return fail(ErrorCode::Internal, "the credential could not be sealed");
    };
    let now = now_ms();
    env.d1("DB")?
        .prepare(
            "INSERT INTO credentials (owner_id, kind, key_id, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (owner_id, kind) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        )
        .bind(&[
            owner.into(),
            kind.into(),
            sealed.key_id.clone().into(),
            hex::encode(sealed.nonce).into(),
            hex::encode(&sealed.ciphertext).into(),
            (now as f64).into(),
        ])?
        .run()
        .await?;
    crate::accounts_api::audit(env, &actor.user_id, "credential_stored", kind, owner).await?;
    json(
        200,
        &CredentialInfo {
            kind: kind.to_owned(),
            key_id: sealed.key_id,
            updated_at: now,
        },
    )
}

pub async fn list(env: &Env, owner: &str) -> Result<Response> {
    #[derive(Deserialize)]
    struct Row {
        kind: String,
        key_id: String,
        updated_at: f64,
    }
    let rows: Vec<Row> = env
        .d1("DB")?
        .prepare(
            "SELECT kind, key_id, updated_at FROM credentials WHERE owner_id = ?1 ORDER BY kind",
        )
        .bind(&[owner.into()])?
        .all()
        .await?
        .results()?;
    let credentials = rows
        .into_iter()
        .map(|r| CredentialInfo {
            kind: r.kind,
            key_id: r.key_id,
            updated_at: r.updated_at as u64,
        })
        .collect();
    json(200, &CredentialList { credentials })
}

pub async fn delete(env: &Env, actor: &Principal, owner: &str, kind: &str) -> Result<Response> {
    if let Err(e) = check_kind(kind) {
        return error(&e);
    }
    let result = env
        .d1("DB")?
        .prepare("DELETE FROM credentials WHERE owner_id = ?1 AND kind = ?2")
        .bind(&[owner.into(), kind.into()])?
        .run()
        .await?;
    if !crate::http::changed_rows(&result)? {
        return fail(ErrorCode::NotFound, format!("no stored {kind}"));
    }
    crate::accounts_api::audit(env, &actor.user_id, "credential_deleted", kind, owner).await?;
    Ok(Response::empty()?.with_status(204))
}

/// A sealed credential as D1 holds it.
#[derive(Deserialize)]
struct Stored {
    owner_id: String,
    kind: String,
    key_id: String,
    nonce: String,
    ciphertext: String,
}

impl Stored {
    fn sealed(&self) -> vault::Sealed {
        vault::Sealed {
            key_id: self.key_id.clone(),
            nonce: hex::decode(&self.nonce)
                .ok()
                .and_then(|n| n.try_into().ok())
                .unwrap_or_default(),
            ciphertext: hex::decode(&self.ciphertext).unwrap_or_default(),
        }
    }

    fn binding(&self) -> Binding<'_> {
        Binding {
            purpose: PURPOSE,
            owner: &self.owner_id,
            kind: &self.kind,
        }
    }
}

/// `owner`'s credential of `kind`, opened, for the Worker's own use (the model's key on the
/// agent's calls): no route returns it.
pub async fn open_stored(env: &Env, owner: &str, kind: &str) -> Result<Option<String>> {
    let row: Option<Stored> = env
        .d1("DB")?
        .prepare(
            "SELECT owner_id, kind, key_id, nonce, ciphertext FROM credentials WHERE owner_id = ?1 AND kind = ?2",
        )
        .bind(&[owner.into(), kind.into()])?
        .first(None)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let ring = key_ring(env).map_err(|e| worker::Error::RustError(e.message))?;
    let secret = vault::open(&ring, row.binding(), &row.sealed())
        .map_err(|e| worker::Error::RustError(format!("{owner}/{kind} does not open: {e:?}")))?;
    Ok(String::from_utf8(secret).ok())
}

/// Re-seals every stored credential still under an older master key with the current one, so an
/// old key can then be dropped from `VAULT_KEYS`.
pub async fn rotate(env: &Env) -> Result<Response> {
    let ring = match key_ring(env) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let db = env.d1("DB")?;
    let rows: Vec<Stored> = db
        .prepare(
            "SELECT owner_id, kind, key_id, nonce, ciphertext FROM credentials WHERE key_id != ?1",
        )
        .bind(&[ring.current_id().into()])?
        .all()
        .await?
        .results()?;
    let mut resealed = 0;
    let mut saved_meanwhile = 0;
    let mut failed = Vec::new();
    for row in rows {
        match vault::reseal(&ring, row.binding(), &row.sealed(), new_nonce()) {
            Ok(Some(fresh)) => {
                // Compare-and-swap on the record's nonce (new with every seal): a credential
                // saved since it was read is already under the newest key, and is kept.
                let swapped = db
                    .prepare("UPDATE credentials SET key_id = ?1, nonce = ?2, ciphertext = ?3 WHERE owner_id = ?4 AND kind = ?5 AND nonce = ?6")
                    .bind(&[
                        fresh.key_id.into(),
                        hex::encode(fresh.nonce).into(),
                        hex::encode(&fresh.ciphertext).into(),
                        row.owner_id.clone().into(),
                        row.kind.clone().into(),
                        row.nonce.clone().into(),
                    ])?
                    .run()
                    .await?;
                if changed_rows(&swapped)? {
                    resealed += 1;
                } else {
                    saved_meanwhile += 1;
                }
            }
            Ok(None) => {}
            Err(e) => failed.push(format!("{}/{}: {e:?}", row.owner_id, row.kind)),
        }
    }
    json(
        200,
        &serde_json::json!({ "resealed": resealed, "saved_meanwhile": saved_meanwhile, "failed": failed }),
    )
}

fn new_nonce() -> [u8; NONCE_LEN] {
    hex::decode(random_hex(NONCE_LEN))
        .ok()
        .and_then(|n| n.try_into().ok())
        .expect("random_hex yields NONCE_LEN bytes")
}
