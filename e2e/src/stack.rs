//! One private instance of the whole platform.

use std::any::TypeId;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_ops_protocol::api::{
    CreateSession, DevLogin, EventPage, NoBody, PostPrompt, SessionInfo, SignedIn,
};
use agent_ops_protocol::routes::{endpoint, Endpoint};
use agent_ops_protocol::{ApiError, SessionEvent};
use serde_json::Value;

use crate::{free_ports, random_hex, repo_root, target_dir, ClientSocket, Proxy};

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Route the runner's link through a proxy the test can cut.
    pub proxy_runner: bool,
    /// The runner reaches the Worker over TLS (`wss://`, `https://`), as in a deployment.
    pub tls_runner: bool,
    pub runner_grace_ms: u64,
    pub heartbeat_stale_ms: u64,
    /// Run the benchmark build of the Worker (`make bench`), with its echo object bound.
    pub bench_echo: bool,
    pub max_active_sessions: u32,
    /// Generous by default so only the rate-limit test meets them.
    pub rate_limit_api_per_min: u32,
    pub rate_limit_signin_per_min: u32,
    /// The agent's model calls per session and minute.
    pub rate_limit_model_per_min: u32,
    /// `development` enables the development sign-in.
    pub environment: &'static str,
    /// The Worker's `MODEL_PROVIDER`.
    pub model_provider: &'static str,
    /// Whether the Worker has the model's key (`MODEL_API_KEY`); without it, only keys stored
    /// in the vault reach the model.
    pub model_key_in_worker: bool,
    /// Bounds of each sandbox (the provider's defaults when `None`): memory in MiB, processes.
    pub sandbox_memory_mib: Option<u64>,
    pub sandbox_pids: Option<u64>,
    /// The disk of each sandbox, in MiB.
    pub sandbox_disk_mib: Option<u64>,
    /// Keep workerd's state (and the sandboxes) in RAM, so a benchmark measures our code rather
    /// than this machine's disk flushing each Durable Object commit.
    pub state_in_memory: bool,
    /// Whether the Worker is given Slack's signing secret (Slack is set up).
    pub slack: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            proxy_runner: false,
            tls_runner: false,
            runner_grace_ms: 4_000,
            heartbeat_stale_ms: 5_000,
            bench_echo: false,
            max_active_sessions: 10,
            rate_limit_api_per_min: 100_000,
            rate_limit_signin_per_min: 100_000,
            rate_limit_model_per_min: 100_000,
            environment: "development",
            model_provider: "openai-compatible",
            model_key_in_worker: true,
            sandbox_memory_mib: None,
            sandbox_pids: None,
            sandbox_disk_mib: None,
            state_in_memory: false,
            slack: true,
        }
    }
}

pub struct Stack {
    pub dir: PathBuf,
    pub port: u16,
    pub admin_key: String,
    /// The vault's master key ring (`id:hex,...`, newest first); change it and restart the worker
    /// to rotate.
    pub vault_keys: String,
    pub model_url: String,
    /// The key the model asks for, which the Worker adds to the agent's calls.
    pub model_api_key: String,
    pub recorder: scripted_model::Recorder,
    pub github: crate::github::GithubStandIn,
    pub slack: crate::slack::SlackStandIn,
    /// Signs OAuth states (known here so tests can mint expired ones).
    pub auth_secret: String,
    pub proxy: Option<Proxy>,
    pub tls_front: Option<crate::tls_front::TlsFront>,
    pub provider_secret: String,
    pub provider_port: u16,
    /// Where the Worker reaches the provider: through a tap that notes each runner's token.
    provider_tap: crate::provider_tap::ProviderTap,
    host: Child,
    wrangler: Option<Child>,
    opts: StackOptions,
    http: reqwest::Client,
}

fn spawn_group(cmd: &mut Command, log: &std::path::Path) -> Child {
    use std::os::unix::process::CommandExt;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

/// Asks the provider to stop, as an operator's service manager does, so it lets go of the
/// sandboxes' disks; then ends whatever is left of its group.
fn stop_provider(child: &mut Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_group(child);
}

fn kill_group(child: &mut Child) {
    Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        // Nothing left of it, often: said by the status, not on the test's output.
        .stderr(Stdio::null())
        .status()
        .ok();
    child.wait().ok();
}

fn wrangler_bin() -> PathBuf {
    repo_root().join("node_modules/.bin/wrangler")
}

impl Stack {
    pub async fn start(opts: StackOptions) -> Stack {
        let shm = std::path::Path::new("/dev/shm");
        let base = if opts.state_in_memory && shm.is_dir() {
            shm.join("agent-ops-e2e")
        } else {
            target_dir().join("e2e-tmp")
        };
        let dir = base.join(random_hex(6));
        std::fs::create_dir_all(&dir).expect("stack dir");
        let model_api_key = random_hex(24);
        let (model_addr, recorder) = scripted_model::spawn(
            "127.0.0.1:0".parse().expect("addr"),
            Some(model_api_key.clone()),
        )
        .await
        .expect("model server");
        let github = crate::github::GithubStandIn::spawn().await;
        let slack = crate::slack::SlackStandIn::spawn().await;
        let [port, provider_port] = free_ports::<2>();
        let provider_secret = random_hex(32);
        let proxy = if opts.proxy_runner {
            Some(Proxy::start(port).await)
        } else {
            None
        };
        let ca_file = dir.join("ca.pem");
        let tls_front = if opts.tls_runner {
            Some(crate::tls_front::TlsFront::start(port, &ca_file).await)
        } else {
            None
        };
        let status = Command::new(wrangler_bin())
            .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
            .arg(dir.join("wrangler"))
            .current_dir(repo_root())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run wrangler d1 migrations");
        assert!(status.success(), "D1 migrations failed");

        // The only host port a sandbox reaches: where its runner dials the Worker.
        let runner_port = match (&proxy, &tls_front) {
            (Some(p), _) => p.port,
            (None, Some(t)) => t.port,
            (None, None) => port,
        };
        std::fs::create_dir_all(dir.join("git")).expect("git root");
        let mut host_cmd = Command::new(target_dir().join(crate::PROFILE).join("sandbox-provider"));
        host_cmd
            .args(["--listen", &format!("127.0.0.1:{provider_port}")])
            .arg("--root")
            .arg(dir.join("sandboxes"))
            // In its environment, not its arguments, which any user of the machine may read.
            .env("AGENT_OPS_PROVIDER_SECRET", &provider_secret)
            .arg("--opencode-bin")
            .arg(repo_root().join("node_modules/.bin/opencode"))
            .args(["--heartbeat-ms", "1000"])
            .arg("--hide")
            .arg(dir.join("wrangler"))
            .arg("--hide")
            .arg(repo_root().join(".dev.vars"))
            .arg("--repo-root")
            .arg(dir.join("git"))
            .args(["--allow-port", &runner_port.to_string()])
            .env("AGENT_OPS_WEBSOCKIFY", crate::websockify_bin())
            .env("AGENT_OPS_CODE_SERVER", crate::code_server_bin());
        if tls_front.is_some() {
            host_cmd.env("AGENT_OPS_CA_FILE", &ca_file);
        }
        if let Some(mib) = opts.sandbox_memory_mib {
            host_cmd.env("AGENT_OPS_SANDBOX_MEMORY_MIB", mib.to_string());
        }
        if let Some(pids) = opts.sandbox_pids {
            host_cmd.env("AGENT_OPS_SANDBOX_PIDS", pids.to_string());
        }
        if let Some(mib) = opts.sandbox_disk_mib {
            host_cmd.env("AGENT_OPS_SANDBOX_DISK_MIB", mib.to_string());
        }
        let host = spawn_group(&mut host_cmd, &dir.join("host.log"));
        let provider_tap = crate::provider_tap::ProviderTap::start(provider_port).await;

        let mut stack = Stack {
            dir,
            port,
            admin_key: random_hex(24),
            vault_keys: format!("k1:{}", random_hex(32)),
            model_url: format!("http://{model_addr}/v1"),
            model_api_key,
            recorder,
            github,
            slack,
            auth_secret: random_hex(32),
            proxy,
            tls_front,
            provider_secret,
            provider_port,
            provider_tap,
            host,
            wrangler: None,
            opts,
            // Shorter than the idle timeout of wrangler's proxy, so that a pooled connection is
            // never reused just as the proxy closes it (a full bench run hit that reset).
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
        };
        stack.start_worker().await;
        stack
    }

    pub async fn start_worker(&mut self) {
        let runner_base = match (&self.proxy, &self.tls_front) {
            (Some(p), _) => format!("http://127.0.0.1:{}", p.port),
            (None, Some(t)) => format!("https://127.0.0.1:{}", t.port),
            (None, None) => self.url(""),
        };
        let vars = [
            ("PUBLIC_URL", self.url("")),
            (
                "SANDBOX_ORIGIN",
                format!("http://{{session}}.sandbox.localhost:{}", self.port),
            ),
            ("REPO_FILE_ROOTS", self.git_root().display().to_string()),
            ("ADMIN_API_KEY", self.admin_key.clone()),
            ("PROVIDER_SECRET", self.provider_secret.clone()),
            ("VAULT_KEYS", self.vault_keys.clone()),
            ("ENVIRONMENT", self.opts.environment.to_owned()),
            ("GITHUB_OAUTH_URL", self.github.base.clone()),
            ("GITHUB_API_URL", self.github.base.clone()),
            ("GITHUB_CLIENT_ID", self.github.client_id.clone()),
            ("GITHUB_CLIENT_SECRET", self.github.client_secret.clone()),
            ("AUTH_SECRET", self.auth_secret.clone()),
            (
                "SLACK_SIGNING_SECRET",
                match self.opts.slack {
                    true => self.slack.signing_secret.clone(),
                    false => String::new(),
                },
            ),
            ("SLACK_BOT_TOKEN", self.slack.bot_token.clone()),
            ("SLACK_API_URL", self.slack.base.clone()),
            ("SLACK_HOOKS_URL", format!("{}/hooks/", self.slack.base)),
            ("SLACK_OAUTH_URL", self.slack.base.clone()),
            ("SLACK_CLIENT_ID", self.slack.client_id.clone()),
            ("SLACK_CLIENT_SECRET", self.slack.client_secret.clone()),
            (
                "MAX_ACTIVE_SESSIONS",
                self.opts.max_active_sessions.to_string(),
            ),
            (
                "RATE_LIMIT_API_PER_MIN",
                self.opts.rate_limit_api_per_min.to_string(),
            ),
            (
                "RATE_LIMIT_SIGNIN_PER_MIN",
                self.opts.rate_limit_signin_per_min.to_string(),
            ),
            (
                "RATE_LIMIT_MODEL_PER_MIN",
                self.opts.rate_limit_model_per_min.to_string(),
            ),
            (
                "SANDBOX_PROVIDER_URL",
                format!("http://127.0.0.1:{}", self.provider_tap.port),
            ),
            ("MODEL_BASE_URL", self.model_url.clone()),
            ("MODEL_PROVIDER", self.opts.model_provider.to_owned()),
            (
                "MODEL_API_KEY",
                if self.opts.model_key_in_worker {
                    self.model_api_key.clone()
                } else {
                    String::new()
                },
            ),
            ("RUNNER_BASE_URL", runner_base),
            ("RUNNER_GRACE_MS", self.opts.runner_grace_ms.to_string()),
            (
                "HEARTBEAT_STALE_MS",
                self.opts.heartbeat_stale_ms.to_string(),
            ),
        ];
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join("scripts/wrangler-dev.mjs"))
            .args(["--ip", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--persist-to")
            .arg(self.dir.join("wrangler"))
            .arg("--config")
            .arg(self.wrangler_config())
            .current_dir(repo_root())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "true");
        for (k, v) in vars {
            cmd.arg("--var").arg(format!("{k}:{v}"));
        }
        self.wrangler = Some(spawn_group(&mut cmd, &self.dir.join("wrangler.log")));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            // Our worker's health, not whatever else might answer on the port, and bounded, so
            // that such a listener cannot hold the wait forever.
            let health = self
                .http
                .get(self.url("/health"))
                .timeout(Duration::from_secs(2));
            if let Ok(r) = health.send().await {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if body["service"] == "agent-ops" {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "wrangler dev did not become ready; see {}",
            self.dir.join("wrangler.log").display()
        );
    }

    /// Where a test keeps the Git repositories it names as `file://` (the one root of the
    /// host's that the provider and the Worker accept).
    /// The deployment's `wrangler.toml`, or for a benchmark the same with the benchmark build of
    /// the Worker and its echo object bound (never part of the production configuration).
    fn wrangler_config(&self) -> PathBuf {
        let root = repo_root();
        if !self.opts.bench_echo {
            return root.join("wrangler.toml");
        }
        let abs = |p: &str| root.join(p).display().to_string();
        let mut config =
            std::fs::read_to_string(root.join("wrangler.toml")).expect("wrangler.toml");
        for (from, to) in [
            (
                "\"worker/build/index.js\"",
                format!("{:?}", abs("worker/build-bench/index.js")),
            ),
            ("\"client/dist\"", format!("{:?}", abs("client/dist"))),
            (
                "migrations_dir = \"migrations\"",
                format!("migrations_dir = {:?}", abs("migrations")),
            ),
            (
                "  { name = \"RATE_LIMITER\"",
                "  { name = \"ECHO\", class_name = \"EchoObject\" },\n  { name = \"RATE_LIMITER\""
                    .into(),
            ),
        ] {
            assert!(config.contains(from), "wrangler.toml has {from}");
            config = config.replacen(from, &to, 1);
        }
        config
            .push_str("\n[[migrations]]\ntag = \"bench\"\nnew_sqlite_classes = [\"EchoObject\"]\n");
        let path = self.dir.join("wrangler.bench.toml");
        std::fs::write(&path, config).expect("the benchmark's wrangler config");
        path
    }

    pub fn git_root(&self) -> PathBuf {
        self.dir.join("git")
    }

    pub fn stop_worker(&mut self) {
        if let Some(mut w) = self.wrangler.take() {
            kill_group(&mut w);
        }
        // workerd is a grandchild: wait until it has let go of the port.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The stack's HTTP client, for requests the helpers below do not shape.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// Session `id`'s sandbox origin, as a browser sees it (`SANDBOX_ORIGIN`).
    pub fn sandbox_origin(&self, id: &str) -> String {
        format!("http://{id}.sandbox.localhost:{}", self.port)
    }

    /// Where a request for `target` goes and the `Host` it names: a sandbox path
    /// (`/sandbox/<id>/...`) or a sandbox URL goes to its session's own origin, which a browser
    /// resolves to loopback by itself (this machine's resolver does not, so the request goes to
    /// 127.0.0.1 naming that host); anything else to the app's.
    pub fn locate(&self, target: &str) -> (String, Option<String>) {
        let path = match target.split_once(".sandbox.localhost:") {
            Some((_, rest)) => &rest[rest.find('/').unwrap_or(rest.len())..],
            None => target,
        };
        let id = path
            .strip_prefix("/sandbox/")
            .and_then(|rest| rest.split('/').next());
        match id {
            Some(id) => (
                self.url(path),
                Some(format!("{id}.sandbox.localhost:{}", self.port)),
            ),
            None => (self.url(target), None),
        }
    }

    /// A request to `target` (see `locate`).
    pub fn request(&self, method: reqwest::Method, target: &str) -> reqwest::RequestBuilder {
        let (url, host) = self.locate(target);
        let req = self.http.request(method, url);
        match host {
            Some(host) => req.header("host", host),
            None => req,
        }
    }

    /// A request to the sandbox provider, signed as the Worker signs its own; returns the status
    /// and the JSON body.
    pub async fn provider_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        use agent_ops_protocol::signing::{
            sign_request, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let nonce = random_hex(16);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let signature = sign_request(
            self.provider_secret.as_bytes(),
            method.as_str(),
            path,
            now,
            &nonce,
            body.as_bytes(),
        );
        let resp = self
            .http
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.provider_port),
            )
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header(NONCE_HEADER, nonce)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the provider answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// What the sandbox provider says of a session's sandbox (a signed request, as the Worker's).
    pub async fn sandbox_info(&self, id: &str) -> agent_ops_protocol::api::SandboxInfo {
        let (status, v) = self
            .provider_call(reqwest::Method::GET, &format!("/v1/sandboxes/{id}"), None)
            .await;
        assert_eq!(status, 200, "the provider knows session {id}: {v}");
        serde_json::from_value(v).expect("a sandbox's info")
    }

    /// A request with the admin key; returns the status and the JSON body (Null if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_as(
            Some(&self.admin_key),
            method,
            path,
            body.map(|b| b.to_string()),
        )
        .await
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.request(method, path);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.expect("request reaches the worker");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Calls route `E` as `token` with its path parameters and typed body: its typed answer, or
    /// the status and the error it was refused with.
    pub async fn api<E: Endpoint>(
        &self,
        token: &str,
        params: &[&str],
        body: &E::Req,
    ) -> Result<E::Resp, (u16, ApiError)> {
        let spec = E::ROUTE.spec();
        let method = reqwest::Method::from_bytes(spec.method.as_bytes()).expect("a method");
        let mut req = self
            .request(method, &spec.path_with(params))
            .bearer_auth(token);
        if TypeId::of::<E::Req>() != TypeId::of::<NoBody>() {
            req = req.json(body);
        }
        let resp = req.send().await.expect("request reaches the worker");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            let error = serde_json::from_str(&text).unwrap_or_else(|_| {
                panic!("an error body of {status} is {{code, message}}: {text}")
            });
            return Err((status, error));
        }
        assert!(
            spec.statuses.contains(&status),
            "{} answered {status}",
            spec.path
        );
        let text = if text.is_empty() { "null" } else { &text };
        Ok(serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{} answers its declared type ({e}): {text}", spec.path)))
    }

    /// Calls route `E`, which takes no body, with the admin key.
    pub async fn admin<E: Endpoint<Req = NoBody>>(
        &self,
        params: &[&str],
    ) -> Result<E::Resp, (u16, ApiError)> {
        self.api::<E>(&self.admin_key, params, &NoBody {}).await
    }

    /// The agent's model call, as a runner makes it with `runner_token` (a minimal chat request).
    /// It carries a key of its own, which the Worker must never pass on.
    pub async fn call_model(&self, id: &str, runner_token: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/sessions/{id}/model/chat/completions")))
            .bearer_auth(runner_token)
            .header("x-api-key", "not-the-key")
            .json(&serde_json::json!({
                "model": "scripted",
                "stream": true,
                "messages": [{"role": "user", "content": "hello"}],
            }))
            .send()
            .await
            .expect("the model route answers")
    }

    /// Signs `login` in through development sign-in; its bearer token. The first to sign in
    /// becomes the organisation's admin.
    pub async fn dev_login(&self, login: &str) -> String {
        let body = DevLogin {
            login: login.to_owned(),
        };
        let resp = self
            .request(reqwest::Method::POST, "/auth/dev/login")
            .json(&body)
            .send()
            .await
            .expect("request reaches the worker");
        assert_eq!(resp.status(), 200, "development sign-in of {login}");
        let signed_in: SignedIn = resp.json().await.expect("a sign-in");
        signed_in.token
    }

    /// Runs the scheduler's minute at `at_ms`, as the cron trigger would; it answers once the
    /// tick has run. (Through the admin route: workerd's own test hook cannot reach a Worker
    /// that serves assets, whose router passes the controller on as a remote call.)
    pub async fn tick(&self, at_ms: u64) -> agent_ops_protocol::api::SchedulerTicked {
        let body = agent_ops_protocol::api::SchedulerTick { at_ms: Some(at_ms) };
        self.api::<endpoint::SchedulerTick>(&self.admin_key, &[], &body)
            .await
            .unwrap_or_else(|e| panic!("the tick at {at_ms}: {e:?}"))
    }

    /// Runs `sql` on the stack's D1 as its operator would (`wrangler d1 execute`), beside the
    /// running Worker: for state no API makes (an expired sign-in, ten thousand schedules).
    pub fn d1_execute(&self, sql: &str) {
        let out = Command::new(wrangler_bin())
            .args(["d1", "execute", "DB", "--local", "--persist-to"])
            .arg(self.dir.join("wrangler"))
            .arg("--command")
            .arg(sql)
            .current_dir(repo_root())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "true")
            .output()
            .expect("wrangler d1 execute");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A webhook delivery to trigger `trigger`: the status and the JSON answer.
    pub async fn deliver(
        &self,
        trigger: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut req = self.request(reqwest::Method::POST, &format!("/hooks/{trigger}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .expect("request reaches the worker");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn create_session(&self, prompt: Option<&str>) -> SessionInfo {
        let admin = self.admin_key.clone();
        self.create_session_as(&admin, prompt).await
    }

    /// A new session of `token`'s (a person's login or key).
    pub async fn create_session_as(&self, token: &str, prompt: Option<&str>) -> SessionInfo {
        let body = CreateSession {
            prompt: prompt.map(str::to_owned),
            ..Default::default()
        };
        self.api::<endpoint::CreateSession>(token, &[], &body)
            .await
            .unwrap_or_else(|e| panic!("create session: {e:?}"))
    }

    /// Deletes the session (terminating its sandbox).
    pub async fn terminate_session(&self, id: &str) {
        if let Err(e) = self.admin::<endpoint::DeleteSession>(&[id]).await {
            panic!("terminate session: {e:?}");
        }
    }

    pub async fn prompt(&self, id: &str, text: &str, client_request_id: &str) -> (u16, Value) {
        let body = serde_json::to_value(PostPrompt {
            text: text.to_owned(),
            client_request_id: Some(client_request_id.to_owned()),
        })
        .expect("a prompt");
        self.call(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/prompts"),
            Some(body),
        )
        .await
    }

    pub async fn session(&self, id: &str) -> SessionInfo {
        self.admin::<endpoint::GetSession>(&[id])
            .await
            .unwrap_or_else(|e| panic!("get session: {e:?}"))
    }

    /// The whole event history, read page by page.
    pub async fn history(&self, id: &str) -> Vec<SessionEvent> {
        let mut after = 0;
        let mut all = Vec::new();
        loop {
            let (status, v) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/sessions/{id}/events?after_seq={after}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "history: {v}");
            let page: EventPage = serde_json::from_value(v).expect("event page");
            all.extend(page.events);
            after = page.next_after_seq;
            if !page.has_more {
                return all;
            }
        }
    }

    /// The sequence number of the newest event, from the history endpoint.
    pub async fn history_tail_seq(&self, id: &str) -> u64 {
        let mut after = 0;
        loop {
            let (_, v) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/sessions/{id}/events?after_seq={after}"),
                    None,
                )
                .await;
            let page: EventPage = serde_json::from_value(v).expect("event page");
            after = page.next_after_seq;
            if !page.has_more {
                return after;
            }
        }
    }

    pub async fn client(&self, id: &str, after_seq: u64) -> ClientSocket {
        ClientSocket::connect(
            &self.ws_url(&format!("/api/sessions/{id}/ws?after_seq={after_seq}")),
            &self.admin_key,
        )
        .await
        .expect("client socket connects")
    }

    pub fn workspace(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("workspace")
    }

    /// The name of session `id`'s sandbox on the host: the session's id, or the warm sandbox's
    /// it took, which the session's directory links to (the link stays after its files go).
    pub fn sandbox_name(&self, id: &str) -> String {
        std::fs::read_link(self.dir.join("sandboxes").join(id))
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| id.to_owned())
    }

    /// Session `id`'s directory, as the provider (and its processes) name it.
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        let root = self.dir.join("sandboxes");
        std::fs::canonicalize(&root)
            .unwrap_or(root)
            .join(self.sandbox_name(id))
    }

    /// The session's `$HOME` in its sandbox, as the host sees it.
    pub fn home(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("home")
    }

    /// This session's runner process (not bubblewrap, not the agent).
    pub fn runners(&self, id: &str) -> Vec<crate::procs::Proc> {
        self.sandbox_procs(id)
            .into_iter()
            .filter(|p| {
                p.program_is("sandbox-runner") && p.argv.get(1).map(String::as_str) == Some("run")
            })
            .collect()
    }

    /// Every process of a session's sandbox: they all inherit its workspace's path (a warm
    /// sandbox's runner started before it knew its session, so that is how its processes tell).
    pub fn sandbox_procs(&self, id: &str) -> Vec<crate::procs::Proc> {
        let workspace = self.workspace(id);
        let workspace = workspace.to_string_lossy();
        crate::procs::all()
            .into_iter()
            .filter(|p| p.env("AGENT_OPS_WORKSPACE").as_deref() == Some(&*workspace))
            .collect()
    }

    pub fn runner_pids(&self, id: &str) -> Vec<u32> {
        self.runners(id).iter().map(|p| p.pid).collect()
    }

    /// The token the Worker gave session `id`'s runner, as the provider received it (no process
    /// holds it where another could read it).
    pub fn runner_token(&self, id: &str) -> Option<String> {
        self.provider_tap.runner_token(id)
    }

    pub fn kill_runner(&self, id: &str) {
        let runners = self.runners(id);
        assert!(!runners.is_empty(), "no runner process for session {id}");
        runners.iter().for_each(crate::procs::Proc::kill);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_worker();
        stop_provider(&mut self.host);
        if std::thread::panicking() {
            eprintln!("stack state kept for inspection in {}", self.dir.display());
        } else {
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }
}
