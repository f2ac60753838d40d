//! The route table: every route of the public API, with what it requires. The worker dispatches
//! from it and the authorization matrix test is generated from it, so a route cannot exist
//! without a rule (a route is one line of `route_table!`: its id, method, path and rule).

use crate::access::{Need, Scope, SessionRole};

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

/// Declares the route table once: the `RouteId` enum, `RouteId::ALL` (in the order requests are
/// matched) and each route's `spec`, so no route can be listed in one and left out of another.
macro_rules! route_table {
    ($($id:ident => ($method:literal, $path:literal, $need:expr),)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RouteId {
            $($id,)*
        }

        impl RouteId {
            /// Every route, in the order a request is matched against them.
            pub const ALL: &'static [RouteId] = &[$(RouteId::$id,)*];

            pub fn spec(self) -> RouteSpec {
                use Scope::*;
                use SessionRole::*;
                let (method, path, need) = match self {
                    $(RouteId::$id => ($method, $path, $need),)*
                };
                RouteSpec { method, path, need }
            }
        }
    };
}

route_table! {
    Health => ("GET", "/health", Need::Public),
    OpenApi => ("GET", "/api/openapi.json", Need::Public),
    AuthProviders => ("GET", "/auth/providers", Need::Public),
    DevLogin => ("POST", "/auth/dev/login", Need::Public),
    GithubStart => ("GET", "/auth/github", Need::Public),
    GithubCallback => ("GET", "/auth/github/callback", Need::Public),
    Logout => ("POST", "/auth/logout", Need::Scope(SessionsRead)),
    Me => ("GET", "/api/me", Need::Scope(SessionsRead)),
    CreateSession => ("POST", "/api/sessions", Need::Scope(SessionsWrite)),
    ListSessions => ("GET", "/api/sessions", Need::Scope(SessionsRead)),
    GetSession => ("GET", "/api/sessions/{id}", Need::Session(SessionsRead, Viewer)),
    DeleteSession => ("DELETE", "/api/sessions/{id}", Need::Session(SessionsWrite, Owner)),
    PostPrompt => ("POST", "/api/sessions/{id}/prompts", Need::Session(SessionsWrite, Collaborator)),
    CancelPrompt => ("DELETE", "/api/sessions/{id}/prompts/{prompt_id}", Need::Session(SessionsWrite, Collaborator)),
    Abort => ("POST", "/api/sessions/{id}/abort", Need::Session(SessionsWrite, Collaborator)),
    Events => ("GET", "/api/sessions/{id}/events", Need::Session(SessionsRead, Viewer)),
    ClientSocket => ("GET", "/api/sessions/{id}/ws", Need::Session(SessionsRead, Viewer)),
    RunnerSocket => ("GET", "/api/sessions/{id}/runner", Need::Runner),
    // The agent's model calls, which the Worker signs with the model's key: the key
    // never enters the sandbox.
    RunnerModel => ("POST", "/api/sessions/{id}/model/{*path}", Need::Runner),
    AddMember => ("POST", "/api/sessions/{id}/members", Need::Session(SessionsWrite, Owner)),
    CreateShareLink => ("POST", "/api/sessions/{id}/share-links", Need::Session(SessionsWrite, Owner)),
    RedeemShareLink => ("POST", "/api/share-links/redeem", Need::Scope(SessionsRead)),
    PanelToken => ("POST", "/api/sessions/{id}/panel-token", Need::Session(SessionsRead, Viewer)),
    // Access taken back takes effect at once: the person's open sockets are closed.
    RemoveMember => ("DELETE", "/api/sessions/{id}/members/{login}", Need::Session(SessionsWrite, Owner)),
    RevokeShareLink => ("DELETE", "/api/sessions/{id}/share-links/{link_id}", Need::Session(SessionsWrite, Owner)),
    // The sandbox's panels, proxied to its gateway on the session's own origin.
    SandboxGet => ("GET", "/sandbox/{id}/{*rest}", Need::Gateway),
    SandboxPost => ("POST", "/sandbox/{id}/{*rest}", Need::Gateway),
    ListKeys => ("GET", "/api/keys", Need::Scope(SessionsRead)),
    CreateKey => ("POST", "/api/keys", Need::Scope(SessionsWrite)),
    RevokeKey => ("DELETE", "/api/keys/{id}", Need::Scope(SessionsWrite)),
    ListCredentials => ("GET", "/api/credentials", Need::Scope(SessionsRead)),
    PutCredential => ("PUT", "/api/credentials/{kind}", Need::Scope(SessionsWrite)),
    DeleteCredential => ("DELETE", "/api/credentials/{kind}", Need::Scope(SessionsWrite)),
    ListOrgCredentials => ("GET", "/api/admin/credentials", Need::Scope(Admin)),
    PutOrgCredential => ("PUT", "/api/admin/credentials/{kind}", Need::Scope(Admin)),
    DeleteOrgCredential => ("DELETE", "/api/admin/credentials/{kind}", Need::Scope(Admin)),
    RotateVault => ("POST", "/api/admin/vault/rotate", Need::Scope(Admin)),
    ListAudit => ("GET", "/api/admin/audit", Need::Scope(Admin)),
    CreateInvite => ("POST", "/api/admin/invites", Need::Scope(Admin)),
    AcceptInvite => ("POST", "/api/invites/accept", Need::Scope(SessionsRead)),
    BenchEcho => ("GET", "/api/bench/echo", Need::Scope(Admin)),
}

/// The route for a request, with its path parameters in order.
pub fn match_route(method: &str, path: &str) -> Option<(RouteId, Vec<String>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    RouteId::ALL.iter().copied().find_map(|id| {
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
        for &id in RouteId::ALL {
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
