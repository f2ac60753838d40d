//! A local sandbox's network: its own namespace (bubblewrap unshares it), so what the agent starts
//! on loopback (OpenCode's API, a dev server) is reached only through the gateway, never from the
//! host or from another sandbox. The way in is the gateway's listening socket, opened on the
//! host and handed down (see `sandbox.rs`). The ways out are pasta's: the host loopback ports the
//! provider's configuration allows (`--allow-port`: its Worker, a local Git host; never one a
//! request names, never the model's, which the agent calls through the Worker), and
//! the rest of the world through pasta's NAT, as from any container.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// pasta configures a namespace in about 20 ms here; this only bounds a broken one.
const READY_WITHIN: Duration = Duration::from_secs(5);

/// The sandbox's namespaces, as pasta is to find them.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The user and network namespaces of this process (bubblewrap's, in a user namespace of
    /// its own).
    Process(u32),
    /// A network namespace alone, opened by the provider and inherited as this descriptor: the
    /// sandbox is in the host's user namespace, and pasta, having dropped its capabilities, may
    /// not open another root process's namespaces itself.
    NetFd(i32),
}

/// pasta's arguments to join the sandbox's namespace to the host. Pure, so the rules that keep
/// the sandbox closed are tested without starting anything.
pub fn pasta_args(target: Target, outbound: &[u16], pid_file: &Path, uid: u32) -> Vec<OsString> {
    let outbound = if outbound.is_empty() {
        "none".to_owned()
    } else {
        let ports: Vec<String> = outbound.iter().map(u16::to_string).collect();
        ports.join(",")
    };
    let uid = uid.to_string();
    let mut args: Vec<String> = [
        "--foreground",
        "--quiet",
        // pasta otherwise drops to "nobody", who may not enter a namespace the host made.
        "--runas",
        &uid,
        "--config-net",
        // By default the namespace's gateway address leads to ALL of the host's loopback.
        "--no-map-gw",
        // Unlisted, these default to "every port bound on the other side".
        "--tcp-ports",
        "none",
        "--tcp-ns",
        &outbound,
        "--udp-ports",
        "none",
        "--udp-ns",
        "none",
        // Written once the namespace is configured and every port is bound: the ready signal.
        "--pid",
        &pid_file.display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    match target {
        Target::Process(pid) => args.push(pid.to_string()),
        Target::NetFd(fd) => {
            args.extend(["--netns-only", "--netns"].map(str::to_owned));
            args.push(format!("/proc/self/fd/{fd}"));
        }
    }
    args.into_iter().map(OsString::from).collect()
}

/// Whether a namespace's `fib_trie` (from `/proc/<pid>/net`) shows its loopback up: routes for
/// 127.0.0.1 exist once the address is on `lo` and `lo` is up, not before.
fn loopback_is_up(fib_trie: &str) -> bool {
    fib_trie
        .lines()
        .any(|l| l.trim_start_matches([' ', '|', '-']) == "127.0.0.1")
}

/// Waits until bubblewrap has given the sandbox's namespace its loopback. bubblewrap does that
/// in the sandbox's first process right after telling us its pid, and pasta brings `lo` up as it
/// joins: started at once, the two race, and bubblewrap's setup fails now and then
/// ("loopback: Failed RTM_NEWADDR").
async fn loopback_configured(sandbox_pid: u32) -> std::io::Result<()> {
    let trie = format!("/proc/{sandbox_pid}/net/fib_trie");
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        // An unreadable table means the sandbox's first process is gone: it failed to start.
        if loopback_is_up(&std::fs::read_to_string(&trie)?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "bubblewrap did not bring the sandbox's loopback up within 5 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Starts pasta for the sandbox whose first process is `sandbox_pid`, once that process has
/// set its namespace's loopback up, and returns once the sandbox's ways out are open. pasta dies
/// with the host, whose sandboxes die with it.
pub async fn join(
    sandbox_pid: u32,
    outbound: &[u16],
    pid_file: &Path,
    userns: bool,
    log: std::fs::File,
) -> std::io::Result<Child> {
    loopback_configured(sandbox_pid).await?;
    std::fs::remove_file(pid_file).ok();
    let uid = rustix::process::geteuid().as_raw();
    // Held until pasta has started with its copy.
    let netns = if userns {
        None
    } else {
        Some(std::fs::File::open(format!("/proc/{sandbox_pid}/ns/net"))?)
    };
    let target = match &netns {
        Some(ns) => Target::NetFd(ns.as_raw_fd()),
        None => Target::Process(sandbox_pid),
    };
    let mut cmd = Command::new("pasta");
    cmd.args(pasta_args(target, outbound, pid_file, uid))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    // SAFETY: runs in the forked child before exec and makes raw system calls only (prctl,
    // fcntl), which neither allocate nor take locks.
    unsafe {
        cmd.pre_exec(move || {
            if let Target::NetFd(fd) = target {
                rustix::io::fcntl_setfd(
                    std::os::fd::BorrowedFd::borrow_raw(fd),
                    rustix::io::FdFlags::empty(),
                )?;
            }
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("pasta (Debian package passt) could not start: {e}"),
        )
    })?;
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if std::fs::metadata(pid_file).is_ok_and(|m| m.len() > 0) {
            return Ok(child);
        }
        if let Some(status) = child.try_wait()? {
            return Err(std::io::Error::other(format!(
                "pasta exited ({status}) before the sandbox's network was up; see its log"
            )));
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "pasta did not bring the sandbox's network up within 5 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_is_up_once_the_kernel_routes_127_0_0_1() {
        // A fresh namespace's table is empty; this is one with `lo` up.
        assert!(!loopback_is_up(""));
        let up = "Local:\n  +-- 127.0.0.0/8 2 0 2\n     +-- 127.0.0.0/31 1 0 0\n        \
                  |-- 127.0.0.0\n           /8 host LOCAL\n        |-- 127.0.0.1\n           \
                  /32 host LOCAL\n";
        assert!(loopback_is_up(up));
        assert!(!loopback_is_up("Local:\n        |-- 127.0.0.10\n"));
    }

    fn after<'a>(args: &'a [OsString], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].to_str().unwrap())
            .collect()
    }

    #[test]
    fn pasta_opens_only_the_listed_ports_out_and_none_in() {
        let args = pasta_args(
            Target::Process(42),
            &[8787, 8791],
            Path::new("/r/.net/s.pid"),
            0,
        );
        assert_eq!(after(&args, "--tcp-ports"), ["none"]);
        assert_eq!(after(&args, "--tcp-ns"), ["8787,8791"]);
        assert_eq!(after(&args, "--udp-ports"), ["none"]);
        assert_eq!(after(&args, "--udp-ns"), ["none"]);
        assert_eq!(after(&args, "--runas"), ["0"]);
        assert_eq!(after(&args, "--pid"), ["/r/.net/s.pid"]);
        assert!(args.iter().any(|a| a == "--no-map-gw"));
        assert!(args.iter().any(|a| a == "--foreground"));
        assert_eq!(args.last().unwrap(), "42");
        let closed = pasta_args(Target::NetFd(5), &[], Path::new("/p"), 1000);
        assert_eq!(after(&closed, "--tcp-ns"), ["none"]);
        // A sandbox in the host's user namespace is joined by its network alone.
        assert_eq!(after(&closed, "--netns"), ["/proc/self/fd/5"]);
        assert!(closed.iter().any(|a| a == "--netns-only"));
        assert!(!args.iter().any(|a| a == "--netns-only"));
    }
}
