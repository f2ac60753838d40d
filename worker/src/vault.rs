//! The vault: credentials sealed under the deployment's master keys (`VAULT_KEYS`) before they
//! reach D1, bound to their owner and kind, and opened only for the Worker's own use. The
//! sealing itself is `agent_ops_protocol::vault`, pure and shared with the tests.

use agent_ops_protocol::vault::{
    self, Binding, KeyRing, Sealed, CREDENTIALS as PURPOSE, NONCE_LEN,
};
use agent_ops_protocol::{ApiError, ErrorCode};

use crate::db::credentials::{self, Stored};
use crate::db::Db;
use crate::edge::http::random_hex;

/// The owner of the credentials administrators store for the whole organisation.
pub const ORG: &str = "org";

pub fn key_ring(env: &worker::Env) -> Result<KeyRing, ApiError> {
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

fn new_nonce() -> [u8; NONCE_LEN] {
    hex::decode(random_hex(NONCE_LEN))
        .ok()
        .and_then(|n| n.try_into().ok())
        .expect("random_hex yields NONCE_LEN bytes")
}

fn binding<'a>(owner: &'a str, kind: &'a str) -> Binding<'a> {
    Binding {
        purpose: PURPOSE,
        owner,
        kind,
    }
}

fn stored(owner: &str, kind: &str, sealed: Sealed) -> Stored {
    Stored {
        owner_id: owner.to_owned(),
        kind: kind.to_owned(),
        key_id: sealed.key_id,
        nonce: hex::encode(sealed.nonce),
        ciphertext: hex::encode(&sealed.ciphertext),
    }
}

fn sealed(row: &Stored) -> Sealed {
    Sealed {
        key_id: row.key_id.clone(),
        nonce: hex::decode(&row.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .unwrap_or_default(),
        ciphertext: hex::decode(&row.ciphertext).unwrap_or_default(),
    }
}

/// `secret`, sealed for `owner`'s credential `kind` under the current master key.
pub fn seal(ring: &KeyRing, owner: &str, kind: &str, secret: &str) -> Result<Stored, ApiError> {
    vault::seal(ring, binding(owner, kind), secret.as_bytes(), new_nonce())
        .map(|s| stored(owner, kind, s))
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the credential could not be sealed"))
}

/// `row` sealed again under the current master key; `None` when it already is.
pub fn reseal(ring: &KeyRing, row: &Stored) -> Result<Option<Stored>, String> {
    vault::reseal(
        ring,
        binding(&row.owner_id, &row.kind),
        &sealed(row),
        new_nonce(),
    )
    .map(|fresh| fresh.map(|s| stored(&row.owner_id, &row.kind, s)))
    .map_err(|e| format!("{}/{}: {e:?}", row.owner_id, row.kind))
}

/// `owner`'s credential of `kind`, opened, for the Worker's own use: no route returns it.
pub async fn open_stored(
    env: &worker::Env,
    owner: &str,
    kind: &str,
) -> worker::Result<Option<String>> {
    open_first(env, &[(owner, kind)]).await
}

/// The first of the `wanted` (owner, kind) pairs that is stored, opened, for the Worker's own use
/// (the model's key on the agent's calls: a person's, else the organisation's): one read,
/// whichever is found.
pub async fn open_first(
    env: &worker::Env,
    wanted: &[(&str, &str)],
) -> worker::Result<Option<String>> {
    let rows = credentials::any_of(&Db::of(env)?, wanted).await?;
    let first = wanted.iter().find_map(|(owner, kind)| {
        rows.iter()
            .find(|row| row.owner_id == *owner && row.kind == *kind)
    });
    let Some(row) = first else {
        return Ok(None);
    };
    let ring = key_ring(env).map_err(|e| worker::Error::RustError(e.message))?;
    let secret =
        vault::open(&ring, binding(&row.owner_id, &row.kind), &sealed(row)).map_err(|e| {
            worker::Error::RustError(format!(
                "{}/{} does not open: {e:?}",
                row.owner_id, row.kind
            ))
        })?;
    Ok(String::from_utf8(secret).ok())
}
