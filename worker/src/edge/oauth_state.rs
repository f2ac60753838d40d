//! The `state` of an OAuth flow the app starts (GitHub sign-in, installing the Slack app): signed
//! with `AUTH_SECRET`, bound to the browser that started the flow (it carries the hash of a nonce
//! kept in that browser's HttpOnly cookie), expiring after ten minutes and accepted once.

use agent_ops_protocol::signing::{ct_eq, hmac_hex, sha256_hex};
use agent_ops_protocol::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use worker::{Env, Request};

use crate::db::{oauth_states, Db};
use crate::edge::http::{now_ms, random_hex, random_id, refuse, Handled};
use crate::edge::origins::app_cookie;

const STATE_TTL_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateClaims {
    pub nonce_hash: String,
    pub exp: u64,
    pub jti: String,
    /// Who started the flow, when it took a signed-in person (the Slack app's installer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

pub fn mint_state(secret: &[u8], claims: &StateClaims) -> String {
    let payload = hex::encode(serde_json::to_vec(claims).expect("claims serialize"));
    let mac = hmac_hex(secret, payload.as_bytes());
    format!("{payload}.{mac}")
}

/// Checks signature, expiry and browser binding (single use is checked against storage).
pub fn check_state(
    secret: &[u8],
    state: &str,
    nonce: Option<&str>,
    now: u64,
) -> std::result::Result<StateClaims, &'static str> {
    let (payload, mac) = state.split_once('.').ok_or("malformed")?;
    if !ct_eq(
        hmac_hex(secret, payload.as_bytes()).as_bytes(),
        mac.as_bytes(),
    ) {
        return Err("forged");
    }
    let bytes = hex::decode(payload).map_err(|_| "malformed")?;
    let claims: StateClaims = serde_json::from_slice(&bytes).map_err(|_| "malformed")?;
    if claims.exp <= now {
        return Err("expired");
    }
    let bound = nonce.is_some_and(|n| {
        ct_eq(
            sha256_hex(n.as_bytes()).as_bytes(),
            claims.nonce_hash.as_bytes(),
        )
    });
    if !bound {
        return Err("not started in this browser");
    }
    Ok(claims)
}

fn secret(env: &Env) -> std::result::Result<String, ApiError> {
    env.secret("AUTH_SECRET")
        .map(|s| s.to_string())
        .map_err(|_| ApiError::new(ErrorCode::Internal, "AUTH_SECRET is not configured"))
}

/// A fresh state for a flow started by `by` (if anyone), and the cookie (named `cookie`, sent
/// only to `path`) that binds it to this browser.
pub fn begin(env: &Env, cookie: &str, path: &str, by: Option<&str>) -> Handled<(String, String)> {
    let key = secret(env)?;
    let nonce = random_hex(16);
    let claims = StateClaims {
        nonce_hash: sha256_hex(nonce.as_bytes()),
        exp: now_ms() + STATE_TTL_MS,
        jti: random_id(),
        by: by.map(str::to_owned),
    };
    // Lax, not Strict: the browser must send it on the top-level redirect back to the app.
    let cookie = app_cookie(env, cookie, &nonce, path, "Lax", STATE_TTL_MS / 1000);
    Ok((mint_state(key.as_bytes(), &claims), cookie))
}

/// The cookie that clears `cookie` once its flow is done.
pub fn spent_cookie(env: &Env, cookie: &str, path: &str) -> String {
    app_cookie(env, cookie, "", path, "Lax", 0)
}

fn cookie_value(req: &Request, name: &str) -> Option<String> {
    let all = req.headers().get("cookie").ok().flatten()?;
    all.split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

fn bad_state<T>(why: &str) -> Handled<T> {
    refuse(
        ErrorCode::InvalidOauthState,
        format!("invalid OAuth state: {why}; start again"),
    )
}

/// The callback's code and its state's claims, once the state is verified: signed, unexpired,
/// bound to this browser (by `cookie`), and used for the first time.
pub async fn verified_code(
    req: &Request,
    env: &Env,
    db: &Db,
    cookie: &str,
) -> Handled<(String, StateClaims)> {
    let key = secret(env)?;
    let url = req.url()?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let (Some(code), Some(state)) = (param("code"), param("state")) else {
        return bad_state("the callback lacks code or state");
    };
    let claims = match check_state(
        key.as_bytes(),
        &state,
        cookie_value(req, cookie).as_deref(),
        now_ms(),
    ) {
        Ok(c) => c,
        Err(why) => return bad_state(why),
    };
    if !oauth_states::use_once(db, &claims.jti, now_ms()).await? {
        return bad_state("already used");
    }
    Ok((code, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> StateClaims {
        StateClaims {
            nonce_hash: sha256_hex(b"nonce"),
            exp,
            jti: "j".into(),
            by: None,
        }
    }

    #[test]
    fn state_is_signed_bound_and_expires() {
        let s = mint_state(b"k", &claims(1_000));
        assert_eq!(check_state(b"k", &s, Some("nonce"), 999), Ok(claims(1_000)));
        assert_eq!(check_state(b"other", &s, Some("nonce"), 999), Err("forged"));
        assert_eq!(check_state(b"k", &s, Some("nonce"), 1_000), Err("expired"));
        assert_eq!(
            check_state(b"k", &s, Some("another"), 999),
            Err("not started in this browser")
        );
        assert_eq!(
            check_state(b"k", &s, None, 999),
            Err("not started in this browser")
        );
        let forged = mint_state(b"k", &claims(9_999))
            .split_once('.')
            .unwrap()
            .0
            .to_owned()
            + "."
            + s.split_once('.').unwrap().1;
        assert_eq!(
            check_state(b"k", &forged, Some("nonce"), 999),
            Err("forged"),
            "a longer expiry cannot be spliced in"
        );
        assert_eq!(
            check_state(b"k", "garbage", Some("nonce"), 999),
            Err("malformed")
        );
    }
}
