//! Who a local sandbox's processes are on the host: a uid of their own, never root, never the
//! operator, where the provider runs as root; which uid, kept from run to run of a session.

use std::path::{Path, PathBuf};

use agent_ops_protocol::signing::hash_token;

use super::sandbox::Layout;

/// Who a sandbox's processes are on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A provider running as root gives each sandbox a host uid of its own: bubblewrap mounts
    /// as root in the host's user namespace, then `setpriv` drops to `uid` (no capabilities, no
    /// way back) before the runner starts. `passwd` and `group` name it inside.
    Own {
        uid: u32,
        passwd: PathBuf,
        group: PathBuf,
        /// git's system configuration in the sandbox (see `own_identity`).
        gitconfig: PathBuf,
    },
    /// An unprivileged provider's sandboxes run as the operator, in a user namespace of their
    /// own and without capabilities there.
    Operator,
}

/// How many uids the provider takes from `--sandbox-uid-base` up.
pub const UID_SPAN: u32 = 1 << 16;

/// Session `session`'s uid: the same one each run (its files stay its own), another where a
/// running sandbox has that one already.
pub fn pick_uid(session: &str, base: u32, taken: &[u32]) -> u32 {
    let hash = hash_token(session);
    let start = u32::from_str_radix(&hash[..8], 16).unwrap_or(0) % UID_SPAN;
    (0..UID_SPAN)
        .map(|i| base + (start + i) % UID_SPAN)
        .find(|uid| !taken.contains(uid))
        .unwrap_or(base + start)
}

/// Makes the session's directory `uid`'s (all of it, when an earlier run had another uid) and
/// the names the sandbox knows it by, kept outside every sandbox.
pub fn own_identity(
    root: &Path,
    layout: &Layout,
    session: &str,
    uid: u32,
) -> std::io::Result<Identity> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata(&layout.workspace)?.uid() != uid {
        chown_tree(&layout.session_dir, uid)?;
    }
    let names = root.join(NAMES_DIR);
    std::fs::create_dir_all(&names)?;
    let home = layout.home.display();
    let passwd = names.join(format!("{session}.passwd"));
    std::fs::write(
        &passwd,
        format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\n\
             agent:x:{uid}:{uid}:Agent Ops sandbox:{home}:/bin/bash\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
    )?;
    let group = names.join(format!("{session}.group"));
    std::fs::write(
        &group,
        format!("root:x:0:\nagent:x:{uid}:\nnogroup:x:65534:\n"),
    )?;
    // A local repository is the host's, not the sandbox uid's, and git reads another user's
    // repository only where its system or global configuration says that is expected. (The
    // host's own system configuration is for the host: credential helpers, its proxies.)
    let gitconfig = names.join(format!("{session}.gitconfig"));
    std::fs::write(&gitconfig, "[safe]\n\tdirectory = *\n")?;
    Ok(Identity::Own {
        uid,
        passwd,
        group,
        gitconfig,
    })
}

/// `chown -hR uid:uid dir`, without following links.
fn chown_tree(dir: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(uid))?;
    if std::fs::symlink_metadata(dir)?.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

/// Where the names each sandbox knows its uid by live: under the sandbox root, which every
/// sandbox sees as empty.
const NAMES_DIR: &str = ".names";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_keeps_its_uid_unless_it_is_taken() {
        let base = 200_000;
        let a = pick_uid("session-a", base, &[]);
        assert_eq!(a, pick_uid("session-a", base, &[base + 1]));
        assert!((base..base + UID_SPAN).contains(&a));
        assert_ne!(a, pick_uid("session-b", base, &[]));
        let moved = pick_uid("session-a", base, &[a]);
        assert!(moved != a && (base..base + UID_SPAN).contains(&moved));
    }
}
