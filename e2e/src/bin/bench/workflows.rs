//! Workflows' two costs: how soon a signed webhook is answered `202` (its run committed), beside
//! the Worker's health-check floor; and what a scheduler tick costs over 10,000 stored
//! schedules, beside a tick over none, both measured in this run.

use std::time::Instant;

use agent_ops_protocol::api::{
    Concurrency, PayloadFilter, SessionTemplate, TriggerSpec, WebhookScheme, WorkflowSpec,
};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::workflows::hooks::{sign, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
use e2e::Stack;
use serde_json::json;

use super::{health_ms, ms, pct, Row};

const DELIVERIES: usize = 200;
const STORED: usize = 10_000;
const TICKS: usize = 20;
/// 2030-01-01: far past any tick here.
const FAR: u64 = 1_893_456_000_000;

fn spec(prompt: &str) -> WorkflowSpec {
    WorkflowSpec {
        name: "bench".into(),
        enabled: true,
        template: SessionTemplate {
            prompt: prompt.into(),
            title: None,
            repo: None,
            branch: None,
            agent: None,
            model: None,
        },
        concurrency: Concurrency::Allow,
        max_runs_per_hour: None,
        pause_after_failures: 100,
    }
}

pub async fn workflows(stack: &Stack, rows: &mut Vec<Row>) {
    let owner = stack.dev_login("bench-workflows").await;
    let wf = stack
        .api::<endpoint::CreateWorkflow>(&owner, &[], &spec("Triage {{ payload.n }}"))
        .await
        .expect("a workflow");
    // A filter no delivery passes: each one is verified, keyed, rendered and committed, and
    // no session starts (that is the platform's cost after the answer, not the sender's).
    let never = PayloadFilter {
        pointer: "/skip".into(),
        equals: Some(json!(false)),
        contains: None,
    };
    let hook = stack
        .api::<endpoint::CreateTrigger>(
            &owner,
            &[&wf.id],
            &TriggerSpec::Webhook {
                scheme: WebhookScheme::HmacSha256,
                filters: vec![never],
                idempotency: None,
                headers: Vec::new(),
            },
        )
        .await
        .expect("a trigger");
    let secret = hook.secret.expect("its secret");
    let (mut hooks, mut floor) = (Vec::new(), Vec::new());
    for i in 0..DELIVERIES + 20 {
        let body = json!({"n": i, "skip": true}).to_string();
        let sig = sign(&secret, body.as_bytes());
        let key = format!("bench-{i}");
        let started = Instant::now();
        let (status, _) = stack
            .deliver(
                &hook.trigger.id,
                &[(SIGNATURE_HEADER, &sig), (IDEMPOTENCY_HEADER, &key)],
                body,
            )
            .await;
        let h = ms(started);
        assert_eq!(status, 202);
        let f = health_ms(stack).await;
        if i >= 20 {
            hooks.push(h);
            floor.push(f);
        }
    }
    hooks.sort_by(f64::total_cmp);
    floor.sort_by(f64::total_cmp);
    rows.push(Row::reported(
        "signed webhook answered 202, p50",
        pct(&hooks, 0.5),
        "the Worker's health check, p50",
        pct(&floor, 0.5),
        "ms",
    ));
    rows.push(Row::reported(
        "signed webhook answered 202, p99",
        pct(&hooks, 0.99),
        "the Worker's health check, p99",
        pct(&floor, 0.99),
        "ms",
    ));

    // Ticks with no schedule stored, then with 10,000 of which none is due: the scheduler
    // reads the due ones only (an index on the next run), so the two should cost the same.
    let start = FAR - 365 * 24 * 3_600_000;
    let (empty, empty_read) = tick_p50(stack, start).await;
    let other = stack
        .api::<endpoint::CreateWorkflow>(&owner, &[], &spec("Nightly"))
        .await
        .expect("a workflow");
    stack.d1_execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {STORED}) \
         INSERT INTO workflow_triggers (id, workflow_id, kind, spec, next_run_at, created_at) \
         SELECT printf('bench%027d', i), '{}', 'schedule', \
         '{{\"kind\":\"schedule\",\"cron\":\"0 9 * * *\",\"timezone\":\"UTC\"}}', {FAR} + i, 0 FROM n",
        other.id
    ));
    let (stored, stored_read) = tick_p50(stack, start).await;
    rows.push(Row {
        name: format!("scheduler tick, {STORED} schedules stored, p50"),
        value: stored,
        baseline_name: "a scheduler tick with none stored, p50",
        baseline: empty,
        unit: "ms",
        target: "<= 1.5x baseline (reads only what is due)".into(),
        ok: stored <= 1.5 * empty,
    });
    rows.push(Row {
        name: format!("scheduler tick, {STORED} schedules stored, rows read"),
        value: stored_read as f64,
        baseline_name: "a scheduler tick with none stored, rows read",
        baseline: empty_read as f64,
        unit: "rows",
        target: format!("< {STORED} (no scan of the stored schedules)"),
        ok: stored_read < STORED as u64,
    });
}

/// The median of `TICKS` ticks from `at`, a minute apart, none of which fires anything, and
/// the most rows one of them read.
async fn tick_p50(stack: &Stack, at: u64) -> (f64, u64) {
    let mut t = Vec::new();
    let mut rows_read = 0;
    for i in 0..TICKS {
        let started = Instant::now();
        let ticked = stack.tick(at + i as u64 * 60_000).await;
        t.push(ms(started));
        assert_eq!(ticked.fired, 0);
        rows_read = rows_read.max(ticked.rows_read);
    }
    t.sort_by(f64::total_cmp);
    (pct(&t, 0.5), rows_read)
}
