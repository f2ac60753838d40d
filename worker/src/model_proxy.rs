//! The agent's calls to its model pass through here, where the model's key is added: the key
//! stays with the Worker (`MODEL_API_KEY`), and no process in a sandbox ever holds it. The
//! runner authenticates each call with its session's token, which dies with the session.
//! Stateless: D1 is all it reads, so a call streams on through a deploy that resets the
//! session's object.
//!
//! The key is the session owner's own, stored in the vault, else the organisation's, else the
//! deployment's `MODEL_API_KEY`. Stored keys go only to the providers they are for: an
//! OpenAI-compatible server gets the deployment's key, never a person's OpenAI key.

use agent_ops_protocol::api::ModelConfig;
use agent_ops_protocol::signing::token_matches;
use agent_ops_protocol::ErrorCode;
use serde::Deserialize;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

use crate::http::fail;

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
    vec![(owner, kind), (crate::credentials_api::ORG, kind)]
}

async fn model_key(env: &Env, provider: &str, owner: &str) -> Result<Option<String>> {
    for (owner, kind) in stored_keys(provider, owner) {
        if let Some(key) = crate::credentials_api::open_stored(env, owner, kind).await? {
            return Ok(Some(key));
        }
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
/// the runner's token, and never a key of the agent's own.
pub fn passes_on(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "content-type" | "accept" | "user-agent")
        || name.starts_with("anthropic-")
        || name.starts_with("openai-")
}

/// `POST /api/sessions/{id}/model/{path}`: the runner's call, for its agent, to `path` below the
/// model's base URL.
pub async fn call(req: Request, env: &Env, id: &str, path: &str) -> Result<Response> {
    #[derive(Deserialize)]
    struct Row {
        owner_id: String,
        model: String,
        status: String,
        runner_token_hash: Option<String>,
    }
    let row: Option<Row> = if crate::sessions_api::is_session_id(id) {
        env.d1("DB")?
            .prepare(
                "SELECT owner_id, model, status, runner_token_hash FROM sessions WHERE id = ?1",
            )
            .bind(&[id.into()])?
            .first(None)
            .await?
    } else {
        None
    };
    let Some(row) = row else {
        return fail(ErrorCode::NotFound, format!("session {id} not found"));
    };
    let token = crate::auth::bearer_token(&req).unwrap_or_default();
    if !row
        .runner_token_hash
        .is_some_and(|hash| token_matches(&token, &hash))
    {
        return fail(ErrorCode::InvalidToken, "invalid runner token");
    }
    if row.status == "terminated" {
        return fail(
            ErrorCode::SessionTerminated,
            "the session has been terminated",
        );
    }
    if !is_inference(path) {
        return fail(
            ErrorCode::Forbidden,
            format!("the model route serves inference calls only, not `{path}`"),
        );
    }
    let model = crate::sessions_api::model_config(env, row.model);
    let key = model_key(env, &model.provider, &row.owner_id).await?;
    forward(req, &model, key.as_deref(), path).await
}

/// Calls the model for the agent and hands back its answer as it streams.
async fn forward(
    mut req: Request,
    model: &ModelConfig,
    key: Option<&str>,
    path: &str,
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
    let body = req.bytes().await?;
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
}
