//! `make bench`: the platform's performance figures, each beside a baseline measured in the same
//! run on the same machine (these machines are shared and noisy, so ratios are what compare).

mod gateway;
mod model;
mod slack;
mod workflows;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_ops_protocol::frames::{RunnerFrame, ToClientFrame};
use agent_ops_protocol::EventBody;
use e2e::runner_link::take_over;
use e2e::{ClientSocket, Stack, StackOptions, TURN_TIMEOUT};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Round trips sampled for each relay figure: `RELAY_SAMPLES` in the environment takes more, to
/// hold the relay under a profiler for longer.
fn relay_samples() -> usize {
    std::env::var("RELAY_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}
const THROUGHPUT_DELTAS: u64 = 20_000;
const REPLAY_EVENTS: u64 = 10_000;
const RELAY_P50: &str = "relay latency runner -> client, p50";

struct Row {
    name: String,
    value: f64,
    baseline_name: &'static str,
    baseline: f64,
    unit: &'static str,
    target: String,
    ok: bool,
}

impl Row {
    /// A figure shown for context, with no target of its own.
    fn reported(
        name: &str,
        value: f64,
        baseline_name: &'static str,
        baseline: f64,
        unit: &'static str,
    ) -> Row {
        Row {
            name: name.into(),
            value,
            baseline_name,
            baseline,
            unit,
            target: "(reported)".into(),
            ok: true,
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds since `started`.
fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// Milliseconds until the Worker's health check answers: the floor the figures are set against.
async fn health_ms(stack: &Stack) -> f64 {
    let started = Instant::now();
    let resp = stack.http().get(stack.url("/health")).send().await;
    assert_eq!(resp.expect("health").status(), 200, "health");
    ms(started)
}

/// The socket of the workerd that runs our Worker, behind wrangler's own port: the one other
/// local port a workerd listens on whose health check is ours. Found with `ss`, as wrangler
/// does not say.
async fn workerd_socket(stack: &Stack, http: &reqwest::Client) -> Option<u16> {
    let out = std::process::Command::new("ss")
        .arg("-ltnp")
        .output()
        .ok()?;
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let ports = listing
        .lines()
        .filter(|l| l.contains("\"workerd\""))
        .filter_map(|l| {
            l.split_whitespace()
                .nth(3)?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .filter(|&p: &u16| p != stack.port);
    for port in ports {
        let health = http.get(format!("http://127.0.0.1:{port}/health")).send();
        if let Ok(r) = health.await {
            if r.text().await.is_ok_and(|t| t.contains("\"agent-ops\"")) {
                return Some(port);
            }
        }
    }
    None
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn connect(url: &str, token: &str) -> Ws {
    let mut req = url.into_client_request().expect("url");
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .expect("websocket connects")
        .0
}

/// A socket on `path`, with the admin's key.
async fn connect_admin(stack: &Stack, path: String) -> Ws {
    connect(&stack.ws_url(&path), &stack.admin_key).await
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

fn children_rss_kb(pid: u32) -> u64 {
    // The agent (OpenCode) is the runner's child, spawned from whichever thread: its memory is
    // reported for context.
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        total += children
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .filter_map(rss_kb)
            .sum::<u64>();
    }
    total
}

async fn wait_connected(stack: &Stack, id: &str) -> ClientSocket {
    let mut c = stack.client(id, 0).await;
    c.until(TURN_TIMEOUT, |e| {
        matches!(
            e,
            EventBody::AgentStatus {
                state: agent_ops_protocol::events::AgentState::Ready,
                ..
            }
        )
    })
    .await;
    c
}

/// Session create -> runner connected, and the runner's memory, with the real runner.
async fn startup_and_memory(stack: &Stack, rows: &mut Vec<Row>) {
    let (mut create, mut connect, mut waking, mut awake) = (vec![], vec![], vec![], vec![]);
    for _ in 0..9 {
        // Each from a platform at rest: the last session's teardown and the warm sandbox that
        // replaces the one it took are done, as they are between one person's sessions.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // These machines are slow to wake from a rest: the first request after it, to anything
        // (a Python http.server too), takes 10-50 ms more. A health check takes that, so that the
        // figure is the platform's create; what it took is reported beside a warm one.
        waking.push(health_ms(stack).await);
        awake.push(health_ms(stack).await);
        let t0 = now_ms();
        let started = Instant::now();
        let info = stack.create_session(None).await;
        create.push(started.elapsed().as_secs_f64() * 1000.0);
        let mut c = stack.client(&info.id, 0).await;
        let ev = c
            .until(TURN_TIMEOUT, |e| {
                matches!(e, EventBody::RunnerConnected { .. })
            })
            .await;
        connect.push(ev.ts.saturating_sub(t0) as f64);
        stack.terminate_session(&info.id).await;
    }
    for v in [&mut create, &mut connect, &mut waking, &mut awake] {
        v.sort_by(f64::total_cmp);
    }
    rows.push(Row {
        name: "session create -> runner connected, p50".into(),
        value: pct(&connect, 0.5),
        baseline_name: "the create request alone",
        baseline: pct(&create, 0.5),
        unit: "ms",
        target: "< 60 ms".into(),
        ok: pct(&connect, 0.5) < 60.0,
    });
    rows.push(Row::reported(
        "health check, first after 1.5 s at rest, p50",
        pct(&waking, 0.5),
        "the same at once after it, p50",
        pct(&awake, 0.5),
        "ms",
    ));

    let prompt = "@say streaming the runner's memory. \n@repeat 200\n@chunk 4\n@delay_ms 2";
    let info = stack.create_session(None).await;
    let mut c = wait_connected(stack, &info.id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = *stack.runner_pids(&info.id).first().expect("runner pid");
    let idle = rss_kb(pid).unwrap_or(0) as f64 / 1024.0;
    let agent = children_rss_kb(pid) as f64 / 1024.0;
    stack.prompt(&info.id, prompt, "mem").await;
    let mut peak = idle;
    loop {
        peak = peak.max(rss_kb(pid).unwrap_or(0) as f64 / 1024.0);
        match c.read_one(Duration::from_millis(50)).await {
            Some(ToClientFrame::Events { events })
                if events
                    .iter()
                    .any(|e| matches!(e.body, EventBody::TurnEnded { .. })) =>
            {
                break
            }
            _ => {}
        }
    }
    rows.push(Row {
        name: "runner resident memory, idle".into(),
        value: idle,
        baseline_name: "the agent it supervises (OpenCode)",
        baseline: agent,
        unit: "MB",
        target: "< 25 MB".into(),
        ok: idle < 25.0,
    });
    rows.push(Row::reported(
        "runner resident memory, streaming (peak)",
        peak,
        "runner idle",
        idle,
        "MB",
    ));
    stack.terminate_session(&info.id).await;
}

fn delta_frame(first_rseq: u64, n: u64) -> String {
    let events = (0..n)
        .map(|i| EventBody::TextDelta {
            message_id: "m".into(),
            part_id: "p".into(),
            delta: format!("d{}", first_rseq + i),
        })
        .collect();
    serde_json::to_string(&RunnerFrame::Events { first_rseq, events }).unwrap()
}

fn count_deltas(frame: &ToClientFrame) -> (u64, bool) {
    match frame {
        ToClientFrame::Events { events } => (
            events
                .iter()
                .filter(|e| matches!(e.body, EventBody::TextDelta { .. }))
                .count() as u64,
            true,
        ),
        _ => (0, false),
    }
}

/// Sorted round trips (ms) of one delta through the session, and of the baselines.
struct Latencies {
    relay: Vec<f64>,
    bare: Vec<f64>,
    stored: Vec<f64>,
    fanout: Vec<f64>,
    stored_fanout: Vec<f64>,
}

/// One delta at a time, runner -> session object -> `viewers` viewers, beside the echo baselines.
/// The relay and each baseline are sampled in turn, so that whatever else the machine does at a
/// moment weighs on each alike. A sample ends when every socket it sends to has its frame: the
/// relay's viewers, and as many out sockets on the relay baselines, so that each relay figure
/// stands beside a baseline that delivers as many copies (the echoes deliver one).
/// Returns the next runner sequence number, for more.
async fn relay_latency(
    stack: &Stack,
    id: &str,
    runner: &mut Ws,
    first_rseq: u64,
    viewers: usize,
) -> (Latencies, u64) {
    let open_echo = |query: &str| connect_admin(stack, format!("/api/bench/echo{query}"));
    let mut echo = open_echo("").await;
    let mut persisting = open_echo("?persist=1").await;
    let mut relay_in = open_echo("?relay=in").await;
    let mut persisting_in = open_echo("?relay=in&persist=1").await;
    let mut relay_outs = Vec::new();
    // Read raw, like the echoes, so the harness's own parsing is not counted.
    let mut raws = Vec::new();
    for _ in 0..viewers {
        relay_outs.push(open_echo("?relay=out").await);
        let path = format!("/api/sessions/{id}/ws?after_seq=999999999");
        let mut raw = connect_admin(stack, path).await;
        raw.next().await.expect("caught up").expect("frame");
        raws.push(raw);
    }
    let samples = relay_samples();
    let mut l = Latencies {
        relay: Vec::with_capacity(samples),
        bare: Vec::with_capacity(samples),
        stored: Vec::with_capacity(samples),
        fanout: Vec::with_capacity(samples),
        stored_fanout: Vec::with_capacity(samples),
    };
    let probe = delta_frame(1, 1);
    let mut rseq = first_rseq;
    for _ in 0..samples {
        let frame = delta_frame(rseq, 1);
        rseq += 1;
        let t = Instant::now();
        runner.send(Message::text(frame)).await.unwrap();
        for raw in &mut raws {
            until_text(raw, "text.delta").await;
        }
        l.relay.push(ms(t));
        // The session's acknowledgements (one per `ACK_EVERY_EVENTS`) wait in the runner's
        // socket, read only once the samples are taken.
        for baseline in 0..4 {
            let (out, times) = match baseline {
                0 => (&mut echo, &mut l.bare),
                1 => (&mut persisting, &mut l.stored),
                2 => (&mut relay_in, &mut l.fanout),
                _ => (&mut persisting_in, &mut l.stored_fanout),
            };
            let t = Instant::now();
            out.send(Message::text(probe.clone())).await.unwrap();
            let backs = if baseline < 2 {
                std::slice::from_mut(out)
            } else {
                &mut relay_outs[..]
            };
            for back in backs {
                back.next().await.expect("open").expect("frame");
            }
            times.push(ms(t));
        }
    }
    // Closed, not dropped: the echo object is one for the whole run, and a relay baseline's
    // out socket left behind would take a copy of every later sample.
    let opened = [echo, persisting, relay_in, persisting_in];
    for mut ws in opened.into_iter().chain(relay_outs).chain(raws) {
        ws.close(None).await.ok();
    }
    for v in [
        &mut l.relay,
        &mut l.bare,
        &mut l.stored,
        &mut l.fanout,
        &mut l.stored_fanout,
    ] {
        v.sort_by(f64::total_cmp);
    }
    (l, rseq)
}

/// Reads `ws` until a text frame containing `needle`.
async fn until_text(ws: &mut Ws, needle: &str) {
    loop {
        let Message::Text(text) = ws.next().await.expect("open").expect("frame") else {
            continue;
        };
        if text.contains(needle) {
            return;
        }
    }
}

/// Takes over a session's runner link, to inject events at will; a new instance starts at 1.
async fn relay_session(stack: &Stack) -> (String, Ws) {
    let info = stack.create_session(None).await;
    wait_connected(stack, &info.id).await;
    let (runner, _) = take_over(stack, &info.id, "bench").await;
    (info.id, runner)
}

/// The same relay on the Worker's own workerd socket, past the proxy `wrangler dev` puts in front
/// of it (which Cloudflare does not): the session object's share with the least around it, where
/// every hop both the relay and its baselines take is shorter.
async fn relay_on_workerd_socket(stack: &mut Stack, rows: &mut Vec<Row>) {
    let Some(port) = workerd_socket(stack, &reqwest::Client::new()).await else {
        println!("(the Worker's own workerd socket was not found: `ss -ltnp` lists none)");
        return;
    };
    let proxied = std::mem::replace(&mut stack.port, port);
    let (id, mut runner) = relay_session(stack).await;
    let (l, _) = relay_latency(stack, &id, &mut runner, 1, 1).await;
    stack.port = proxied;
    stack.terminate_session(&id).await;
    let name = "relay p50 on workerd's own socket";
    let r50 = pct(&l.relay, 0.5);
    for (baseline_name, baseline) in [
        ("bare DO echo round trip, same socket", pct(&l.bare, 0.5)),
        (
            "DO echo that persists first, same socket",
            pct(&l.stored, 0.5),
        ),
    ] {
        rows.push(Row::reported(name, r50, baseline_name, baseline, "ms"));
    }
}

/// The same relay with workerd's state on this machine's disk: every commit waits for a flush.
async fn relay_on_disk(rows: &mut Vec<Row>) {
    let stack = Stack::start(bench_options(false)).await;
    let (id, mut runner) = relay_session(&stack).await;
    let (l, _) = relay_latency(&stack, &id, &mut runner, 1, 1).await;
    let name = "relay p50, workerd state on disk";
    let r50 = pct(&l.relay, 0.5);
    for (baseline_name, baseline) in [
        ("DO echo that persists first, on disk", pct(&l.stored, 0.5)),
        ("bare DO echo round trip, p50", pct(&l.bare, 0.5)),
    ] {
        rows.push(Row::reported(name, r50, baseline_name, baseline, "ms"));
    }
}

async fn relay_and_throughput(stack: &Stack, rows: &mut Vec<Row>) {
    let (id, mut runner) = relay_session(stack).await;
    let (l, rseq) = relay_latency(stack, &id, &mut runner, 1, 1).await;
    let (two, rseq) = relay_latency(stack, &id, &mut runner, rseq, 2).await;
    let (mut tx, mut rx) = runner.split();
    // Acknowledgements are read and dropped so the socket never backs up.
    tokio::spawn(async move { while rx.next().await.is_some() {} });
    let Latencies {
        relay,
        bare,
        stored,
        fanout,
        stored_fanout,
    } = l;
    let (r50, b50) = (pct(&relay, 0.5), pct(&bare, 0.5));
    rows.push(Row {
        name: RELAY_P50.into(),
        value: r50,
        baseline_name: "bare DO echo round trip, p50",
        baseline: b50,
        unit: "ms",
        target: "<= 1.5x baseline".into(),
        ok: r50 <= 1.5 * b50,
    });
    let s50 = pct(&stored, 0.5);
    rows.push(Row {
        name: RELAY_P50.into(),
        value: r50,
        baseline_name: "DO echo that persists first, p50",
        baseline: s50,
        unit: "ms",
        target: "<= 1.2x baseline".into(),
        ok: r50 <= 1.2 * s50,
    });
    let p99 = "relay latency runner -> client, p99";
    let two_p50 = "relay to two viewers, p50";
    let two_r50 = pct(&two.relay, 0.5);
    for (name, value, baseline_name, baseline) in [
        (
            RELAY_P50,
            r50,
            "bare DO relay socket -> socket, p50",
            pct(&fanout, 0.5),
        ),
        (
            RELAY_P50,
            r50,
            "DO relay that persists first, p50",
            pct(&stored_fanout, 0.5),
        ),
        (
            p99,
            pct(&relay, 0.99),
            "bare DO echo round trip, p99",
            pct(&bare, 0.99),
        ),
        (
            two_p50,
            two_r50,
            "DO echo that persists first, p50",
            pct(&two.stored, 0.5),
        ),
        (
            two_p50,
            two_r50,
            "DO relay that persists first, to two",
            pct(&two.stored_fanout, 0.5),
        ),
    ] {
        rows.push(Row::reported(name, value, baseline_name, baseline, "ms"));
    }

    let mut client = stack.client(&id, stack.history_tail_seq(&id).await).await;
    client
        .until_frame(TURN_TIMEOUT, |f| {
            matches!(f, ToClientFrame::CaughtUp { .. })
        })
        .await;
    // Throughput: deltas in runner-sized batches, counted as they reach the client.
    let batch = 256;
    let started = Instant::now();
    let sender = {
        let frames: Vec<String> = (0..THROUGHPUT_DELTAS.div_ceil(batch))
            .map(|i| delta_frame(rseq + i * batch, batch.min(THROUGHPUT_DELTAS - i * batch)))
            .collect();
        tokio::spawn(async move {
            for f in frames {
                tx.send(Message::text(f)).await.unwrap();
            }
            tx
        })
    };
    let mut got = 0;
    while got < THROUGHPUT_DELTAS {
        let f = client
            .read_one(TURN_TIMEOUT)
            .await
            .expect("deltas keep coming");
        got += count_deltas(&f).0;
        client.events.clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let _tx = sender.await.unwrap();
    let frames = THROUGHPUT_DELTAS.div_ceil(batch);
    let echo_started = Instant::now();
    let payload = delta_frame(1, batch);
    let echo = connect_admin(stack, "/api/bench/echo".into()).await;
    let (mut etx, mut erx) = echo.split();
    let echo_sender = tokio::spawn(async move {
        for _ in 0..frames {
            etx.send(Message::text(payload.clone())).await.unwrap();
        }
    });
    for _ in 0..frames {
        erx.next().await.expect("echo").expect("echo frame");
    }
    echo_sender.await.unwrap();
    let echo_secs = echo_started.elapsed().as_secs_f64();
    let rate = THROUGHPUT_DELTAS as f64 / secs;
    rows.push(Row {
        name: "deltas per second through one session".into(),
        value: rate,
        baseline_name: "same frames through the bare echo",
        baseline: THROUGHPUT_DELTAS as f64 / echo_secs,
        unit: "/s",
        target: ">= 150,000/s".into(),
        ok: rate >= 150_000.0,
    });

    // Replay: a new client asking for the last 10,000 events.
    let last = stack.history_tail_seq(&id).await;
    let after = last - REPLAY_EVENTS;
    let started = Instant::now();
    let mut fresh = stack.client(&id, after).await;
    fresh
        .until_frame(TURN_TIMEOUT, |f| {
            matches!(f, ToClientFrame::CaughtUp { .. })
        })
        .await;
    let replay_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(
        fresh.events.len() as u64,
        REPLAY_EVENTS,
        "the replay is whole"
    );
    let started = Instant::now();
    let mut cursor = after;
    while cursor < last {
        let (_, v) = stack
            .call(
                reqwest::Method::GET,
                &format!("/api/sessions/{id}/events?after_seq={cursor}"),
                None,
            )
            .await;
        cursor = v["next_after_seq"].as_u64().expect("page");
    }
    let pages_ms = started.elapsed().as_secs_f64() * 1000.0;
    rows.push(Row {
        name: "replay of 10,000 events to a new client".into(),
        value: replay_ms,
        baseline_name: "the same events over the HTTP history",
        baseline: pages_ms,
        unit: "ms",
        target: "< 250 ms".into(),
        ok: replay_ms < 250.0,
    });
}

fn bench_options(state_in_memory: bool) -> StackOptions {
    StackOptions {
        bench_echo: true,
        runner_grace_ms: 60_000,
        heartbeat_stale_ms: 120_000,
        state_in_memory,
        ..Default::default()
    }
}

fn main() {
    match std::env::var(gateway::RELAY_TO) {
        Ok(to) => gateway::serve_relay(&to),
        Err(_) => bench(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn bench() {
    let mut stack = Stack::start(bench_options(true)).await;
    let mut rows = Vec::new();
    // `BENCH_ONLY=relay` (or `startup`, `gateway`, `model`, `slack`, `workflows`, or several
    // separated by commas) runs only those figures, while tuning them.
    let only = std::env::var("BENCH_ONLY").ok();
    let runs = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    if runs("startup") {
        startup_and_memory(&stack, &mut rows).await;
    }
    if runs("relay") {
        relay_and_throughput(&stack, &mut rows).await;
        relay_on_workerd_socket(&mut stack, &mut rows).await;
        relay_on_disk(&mut rows).await;
    }
    if runs("model") {
        model::model_path(&stack, &mut rows).await;
    }
    if runs("gateway") {
        gateway::gateway(&stack, &mut rows).await;
    }
    if runs("slack") {
        slack::slack(&stack, &mut rows).await;
    }
    if runs("workflows") {
        workflows::workflows(&stack, &mut rows).await;
    }

    println!(
        "\n{:<44} {:>12} {:>12} {:>8}  {:<40} target",
        "figure", "value", "baseline", "ratio", "baseline is"
    );
    for r in &rows {
        let ratio = if r.baseline > 0.0 {
            r.value / r.baseline
        } else {
            f64::NAN
        };
        println!(
            "{:<44} {:>9.2} {:<2} {:>9.2} {:<2} {:>7.2}x  {:<40} {} {}",
            r.name,
            r.value,
            r.unit,
            r.baseline,
            r.unit,
            ratio,
            r.baseline_name,
            r.target,
            if r.ok { "ok" } else { "MISSED" }
        );
    }
}
