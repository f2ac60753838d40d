//! Panel tokens: short-lived, signed grants to open one of a session's panels (terminal, VS
//! Code, VNC, a preview), traded on the session's own sandbox origin for its gateway's cookie.

use agent_ops_protocol::access::{acting_role, SessionRole};
use agent_ops_protocol::api::PanelToken;
use agent_ops_protocol::panel::{self, PanelGrant};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Request, Url};

use crate::db::sessions::SessionRow;
use crate::edge::auth::{panel_key, Principal};
use crate::edge::http::{answer, body, random_id, refuse, Handled};

/// Panel tokens live two minutes: long enough to load an iframe, useless once leaked.
const TOKEN_TTL_SECS: u64 = 120;

pub async fn token(
    mut req: Request,
    env: &Env,
    user: &Principal,
    role: SessionRole,
    session: &SessionRow,
) -> Handled {
    let id = &session.id;
    let wanted = body::<endpoint::PanelToken>(&mut req, 256).await?;
    let entry = match wanted.entry(id) {
        Ok(entry) => entry,
        Err(why) => return refuse(ErrorCode::InvalidBody, why),
    };
    let role = acting_role(&user.caller, role);
    if role == SessionRole::Viewer && !wanted.panel.viewers_may_open() {
        return refuse(
            ErrorCode::Forbidden,
            "viewers watch the terminal; the desktop, the editor and app previews need the collaborator role",
        );
    }
    if session.status.is_terminal() {
        return Err(ApiError::session_terminated().into());
    }
    match session.panels.iter().find(|p| p.kind == wanted.panel) {
        Some(p) if p.available => {}
        Some(p) => {
            let why = p.reason.as_deref().unwrap_or("this panel is not available");
            return refuse(ErrorCode::Conflict, why);
        }
        None => {
            return refuse(
                ErrorCode::Conflict,
                "this session's sandbox offers no panels",
            )
        }
    }
    let grant = PanelGrant {
        session: id.to_owned(),
        login: user.login.clone(),
        role,
        credential: user.credential.clone(),
    };
    let key = panel_key(env, id)?;
    let token = match panel::issue(&key, &user.user_id, grant, &random_id(), TOKEN_TTL_SECS) {
        Ok(t) => t,
        Err(e) => {
            return refuse(
                ErrorCode::Internal,
                format!("could not sign a panel token: {e}"),
            )
        }
    };
    let origin = crate::edge::origins::sandboxes(env)?.origin(id);
    // Traded on the sandbox's own origin, so the cookie it is traded for lives there.
    let mut url = Url::parse(&format!("{origin}/sandbox/{id}/auth"))?;
    url.query_pairs_mut()
        .append_pair("token", &token)
        .append_pair("next", &entry);
    answer::<endpoint::PanelToken>(&PanelToken {
        token,
        url: url.to_string(),
        expires_in_secs: TOKEN_TTL_SECS,
    })
}
