//! The route table. Every route names how it is authorized, so no route can be added without
//! deciding who may call it.

use agent_ops_protocol::ErrorCode;
use worker::{Env, Method, Request, Response, Result};

use crate::auth;
use crate::http::{error, fail, json};
use crate::{credentials_api, sessions_api};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    CreateSession,
    ListSessions,
    GetSession(String),
    DeleteSession(String),
    PostPrompt(String),
    Abort(String),
    Events(String),
    ClientSocket(String),
    RunnerSocket(String),
    ListCredentials,
    PutCredential(String),
    DeleteCredential(String),
    RotateVault,
    /// The benchmark baseline (see `echo.rs`).
    BenchEcho,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Any authenticated principal (per-session roles arrive with the account system).
    User,
    /// The session's runner, holding its per-session token; checked by the session object.
    Runner,
}

impl Route {
    pub fn parse(method: &Method, path: &str) -> Option<Route> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let route = match (method, segs.as_slice()) {
            (Method::Get, ["health"]) => Route::Health,
            (Method::Post, ["api", "sessions"]) => Route::CreateSession,
            (Method::Get, ["api", "sessions"]) => Route::ListSessions,
            (Method::Get, ["api", "sessions", id]) => Route::GetSession(id.to_string()),
            (Method::Delete, ["api", "sessions", id]) => Route::DeleteSession(id.to_string()),
            (Method::Post, ["api", "sessions", id, "prompts"]) => Route::PostPrompt(id.to_string()),
            (Method::Post, ["api", "sessions", id, "abort"]) => Route::Abort(id.to_string()),
            (Method::Get, ["api", "sessions", id, "events"]) => Route::Events(id.to_string()),
            (Method::Get, ["api", "sessions", id, "ws"]) => Route::ClientSocket(id.to_string()),
            (Method::Get, ["api", "sessions", id, "runner"]) => Route::RunnerSocket(id.to_string()),
            (Method::Get, ["api", "credentials"]) => Route::ListCredentials,
            (Method::Put, ["api", "credentials", kind]) => Route::PutCredential(kind.to_string()),
            (Method::Delete, ["api", "credentials", kind]) => {
                Route::DeleteCredential(kind.to_string())
            }
            (Method::Post, ["api", "admin", "vault", "rotate"]) => Route::RotateVault,
            (Method::Get, ["api", "bench", "echo"]) => Route::BenchEcho,
            _ => return None,
        };
        Some(route)
    }

    pub fn access(&self) -> Access {
        match self {
            Route::Health => Access::Public,
            Route::RunnerSocket(_) => Access::Runner,
            Route::CreateSession
            | Route::ListSessions
            | Route::GetSession(_)
            | Route::DeleteSession(_)
            | Route::PostPrompt(_)
            | Route::Abort(_)
            | Route::Events(_)
            | Route::ClientSocket(_)
            | Route::ListCredentials
            | Route::PutCredential(_)
            | Route::DeleteCredential(_)
            | Route::RotateVault
            | Route::BenchEcho => Access::User,
        }
    }
}

pub async fn dispatch(req: Request, env: Env) -> Result<Response> {
    let path = req.path();
    let Some(route) = Route::parse(&req.method(), &path) else {
        return fail(
            ErrorCode::NotFound,
            format!("no route for {} {path}", req.method()),
        );
    };
    let principal = match route.access() {
        Access::Public | Access::Runner => None,
        Access::User => match auth::authenticate(&req, &env) {
            Ok(p) => Some(p),
            Err(e) => return error(&e),
        },
    };
    let user = || principal.clone().expect("authenticated above");
    match route {
        Route::Health => json(
            200,
            &serde_json::json!({"ok": true, "service": "agent-ops"}),
        ),
        Route::CreateSession => sessions_api::create(req, &env, &user()).await,
        Route::ListSessions => sessions_api::list(&env, &user()).await,
        Route::GetSession(id) => sessions_api::get(&env, &user(), &id).await,
        Route::DeleteSession(id) => sessions_api::delete(&env, &user(), &id).await,
        Route::PostPrompt(id) | Route::Abort(id) | Route::Events(id) | Route::ClientSocket(id) => {
            sessions_api::forward(req, &env, &user(), &id).await
        }
        Route::RunnerSocket(id) => sessions_api::forward_runner(req, &env, &id).await,
        Route::ListCredentials => credentials_api::list(&env, &user()).await,
        Route::PutCredential(kind) => credentials_api::put(req, &env, &user(), &kind).await,
        Route::DeleteCredential(kind) => credentials_api::delete(&env, &user(), &kind).await,
        Route::RotateVault => credentials_api::rotate(&env).await,
        Route::BenchEcho => {
            if env
                .var("ENABLE_BENCH_ECHO")
                .map(|v| v.to_string() == "1")
                .unwrap_or(false)
            {
                env.durable_object("ECHO")?
                    .id_from_name("echo")?
                    .get_stub()?
                    .fetch_with_request(req)
                    .await
            } else {
                fail(ErrorCode::NotFound, "the benchmark echo is not enabled")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes_and_rejects_unknown() {
        assert_eq!(Route::parse(&Method::Get, "/health"), Some(Route::Health));
        assert_eq!(
            Route::parse(&Method::Post, "/api/sessions/abc/prompts"),
            Some(Route::PostPrompt("abc".into()))
        );
        assert_eq!(
            Route::parse(&Method::Put, "/api/sessions/abc/prompts"),
            None
        );
        assert_eq!(Route::parse(&Method::Get, "/api/sessions/a/b/c"), None);
    }

    #[test]
    fn only_health_is_public_and_only_runner_socket_is_runner() {
        let all = [
            Route::Health,
            Route::CreateSession,
            Route::ListSessions,
            Route::GetSession("x".into()),
            Route::DeleteSession("x".into()),
            Route::PostPrompt("x".into()),
            Route::Abort("x".into()),
            Route::Events("x".into()),
            Route::ClientSocket("x".into()),
            Route::RunnerSocket("x".into()),
            Route::ListCredentials,
            Route::PutCredential("x".into()),
            Route::DeleteCredential("x".into()),
            Route::RotateVault,
            Route::BenchEcho,
        ];
        for r in all {
            let expected = match r {
                Route::Health => Access::Public,
                Route::RunnerSocket(_) => Access::Runner,
                _ => Access::User,
            };
            assert_eq!(r.access(), expected, "{r:?}");
        }
    }
}
