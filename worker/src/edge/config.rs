//! The deployment's settings: `[vars]` and secrets, an empty value the same as none.

use worker::Env;

pub fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
}

pub fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
}

/// Whether this is a development deployment (`ENVIRONMENT=development`, as under `make dev`):
/// development sign-in, and the scheduler run at a time of the caller's choosing.
pub fn is_development(env: &Env) -> bool {
    var(env, "ENVIRONMENT").as_deref() == Some("development")
}
