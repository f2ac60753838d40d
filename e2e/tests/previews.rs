//! App previews: a server the agent starts in its sandbox is listed as soon as it listens (and
//! unlisted when it stops), opens through the gateway from a preview's panel token, and is the
//! only thing listed: the agent's own API and the model relay listen too, and never show.

use agent_ops_protocol::events::OpenPort;
use agent_ops_protocol::EventBody;
use e2e::{panels, Stack, StackOptions, TURN_TIMEOUT};
use reqwest::Method;
use serde_json::json;

fn ports_of(body: &EventBody) -> Option<&[OpenPort]> {
    match body {
        EventBody::PortsChanged { ports } => Some(ports),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_the_agent_starts_is_listed_previewed_and_unlisted_when_it_stops() {
    let stack = Stack::start(StackOptions::default()).await;
    let [port] = e2e::free_ports::<1>();
    // The agent starts a dev server in the background, as it would `npm run dev`.
    let start = format!(
        "@bash mkdir -p site && echo '<h1>made by the agent</h1>' > site/index.html && \
         (setsid python3 -m http.server {port} --bind 127.0.0.1 --directory site >/dev/null 2>&1 &) && \
         echo started\n@say serving"
    );
    let id = stack.create_session(Some(&start)).await.id;
    let mut c = stack.client(&id, 0).await;
    let listed = c
        .until(TURN_TIMEOUT, |e| {
            ports_of(e).is_some_and(|p| p.iter().any(|p| p.port == port))
        })
        .await;
    assert_eq!(
        ports_of(&listed.body).unwrap(),
        [OpenPort {
            port,
            process: Some("python3".into())
        }],
        "the app alone, named"
    );

    // A preview's token opens the app through the worker's origin.
    let panel_token = |body: serde_json::Value, bearer: String| {
        let stack = &stack;
        let path = format!("/api/sessions/{id}/panel-token");
        async move {
            stack
                .call_as(Some(&bearer), Method::POST, &path, Some(body.to_string()))
                .await
        }
    };
    let admin = stack.admin_key.clone();
    let (status, v) = panel_token(json!({"panel": "preview", "port": port}), admin.clone()).await;
    assert_eq!(status, 201, "{v}");
    let url = v["url"].as_str().unwrap();
    assert!(url.contains(&format!("next=preview%2F{port}%2F")), "{url}");
    let (status, cookie, body) = panels::exchange(&stack, &admin, url).await;
    assert_eq!(status, 303, "{body}");
    let page = panels::get(
        &stack,
        &admin,
        &cookie.expect("the gateway's cookie"),
        &format!("/sandbox/{id}/preview/{port}/"),
    )
    .await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("made by the agent"));

    // A preview needs its port, and nothing else takes one; viewers get no preview.
    for (body, code) in [
        (json!({"panel": "preview"}), "invalid_body"),
        (json!({"panel": "preview", "port": 0}), "invalid_body"),
        (json!({"panel": "terminal", "port": port}), "invalid_body"),
    ] {
        let (status, v) = panel_token(body.clone(), admin.clone()).await;
        assert_eq!((status, v["code"].as_str()), (400, Some(code)), "{body}");
    }
    let viewer = panels::viewer_token(&stack, &id).await;
    let (status, v) = panel_token(json!({"panel": "preview", "port": port}), viewer.clone()).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (status, v) = panel_token(json!({"panel": "terminal"}), viewer).await;
    assert_eq!(status, 201, "viewers still watch the terminal: {v}");

    // The app stops: the list empties.
    let (status, v) = stack
        .prompt(
            &id,
            &format!("@bash pkill -f 'http.server {port}'; echo stopped\n@say stopped"),
            "stop-app",
        )
        .await;
    assert!(status < 300, "{v}");
    let after = c
        .until(TURN_TIMEOUT, |e| {
            ports_of(e).is_some_and(|p| p.iter().all(|p| p.port != port))
        })
        .await;
    assert!(ports_of(&after.body).unwrap().is_empty());
    // Every list on the way held the app alone: the agent's API, the model relay and the
    // gateway were never offered.
    for e in &c.events {
        if let Some(ports) = ports_of(&e.body) {
            assert!(ports.iter().all(|p| p.port == port), "{ports:?}");
        }
    }
}
