//! Which apps listen in the sandbox, for their previews: the runner asks the kernel for the
//! sandbox's listening sockets every second and reports each change as a `ports.changed` event,
//! so the web client can offer a preview of a dev server the moment the agent (or a person in
//! the terminal) starts one. The agent's own API, the runner's model relay, a gateway in the
//! sandbox's own network and the provider's ways out to the host listen there too; they are the
//! sandbox's machinery, not apps, and are never listed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_ops_protocol::events::{EventBody, OpenPort};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use tokio::sync::mpsc;

/// How often the kernel is asked: a dev server shows up within a second of listening.
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

/// A listening socket: its port and its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub inode: u64,
}

/// Whether the gateway, which connects to 127.0.0.1, reaches a listener bound to `addr`: IPv4
/// loopback or any address, IPv6's any address (which takes IPv4 too) or an IPv4-mapped one of
/// those. One bound to `::1` alone, or to the sandbox's outward address, is out of its reach
/// and would only be a dead link.
pub fn reachable(addr: IpAddr) -> bool {
    let v4 = |a: Ipv4Addr| a == Ipv4Addr::LOCALHOST || a.is_unspecified();
    match addr {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => a.is_unspecified() || a.to_ipv4_mapped().is_some_and(v4),
    }
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

/// The sandbox's listening TCP sockets that the gateway reaches, IPv4 and IPv6. The kernel is
/// asked for listeners alone (sock_diag, as `ss -l` does): `/proc/net/tcp` prints every
/// connection in the table, and while an app was under load (`make bench`'s gateway figures),
/// reading it every second was half of the runner's CPU time.
fn scan() -> io::Result<Vec<Listener>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut found = listening(&socket, AF_INET)?;
    // A sandbox without IPv6 answers that dump with an error: it has no IPv6 listeners.
    found.extend(listening(&socket, AF_INET6).unwrap_or_default());
    Ok(found)
}

/// One family's reachable listeners, from one sock_diag dump.
fn listening(socket: &Socket, family: u8) -> io::Result<Vec<Listener>> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let socket_id = match family {
        AF_INET => SocketId::new_v4(),
        _ => SocketId::new_v6(),
    };
    let request = SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::LISTEN,
        socket_id,
    });
    let mut request = NetlinkMessage::new(header, request.into());
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut found = Vec::new();
    loop {
        let (bytes, _) = socket.recv_from_full()?;
        let mut at = 0;
        while at < bytes.len() {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&bytes[at..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    let id = &r.header.socket_id;
                    if reachable(id.source_address) {
                        found.push(Listener {
                            port: id.source_port,
                            inode: r.header.inode.into(),
                        });
                    }
                }
                NetlinkPayload::Done(_) => return Ok(found),
                NetlinkPayload::Error(e) => return Err(e.to_io()),
                _ => {}
            }
            let len = message.header.length as usize;
            if len == 0 {
                break;
            }
            // Messages start on 4-byte boundaries.
            at += len.next_multiple_of(4);
        }
    }
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
        let found = match tokio::task::spawn_blocking(scan).await {
            Ok(Ok(found)) => found,
            // Nothing is reported on a failed look: an app is not gone because it was not seen.
            Ok(Err(e)) => {
                tracing::warn!("listing the sandbox's listeners: {e}");
                continue;
            }
            Err(_) => continue,
        };
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
    use std::net::{Ipv6Addr, TcpListener, TcpStream};

    #[test]
    fn the_gateway_reaches_loopback_and_any_address_only() {
        for addr in [
            "127.0.0.1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:0.0.0.0",
        ] {
            assert!(reachable(addr.parse().unwrap()), "{addr}");
        }
        for addr in [
            "127.0.0.2",
            "10.0.2.15",
            "::1",
            "fe80::1",
            "::ffff:10.0.2.15",
        ] {
            assert!(!reachable(addr.parse().unwrap()), "{addr}");
        }
    }

    #[test]
    fn the_kernel_lists_the_reachable_listeners_and_no_connection() {
        let bind = |addr: IpAddr| TcpListener::bind((addr, 0)).expect("bind");
        let port = |l: &TcpListener| l.local_addr().unwrap().port();
        let loopback = bind(Ipv4Addr::LOCALHOST.into());
        let any = bind(Ipv4Addr::UNSPECIFIED.into());
        let any6 = bind(Ipv6Addr::UNSPECIFIED.into());
        let loopback6 = bind(Ipv6Addr::LOCALHOST.into());
        let other = bind(Ipv4Addr::new(127, 0, 0, 2).into());
        let client = TcpStream::connect(loopback.local_addr().unwrap()).unwrap();
        let (_accepted, _) = loopback.accept().unwrap();

        let found = scan().expect("sock_diag answers");
        let listed = |p: u16| found.iter().any(|l| l.port == p && l.inode > 0);
        assert!(listed(port(&loopback)) && listed(port(&any)) && listed(port(&any6)));
        assert!(
            !listed(port(&loopback6)),
            "::1 alone is out of the gateway's reach"
        );
        assert!(
            !listed(port(&other)),
            "127.0.0.2 is not where the gateway connects"
        );
        let ephemeral = client.local_addr().unwrap().port();
        assert!(
            !found.iter().any(|l| l.port == ephemeral),
            "a connection is no app"
        );
    }

    #[test]
    fn apps_are_listed_once_each_without_the_sandboxs_own() {
        let found = [
            (5173, 101),
            (3000, 102),
            (8888, 105),
            (8000, 201),
            (3000, 203),
        ]
        .map(|(port, inode)| Listener { port, inode });
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
