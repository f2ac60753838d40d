//! Which apps listen in the sandbox, for their previews: the runner reads the sandbox's socket
//! tables every second and reports each change as a `ports.changed` event, so the web client
//! can offer a preview of a dev server the moment the agent (or a person in the terminal)
//! starts one. The agent's own API, the runner's model relay, a gateway in the sandbox's own
//! network and the provider's ways out to the host listen there too; they are the sandbox's
//! machinery, not apps, and are never listed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_ops_protocol::events::{EventBody, OpenPort};
use tokio::sync::mpsc;

/// How often the tables are read: a dev server shows up within a second of listening.
const EVERY: Duration = Duration::from_secs(1);
/// At most this many ports are listed: a runaway test suite must not flood the session's log.
const MOST: usize = 32;

/// The sandbox's own listeners (by name, so a restarted agent's new port replaces its old one).
#[derive(Debug, Clone, Default)]
pub struct Internal(Arc<Mutex<BTreeMap<&'static str, Vec<u16>>>>);

impl Internal {
    pub fn set(&self, name: &'static str, ports: impl IntoIterator<Item = u16>) {
        let ports = ports.into_iter().collect();
        self.0.lock().expect("lock").insert(name, ports);
    }

    fn ports(&self) -> BTreeSet<u16> {
        let named = self.0.lock().expect("lock");
        named.values().flatten().copied().collect()
    }
}

/// A listening socket from `/proc/net/tcp` or `tcp6`: its port and its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub inode: u64,
}

/// The listeners in one socket table whose address the gateway reaches (it connects to
/// 127.0.0.1): IPv4 loopback or any address, IPv6's any address (which takes IPv4 too) or an
/// IPv4-mapped one of those. One bound to `::1` alone, or to the sandbox's outward address, is
/// out of the gateway's reach and would only be a dead link.
pub fn listeners(table: &str, v6: bool) -> Vec<Listener> {
    const LISTEN: &str = "0A";
    let reachable = |addr: &str| -> bool {
        if v6 {
            // Four 32-bit words, each in host (little-endian) order.
            matches!(
                addr,
                "00000000000000000000000000000000"
                    | "0000000000000000FFFF00000100007F"
                    | "0000000000000000FFFF000000000000"
            )
        } else {
            matches!(addr, "0100007F" | "00000000")
        }
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (addr, port) = cols.get(1)?.split_once(':')?;
            if cols.get(3) != Some(&LISTEN) || !reachable(addr) {
                return None;
            }
            Some(Listener {
                port: u16::from_str_radix(port, 16).ok()?,
                inode: cols.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The apps to list: one listener per port, the sandbox's own ports left out, at most `MOST`.
pub fn apps(found: &[Listener], internal: &BTreeSet<u16>) -> Vec<Listener> {
    let mut by_port: BTreeMap<u16, u64> = BTreeMap::new();
    for l in found.iter().filter(|l| !internal.contains(&l.port)) {
        by_port.entry(l.port).or_insert(l.inode);
    }
    by_port
        .into_iter()
        .take(MOST)
        .map(|(port, inode)| Listener { port, inode })
        .collect()
}

/// The apps as reported, each with the name of the program holding its socket, if known.
pub fn named(apps: &[Listener], owners: &HashMap<u64, String>) -> Vec<OpenPort> {
    apps.iter()
        .map(|l| OpenPort {
            port: l.port,
            process: owners.get(&l.inode).cloned(),
        })
        .collect()
}

/// Each socket inode held open by a process in this sandbox, with that process's name.
fn owners() -> HashMap<u64, String> {
    let mut out = HashMap::new();
    let procs = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    for proc in procs.filter(|p| p.file_name().to_string_lossy().parse::<u32>().is_ok()) {
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        let name = std::fs::read_to_string(proc.path().join("comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_default();
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|i| i.parse().ok())
            {
                out.entry(inode).or_insert_with(|| name.clone());
            }
        }
    }
    out
}

fn scan() -> Vec<Listener> {
    [("/proc/net/tcp", false), ("/proc/net/tcp6", true)]
        .into_iter()
        .flat_map(|(path, v6)| listeners(&std::fs::read_to_string(path).unwrap_or_default(), v6))
        .collect()
}

/// Reports the sandbox's apps whenever the set of their ports changes, until the link is gone.
/// A runner starts from none, so a new instance says nothing until an app listens.
pub async fn watch(internal: Internal, events: mpsc::Sender<EventBody>) {
    let mut reported: Vec<u16> = Vec::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let internal = internal.ports();
        let found = tokio::task::spawn_blocking(scan).await.unwrap_or_default();
        let now = apps(&found, &internal);
        let ports: Vec<u16> = now.iter().map(|l| l.port).collect();
        if ports == reported {
            continue;
        }
        // Who listens is looked up only on a change: it reads every process's descriptors.
        let names = tokio::task::spawn_blocking(owners)
            .await
            .unwrap_or_default();
        if events
            .send(EventBody::PortsChanged {
                ports: named(&now, &names),
            })
            .await
            .is_err()
        {
            return;
        }
        reported = ports;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0000000000000000 100 0 0 10 0
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 102 1 0000000000000000 100 0 0 10 0
   2: 0A00020F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 103 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1435 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 104 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:22B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 105 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 201 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 202 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 203 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn only_listeners_the_gateway_reaches_count() {
        let v4: Vec<u16> = listeners(TCP, false).iter().map(|l| l.port).collect();
        // 5173 on loopback, 3000 on every address, 8888 on loopback; not 8080 on the outward
        // address, nor the established connection.
        assert_eq!(v4, [5173, 3000, 8888]);
        let v6: Vec<u16> = listeners(TCP6, true).iter().map(|l| l.port).collect();
        // 8000 on every address and 3000 mapped from IPv4 loopback; not 9000 on ::1 alone.
        assert_eq!(v6, [8000, 3000]);
        assert!(listeners("garbage\n1: x y z", false).is_empty());
    }

    #[test]
    fn apps_are_listed_once_each_without_the_sandboxs_own() {
        let mut found = listeners(TCP, false);
        found.extend(listeners(TCP6, true));
        let internal = BTreeSet::from([8888]);
        let names = HashMap::from([(102, "node".to_owned())]);
        let listed = named(&apps(&found, &internal), &names);
        assert_eq!(
            listed,
            [
                OpenPort {
                    port: 3000,
                    process: Some("node".into())
                },
                OpenPort {
                    port: 5173,
                    process: None
                },
                OpenPort {
                    port: 8000,
                    process: None
                },
            ]
        );
        let many: Vec<Listener> = (1..=100).map(|port| Listener { port, inode: 1 }).collect();
        assert_eq!(apps(&many, &BTreeSet::new()).len(), MOST);
    }
}
