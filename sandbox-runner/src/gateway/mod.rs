//! The sandbox gateway: the sandbox's one listener. Everything under `/sandbox/<session>/` is
//! behind one door (a panel token traded for a cookie, see `auth.rs`):
//!
//! - `auth?token=..&next=..`: the trade; redirects to `next` inside the prefix.
//! - `terminal/`: the built-in terminal (xterm.js page, `terminal/ws` is the PTY).
//! - `vnc/`: noVNC and its WebSocket, through websockify to x11vnc on Xvfb.
//! - `code/`: code-server.
//! - `preview/<port>/`: an app the user or agent started on that loopback port.

pub mod auth;
mod desktop;
pub mod proxy;
mod terminal;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::{header, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::process::Child;

use agent_ops_protocol::api::PanelKind;
use agent_ops_protocol::cookies;
use auth::{safe_next, Door};
use proxy::Upstream;

/// Where the gateway answers.
pub enum Listen {
    /// An address to bind (a container's exposed port).
    Addr(SocketAddr),
    /// A listening socket the provider opened in its own network and handed down, so the gateway
    /// answers there with no hop in between while the sandbox's own network stays closed.
    Inherited(OwnedFd),
}

impl Listen {
    pub async fn open(self) -> Result<tokio::net::TcpListener, String> {
        match self {
            Listen::Addr(addr) => tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("gateway {addr}: {e}")),
            Listen::Inherited(fd) => {
                // Inherited without close-on-exec; nothing this runner starts (the agent, a
                // shell) may take the gateway's connections.
                rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
                    .map_err(|e| format!("the gateway's inherited socket: {e}"))?;
                let listener = std::net::TcpListener::from(fd);
                listener
                    .local_addr()
                    .and_then(|_| listener.set_nonblocking(true))
                    .and_then(|()| tokio::net::TcpListener::from_std(listener))
                    .map_err(|e| format!("the gateway's inherited socket: {e}"))
            }
        }
    }
}

pub struct GatewayConfig {
    /// Opened before anything is started that could inherit it (see `Listen::open`).
    pub listener: tokio::net::TcpListener,
    pub session_id: String,
    /// Shared with the runner's link, which hands it the control plane's revocations.
    pub door: Arc<Door>,
    pub runtime: PathBuf,
    pub workspace: PathBuf,
    pub home: PathBuf,
    pub websockify: Option<PathBuf>,
    pub novnc_dir: PathBuf,
    pub code_server: Option<PathBuf>,
}

/// code-server, started by the first request for it: it costs a second of CPU and a couple of
/// hundred MB, and most sessions never open the editor.
struct Editor {
    bin: PathBuf,
    runtime: PathBuf,
    workspace: PathBuf,
    started: tokio::sync::OnceCell<(Upstream, Vec<Child>)>,
}

impl Editor {
    /// Its upstream, starting it first if need be. A failed start is tried again next time.
    async fn upstream(&self) -> Result<&Upstream, String> {
        let (up, _child) = self
            .started
            .get_or_try_init(|| async {
                let mut children = Vec::new();
                let sock = desktop::start_code_server(
                    &self.bin,
                    &self.runtime,
                    &self.workspace,
                    &mut children,
                )
                .await?;
                let up = Upstream::unix(sock);
                // It listens before it has registered its routes, answering 404 meanwhile.
                desktop::wait_until(|| async {
                    up.root_status()
                        .await
                        .is_some_and(|s| s != StatusCode::NOT_FOUND)
                })
                .await
                .ok_or("code-server listens but never served its workbench")?;
                Ok::<_, String>((up, children))
            })
            .await?;
        Ok(up)
    }
}

struct Gateway {
    prefix: String,
    door: Arc<Door>,
    terminal: terminal::Terminal,
    vnc: Option<Upstream>,
    code: Option<Editor>,
    loopback: proxy::LoopbackPool,
    _services: Vec<Child>,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"code": code, "message": message});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response<Body> {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Serves the panels. The desktop (X, a VNC server, websockify), which takes a core for a
/// moment, starts once `linked` resolves; connections wait in the listener's backlog until then.
pub async fn serve(
    cfg: GatewayConfig,
    linked: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let listener = cfg.listener;
    linked.await;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&cfg.runtime).map_err(|e| format!("runtime dir: {e}"))?;
    let mut services = Vec::new();
    let vnc = match &cfg.websockify {
        Some(websockify) => {
            let desktop = desktop::DesktopConfig {
                runtime: cfg.runtime.clone(),
                websockify: websockify.clone(),
                novnc_dir: cfg.novnc_dir.clone(),
            };
            match desktop::start_desktop(&desktop, &mut services).await {
                Ok(sock) => Some(Upstream::unix(sock)),
                Err(e) => {
                    tracing::warn!("the desktop panel is unavailable: {e}");
                    None
                }
            }
        }
        None => None,
    };
    let code = cfg.code_server.map(|bin| Editor {
        bin,
        runtime: cfg.runtime.clone(),
        workspace: cfg.workspace.clone(),
        started: tokio::sync::OnceCell::new(),
    });
    let gw = Arc::new(Gateway {
        prefix: format!("/sandbox/{}/", cfg.session_id),
        door: cfg.door,
        terminal: terminal::Terminal::new(cfg.workspace, cfg.home),
        vnc,
        code,
        loopback: proxy::loopback_pool(),
        _services: services,
    });
    tracing::info!("gateway listening on {local}");
    let app = Router::new().fallback(handle).with_state(gw);
    // Keystrokes and streamed chunks are small writes: each goes out at once, not batched.
    let listener = listener.tap_io(|tcp| {
        tcp.set_nodelay(true).ok();
    });
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("gateway: {e}"))
}

#[derive(serde::Deserialize)]
struct Trade {
    token: Option<String>,
    next: Option<String>,
}

fn exchange(gw: &Gateway, req: &Request<Body>) -> Response<Body> {
    let (token, next) = match Query::<Trade>::try_from_uri(req.uri()) {
        Ok(Query(t)) => (t.token, t.next),
        Err(_) => (None, None),
    };
    let Some(token) = token else {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_token", "no panel token");
    };
    let next = next.unwrap_or_else(|| "terminal/".into());
    let Some(next) = safe_next(&next) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "next must stay inside this sandbox",
        );
    };
    match gw.door.exchange(&token, auth::unix_now()) {
        Ok(cookie) => Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, format!("{}{next}", gw.prefix))
            .header(header::SET_COOKIE, auth::set_cookie(&cookie))
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::empty())
            .unwrap_or_else(|_| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "next is not a valid location",
                )
            }),
        Err(auth::Denied::Replayed) => refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "this panel token has been used already",
        ),
        Err(auth::Denied::Token(r)) => refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            &match r {
                agent_ops_protocol::panel::Refusal::OtherSession => {
                    "this panel token is for another session".to_owned()
                }
                agent_ops_protocol::panel::Refusal::Invalid(why) => {
                    format!("invalid panel token: {why}")
                }
            },
        ),
    }
}

async fn handle(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path
        .strip_prefix(&gw.prefix)
        .or_else(|| (path == gw.prefix.trim_end_matches('/')).then_some(""))
    else {
        return refuse(StatusCode::NOT_FOUND, "not_found", "not this sandbox");
    };
    if rest == "auth" {
        return exchange(&gw, &req);
    }
    let cookie = req
        .headers()
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| cookies::value(c, auth::COOKIE))
        .map(str::to_owned);
    let admitted = cookie.and_then(|c| {
        gw.door
            .admit(&c, auth::unix_now())
            .map(|access| (access, c))
    });
    let Some((access, cookie)) = admitted else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "open this panel from Agent Ops: it signs you in with a short-lived panel token",
        );
    };
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let panel = match head {
        "terminal" => Some(PanelKind::Terminal),
        "vnc" => Some(PanelKind::Browser),
        "code" => Some(PanelKind::Vscode),
        "preview" => Some(PanelKind::Preview),
        _ => None,
    };
    if panel.is_some_and(|p| !p.viewers_may_open()) && !access.can_write() {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "viewers can watch the terminal; the desktop, the editor and app previews need the collaborator role",
        );
    }
    // A socket lasts as long as the access it was opened with.
    let taken_back = {
        let door = gw.door.clone();
        async move { door.revoked(&cookie).await }
    };
    match head {
        "terminal" => match tail {
            "" => terminal_page(),
            "xterm.js" => asset("text/javascript", terminal::XTERM_JS),
            "xterm.css" => asset("text/css", terminal::XTERM_CSS),
            "addon-fit.js" => asset("text/javascript", terminal::FIT_JS),
            "ws" => {
                let (mut parts, _) = req.into_parts();
                match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                    Ok(upgrade) => {
                        let writable = access.can_write();
                        upgrade.on_upgrade(move |socket| async move {
                            gw.terminal.attach(socket, writable, taken_back).await
                        })
                    }
                    Err(e) => e.into_response(),
                }
            }
            _ => refuse(StatusCode::NOT_FOUND, "not_found", "no such terminal file"),
        },
        "vnc" => match &gw.vnc {
            Some(up) => proxy::forward(up, req, &format!("/{tail}{query}"), taken_back).await,
            None => {
                unavailable("the desktop (Xvfb, x11vnc, websockify) is not running in this sandbox")
            }
        },
        "code" => match gw.code.as_ref().map(Editor::upstream) {
            Some(started) => match started.await {
                Ok(up) => proxy::forward(up, req, &format!("/{tail}{query}"), taken_back).await,
                Err(e) => unavailable(&format!("code-server did not start: {e}")),
            },
            None => unavailable("code-server is not installed in this sandbox"),
        },
        "preview" => {
            let (port, tail) = tail.split_once('/').unwrap_or((tail, ""));
            match port.parse::<u16>() {
                Ok(port) if port > 0 => {
                    let up = Upstream::Tcp(gw.loopback.clone(), port);
                    proxy::forward(&up, req, &format!("/{tail}{query}"), taken_back).await
                }
                _ => refuse(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "preview/<port>/ needs a port",
                ),
            }
        }
        _ => refuse(StatusCode::NOT_FOUND, "not_found", "no such panel"),
    }
}

fn terminal_page() -> Response<Body> {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        terminal::PAGE,
    )
        .into_response()
}

fn unavailable(why: &str) -> Response<Body> {
    refuse(StatusCode::SERVICE_UNAVAILABLE, "provider_error", why)
}
