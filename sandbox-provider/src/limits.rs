//! What one local sandbox may use of the host: memory, processes and a share of the CPU, so a
//! fork bomb or a memory hog ends inside its own sandbox while the others keep answering. The
//! host's cgroups do it: v2 where the host has them, else v1's `memory`, `pids` and `cpu`
//! controllers; only where neither can be written, rlimits on the sandbox's processes (weaker:
//! per process, not per sandbox). Each sandbox's private tmpfs mounts are bounded too.

use std::path::{Path, PathBuf};

/// The bounds of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    pub pids: u64,
    /// Relative CPU weight against the other sandboxes (v1's `cpu.shares` scale, 1024 = one).
    pub cpu_shares: u64,
    /// The size of each of the sandbox's private tmpfs mounts (`/tmp` and the other empty ones).
    pub tmpfs_bytes: u64,
}

/// How the host bounds its sandboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The unified hierarchy: one directory under this parent per sandbox.
    V2(PathBuf),
    /// One directory per sandbox under the parent in each controller's hierarchy.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
    },
    /// No writable cgroups: per-process rlimits.
    Rlimits,
}

impl Backend {
    /// The strongest the host offers, under `/sys/fs/cgroup` (a parent `agent-ops` is made in
    /// each hierarchy, so the provider's sandboxes are found in one place).
    pub fn detect(root: &Path) -> Backend {
        let parent = |dir: PathBuf| {
            let p = dir.join("agent-ops");
            std::fs::create_dir_all(&p).ok().map(|()| p)
        };
        if root.join("cgroup.controllers").is_file() {
            if let Some(p) = parent(root.to_owned()) {
                // Children of the parent may use these controllers only once it hands them down.
                let handed = ["+memory", "+pids", "+cpu"]
                    .iter()
                    .all(|c| std::fs::write(p.join("cgroup.subtree_control"), c).is_ok());
                if handed {
                    return Backend::V2(p);
                }
            }
        }
        let v1 = |c: &str| parent(root.join(c)).filter(|p| p.join("cgroup.procs").exists());
        match (v1("memory"), v1("pids"), v1("cpu")) {
            (Some(memory), Some(pids), Some(cpu)) => Backend::V1 { memory, pids, cpu },
            _ => Backend::Rlimits,
        }
    }

    /// Said at start and in the README: which bounds are in force.
    pub fn describe(&self) -> &'static str {
        match self {
            Backend::V2(_) => "cgroup v2 (memory, pids, cpu)",
            Backend::V1 { .. } => "cgroup v1 (memory, pids, cpu)",
            Backend::Rlimits => "rlimits only (address space per process); no writable cgroups",
        }
    }

    /// The files to write for a sandbox's group, in order: its limits, then nothing else (the
    /// processes are added by `Group::add`). Pure, so each hierarchy's settings are tested.
    pub fn plan(&self, session: &str, l: Limits) -> Vec<(PathBuf, String)> {
        match self {
            Backend::V2(parent) => {
                let g = parent.join(session);
                // v2's weight is 1..10000 with 100 as one; v1's shares have 1024 as one.
                let weight = (l.cpu_shares * 100 / 1024).clamp(1, 10_000);
                vec![
                    (g.join("memory.max"), l.memory_bytes.to_string()),
                    (g.join("memory.swap.max"), "0".into()),
                    (g.join("pids.max"), l.pids.to_string()),
                    (g.join("cpu.weight"), weight.to_string()),
                ]
            }
            Backend::V1 { memory, pids, cpu } => vec![
                (
                    memory.join(session).join("memory.limit_in_bytes"),
                    l.memory_bytes.to_string(),
                ),
                (pids.join(session).join("pids.max"), l.pids.to_string()),
                (
                    cpu.join(session).join("cpu.shares"),
                    l.cpu_shares.to_string(),
                ),
            ],
            Backend::Rlimits => Vec::new(),
        }
    }

    fn groups(&self, session: &str) -> Vec<PathBuf> {
        match self {
            Backend::V2(parent) => vec![parent.join(session)],
            Backend::V1 { memory, pids, cpu } => {
                vec![memory.join(session), pids.join(session), cpu.join(session)]
            }
            Backend::Rlimits => Vec::new(),
        }
    }
}

/// One sandbox's cgroups, removed when it is dropped (once its processes are gone).
#[derive(Debug)]
pub struct Group {
    dirs: Vec<PathBuf>,
}

impl Group {
    /// Makes the sandbox's groups with their limits.
    pub fn create(backend: &Backend, session: &str, limits: Limits) -> std::io::Result<Group> {
        let dirs = backend.groups(session);
        for d in &dirs {
            std::fs::create_dir_all(d)?;
        }
        let group = Group { dirs };
        for (file, value) in backend.plan(session, limits) {
            std::fs::write(&file, value)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
        }
        Ok(group)
    }

    /// Puts a process (and so everything it starts from now on) in the sandbox's groups.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }
}

impl Group {
    /// Removes the groups once their processes have left them (a killed sandbox's last ones
    /// are gone within moments); gives up after a second, leaving an empty group behind.
    pub async fn release(self) {
        for _ in 0..100 {
            if self
                .dirs
                .iter()
                .all(|d| std::fs::remove_dir(d).is_ok() || !d.exists())
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tracing::warn!("cgroups left behind: {:?}", self.dirs);
    }
}

/// Applies the rlimits fallback to the calling process; runs between fork and exec.
pub fn apply_rlimits(limits: Limits) -> std::io::Result<()> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let memory = Some(limits.memory_bytes);
    setrlimit(
        Resource::As,
        Rlimit {
            current: memory,
            maximum: memory,
        },
    )?;
    let pids = Some(limits.pids);
    setrlimit(
        Resource::Nproc,
        Rlimit {
            current: pids,
            maximum: pids,
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        memory_bytes: 512 << 20,
        pids: 256,
        cpu_shares: 1024,
        tmpfs_bytes: 64 << 20,
    };

    #[test]
    fn each_hierarchy_gets_its_own_settings() {
        let v1 = Backend::V1 {
            memory: "/cg/memory/agent-ops".into(),
            pids: "/cg/pids/agent-ops".into(),
            cpu: "/cg/cpu/agent-ops".into(),
        };
        assert_eq!(
            v1.plan("s1", L),
            vec![
                (
                    PathBuf::from("/cg/memory/agent-ops/s1/memory.limit_in_bytes"),
                    "536870912".to_owned()
                ),
                (
                    PathBuf::from("/cg/pids/agent-ops/s1/pids.max"),
                    "256".into()
                ),
                (
                    PathBuf::from("/cg/cpu/agent-ops/s1/cpu.shares"),
                    "1024".into()
                ),
            ]
        );
        let v2 = Backend::V2("/cg/agent-ops".into());
        let plan = v2.plan("s1", L);
        assert!(plan.contains(&(
            PathBuf::from("/cg/agent-ops/s1/memory.max"),
            "536870912".into()
        )));
        assert!(plan.contains(&(
            PathBuf::from("/cg/agent-ops/s1/memory.swap.max"),
            "0".into()
        )));
        assert!(plan.contains(&(PathBuf::from("/cg/agent-ops/s1/pids.max"), "256".into())));
        assert!(plan.contains(&(PathBuf::from("/cg/agent-ops/s1/cpu.weight"), "100".into())));
        assert!(Backend::Rlimits.plan("s1", L).is_empty());
    }

    #[test]
    fn detection_finds_what_a_host_offers() {
        let root = std::env::temp_dir().join(format!("agent-ops-cg-{}", std::process::id()));
        for c in ["memory", "pids", "cpu"] {
            std::fs::create_dir_all(root.join(c).join("agent-ops")).unwrap();
            std::fs::write(root.join(c).join("agent-ops/cgroup.procs"), "").unwrap();
        }
        assert!(matches!(Backend::detect(&root), Backend::V1 { .. }));
        std::fs::remove_dir_all(root.join("pids")).unwrap();
        assert_eq!(Backend::detect(&root), Backend::Rlimits);
        std::fs::remove_dir_all(root).ok();
    }
}
