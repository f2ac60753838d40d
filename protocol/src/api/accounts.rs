//! Accounts: sign-in, the signed-in user, API keys, session membership, share links, invites and
//! the audit log.

use serde::{Deserialize, Serialize};

use crate::access::{OrgRole, Scope, SessionRole};

/// `GET /auth/providers`: the sign-in methods this deployment offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SignInProviders {
    pub github: bool,
    /// Development sign-in by login alone (only under `ENVIRONMENT=development`).
    pub development: bool,
}

/// `POST /auth/dev/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DevLogin {
    /// 1-39 letters, digits or dashes; not `admin`.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[A-Za-z0-9-]{1,39}$")))]
    pub login: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct User {
    pub id: String,
    pub login: String,
    pub role: OrgRole,
}

/// A new login session; the token is also set as the sign-in cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SignedIn {
    pub token: String,
    pub expires_at: u64,
    pub user: User,
}

/// `GET /api/me`: who the credentials belong to and what they may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Me {
    pub id: String,
    pub login: String,
    pub role: OrgRole,
    pub scopes: Vec<Scope>,
}

/// `POST /api/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// 1-100 characters.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 100)))]
    pub name: String,
    /// At least one, and none its owner lacks.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub scopes: Vec<Scope>,
    /// Milliseconds since the Unix epoch; in the future, and not past the creating key's own.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<u64>,
    pub revoked_at: Option<u64>,
    pub last_used_at: Option<u64>,
    pub created_at: u64,
}

/// A key just created: the only time the key is shown (only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyCreated {
    #[serde(flatten)]
    pub info: KeyInfo,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// `POST /api/sessions/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub login: String,
    /// Viewer or collaborator: a session has one owner.
    pub role: SessionRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Membership {
    pub session_id: String,
    pub user: User,
    pub role: SessionRole,
}

/// A share link or invite lives a week unless told otherwise, and never past 30 days.
pub const DEFAULT_GRANT_TTL_SECS: u64 = 7 * 24 * 3600;
pub const MAX_GRANT_TTL_SECS: u64 = 30 * 24 * 3600;

fn default_grant_ttl_secs() -> u64 {
    DEFAULT_GRANT_TTL_SECS
}

fn one() -> u32 {
    1
}

/// `POST /api/sessions/{id}/share-links`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewShareLink {
    /// Viewer or collaborator, never owner.
    pub role: SessionRole,
    /// At most 30 days.
    #[serde(default = "default_grant_ttl_secs")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 2_592_000)))]
    pub expires_in_secs: u64,
    #[serde(default = "one")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub max_uses: u32,
}

/// A share link just minted: its token is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ShareLinkCreated {
    pub id: String,
    pub token: String,
    pub session_id: String,
    pub role: SessionRole,
    pub expires_at: u64,
    pub max_uses: u32,
}

/// The body that presents a share link's or an invite's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GrantToken {
    pub token: String,
}

/// `POST /api/share-links/redeem`: the session joined, with the role the link gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Joined {
    pub session_id: String,
    pub role: SessionRole,
}

/// `POST /api/admin/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    pub role: OrgRole,
    /// At most 30 days.
    #[serde(default = "default_grant_ttl_secs")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 2_592_000)))]
    pub expires_in_secs: u64,
}

/// An invite just minted: its token is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InviteCreated {
    pub id: String,
    pub token: String,
    pub role: OrgRole,
    pub expires_at: u64,
}

/// `POST /api/invites/accept`: the role the invite gave (an administrator stays one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InviteAccepted {
    pub role: OrgRole,
}

/// What the audit log records. The names are stored and shown: never renamed, only added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    SignIn,
    SignOut,
    ApiKeyCreated,
    ApiKeyRevoked,
    RoleChanged,
    MemberRemoved,
    ShareLinkCreated,
    ShareLinkUsed,
    ShareLinkRevoked,
    InviteCreated,
    CredentialStored,
    CredentialDeleted,
    SessionTerminated,
    SlackLinked,
    SlackUnlinked,
    SlackInstalled,
    SlackUninstalled,
    WorkflowSaved,
    WorkflowDeleted,
    TriggerCreated,
    TriggerDeleted,
    /// A workflow started a session for its owner (the detail names the workflow and run).
    WorkflowRan,
    WorkflowSettingsChanged,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::SignOut => "sign_out",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::RoleChanged => "role_changed",
            Self::MemberRemoved => "member_removed",
            Self::ShareLinkCreated => "share_link_created",
            Self::ShareLinkUsed => "share_link_used",
            Self::ShareLinkRevoked => "share_link_revoked",
            Self::InviteCreated => "invite_created",
            Self::CredentialStored => "credential_stored",
            Self::CredentialDeleted => "credential_deleted",
            Self::SlackLinked => "slack_linked",
            Self::SlackUnlinked => "slack_unlinked",
            Self::SlackInstalled => "slack_installed",
            Self::SlackUninstalled => "slack_uninstalled",
            Self::WorkflowSaved => "workflow_saved",
            Self::WorkflowDeleted => "workflow_deleted",
            Self::TriggerCreated => "trigger_created",
            Self::TriggerDeleted => "trigger_deleted",
            Self::WorkflowRan => "workflow_ran",
            Self::WorkflowSettingsChanged => "workflow_settings_changed",
            Self::SessionTerminated => "session_terminated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub id: u64,
    pub at: u64,
    pub actor_id: String,
    pub action: AuditAction,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// `GET /api/admin/audit`: the newest 500 entries first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_action_names_are_their_serialized_form() {
        for action in [
            AuditAction::SignIn,
            AuditAction::ShareLinkUsed,
            AuditAction::SessionTerminated,
        ] {
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
        }
    }
}
