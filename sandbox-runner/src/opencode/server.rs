//! The `opencode serve` process and its HTTP API: start it with a generated configuration for
//! the session's model, wait until it answers, and call it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agent_ops_protocol::api::ModelConfig;
use futures::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bin: PathBuf,
    pub workspace: PathBuf,
    pub state_dir: PathBuf,
    pub model: ModelConfig,
    /// What the agent sends as its API key: the model relay's, worth nothing elsewhere.
    pub api_key: String,
    /// Cloned into the workspace before the agent starts, if the workspace is empty.
    pub repo: Option<String>,
    pub branch: Option<String>,
    /// Where the agent's own port is noted, so it is never offered as an app's preview.
    pub internal: crate::ports::Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not start opencode: {0}")]
    Spawn(std::io::Error),
    #[error("opencode exited while starting: {0}")]
    Exited(String),
    #[error("opencode did not become ready within {0:?}")]
    NotReady(Duration),
    #[error("opencode request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("opencode answered {status} to {what}")]
    Status { status: u16, what: &'static str },
}

/// The OpenCode configuration for the session's model. Permissions are allowed because the
/// sandbox, not the agent, is the security boundary.
pub fn config_json(model: &ModelConfig, api_key: &str) -> Value {
    let mut options = json!({"apiKey": api_key});
    if let Some(url) = &model.base_url {
        options["baseURL"] = json!(url);
    }
    let (provider_id, provider) = match model.provider.as_str() {
        "anthropic" => ("anthropic", json!({ "options": options })),
        "openai" => ("openai", json!({ "options": options })),
        _ => (
            "agentops",
            json!({
                "npm": "@ai-sdk/openai-compatible",
                "name": "Agent Ops model",
                "options": options,
                "models": {model.model.clone(): {"name": model.model}},
            }),
        ),
    };
    let full = format!("{provider_id}/{}", model.model);
    json!({
        "provider": {provider_id: provider},
        "model": full,
        "small_model": full,
        "permission": {"*": "allow"},
        "autoupdate": false,
        "share": "disabled",
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The credentials OpenCode's server asks every request for (`OPENCODE_SERVER_PASSWORD`, with
/// its default user name): without them, anything that reaches its loopback port (an app
/// preview through the gateway included) could read its configuration, the model's key with it,
/// and drive the agent around the session's log and roles.
fn basic_auth(password: &str) -> HeaderMap {
    use base64::Engine;
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("opencode:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {pair}")).expect("base64 is ASCII");
    value.set_sensitive(true);
    HeaderMap::from_iter([(header::AUTHORIZATION, value)])
}

pub struct Server {
    pub child: Child,
    pub base: String,
    http: reqwest::Client,
    /// For its event stream: the same credentials, and no overall timeout.
    pub events: reqwest::Client,
}

impl Server {
    pub async fn start(cfg: &ServerConfig) -> Result<Server, ServerError> {
        let port = free_port().map_err(ServerError::Spawn)?;
        cfg.internal.set("agent", [port]);
        // A fresh password each start: it lives only in this process and OpenCode's.
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).map_err(|e| ServerError::Spawn(std::io::Error::other(e)))?;
        let password = hex::encode(raw);
        let xdg = |d: &str| cfg.state_dir.join(d);
        for d in ["data", "config", "cache", "state"] {
            std::fs::create_dir_all(xdg(d)).map_err(ServerError::Spawn)?;
        }
        let mut cmd = Command::new(&cfg.bin);
        cmd.args([
            "serve",
            "--port",
            &port.to_string(),
            "--hostname",
            "127.0.0.1",
        ])
        .current_dir(&cfg.workspace)
        .env("XDG_DATA_HOME", xdg("data"))
        .env("XDG_CONFIG_HOME", xdg("config"))
        .env("XDG_CACHE_HOME", xdg("cache"))
        .env("XDG_STATE_HOME", xdg("state"))
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        .env("OPENCODE_DISABLE_PROJECT_CONFIG", "1")
        .env("OPENCODE_DISABLE_DEFAULT_PLUGINS", "1")
        .env("OPENCODE_SERVER_PASSWORD", &password)
        .env(
            "OPENCODE_CONFIG_CONTENT",
            config_json(&cfg.model, &cfg.api_key).to_string(),
        )
        .stdin(Stdio::null())
        .kill_on_drop(true);
        let child = cmd.spawn().map_err(ServerError::Spawn)?;
        let auth = basic_auth(&password);
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .default_headers(auth.clone())
                .timeout(Duration::from_secs(30))
                .build()?,
            events: reqwest::Client::builder().default_headers(auth).build()?,
        };
        let limit = Duration::from_secs(90);
        let started = tokio::time::Instant::now();
        while started.elapsed() < limit {
            // OpenCode can leave a request made during its own start-up unanswered: probe with
            // a short timeout and ask again. The answer must come from *our* OpenCode (working in
            // this workspace): another sandbox's could hold the port if ours failed to bind it.
            let probe = server
                .http
                .get(format!("{}/path", server.base))
                .timeout(Duration::from_millis(750));
            if let Ok(r) = probe.send().await {
                let body: Value = r.json().await.unwrap_or_default();
                if body["directory"].as_str().map(std::path::Path::new)
                    == Some(cfg.workspace.as_path())
                {
                    return Ok(server);
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(ServerError::Exited(status.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ServerError::NotReady(limit))
    }

    async fn json(
        &self,
        req: reqwest::RequestBuilder,
        what: &'static str,
    ) -> Result<Value, ServerError> {
        let resp = req.send().await?;
        if !resp.status().is_success() {
            return Err(ServerError::Status {
                status: resp.status().as_u16(),
                what,
            });
        }
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// The OpenCode session for this sandbox, created once and remembered in the state
    /// directory so a restarted runner (or agent) continues the same conversation.
    pub async fn session(&self, state_dir: &Path) -> Result<String, ServerError> {
        let file = state_dir.join("opencode-session");
        if let Ok(id) = std::fs::read_to_string(&file) {
            let url = format!("{}/session/{}", self.base, id.trim());
            if self
                .http
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(id.trim().to_owned());
            }
        }
        let v = self
            .json(
                self.http
                    .post(format!("{}/session", self.base))
                    .json(&json!({})),
                "create session",
            )
            .await?;
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        std::fs::write(&file, &id).ok();
        Ok(id)
    }

    pub async fn prompt(&self, sid: &str, text: &str) -> Result<(), ServerError> {
        let body = json!({"parts": [{"type": "text", "text": text}]});
        self.json(
            self.http
                .post(format!("{}/session/{sid}/prompt_async", self.base))
                .json(&body),
            "prompt",
        )
        .await
        .map(|_| ())
    }

    pub async fn abort(&self, sid: &str) -> Result<(), ServerError> {
        self.json(
            self.http.post(format!("{}/session/{sid}/abort", self.base)),
            "abort",
        )
        .await
        .map(|_| ())
    }

    pub async fn messages(&self, sid: &str) -> Result<Vec<Value>, ServerError> {
        let v = self
            .json(
                self.http
                    .get(format!("{}/session/{sid}/message", self.base)),
                "messages",
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    pub async fn busy(&self, sid: &str) -> Result<bool, ServerError> {
        let v = self
            .json(
                self.http.get(format!("{}/session/status", self.base)),
                "status",
            )
            .await?;
        Ok(v.get(sid).is_some_and(|s| s["type"] != "idle"))
    }
}

#[derive(Debug)]
pub enum StreamItem {
    Event(Value),
    /// The stream broke and was re-opened: events may have been missed.
    Gap,
}

/// Follows `GET /event` forever, re-opening it when it ends, errors or goes silent.
/// `http` is the server's `events` client.
pub async fn follow_events(base: String, http: reqwest::Client, tx: mpsc::Sender<StreamItem>) {
    // OpenCode sends a heartbeat every ~10 s; silence for longer means a stalled stream.
    let silence = Duration::from_secs(30);
    loop {
        if let Ok(resp) = http.get(format!("{base}/event")).send().await {
            let mut body = resp.bytes_stream();
            let mut buf = Vec::<u8>::new();
            // How much of `buf` is known to hold no event's end: an event of megabytes arrives
            // in many chunks, and scanning it whole for each one would take seconds.
            let mut scanned = 0;
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout(silence, body.next()).await {
                buf.extend_from_slice(&chunk);
                while let Some(end) = find_event_end(&buf, scanned) {
                    let block: Vec<u8> = buf.drain(..end + 2).collect();
                    scanned = 0;
                    if let Some(v) = parse_block(&block) {
                        if tx.send(StreamItem::Event(v)).await.is_err() {
                            return;
                        }
                    }
                }
                scanned = buf.len().saturating_sub(1);
            }
        }
        if tx.send(StreamItem::Gap).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the first event in `buf` ends (its blank line), looking from `from` on.
fn find_event_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|at| from + at)
}

fn parse_block(block: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(block).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credentials_are_opencodes_basic_scheme_and_never_logged() {
        let auth = basic_auth("pw");
        let value = &auth[header::AUTHORIZATION];
        // base64("opencode:pw")
        assert_eq!(value.to_str().unwrap(), "Basic b3BlbmNvZGU6cHc=");
        assert!(value.is_sensitive());
    }

    #[test]
    fn parses_sse_blocks() {
        let buf = b"data: {\"type\":\"a\"}\n\ndata: {\"ty";
        let end = find_event_end(buf, 0).unwrap();
        assert_eq!(parse_block(&buf[..end + 2]).unwrap()["type"], "a");
        assert!(find_event_end(&buf[end + 2..], 0).is_none());
        assert_eq!(
            find_event_end(buf, end),
            Some(end),
            "found from where it starts"
        );
        assert_eq!(find_event_end(buf, end + 1), None);
        assert!(parse_block(b": comment\n\n").is_none());
    }

    #[test]
    fn config_points_opencode_at_the_model() {
        let m = ModelConfig {
            provider: "openai-compatible".into(),
            base_url: Some("http://m/v1".into()),
            model: "scripted".into(),
        };
        let c = config_json(&m, "k");
        assert_eq!(c["model"], "agentops/scripted");
        assert_eq!(
            c["provider"]["agentops"]["options"]["baseURL"],
            "http://m/v1"
        );
        assert_eq!(c["permission"]["*"], "allow");
        let a = ModelConfig {
            provider: "anthropic".into(),
            base_url: None,
            model: "claude".into(),
        };
        let c = config_json(&a, "k");
        assert_eq!(c["model"], "anthropic/claude");
        assert_eq!(c["provider"]["anthropic"]["options"]["apiKey"], "k");
        assert!(c["provider"]["anthropic"]["options"]
            .get("baseURL")
            .is_none());
    }
}
