//! The runner's credentials: the runner token and the panel key. (The model's key never comes
//! here: the Worker adds it to the agent's calls, see `model_relay`.)
//!
//! A provider may pass them in the runner's environment (an OCI runtime's only way), or, as the
//! local provider does, through a pipe whose read end the runner inherits. The pipe matters
//! where something else runs first in the sandbox and keeps the environment it was started
//! with: bubblewrap's init is the sandbox's pid 1, and any process there could read its
//! `/proc/1/environ`. Either way the runner reads them once, and keeps them to itself.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::FromRawFd;

/// The environment variables that carry a credential (each read by `RunArgs`).
pub const NAMES: [&str; 2] = ["AGENT_OPS_RUNNER_TOKEN", "AGENT_OPS_PANEL_KEY"];

/// The descriptor of the pipe a provider writes the credentials to (see [`encode`]).
pub const FD_ENV: &str = "AGENT_OPS_CREDENTIALS_FD";

/// What a provider writes to the pipe: one JSON object of credential names to values, so a
/// value may hold any character. Small enough to fit a pipe's buffer whole (a page is the least
/// a pipe holds), so the provider writes it before the runner starts and never waits on it.
pub fn encode(credentials: &BTreeMap<&str, &str>) -> Result<Vec<u8>, String> {
    if let Some(name) = credentials.keys().find(|n| !NAMES.contains(n)) {
        return Err(format!("{name} is not a runner credential"));
    }
    let bytes = serde_json::to_vec(credentials).map_err(|e| e.to_string())?;
    if bytes.len() > 4096 {
        return Err("the runner's credentials exceed 4096 bytes".into());
    }
    Ok(bytes)
}

/// Reads what [`encode`] wrote. Only credentials: the pipe sets nothing else in the runner.
pub fn decode(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let credentials: BTreeMap<String, String> =
        serde_json::from_slice(bytes).map_err(|e| format!("{FD_ENV}: {e}"))?;
    match credentials.keys().find(|n| !NAMES.contains(&n.as_str())) {
        Some(name) => Err(format!("{FD_ENV}: {name} is not a runner credential")),
        None => Ok(credentials),
    }
}

/// Moves the credentials from the provider's pipe, if it gave one, into the runner's
/// environment, where `RunArgs` reads them as it would a provider's variables. They never
/// appear in `/proc/<pid>/environ`, which shows only the environment a process started with.
/// Called before any thread exists, as changing the environment must be.
pub fn receive() -> Result<(), String> {
    let Some(fd) = std::env::var_os(FD_ENV) else {
        return Ok(());
    };
    std::env::remove_var(FD_ENV);
    let fd: i32 = fd
        .to_str()
        .and_then(|f| f.parse().ok())
        .filter(|f| *f > 2)
        .ok_or_else(|| format!("{FD_ENV} must be a descriptor number above 2"))?;
    // SAFETY: the provider opened this descriptor for the credentials alone, and nothing else
    // in this process takes it; it is closed once read, so nothing the runner starts inherits it.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes)
        .map_err(|e| format!("{FD_ENV}: {e}"))?;
    for (name, value) in decode(&bytes)? {
        std::env::set_var(name, value);
    }
    Ok(())
}

/// Once read, the runner's credentials stay its own. They leave its environment, so nothing it
/// starts inherits them: not the agent, and not the terminal, the desktop or the editor, whose
/// shells a collaborator types into. And the runner is made not dumpable, so no other process
/// in the sandbox, though it runs as the same user, may read the runner's memory or its
/// `/proc/<pid>/environ`, or trace it. Called before any thread exists, as changing the
/// environment must be.
pub fn keep_to_itself() -> Result<(), String> {
    for name in NAMES {
        std::env::remove_var(name);
    }
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("could not make the runner undumpable: {e}"))
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
        let got = decode(&encode(&sent).unwrap()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["AGENT_OPS_RUNNER_TOKEN"], "ab\ncd=\"ef\0");
    }

    #[test]
    fn the_pipe_carries_credentials_and_nothing_else() {
        let other = BTreeMap::from([("LD_PRELOAD", "/tmp/x.so")]);
        assert!(encode(&other).unwrap_err().contains("LD_PRELOAD"));
        let err = decode(br#"{"LD_PRELOAD":"/tmp/x.so"}"#).unwrap_err();
        assert!(
            err.contains("LD_PRELOAD is not a runner credential"),
            "{err}"
        );
        assert!(decode(b"AGENT_OPS_RUNNER_TOKEN=x").is_err());
    }

    #[test]
    fn credentials_fit_a_pipe_whole() {
        let huge = "k".repeat(5000);
        let sent = BTreeMap::from([("AGENT_OPS_RUNNER_TOKEN", huge.as_str())]);
        assert!(encode(&sent).unwrap_err().contains("4096"));
    }
}
