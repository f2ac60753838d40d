//! Warm sandboxes: started before any session asks, so a session's create does not wait for
//! what starting one takes (its disk made and mounted, bubblewrap, its cgroups, pasta joining
//! its network: about 90 ms here). Each waits with its runner blocked on its assignment pipe;
//! a create takes one, writes the session into that pipe (`Sandbox::assign`), and another is
//! started in its place.
//!
//! A warm sandbox serves one session, ever: it is never handed back. It is what a cold one
//! would be for that session (the same view of the host, bounds, network and its own uid); only
//! its name is its own (`.warm-...`, which no session id can be), and `root/<session>` links to
//! its directory from when the session takes it. A session that needs something a warm sandbox
//! lacks (a `file://` repository mounted for it), or a run after its first, starts cold.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, Notify};

use super::disk::Disks;
use super::sandbox::Sandbox;

const PREFIX: &str = ".warm-";

/// Whether `name` is a warm sandbox's: no session's id has a dot.
pub fn is_warm(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

pub struct Warm {
    /// How many to keep ready.
    want: usize,
    state: Mutex<Ready>,
    wake: Notify,
    /// Told each time a start ends (see `drain`).
    settled: Notify,
    made: AtomicU64,
}

/// How long a stopping provider waits for the starts under way to end, so as to remove them.
const SETTLE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Default)]
struct Ready {
    sandboxes: Vec<Sandbox>,
    /// The uids of those being started: taken, as a running sandbox's are.
    starting: Vec<u32>,
    /// How many are being started (those without a uid of their own too).
    in_flight: usize,
    /// The provider is stopping: no more are started, and one whose start ends is removed.
    closed: bool,
}

impl Ready {
    fn held(&self) -> Vec<u32> {
        let ready = self.sandboxes.iter().filter_map(|sb| sb.uid);
        ready.chain(self.starting.iter().copied()).collect()
    }
}

impl Warm {
    pub fn new(want: usize) -> Warm {
        Warm {
            want,
            state: Mutex::default(),
            wake: Notify::new(),
            settled: Notify::new(),
            made: AtomicU64::new(0),
        }
    }

    /// A ready sandbox whose runner is still waiting, if there is one; another is started in its
    /// place. One found to have exited is discarded on the way.
    pub async fn take(&self, disks: Option<&Disks>) -> Option<Sandbox> {
        let mut state = self.state.lock().await;
        while let Some(mut sb) = state.sandboxes.pop() {
            sb.poll().await;
            self.wake.notify_one();
            if sb.child.is_some() {
                return Some(sb);
            }
            tracing::warn!("warm sandbox {} exited while it waited", sb.layout.name);
            discard(sb, disks).await;
        }
        None
    }

    /// The uids warm sandboxes hold or are being started with.
    pub async fn uids(&self) -> Vec<u32> {
        self.state.lock().await.held()
    }

    /// When one more is wanted: its name, and its uid, which `pick` chooses from its name and
    /// the uids warm sandboxes hold; it is held from now on.
    pub async fn reserve(
        &self,
        pick: impl FnOnce(&str, &[u32]) -> Option<u32>,
    ) -> Option<(String, Option<u32>)> {
        let mut state = self.state.lock().await;
        if state.closed || state.sandboxes.len() + state.in_flight >= self.want {
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "{PREFIX}{nanos:x}-{}",
            self.made.fetch_add(1, Ordering::Relaxed)
        );
        let uid = pick(&name, &state.held());
        state.starting.extend(uid);
        state.in_flight += 1;
        Some((name, uid))
    }

    /// Where a reserved start ended: ready, or given up. One that ends after the provider began
    /// to stop is removed at once.
    pub async fn started(&self, uid: Option<u32>, sandbox: Option<Sandbox>, disks: Option<&Disks>) {
        let mut state = self.state.lock().await;
        if let Some(i) = uid.and_then(|u| state.starting.iter().position(|s| *s == u)) {
            state.starting.swap_remove(i);
        }
        state.in_flight -= 1;
        match (state.closed, sandbox) {
            (true, Some(sb)) => discard(sb, disks).await,
            (false, sb) => state.sandboxes.extend(sb),
            (true, None) => {}
        }
        self.settled.notify_waiters();
    }

    /// Until another is wanted.
    pub async fn wanted(&self) {
        self.wake.notified().await
    }

    /// Drops those whose runner exited while it waited.
    pub async fn poll(&self, disks: Option<&Disks>) {
        let mut state = self.state.lock().await;
        let mut kept = Vec::new();
        let had = state.sandboxes.len();
        for mut sb in std::mem::take(&mut state.sandboxes) {
            sb.poll().await;
            match sb.child.is_some() {
                true => kept.push(sb),
                false => discard(sb, disks).await,
            }
        }
        if kept.len() < had {
            self.wake.notify_one();
        }
        state.sandboxes = kept;
    }

    /// Stops and removes every ready one, and those still starting once they have started (the
    /// provider is stopping): none is left holding its disk.
    pub async fn drain(&self, disks: Option<&Disks>) {
        let ready = {
            let mut state = self.state.lock().await;
            state.closed = true;
            std::mem::take(&mut state.sandboxes)
        };
        for sb in ready {
            discard(sb, disks).await;
        }
        let settled = async {
            loop {
                let state = self.state.lock().await;
                if state.in_flight == 0 {
                    return;
                }
                // Registered before the lock is let go, so no start's end is missed.
                let next = self.settled.notified();
                drop(state);
                next.await;
            }
        };
        if tokio::time::timeout(SETTLE_AT_MOST, settled).await.is_err() {
            tracing::warn!("a warm sandbox still starting was left behind");
        }
    }
}

/// A warm sandbox no session took: nothing of it is kept, not even its log.
pub async fn discard(mut sb: Sandbox, disks: Option<&Disks>) {
    sb.terminate(disks).await;
    for leftover in [&sb.layout.session_dir, &sb.layout.log] {
        let gone = match leftover.is_dir() {
            true => std::fs::remove_dir_all(leftover),
            false => std::fs::remove_file(leftover),
        };
        if let Err(e) = gone.or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        }) {
            tracing::warn!("{} left behind: {e}", leftover.display());
        }
    }
}

/// Removes what warm sandboxes of a provider that was killed left behind, where no session took
/// them. (Their disks are detached by then.)
pub fn sweep(root: &Path, disks: Option<&Disks>) {
    let entries: Vec<_> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let taken: Vec<std::path::PathBuf> = entries
        .iter()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect();
    for entry in &entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_warm(&name) || taken.iter().any(|t| t.as_os_str() == name.as_str()) {
            continue;
        }
        let log = root
            .join(super::sandbox::LOGS_DIR)
            .join(format!("{name}.log"));
        let removed = std::fs::remove_dir_all(entry.path())
            .and_then(|()| disks.map_or(Ok(()), |d| d.forget(&name)))
            .and_then(|()| std::fs::remove_file(&log).or(Ok(())));
        if let Err(e) = removed {
            tracing::warn!("{} left behind: {e}", entry.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_name_is_no_sessions() {
        assert!(is_warm(".warm-18c2f-0"));
        for not in ["warm-1", ".warm-", ".warm-a/b", ".warm-..", "abc", ".logs"] {
            assert!(!is_warm(not), "{not}");
        }
    }
}
