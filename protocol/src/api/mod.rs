//! REST bodies, each defined once: the Worker, the web client and the tests all use these, and
//! the route table (`crate::routes`) names which one each route takes and answers.

mod accounts;
mod credentials;
mod sandbox;
mod slack;
mod workflows;

use serde::{Deserialize, Serialize};

pub use accounts::*;
pub use credentials::*;
pub use sandbox::*;
pub use slack::*;
pub use workflows::*;

use crate::events::{SessionEvent, SessionStatus};

/// The request of a route that takes no body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NoBody {}

/// The answer of a route that answers `204 No Content`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NoContent;

/// Routes whose answer is not a JSON body: a redirect (`302`), a WebSocket upgrade (`101`),
/// or what the sandbox or the model answered, passed through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NotJson;

/// `GET /api/openapi.json`: the OpenAPI 3.1 document of this API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct OpenApiDocument(pub serde_json::Map<String, serde_json::Value>);

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    pub ok: bool,
    pub service: String,
}

/// `GET /auth/github/callback`: where GitHub sends the browser back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OauthCallback {
    pub code: String,
    /// The state the sign-in started with (signed, single-use, bound to this browser).
    pub state: String,
}

/// `GET /api/sessions/{id}/events` reads the log after a sequence number, a page at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventsQuery {
    /// The last sequence number already read (0 for the start).
    #[serde(default)]
    pub after_seq: u64,
    /// How many events at most (the page is never longer than `MAX_PAGE_EVENTS`).
    #[serde(default = "max_page")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub limit: u64,
}

fn max_page() -> u64 {
    crate::MAX_PAGE_EVENTS as u64
}

/// `DELETE /api/sessions/{id}/prompts/{prompt_id}`: the queued prompt that will not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PromptCancelled {
    pub cancelled: String,
}

/// `POST /api/sessions/{id}/abort`: the running turn is being interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Aborting {
    pub aborting: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    #[default]
    Opencode,
    Codex,
    ClaudeCode,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opencode => "opencode",
            Self::Codex => "codex",
            Self::ClaudeCode => "claude_code",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    #[serde(default)]
    pub repo: Option<String>,
    /// The branch to check out; the repository's default branch when absent.
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub agent: Option<AgentKind>,
    /// `provider/model`, e.g. `anthropic/claude-sonnet-4-5`; the platform default when absent.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionInfo {
    pub id: String,
    pub status: SessionStatus,
    pub title: Option<String>,
    pub repo: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    pub agent: AgentKind,
    pub model: String,
    pub created_at: u64,
    pub updated_at: u64,
    /// What the sandbox offers beside the agent, each with why not when it is unavailable.
    #[serde(default)]
    pub panels: Vec<PanelInfo>,
    /// The caller's role on this session (answered by `GET /api/sessions/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub your_role: Option<crate::access::SessionRole>,
    /// What the session's agent has used of its model, as the model's answers report it.
    #[serde(default)]
    pub model_usage: ModelUsage,
}

/// Tokens a session's agent used, counted by the Worker from each of the model's answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Model calls counted.
    pub calls: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PostPrompt {
    /// Not blank; at most `MAX_PROMPT_BYTES` (128 KiB).
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 131_072)))]
    pub text: String,
    /// Retrying with the same id never runs the prompt twice. Generated when absent.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 128)))]
    pub client_request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PromptAccepted {
    pub prompt_id: String,
    pub client_request_id: String,
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventPage {
    pub events: Vec<SessionEvent>,
    /// Pass as `after_seq` to read the next page.
    pub next_after_seq: u64,
    pub has_more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    Terminal,
    Vscode,
    Browser,
    /// An app the agent or a person started in the sandbox, on a loopback port.
    Preview,
}

impl PanelKind {
    pub const ALL: [PanelKind; 4] = [
        PanelKind::Vscode,
        PanelKind::Browser,
        PanelKind::Preview,
        PanelKind::Terminal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Terminal => "terminal",
            Self::Vscode => "vscode",
            Self::Browser => "browser",
            Self::Preview => "preview",
        }
    }

    /// Whether a viewer may open it. The desktop, the editor and an app take input as they are
    /// (an app's forms and APIs change the workspace just as typing does); the terminal is shown
    /// to viewers read-only.
    pub fn viewers_may_open(self) -> bool {
        self == Self::Terminal
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PanelInfo {
    pub kind: PanelKind,
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PanelTokenRequest {
    pub panel: PanelKind,
    /// The app's port, for a `preview` (and only for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl PanelTokenRequest {
    /// Where the panel lives under the gateway's `/sandbox/<session>/` prefix, or why the request
    /// names no panel.
    pub fn entry(&self, session_id: &str) -> Result<String, &'static str> {
        match (self.panel, self.port) {
            (PanelKind::Preview, Some(port)) if port > 0 => Ok(format!("preview/{port}/")),
            (PanelKind::Preview, _) => Err("a preview needs the app's port (1-65535)"),
            (_, Some(_)) => Err("only a preview takes a port"),
            (PanelKind::Terminal, None) => Ok("terminal/".into()),
            (PanelKind::Vscode, None) => Ok("code/".into()),
            (PanelKind::Browser, None) => Ok(format!(
                "vnc/vnc.html?autoconnect=1&resize=remote&reconnect=1&path=sandbox/{session_id}/vnc/websockify"
            )),
        }
    }
}

/// A panel token and the same-origin address that trades it for the gateway's cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PanelToken {
    pub token: String,
    pub url: String,
    pub expires_in_secs: u64,
}

/// Whether a branch name is one git accepts and no option or path trick: letters, digits and
/// `._/-`, not starting with `-` or `/`, without `..`.
pub fn valid_branch(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['-', '/'])
        && !name.ends_with(['/', '.'])
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_and_only_a_preview_takes_a_port() {
        let entry = |panel, port| PanelTokenRequest { panel, port }.entry("s1");
        assert_eq!(
            entry(PanelKind::Preview, Some(5173)).as_deref(),
            Ok("preview/5173/")
        );
        assert!(entry(PanelKind::Preview, None).is_err());
        assert!(entry(PanelKind::Preview, Some(0)).is_err());
        assert!(entry(PanelKind::Terminal, Some(22)).is_err());
        assert_eq!(entry(PanelKind::Terminal, None).as_deref(), Ok("terminal/"));
        assert!(entry(PanelKind::Browser, None)
            .unwrap()
            .contains("path=sandbox/s1/vnc/websockify"));
        let body: PanelTokenRequest =
            serde_json::from_str(r#"{"panel":"preview","port":3000}"#).unwrap();
        assert_eq!(body.port, Some(3000));
        assert!(
            serde_json::from_str::<PanelTokenRequest>(r#"{"panel":"preview","port":70000}"#)
                .is_err()
        );
    }

    #[test]
    fn branch_names_exclude_option_and_path_tricks() {
        for ok in ["main", "feature/x-1", "release-2.0"] {
            assert!(valid_branch(ok), "{ok}");
        }
        for bad in ["", "-x", "/x", "a..b", "a b", "x/", "x.", "a;b"] {
            assert!(!valid_branch(bad), "{bad}");
        }
    }
}
