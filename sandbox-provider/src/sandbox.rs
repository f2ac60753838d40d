//! One local sandbox: a directory per session and the runner started inside bubblewrap, with
//! its own session's directory writable, the system read-only, other sessions invisible, and a
//! network namespace of its own (see `network`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agent_ops_protocol::api::{CreateSandbox, PanelInfo, SandboxInfo, SandboxState};
use tokio::process::{Child, Command};

use super::disk::Disks;
use super::identity::{own_identity, Identity};
use super::limits::{Backend, Group, Limits};
use super::mounts::Mount;

#[derive(Debug, Clone)]
pub struct Layout {
    /// The sandbox's name: its session's id, or a warm sandbox's own (see `warm`), which it
    /// keeps for the session that takes it.
    pub name: String,
    /// Where every session's directory lives (hidden from all sandboxes but their own).
    pub root: PathBuf,
    pub session_dir: PathBuf,
    pub workspace: PathBuf,
    pub home: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl Layout {
    pub fn new(root: &Path, name: &str) -> Layout {
        let session_dir = root.join(name);
        Layout {
            name: name.to_owned(),
            root: root.to_owned(),
            workspace: session_dir.join("workspace"),
            home: session_dir.join("home"),
            state: session_dir.join("state"),
            // Beside the session's directory, not on its disk: the platform's own output, kept
            // after the session's files are gone, and seen by no sandbox.
            log: root.join(LOGS_DIR).join(format!("{name}.log")),
            session_dir,
        }
    }
}

/// What the sandbox inherits: the pipes through which bubblewrap says which process is the
/// sandbox's first (`info`), then waits (`block`) until the host has connected the sandbox's
/// network, the gateway's listening socket, opened on the host's loopback, and the pipe that
/// brings the runner its assignment and credentials (see `sandbox_handoff`).
#[derive(Debug, Clone, Copy)]
pub struct StartFds {
    pub info: RawFd,
    pub block: RawFd,
    pub gateway: RawFd,
    pub assignment: RawFd,
}

/// What of the host a sandbox sees.
pub struct View<'a> {
    /// The host's system, read-only (see `mounts`).
    pub system: &'a [Mount],
    /// Host paths covered even where they would be seen.
    pub hidden: &'a [PathBuf],
    /// The other host paths the sandbox must read (the runner and agent binaries, the panels'
    /// tools, a local repository), even where an empty mount covers them (the platform living
    /// under `/tmp` or `/root`).
    pub exposed: &'a [PathBuf],
    /// The size of each empty mount.
    pub tmpfs_bytes: u64,
}

/// The bubblewrap arguments that isolate one session's runner. Pure, so the isolation rules are
/// tested without starting anything.
pub fn bwrap_args(
    layout: &Layout,
    view: &View<'_>,
    program: &Path,
    fds: StartFds,
    identity: &Identity,
) -> Vec<OsString> {
    let View {
        system,
        hidden,
        exposed,
        tmpfs_bytes,
    } = *view;
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&dyn AsRef<std::ffi::OsStr>]| {
        for i in items {
            a.push(i.as_ref().to_owned());
        }
    };
    push(&[&"--die-with-parent", &"--new-session"]);
    match identity {
        // Every namespace but the user's: the sandbox's uid is a real one of the host's.
        Identity::Own { .. } => push(&[
            &"--unshare-ipc",
            &"--unshare-pid",
            &"--unshare-net",
            &"--unshare-uts",
            &"--unshare-cgroup-try",
        ]),
        // Every process in the sandbox runs without capabilities, even in its own user
        // namespace: nothing there needs one, and with CAP_SYS_PTRACE the agent could read the
        // runner's memory and environment, however the runner guards them.
        Identity::Operator => push(&[&"--unshare-all", &"--cap-drop", &"ALL"]),
    }
    push(&[
        &"--info-fd",
        &fds.info.to_string(),
        &"--block-fd",
        &fds.block.to_string(),
    ]);
    for mount in system {
        match mount {
            Mount::Bind(path) => push(&[&"--ro-bind", path, path]),
            Mount::Link { target, at } => push(&[&"--symlink", target, at]),
        }
    }
    if let Identity::Own {
        passwd,
        group,
        gitconfig,
        ..
    } = identity
    {
        push(&[&"--ro-bind", passwd, &"/etc/passwd"]);
        push(&[&"--ro-bind", group, &"/etc/group"]);
        push(&[&"--ro-bind", gitconfig, &SANDBOX_GITCONFIG]);
    }
    let size = tmpfs_bytes.to_string();
    for empty in super::mounts::EMPTY {
        // Anyone's to write, as the host's own /tmp is: the sandbox's uid is not root.
        let perms = if empty == "/tmp" { "1777" } else { "0755" };
        push(&[&"--size", &size, &"--perms", &perms, &"--tmpfs", &empty]);
    }
    push(&[&"--dev", &"/dev", &"--proc", &"/proc"]);
    let exposed: Vec<&PathBuf> = exposed.iter().filter(|p| p.exists()).collect();
    for path in &exposed {
        push(&[&"--ro-bind", path, path]);
    }

    // After the exposed paths, so that nothing exposed brings a hidden path back.
    for path in hidden.iter().filter(|p| p.exists()) {
        if path.is_dir() {
            push(&[&"--tmpfs", path]);
        } else {
            push(&[&"--ro-bind", &"/dev/null", path]);
        }
    }
    // Hide every session, then give this one back, writable.
    push(&[&"--tmpfs", &layout.root]);
    push(&[&"--bind", &layout.session_dir, &layout.session_dir]);
    // bubblewrap makes the directories on the way to a bind private to root (`/etc` for its
    // files, `/root/.cache` for the platform's tools); the sandbox's uid must pass through.
    let mut binds: Vec<&Path> = system
        .iter()
        .filter_map(|m| match m {
            Mount::Bind(path) => Some(path.as_path()),
            Mount::Link { .. } => None,
        })
        .collect();
    binds.extend(exposed.iter().map(|p| p.as_path()));
    binds.extend(hidden.iter().filter(|p| p.exists()).map(PathBuf::as_path));
    binds.push(&layout.session_dir);
    let mut mount_points: Vec<&Path> = super::mounts::EMPTY.iter().map(Path::new).collect();
    mount_points.extend([Path::new("/dev"), Path::new("/proc"), &layout.root]);
    mount_points.extend(hidden.iter().filter(|p| p.is_dir()).map(PathBuf::as_path));
    for dir in leading_dirs(&binds, &mount_points) {
        push(&[&"--chmod", &"0755", &dir]);
    }
    push(&[&"--chdir", &layout.workspace]);
    push(&[&"--"]);
    if let Identity::Own { uid, .. } = identity {
        let id = uid.to_string();
        push(&[
            &"setpriv",
            &"--reuid",
            &id,
            &"--regid",
            &id,
            &"--clear-groups",
            &"--inh-caps=-all",
            &"--bounding-set=-all",
            &"--no-new-privs",
            &"--",
        ]);
    }
    push(&[&program, &"run"]);
    a
}

/// The directories bubblewrap creates on the way to `binds`: every ancestor that no bind covers
/// (a bound directory is the host's own, read-only) and that is no mount point (whose mode its
/// mount sets).
fn leading_dirs(binds: &[&Path], mount_points: &[&Path]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for bind in binds {
        for dir in bind.ancestors().skip(1) {
            if dir == Path::new("/") || binds.iter().any(|b| dir.starts_with(b)) {
                break;
            }
            if !mount_points.contains(&dir) && !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_owned());
            }
        }
    }
    // Outermost first, so each is there before the ones inside it.
    dirs.sort_by_key(|d| d.components().count());
    dirs
}

pub struct Sandbox {
    pub layout: Layout,
    pub child: Option<Child>,
    /// pasta, joining the sandbox's network to the host's.
    net: Option<Child>,
    pub state: SandboxState,
    /// The gateway's address: the sandbox's one listener.
    pub gateway: std::net::SocketAddr,
    pub panels: Vec<PanelInfo>,
    /// Its cgroups, released once it has exited.
    group: Option<Group>,
    /// The host uid it runs as, if one of its own.
    pub uid: Option<u32>,
    /// The write end of its runner's assignment pipe, until a session is assigned.
    handoff: Option<std::io::PipeWriter>,
}

pub struct SpawnConfig<'a> {
    pub tools: &'a super::panels::Tools,
    pub panels: &'a [PanelInfo],
    pub runner_bin: &'a Path,
    pub opencode_bin: &'a Path,
    /// The host's system, as the sandbox sees it.
    pub system: &'a [Mount],
    pub hidden: &'a [PathBuf],
    /// A `file://` repository's real directory, checked against the provider's roots.
    pub local_repo: Option<&'a Path>,
    /// The host loopback ports the sandbox may reach.
    pub outbound: &'a [u16],
    pub backend: &'a Backend,
    pub limits: Limits,
    pub heartbeat_ms: u64,
    pub ca_file: Option<&'a Path>,
    /// The host uid the sandbox runs as, where the provider can give it one (see [`Identity`]).
    pub uid: Option<u32>,
    /// The session directory's own bounded filesystem, where the provider can make one.
    pub disks: Option<&'a Disks>,
}

/// What of the host the sandbox sees beside the system: the platform's own programs, their
/// installs, the CA file and a `file://` repository.
fn exposed_paths(cfg: &SpawnConfig<'_>) -> Vec<PathBuf> {
    let mut exposed = vec![cfg.runner_bin.to_owned(), cfg.opencode_bin.to_owned()];
    exposed.extend(cfg.ca_file.map(Path::to_owned));
    let installs = [
        cfg.tools.desktop().map(|(ws, _)| ws),
        cfg.tools.code_server.as_deref(),
    ];
    for program in installs.into_iter().flatten() {
        exposed.extend(super::mounts::install_of(program));
    }
    exposed.extend(cfg.local_repo.map(Path::to_owned));
    exposed
}

/// The runner's environment: nothing of the provider's but `PATH` and `RUST_LOG`, nothing of a
/// session's and never a credential (those come through the assignment's pipe).
fn runner_env(
    cmd: &mut Command,
    layout: &Layout,
    cfg: &SpawnConfig<'_>,
    identity: &Identity,
    fds: StartFds,
) {
    let ports: Vec<String> = cfg.outbound.iter().map(u16::to_string).collect();
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &layout.home)
        .env("LANG", "C.UTF-8")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env("AGENT_OPS_WORKSPACE", &layout.workspace)
        .env("AGENT_OPS_STATE_DIR", &layout.state)
        .env("AGENT_OPS_OPENCODE_BIN", cfg.opencode_bin)
        .env("AGENT_OPS_HEARTBEAT_MS", cfg.heartbeat_ms.to_string())
        .env("AGENT_OPS_HOST_PORTS", ports.join(","))
        .env("AGENT_OPS_GATEWAY_FD", fds.gateway.to_string())
        .env(
            sandbox_handoff::ASSIGNMENT_FD_ENV,
            fds.assignment.to_string(),
        );
    if matches!(identity, Identity::Own { .. }) {
        // Wherever this host's git was built to look for it.
        cmd.env("GIT_CONFIG_SYSTEM", SANDBOX_GITCONFIG);
    }
    if let Some((websockify, novnc)) = cfg.tools.desktop() {
        cmd.env("AGENT_OPS_WEBSOCKIFY", websockify)
            .env("AGENT_OPS_NOVNC_DIR", novnc);
    }
    if let Some(code_server) = &cfg.tools.code_server {
        cmd.env("AGENT_OPS_CODE_SERVER", code_server);
    }
    if let Some(ca_file) = cfg.ca_file {
        cmd.env("AGENT_OPS_CA_FILE", ca_file);
    }
}

/// Lets bubblewrap inherit the descriptors it is started with.
fn hand_down(cmd: &mut Command, fds: StartFds) {
    // SAFETY: runs in the forked child before exec and makes raw fcntl calls only. These
    // were opened close-on-exec, so no other child inherits them; this one must.
    unsafe {
        cmd.pre_exec(move || {
            for fd in [fds.info, fds.block, fds.gateway, fds.assignment] {
                rustix::io::fcntl_setfd(BorrowedFd::borrow_raw(fd), rustix::io::FdFlags::empty())?;
            }
            Ok(())
        });
    }
}

/// What the runner reads from its pipe (see `sandbox_handoff`): the session it serves and its
/// credentials. Not the environment: bubblewrap's init, the sandbox's first process, keeps the
/// environment it is started with, where any process in the sandbox could read it.
pub fn assignment(req: &CreateSandbox) -> Result<Vec<u8>, String> {
    let model = serde_json::to_string(&req.model).map_err(|e| e.to_string())?;
    let mut values = BTreeMap::from([
        ("AGENT_OPS_SESSION_ID", req.session_id.as_str()),
        ("AGENT_OPS_CONTROL_URL", req.control_url.as_str()),
        ("AGENT_OPS_MODEL", model.as_str()),
        ("AGENT_OPS_RUNNER_TOKEN", req.runner_token.as_str()),
        ("AGENT_OPS_PANEL_KEY", req.panel_key.as_str()),
    ]);
    if let Some(repo) = &req.repo {
        values.insert("AGENT_OPS_REPO", repo);
    }
    if let Some(branch) = &req.branch {
        values.insert("AGENT_OPS_BRANCH", branch);
    }
    sandbox_handoff::encode_assignment(&values)
}

impl Layout {
    /// Session `id`'s layout: its own directory, or the warm sandbox's that it took (which
    /// `root/<id>` links to), so every run of a session sees its files at the same paths.
    pub fn of_session(root: &Path, id: &str) -> Layout {
        let name = std::fs::read_link(root.join(id))
            .ok()
            .and_then(|target| target.to_str().map(str::to_owned))
            .filter(|name| super::warm::is_warm(name))
            .unwrap_or_else(|| id.to_owned());
        Layout {
            log: root.join(LOGS_DIR).join(format!("{id}.log")),
            ..Layout::new(root, &name)
        }
    }

    /// Makes this warm sandbox's files session `id`'s: `root/<id>` links to its directory (where
    /// the operator finds them, and the session's next run), and its log is the session's.
    pub fn claim(&mut self, id: &str) -> std::io::Result<()> {
        std::os::unix::fs::symlink(&self.name, self.root.join(id))?;
        let log = self.root.join(LOGS_DIR).join(format!("{id}.log"));
        std::fs::rename(&self.log, &log)?;
        self.log = log;
        Ok(())
    }

    /// The session's directories, on its own disk where the host bounds one, and its log.
    async fn prepare(&self, disks: Option<&Disks>) -> std::io::Result<std::fs::File> {
        if let Some(disks) = disks {
            disks.attach(&self.name, &self.session_dir).await?;
        }
        for d in [
            &self.workspace,
            &self.home,
            &self.state,
            &self.root.join(NET_DIR),
            &self.root.join(LOGS_DIR),
        ] {
            std::fs::create_dir_all(d)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
    }
}

/// What a sandbox is started with, once its directories and descriptors are ready.
struct Start<'a> {
    layout: &'a Layout,
    identity: &'a Identity,
    fds: StartFds,
    log: &'a std::fs::File,
}

impl Start<'_> {
    /// The bubblewrap command that starts the runner: the host's view, the runner's
    /// environment, the descriptors it inherits and, without cgroups, its rlimits.
    fn bwrap(&self, cfg: &SpawnConfig<'_>) -> std::io::Result<Command> {
        let exposed = exposed_paths(cfg);
        let view = View {
            system: cfg.system,
            hidden: cfg.hidden,
            exposed: &exposed,
            tmpfs_bytes: cfg.limits.tmpfs_bytes,
        };
        let mut cmd = Command::new("bwrap");
        cmd.args(bwrap_args(
            self.layout,
            &view,
            cfg.runner_bin,
            self.fds,
            self.identity,
        ))
        .stdin(Stdio::null())
        .stdout(self.log.try_clone()?)
        .stderr(self.log.try_clone()?)
        .kill_on_drop(true);
        runner_env(&mut cmd, self.layout, cfg, self.identity, self.fds);
        hand_down(&mut cmd, self.fds);
        if *cfg.backend == Backend::Rlimits {
            let limits = cfg.limits;
            // SAFETY: runs in the forked child before exec and makes raw setrlimit calls only.
            unsafe {
                cmd.pre_exec(move || super::limits::apply_rlimits(limits));
            }
        }
        Ok(cmd)
    }
}

impl Sandbox {
    /// Starts the sandbox of `layout`: bubblewrap, its first process bounded and its network joined
    /// before bubblewrap lets the runner start. The runner then waits for its assignment
    /// ([`Sandbox::assign`]).
    pub async fn spawn(layout: Layout, cfg: &SpawnConfig<'_>) -> std::io::Result<Sandbox> {
        let (root, name) = (layout.root.as_path(), layout.name.as_str());
        let log = layout.prepare(cfg.disks).await?;
        let identity = match cfg.uid {
            Some(uid) => own_identity(root, &layout, name, uid)?,
            None => Identity::Operator,
        };
        // Opened here, in the host's network, and handed down: the gateway answers on the host's
        // loopback with no hop in between, and the sandbox's own network stays closed.
        let gateway_socket = std::net::TcpListener::bind("127.0.0.1:0")?;
        let gateway = gateway_socket.local_addr()?;
        let (info_rx, info_tx) = std::io::pipe()?;
        let (block_rx, mut block_tx) = std::io::pipe()?;
        let (assignment_rx, assignment_tx) = std::io::pipe()?;
        let fds = StartFds {
            info: info_tx.as_raw_fd(),
            block: block_rx.as_raw_fd(),
            gateway: gateway_socket.as_raw_fd(),
            assignment: assignment_rx.as_raw_fd(),
        };
        let group = Group::create(cfg.backend, name, cfg.limits)?;
        let start = Start {
            layout: &layout,
            identity: &identity,
            fds,
            log: &log,
        };
        let mut child = start.bwrap(cfg)?.spawn()?;
        drop((info_tx, block_rx, gateway_socket, assignment_rx));
        let pid_file = root.join(NET_DIR).join(format!("{name}.pid"));
        let joined = async {
            let pid = first_process(info_rx).await?;
            // Before the sandbox starts anything: all it starts is bounded with it.
            for p in child.id().into_iter().chain([pid]) {
                group.add(p)?;
            }
            let userns = identity == Identity::Operator;
            super::network::join(pid, cfg.outbound, &pid_file, userns, log).await
        };
        let net = match joined.await {
            Ok(net) => net,
            Err(e) => {
                child.kill().await.ok();
                group.release().await;
                return Err(e);
            }
        };
        // The network is up: let bubblewrap start the runner.
        block_tx.write_all(b"1")?;
        Ok(Sandbox {
            layout,
            child: Some(child),
            net: Some(net),
            state: SandboxState::Running,
            gateway,
            panels: cfg.panels.to_vec(),
            group: Some(group),
            uid: cfg.uid,
            handoff: Some(assignment_tx),
        })
    }

    /// Gives the runner its session: written whole into a pipe that holds it (see
    /// `sandbox_handoff`), and closed, so the runner reads it at once and nothing more.
    pub fn assign(&mut self, assignment: &[u8]) -> std::io::Result<()> {
        let mut pipe = self.handoff.take().ok_or_else(|| {
            std::io::Error::other(format!("sandbox {} has its session", self.layout.name))
        })?;
        pipe.write_all(assignment)
    }

    /// Refreshes `state` from the process, without blocking; an exited sandbox gives back what
    /// it held at once (its network, its groups), though its directory stays for a restart.
    pub async fn poll(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                self.state = SandboxState::Exited;
                self.child = None;
                // Dropping pasta kills it, and frees the gateway's port.
                self.net = None;
                if let Some(group) = self.group.take() {
                    group.release().await;
                }
            }
        }
    }

    /// Kills bubblewrap (its PID namespace takes every process of the sandbox with it) and
    /// pasta; the session's files stay.
    pub async fn stop(&mut self) {
        for mut child in [self.child.take(), self.net.take()].into_iter().flatten() {
            child.kill().await.ok();
        }
        if let Some(group) = self.group.take() {
            group.release().await;
        }
        if self.state == SandboxState::Running {
            self.state = SandboxState::Exited;
        }
    }

    /// Stops the sandbox and removes what the session wrote (its disk, where it has one): a
    /// terminated session never runs again. Its runner's log stays, for the operator.
    pub async fn terminate(&mut self, disks: Option<&Disks>) {
        self.stop().await;
        self.state = SandboxState::Terminated;
        let layout = &self.layout;
        if let Some(disks) = disks {
            if let Err(e) = disks.destroy(&layout.name, &layout.session_dir).await {
                tracing::warn!("the disk of {} left behind: {e}", layout.name);
            }
            return;
        }
        for dir in [&layout.workspace, &layout.home, &layout.state] {
            if let Err(e) = tokio::fs::remove_dir_all(dir).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("{} left behind: {e}", dir.display());
                }
            }
        }
    }

    pub fn info(&self, session_id: &str) -> SandboxInfo {
        SandboxInfo {
            session_id: session_id.to_owned(),
            state: self.state,
            workspace: self.layout.workspace.display().to_string(),
            log_path: self.layout.log.display().to_string(),
            gateway_url: Some(format!("http://{}", self.gateway)),
            panels: self.panels.clone(),
        }
    }
}

/// Where a sandbox with a uid of its own finds git's system configuration.
const SANDBOX_GITCONFIG: &str = "/etc/gitconfig";

/// Where the runners' logs live.
pub const LOGS_DIR: &str = ".logs";

/// Where pasta's pid files live: under the sandbox root, which every sandbox sees as empty, and
/// named so no session's directory can be it (session ids have no dots).
const NET_DIR: &str = ".net";

/// The pid of the sandbox's first process, from what bubblewrap writes to its info pipe.
async fn first_process(info: std::io::PipeReader) -> std::io::Result<u32> {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(rename = "child-pid")]
        child_pid: u32,
    }
    let read = tokio::task::spawn_blocking(move || {
        // One JSON document, read as it arrives: bubblewrap may keep the pipe open after it.
        serde_json::Deserializer::from_reader(info)
            .into_iter::<Info>()
            .next()
            .unwrap_or_else(|| Err(serde::de::Error::custom("bubblewrap exited first")))
    });
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Ok(Ok(info))) => Ok(info.child_pid),
        Ok(Ok(Err(e))) => Err(std::io::Error::other(format!(
            "bubblewrap did not start the sandbox: {e}"
        ))),
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "bubblewrap did not start the sandbox within 5 s",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(args: &[OsString], seq: &[&str]) -> Option<usize> {
        args.windows(seq.len())
            .position(|w| w.iter().zip(seq).all(|(a, b)| a == b))
    }

    #[test]
    fn isolation_rules() {
        let layout = Layout::new(Path::new("/srv/sb"), "abc");
        let system = [
            Mount::Bind("/usr".into()),
            Mount::Link {
                target: "usr/bin".into(),
                at: "/bin".into(),
            },
        ];
        let view = View {
            system: &system,
            hidden: &[
                PathBuf::from("/etc/hostname"),
                PathBuf::from("/nonexistent"),
            ],
            exposed: &[PathBuf::from("/bin/sh")],
            tmpfs_bytes: 64 << 20,
        };
        let args = bwrap_args(
            &layout,
            &view,
            Path::new("/bin/runner"),
            StartFds {
                info: 7,
                block: 9,
                gateway: 11,
                assignment: 13,
            },
            &Identity::Operator,
        );
        let tmp = pos(&args, &["--tmpfs", "/tmp"]).expect("private /tmp");
        let exposed = pos(&args, &["--ro-bind", "/bin/sh", "/bin/sh"]).expect("exposed read-only");
        assert!(tmp < exposed, "exposed paths survive the private mounts");
        let hidden = pos(&args, &["--ro-bind", "/dev/null", "/etc/hostname"]).expect("hidden");
        assert!(
            exposed < hidden,
            "nothing exposed brings a hidden path back"
        );
        assert!(
            pos(&args, &["--ro-bind", "/", "/"]).is_none(),
            "not the host's /"
        );
        let ro = pos(&args, &["--ro-bind", "/usr", "/usr"]).expect("system read-only");
        assert!(pos(&args, &["--symlink", "usr/bin", "/bin"]).is_some());
        for empty in ["/home", "/root", "/run", "/var", "/tmp"] {
            let perms = if empty == "/tmp" { "1777" } else { "0755" };
            let at = pos(
                &args,
                &["--size", "67108864", "--perms", perms, "--tmpfs", empty],
            )
            .unwrap_or_else(|| panic!("{empty} empty and bounded"));
            assert!(at < exposed, "exposed paths survive {empty}");
        }
        let hide_all = pos(&args, &["--tmpfs", "/srv/sb"]).expect("other sessions hidden");
        let own = pos(&args, &["--bind", "/srv/sb/abc", "/srv/sb/abc"]).expect("own dir writable");
        assert!(
            ro < hide_all && hide_all < own,
            "order matters: later mounts win"
        );
        assert!(pos(&args, &["--ro-bind", "/dev/null", "/etc/hostname"]).is_some());
        assert!(
            !args.iter().any(|a| a == "/nonexistent"),
            "missing paths are skipped"
        );
        assert!(
            pos(&args, &["--unshare-all"]).is_some()
                && pos(&args, &["--die-with-parent"]).is_some()
        );
        assert!(
            !args.iter().any(|a| a == "--share-net"),
            "the sandbox has a network namespace of its own"
        );
        assert!(
            pos(&args, &["--info-fd", "7"]).is_some() && pos(&args, &["--block-fd", "9"]).is_some()
        );
        assert!(pos(&args, &["--chdir", "/srv/sb/abc/workspace"]).is_some());
        assert!(
            pos(&args, &["--cap-drop", "ALL"]).is_some(),
            "no capabilities, even in the sandbox's own user namespace"
        );
        assert_eq!(
            &args[args.len() - 3..],
            &["--", "/bin/runner", "run"].map(OsString::from)
        );
    }

    #[test]
    fn a_root_provider_drops_to_the_sandboxs_own_uid() {
        let layout = Layout::new(Path::new("/srv/sb"), "abc");
        // Under /tmp, one of the empty mounts, as the platform's tools may be under /root.
        let tool =
            std::env::temp_dir().join(format!("aops-{}/tools/editor-1.0", std::process::id()));
        std::fs::create_dir_all(&tool).unwrap();
        let (tools, top) = (
            tool.parent().unwrap(),
            tool.parent().unwrap().parent().unwrap(),
        );
        let identity = Identity::Own {
            uid: 200_123,
            passwd: "/srv/sb/.names/abc.passwd".into(),
            group: "/srv/sb/.names/abc.group".into(),
            gitconfig: "/srv/sb/.names/abc.gitconfig".into(),
        };
        let fds = StartFds {
            info: 7,
            block: 9,
            gateway: 11,
            assignment: 13,
        };
        let exposed = [tool.clone()];
        let view = View {
            system: &[],
            hidden: &[],
            exposed: &exposed,
            tmpfs_bytes: 1,
        };
        let args = bwrap_args(&layout, &view, Path::new("/bin/runner"), fds, &identity);
        assert!(
            !args
                .iter()
                .any(|a| a == "--unshare-all" || a == "--unshare-user"),
            "the host's user namespace: the uid is a real one"
        );
        assert!(
            pos(&args, &["--unshare-pid"]).is_some() && pos(&args, &["--unshare-net"]).is_some()
        );
        let drop = pos(
            &args,
            &[
                "setpriv",
                "--reuid",
                "200123",
                "--regid",
                "200123",
                "--clear-groups",
            ],
        )
        .expect("drops to its uid");
        assert!(pos(
            &args,
            &["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        )
        .is_some());
        assert_eq!(
            &args[args.len() - 2..],
            &["/bin/runner", "run"].map(OsString::from)
        );
        assert!(drop > pos(&args, &["--"]).unwrap());
        assert!(pos(
            &args,
            &["--ro-bind", "/srv/sb/.names/abc.passwd", "/etc/passwd"]
        )
        .is_some());
        // The way to an exposed tool under an empty mount opens; the tool itself is not touched.
        let at = |p: &Path| p.to_str().unwrap().to_owned();
        let bind = pos(&args, &["--ro-bind", &at(&tool)]).unwrap();
        let outer = pos(&args, &["--chmod", "0755", &at(top)]).expect("the outer directory");
        let inner = pos(&args, &["--chmod", "0755", &at(tools)]).expect("the inner one");
        assert!(bind < outer && outer < inner);
        assert!(
            pos(&args, &["--chmod", "0755", "/tmp"]).is_none(),
            "a mount point"
        );
        assert!(pos(&args, &["--chmod", "0755", &at(&tool)]).is_none());
        std::fs::remove_dir_all(top).ok();
    }
}
