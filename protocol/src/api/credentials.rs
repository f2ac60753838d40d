//! Stored credentials: a user's or the organisation's, sealed in the vault.

use serde::{Deserialize, Serialize};

/// `PUT /api/credentials/:kind`. The secret goes in and never comes out again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PutCredential {
    /// 1 to 8192 bytes.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 8192)))]
    pub secret: String,
}

/// The credentials a user (or the organisation) may store.
pub const CREDENTIAL_KINDS: [&str; 3] = ["anthropic_api_key", "openai_api_key", "github_token"];

/// What the API says of a stored credential: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CredentialInfo {
    pub kind: String,
    /// The master key it is sealed with (it changes when keys rotate).
    pub key_id: String,
    pub updated_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CredentialList {
    pub credentials: Vec<CredentialInfo>,
}

/// `POST /api/admin/vault/rotate`: what moved to the current master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VaultRotation {
    pub resealed: u64,
    /// Saved under the current key while the rotation ran (kept as saved).
    pub saved_meanwhile: u64,
    /// `owner/kind: reason` for each credential that could not be opened.
    pub failed: Vec<String>,
}
