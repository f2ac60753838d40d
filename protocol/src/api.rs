//! REST bodies: the public sessions API and the sandbox provider API the worker calls.

use serde::{Deserialize, Serialize};

use crate::events::{SessionEvent, SessionStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
pub struct ModelUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Model calls counted.
    pub calls: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostPrompt {
    pub text: String,
    /// Retrying with the same id never runs the prompt twice. Generated when absent.
    #[serde(default)]
    pub client_request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptAccepted {
    pub prompt_id: String,
    pub client_request_id: String,
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<SessionEvent>,
    /// Pass as `after_seq` to read the next page.
    pub next_after_seq: u64,
    pub has_more: bool,
}

/// The model the agent talks to. API keys are never part of it: the sandbox reaches the model
/// through a base URL, and any key is added outside the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `openai-compatible`, `openai` or `anthropic`.
    pub provider: String,
    pub base_url: Option<String>,
    pub model: String,
}

/// `POST /v1/sandboxes` on a sandbox provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateSandbox {
    pub session_id: String,
    /// WebSocket URL of the session's runner endpoint.
    pub control_url: String,
    pub runner_token: String,
    pub agent: AgentKind,
    pub model: ModelConfig,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    /// Hex key the sandbox's gateway verifies panel tokens with (this session's only).
    #[serde(default)]
    pub panel_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
pub struct PanelInfo {
    pub kind: PanelKind,
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    Running,
    Exited,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub session_id: String,
    pub state: SandboxState,
    pub workspace: String,
    pub log_path: String,
    /// The gateway's base URL (the sandbox's one listener), which the worker proxies to.
    #[serde(default)]
    pub gateway_url: Option<String>,
    #[serde(default)]
    pub panels: Vec<PanelInfo>,
}

/// `PUT /api/credentials/:kind`. The secret goes in and never comes out again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutCredential {
    pub secret: String,
}

/// The credentials a user (or the organisation) may store.
pub const CREDENTIAL_KINDS: [&str; 3] = ["anthropic_api_key", "openai_api_key", "github_token"];

/// What the API says of a stored credential: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub kind: String,
    /// The master key it is sealed with (it changes when keys rotate).
    pub key_id: String,
    pub updated_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialList {
    pub credentials: Vec<CredentialInfo>,
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
