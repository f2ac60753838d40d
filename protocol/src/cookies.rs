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
}
