//! Which repositories a session may clone, and from where. A session's `repo` is user input, and
//! the sandbox provider acts on it (a `file://` repository is mounted into the sandbox), so the
//! rules here decide what of the host a user can name: nothing, unless an operator listed it.
//! The Worker applies them at the API; the provider applies them again, on real paths.

use std::net::{IpAddr, Ipv4Addr};

use crate::{ApiError, ErrorCode};

/// What an operator allows beyond GitHub-style `owner/name` and public `https://` URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoPolicy {
    /// Where `owner/name` is cloned from (`GITHUB_BASE_URL`).
    pub github_base: String,
    /// Absolute directories under which `file://` repositories may be named.
    pub file_roots: Vec<String>,
    /// Whether `ssh://` URLs are accepted.
    pub allow_ssh: bool,
}

impl RepoPolicy {
    /// A policy from its configured form: roots comma-separated, ssh enabled by `1` or `true`.
    pub fn from_config(github_base: &str, file_roots: &str, allow_ssh: &str) -> RepoPolicy {
        RepoPolicy {
            github_base: github_base.trim_end_matches('/').to_owned(),
            file_roots: file_roots
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| r.trim_end_matches('/').to_owned())
                .collect(),
            allow_ssh: matches!(allow_ssh.trim(), "1" | "true"),
        }
    }

    /// The URL to clone `repo` from, or why it may not be cloned.
    pub fn clone_url(&self, repo: &str) -> Result<String, ApiError> {
        let malformed = || {
            ApiError::new(
                ErrorCode::InvalidBody,
                "repo must be owner/name or an https:// URL",
            )
        };
        if repo.is_empty()
            || repo.len() > 256
            || repo.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(malformed());
        }
        let Some((scheme, rest)) = repo.split_once("://") else {
            return owner_name(repo)
                .map(|(o, n)| format!("{}/{o}/{n}.git", self.github_base))
                .ok_or_else(malformed);
        };
        match scheme {
            "https" => remote(rest, false).map(|()| repo.to_owned()),
            "ssh" if self.allow_ssh => remote(rest, true).map(|()| repo.to_owned()),
            "ssh" => Err(refused(
                "ssh:// repositories are not enabled on this deployment (REPO_ALLOW_SSH)",
            )),
            "file" => self.local(rest).map(|()| repo.to_owned()),
            _ => Err(refused(format!(
                "{scheme}:// repositories are not accepted; use owner/name or an https:// URL"
            ))),
        }
    }

    /// A `file://` path: absolute, written plainly (no `..`, `.`, empty segment or escape that
    /// could mean another directory than it seems to), and under a listed root.
    fn local(&self, path: &str) -> Result<(), ApiError> {
        if !path.starts_with('/') {
            return Err(refused(
                "a file:// repository is an absolute path on the provider (file:///...)",
            ));
        }
        let segments: Vec<&str> = path[1..].split('/').collect();
        if path.contains(['%', '\\', '?', '#'])
            || segments
                .iter()
                .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(refused(
                "a file:// path must be written plainly: no `..`, `.`, `//` or escapes",
            ));
        }
        let under = |root: &String| {
            path == root.as_str()
                || path
                    .strip_prefix(root.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        };
        if self.file_roots.iter().any(under) {
            Ok(())
        } else {
            Err(refused(
                "file:// repositories are accepted only under the directories an operator lists (REPO_FILE_ROOTS)",
            ))
        }
    }
}

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::RepoNotAllowed, message)
}

fn owner_name(repo: &str) -> Option<(&str, &str)> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let (owner, name) = repo.split_once('/')?;
    (part_ok(owner) && part_ok(name)).then_some((owner, name))
}

/// A remote URL's authority: a named host (or a public address), no credentials in it, and
/// nothing that names this machine. The sandbox's loopback is its own, but git follows a name
/// like `localhost` wherever the resolver says, and nobody clones from the host this way. An
/// ssh URL names its user (`git@`), which is not a secret; a password never is allowed.
fn remote(rest: &str, user_allowed: bool) -> Result<(), ApiError> {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (user, authority) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    if user.is_some_and(|u| !user_allowed || u.contains(':')) {
        return Err(refused(
            "credentials do not belong in a repo URL; store a github_token in the vault",
        ));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || !rest.contains('/') {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "a repo URL names a host and a path",
        ));
    }
    if host == "localhost" || host.ends_with(".localhost") || local_address(&host) {
        return Err(refused(
            "a repo URL may not name this machine (localhost, a loopback or unspecified address)",
        ));
    }
    Ok(())
}

/// Whether `host` is an address of this machine in any of the forms a resolver accepts: IPv6
/// and dotted IPv4, but also `127.1`, `2130706433` and `0x7f.0.0.1`, which inet_aton reads as
/// 127.0.0.1. A host whose last label is numeric is an address, never a name.
fn local_address(host: &str) -> bool {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6
                        .to_ipv4_mapped()
                        .is_some_and(|v4| v4.is_loopback() || v4.is_unspecified())
            }
        };
    }
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = last.starts_with(|c: char| c.is_ascii_digit());
    // A numeric host that is not a plain dotted quad: refused whatever it decodes to, since
    // decoding it exactly as every resolver does is not worth the risk of getting one wrong.
    numeric && host.parse::<Ipv4Addr>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RepoPolicy {
        RepoPolicy::from_config("https://github.com/", "/srv/git, /opt/repos/", "")
    }

    #[test]
    fn owner_name_and_https_are_accepted() {
        let p = policy();
        assert_eq!(
            p.clone_url("acme/widgets").as_deref(),
            Ok("https://github.com/acme/widgets.git")
        );
        for ok in [
            "https://git.example/x.git",
            "https://git.example:8443/team/x.git",
            "https://192.0.2.7/x.git",
            "https://[2001:db8::1]/x.git",
            "file:///srv/git/widgets.git",
            "file:///opt/repos/a/b",
        ] {
            assert_eq!(p.clone_url(ok).as_deref(), Ok(ok), "{ok}");
        }
    }

    #[test]
    fn malformed_repos_are_invalid() {
        for bad in [
            "",
            "acme",
            "a/b/c",
            "../etc",
            "acme/..",
            "acme/wid gets",
            "https://",
            "-x/y;rm",
            "https:///x",
            "https://git.example",
        ] {
            assert_eq!(
                policy().clone_url(bad).map_err(|e| e.code),
                Err(ErrorCode::InvalidBody),
                "{bad}"
            );
        }
    }

    #[test]
    fn nothing_of_the_host_is_named_without_an_operator() {
        for refused in [
            // The platform's own checkout, or anything else outside a listed root.
            "file:///work/main",
            "file:///etc",
            "file:///srv/gitx/y",
            "file:///srv/git/../../work/main",
            "file:///srv/git/./a",
            "file:///srv//git/a",
            "file:///srv/git/%2e%2e/etc",
            "file://localhost/srv/git/a",
            "file://srv/git/a",
            "/srv/git/a",
            // A port of this machine, named in any form.
            "http://127.0.0.1:8790/x.git",
            "https://127.0.0.1:8790/x.git",
            "https://localhost:8790/x.git",
            "https://LOCALHOST./x.git",
            "https://app.localhost:8787/x.git",
            "https://[::1]:8790/x.git",
            "https://[::ffff:127.0.0.1]:8790/x.git",
            "https://0.0.0.0:8790/x.git",
            "https://127.1:8790/x.git",
            "https://2130706433:8790/x.git",
            "https://0x7f.0.0.1:8790/x.git",
            "https://user:pw@git.example/x.git",
            "ssh://git@git.example/x.git",
            "ssh://git.example/x.git",
            "git://git.example/x.git",
            "ext::sh",
        ] {
            let got = policy().clone_url(refused).map_err(|e| e.code);
            assert!(
                matches!(
                    got,
                    Err(ErrorCode::RepoNotAllowed) | Err(ErrorCode::InvalidBody)
                ),
                "{refused}: {got:?}"
            );
        }
        assert_eq!(
            policy().clone_url("file:///work/main").map_err(|e| e.code),
            Err(ErrorCode::RepoNotAllowed)
        );
        assert_eq!(
            RepoPolicy::default()
                .clone_url("file:///srv/git/a")
                .map_err(|e| e.code),
            Err(ErrorCode::RepoNotAllowed),
            "no roots, no file:// at all"
        );
    }

    #[test]
    fn ssh_only_when_enabled() {
        let p = RepoPolicy::from_config("https://github.com", "", "1");
        assert_eq!(
            p.clone_url("ssh://git.example/x.git").as_deref(),
            Ok("ssh://git.example/x.git")
        );
        assert_eq!(
            p.clone_url("ssh://git@git.example/x.git").as_deref(),
            Ok("ssh://git@git.example/x.git")
        );
        assert!(p.clone_url("ssh://127.0.0.1:22/x.git").is_err());
        assert!(p.clone_url("ssh://git:pw@git.example/x.git").is_err());
    }
}
