//! `sandbox-runner run`: the process inside a sandbox that links its agent to the session. It
//! holds nothing of the host's: the provider that starts it is its own binary
//! (`sandbox-provider`), and the two share only `sandbox_handoff`.

mod credentials;
mod gateway;
mod image;
mod link;
mod model_relay;
mod opencode;
mod ports;
mod tls;

use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_ops_protocol::api::ModelConfig;
use agent_ops_protocol::frames::Command;
use clap::{Parser, Subcommand};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Link this sandbox's agent to its session (configured by the provider's environment).
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, env = "AGENT_OPS_SESSION_ID")]
    session: String,
    #[arg(long, env = "AGENT_OPS_CONTROL_URL")]
    control_url: String,
    #[arg(long, env = "AGENT_OPS_RUNNER_TOKEN", hide_env_values = true)]
    token: String,
    #[arg(long, env = "AGENT_OPS_WORKSPACE")]
    workspace: PathBuf,
    #[arg(long, env = "AGENT_OPS_STATE_DIR")]
    state_dir: PathBuf,
    /// The session's model, as JSON (`ModelConfig`).
    #[arg(long, env = "AGENT_OPS_MODEL")]
    model: String,
    #[arg(long, env = "AGENT_OPS_OPENCODE_BIN", default_value = "opencode")]
    opencode_bin: PathBuf,
    #[arg(long, env = "AGENT_OPS_HEARTBEAT_MS", default_value_t = 5000)]
    heartbeat_ms: u64,
    /// Certificates (PEM) of a private authority to trust for the Worker's `wss://`/`https://`,
    /// beside the public web's.
    #[arg(long, env = "AGENT_OPS_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// The host's ports the provider opened to this sandbox (listeners in the sandbox that are
    /// the host's services, not apps).
    #[arg(
        long = "host-port",
        env = "AGENT_OPS_HOST_PORTS",
        value_delimiter = ','
    )]
    host_ports: Vec<u16>,
    /// A repository to clone into the (empty) workspace first.
    #[arg(long, env = "AGENT_OPS_REPO")]
    repo: Option<String>,
    /// The branch to check out; the repository's default when absent.
    #[arg(long, env = "AGENT_OPS_BRANCH")]
    branch: Option<String>,
    /// Where the gateway (the sandbox's one listener, for the panels) listens.
    #[arg(long, env = "AGENT_OPS_GATEWAY_LISTEN")]
    gateway_listen: Option<std::net::SocketAddr>,
    /// Or: the descriptor of a listening socket the provider opened for the gateway.
    #[arg(
        long,
        env = "AGENT_OPS_GATEWAY_FD",
        conflicts_with = "gateway_listen",
        value_parser = clap::value_parser!(i32).range(3..)
    )]
    gateway_fd: Option<i32>,
    /// This session's panel-token key, hex (see `agent_ops_protocol::panel`).
    #[arg(
        long,
        env = "AGENT_OPS_PANEL_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    panel_key: String,
    #[arg(long, env = "AGENT_OPS_WEBSOCKIFY")]
    websockify: Option<PathBuf>,
    #[arg(long, env = "AGENT_OPS_NOVNC_DIR", default_value = "/usr/share/novnc")]
    novnc_dir: PathBuf,
    #[arg(long, env = "AGENT_OPS_CODE_SERVER")]
    code_server: Option<PathBuf>,
}

const START_AFTER_LINK_AT_MOST: Duration = Duration::from_secs(2);

/// Resolves once the session has welcomed the link, or after `START_AFTER_LINK_AT_MOST`. What
/// takes a core to start (the agent, the desktop) waits for it: the link is what shows the
/// session its sandbox is up, and it takes milliseconds, which those starts would stretch. Not
/// longer, though: an agent works on while its Worker is away.
fn linked(welcomed: &tokio::sync::watch::Sender<bool>) -> impl std::future::Future<Output = ()> {
    let mut rx = welcomed.subscribe();
    async move {
        tokio::time::timeout(START_AFTER_LINK_AT_MOST, rx.wait_for(|w| *w))
            .await
            .ok();
    }
}

fn random_instance() -> String {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("the OS provides randomness");
    hex::encode(b)
}

async fn run(args: RunArgs) -> Result<(), String> {
    let model: ModelConfig =
        serde_json::from_str(&args.model).map_err(|e| format!("AGENT_OPS_MODEL: {e}"))?;
    std::fs::create_dir_all(&args.workspace).map_err(|e| format!("workspace: {e}"))?;
    std::fs::create_dir_all(&args.state_dir).map_err(|e| format!("state dir: {e}"))?;
    // The agent calls its model through the runner and the Worker, which holds the key.
    let tls = tls::client_config(args.ca_file.as_deref())?;
    let relay = model_relay::start(&args.control_url, args.token.clone(), &tls).await?;
    let internal = ports::Internal::default();
    internal.set("model relay", [relay.port]);
    let mut ways_out = sandbox_handoff::loopback_ports([args.control_url.as_str()]);
    ways_out.extend(&args.host_ports);
    internal.set("ways out", ways_out);
    let model = ModelConfig {
        base_url: Some(relay.base_url),
        ..model
    };
    let (event_tx, event_rx) = mpsc::channel(4096);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let cfg = opencode::ServerConfig {
        bin: args.opencode_bin,
        workspace: args.workspace.clone(),
        state_dir: args.state_dir.join("opencode"),
        model,
        api_key: relay.key,
        repo: args.repo,
        branch: args.branch,
        internal: internal.clone(),
    };
    let (welcomed, _) = tokio::sync::watch::channel(false);
    let listen = match (args.gateway_listen, args.gateway_fd) {
        (Some(addr), _) => {
            // In the sandbox's own network (a container's exposed port): not an app either.
            internal.set("gateway", [addr.port()]);
            Some(gateway::Listen::Addr(addr))
        }
        // SAFETY: the provider opened this descriptor for the gateway alone; nothing else in this
        // process takes it. Should it be no socket, `Listen::open` says so.
        (None, Some(fd)) => Some(gateway::Listen::Inherited(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd)
        })),
        (None, None) => None,
    };
    // Opened (close-on-exec) before anything is started that could inherit it.
    let listener = match listen {
        Some(listen) => listen
            .open()
            .await
            .inspect_err(|e| tracing::error!("no gateway: {e}"))
            .ok(),
        None => None,
    };
    let gateway = match listener {
        Some(listener) => {
            let panel_key = hex::decode(&args.panel_key)
                .ok()
                .filter(|k| k.len() >= 32)
                .ok_or("AGENT_OPS_PANEL_KEY must be at least 32 bytes of hex")?;
            let door = Arc::new(gateway::auth::Door::new(&args.session, panel_key));
            let gw = gateway::GatewayConfig {
                listener,
                session_id: args.session.clone(),
                door: door.clone(),
                // The sandbox's private /tmp: short enough for Unix socket paths (108 bytes),
                // and seen by no other sandbox.
                runtime: std::env::temp_dir().join("agent-ops-gateway"),
                workspace: args.workspace.clone(),
                home: std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| args.workspace.clone()),
                websockify: args.websockify,
                novnc_dir: args.novnc_dir,
                code_server: args.code_server,
            };
            let linked = linked(&welcomed);
            let task = tokio::spawn(async move {
                if let Err(e) = gateway::serve(gw, linked).await {
                    tracing::error!("{e}");
                }
            });
            Some((task, door))
        }
        None => None,
    };
    let door = gateway.as_ref().map(|(_, door)| door.clone());
    let gateway = gateway.map(|(task, _)| task);
    // Apps to preview exist only where a gateway shows them.
    let apps = gateway
        .is_some()
        .then(|| tokio::spawn(ports::watch(internal, event_tx.clone())));
    let agent = tokio::spawn({
        let linked = linked(&welcomed);
        async move {
            linked.await;
            opencode::drive(cfg, cmd_rx, event_tx).await
        }
    });
    let (link_cmd_tx, link_cmds) = mpsc::channel(64);
    tokio::spawn(route_commands(link_cmds, cmd_tx, door));
    let link = link::LinkConfig {
        url: args.control_url,
        token: args.token,
        instance: random_instance(),
        agent: "opencode".into(),
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        max_backoff: Duration::from_secs(2),
        tls,
        welcomed,
    };
    tracing::info!(session = %args.session, "runner starting");
    let end = link::run(link, event_rx, link_cmd_tx).await;
    agent.abort();
    for task in [gateway, apps].into_iter().flatten() {
        task.abort();
    }
    match end {
        link::LinkEnd::Terminated | link::LinkEnd::AgentGone => {
            tracing::info!("runner exiting: {end}");
            Ok(())
        }
        link::LinkEnd::Refused => Err(end.to_string()),
    }
}

/// The control plane's commands: revocations are the gateway's, the rest the agent's. Ends when
/// the agent does, which the link then sees.
async fn route_commands(
    mut from_link: mpsc::Receiver<Command>,
    to_agent: mpsc::Sender<Command>,
    door: Option<Arc<gateway::auth::Door>>,
) {
    while let Some(command) = from_link.recv().await {
        match command {
            Command::Revoke { revoked } => {
                let gone = door.as_ref().map_or(0, |d| d.revoke(&revoked));
                tracing::info!("access taken back: {gone} panel cookie(s) revoked");
            }
            command => {
                if to_agent.send(command).await.is_err() {
                    return;
                }
            }
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
    if let Err(e) = credentials::receive() {
        eprintln!("sandbox-runner: {e}");
        std::process::exit(1);
    }
    let Cmd::Run(args) = Cli::parse().command;
    if let Err(e) = credentials::keep_to_itself() {
        eprintln!("sandbox-runner: {e}");
        std::process::exit(1);
    }
    // A runner is one sandbox's I/O loop (its link, its agent, its gateway): on one thread, the
    // bytes it hands between sockets never wait on a wake-up from another thread.
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Err(e) => Err(format!("the async runtime: {e}")),
        Ok(rt) => rt.block_on(run(args)),
    };
    if let Err(e) = result {
        eprintln!("sandbox-runner: {e}");
        std::process::exit(1);
    }
}
