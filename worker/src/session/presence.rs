//! Who is watching a session: derived from the open client sockets' attachments, so it needs no
//! storage of its own and survives hibernation with the sockets themselves.

use agent_ops_protocol::frames::{ToClientFrame, Viewer};
use worker::State;

use super::{broadcast, SocketInfo};

/// Tells every viewer who is watching, leaving out the connection `gone` (closing right now).
pub fn announce(state: &State, gone: Option<&str>) {
    let sockets = state.get_websockets_with_tag("client");
    let mut viewers: Vec<Viewer> = sockets
        .iter()
        .filter_map(|ws| ws.deserialize_attachment::<SocketInfo>().ok().flatten())
        .filter(|info| Some(info.conn.as_str()) != gone)
        .filter_map(|info| info.access)
        .map(|a| Viewer {
            login: a.login,
            role: a.role,
        })
        .collect();
    viewers.sort_by(|a, b| a.login.cmp(&b.login));
    viewers.dedup_by(|a, b| a.login == b.login);
    if let Ok(frame) = serde_json::to_string(&ToClientFrame::Presence { viewers }) {
        broadcast(&sockets, &frame);
    }
}
