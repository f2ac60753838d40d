//! The agent's calls to its model pass through here, where the model's key is added: the key
//! stays with the Worker (`MODEL_API_KEY`), and no process in a sandbox ever holds it. The
//! runner authenticates each call with its session's token, which dies with the session: the
//! session's object, which holds the token's hash, admits each call in one round trip.
//!
//! The key is the session owner's own, stored in the vault, else the organisation's, else the
//! deployment's `MODEL_API_KEY`. Stored keys go only to the providers they are for: an
//! OpenAI-compatible server gets the deployment's key, never a person's OpenAI key.
//!
//! Nor is the route an open tap on that key: each session's calls are rate-limited, ask for the
//! session's model (or one the operator allows, `MODEL_ALLOWED`), have their output capped
//! (`MODEL_MAX_OUTPUT_TOKENS`) and carry no account-selecting header; the tokens each answer
//! reports are added to the session's count (`model_usage`), for budgets to hold.

use agent_ops_protocol::api::{ModelConfig, ModelUsage};
use agent_ops_protocol::session_calls::{ModelAdmission, ModelCall};
use agent_ops_protocol::{ApiError, ErrorCode};
use futures::StreamExt;
use serde_json::Value;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

use crate::api::sessions::is_session_id;
use crate::db::{sessions, Db};
use crate::edge::http::{fail, refuse, Failure, Handled};
use crate::sandbox::model_usage::UsageMeter;
use crate::session;

/// Where a provider's API lives when the session names no base URL.
fn default_base(provider: &str) -> Option<&'static str> {
    match provider {
        "anthropic" => Some("https://api.anthropic.com/v1"),
        "openai" => Some("https://api.openai.com/v1"),
        _ => None,
    }
}

/// The model's URL for a call the agent made to `path` (below its base URL) with `query`.
pub fn upstream_url(model: &ModelConfig, path: &str, query: Option<&str>) -> Option<String> {
    let base = model
        .base_url
        .as_deref()
        .or_else(|| default_base(&model.provider))?;
    let mut url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    Some(url)
}

/// The calls an agent makes to run: inference, nothing else. The key may be one that also
/// manages an account (files, batches, fine-tunes), and the agent is not trusted with that.
pub fn is_inference(path: &str) -> bool {
    matches!(
        path.trim_matches('/'),
        "chat/completions" | "completions" | "responses" | "messages" | "messages/count_tokens"
    )
}

/// Where to look for the key, in order: (owner, credential kind) pairs in the vault. The
/// deployment's `MODEL_API_KEY` comes after them.
pub fn stored_keys<'a>(provider: &str, owner: &'a str) -> Vec<(&'a str, &'static str)> {
    let kind = match provider {
        "anthropic" => "anthropic_api_key",
        "openai" => "openai_api_key",
        _ => return Vec::new(),
    };
    vec![(owner, kind), (crate::vault::ORG, kind)]
}

async fn model_key(env: &Env, provider: &str, owner: &str) -> Result<Option<String>> {
    if let Some(key) = crate::vault::open_first(env, &stored_keys(provider, owner)).await? {
        return Ok(Some(key));
    }
    Ok(env
        .secret("MODEL_API_KEY")
        .ok()
        .map(|k| k.to_string())
        .filter(|k| !k.is_empty()))
}

/// The header that carries the key, as the provider expects it.
pub fn key_header(provider: &str, key: &str) -> (&'static str, String) {
    match provider {
        "anthropic" => ("x-api-key", key.to_owned()),
        _ => ("authorization", format!("Bearer {key}")),
    }
}

/// Whether a header the agent sent goes on to the model. Only what describes the call: never
/// the runner's token, a key of the agent's own, or a header that picks which of the key's
/// organisations or projects pays (`openai-organization`, `openai-project`).
pub fn passes_on(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "content-type"
            | "accept"
            | "user-agent"
            | "anthropic-version"
            | "anthropic-beta"
            | "openai-beta"
    )
}

/// What the model route lets a call ask for.
pub struct CallPolicy<'a> {
    /// The session's model.
    pub model: &'a str,
    /// Other models the operator allows (`MODEL_ALLOWED`).
    pub allowed: &'a [String],
    /// The most output tokens one call may ask for.
    pub max_output_tokens: u64,
}

impl CallPolicy<'_> {
    /// The body to send on: the agent's, with its output capped, or why it may not go.
    pub fn apply(&self, path: &str, body: &[u8]) -> std::result::Result<Vec<u8>, ApiError> {
        let mut v: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("a model call is a JSON object: {e}"),
            )
        })?;
        let Some(call) = v.as_object_mut() else {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "a model call is a JSON object",
            ));
        };
        match call.get("model").and_then(Value::as_str) {
            Some(m) if m == self.model || self.allowed.iter().any(|a| a == m) => {}
            None if path.trim_matches('/') == "messages/count_tokens" => {}
            asked => {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "this session's agent calls {}, not {}",
                        self.model,
                        asked.unwrap_or("an unnamed model")
                    ),
                ))
            }
        }
        // Each API names its output bound; where a call names none, the cap is its bound.
        let keys: &[&str] = match path.trim_matches('/') {
            "chat/completions" => &["max_tokens", "max_completion_tokens"],
            "completions" | "messages" => &["max_tokens"],
            "responses" => &["max_output_tokens"],
            _ => &[],
        };
        let cap = self.max_output_tokens;
        let mut bounded = false;
        for key in keys {
            if let Some(n) = call.get_mut(*key) {
                *n = Value::from(n.as_u64().unwrap_or(cap).min(cap));
                bounded = true;
            }
        }
        if let (false, Some(key)) = (bounded, keys.first()) {
            call.insert((*key).to_owned(), Value::from(cap));
        }
        serde_json::to_vec(&v).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
    }
}

/// `POST /api/sessions/{id}/model/{path}`: the runner's call, for its agent, to `path` below the
/// model's base URL.
pub async fn call(mut req: Request, env: &Env, id: &str, path: &str) -> Handled {
    if !is_session_id(id) {
        return Err(ApiError::session_not_found(id).into());
    }
    let asked = ModelCall {
        token: crate::edge::auth::bearer_token(&req).unwrap_or_default(),
        per_minute: setting(env, "RATE_LIMIT_MODEL_PER_MIN", 120) as u32,
    };
    // The session's object admits the call while its body arrives (a read, nothing more: the
    // body goes nowhere until the call is admitted).
    let (admission, body) = futures::join!(session::call(env, id, asked), req.bytes());
    let caller = match admission? {
        ModelAdmission::Admitted(caller) => caller,
        ModelAdmission::Limited { retry_after_secs } => {
            return Err(Failure::Limited { retry_after_secs })
        }
    };
    if !is_inference(path) {
        return refuse(
            ErrorCode::Forbidden,
            format!("the model route serves inference calls only, not `{path}`"),
        );
    }
    let allowed: Vec<String> = env
        .var("MODEL_ALLOWED")
        .map(|v| v.to_string())
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let policy = CallPolicy {
        model: &caller.model,
        allowed: &allowed,
        max_output_tokens: setting(env, "MODEL_MAX_OUTPUT_TOKENS", 32_768),
    };
    let body = policy.apply(path, &body?)?;
    let model = crate::api::sessions::model_config(env, caller.model);
    let key = model_key(env, &model.provider, &caller.owner_id).await?;
    let answer = forward(&req, &model, key.as_deref(), path, body).await?;
    Ok(metered(answer, env.clone(), id.to_owned())?)
}

fn setting(env: &Env, name: &str, default: u64) -> u64 {
    env.var(name)
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(default)
}

/// The model's answer as it streams to the agent, its usage added to the session's count once
/// it has all passed (nothing waits for the count). An agent that hangs up drops this stream,
/// and with it the model's answer: a provider stops generating, and billing, when it is cut off.
fn metered(mut answer: Response, env: Env, id: String) -> Result<Response> {
    let status = answer.status_code();
    if status >= 300 {
        return Ok(answer);
    }
    let headers = answer.headers().clone();
    let streamed = headers
        .get("content-type")?
        .is_some_and(|c| c.contains("text/event-stream"));
    let body = answer.stream()?;
    let state = (body, UsageMeter::new(streamed), Some((env, id)));
    let stream = futures::stream::unfold(state, |(mut body, mut meter, mut count)| async move {
        match body.next().await {
            Some(Ok(chunk)) => {
                meter.feed(&chunk);
                Some((Ok(chunk), (body, meter, count)))
            }
            Some(Err(e)) => Some((Err(e), (body, meter, count))),
            None => {
                if let Some((env, id)) = count.take() {
                    if let Err(e) = count_usage(&env, &id, meter.finish()).await {
                        worker::console_warn!("model usage of session {id} not counted: {e}");
                    }
                }
                None
            }
        }
    });
    Ok(Response::from_stream(stream)?
        .with_status(status)
        .with_headers(headers))
}

async fn count_usage(env: &Env, id: &str, usage: ModelUsage) -> Result<()> {
    sessions::add_model_usage(&Db::of(env)?, id, usage).await
}

/// Calls the model for the agent with `body` and hands back its answer as it streams.
async fn forward(
    req: &Request,
    model: &ModelConfig,
    key: Option<&str>,
    path: &str,
    body: Vec<u8>,
) -> Result<Response> {
    let url = req.url()?;
    let Some(target) = upstream_url(model, path, url.query()) else {
        return fail(
            ErrorCode::ModelUnreachable,
            format!("the model provider {} has no base URL", model.provider),
        );
    };
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if passes_on(&name) {
            headers.set(&name, &value)?;
        }
    }
    if let Some(key) = key {
        let (name, value) = key_header(&model.provider, key);
        headers.set(name, &value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(
            worker::js_sys::Uint8Array::from(body.as_slice()).into(),
        ));
    match Fetch::Request(Request::new_with_init(&target, &init)?)
        .send()
        .await
    {
        Ok(resp) => Ok(resp),
        Err(e) => fail(
            ErrorCode::ModelUnreachable,
            format!("the model did not answer: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(provider: &str, base_url: Option<&str>) -> ModelConfig {
        ModelConfig {
            provider: provider.into(),
            base_url: base_url.map(str::to_owned),
            model: "m".into(),
        }
    }

    #[test]
    fn calls_go_below_the_model_base_url() {
        let local = model("openai-compatible", Some("http://127.0.0.1:9/v1/"));
        assert_eq!(
            upstream_url(&local, "/chat/completions", None).as_deref(),
            Some("http://127.0.0.1:9/v1/chat/completions")
        );
        assert_eq!(
            upstream_url(&model("anthropic", None), "messages", Some("beta=true")).as_deref(),
            Some("https://api.anthropic.com/v1/messages?beta=true")
        );
        assert_eq!(
            upstream_url(&model("openai-compatible", None), "x", None),
            None
        );
    }

    #[test]
    fn a_persons_key_comes_first_and_goes_only_to_its_provider() {
        assert_eq!(
            stored_keys("anthropic", "u1"),
            vec![("u1", "anthropic_api_key"), ("org", "anthropic_api_key")]
        );
        assert_eq!(stored_keys("openai", "u1")[0], ("u1", "openai_api_key"));
        assert!(stored_keys("openai-compatible", "u1").is_empty());
    }

    #[test]
    fn the_key_serves_inference_only() {
        for ok in [
            "chat/completions",
            "/responses",
            "messages",
            "messages/count_tokens",
        ] {
            assert!(is_inference(ok), "{ok}");
        }
        for refused in [
            "files",
            "fine_tuning/jobs",
            "chat/completions/../../files",
            "",
            "models",
        ] {
            assert!(!is_inference(refused), "{refused}");
        }
    }

    #[test]
    fn the_key_goes_where_each_provider_reads_it() {
        assert_eq!(key_header("anthropic", "k"), ("x-api-key", "k".into()));
        assert_eq!(
            key_header("openai", "k"),
            ("authorization", "Bearer k".into())
        );
    }

    #[test]
    fn the_runner_token_and_the_agents_own_keys_stay_behind() {
        for kept in [
            "Authorization",
            "x-api-key",
            "cookie",
            "host",
            "cf-connecting-ip",
            "OpenAI-Organization",
            "openai-project",
        ] {
            assert!(!passes_on(kept), "{kept}");
        }
        for sent in [
            "Content-Type",
            "accept",
            "anthropic-version",
            "anthropic-beta",
            "user-agent",
        ] {
            assert!(passes_on(sent), "{sent}");
        }
    }

    fn applied(path: &str, body: Value) -> std::result::Result<Value, ErrorCode> {
        let allowed = vec!["small".to_owned()];
        let policy = CallPolicy {
            model: "scripted",
            allowed: &allowed,
            max_output_tokens: 1000,
        };
        policy
            .apply(path, body.to_string().as_bytes())
            .map(|b| serde_json::from_slice(&b).unwrap())
            .map_err(|e| e.code)
    }

    #[test]
    fn a_call_asks_for_the_sessions_model_and_its_output_is_capped() {
        use serde_json::json;
        let chat = applied(
            "chat/completions",
            json!({"model": "scripted", "max_tokens": 99999}),
        );
        assert_eq!(chat.unwrap()["max_tokens"], 1000);
        let unbounded = applied("chat/completions", json!({"model": "small"})).unwrap();
        assert_eq!(
            unbounded["max_tokens"], 1000,
            "no bound asked: the cap is one"
        );
        let small = applied(
            "chat/completions",
            json!({"model": "scripted", "max_completion_tokens": 10}),
        );
        assert_eq!(small.unwrap()["max_completion_tokens"], 10);
        let responses = applied(
            "responses",
            json!({"model": "scripted", "max_output_tokens": 5000}),
        );
        assert_eq!(responses.unwrap()["max_output_tokens"], 1000);
        let messages = applied("messages", json!({"model": "scripted"})).unwrap();
        assert_eq!(messages["max_tokens"], 1000);
        assert!(applied("messages/count_tokens", json!({"messages": []})).is_ok());
        assert_eq!(
            applied("chat/completions", json!({"model": "gpt-expensive"})),
            Err(ErrorCode::Forbidden)
        );
        assert_eq!(
            applied("chat/completions", json!({})),
            Err(ErrorCode::Forbidden)
        );
        assert_eq!(
            applied("chat/completions", json!([1])),
            Err(ErrorCode::InvalidBody)
        );
    }
}
