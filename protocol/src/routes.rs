//! The route table: every route of the public API, with what it requires. The worker dispatches
//! from it and the authorization matrix test is generated from it, so a route cannot exist
//! without a rule (adding a `RouteId` does not compile until `spec` gives it one).

use crate::access::{Need, Scope, SessionRole};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    Health,
    OpenApi,
    AuthProviders,
    DevLogin,
    GithubStart,
    GithubCallback,
    Logout,
    Me,
    CreateSession,
    ListSessions,
    GetSession,
    DeleteSession,
    PostPrompt,
    CancelPrompt,
    Abort,
    Events,
    ClientSocket,
    RunnerSocket,
    RunnerModel,
    AddMember,
    CreateShareLink,
    RedeemShareLink,
    PanelToken,
    RemoveMember,
    RevokeShareLink,
    SandboxGet,
    SandboxPost,
    ListKeys,
    CreateKey,
    RevokeKey,
    ListCredentials,
    PutCredential,
    DeleteCredential,
    ListOrgCredentials,
    PutOrgCredential,
    DeleteOrgCredential,
    RotateVault,
    ListAudit,
    CreateInvite,
    AcceptInvite,
    BenchEcho,
}

pub struct RouteSpec {
    pub method: &'static str,
    /// `{name}` segments are parameters; a last `{*name}` takes the rest of the path, if any.
    pub path: &'static str,
    pub need: Need,
}

impl RouteSpec {
    /// The path as OpenAPI writes it (no tail marker).
    pub fn doc_path(&self) -> String {
        self.path.replace("{*", "{")
    }
}

impl RouteId {
    pub const ALL: [RouteId; 41] = [
        RouteId::Health,
        RouteId::OpenApi,
        RouteId::AuthProviders,
        RouteId::DevLogin,
        RouteId::GithubStart,
        RouteId::GithubCallback,
        RouteId::Logout,
        RouteId::Me,
        RouteId::CreateSession,
        RouteId::ListSessions,
        RouteId::GetSession,
        RouteId::DeleteSession,
        RouteId::PostPrompt,
        RouteId::CancelPrompt,
        RouteId::Abort,
        RouteId::Events,
        RouteId::ClientSocket,
        RouteId::RunnerSocket,
        RouteId::RunnerModel,
        RouteId::AddMember,
        RouteId::CreateShareLink,
        RouteId::RedeemShareLink,
        RouteId::PanelToken,
        RouteId::RemoveMember,
        RouteId::RevokeShareLink,
        RouteId::SandboxGet,
        RouteId::SandboxPost,
        RouteId::ListKeys,
        RouteId::CreateKey,
        RouteId::RevokeKey,
        RouteId::ListCredentials,
        RouteId::PutCredential,
        RouteId::DeleteCredential,
        RouteId::ListOrgCredentials,
        RouteId::PutOrgCredential,
        RouteId::DeleteOrgCredential,
        RouteId::RotateVault,
        RouteId::ListAudit,
        RouteId::CreateInvite,
        RouteId::AcceptInvite,
        RouteId::BenchEcho,
    ];

    pub fn spec(self) -> RouteSpec {
        use Scope::*;
        use SessionRole::*;
        let (method, path, need) = match self {
            RouteId::Health => ("GET", "/health", Need::Public),
            RouteId::OpenApi => ("GET", "/api/openapi.json", Need::Public),
            RouteId::AuthProviders => ("GET", "/auth/providers", Need::Public),
            RouteId::DevLogin => ("POST", "/auth/dev/login", Need::Public),
            RouteId::GithubStart => ("GET", "/auth/github", Need::Public),
            RouteId::GithubCallback => ("GET", "/auth/github/callback", Need::Public),
            RouteId::Logout => ("POST", "/auth/logout", Need::Scope(SessionsRead)),
            RouteId::Me => ("GET", "/api/me", Need::Scope(SessionsRead)),
            RouteId::CreateSession => ("POST", "/api/sessions", Need::Scope(SessionsWrite)),
            RouteId::ListSessions => ("GET", "/api/sessions", Need::Scope(SessionsRead)),
            RouteId::GetSession => (
                "GET",
                "/api/sessions/{id}",
                Need::Session(SessionsRead, Viewer),
            ),
            RouteId::DeleteSession => (
                "DELETE",
                "/api/sessions/{id}",
                Need::Session(SessionsWrite, Owner),
            ),
            RouteId::PostPrompt => (
                "POST",
                "/api/sessions/{id}/prompts",
                Need::Session(SessionsWrite, Collaborator),
            ),
            RouteId::CancelPrompt => (
                "DELETE",
                "/api/sessions/{id}/prompts/{prompt_id}",
                Need::Session(SessionsWrite, Collaborator),
            ),
            RouteId::Abort => (
                "POST",
                "/api/sessions/{id}/abort",
                Need::Session(SessionsWrite, Collaborator),
            ),
            RouteId::Events => (
                "GET",
                "/api/sessions/{id}/events",
                Need::Session(SessionsRead, Viewer),
            ),
            RouteId::ClientSocket => (
                "GET",
                "/api/sessions/{id}/ws",
                Need::Session(SessionsRead, Viewer),
            ),
            RouteId::RunnerSocket => ("GET", "/api/sessions/{id}/runner", Need::Runner),
            // The agent's model calls, which the Worker signs with the model's key: the key
            // never enters the sandbox.
            RouteId::RunnerModel => ("POST", "/api/sessions/{id}/model/{*path}", Need::Runner),
            RouteId::AddMember => (
                "POST",
                "/api/sessions/{id}/members",
                Need::Session(SessionsWrite, Owner),
            ),
            // Access taken back takes effect at once: the person's open sockets are closed.
            RouteId::RemoveMember => (
                "DELETE",
                "/api/sessions/{id}/members/{login}",
                Need::Session(SessionsWrite, Owner),
            ),
            RouteId::RevokeShareLink => (
                "DELETE",
                "/api/sessions/{id}/share-links/{link_id}",
                Need::Session(SessionsWrite, Owner),
            ),
            RouteId::CreateShareLink => (
                "POST",
                "/api/sessions/{id}/share-links",
                Need::Session(SessionsWrite, Owner),
            ),
            RouteId::RedeemShareLink => {
                ("POST", "/api/share-links/redeem", Need::Scope(SessionsRead))
            }
            RouteId::PanelToken => (
                "POST",
                "/api/sessions/{id}/panel-token",
                Need::Session(SessionsRead, Viewer),
            ),
            // The sandbox's panels, proxied to its gateway on the session's own origin.
            RouteId::SandboxGet => ("GET", "/sandbox/{id}/{*rest}", Need::Gateway),
            RouteId::SandboxPost => ("POST", "/sandbox/{id}/{*rest}", Need::Gateway),
            RouteId::ListKeys => ("GET", "/api/keys", Need::Scope(SessionsRead)),
            RouteId::CreateKey => ("POST", "/api/keys", Need::Scope(SessionsWrite)),
            RouteId::RevokeKey => ("DELETE", "/api/keys/{id}", Need::Scope(SessionsWrite)),
            RouteId::ListCredentials => ("GET", "/api/credentials", Need::Scope(SessionsRead)),
            RouteId::PutCredential => {
                ("PUT", "/api/credentials/{kind}", Need::Scope(SessionsWrite))
            }
            RouteId::DeleteCredential => (
                "DELETE",
                "/api/credentials/{kind}",
                Need::Scope(SessionsWrite),
            ),
            RouteId::ListOrgCredentials => ("GET", "/api/admin/credentials", Need::Scope(Admin)),
            RouteId::PutOrgCredential => {
                ("PUT", "/api/admin/credentials/{kind}", Need::Scope(Admin))
            }
            RouteId::DeleteOrgCredential => (
                "DELETE",
                "/api/admin/credentials/{kind}",
                Need::Scope(Admin),
            ),
            RouteId::RotateVault => ("POST", "/api/admin/vault/rotate", Need::Scope(Admin)),
            RouteId::ListAudit => ("GET", "/api/admin/audit", Need::Scope(Admin)),
            RouteId::CreateInvite => ("POST", "/api/admin/invites", Need::Scope(Admin)),
            RouteId::AcceptInvite => ("POST", "/api/invites/accept", Need::Scope(SessionsRead)),
            RouteId::BenchEcho => ("GET", "/api/bench/echo", Need::Scope(Admin)),
        };
        RouteSpec { method, path, need }
    }
}

/// The route for a request, with its path parameters in order.
pub fn match_route(method: &str, path: &str) -> Option<(RouteId, Vec<String>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    RouteId::ALL.into_iter().find_map(|id| {
        let spec = id.spec();
        if !spec.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let pattern: Vec<&str> = spec.path.split('/').collect();
        let tail = pattern.last().is_some_and(|p| p.starts_with("{*"));
        let fixed = if tail {
            pattern.len() - 1
        } else {
            pattern.len()
        };
        if segments.len() < fixed || (!tail && segments.len() != fixed) {
            return None;
        }
        let mut params = Vec::new();
        for (p, s) in pattern[..fixed].iter().zip(&segments) {
            if p.starts_with('{') {
                if s.is_empty() {
                    return None;
                }
                params.push((*s).to_owned());
            } else if p != s {
                return None;
            }
        }
        if tail {
            params.push(segments[fixed..].join("/"));
        }
        Some((id, params))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once_and_matches_itself() {
        for id in RouteId::ALL {
            let spec = id.spec();
            let path = spec
                .path
                .replace("{id}", "abc")
                .replace("{kind}", "github_token");
            assert_eq!(
                match_route(spec.method, &path).map(|m| m.0),
                Some(id),
                "{}",
                spec.path
            );
        }
        let mut seen = std::collections::HashSet::new();
        assert!(RouteId::ALL
            .iter()
            .all(|id| seen.insert((id.spec().method, id.spec().path))));
    }

    #[test]
    fn parameters_and_misses() {
        assert_eq!(
            match_route("POST", "/api/sessions/s1/prompts"),
            Some((RouteId::PostPrompt, vec!["s1".to_owned()]))
        );
        assert_eq!(match_route("PUT", "/api/sessions/s1/prompts"), None);
        assert_eq!(match_route("GET", "/api/sessions/s1/nope"), None);
        assert_eq!(match_route("GET", "/api/sessions//events"), None);
        assert_eq!(
            match_route("GET", "/sandbox/s1/vnc/app/ui.js"),
            Some((
                RouteId::SandboxGet,
                vec!["s1".to_owned(), "vnc/app/ui.js".to_owned()]
            ))
        );
        assert_eq!(
            match_route("GET", "/sandbox/s1"),
            Some((RouteId::SandboxGet, vec!["s1".to_owned(), String::new()]))
        );
        assert_eq!(match_route("GET", "/sandbox"), None);
    }
}
