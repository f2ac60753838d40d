//! A local sandbox's disk: its session directory is a filesystem of its own, an ext4 image of
//! the operator's size loop-mounted there, so what the agent writes (its workspace, its home, its
//! state) meets `ENOSPC` in its own sandbox instead of filling the host. The image is sparse and
//! mounted with `discard`: it takes on the host what the session holds, not its bound.
//!
//! The mounts live in the host's mount table, where the operator (and the tests) can read the
//! session's files: the provider detaches them when it stops and finds any left by one that was
//! killed when it starts again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::process::Command;

/// Where the images live: under the sandbox root, which every sandbox sees as empty.
const DISKS_DIR: &str = ".disks";

pub struct Disks {
    dir: PathBuf,
    bytes: u64,
}

impl Disks {
    /// Bounded disks where the provider can mount them (root, a loop device, `mkfs.ext4`);
    /// otherwise why not, and the sessions' directories are unbounded.
    pub fn detect(root: &Path, mib: u64) -> Result<Disks, String> {
        if mib == 0 {
            return Err("--disk-mib is 0".into());
        }
        if !rustix::process::geteuid().is_root() {
            return Err("the provider does not run as root".into());
        }
        if !Path::new("/dev/loop-control").exists() {
            return Err("the host has no loop devices".into());
        }
        super::resolve_program(Path::new("mkfs.ext4"))
            .map_err(|e| format!("{e} (Debian package e2fsprogs)"))?;
        Ok(Disks {
            dir: root.join(DISKS_DIR),
            bytes: mib << 20,
        })
    }

    pub fn describe(&self) -> String {
        format!("{} MiB each", self.bytes >> 20)
    }

    fn image(&self, session: &str) -> PathBuf {
        self.dir.join(format!("{session}.img"))
    }

    /// Mounts `session`'s disk at `dir`, making it on first use; a disk already there stays.
    pub async fn attach(&self, session: &str, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        if is_mount_point(dir)? {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let image = self.image(session);
        if !image.exists() {
            let partial = image.with_extension("partial");
            std::fs::File::create(&partial)?.set_len(self.bytes)?;
            // No blocks reserved for root (the sandbox's uid is not root), and the tables
            // written lazily: a sparse image is made in milliseconds.
            run(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0", "-E"])
                .arg("lazy_itable_init=1,lazy_journal_init=1")
                .arg(&partial))
            .await?;
            std::fs::rename(&partial, &image)?;
        }
        run(Command::new("mount")
            .args(["-o", "loop,nodev,nosuid,discard"])
            .arg(&image)
            .arg(dir))
        .await
    }

    /// Unmounts `dir` (lazily: a sandbox's namespace may hold it a moment longer), keeping the
    /// disk for the session's next run.
    pub async fn detach(dir: &Path) -> std::io::Result<()> {
        if !is_mount_point(dir).unwrap_or(false) {
            return Ok(());
        }
        run(Command::new("umount").arg("-l").arg(dir)).await
    }

    /// Unmounts `session`'s disk and deletes it, with its empty mount point.
    pub async fn destroy(&self, session: &str, dir: &Path) -> std::io::Result<()> {
        Disks::detach(dir).await?;
        self.forget(session)?;
        std::fs::remove_dir(dir).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        })
    }

    /// Deletes `name`'s disk, which is mounted nowhere.
    pub fn forget(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.image(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Detaches the disks a provider that was killed left mounted under `root`.
    pub async fn detach_stale(root: &Path) {
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let dir = entry.path();
            if let Err(e) = Disks::detach(&dir).await {
                tracing::warn!("{} stays mounted: {e}", dir.display());
            }
        }
    }
}

/// Whether `dir` is the root of a filesystem other than its parent's.
fn is_mount_point(dir: &Path) -> std::io::Result<bool> {
    let parent = dir.parent().unwrap_or(dir);
    Ok(std::fs::metadata(dir)?.dev() != std::fs::metadata(parent)?.dev())
}

async fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.output().await?;
    if out.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "{:?} failed ({}): {}",
        cmd.as_std().get_program(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}
