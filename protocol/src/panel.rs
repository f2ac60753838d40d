//! Panel tokens: how a browser gets into a sandbox's panels (terminal, VS Code, VNC) without ever
//! holding a long-lived secret. The worker issues a JWT that lives at most five minutes, names
//! one session, one user and their role, and is signed with a key derived for that session only;
//! the sandbox's gateway verifies it, accepts it once, and trades it for an HttpOnly cookie.

use hmac::{Hmac, Mac};
use jwt_simple::prelude::*;
use sha2::Sha256;

use crate::access::SessionRole;

pub const AUDIENCE: &str = "agent-ops-gateway";
/// The longest a panel token may live.
pub const MAX_TTL_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelGrant {
    pub session: String,
    pub login: String,
    pub role: SessionRole,
    /// The credential the token was minted with, so signing out or revoking it reaches the
    /// gateway's cookies too (an opaque id, never the credential).
    #[serde(default)]
    pub credential: String,
}

/// A verified token: who, and the id that makes it single-use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub grant: PanelGrant,
    pub user: String,
    pub token_id: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed, badly signed, expired, too long-lived or for another audience.
    Invalid(String),
    OtherSession,
}

/// The key for one session's panel tokens: the master secret never leaves the worker, and a
/// sandbox's key opens no other sandbox.
pub fn session_key(master: &[u8], session_id: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(b"agent-ops panel key v1:");
    mac.update(session_id.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

pub fn issue(
    key: &[u8],
    user: &str,
    grant: PanelGrant,
    token_id: &str,
    ttl_secs: u64,
) -> Result<String, String> {
    let ttl = Duration::from_secs(ttl_secs.min(MAX_TTL_SECS));
    let claims = Claims::with_custom_claims(grant, ttl)
        .with_subject(user)
        .with_audience(AUDIENCE)
        .with_jwt_id(token_id);
    HS256Key::from_bytes(key)
        .authenticate(claims)
        .map_err(|e| e.to_string())
}

pub fn verify(key: &[u8], token: &str, session: &str) -> Result<Verified, Refusal> {
    let options = VerificationOptions {
        allowed_audiences: Some(HashSet::from_strings(&[AUDIENCE])),
        max_validity: Some(Duration::from_secs(MAX_TTL_SECS)),
        time_tolerance: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let claims = HS256Key::from_bytes(key)
        .verify_token::<PanelGrant>(token, Some(options))
        .map_err(|e| Refusal::Invalid(e.to_string()))?;
    if claims.custom.session != session {
        return Err(Refusal::OtherSession);
    }
    let (Some(user), Some(token_id), Some(exp)) =
        (claims.subject, claims.jwt_id, claims.expires_at)
    else {
        return Err(Refusal::Invalid("token lacks sub, jti or exp".into()));
    };
    Ok(Verified {
        grant: claims.custom,
        user,
        token_id,
        expires_at: exp.as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(session: &str) -> PanelGrant {
        PanelGrant {
            session: session.into(),
            login: "ada".into(),
            role: SessionRole::Viewer,
            credential: "key:1".into(),
        }
    }

    #[test]
    fn a_token_verifies_for_its_session_only() {
        let master = b"master secret";
        let key = session_key(master, "s1");
        let token = issue(&key, "u1", grant("s1"), "t1", 60).unwrap();
        let v = verify(&key, &token, "s1").unwrap();
        assert_eq!((v.user.as_str(), v.token_id.as_str()), ("u1", "t1"));
        assert_eq!(v.grant.role, SessionRole::Viewer);
        // Another session's gateway has another key; a token relabelled for it fails too.
        let other = session_key(master, "s2");
        assert!(matches!(
            verify(&other, &token, "s2"),
            Err(Refusal::Invalid(_))
        ));
        let forged = issue(&key, "u1", grant("s2"), "t2", 60).unwrap();
        assert_eq!(verify(&key, &forged, "s1"), Err(Refusal::OtherSession));
    }

    #[test]
    fn tampered_and_foreign_tokens_are_refused() {
        let key = session_key(b"m", "s1");
        let token = issue(&key, "u1", grant("s1"), "t1", 60).unwrap();
        let mut bad = token.clone();
        bad.pop();
        assert!(verify(&key, &bad, "s1").is_err());
        assert!(verify(&key, "not.a.jwt", "s1").is_err());
        let foreign = HS256Key::from_bytes(&key)
            .authenticate(
                Claims::with_custom_claims(grant("s1"), Duration::from_secs(60))
                    .with_audience("someone-else")
                    .with_subject("u1")
                    .with_jwt_id("t"),
            )
            .unwrap();
        assert!(verify(&key, &foreign, "s1").is_err());
    }

    #[test]
    fn lifetimes_are_capped_at_five_minutes() {
        let key = session_key(b"m", "s1");
        let token = issue(&key, "u1", grant("s1"), "t1", 3600).unwrap();
        let v = verify(&key, &token, "s1").unwrap();
        let now = Clock::now_since_epoch().as_secs();
        assert!(v.expires_at <= now + MAX_TTL_SECS + 1);
    }
}
