//! The sandbox provider's API, which the Worker calls to start and stop a session's sandbox.

use serde::{Deserialize, Serialize};

use super::{AgentKind, PanelInfo};

/// The model the agent talks to. API keys are never part of it: the sandbox reaches the model
/// through a base URL, and any key is added outside the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelConfig {
    /// `openai-compatible`, `openai` or `anthropic`.
    pub provider: String,
    pub base_url: Option<String>,
    pub model: String,
}

/// `POST /v1/sandboxes` on a sandbox provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    Running,
    Exited,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
