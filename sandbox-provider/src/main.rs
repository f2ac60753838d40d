//! `sandbox-provider`: the local sandbox provider, on the host. A small HTTP API (create,
//! inspect, terminate) that the Worker calls with signed requests, starting each session's
//! runner (`sandbox-runner run`, a binary of its own) isolated by bubblewrap. What crosses to
//! the runner is only what `sandbox_handoff` defines.

mod disk;
mod identity;
mod limits;
mod mounts;
mod network;
mod panels;
mod repos;
mod sandbox;
mod warm;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agent_ops_protocol::api::CreateSandbox;
use agent_ops_protocol::signing::{
    verify_request, NonceLedger, Signature, SignatureError, NONCE_HEADER, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};
use agent_ops_protocol::{ApiError, ErrorCode};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::Mutex;

use sandbox::{Layout, Sandbox, SpawnConfig};

#[derive(clap::Parser, Clone)]
#[command(version, about)]
struct Args {
    #[arg(
        long,
        env = "AGENT_OPS_PROVIDER_LISTEN",
        default_value = "127.0.0.1:8790"
    )]
    listen: SocketAddr,
    /// Directory holding one sub-directory per session (workspace, state, log).
    #[arg(
        long,
        env = "AGENT_OPS_SANDBOX_ROOT",
        default_value = ".state/sandboxes"
    )]
    root: PathBuf,
    #[arg(long, env = "AGENT_OPS_PROVIDER_SECRET", hide_env_values = true)]
    secret: String,
    /// The runner binary started in each sandbox (default: `sandbox-runner` beside this one).
    #[arg(long, env = "AGENT_OPS_RUNNER_BIN")]
    runner_bin: Option<PathBuf>,
    #[arg(long, env = "AGENT_OPS_OPENCODE_BIN", default_value = "opencode")]
    opencode_bin: PathBuf,
    /// Paths no sandbox may read (secrets files, local platform state). Repeatable.
    #[arg(long = "hide")]
    hidden: Vec<PathBuf>,
    #[arg(long, env = "AGENT_OPS_HEARTBEAT_MS", default_value_t = 5000)]
    heartbeat_ms: u64,
    /// websockify with `--unix-listen` (0.11 or later; `make setup` installs it from PyPI).
    #[arg(long, env = "AGENT_OPS_WEBSOCKIFY")]
    websockify: Option<PathBuf>,
    #[arg(long, env = "AGENT_OPS_NOVNC_DIR", default_value = "/usr/share/novnc")]
    novnc_dir: PathBuf,
    #[arg(long, env = "AGENT_OPS_CODE_SERVER", default_value = "code-server")]
    code_server: PathBuf,
    /// Directories under which `file://` repositories may be named (a local Git host's). None by
    /// default: no sandbox is given a path of the host a user chose. Repeatable.
    #[arg(
        long = "repo-root",
        env = "AGENT_OPS_REPO_ROOTS",
        value_delimiter = ','
    )]
    repo_roots: Vec<PathBuf>,
    /// Accept `ssh://` repositories.
    #[arg(long, env = "AGENT_OPS_ALLOW_SSH_REPOS")]
    allow_ssh_repos: bool,
    /// The host loopback ports sandboxes may reach (the Worker's, a local Git host's): the only
    /// ways out to the host, whatever a request names. Repeatable.
    #[arg(
        long = "allow-port",
        env = "AGENT_OPS_ALLOW_PORTS",
        value_delimiter = ','
    )]
    allow_ports: Vec<u16>,
    /// Memory one sandbox may use, in MiB (its processes and its tmpfs mounts together).
    #[arg(long, env = "AGENT_OPS_SANDBOX_MEMORY_MIB", default_value_t = 4096)]
    memory_mib: u64,
    /// Processes (and threads) one sandbox may have at once.
    #[arg(long, env = "AGENT_OPS_SANDBOX_PIDS", default_value_t = 2048)]
    pids: u64,
    /// One sandbox's CPU weight against the others' (1024 = an equal share).
    #[arg(long, env = "AGENT_OPS_SANDBOX_CPU_SHARES", default_value_t = 1024)]
    cpu_shares: u64,
    /// The size of each of a sandbox's private tmpfs mounts (`/tmp`, `/home`, ...), in MiB.
    #[arg(long, env = "AGENT_OPS_SANDBOX_TMPFS_MIB", default_value_t = 1024)]
    tmpfs_mib: u64,
    /// The first of the host uids sandboxes run as (65536 of them), when the provider runs as
    /// root; pick a range no host user or container has.
    #[arg(long, env = "AGENT_OPS_SANDBOX_UID_BASE", default_value_t = 200_000)]
    sandbox_uid_base: u32,
    /// The disk one sandbox may fill (its workspace, home and state), in MiB: a sparse ext4
    /// image loop-mounted as its session directory. 0, or a provider that is not root, leaves
    /// it unbounded.
    #[arg(long, env = "AGENT_OPS_SANDBOX_DISK_MIB", default_value_t = 10_240)]
    disk_mib: u64,
    /// Certificates (PEM) of a private authority the runners trust for the Worker's TLS.
    #[arg(long, env = "AGENT_OPS_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Sandboxes kept started ahead of any session, so a session's create only hands one its
    /// assignment (see `warm`). 0 starts every sandbox when its session asks.
    #[arg(long, env = "AGENT_OPS_WARM_SANDBOXES", default_value_t = 2)]
    warm: usize,
}

struct Host {
    args: Args,
    /// Each session directory's own bounded disk, where the host allows one.
    disks: Option<disk::Disks>,
    tools: panels::Tools,
    panels: Vec<agent_ops_protocol::api::PanelInfo>,
    /// The host's system, as every sandbox sees it (read once).
    system: Vec<mounts::Mount>,
    /// How each sandbox is bounded, and the bounds.
    backend: limits::Backend,
    limits: limits::Limits,
    runner_bin: PathBuf,
    sandboxes: Mutex<HashMap<String, Sandbox>>,
    warm: warm::Warm,
    /// The nonces of the requests it has accepted.
    nonces: std::sync::Mutex<NonceLedger>,
}

type Shared = Arc<Host>;

fn err(code: ErrorCode, msg: impl Into<String>) -> Response {
    let e = ApiError::new(code, msg);
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e)).into_response()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The refusal for a request whose signature does not hold, if it does not.
fn refuse_unsigned(
    host: &Host,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let h = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let presented = Signature {
        timestamp: h(TIMESTAMP_HEADER),
        nonce: h(NONCE_HEADER),
        signature: h(SIGNATURE_HEADER),
    };
    let now = now_secs();
    let verified = verify_request(
        host.args.secret.as_bytes(),
        method.as_str(),
        path,
        presented,
        body,
        now,
    )
    .and_then(|()| {
        // Verified, so the nonce is the signer's: a second request with it is a replay.
        let mut ledger = host.nonces.lock().unwrap_or_else(|p| p.into_inner());
        match presented.nonce.is_some_and(|n| ledger.admit(n, now)) {
            true => Ok(()),
            false => Err(SignatureError::Replayed),
        }
    });
    verified
        .err()
        .map(|e| err(ErrorCode::Unauthorized, e.message()))
}

fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn create(
    State(host): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = refuse_unsigned(&host, &method, &uri, &headers, &body) {
        return r;
    }
    let req: CreateSandbox = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return err(
                ErrorCode::InvalidBody,
                format!("invalid sandbox request: {e}"),
            )
        }
    };
    if !valid_session_id(&req.session_id) {
        return err(
            ErrorCode::InvalidBody,
            "session_id must be 1-64 characters of [A-Za-z0-9_-]",
        );
    }
    let repo = match admitted(&host.args, &req) {
        Ok(repo) => repo,
        Err(e) => return err(e.code, e.message),
    };
    let assignment = match sandbox::assignment(&req) {
        Ok(a) => a,
        Err(e) => return err(ErrorCode::InvalidBody, e),
    };
    let mut sandboxes = host.sandboxes.lock().await;
    if let Some(existing) = sandboxes.get_mut(&req.session_id) {
        // Creating twice is idempotent while the first is alive.
        existing.poll().await;
        if existing.child.is_some() {
            return (StatusCode::OK, Json(existing.info(&req.session_id))).into_response();
        }
    }
    let started = std::time::Instant::now();
    // A session's first run takes a warm sandbox, unless it needs a repository mounted.
    let first_run = std::fs::symlink_metadata(host.args.root.join(&req.session_id)).is_err();
    if first_run && repo.is_none() {
        if let Some(mut sb) = host.warm.take(host.disks.as_ref()).await {
            match sb
                .layout
                .claim(&req.session_id)
                .and_then(|()| sb.assign(&assignment))
            {
                Ok(()) => return started_answer(&mut sandboxes, &req, sb, started, "warm"),
                Err(e) => {
                    tracing::warn!("warm sandbox {} not taken: {e}", sb.layout.name);
                    warm::discard(sb, host.disks.as_ref()).await;
                }
            }
        }
    }
    let layout = Layout::of_session(&host.args.root, &req.session_id);
    // A root provider gives each sandbox a uid of its own (see `identity`).
    let uid = match rustix::process::geteuid().is_root() {
        true => {
            let mut taken = live_uids(&sandboxes, Some(&req.session_id));
            taken.extend(host.warm.uids().await);
            Some(identity::pick_uid(
                &layout.name,
                host.args.sandbox_uid_base,
                &taken,
            ))
        }
        false => None,
    };
    let cfg = spawn_config(&host, uid, repo.as_deref());
    let spawned = Sandbox::spawn(layout, &cfg).await;
    match spawned.and_then(|mut sb| sb.assign(&assignment).map(|()| sb)) {
        Ok(sb) => started_answer(&mut sandboxes, &req, sb, started, "cold"),
        Err(e) => err(
            ErrorCode::ProviderError,
            format!("could not start the sandbox: {e}"),
        ),
    }
}

/// The uids running sandboxes hold, but `except`'s (a session starting again may keep its own).
fn live_uids(sandboxes: &HashMap<String, Sandbox>, except: Option<&str>) -> Vec<u32> {
    sandboxes
        .iter()
        .filter(|(id, sb)| Some(id.as_str()) != except && sb.child.is_some())
        .filter_map(|(_, sb)| sb.uid)
        .collect()
}

fn spawn_config<'a>(
    host: &'a Host,
    uid: Option<u32>,
    local_repo: Option<&'a std::path::Path>,
) -> SpawnConfig<'a> {
    SpawnConfig {
        tools: &host.tools,
        panels: &host.panels,
        runner_bin: &host.runner_bin,
        opencode_bin: &host.args.opencode_bin,
        system: &host.system,
        backend: &host.backend,
        limits: host.limits,
        hidden: &host.args.hidden,
        local_repo,
        outbound: &host.args.allow_ports,
        heartbeat_ms: host.args.heartbeat_ms,
        ca_file: host.args.ca_file.as_deref(),
        uid,
        disks: host.disks.as_ref(),
    }
}

/// The session's sandbox is running its runner: kept, and answered with.
fn started_answer(
    sandboxes: &mut HashMap<String, Sandbox>,
    req: &CreateSandbox,
    sb: Sandbox,
    started: std::time::Instant,
    how: &str,
) -> Response {
    let info = sb.info(&req.session_id);
    let ms = started.elapsed().as_millis();
    tracing::info!(session = %req.session_id, ms, how, "sandbox started");
    sandboxes.insert(req.session_id.clone(), sb);
    (StatusCode::CREATED, Json(info)).into_response()
}

const REFILL_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps `--warm` sandboxes ready, starting one whenever one is taken or lost.
async fn keep_warm(host: Shared) {
    loop {
        let reserved = {
            let sandboxes = host.sandboxes.lock().await;
            let live = live_uids(&sandboxes, None);
            let root = rustix::process::geteuid().is_root();
            let base = host.args.sandbox_uid_base;
            host.warm
                .reserve(|name, warm| {
                    root.then(|| {
                        let taken: Vec<u32> = live.iter().chain(warm).copied().collect();
                        identity::pick_uid(name, base, &taken)
                    })
                })
                .await
        };
        let Some((name, uid)) = reserved else {
            host.warm.wanted().await;
            // After the session that took one has started: the two cores are its runner's
            // and its agent's for that moment, not a replacement's.
            tokio::time::sleep(REFILL_AFTER).await;
            continue;
        };
        let cfg = spawn_config(&host, uid, None);
        match Sandbox::spawn(Layout::new(&host.args.root, &name), &cfg).await {
            Ok(sb) => host.warm.started(uid, Some(sb), host.disks.as_ref()).await,
            Err(e) => {
                tracing::warn!("a warm sandbox did not start: {e}");
                host.warm.started(uid, None, host.disks.as_ref()).await;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// What of the host a sandbox request may reach: a repository only from the operator's roots
/// (the real directory to mount, for a `file://` one), and its Worker only on a port the
/// operator allows.
fn admitted(args: &Args, req: &CreateSandbox) -> Result<Option<PathBuf>, ApiError> {
    let control = sandbox_handoff::loopback_ports([req.control_url.as_str()]);
    if let Some(port) = control.iter().find(|p| !args.allow_ports.contains(p)) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("the control URL's port {port} is not one this provider opens to sandboxes (--allow-port)"),
        ));
    }
    match &req.repo {
        Some(url) => repos::local_repo(url, &args.repo_roots, &args.hidden, args.allow_ssh_repos),
        None => Ok(None),
    }
}

/// A signed request about one session's sandbox: check the signature, find the sandbox, act on it
/// and answer with its state.
struct SandboxRequest {
    id: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl SandboxRequest {
    async fn handle(self, host: &Host, act: impl AsyncFnOnce(&mut Sandbox)) -> Response {
        if let Some(r) = refuse_unsigned(host, &self.method, &self.uri, &self.headers, b"") {
            return r;
        }
        let mut sandboxes = host.sandboxes.lock().await;
        let Some(sb) = sandboxes.get_mut(&self.id) else {
            return err(
                ErrorCode::NotFound,
                format!("no sandbox for session {}", self.id),
            );
        };
        act(sb).await;
        Json(sb.info(&self.id)).into_response()
    }
}

async fn inspect(
    State(host): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let req = SandboxRequest {
        id,
        method,
        uri,
        headers,
    };
    req.handle(&host, async |sb| sb.poll().await).await
}

async fn terminate(
    State(host): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let req = SandboxRequest {
        id: id.clone(),
        method,
        uri,
        headers,
    };
    req.handle(&host, async |sb| {
        sb.terminate(host.disks.as_ref()).await;
        tracing::info!(session = %id, "sandbox terminated");
    })
    .await
}

/// Notices sandboxes that exited on their own (the runner ended or crashed) without anyone
/// asking, so what they held is given back within seconds rather than at the next request.
async fn reap(host: Shared) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tick.tick().await;
        for sb in host.sandboxes.lock().await.values_mut() {
            sb.poll().await;
        }
        host.warm.poll(host.disks.as_ref()).await;
    }
}

/// The real file behind a program name or path (looked up on PATH when it has no slash), so it
/// can be mounted into sandboxes as itself.
pub(crate) fn resolve_program(program: &std::path::Path) -> Result<PathBuf, String> {
    let found = if program.components().count() > 1 {
        Some(program.to_owned())
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    };
    found
        .and_then(|p| std::fs::canonicalize(p).ok())
        .ok_or_else(|| format!("{} not found", program.display()))
}

async fn serve(args: Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.root).map_err(|e| format!("sandbox root: {e}"))?;
    let root = std::fs::canonicalize(&args.root).map_err(|e| format!("sandbox root: {e}"))?;
    let runner_bin = match &args.runner_bin {
        Some(p) => resolve_program(p)?,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("sandbox-runner"),
    };
    let opencode_bin = resolve_program(&args.opencode_bin)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", args.listen))?;
    let tools = panels::Tools::find(
        args.websockify.as_deref(),
        &args.novnc_dir,
        &args.code_server,
    );
    let offered = panels::offered(&tools);
    let backend = limits::Backend::detect(std::path::Path::new("/sys/fs/cgroup"));
    tracing::info!("sandboxes are bounded by {}", backend.describe());
    let disks = match disk::Disks::detect(&root, args.disk_mib) {
        Ok(disks) => {
            tracing::info!("sandbox disks are bounded: {}", disks.describe());
            disk::Disks::detach_stale(&root).await;
            Some(disks)
        }
        Err(why) => {
            tracing::warn!("sandbox disks are unbounded: {why}");
            None
        }
    };
    warm::sweep(&root, disks.as_ref());
    let host = Arc::new(Host {
        warm: warm::Warm::new(args.warm),
        disks,
        tools,
        panels: offered,
        system: mounts::system(),
        backend,
        limits: limits::Limits {
            memory_bytes: args.memory_mib << 20,
            pids: args.pids,
            cpu_shares: args.cpu_shares,
            tmpfs_bytes: args.tmpfs_mib << 20,
        },
        args: Args {
            root,
            opencode_bin,
            repo_roots: repos::real_roots(&args.repo_roots),
            ..args
        },
        runner_bin,
        sandboxes: Mutex::new(HashMap::new()),
        nonces: Default::default(),
    });
    let app = Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .route("/v1/sandboxes", axum::routing::post(create))
        .route("/v1/sandboxes/{id}", get(inspect).delete(terminate))
        .with_state(host.clone());
    // Listened for before any sandbox starts: a stop at any moment is a clean one.
    let stop = stop_signal();
    tokio::spawn(reap(host.clone()));
    tokio::spawn(keep_warm(host.clone()));
    tracing::info!(
        "sandbox provider listening on http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| e.to_string())?;
    // The sandboxes die with the provider anyway; their disks are to be let go of too, and no
    // warm one outlives it.
    host.warm.drain(host.disks.as_ref()).await;
    for sb in host.sandboxes.lock().await.values_mut() {
        sb.stop().await;
        if let Err(e) = disk::Disks::detach(&sb.layout.session_dir).await {
            tracing::warn!("{} stays mounted: {e}", sb.layout.session_dir.display());
        }
    }
    tracing::info!("sandbox provider stopped");
    Ok(())
}

/// SIGTERM or Ctrl-C, listened for from the call on.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let Ok(mut term) = term else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = <Args as clap::Parser>::parse();
    // The provider serves every sandbox at once, so it gets the machine's cores.
    let result = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Err(e) => Err(format!("the async runtime: {e}")),
        Ok(rt) => rt.block_on(serve(args)),
    };
    if let Err(e) = result {
        eprintln!("sandbox-provider: {e}");
        std::process::exit(1);
    }
}
