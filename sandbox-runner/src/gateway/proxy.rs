//! Reverse proxy from the gateway to a service inside the sandbox, over TCP loopback or a Unix
//! socket. Bodies stream both ways (nothing is buffered whole), and a WebSocket upgrade is
//! handed through as raw bytes once both sides have switched protocols.

use std::net::SocketAddr;
use std::path::PathBuf;

use agent_ops_protocol::cookies;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

#[derive(Debug, Clone)]
pub enum Upstream {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

async fn send<I>(io: I, req: Request<Body>) -> Result<Response<hyper::body::Incoming>, hyper::Error>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        conn.with_upgrades().await.ok();
    });
    sender.send_request(req).await
}

fn bad_gateway(why: String) -> Response<Body> {
    let body = serde_json::json!({"code": "provider_error", "message": why});
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("static response")
}

/// Sends `req` to `upstream` at `path_and_query`, leaving out the cookie named `drop_cookie` (the
/// gateway's own, which no service in the sandbox needs to see).
pub async fn forward(
    upstream: &Upstream,
    mut req: Request<Body>,
    path_and_query: &str,
    drop_cookie: &str,
) -> Response<Body> {
    let client_upgrade = req
        .headers()
        .contains_key(header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut req));
    match path_and_query.parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => return bad_gateway(format!("bad upstream path: {e}")),
    }
    let headers = req.headers_mut();
    if let Some(cookies) = headers.get(header::COOKIE).and_then(|c| c.to_str().ok()) {
        match cookies::without(cookies, drop_cookie).and_then(|k| HeaderValue::from_str(&k).ok()) {
            Some(kept) => headers.insert(header::COOKIE, kept),
            None => headers.remove(header::COOKIE),
        };
    }
    let sent = match upstream {
        Upstream::Tcp(addr) => match TcpStream::connect(addr).await {
            Ok(s) => {
                s.set_nodelay(true).ok();
                send(s, req).await
            }
            Err(e) => return bad_gateway(format!("{addr} is not answering: {e}")),
        },
        Upstream::Unix(path) => match UnixStream::connect(path).await {
            Ok(s) => send(s, req).await,
            Err(e) => return bad_gateway(format!("{} is not answering: {e}", path.display())),
        },
    };
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => return bad_gateway(format!("the service failed: {e}")),
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(c), Ok(u)) = (client_upgrade.await, upstream_upgrade.await) {
                    let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
                    tokio::io::copy_bidirectional(&mut c, &mut u).await.ok();
                }
            });
        }
    }
    resp.map(Body::new)
}
