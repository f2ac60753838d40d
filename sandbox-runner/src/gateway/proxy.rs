//! Reverse proxy from the gateway to a service inside the sandbox, over TCP loopback or a Unix
//! socket. Bodies stream both ways (nothing is buffered whole), and a WebSocket upgrade is
//! handed through as raw bytes once both sides have switched protocols. Upstream connections
//! are kept alive and reused: a fresh connection per request would cost more than the request.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use agent_ops_protocol::cookies;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixStream;

/// Connects every request to one Unix socket, whatever its URI says.
#[derive(Clone)]
pub struct UnixConnector(Arc<PathBuf>);

impl tower_service::Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move { UnixStream::connect(&*path).await.map(TokioIo::new) })
    }
}

pub type LoopbackPool = Client<HttpConnector, Body>;

/// Kept-alive connections to apps on loopback ports (previews), shared by every port.
pub fn loopback_pool() -> LoopbackPool {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(http)
}

/// Where a panel's requests go, with its pool of kept-alive connections.
#[derive(Clone)]
pub enum Upstream {
    Tcp(LoopbackPool, u16),
    Unix(Client<UnixConnector, Body>, Arc<PathBuf>),
}

impl Upstream {
    pub fn unix(path: PathBuf) -> Self {
        let path = Arc::new(path);
        let client = Client::builder(TokioExecutor::new()).build(UnixConnector(path.clone()));
        Upstream::Unix(client, path)
    }

    /// The `Host` its requests carry.
    fn authority(&self) -> String {
        match self {
            Upstream::Tcp(_, port) => format!("127.0.0.1:{port}"),
            Upstream::Unix(..) => "localhost".to_owned(),
        }
    }

    /// The status of `GET /` there, if it answers at all.
    pub async fn root_status(&self) -> Option<StatusCode> {
        let uri: Uri = format!("http://{}/", self.authority()).parse().ok()?;
        let resp = match self {
            Upstream::Tcp(client, _) => client.get(uri).await,
            Upstream::Unix(client, _) => client.get(uri).await,
        };
        resp.ok().map(|r| r.status())
    }
}

fn bad_gateway(why: String) -> Response<Body> {
    let body = serde_json::json!({"code": "provider_error", "message": why});
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("static response")
}

/// Sends `req` to `upstream` at `path_and_query`, leaving out the gateway's own cookie (which no
/// service in the sandbox needs to see). A WebSocket it upgrades to ends when `until` does.
pub async fn forward(
    upstream: &Upstream,
    mut req: Request<Body>,
    path_and_query: &str,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> Response<Body> {
    let client_upgrade = req
        .headers()
        .contains_key(header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut req));
    let client_version = req.version();
    let authority = upstream.authority();
    match format!("http://{authority}{path_and_query}").parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => return bad_gateway(format!("bad upstream path: {e}")),
    }
    let headers = req.headers_mut();
    if let Some(cookies) = headers.get(header::COOKIE).and_then(|c| c.to_str().ok()) {
        match cookies::without(cookies, super::auth::COOKIE)
            .and_then(|k| HeaderValue::from_str(&k).ok())
        {
            Some(kept) => headers.insert(header::COOKIE, kept),
            None => headers.remove(header::COOKIE),
        };
    }
    let sent = match upstream {
        Upstream::Tcp(client, _) => client.request(req).await,
        Upstream::Unix(client, _) => client.request(req).await,
    };
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            let at = match upstream {
                Upstream::Tcp(..) => authority,
                Upstream::Unix(_, path) => path.display().to_string(),
            };
            return bad_gateway(format!("{at} is not answering"));
        }
        Err(e) => return bad_gateway(format!("the service failed: {e}")),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The client's connection is ours, not the app's: an app that speaks HTTP/1.0 or closes
        // every connection (Python's http.server) must not close the client's kept-alive one.
        *resp.version_mut() = client_version;
        for hop_by_hop in [
            header::CONNECTION.as_str(),
            "keep-alive",
            "proxy-connection",
        ] {
            resp.headers_mut().remove(hop_by_hop);
        }
    } else if let Some(client_upgrade) = client_upgrade {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(c), Ok(u)) = (client_upgrade.await, upstream_upgrade.await) {
                let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut c, &mut u) => {}
                    () = until => {}
                }
            }
        });
    }
    resp.map(Body::new)
}
