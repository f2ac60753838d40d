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
pub mod runner_link;
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

/// `N` distinct free loopback ports, from below the kernel's ephemeral range. A port the kernel
/// hands out (a sandbox's gateway listener, an outgoing connection) is never one of these, so
/// none can be taken between being chosen here and being bound by the server it is for: a
/// provider's warm sandbox once took the Worker's port that way, and wrangler could not start.
/// All are held until all are found, so they are distinct.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768u16);
    let (low, span) = (10_000, ephemeral.saturating_sub(10_000).max(1));
    let mut held = Vec::new();
    for _ in 0..10_000 {
        if held.len() == N {
            break;
        }
        let mut r = [0u8; 2];
        getrandom::getrandom(&mut r).expect("randomness");
        let port = low + u16::from_le_bytes(r) % span;
        held.extend(std::net::TcpListener::bind(("127.0.0.1", port)).ok());
    }
    assert_eq!(held.len(), N, "no {N} free ports below {ephemeral}");
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
