//! Rate limits hold globally, across concurrent requests: exactly the limit passes, the rest get
//! 429 with a Retry-After.

use e2e::{Stack, StackOptions};

async fn burst(
    stack: &Stack,
    n: usize,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> (usize, usize) {
    let answers = futures::future::join_all((0..n).map(|_| request().send())).await;
    let (mut ok, mut limited) = (0, 0);
    for a in answers {
        let a = a.expect("the worker answers");
        match a.status().as_u16() {
            429 => {
                let retry: u64 = a.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry), "Retry-After {retry}");
                let v: serde_json::Value = a.json().await.unwrap();
                assert_eq!(v["code"], "rate_limited");
                limited += 1;
            }
            s if s < 300 => ok += 1,
            s => panic!("unexpected {s} from {}", stack.url("")),
        }
    }
    (ok, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_concurrent_requests() {
    let stack = Stack::start(StackOptions {
        rate_limit_api_per_min: 25,
        rate_limit_signin_per_min: 4,
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();

    // Exactly the limit passes, unless the burst straddled two windows (then at most twice it).
    let (ok, limited) = burst(&stack, 60, || {
        http.get(stack.url("/api/sessions"))
            .bearer_auth(&stack.admin_key)
    })
    .await;
    assert_eq!(ok + limited, 60);
    assert!(
        ok == 25 || (26..=50).contains(&ok),
        "{ok} admitted, {limited} refused"
    );

    // Another token has its own budget.
    let (s, v) = stack
        .call_as(
            None,
            reqwest::Method::POST,
            "/auth/dev/login",
            Some(r#"{"login":"first"}"#.into()),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let other = v["token"].as_str().unwrap().to_owned();
    let (s, _) = stack
        .call_as(Some(&other), reqwest::Method::GET, "/api/me", None)
        .await;
    assert_eq!(s, 200);

    // Sign-in is limited per address (one of its 4 was spent above).
    let (ok, limited) = burst(&stack, 10, || {
        http.post(stack.url("/auth/dev/login"))
            .body(r#"{"login":"someone"}"#)
    })
    .await;
    assert_eq!(ok + limited, 10);
    assert!(
        ok == 3 || (4..=7).contains(&ok),
        "{ok} sign-ins admitted, {limited} refused"
    );

    // Panels have their own budget: the admin's API budget is spent, yet its panel requests
    // (more of them than the API limit) all reach the sandbox's gateway, which asks for a token.
    let (s, v) = stack
        .call_as(
            Some(&other),
            reqwest::Method::POST,
            "/api/sessions",
            Some("{}".into()),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    e2e::panels::gateway_listening(&stack, &id).await;
    let (api_status, _) = stack
        .call(reqwest::Method::GET, "/api/sessions", None)
        .await;
    let panel = format!("/sandbox/{id}/terminal/");
    let answers = futures::future::join_all((0..40).map(|_| {
        stack
            .request(reqwest::Method::GET, &panel)
            .bearer_auth(&stack.admin_key)
            .send()
    }))
    .await;
    for a in answers {
        let a = a.expect("the worker answers");
        let status = a.status().as_u16();
        let v: serde_json::Value = a.json().await.unwrap();
        assert_eq!(status, 401, "{v} (the API answered {api_status})");
        assert_eq!(v["code"], "unauthorized", "{v}");
    }
}
