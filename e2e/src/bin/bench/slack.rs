//! Slack's two latencies: how soon a slash command is answered (Slack gives up at 3 s), beside
//! the Worker's health-check floor; and how soon a message in a session's thread is a queued
//! prompt, beside the same prompt posted to the API.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agent_ops_protocol::EventBody;
use e2e::slack::{message_event, session_named};
use e2e::{Stack, TURN_TIMEOUT};

use super::{health_ms, ms, pct, Row};

const COMMANDS: usize = 200;
const PROMPTS: usize = 40;

pub async fn slack(stack: &Stack, rows: &mut Vec<Row>) {
    let alice = stack.dev_login("bench-slack").await;
    stack.slack_link(&alice, "U0BENCH").await;
    let (mut help, mut ack, mut answered, mut floor) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so all of them see the same moments of a noisy machine.
    for i in 0..COMMANDS + 20 {
        let started = Instant::now();
        let (status, _) = stack.slack_command("U0BENCH", "C0BENCH", "help").await;
        let h = ms(started);
        assert_eq!(status, 200);
        // `list` has work to do: acknowledged at once, answered on its response_url after.
        let body = stack.slack_command_body("U0BENCH", "C0BENCH", "list");
        let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
        let url = &form["response_url"];
        let started = Instant::now();
        let (status, _) = stack.slack_command_ack(&body).await;
        let a = ms(started);
        assert_eq!(status, 200);
        while stack.slack.responses_to(url).is_empty() {
            assert!(started.elapsed() < Duration::from_secs(30), "no answer");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let l = ms(started);
        let f = health_ms(stack).await;
        if i >= 20 {
            help.push(h);
            ack.push(a);
            answered.push(l);
            floor.push(f);
        }
    }
    for v in [&mut help, &mut ack, &mut answered, &mut floor] {
        v.sort_by(f64::total_cmp);
    }
    let (a50, f50) = (pct(&ack, 0.5), pct(&floor, 0.5));
    rows.push(Row {
        name: "slash command `list` acknowledged, p50".into(),
        value: a50,
        baseline_name: "the Worker's health check, p50",
        baseline: f50,
        unit: "ms",
        target: "<= 1.5x baseline".into(),
        ok: a50 <= 1.5 * f50,
    });
    rows.push(Row {
        name: "slash command `list` acknowledged, p99".into(),
        value: pct(&ack, 0.99),
        baseline_name: "the Worker's health check, p99",
        baseline: pct(&floor, 0.99),
        unit: "ms",
        target: "< 3000 ms (Slack's limit)".into(),
        ok: pct(&ack, 0.99) < 3000.0,
    });
    rows.push(Row::reported(
        "slash command `help` answered in the acknowledgement, p50",
        pct(&help, 0.5),
        "the Worker's health check, p50",
        f50,
        "ms",
    ));
    rows.push(Row::reported(
        "slash command `list` answered on its response_url, p50",
        pct(&answered, 0.5),
        "the Worker's health check, p50",
        f50,
        "ms",
    ));

    // A session bound to a thread, and its prompts from the thread and from the API.
    let asked = stack
        .slack
        .say("U0BENCH", "C0BENCH", "<@U0AGENTBOT> @say ok", None);
    stack
        .slack_event("EvBench0", message_event(&asked, true))
        .await;
    let thread = asked.ts.clone();
    let id = loop {
        if let Some(id) = session_named(&stack.slack.thread("C0BENCH", &thread)) {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut client = stack.client(&id, 0).await;
    let queued = |text: String| move |e: &EventBody| matches!(e, EventBody::PromptQueued { text: t, .. } if *t == text);
    let (mut via_slack, mut via_api) = (Vec::new(), Vec::new());
    for i in 0..PROMPTS {
        let text = format!("@say slack {i}");
        let reply = stack.slack.say("U0BENCH", "C0BENCH", &text, Some(&thread));
        let started = Instant::now();
        stack
            .slack_event(&format!("EvBench{}", i + 1), message_event(&reply, false))
            .await;
        client.until(TURN_TIMEOUT, queued(text)).await;
        via_slack.push(ms(started));
        let text = format!("@say api {i}");
        let started = Instant::now();
        stack.prompt(&id, &text, &format!("bench-api-{i}")).await;
        client.until(TURN_TIMEOUT, queued(text)).await;
        via_api.push(ms(started));
    }
    via_slack.sort_by(f64::total_cmp);
    via_api.sort_by(f64::total_cmp);
    rows.push(Row::reported(
        "Slack thread message -> prompt queued, p50",
        pct(&via_slack, 0.5),
        "the same prompt through the API, p50",
        pct(&via_api, 0.5),
        "ms",
    ));
    stack.terminate_session(&id).await;
}
