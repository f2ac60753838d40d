//! A TCP proxy the tests can cut: every live runner link through it is dropped on `cut()`, as a
//! network failure would, while new connections keep working. Only the links: the agent's model
//! calls take the same way to the Worker, and a test of the link's recovery cuts the link alone.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    cut: Arc<watch::Sender<u64>>,
    /// While set, runner links are refused as they arrive (the network is down for them).
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    pub async fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let (tx, rx) = watch::channel(0u64);
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_down = down.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut rx = rx.clone();
                let is_down = is_down.clone();
                rx.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream_port)).await
                    else {
                        return;
                    };
                    let mut inbound = inbound;
                    let mut head = [0u8; 512];
                    let n = inbound.peek(&mut head).await.unwrap_or(0);
                    let link = head[..n]
                        .split(|b| *b == b'\n')
                        .next()
                        .is_some_and(|line| line.windows(8).any(|w| w == b"/runner "));
                    if link && is_down.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let cut = async {
                        if !link {
                            std::future::pending::<()>().await;
                        }
                        rx.changed().await.ok();
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Proxy {
            port,
            cut: Arc::new(tx),
            down,
        }
    }

    /// Drops every connection currently open through the proxy.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Takes the runner's link down (the open one cut, new ones refused) until `restore`.
    pub fn take_down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut();
    }

    pub fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
