//! Who may do what: API key scopes, organisation roles, session roles, and the one pure decision
//! every route and every WebSocket message goes through.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Scope {
    #[serde(rename = "sessions:read")]
    SessionsRead,
    #[serde(rename = "sessions:write")]
    SessionsWrite,
    #[serde(rename = "workflows:read")]
    WorkflowsRead,
    #[serde(rename = "workflows:write")]
    WorkflowsWrite,
    /// Starting a workflow's run (by hand, or as a webhook's bearer).
    #[serde(rename = "workflows:run")]
    WorkflowsRun,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::SessionsRead,
        Scope::SessionsWrite,
        Scope::WorkflowsRead,
        Scope::WorkflowsWrite,
        Scope::WorkflowsRun,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionsRead => "sessions:read",
            Self::SessionsWrite => "sessions:write",
            Self::WorkflowsRead => "workflows:read",
            Self::WorkflowsWrite => "workflows:write",
            Self::WorkflowsRun => "workflows:run",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    Admin,
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// The scopes a principal of this role can hold; a key never carries more than its owner.
    pub fn allows(self, scope: Scope) -> bool {
        self == OrgRole::Admin || scope != Scope::Admin
    }
}

/// Ordered: each role can do everything the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    Viewer,
    Collaborator,
    Owner,
}

impl SessionRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Collaborator => "collaborator",
            Self::Owner => "owner",
        }
    }
}

/// What a route or message requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Public,
    /// The session's runner, by its per-session token (checked by the session object).
    Runner,
    /// A page of the session's sandbox, on the sandbox's own origin (never the app's), where
    /// the sandbox's gateway admits by its panel token or the cookie it traded one for.
    Gateway,
    /// An authenticated principal holding the scope.
    Scope(Scope),
    /// The scope, and at least this role on the session named in the path.
    Session(Scope, SessionRole),
    /// Signed by Slack with the app's signing secret (checked before the handler reads the
    /// body); the person it is from acts only once their Slack identity is linked.
    Slack,
    /// A workflow's webhook: signed with the trigger's secret, or carrying an API key of the
    /// workflow's owner with `workflows:run` (the trigger's scheme says which; its handler
    /// checks before it reads the payload).
    Webhook,
}

/// The role a caller acts with on a session: its role there, but no more than a viewer's when its
/// credentials cannot write (an owner's read-only key watches, it does not type).
pub fn acting_role(caller: &Caller, role: SessionRole) -> SessionRole {
    if caller.scopes.contains(&Scope::SessionsWrite) {
        role
    } else {
        role.min(SessionRole::Viewer)
    }
}

/// When a new API key expires: what was asked, but never later than the key it is made with
/// (`None` where neither expires). A key cannot outlive, nor be made to outlive, its maker.
pub fn key_expiry(asked: Option<u64>, maker: Option<u64>) -> Result<Option<u64>, String> {
    match (asked, maker) {
        (Some(a), Some(m)) if a > m => Err(format!(
            "a key made with a key expires no later than it (at {m})"
        )),
        (None, Some(m)) => Ok(Some(m)),
        (asked, _) => Ok(asked),
    }
}

/// An authenticated caller, as far as authorization cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: OrgRole,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// 401: no valid credentials.
    Unauthenticated,
    /// 403: the credentials lack the scope.
    MissingScope(Scope),
    /// 403: the caller's session role is too low.
    RoleTooLow(SessionRole),
    /// 404: the caller has no role on the session (its existence is not revealed).
    NotAMember,
}

/// The decision. `session_role` is the caller's role on the session in question, if any (org
/// admins act as owners everywhere).
pub fn decide(
    need: Need,
    caller: Option<&Caller>,
    session_role: Option<SessionRole>,
) -> Result<(), Denial> {
    let (scope, min_role) = match need {
        Need::Public | Need::Runner | Need::Gateway | Need::Slack | Need::Webhook => return Ok(()),
        Need::Scope(scope) => (scope, None),
        Need::Session(scope, role) => (scope, Some(role)),
    };
    let caller = caller.ok_or(Denial::Unauthenticated)?;
    if !caller.scopes.contains(&scope) || !caller.role.allows(scope) {
        return Err(Denial::MissingScope(scope));
    }
    let Some(min_role) = min_role else {
        return Ok(());
    };
    let role = if caller.role == OrgRole::Admin {
        Some(SessionRole::Owner)
    } else {
        session_role
    };
    match role {
        None => Err(Denial::NotAMember),
        Some(r) if r < min_role => Err(Denial::RoleTooLow(min_role)),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialized_forms() {
        let named = |v: serde_json::Value, s: &str| assert_eq!(v, serde_json::json!(s));
        for scope in Scope::ALL {
            named(serde_json::to_value(scope).unwrap(), scope.as_str());
        }
        for role in [
            SessionRole::Viewer,
            SessionRole::Collaborator,
            SessionRole::Owner,
        ] {
            named(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for role in [OrgRole::Admin, OrgRole::Member] {
            named(serde_json::to_value(role).unwrap(), role.as_str());
        }
    }

    fn member(scopes: &[Scope]) -> Caller {
        Caller {
            role: OrgRole::Member,
            scopes: scopes.to_vec(),
        }
    }

    #[test]
    fn a_read_only_caller_acts_as_a_viewer() {
        let reader = member(&[Scope::SessionsRead]);
        let writer = member(&[Scope::SessionsRead, Scope::SessionsWrite]);
        assert_eq!(
            acting_role(&reader, SessionRole::Owner),
            SessionRole::Viewer
        );
        assert_eq!(
            acting_role(&reader, SessionRole::Viewer),
            SessionRole::Viewer
        );
        assert_eq!(acting_role(&writer, SessionRole::Owner), SessionRole::Owner);
        assert_eq!(
            acting_role(&writer, SessionRole::Collaborator),
            SessionRole::Collaborator
        );
    }

    #[test]
    fn a_key_never_outlives_the_key_that_made_it() {
        assert_eq!(key_expiry(None, None), Ok(None));
        assert_eq!(key_expiry(Some(5), None), Ok(Some(5)));
        assert_eq!(key_expiry(None, Some(9)), Ok(Some(9)));
        assert_eq!(key_expiry(Some(9), Some(9)), Ok(Some(9)));
        assert_eq!(key_expiry(Some(5), Some(9)), Ok(Some(5)));
        assert!(key_expiry(Some(10), Some(9)).is_err());
    }

    #[test]
    fn public_and_runner_need_nothing() {
        assert_eq!(decide(Need::Public, None, None), Ok(()));
        assert_eq!(decide(Need::Runner, None, None), Ok(()));
    }

    #[test]
    fn scopes_are_enforced() {
        let need = Need::Scope(Scope::SessionsWrite);
        assert_eq!(decide(need, None, None), Err(Denial::Unauthenticated));
        assert_eq!(
            decide(need, Some(&member(&[Scope::SessionsRead])), None),
            Err(Denial::MissingScope(Scope::SessionsWrite))
        );
        assert_eq!(
            decide(need, Some(&member(&[Scope::SessionsWrite])), None),
            Ok(())
        );
    }

    #[test]
    fn a_member_never_wields_admin_even_if_a_key_claims_it() {
        let need = Need::Scope(Scope::Admin);
        assert_eq!(
            decide(need, Some(&member(&[Scope::Admin])), None),
            Err(Denial::MissingScope(Scope::Admin))
        );
        let admin = Caller {
            role: OrgRole::Admin,
            scopes: vec![Scope::Admin],
        };
        assert_eq!(decide(need, Some(&admin), None), Ok(()));
    }

    #[test]
    fn session_roles_are_ordered_and_strangers_see_nothing() {
        let write = Need::Session(Scope::SessionsWrite, SessionRole::Collaborator);
        let read = Need::Session(Scope::SessionsRead, SessionRole::Viewer);
        let c = member(&Scope::ALL);
        assert_eq!(decide(read, Some(&c), Some(SessionRole::Viewer)), Ok(()));
        assert_eq!(
            decide(write, Some(&c), Some(SessionRole::Viewer)),
            Err(Denial::RoleTooLow(SessionRole::Collaborator))
        );
        assert_eq!(
            decide(write, Some(&c), Some(SessionRole::Collaborator)),
            Ok(())
        );
        assert_eq!(decide(write, Some(&c), Some(SessionRole::Owner)), Ok(()));
        assert_eq!(decide(read, Some(&c), None), Err(Denial::NotAMember));
        let admin = Caller {
            role: OrgRole::Admin,
            scopes: Scope::ALL.to_vec(),
        };
        assert_eq!(
            decide(write, Some(&admin), None),
            Ok(()),
            "admins act as owners"
        );
    }

    #[test]
    fn scope_names_are_stable() {
        assert_eq!(
            serde_json::to_string(&Scope::SessionsRead).unwrap(),
            "\"sessions:read\""
        );
        assert_eq!(serde_json::to_string(&Scope::Admin).unwrap(), "\"admin\"");
    }
}

/// What the worker tells a session object about a viewer it hands over (in the call that opens
/// their socket, see `session_calls`), so each WebSocket message is authorized too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionAccess {
    pub role: SessionRole,
    pub scopes: Vec<Scope>,
    /// Who is watching, for the presence list other viewers see.
    #[serde(default)]
    pub login: String,
    /// The credential the socket was opened with (see [`Revocation`]).
    #[serde(default)]
    pub credential: String,
}

/// Access taken back, as the session object and the sandbox's gateway are told of it: each
/// closes the sockets (and the gateway drops the cookies) it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// A person's role on the session changed or went: everything of theirs.
    Member { login: String },
    /// A login session signed out or an API key revoked: what was opened with it alone.
    Credential { id: String },
}

impl Revocation {
    pub fn covers(&self, login: &str, credential: &str) -> bool {
        match self {
            Revocation::Member { login: l } => l == login,
            Revocation::Credential { id } => !id.is_empty() && id == credential,
        }
    }
}

impl SessionAccess {
    pub fn check(&self, need: Need) -> Result<(), Denial> {
        let caller = Caller {
            role: OrgRole::Member,
            scopes: self.scopes.clone(),
        };
        decide(need, Some(&caller), Some(self.role))
    }
}

/// What sending a prompt or an abort over a session's socket requires.
pub const STEER: Need = Need::Session(Scope::SessionsWrite, SessionRole::Collaborator);

#[cfg(test)]
mod access_tests {
    use super::*;

    #[test]
    fn a_revocation_covers_a_member_or_one_credential() {
        let member = Revocation::Member {
            login: "ada".into(),
        };
        assert!(member.covers("ada", "key:1") && member.covers("ada", ""));
        assert!(!member.covers("bob", "key:1"));
        let key = Revocation::Credential { id: "key:1".into() };
        assert!(key.covers("ada", "key:1") && key.covers("bob", "key:1"));
        assert!(!key.covers("ada", "key:2"));
        // A socket that names no credential is not everyone's.
        assert!(!Revocation::Credential { id: String::new() }.covers("ada", ""));
    }

    #[test]
    fn viewers_watch_collaborators_steer() {
        let all = Scope::ALL.to_vec();
        let viewer = SessionAccess {
            role: SessionRole::Viewer,
            scopes: all.clone(),
            login: "v".into(),
            credential: String::new(),
        };
        assert!(viewer.check(STEER).is_err());
        let collaborator = SessionAccess {
            role: SessionRole::Collaborator,
            scopes: all,
            login: "c".into(),
            credential: String::new(),
        };
        assert!(collaborator.check(STEER).is_ok());
        let read_only_owner = SessionAccess {
            role: SessionRole::Owner,
            scopes: vec![Scope::SessionsRead],
            login: "o".into(),
            credential: String::new(),
        };
        assert!(
            read_only_owner.check(STEER).is_err(),
            "a read-only key cannot steer"
        );
    }
}
