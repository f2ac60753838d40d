//! Reading and filtering a `Cookie` header: the worker and the sandbox gateway each find their
//! own cookie in it, and each keeps its own cookie from travelling further.

/// The value of the cookie `name` in a `Cookie` header.
pub fn value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The header without the cookie `name`; `None` when nothing is left.
pub fn without(header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|kv| kv.split_once('=').is_none_or(|(k, _)| k != name))
        .filter(|kv| !kv.is_empty())
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// A `Set-Cookie` value for one of the app's own cookies: HttpOnly, and host-only (no `Domain`),
/// so it never reaches a sandbox's origin; `Secure` whenever the app is served over https.
/// `max_age` 0 deletes it.
pub fn app_cookie(
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: u64,
    secure: bool,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    )
}

/// A `Set-Cookie` value without its `Domain` attribute: the cookie then belongs to the origin
/// that set it alone, never to its parent domain (where every sandbox's origin would share it).
pub fn host_only(set_cookie: &str) -> String {
    let kept: Vec<&str> = set_cookie
        .split(';')
        .enumerate()
        .filter(|(i, attr)| {
            *i == 0
                || !attr
                    .trim()
                    .split('=')
                    .next()
                    .is_some_and(|k| k.trim().eq_ignore_ascii_case("domain"))
        })
        .map(|(_, a)| a)
        .collect();
    kept.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_removes_one_cookie() {
        let h = "a=1; aops_panel_x=v; b=2";
        assert_eq!(value(h, "aops_panel_x"), Some("v"));
        assert_eq!(value(h, "aops_panel"), None);
        assert_eq!(value("a=1", "aops_panel_x"), None);
        assert_eq!(without(h, "aops_panel_x").as_deref(), Some("a=1; b=2"));
        assert_eq!(without("aops_session=s", "aops_session"), None);
        assert_eq!(
            without("aops_sessionx=s", "aops_session").as_deref(),
            Some("aops_sessionx=s")
        );
    }

    #[test]
    fn the_apps_cookies_are_host_only_and_secure_over_https() {
        let c = app_cookie("aops_session", "t", "/", "Strict", 60, true);
        assert_eq!(
            c,
            "aops_session=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert!(!c.to_ascii_lowercase().contains("domain"));
        assert!(!app_cookie("a", "", "/", "Lax", 0, false).contains("Secure"));
    }

    #[test]
    fn a_sandbox_sets_cookies_for_its_own_origin_only() {
        assert_eq!(
            host_only("a=1; Path=/; DOMAIN=sandbox.localhost; HttpOnly"),
            "a=1; Path=/; HttpOnly"
        );
        assert_eq!(host_only("a=1; domain = .x"), "a=1");
        assert_eq!(host_only("domain=1; Path=/"), "domain=1; Path=/");
    }
}
