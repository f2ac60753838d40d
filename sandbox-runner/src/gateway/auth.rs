//! The gateway's door: a panel token (verified, accepted once) is traded for a cookie, and the
//! cookie is what every later request and socket presents. Kept free of HTTP types so the rules
//! are unit-tested directly.

use std::collections::HashMap;
use std::sync::Mutex;

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::panel::{self, Refusal};
use agent_ops_protocol::signing::hash_token;

/// How long a panel cookie lasts; the panel asks for a fresh token after that.
pub const COOKIE_TTL_SECS: u64 = 8 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub login: String,
    pub role: SessionRole,
    expires_at: u64,
}

impl Access {
    /// Viewers watch; only owners and collaborators type into the terminal.
    pub fn can_write(&self) -> bool {
        matches!(self.role, SessionRole::Owner | SessionRole::Collaborator)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    Token(Refusal),
    Replayed,
}

pub struct Door {
    session: String,
    key: Vec<u8>,
    /// Token ids already traded, until they would have expired anyway.
    used: Mutex<HashMap<String, u64>>,
    /// Cookie hashes to what they grant: the cookie itself is never stored.
    cookies: Mutex<HashMap<String, Access>>,
}

impl Door {
    pub fn new(session: &str, key: Vec<u8>) -> Door {
        Door {
            session: session.to_owned(),
            key,
            used: Mutex::new(HashMap::new()),
            cookies: Mutex::new(HashMap::new()),
        }
    }

    /// Trades a token for a new cookie value.
    pub fn exchange(&self, token: &str, now: u64) -> Result<String, Denied> {
        let v = panel::verify(&self.key, token, &self.session).map_err(Denied::Token)?;
        {
            let mut used = self.used.lock().expect("lock");
            used.retain(|_, exp| *exp + 10 >= now);
            if used.insert(v.token_id, v.expires_at).is_some() {
                return Err(Denied::Replayed);
            }
        }
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).expect("the OS provides randomness");
        let cookie = hex::encode(raw);
        let access = Access {
            login: v.grant.login,
            role: v.grant.role,
            expires_at: now + COOKIE_TTL_SECS,
        };
        let mut cookies = self.cookies.lock().expect("lock");
        cookies.retain(|_, a| a.expires_at > now);
        cookies.insert(hash_token(&cookie), access);
        Ok(cookie)
    }

    pub fn admit(&self, cookie: &str, now: u64) -> Option<Access> {
        let cookies = self.cookies.lock().expect("lock");
        cookies
            .get(&hash_token(cookie))
            .filter(|a| a.expires_at > now)
            .cloned()
    }
}

/// The cookie's name. Each session's sandbox has an origin of its own, so one name serves all;
/// `__Host-` makes browsers refuse the cookie from anywhere but this origin, so a page of another
/// session (on a sibling origin) can neither plant nor overwrite it.
pub const COOKIE: &str = "__Host-aops_panel";

/// The cookie's attributes. The app frames the sandbox's pages from another site, so the cookie
/// is a third-party one there: `SameSite=None` with `Partitioned` keeps it to pages framed by
/// the app (and it needs `Secure`, which browsers honour on `http://*.localhost` too).
pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=None; Partitioned; Max-Age={COOKIE_TTL_SECS}")
}

/// Where to go after the exchange: a path inside this sandbox's prefix, never elsewhere.
pub fn safe_next(next: &str) -> Option<&str> {
    let path = next.split('?').next().unwrap_or("");
    let ok = !path.starts_with('/')
        && !next.chars().any(char::is_control)
        && !path.contains("//")
        && !path.contains("..")
        && !path.contains(':')
        && !next.contains('\\');
    ok.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_ops_protocol::panel::{issue, session_key, PanelGrant};

    fn door_and_token(role: SessionRole) -> (Door, String) {
        let key = session_key(b"master", "sess1");
        let grant = PanelGrant {
            session: "sess1".into(),
            login: "ada".into(),
            role,
        };
        let token = issue(&key, "u1", grant, "jti-1", 60).unwrap();
        (Door::new("sess1", key), token)
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_token_is_traded_once_for_a_cookie() {
        let (door, token) = door_and_token(SessionRole::Collaborator);
        let cookie = door.exchange(&token, now()).unwrap();
        let access = door.admit(&cookie, now()).unwrap();
        assert!(access.can_write());
        assert_eq!(door.exchange(&token, now()), Err(Denied::Replayed));
        assert!(door.admit("forged", now()).is_none());
        assert!(door.admit(&cookie, now() + COOKIE_TTL_SECS + 1).is_none());
    }

    #[test]
    fn viewers_cannot_write_and_other_sessions_tokens_fail() {
        let (door, token) = door_and_token(SessionRole::Viewer);
        let cookie = door.exchange(&token, now()).unwrap();
        assert!(!door.admit(&cookie, now()).unwrap().can_write());
        let other = Door::new("sess2", session_key(b"master", "sess2"));
        assert!(matches!(
            other.exchange(&token, now()),
            Err(Denied::Token(_))
        ));
    }

    #[test]
    fn redirects_stay_inside() {
        assert!(safe_next("terminal/").is_some());
        assert!(safe_next("vnc/vnc.html?path=sandbox/x/vnc/websockify").is_some());
        for bad in [
            "/elsewhere",
            "//evil.com",
            "https://evil.com",
            "../up",
            "a\\b",
            "terminal/\r\nSet-Cookie: x=1",
            "terminal/\n",
            "terminal/?q=\u{7f}",
        ] {
            assert!(safe_next(bad).is_none(), "{bad}");
        }
    }
}
