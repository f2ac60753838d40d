//! The platform's processes, found by what `/proc` says of them (the tests kill and inspect the
//! real runner and agent, never stand-ins).

use std::path::PathBuf;

pub struct Proc {
    pub pid: u32,
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
}

impl Proc {
    /// A variable of the process's environment.
    pub fn env(&self, key: &str) -> Option<String> {
        let environ = std::fs::read(format!("/proc/{}/environ", self.pid)).ok()?;
        let prefix = format!("{key}=");
        environ.split(|b| *b == 0).find_map(|kv| {
            kv.strip_prefix(prefix.as_bytes())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    }

    /// Whether the program's file name is `name`, give or take an extension.
    pub fn program_is(&self, name: &str) -> bool {
        let file = self
            .argv
            .first()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or_default();
        file == name
            || file
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('.'))
    }

    pub fn kill(&self) {
        std::process::Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .expect("kill");
    }
}

/// Every process visible now.
pub fn all() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let argv = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok();
            Some(Proc { pid, argv, cwd })
        })
        .collect()
}
