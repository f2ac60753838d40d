//! The route table: every route of the public API, with what it requires. The worker dispatches
//! from it and the authorization matrix test is generated from it, so a route cannot exist
//! without a rule (a route is one line of `route_table!`: its id, method, path and rule).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::access::{Need, Scope, SessionRole};

pub struct RouteSpec {
    pub method: &'static str,
    /// `{name}` segments are parameters; a last `{*name}` takes the rest of the path, if any.
    pub path: &'static str,
    pub need: Need,
    /// The statuses a success is answered with, the usual one first.
    pub statuses: &'static [u16],
}

impl RouteSpec {
    /// The path as OpenAPI writes it (no tail marker).
    pub fn doc_path(&self) -> String {
        self.path.replace("{*", "{")
    }

    /// The path with its parameters filled in, in order.
    pub fn path_with(&self, params: &[&str]) -> String {
        let mut params = params.iter();
        self.path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    params.next().copied().unwrap_or_default()
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// What a route's body, query or answer is: a JSON type (with its schema when the `schema`
/// feature writes the OpenAPI document).
#[cfg(not(feature = "schema"))]
pub trait Body: Serialize + DeserializeOwned + 'static {}
#[cfg(not(feature = "schema"))]
impl<T: Serialize + DeserializeOwned + 'static> Body for T {}
#[cfg(feature = "schema")]
pub trait Body: Serialize + DeserializeOwned + schemars::JsonSchema + 'static {}
#[cfg(feature = "schema")]
impl<T: Serialize + DeserializeOwned + schemars::JsonSchema + 'static> Body for T {}

/// A route and the types it takes and answers: `endpoint::CreateSession` takes
/// `api::CreateSession` and answers `api::SessionInfo`. The Worker reads and answers through
/// these, and the client and the tests call through them, so no side can drift from another.
pub trait Endpoint {
    const ROUTE: RouteId;
    /// The request body (`NoBody` when there is none).
    type Req: Body;
    /// The query string (`NoBody` when there is none).
    type Query: Body;
    /// The success body (`NoContent` for a 204, `NotJson` for a redirect, an upgrade or what a
    /// sandbox answers).
    type Resp: Body;
}

/// Declares the route table once: the `RouteId` enum, `RouteId::ALL` (in the order requests are
/// matched), each route's `spec`, and its `endpoint` type with what it takes and answers, so no
/// route can be listed in one and left out of another.
macro_rules! route_table {
    (@query $query:ident) => { crate::api::$query };
    (@query) => { crate::api::NoBody };
    ($($(#[$only:meta])* $id:ident => ($method:literal, $path:literal, $need:expr)
        $req:ident $(? $query:ident)? => $($status:literal)|+ $resp:ident,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RouteId {
            $($(#[$only])* $id,)*
        }

        impl RouteId {
            /// Every route, in the order a request is matched against them.
            pub const ALL: &'static [RouteId] = &[$($(#[$only])* RouteId::$id,)*];

            pub fn spec(self) -> RouteSpec {
                use Scope::*;
                use SessionRole::*;
                let (method, path, need, statuses): (_, _, _, &'static [u16]) = match self {
                    $($(#[$only])* RouteId::$id => ($method, $path, $need, &[$($status),+]),)*
                };
                RouteSpec { method, path, need, statuses }
            }
        }

        /// One type per route, naming what it takes and answers (see [`Endpoint`]).
        pub mod endpoint {
            $(
                $(#[$only])*
                pub struct $id;
                $(#[$only])*
                impl super::Endpoint for $id {
                    const ROUTE: super::RouteId = super::RouteId::$id;
                    type Req = crate::api::$req;
                    type Query = route_table!(@query $($query)?);
                    type Resp = crate::api::$resp;
                }
            )*
        }

        /// Calls `f` with every route's endpoint type, in table order.
        #[cfg(feature = "schema")]
        pub fn each_endpoint(f: &mut impl EndpointVisitor) {
            $($(#[$only])* f.visit::<endpoint::$id>();)*
        }
    };
}

/// Visits each route's endpoint type (the OpenAPI document is written this way).
#[cfg(feature = "schema")]
pub trait EndpointVisitor {
    fn visit<E: Endpoint>(&mut self);
}

route_table! {
    Health => ("GET", "/health", Need::Public) NoBody => 200 Health,
    OpenApi => ("GET", "/api/openapi.json", Need::Public) NoBody => 200 OpenApiDocument,
    AuthProviders => ("GET", "/auth/providers", Need::Public) NoBody => 200 SignInProviders,
    DevLogin => ("POST", "/auth/dev/login", Need::Public) DevLogin => 200 SignedIn,
    GithubStart => ("GET", "/auth/github", Need::Public) NoBody => 302 NotJson,
    GithubCallback => ("GET", "/auth/github/callback", Need::Public) NoBody ? OauthCallback => 302 NotJson,
    Logout => ("POST", "/auth/logout", Need::Scope(SessionsRead)) NoBody => 204 NoContent,
    Me => ("GET", "/api/me", Need::Scope(SessionsRead)) NoBody => 200 Me,
    CreateSession => ("POST", "/api/sessions", Need::Scope(SessionsWrite)) CreateSession => 201 SessionInfo,
    ListSessions => ("GET", "/api/sessions", Need::Scope(SessionsRead)) NoBody => 200 SessionList,
    GetSession => ("GET", "/api/sessions/{id}", Need::Session(SessionsRead, Viewer)) NoBody => 200 SessionInfo,
    DeleteSession => ("DELETE", "/api/sessions/{id}", Need::Session(SessionsWrite, Owner)) NoBody => 200 SessionInfo,
    // 200 when the same `client_request_id` was accepted before (and nothing runs twice).
    PostPrompt => ("POST", "/api/sessions/{id}/prompts", Need::Session(SessionsWrite, Collaborator)) PostPrompt => 202 | 200 PromptAccepted,
    CancelPrompt => ("DELETE", "/api/sessions/{id}/prompts/{prompt_id}", Need::Session(SessionsWrite, Collaborator)) NoBody => 200 PromptCancelled,
    Abort => ("POST", "/api/sessions/{id}/abort", Need::Session(SessionsWrite, Collaborator)) NoBody => 202 Aborting,
    Events => ("GET", "/api/sessions/{id}/events", Need::Session(SessionsRead, Viewer)) NoBody ? EventsQuery => 200 EventPage,
    ClientSocket => ("GET", "/api/sessions/{id}/ws", Need::Session(SessionsRead, Viewer)) NoBody => 101 NotJson,
    RunnerSocket => ("GET", "/api/sessions/{id}/runner", Need::Runner) NoBody => 101 NotJson,
    // The agent's model calls, which the Worker signs with the model's key: the key
    // never enters the sandbox.
    RunnerModel => ("POST", "/api/sessions/{id}/model/{*path}", Need::Runner) NotJson => 200 NotJson,
    AddMember => ("POST", "/api/sessions/{id}/members", Need::Session(SessionsWrite, Owner)) AddMember => 201 Membership,
    CreateShareLink => ("POST", "/api/sessions/{id}/share-links", Need::Session(SessionsWrite, Owner)) NewShareLink => 201 ShareLinkCreated,
    RedeemShareLink => ("POST", "/api/share-links/redeem", Need::Scope(SessionsRead)) GrantToken => 200 Joined,
    PanelToken => ("POST", "/api/sessions/{id}/panel-token", Need::Session(SessionsRead, Viewer)) PanelTokenRequest => 201 PanelToken,
    // Access taken back takes effect at once: the person's open sockets are closed.
    RemoveMember => ("DELETE", "/api/sessions/{id}/members/{login}", Need::Session(SessionsWrite, Owner)) NoBody => 204 NoContent,
    RevokeShareLink => ("DELETE", "/api/sessions/{id}/share-links/{link_id}", Need::Session(SessionsWrite, Owner)) NoBody => 204 NoContent,
    // The sandbox's panels, proxied to its gateway on the session's own origin.
    SandboxGet => ("GET", "/sandbox/{id}/{*rest}", Need::Gateway) NoBody => 200 NotJson,
    SandboxPost => ("POST", "/sandbox/{id}/{*rest}", Need::Gateway) NotJson => 200 NotJson,
    // Slack: slash commands, events and interactivity, each signed by Slack. A signed request is
    // answered 200 whatever it asks (Slack retries anything else); what went wrong is said in
    // the answer, in Slack.
    SlackCommands => ("POST", "/slack/commands", Need::Slack) NotJson => 200 SlackCommandReply,
    SlackEvents => ("POST", "/slack/events", Need::Slack) NotJson => 200 SlackEventAck,
    SlackInteractivity => ("POST", "/slack/interactivity", Need::Slack) NotJson => 200 NoContent,
    // Installing the app in a workspace: an administrator starts it, Slack sends the browser
    // back with a code.
    SlackInstall => ("GET", "/slack/install", Need::Scope(Admin)) NoBody => 302 NotJson,
    SlackOauthCallback => ("GET", "/slack/oauth/callback", Need::Public) NoBody ? OauthCallback => 302 NotJson,
    SlackWorkspaces => ("GET", "/api/slack/workspaces", Need::Scope(Admin)) NoBody => 200 SlackWorkspaces,
    // Where in a workspace the app serves: the listed channels (and DMs) only, once any are.
    SlackChannels => ("GET", "/api/slack/workspaces/{team}/channels", Need::Scope(Admin)) NoBody => 200 SlackChannels,
    SetSlackChannels => ("PUT", "/api/slack/workspaces/{team}/channels", Need::Scope(Admin)) SlackChannels => 200 SlackChannels,
    LinkSlack => ("POST", "/api/slack/link", Need::Scope(SessionsWrite)) LinkSlack => 200 SlackIdentity,
    SlackIdentities => ("GET", "/api/slack/identities", Need::Scope(SessionsRead)) NoBody => 200 SlackIdentities,
    UnlinkSlack => ("DELETE", "/api/slack/identities/{team}/{slack_user}", Need::Scope(SessionsWrite)) NoBody => 204 NoContent,
    // Workflows: saved ways of starting a session, run by a webhook, a schedule or by hand.
    ListWorkflows => ("GET", "/api/workflows", Need::Scope(WorkflowsRead)) NoBody => 200 WorkflowList,
    CreateWorkflow => ("POST", "/api/workflows", Need::Scope(WorkflowsWrite)) WorkflowSpec => 201 Workflow,
    PreviewWorkflow => ("POST", "/api/workflows/preview", Need::Scope(WorkflowsRead)) PreviewRequest => 200 Preview,
    GetWorkflow => ("GET", "/api/workflows/{id}", Need::Scope(WorkflowsRead)) NoBody => 200 Workflow,
    UpdateWorkflow => ("PUT", "/api/workflows/{id}", Need::Scope(WorkflowsWrite)) WorkflowSpec => 200 Workflow,
    DeleteWorkflow => ("DELETE", "/api/workflows/{id}", Need::Scope(WorkflowsWrite)) NoBody => 204 NoContent,
    ListTriggers => ("GET", "/api/workflows/{id}/triggers", Need::Scope(WorkflowsRead)) NoBody => 200 TriggerList,
    // A webhook's secret is in this answer only.
    CreateTrigger => ("POST", "/api/workflows/{id}/triggers", Need::Scope(WorkflowsWrite)) TriggerSpec => 201 TriggerCreated,
    DeleteTrigger => ("DELETE", "/api/workflows/{id}/triggers/{trigger_id}", Need::Scope(WorkflowsWrite)) NoBody => 204 NoContent,
    // 200 when the same `idempotency_key` ran before (and nothing starts twice).
    RunWorkflow => ("POST", "/api/workflows/{id}/run", Need::Scope(WorkflowsRun)) RunWorkflow => 202 | 200 ExecutionAccepted,
    ListExecutions => ("GET", "/api/workflows/{id}/executions", Need::Scope(WorkflowsRead)) NoBody => 200 ExecutionList,
    GetExecution => ("GET", "/api/executions/{id}", Need::Scope(WorkflowsRead)) NoBody => 200 Execution,
    // The scheduler's minute, for deployments without Cloudflare's cron trigger (and tests).
    SchedulerTick => ("POST", "/api/admin/scheduler/tick", Need::Scope(Admin)) SchedulerTick => 200 SchedulerTicked,
    GetWorkflowSettings => ("GET", "/api/admin/workflows/settings", Need::Scope(Admin)) NoBody => 200 WorkflowSettings,
    PutWorkflowSettings => ("PUT", "/api/admin/workflows/settings", Need::Scope(Admin)) WorkflowSettings => 200 WorkflowSettings,
    // A delivery is answered once its execution is committed: 202 new, 200 the same again.
    WebhookDelivery => ("POST", "/hooks/{trigger}", Need::Webhook) NotJson => 202 | 200 ExecutionAccepted,
    ListKeys => ("GET", "/api/keys", Need::Scope(SessionsRead)) NoBody => 200 KeyList,
    CreateKey => ("POST", "/api/keys", Need::Scope(SessionsWrite)) NewKey => 201 KeyCreated,
    RevokeKey => ("DELETE", "/api/keys/{id}", Need::Scope(SessionsWrite)) NoBody => 204 NoContent,
    ListCredentials => ("GET", "/api/credentials", Need::Scope(SessionsRead)) NoBody => 200 CredentialList,
    PutCredential => ("PUT", "/api/credentials/{kind}", Need::Scope(SessionsWrite)) PutCredential => 200 CredentialInfo,
    DeleteCredential => ("DELETE", "/api/credentials/{kind}", Need::Scope(SessionsWrite)) NoBody => 204 NoContent,
    ListOrgCredentials => ("GET", "/api/admin/credentials", Need::Scope(Admin)) NoBody => 200 CredentialList,
    PutOrgCredential => ("PUT", "/api/admin/credentials/{kind}", Need::Scope(Admin)) PutCredential => 200 CredentialInfo,
    DeleteOrgCredential => ("DELETE", "/api/admin/credentials/{kind}", Need::Scope(Admin)) NoBody => 204 NoContent,
    RotateVault => ("POST", "/api/admin/vault/rotate", Need::Scope(Admin)) NoBody => 200 VaultRotation,
    ListAudit => ("GET", "/api/admin/audit", Need::Scope(Admin)) NoBody => 200 AuditLog,
    CreateInvite => ("POST", "/api/admin/invites", Need::Scope(Admin)) NewInvite => 201 InviteCreated,
    AcceptInvite => ("POST", "/api/invites/accept", Need::Scope(SessionsRead)) GrantToken => 200 InviteAccepted,
    // The benchmarks' baseline, in their build only (`--features bench`): never in production.
    #[cfg(feature = "bench")]
    BenchEcho => ("GET", "/api/bench/echo", Need::Scope(Admin)) NoBody => 101 NotJson,
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
