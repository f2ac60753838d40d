//! What a provider hands the runner it starts, written by one and read by the other: the two
//! sides of a trust boundary, so neither binary carries the other's code, only this.
//!
//! - The runner's credentials (the runner token and the panel key) travel through a pipe whose
//!   read end the runner inherits, not its environment. That matters where something else runs
//!   first in the sandbox and keeps the environment it was started with: bubblewrap's init is
//!   the sandbox's pid 1, and any process there could read its `/proc/1/environ`. (An OCI
//!   runtime's only way is the environment; the runner reads either once.)
//! - The ways out to the host: which of the URLs a sandbox is given reach the host's loopback,
//!   so the provider opens exactly those ports and the runner tells them from the apps it reports.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The environment variables that carry a credential (each read by the runner's arguments).
pub const CREDENTIAL_NAMES: [&str; 2] = ["AGENT_OPS_RUNNER_TOKEN", "AGENT_OPS_PANEL_KEY"];

/// The descriptor of the pipe a provider writes the credentials to (see [`encode_credentials`]).
pub const CREDENTIALS_FD_ENV: &str = "AGENT_OPS_CREDENTIALS_FD";

/// What a provider writes to the pipe: one JSON object of credential names to values, so a
/// value may hold any character. Small enough to fit a pipe's buffer whole (a page is the least
/// a pipe holds), so the provider writes it before the runner starts and never waits on it.
pub fn encode_credentials(credentials: &BTreeMap<&str, &str>) -> Result<Vec<u8>, String> {
    if let Some(name) = credentials.keys().find(|n| !CREDENTIAL_NAMES.contains(n)) {
        return Err(format!("{name} is not a runner credential"));
    }
    let bytes = serde_json::to_vec(credentials).map_err(|e| e.to_string())?;
    if bytes.len() > 4096 {
        return Err("the runner's credentials exceed 4096 bytes".into());
    }
    Ok(bytes)
}

/// Reads what [`encode_credentials`] wrote. Only credentials: the pipe sets nothing else in the
/// runner.
pub fn decode_credentials(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let credentials: BTreeMap<String, String> =
        serde_json::from_slice(bytes).map_err(|e| format!("{CREDENTIALS_FD_ENV}: {e}"))?;
    match credentials
        .keys()
        .find(|n| !CREDENTIAL_NAMES.contains(&n.as_str()))
    {
        Some(name) => Err(format!(
            "{CREDENTIALS_FD_ENV}: {name} is not a runner credential"
        )),
        None => Ok(credentials),
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
    fn credentials_round_trip_with_any_character() {
        let sent = BTreeMap::from([
            ("AGENT_OPS_RUNNER_TOKEN", "ab\ncd=\"ef\0"),
            ("AGENT_OPS_PANEL_KEY", "00ff"),
        ]);
        let got = decode_credentials(&encode_credentials(&sent).unwrap()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["AGENT_OPS_RUNNER_TOKEN"], "ab\ncd=\"ef\0");
    }

    #[test]
    fn the_pipe_carries_credentials_and_nothing_else() {
        let other = BTreeMap::from([("LD_PRELOAD", "/tmp/x.so")]);
        assert!(encode_credentials(&other)
            .unwrap_err()
            .contains("LD_PRELOAD"));
        let err = decode_credentials(br#"{"LD_PRELOAD":"/tmp/x.so"}"#).unwrap_err();
        assert!(
            err.contains("LD_PRELOAD is not a runner credential"),
            "{err}"
        );
        assert!(decode_credentials(b"AGENT_OPS_RUNNER_TOKEN=x").is_err());
    }

    #[test]
    fn credentials_fit_a_pipe_whole() {
        let huge = "k".repeat(5000);
        let sent = BTreeMap::from([("AGENT_OPS_RUNNER_TOKEN", huge.as_str())]);
        assert!(encode_credentials(&sent).unwrap_err().contains("4096"));
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
