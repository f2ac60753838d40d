//! The credentials vault through the API: write-only, sealed before it is stored.

use e2e::{Stack, StackOptions};
use reqwest::Method;

/// Every byte of the Worker's local state (D1, Durable Objects, R2), to look for plain text.
fn state_contains(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let path = e.path();
            if path.is_dir() {
                state_contains(&path, needle)
            } else {
                std::fs::read(&path)
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            }
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_write_only_and_sealed_at_rest() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let secret = "ghp_Sup3rSecretTokenValue0123456789";
    let body = |s: &str| Some(serde_json::json!({ "secret": s }).to_string());
    let call = |method: Method, path: &'static str, b: Option<String>| {
        stack.call_as(Some(&stack.admin_key), method, path, b)
    };

    let (status, v) = call(Method::PUT, "/api/credentials/github_token", body(secret)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["key_id"].as_str()),
        (Some("github_token"), Some("k1"))
    );
    assert!(!v.to_string().contains(secret), "never returned");

    let (status, v) = call(Method::GET, "/api/credentials", None).await;
    assert_eq!(status, 200);
    assert_eq!(v["credentials"][0]["kind"], "github_token");
    assert!(!v.to_string().contains(secret), "never listed");

    assert!(
        !state_contains(&stack.dir.join("wrangler"), secret.as_bytes()),
        "no plain text at rest"
    );
    assert!(!state_contains(
        &stack.dir.join("wrangler"),
        hex::encode(secret).as_bytes()
    ));

    let (status, v) = call(
        Method::PUT,
        "/api/credentials/github_token",
        body("ghp_rotated_value"),
    )
    .await;
    assert_eq!(status, 200, "replacing is allowed: {v}");
    let (_, v) = call(Method::GET, "/api/credentials", None).await;
    assert_eq!(v["credentials"].as_array().map(Vec::len), Some(1));

    for (method, path, b, expected) in [
        (
            Method::PUT,
            "/api/credentials/ssh_key",
            body("x"),
            (400, "invalid_body"),
        ),
        (
            Method::PUT,
            "/api/credentials/github_token",
            body("  "),
            (400, "invalid_body"),
        ),
        (
            Method::PUT,
            "/api/credentials/github_token",
            Some(r#"{"secret":"x","extra":1}"#.into()),
            (400, "invalid_body"),
        ),
        (
            Method::PUT,
            "/api/credentials/github_token",
            body(&"x".repeat(20_000)),
            (413, "payload_too_large"),
        ),
        (
            Method::DELETE,
            "/api/credentials/openai_api_key",
            None,
            (404, "not_found"),
        ),
    ] {
        let (s, v) = call(method, path, b).await;
        assert_eq!(
            (s, v["code"].as_str().unwrap_or_default()),
            expected,
            "{path}: {v}"
        );
    }
    let (s, v) = stack
        .call_as(
            None,
            Method::PUT,
            "/api/credentials/github_token",
            body("x"),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")));

    let (status, _) = call(Method::DELETE, "/api/credentials/github_token", None).await;
    assert_eq!(status, 204);
    let (_, v) = call(Method::GET, "/api/credentials", None).await;
    assert_eq!(v["credentials"].as_array().map(Vec::len), Some(0));

    // The organisation's credentials, set by administrators, are kept apart from any user's.
    let (s, v) = call(
        Method::PUT,
        "/api/admin/credentials/anthropic_api_key",
        body("sk-ant-org-key"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, org) = call(Method::GET, "/api/admin/credentials", None).await;
    assert_eq!(org["credentials"][0]["kind"], "anthropic_api_key");
    let (_, mine) = call(Method::GET, "/api/credentials", None).await;
    assert_eq!(
        mine["credentials"].as_array().map(Vec::len),
        Some(0),
        "{mine}"
    );
    assert!(!state_contains(
        &stack.dir.join("wrangler"),
        b"sk-ant-org-key"
    ));

    // Rotation: a new master key goes first in the ring, the old one stays to open old records.
    let (status, _) = call(
        Method::PUT,
        "/api/credentials/openai_api_key",
        body("sk-old-key-record"),
    )
    .await;
    assert_eq!(status, 200);
    stack.stop_worker();
    stack.vault_keys = format!("k2:{},{}", e2e::random_hex(32), stack.vault_keys);
    stack.start_worker().await;
    let (status, v) = stack
        .call(Method::POST, "/api/admin/vault/rotate", None)
        .await;
    assert_eq!(
        (status, &v["resealed"], &v["failed"]),
        (200, &serde_json::json!(2), &serde_json::json!([])),
        "{v}"
    );
    let (_, v) = stack.call(Method::GET, "/api/credentials", None).await;
    assert_eq!(v["credentials"][0]["key_id"], "k2");
    let (_, v) = stack
        .call(Method::POST, "/api/admin/vault/rotate", None)
        .await;
    assert_eq!(v["resealed"], 0, "nothing left under the old key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_model_calls_carry_the_owners_key_else_the_organisations() {
    let stack = Stack::start(StackOptions {
        model_provider: "openai",
        model_key_in_worker: false,
        ..Default::default()
    })
    .await;
    let info = stack.create_session(None).await;
    let token = stack.runner_token(&info.id).expect("runner token");
    let put = |path: &'static str, secret: &str| {
        let body = serde_json::json!({ "secret": secret }).to_string();
        stack.call_as(Some(&stack.admin_key), Method::PUT, path, Some(body))
    };
    // The model's answer to the key it was sent: 200, or OpenAI's refusal of a wrong key.
    let answer = || async {
        let resp = stack.call_model(&info.id, &token).await;
        let status = resp.status().as_u16();
        let body: serde_json::Value = if status == 200 {
            serde_json::Value::Null
        } else {
            resp.json().await.unwrap_or_default()
        };
        (status, body["error"]["code"].as_str().map(str::to_owned))
    };
    let refused = (401, Some("invalid_api_key".to_owned()));

    assert_eq!(answer().await, refused, "no key anywhere");
    let (s, v) = put(
        "/api/admin/credentials/openai_api_key",
        &stack.model_api_key,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(answer().await, (200, None), "the organisation's key");
    let (s, v) = put("/api/credentials/openai_api_key", "sk-the-owners-own").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(answer().await, refused, "the owner's own key comes first");
    let (s, _) = stack
        .call_as(
            Some(&stack.admin_key),
            Method::DELETE,
            "/api/credentials/openai_api_key",
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(answer().await, (200, None), "the organisation's again");
}
