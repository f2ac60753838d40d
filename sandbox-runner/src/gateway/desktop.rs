//! The services behind the panels, started by the runner inside the sandbox: a virtual display
//! (Xvfb) shown over VNC (x11vnc) to noVNC through websockify, and code-server. Each listens on a
//! Unix socket in the sandbox's private runtime directory, never on a TCP port, so nothing but
//! the gateway can reach them. They are killed with the runner.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

fn spawn(program: &Path, args: &[&str], log: &Path) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("log {}: {e}", log.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{} did not start: {e}", program.display()))
}

async fn wait_for(path: &Path, what: &str) -> Result<(), String> {
    wait_until(|| std::future::ready(path.exists()))
        .await
        .ok_or_else(|| format!("{what} did not come up ({})", path.display()))
}

/// Polls `ready` until it holds, for at most ten seconds: code-server boots in well under one,
/// but not on two busy cores.
pub async fn wait_until<F: std::future::Future<Output = bool>>(
    mut ready: impl FnMut() -> F,
) -> Option<()> {
    for _ in 0..400 {
        if ready().await {
            return Some(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

pub struct DesktopConfig {
    pub runtime: PathBuf,
    pub websockify: PathBuf,
    pub novnc_dir: PathBuf,
}

/// Starts the display, VNC and websockify; returns websockify's socket.
pub async fn start_desktop(
    cfg: &DesktopConfig,
    services: &mut Vec<Child>,
) -> Result<PathBuf, String> {
    let log = cfg.runtime.join("desktop.log");
    // Sandboxes share the host's network namespace, where X's abstract sockets live: a random
    // display number keeps two sandboxes' displays apart.
    let mut n = [0u8; 2];
    getrandom::getrandom(&mut n).map_err(|e| e.to_string())?;
    let display = format!(":{}", 100 + u16::from_le_bytes(n) % 20000);
    services.push(spawn(
        Path::new("Xvfb"),
        &[&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        &log,
    )?);
    let x_socket = PathBuf::from(format!("/tmp/.X11-unix/X{}", &display[1..]));
    wait_for(&x_socket, "Xvfb").await?;
    let vnc = cfg.runtime.join("vnc.sock");
    let vnc_s = vnc.display().to_string();
    services.push(spawn(
        Path::new("x11vnc"),
        &[
            "-display",
            &display,
            "-unixsock",
            &vnc_s,
            "-rfbport",
            "0",
            "-rfbportv6",
            "-1",
            "-forever",
            "-shared",
            "-nopw",
            "-quiet",
        ],
        &log,
    )?);
    wait_for(&vnc, "x11vnc").await?;
    let ws = cfg.runtime.join("websockify.sock");
    let ws_s = ws.display().to_string();
    let web = cfg.novnc_dir.display().to_string();
    services.push(spawn(
        &cfg.websockify,
        &[
            "--unix-listen",
            &ws_s,
            "--unix-target",
            &vnc_s,
            "--web",
            &web,
        ],
        &log,
    )?);
    wait_for(&ws, "websockify").await?;
    Ok(ws)
}

/// Starts code-server on a Unix socket, serving the workspace without its own password (the
/// gateway is the door).
pub async fn start_code_server(
    bin: &Path,
    runtime: &Path,
    workspace: &Path,
    services: &mut Vec<Child>,
) -> Result<PathBuf, String> {
    let sock = runtime.join("code-server.sock");
    let sock_s = sock.display().to_string();
    let ws = workspace.display().to_string();
    services.push(spawn(
        bin,
        &[
            "--socket",
            &sock_s,
            "--auth",
            "none",
            "--disable-telemetry",
            "--disable-update-check",
            // The workspace is the session's own: no "Restricted Mode" banner over it.
            "--disable-workspace-trust",
            &ws,
        ],
        &runtime.join("code-server.log"),
    )?);
    wait_for(&sock, "code-server").await?;
    Ok(sock)
}
