//! Authentication, behind one seam: `authenticate` turns a request into a `Principal` or refuses
//! it. Today the only credential is the bootstrap admin API key from configuration; the account
//! system plugs in here without touching the routes.

use agent_ops_protocol::signing::{ct_eq, hash_token};
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Request};

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
}

/// Browsers cannot set headers on a WebSocket, so the token may also arrive as the
/// subprotocol `bearer.<token>` (never in the URL, where it would be logged).
pub fn bearer_token(req: &Request) -> Option<String> {
    let headers = req.headers();
    if let Ok(Some(value)) = headers.get("authorization") {
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    if let Ok(Some(protocols)) = headers.get("sec-websocket-protocol") {
        return protocols
            .split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("bearer."))
            .map(str::to_owned);
    }
    None
}

pub fn authenticate(req: &Request, env: &Env) -> Result<Principal, ApiError> {
    let token = bearer_token(req)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "missing bearer token"))?;
    let admin_key = env
        .secret("ADMIN_API_KEY")
        .map(|s| s.to_string())
        .map_err(|_| ApiError::new(ErrorCode::Internal, "ADMIN_API_KEY is not configured"))?;
    // Compare hashes so the comparison is constant-time and independent of the key's length.
    if ct_eq(
        hash_token(&token).as_bytes(),
        hash_token(&admin_key).as_bytes(),
    ) {
        Ok(Principal {
            user_id: "admin".into(),
        })
    } else {
        Err(ApiError::new(
            ErrorCode::Unauthorized,
            "invalid credentials",
        ))
    }
}
