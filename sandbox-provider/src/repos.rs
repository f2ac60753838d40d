//! The provider's own check of a session's repository, on real paths: the Worker has applied the
//! same rules (`agent_ops_protocol::repo`) to what the user wrote, but only the host can tell
//! where a path really leads (a symlink under an allowed root may point anywhere).

use std::path::PathBuf;

use agent_ops_protocol::repo::RepoPolicy;
use agent_ops_protocol::{ApiError, ErrorCode};

/// The directory to mount for a `file://` repository (its real path), `None` for a remote one,
/// or why the sandbox may not have it.
pub fn local_repo(
    url: &str,
    roots: &[PathBuf],
    hidden: &[PathBuf],
    allow_ssh: bool,
) -> Result<Option<PathBuf>, ApiError> {
    let refused = |m: &str| ApiError::new(ErrorCode::RepoNotAllowed, m);
    if !url.contains("://") {
        return Err(refused("a repository reaches the provider as a URL"));
    }
    let policy = RepoPolicy {
        github_base: String::new(),
        file_roots: roots.iter().map(|r| r.display().to_string()).collect(),
        allow_ssh,
    };
    policy.clone_url(url)?;
    let Some(path) = url.strip_prefix("file://") else {
        return Ok(None);
    };
    let real = std::fs::canonicalize(path)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("repository {path}: {e}")))?;
    if !roots.iter().any(|root| real.starts_with(root)) {
        return Err(refused(
            "the repository's real path is outside the provider's repository roots",
        ));
    }
    let hides = |h: &PathBuf| {
        let h = std::fs::canonicalize(h).unwrap_or_else(|_| h.clone());
        real.starts_with(&h) || h.starts_with(&real)
    };
    if hidden.iter().any(hides) {
        return Err(refused(
            "the repository is, or holds, a path the provider hides from every sandbox",
        ));
    }
    Ok(Some(real))
}

/// Roots as real paths, so a root given through a symlink still contains what is under it.
pub fn real_roots(roots: &[PathBuf]) -> Vec<PathBuf> {
    roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("agent-ops-repos-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    fn code(r: Result<Option<PathBuf>, ApiError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn only_real_paths_under_a_root_and_nothing_hidden() {
        let base = tmp("a");
        let root = base.join("git");
        let secret = base.join("platform");
        std::fs::create_dir_all(root.join("widgets")).unwrap();
        std::fs::create_dir_all(secret.join("state")).unwrap();
        std::os::unix::fs::symlink(&secret, root.join("escape")).unwrap();
        let roots = real_roots(std::slice::from_ref(&root));
        let hidden = vec![secret.join("state")];
        let url = |p: &Path| format!("file://{}", p.display());
        assert_eq!(
            local_repo(&url(&root.join("widgets")), &roots, &hidden, false).unwrap(),
            Some(root.join("widgets"))
        );
        assert_eq!(
            code(local_repo(
                &url(&root.join("escape")),
                &roots,
                &hidden,
                false
            )),
            Some(ErrorCode::RepoNotAllowed),
            "a symlink out of the root"
        );
        assert_eq!(
            code(local_repo(&url(&secret), &roots, &hidden, false)),
            Some(ErrorCode::RepoNotAllowed)
        );
        // A root that holds a hidden path is not mounted whole.
        let wide = real_roots(std::slice::from_ref(&base));
        assert_eq!(
            code(local_repo(&url(&secret), &wide, &hidden, false)),
            Some(ErrorCode::RepoNotAllowed)
        );
        assert_eq!(
            code(local_repo(
                "http://127.0.0.1:8790/x.git",
                &roots,
                &hidden,
                true
            )),
            Some(ErrorCode::RepoNotAllowed)
        );
        assert_eq!(
            local_repo("https://git.example/x.git", &roots, &hidden, false).unwrap(),
            None
        );
        std::fs::remove_dir_all(base).ok();
    }
}
