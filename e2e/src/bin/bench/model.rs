//! What the Worker's hop costs the agent's model calls (it adds the model's key, so that no
//! sandbox holds it): time to the first byte of the model's streamed answer, through the Worker
//! and straight to the model, in the same run.
//!
//! `wrangler dev` puts a proxy of its own in front of the Worker (its ProxyWorker, a Durable
//! Object in a second workerd), which Cloudflare does not; the call is also measured on the
//! Worker's own workerd socket, so that the figure can be told apart from that proxy.

use std::time::Instant;

use e2e::Stack;
use futures::StreamExt;

use super::{pct, workerd_socket, Row};

const CALLS: usize = 200;

/// Milliseconds until the first byte of the answer's body.
async fn first_byte(req: reqwest::RequestBuilder) -> f64 {
    let started = Instant::now();
    let resp = req.send().await.expect("the model call");
    assert_eq!(resp.status(), 200, "the model call");
    let mut body = resp.bytes_stream();
    body.next().await.expect("a first chunk").expect("the body");
    let ms = started.elapsed().as_secs_f64() * 1e3;
    while body.next().await.is_some() {}
    ms
}

pub async fn model_path(stack: &Stack, rows: &mut Vec<Row>) {
    let info = stack.create_session(None).await;
    let token = stack.runner_token(&info.id).expect("runner token");
    let http = reqwest::Client::new();
    let body = serde_json::json!({
        "model": "scripted",
        "stream": true,
        "messages": [{"role": "user", "content": "hello"}],
    });
    let path = format!("/api/sessions/{}/model/chat/completions", info.id);
    let via_worker = stack.url(&path);
    let runner_call = |url: &str| first_byte(http.post(url).bearer_auth(&token).json(&body));
    let straight = format!("{}/chat/completions", stack.model_url);
    let straight_call = || {
        first_byte(
            http.post(&straight)
                .bearer_auth(&stack.model_api_key)
                .json(&body),
        )
    };
    let (mut worker, mut direct, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so both see the same moments of a noisy machine.
    for i in 0..CALLS + 20 {
        let w = runner_call(&via_worker).await;
        let d = straight_call().await;
        let f = first_byte(http.get(stack.url("/health"))).await;
        if i >= 20 {
            worker.push(w);
            direct.push(d);
            floor.push(f);
        }
    }
    worker.sort_by(f64::total_cmp);
    direct.sort_by(f64::total_cmp);
    floor.sort_by(f64::total_cmp);
    let (w50, d50) = (pct(&worker, 0.5), pct(&direct, 0.5));
    rows.push(Row {
        name: "model call, first byte via the Worker, p50".into(),
        value: w50,
        baseline_name: "straight to the model, p50",
        baseline: d50,
        unit: "ms",
        // Against a real model's 500-1100 ms to its first token, peers' gateways add 1-11 ms.
        target: "adds < 10 ms".into(),
        ok: w50 - d50 < 10.0,
    });
    rows.push(Row::reported(
        "model call, first byte via the Worker, p50",
        w50,
        "the Worker's health check, p50",
        pct(&floor, 0.5),
        "ms",
    ));
    // Then on the Worker's own socket, in a run of its own so that the figure above is taken
    // exactly as it always was.
    let Some(port) = workerd_socket(stack, &http).await else {
        println!("(the Worker's own workerd socket was not found: `ss -ltnp` lists none)");
        stack.terminate_session(&info.id).await;
        return;
    };
    let own_socket = format!("http://127.0.0.1:{port}{path}");
    let (mut unproxied, mut direct) = (Vec::new(), Vec::new());
    for i in 0..CALLS + 20 {
        let u = runner_call(&own_socket).await;
        let d = straight_call().await;
        if i >= 20 {
            unproxied.push(u);
            direct.push(d);
        }
    }
    unproxied.sort_by(f64::total_cmp);
    direct.sort_by(f64::total_cmp);
    rows.push(Row::reported(
        "model call, first byte on workerd's own socket (no wrangler proxy), p50",
        pct(&unproxied, 0.5),
        "straight to the model, p50",
        pct(&direct, 0.5),
        "ms",
    ));
    stack.terminate_session(&info.id).await;
}
