//! What a provider hands the runner it starts, written by one and read by the other: the two
//! sides of a trust boundary, so neither binary carries the other's code, only this.
//!
//! - The runner's assignment (which session it serves, where its Worker is, its model and
//!   repository) and its credentials (the runner token and the panel key) travel through a pipe
//!   whose read end the runner inherits, not its environment. For the credentials that matters
//!   where something else runs first in the sandbox and keeps the environment it was started
//!   with: bubblewrap's init is the sandbox's pid 1, and any process there could read its
//!   `/proc/1/environ`. For the assignment it lets a sandbox start before its session exists (a
//!   warm one): the runner waits on the pipe, and the session's create only writes to it. (An
//!   OCI runtime's only way is the environment; the runner reads either once.)
//! - The ways out to the host: which of the URLs a sandbox is given reach the host's loopback,
//!   so the provider opens exactly those ports and the runner tells them from the apps it reports.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The environment variables that carry a credential (each read by the runner's arguments).
pub const CREDENTIAL_NAMES: [&str; 2] = ["AGENT_OPS_RUNNER_TOKEN", "AGENT_OPS_PANEL_KEY"];

/// The environment variables that say which session a runner serves, and how.
pub const SESSION_NAMES: [&str; 5] = [
    "AGENT_OPS_SESSION_ID",
    "AGENT_OPS_CONTROL_URL",
    "AGENT_OPS_MODEL",
    "AGENT_OPS_REPO",
    "AGENT_OPS_BRANCH",
];

/// The descriptor of the pipe a provider writes the assignment to (see [`encode_assignment`]).
pub const ASSIGNMENT_FD_ENV: &str = "AGENT_OPS_ASSIGNMENT_FD";

/// The most the pipe carries: what a pipe holds whole however small the host makes it (a
/// page), so the provider writes it at any moment, before or after the runner starts, and
/// never waits on it.
pub const MAX_ASSIGNMENT_BYTES: usize = 4096;

fn handed(name: &str) -> bool {
    CREDENTIAL_NAMES.contains(&name) || SESSION_NAMES.contains(&name)
}

/// What a provider writes to the pipe: one JSON object of variable names to values, so a
/// value may hold any character.
pub fn encode_assignment(values: &BTreeMap<&str, &str>) -> Result<Vec<u8>, String> {
    if let Some(name) = values.keys().find(|n| !handed(n)) {
        return Err(format!("{name} is not handed to a runner"));
    }
    let bytes = serde_json::to_vec(values).map_err(|e| e.to_string())?;
    if bytes.len() > MAX_ASSIGNMENT_BYTES {
        return Err(format!(
            "the runner's assignment exceeds {MAX_ASSIGNMENT_BYTES} bytes"
        ));
    }
    Ok(bytes)
}

/// Reads what [`encode_assignment`] wrote. Only the assignment and the credentials: the pipe
/// sets nothing else in the runner.
pub fn decode_assignment(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let values: BTreeMap<String, String> =
        serde_json::from_slice(bytes).map_err(|e| format!("{ASSIGNMENT_FD_ENV}: {e}"))?;
    match values.keys().find(|n| !handed(n)) {
        Some(name) => Err(format!(
            "{ASSIGNMENT_FD_ENV}: {name} is not handed to a runner"
        )),
        None => Ok(values),
    }
}

/// The host loopback ports among `urls`: where a sandbox reaches the host (the Worker, a local
/// Git host), each once, in order.
pub fn loopback_ports<'a>(urls: impl IntoIterator<Item = &'a str>) -> Vec<u16> {
    let mut ports: Vec<u16> = urls
        .into_iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .filter(|u| match u.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        })
        .filter_map(|u| u.port_or_known_default())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assignment_round_trips_with_any_character() {
        let sent = BTreeMap::from([
            ("AGENT_OPS_RUNNER_TOKEN", "ab\ncd=\"ef\0"),
            ("AGENT_OPS_PANEL_KEY", "00ff"),
            ("AGENT_OPS_SESSION_ID", "s1"),
        ]);
        let got = decode_assignment(&encode_assignment(&sent).unwrap()).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got["AGENT_OPS_RUNNER_TOKEN"], "ab\ncd=\"ef\0");
    }

    #[test]
    fn the_pipe_carries_the_assignment_and_nothing_else() {
        let other = BTreeMap::from([("LD_PRELOAD", "/tmp/x.so")]);
        assert!(encode_assignment(&other)
            .unwrap_err()
            .contains("LD_PRELOAD"));
        for smuggled in ["LD_PRELOAD", "PATH", "AGENT_OPS_WORKSPACE"] {
            let err =
                decode_assignment(format!(r#"{{"{smuggled}":"/tmp/x"}}"#).as_bytes()).unwrap_err();
            assert!(
                err.contains(&format!("{smuggled} is not handed to a runner")),
                "{err}"
            );
        }
        assert!(decode_assignment(b"AGENT_OPS_RUNNER_TOKEN=x").is_err());
    }

    #[test]
    fn an_assignment_fits_a_pipe_whole() {
        let huge = "k".repeat(5000);
        let sent = BTreeMap::from([("AGENT_OPS_RUNNER_TOKEN", huge.as_str())]);
        assert!(encode_assignment(&sent).unwrap_err().contains("4096"));
    }

    #[test]
    fn only_loopback_urls_open_a_door_out() {
        let ports = loopback_ports([
            "ws://127.0.0.1:8787/runner/abc",
            "http://localhost:8791/v1",
            "http://[::1]:9000/x.git",
            "http://127.0.0.1:8787/again",
            "https://api.anthropic.com/v1",
            "http://192.0.2.7:22/",
            "file:///srv/repo",
            "not a url",
        ]);
        assert_eq!(ports, vec![8787, 8791, 9000]);
        assert_eq!(loopback_ports(["ws://localhost/x"]), vec![80]);
    }
}
