//! The end-to-end harness: starts the real stack (wrangler dev running our wasm in workerd, the
//! local sandbox provider, the scripted model) in a private directory with its own ports, and
//! gives tests typed clients for the REST API and the session WebSocket.

pub mod browser;
pub mod client;
pub mod github;
pub mod panels;
pub mod procs;
pub mod provider_tap;
pub mod proxy;
pub mod slack;
pub mod stack;
pub mod tls_front;
pub mod turns;

pub use client::ClientSocket;
pub use proxy::Proxy;
pub use stack::{Stack, StackOptions};

use std::time::Duration;

/// The runner binary of the same build profile as this harness: benchmarks measure release.
pub const PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// Generous: a session's first turn includes starting OpenCode.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(90);

/// `N` distinct free loopback ports. All are held until all are found: a port released and asked
/// for again at once can come back twice, and two servers would then race for it.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("bound").port())
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).expect("randomness");
    hex::encode(b)
}

/// The repository root (this crate lives in `e2e/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e is inside the repo")
        .to_owned()
}

/// websockify from PyPI (0.13, with `--unix-listen`), installed by `make setup`.
pub fn websockify_bin() -> std::path::PathBuf {
    repo_root().join(".tools/websockify/bin/websockify")
}

pub fn code_server_bin() -> std::path::PathBuf {
    repo_root().join(".tools/code-server")
}

pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join("target"))
}
