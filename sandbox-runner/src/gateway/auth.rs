//! The gateway's door: a panel token (verified, accepted once) is traded for a cookie, and the
//! cookie is what every later request and socket presents. Access taken back on the control
//! plane reaches the door at once (a revocation over the runner's link): the cookies it covers
//! admit nothing more and the sockets opened with them close. Kept free of HTTP types so the
//! rules are unit-tested directly.

use std::collections::HashMap;
use std::sync::Mutex;

use agent_ops_protocol::access::{Revocation, SessionRole};
use agent_ops_protocol::panel::{self, Refusal};
use agent_ops_protocol::signing::hash_token;

/// The longest a panel cookie lasts; the panel asks for a fresh token after that.
pub const COOKIE_TTL_SECS: u64 = 8 * 3600;
/// How long a panel cookie lasts unused: each request renews it, and so does each socket
/// opened with it while it stays open. A cookie left behind (a closed tab) soon admits nothing.
pub const COOKIE_IDLE_SECS: u64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub login: String,
    pub role: SessionRole,
    credential: String,
    expires_at: u64,
    idle_until: u64,
}

impl Access {
    fn live(&self, now: u64) -> bool {
        now < self.expires_at && now < self.idle_until
    }
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
    /// Bumped on every revocation, so each open socket re-checks its cookie.
    revocations: tokio::sync::watch::Sender<u64>,
}

impl Door {
    pub fn new(session: &str, key: Vec<u8>) -> Door {
        Door {
            session: session.to_owned(),
            key,
            used: Mutex::new(HashMap::new()),
            cookies: Mutex::new(HashMap::new()),
            revocations: tokio::sync::watch::Sender::new(0),
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
            credential: v.grant.credential,
            expires_at: now + COOKIE_TTL_SECS,
            idle_until: now + COOKIE_IDLE_SECS,
        };
        let mut cookies = self.cookies.lock().expect("lock");
        cookies.retain(|_, a| a.live(now));
        cookies.insert(hash_token(&cookie), access);
        Ok(cookie)
    }

    /// What `cookie` grants, if it still does; its use renews it.
    pub fn admit(&self, cookie: &str, now: u64) -> Option<Access> {
        let mut cookies = self.cookies.lock().expect("lock");
        let access = cookies
            .get_mut(&hash_token(cookie))
            .filter(|a| a.live(now))?;
        access.idle_until = now + COOKIE_IDLE_SECS;
        Some(access.clone())
    }

    /// Takes back the cookies `revoked` covers; returns how many went.
    pub fn revoke(&self, revoked: &Revocation) -> usize {
        let gone = {
            let mut cookies = self.cookies.lock().expect("lock");
            let before = cookies.len();
            cookies.retain(|_, a| !revoked.covers(&a.login, &a.credential));
            before - cookies.len()
        };
        self.revocations.send_modify(|n| *n += 1);
        gone
    }

    /// Resolves once `cookie` admits no more (taken back, or past its longest life): a socket
    /// opened with it ends then. Until then the open socket is the cookie's use.
    pub async fn revoked(&self, cookie: &str) {
        let mut changes = self.revocations.subscribe();
        let renew = std::time::Duration::from_secs(COOKIE_IDLE_SECS / 3);
        while self.admit(cookie, unix_now()).is_some() {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(renew) => {}
            }
        }
    }
}

/// The clock cookies and tokens are judged by, in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
            credential: "key:1".into(),
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
    fn a_cookie_lives_while_it_is_used_and_never_past_its_longest_life() {
        let (door, token) = door_and_token(SessionRole::Viewer);
        let start = now();
        let cookie = door.exchange(&token, start).unwrap();
        // Used every ten minutes: it lasts, but not beyond its eight hours.
        let mut t = start;
        while t + 600 < start + COOKIE_TTL_SECS {
            t += 600;
            assert!(door.admit(&cookie, t).is_some(), "used at +{}s", t - start);
        }
        assert!(door.admit(&cookie, start + COOKIE_TTL_SECS).is_none());
        // Left unused past its idle time, it admits nothing more, used or not.
        let (door, token) = door_and_token(SessionRole::Viewer);
        let cookie = door.exchange(&token, start).unwrap();
        assert!(door.admit(&cookie, start + COOKIE_IDLE_SECS - 1).is_some());
        let idle = start + 2 * COOKIE_IDLE_SECS;
        assert!(door.admit(&cookie, idle).is_none());
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

    #[tokio::test]
    async fn a_revocation_takes_back_the_cookies_it_covers_and_ends_their_sockets() {
        let (door, token) = door_and_token(SessionRole::Collaborator);
        let cookie = door.exchange(&token, now()).unwrap();
        let door = std::sync::Arc::new(door);
        let watching = tokio::spawn({
            let (door, cookie) = (door.clone(), cookie.clone());
            async move { door.revoked(&cookie).await }
        });
        let other_key = Revocation::Credential { id: "key:2".into() };
        assert_eq!(door.revoke(&other_key), 0);
        assert!(door.admit(&cookie, now()).is_some());
        tokio::task::yield_now().await;
        assert!(!watching.is_finished(), "another credential's revocation");
        let ada = Revocation::Member {
            login: "ada".into(),
        };
        assert_eq!(door.revoke(&ada), 1);
        assert!(door.admit(&cookie, now()).is_none());
        tokio::time::timeout(std::time::Duration::from_secs(5), watching)
            .await
            .expect("the socket's watch ends")
            .unwrap();
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
