//! What of the host a local sandbox sees: an allowlist, not the host's `/` minus a denylist. The
//! system's programs and libraries, the few parts of `/etc` a toolchain reads, and the tools the
//! platform installs, all read-only; `/home`, `/root`, `/run`, `/tmp` and `/var` empty. So a
//! secret in the operator's home, a socket of the host's (the user bus, the systemd manager,
//! docker.sock: `connect()` works through a read-only bind) or anything installed later is out
//! of sight unless listed here.

use std::path::{Path, PathBuf};

/// A read-only view of the host in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The host path at the same place.
    Bind(PathBuf),
    /// A symbolic link, as the host has it (`/bin -> usr/bin` on a merged-`/usr` system).
    Link { target: PathBuf, at: PathBuf },
}

/// The system: programs, libraries and their data.
const SYSTEM: [&str; 7] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The parts of `/etc` that programs read to run: users and names, the resolver, TLS roots, the
/// dynamic linker, alternatives, the time zone, shells' defaults, fonts and X for the desktop.
/// Not `shadow`, `ssh`, `sudoers`, `machine-id` or anything an operator adds.
const ETC: [&str; 33] = [
    "/etc/alternatives",
    "/etc/bash.bashrc",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/debian_version",
    "/etc/environment",
    "/etc/fonts",
    "/etc/gai.conf",
    "/etc/gitconfig",
    "/etc/group",
    "/etc/host.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/inputrc",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/magic",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/passwd",
    "/etc/profile",
    "/etc/protocols",
    "/etc/python3",
    "/etc/python3.11",
    "/etc/resolv.conf",
    "/etc/services",
    "/etc/ssl",
    "/etc/terminfo",
    "/etc/timezone",
    "/etc/X11",
];

/// Empty in every sandbox (a private tmpfs each), whatever the host keeps there.
pub const EMPTY: [&str; 9] = [
    "/home", "/root", "/run", "/tmp", "/var", "/mnt", "/media", "/opt", "/srv",
];

/// The system's mounts that exist on this host.
pub fn system() -> Vec<Mount> {
    SYSTEM
        .iter()
        .chain(ETC.iter())
        .map(Path::new)
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(path).ok()?;
            // A top-level link stays a link; one in /etc is followed (its target is bound).
            if meta.file_type().is_symlink() && SYSTEM.contains(&path.to_str()?) {
                let target = std::fs::read_link(path).ok()?;
                return Some(Mount::Link {
                    target,
                    at: path.to_owned(),
                });
            }
            path.exists().then(|| Mount::Bind(path.to_owned()))
        })
        .collect()
}

/// What a program the platform installs needs beside itself: its install, two levels up from
/// its `bin/` (websockify's virtualenv, code-server's beside the Node it runs on), and for a
/// virtualenv the Python it was made from (`home` in `pyvenv.cfg`), wherever that lives.
pub fn install_of(program: &Path) -> Vec<PathBuf> {
    let Some(install) = program.ancestors().nth(2) else {
        return Vec::new();
    };
    let mut paths = vec![install.to_owned()];
    let python = std::fs::read_to_string(install.join("pyvenv.cfg"))
        .ok()
        .and_then(|cfg| {
            cfg.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == "home")
                .map(|(_, v)| PathBuf::from(v.trim()))
        });
    // `home` is the interpreter's bin/; its prefix holds the standard library too.
    paths.extend(python.and_then(|bin| bin.parent().map(Path::to_owned)));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_is_listed_and_nothing_else() {
        let mounts = system();
        assert!(mounts.contains(&Mount::Bind("/usr".into())));
        let seen: Vec<&Path> = mounts
            .iter()
            .map(|m| match m {
                Mount::Bind(p) => p.as_path(),
                Mount::Link { at, .. } => at.as_path(),
            })
            .collect();
        for never in ["/", "/etc", "/etc/shadow", "/home", "/root", "/run", "/var"] {
            assert!(!seen.contains(&Path::new(never)), "{never}");
        }
        for m in &mounts {
            if let Mount::Link { at, .. } = m {
                assert!(SYSTEM.contains(&at.to_str().unwrap()), "{at:?}");
            }
        }
    }

    #[test]
    fn a_virtualenv_brings_its_python() {
        let dir = std::env::temp_dir().join(format!("agent-ops-venv-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(
            dir.join("pyvenv.cfg"),
            "home = /opt/py/3.11/bin\nversion = 3.11\n",
        )
        .unwrap();
        assert_eq!(
            install_of(&dir.join("bin/websockify")),
            vec![dir.clone(), PathBuf::from("/opt/py/3.11")]
        );
        assert_eq!(
            install_of(Path::new("/x/cs/bin/code-server")),
            vec![PathBuf::from("/x/cs")]
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
