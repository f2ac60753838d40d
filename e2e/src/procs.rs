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

/// Runs `f` on a thread inside the network namespace of `pid` (a sandbox's process), where the
/// sandbox's apps listen. What `f` opens or spawns there stays there, whichever thread uses it.
pub fn in_netns_of<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .unwrap_or_else(|e| panic!("the network namespace of {pid}: {e}"));
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        f()
    })
    .join()
    .expect("the thread in the sandbox's network")
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

/// The TCP addresses `pid` listens on (IPv4 and IPv6), from its sockets in `/proc`: in its own
/// network and in ours (a sandbox's runner holds a socket opened in the host's).
pub fn tcp_listeners(pid: u32) -> Vec<std::net::SocketAddr> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    let mut out = Vec::new();
    let tables = [pid.to_string(), "self".to_owned()]
        .into_iter()
        .flat_map(|p| {
            [
                (format!("/proc/{p}/net/tcp"), false),
                (format!("/proc/{p}/net/tcp6"), true),
            ]
        });
    for (table, v6) in tables {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "0A" || !inodes.iter().any(|i| i == cols[9]) {
                continue;
            }
            let Some((ip, port)) = cols[1].split_once(':') else {
                continue;
            };
            let port = u16::from_str_radix(port, 16).unwrap_or(0);
            let ip: std::net::IpAddr = if v6 {
                let b = hex::decode(ip).unwrap_or_default();
                let mut words = [0u8; 16];
                for (i, chunk) in b.chunks(4).enumerate().take(4) {
                    let w = u32::from_le_bytes(chunk.try_into().unwrap_or_default());
                    words[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
                }
                std::net::Ipv6Addr::from(words).into()
            } else {
                let v = u32::from_str_radix(ip, 16).unwrap_or(0);
                std::net::Ipv4Addr::from(v.swap_bytes()).into()
            };
            out.push(std::net::SocketAddr::new(ip, port));
        }
    }
    out.sort();
    out.dedup();
    out
}
