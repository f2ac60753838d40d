//! The credentials vault through the API: write-only, sealed before it is stored.

use std::collections::HashMap;

use agent_ops_protocol::vault::{self, Binding, KeyRing, Sealed, CREDENTIALS};
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

/// The credentials the Worker stored in its local D1, opened with `ring`: (owner id, kind) to
/// the id of the key each is sealed under and its secret.
fn stored_credentials(
    stack: &Stack,
    ring: &KeyRing,
) -> HashMap<(String, String), (String, String)> {
    let d1 = walk(&stack.dir.join("wrangler"))
        .into_iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "sqlite")
                && p.to_string_lossy().contains("D1DatabaseObject")
                && p.file_name().is_some_and(|n| n != "metadata.sqlite")
        })
        .expect("the local D1 database");
    let out = std::process::Command::new("sqlite3")
        .args(["-readonly", "-json"])
        .arg(&d1)
        .arg("SELECT owner_id, kind, key_id, nonce, ciphertext FROM credentials")
        .output()
        .expect("sqlite3 (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    rows.into_iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap().to_owned();
            let sealed = Sealed {
                key_id: text("key_id"),
                nonce: hex::decode(text("nonce")).unwrap().try_into().unwrap(),
                ciphertext: hex::decode(text("ciphertext")).unwrap(),
            };
            let binding = Binding {
                purpose: CREDENTIALS,
                owner: r["owner_id"].as_str().unwrap(),
                kind: r["kind"].as_str().unwrap(),
            };
            let secret = vault::open(ring, binding, &sealed).expect("every record opens");
            let secret = String::from_utf8(secret).unwrap();
            ((text("owner_id"), text("kind")), (sealed.key_id, secret))
        })
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|e| match e.path() {
            p if p.is_dir() => walk(&p),
            p => vec![p],
        })
        .collect()
}

/// A rotation keeps what is saved while it runs: two hundred credentials are re-sealed under a
/// new key, the last twenty of them while their owners save new ones; afterwards every record
/// opens, under the new key, to what its owner saved last. Before the fix (a plain `UPDATE` of
/// what it had read), a record read before its owner's save was written back over that save.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_keeps_what_is_saved_while_it_runs() {
    let mut stack = Stack::start(StackOptions::default()).await;
    stack.dev_login("root").await;
    // The rotation reads every record first, then re-seals them one by one in the order they
    // were stored: the racing ones come last, so their owners' saves land meanwhile.
    let mut people = Vec::new();
    for i in 0..80 {
        let token = stack.dev_login(&format!("person{i}")).await;
        let (_, me) = stack
            .call_as(Some(&token), Method::GET, "/api/me", None)
            .await;
        people.push((token, me["id"].as_str().expect("an id").to_owned()));
    }
    let (fillers, racers) = people.split_at(60);
    for (token, _) in fillers {
        for kind in agent_ops_protocol::api::CREDENTIAL_KINDS {
            let (s, v) = save(&stack, token, kind, "sk-filler".into()).await;
            assert_eq!(s, 200, "{v}");
        }
    }
    for (i, (token, _)) in racers.iter().enumerate() {
        let (s, v) = save(&stack, token, RACED, format!("sk-before-{i}")).await;
        assert_eq!(s, 200, "{v}");
    }
    stack.stop_worker();
    stack.vault_keys = format!("k2:{},{}", e2e::random_hex(32), stack.vault_keys);
    stack.start_worker().await;

    let rotation = stack.call(Method::POST, "/api/admin/vault/rotate", None);
    let saves = futures::future::join_all(
        racers
            .iter()
            .enumerate()
            .map(|(i, (token, _))| save(&stack, token, RACED, format!("sk-after-{i}"))),
    );
    let ((s, rotated), saved) = futures::join!(rotation, saves);
    assert_eq!(s, 200, "{rotated}");
    assert!(saved.iter().all(|(s, _)| *s == 200), "{saved:?}");
    let ring = KeyRing::parse(&stack.vault_keys).unwrap();
    let stored = stored_credentials(&stack, &ring);
    assert_eq!(stored.len(), 200);
    for (i, (_, id)) in racers.iter().enumerate() {
        assert_eq!(
            stored.get(&(id.clone(), RACED.to_owned())),
            Some(&("k2".to_owned(), format!("sk-after-{i}"))),
            "person{}'s save survives the rotation ({rotated})",
            60 + i
        );
    }
    assert!(stored.values().all(|(key, _)| key == "k2"), "all re-sealed");
}

const RACED: &str = "openai_api_key";

async fn save(stack: &Stack, token: &str, kind: &str, secret: String) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "secret": secret }).to_string();
    let path = format!("/api/credentials/{kind}");
    stack
        .call_as(Some(token), Method::PUT, &path, Some(body))
        .await
}
