//! GitHub sign-in end to end against the local GitHub stand-in: the real redirects, code
//! exchange and user lookup; and the state refused when forged, expired, replayed or carried to
//! another browser.

use agent_ops_protocol::signing::{hmac_hex, sha256_hex};
use e2e::{Stack, StackOptions};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn cookie_named(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .filter(|kv| kv.starts_with(&format!("{name}=")))
                .map(str::to_owned)
        })
}

/// Starts a sign-in: returns the browser's nonce cookie and the callback URL GitHub sends it to.
async fn start(stack: &Stack) -> (String, String) {
    let resp = client()
        .get(stack.url("/auth/github"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let nonce = cookie_named(&resp, "aops_oauth").expect("browser-binding cookie");
    let authorize = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&stack.github.base), "{authorize}");
    let resp = client().get(&authorize).send().await.unwrap();
    assert_eq!(
        resp.status(),
        303,
        "the stand-in approves and redirects back"
    );
    (nonce, resp.headers()[LOCATION].to_str().unwrap().to_owned())
}

async fn finish(callback: &str, nonce: Option<&str>) -> reqwest::Response {
    let mut req = client().get(callback);
    if let Some(n) = nonce {
        req = req.header(COOKIE, n);
    }
    req.send().await.unwrap()
}

/// The refusal's status and code, checking that its message names `why`.
/// `/api/me` as the browser holding the login cookie `session` sees it.
async fn me_by_cookie(stack: &Stack, session: &str) -> serde_json::Value {
    client()
        .get(stack.url("/api/me"))
        .header(COOKIE, session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn refused(resp: reqwest::Response, why: &str) -> (u16, String) {
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    assert!(
        v["message"].as_str().unwrap_or_default().contains(why),
        "expected `{why}`: {v}"
    );
    (status, v["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_sign_in_and_its_state_rules() {
    let stack = Stack::start(StackOptions::default()).await;

    let (nonce, callback) = start(&stack).await;
    let resp = finish(&callback, Some(&nonce)).await;
    assert_eq!(resp.status(), 302, "signed in");
    let session = cookie_named(&resp, "aops_session").expect("login session cookie");
    let me = me_by_cookie(&stack, &session).await;
    assert_eq!(
        (me["login"].as_str(), me["role"].as_str()),
        (Some("octocat"), Some("admin")),
        "{me}"
    );

    // Replayed: the same state (and browser) a second time.
    assert_eq!(
        refused(finish(&callback, Some(&nonce)).await, "already used").await,
        (400, "invalid_oauth_state".into())
    );

    // Carried to another browser: a fresh state without (or with another) nonce cookie.
    let (_, callback) = start(&stack).await;
    assert_eq!(
        refused(finish(&callback, None).await, "not started in this browser").await,
        (400, "invalid_oauth_state".into())
    );
    let (other_nonce, _) = start(&stack).await;
    assert_eq!(
        refused(
            finish(&callback, Some(&other_nonce)).await,
            "not started in this browser"
        )
        .await,
        (400, "invalid_oauth_state".into())
    );

    // Forged: the signature does not hold.
    let (nonce, callback) = start(&stack).await;
    let forged = callback.replacen("state=", "state=00", 1);
    assert_eq!(
        refused(finish(&forged, Some(&nonce)).await, "forged").await,
        (400, "invalid_oauth_state".into())
    );

    // Expired: correctly signed (the test knows the key), bound to this browser, but stale.
    let nonce_value = nonce.split_once('=').unwrap().1;
    let claims = serde_json::json!({"nonce_hash": sha256_hex(nonce_value.as_bytes()), "exp": 1000, "jti": "old"});
    let payload = hex::encode(claims.to_string());
    let stale = format!(
        "{payload}.{}",
        hmac_hex(stack.auth_secret.as_bytes(), payload.as_bytes())
    );
    let code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let expired = stack.url(&format!("/auth/github/callback?code={code}&state={stale}"));
    assert_eq!(
        refused(finish(&expired, Some(&nonce)).await, "expired").await,
        (400, "invalid_oauth_state".into())
    );

    // A second person signs in as a member; a code GitHub refuses fails the sign-in plainly.
    stack.github.approve_as(2002, "hubot");
    let (nonce, callback) = start(&stack).await;
    let resp = finish(&callback, Some(&nonce)).await;
    assert_eq!(resp.status(), 302);
    let session = cookie_named(&resp, "aops_session").unwrap();
    let me = me_by_cookie(&stack, &session).await;
    assert_eq!(
        (me["login"].as_str(), me["role"].as_str()),
        (Some("hubot"), Some("member"))
    );
    let (nonce, callback) = start(&stack).await;
    let bad_code = callback.replacen("code=", "code=x", 1);
    assert_eq!(
        refused(finish(&bad_code, Some(&nonce)).await, "GitHub refused").await,
        (502, "sign_in_failed".into())
    );
}
