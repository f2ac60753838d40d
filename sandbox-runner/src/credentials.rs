//! The runner's assignment and credentials: which session it serves, and the runner token and
//! the panel key. (The model's key never comes here: the Worker adds it to the agent's calls,
//! see `model_relay`.)
//!
//! A provider passes them in the runner's environment or through a pipe (see `sandbox_handoff`).
//! Either way the runner reads them once, and keeps the credentials to itself.

use std::io::Read;
use std::os::fd::FromRawFd;

use sandbox_handoff::{decode_assignment, ASSIGNMENT_FD_ENV as FD_ENV, CREDENTIAL_NAMES};

/// Moves the assignment from the provider's pipe, if it gave one, into the runner's
/// environment, where `RunArgs` reads it as it would a provider's variables. The credentials
/// never appear in `/proc/<pid>/environ`, which shows only the environment a process started
/// with. A warm sandbox's runner waits here until a session takes it. Called before any thread
/// exists, as changing the environment must be.
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
    for (name, value) in decode_assignment(&bytes)? {
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
    for name in CREDENTIAL_NAMES {
        std::env::remove_var(name);
    }
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("could not make the runner undumpable: {e}"))
}
