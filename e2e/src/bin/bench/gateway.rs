//! The gateway's overhead, each figure beside the same thing done without it in the same run:
//! HTTP through the gateway to an app in the sandbox vs straight to the app, and a keystroke's
//! echo through the terminal's PTY vs a WebSocket echo through the same gateway.
//!
//! The apps listen in the sandbox's own network, so "straight to the app" is measured from inside
//! it; "through the gateway" from the host, where the Worker reaches it. Each side runs on a
//! client thread of its own, so both are measured alike.
//!
//! Two apps: a real development server (Python's `http.server` serving a page, the kind of app a
//! preview shows), and an in-process one that answers "ok" and does nothing else. The second is
//! the worst case for any proxy: the app costs less than the extra loopback hop, so its ratio
//! shows the hop itself.

use std::time::{Duration, Instant};

use e2e::panels::{gateway_listening, token_url, trade, type_keys, Socket};
use e2e::Stack;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{pct, Row};

/// Requests per side, in `ROUNDS` rounds that alternate between the sides after a warm-up round
/// of each: measured one after the other, whichever side went first paid alone for a cold app
/// (Node's JIT) and whichever went second for the first's sockets in TIME_WAIT.
const REQUESTS: usize = 2000;
const ROUNDS: usize = 4;
const CONCURRENT: usize = 8;
const KEYSTROKES: usize = 300;

async fn app(stack: &Stack, id: &str) -> u16 {
    let app = axum::Router::new()
        .route("/small", axum::routing::get(|| async { "ok" }))
        .route("/ws", axum::routing::get(e2e::panels::ws_echo));
    e2e::panels::serve_app(stack, id, app).await
}

/// A development server in the sandbox whose process is `sandbox`, serving a 16 KiB page from
/// `dir` on a free port; killed when dropped.
fn dev_server(
    sandbox: u32,
    dir: &std::path::Path,
    program: &'static str,
    args: &[&str],
) -> (KillOnDrop, u16) {
    let root = dir.join("dev-server");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "<p>preview</p>\n".repeat(1024)).unwrap();
    let [port] = e2e::free_ports::<1>();
    let port_arg = port.to_string();
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == "PORT" {
                port_arg.clone()
            } else {
                a.to_string()
            }
        })
        .collect();
    let child = e2e::procs::in_netns_of(sandbox, move || {
        let child = std::process::Command::new(program)
            .args(&args)
            .current_dir(&root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{program} never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    });
    (KillOnDrop(child), port)
}

/// `http` on a runtime of its own on a fresh thread: in the network of the sandbox whose process
/// is `sandbox`, or else in the host's.
async fn http_from(sandbox: Option<u32>, url: String, cookie: String) -> Round {
    let measure = move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(http(&url, &cookie, REQUESTS / ROUNDS))
    };
    tokio::task::spawn_blocking(move || match sandbox {
        Some(pid) => e2e::procs::in_netns_of(pid, measure),
        None => measure(),
    })
    .await
    .unwrap()
}

/// Nanoseconds `pid` has run on a CPU, all its threads together.
fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// What both sides saw: p50 (ms) and requests per second, each side.
struct Compared {
    direct: (f64, f64),
    via: (f64, f64),
    /// CPU microseconds per request through the gateway: the runner's, and the app's.
    cpu_per_request: (f64, f64),
}

/// Straight to the app at `direct` from inside the sandbox and through the gateway at `via` from
/// the host, in alternating rounds (A B B A ...). `sandbox` is the runner's pid; `app` the app's.
async fn direct_and_via(
    sandbox: u32,
    app: u32,
    direct: String,
    via: String,
    cookie: &str,
) -> Compared {
    let sides = [
        (Some(sandbox), direct, String::new()),
        (None, via, cookie.to_owned()),
    ];
    let mut seen: [Vec<Round>; 2] = Default::default();
    let (mut runner_ns, mut app_ns, mut via_requests) = (0, 0, 0);
    for round in 0..=ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (netns, url, cookie) = sides[side].clone();
            let cpu = (cpu_ns(sandbox), cpu_ns(app));
            let r = http_from(netns, url, cookie).await;
            if round > 0 {
                if side == 1 {
                    runner_ns += cpu_ns(sandbox) - cpu.0;
                    app_ns += cpu_ns(app) - cpu.1;
                    via_requests += r.latencies.len() + r.concurrent.0;
                }
                seen[side].push(r);
            }
        }
    }
    let [direct, via] = seen.map(|rounds| {
        let mut latencies: Vec<f64> = rounds.iter().flat_map(|r| r.latencies.clone()).collect();
        latencies.sort_by(f64::total_cmp);
        let requests: usize = rounds.iter().map(|r| r.concurrent.0).sum();
        let secs: f64 = rounds.iter().map(|r| r.concurrent.1).sum();
        (pct(&latencies, 0.5), requests as f64 / secs)
    });
    let per_request = |ns: u64| ns as f64 / 1000.0 / via_requests as f64;
    Compared {
        direct,
        via,
        cpu_per_request: (per_request(runner_ns), per_request(app_ns)),
    }
}

/// Node's http server reading the file for each request, as static middleware does: the
/// server under Vite, Next.js and webpack-dev-server (keep-alive).
const NODE_STATIC: &str = "require('http').createServer((q, r) => \
    require('fs').readFile('index.html', (e, b) => { \
    r.setHeader('content-type', 'text/html'); r.end(b); })) \
    .listen(+process.argv[1], '127.0.0.1')";

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Rows for one app: p50 latency and requests per second, through the gateway vs straight, and
/// the CPU the gateway spends on a request beside what the app spends on it.
fn compare(rows: &mut Vec<Row>, app: &str, seen: Compared, judged: bool) {
    let Compared {
        direct,
        via,
        cpu_per_request,
    } = seen;
    let target = |ok: bool| {
        if judged {
            ("<= 1.3x".to_owned(), ok)
        } else {
            ("(worst case, reported)".to_owned(), true)
        }
    };
    let (t, ok) = target(via.0 <= 1.3 * direct.0);
    rows.push(Row {
        name: format!("gateway HTTP p50, {app}"),
        value: via.0,
        baseline_name: "straight to the app",
        baseline: direct.0,
        unit: "ms",
        target: t,
        ok,
    });
    let (t, ok) = target(via.1 * 1.3 >= direct.1);
    rows.push(Row {
        name: format!("gateway HTTP req/s (8 in flight), {app}"),
        value: via.1,
        baseline_name: "straight to the app",
        baseline: direct.1,
        unit: "/s",
        target: t.replace("<= 1.3x", ">= 0.77x"),
        ok,
    });
    if judged {
        rows.push(Row::reported(
            &format!("gateway CPU per request, {app}"),
            cpu_per_request.0,
            "the app's CPU per request",
            cpu_per_request.1,
            "us",
        ));
    }
}

/// What one round saw: each sequential request's latency (ms), then the seconds `CONCURRENT`
/// clients in flight took for as many requests again.
struct Round {
    latencies: Vec<f64>,
    /// Requests answered with `CONCURRENT` in flight, and the seconds they took.
    concurrent: (usize, f64),
}

async fn http(url: &str, cookie: &str, requests: usize) -> Round {
    let client = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let r = client
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let started = Instant::now();
    let per = requests / CONCURRENT;
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (client, url, cookie) = (client.clone(), url.to_owned(), cookie.to_owned());
            tokio::spawn(async move {
                for _ in 0..per {
                    let r = client
                        .get(&url)
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .unwrap();
                    r.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Round {
        latencies,
        concurrent: (per * CONCURRENT, started.elapsed().as_secs_f64()),
    }
}

async fn ws(url: &str, cookie: &str) -> Socket {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// Round trips of one byte: `send` it, then wait for a frame that has it.
async fn round_trips(socket: &mut Socket, keystroke: bool) -> f64 {
    let mut lat = Vec::with_capacity(KEYSTROKES);
    for i in 0..KEYSTROKES {
        let c = (b'a' + (i % 26) as u8) as char;
        let t = Instant::now();
        if keystroke {
            type_keys(socket, &c.to_string()).await;
        } else {
            socket
                .send(Message::Text(c.to_string().into()))
                .await
                .unwrap();
        }
        loop {
            let got = match socket.next().await.unwrap().unwrap() {
                Message::Binary(b) => b.contains(&(c as u8)),
                Message::Text(t) => t.contains(c),
                _ => false,
            };
            if got {
                break;
            }
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if keystroke && i % 60 == 59 {
            // Start a fresh line now and then, so the shell's line editor stays short.
            type_keys(socket, "\u{15}").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            while tokio::time::timeout(Duration::from_millis(20), socket.next())
                .await
                .is_ok()
            {}
        }
    }
    lat.sort_by(f64::total_cmp);
    pct(&lat, 0.5)
}

pub async fn gateway(stack: &Stack, rows: &mut Vec<Row>) {
    let id = stack.create_session(None).await.id;
    let admin = stack.admin_key.clone();
    let listen = gateway_listening(stack, &id).await;
    let gw = format!("http://{listen}");
    // Measured at the gateway itself (the address a provider exposes), not through the worker.
    let url = token_url(stack, &admin, &id, "terminal").await;
    let (_, cookie, body) = trade(&format!("{gw}{url}"), None).await;
    let cookie = cookie.unwrap_or_else(|| panic!("the gateway never traded the token: {body}"));
    let servers = [
        ("node", vec!["-e", NODE_STATIC, "PORT"], "Node dev server"),
        (
            "python3",
            vec!["-m", "http.server", "--bind", "127.0.0.1", "PORT"],
            "python3 -m http.server",
        ),
    ];
    let sandbox = *stack.runner_pids(&id).first().expect("the sandbox runs");
    for (program, args, name) in servers {
        let (server, dev_port) = dev_server(sandbox, &stack.dir, program, &args);
        let direct = format!("http://127.0.0.1:{dev_port}/index.html");
        let via = format!("{gw}/sandbox/{id}/preview/{dev_port}/index.html");
        let seen = direct_and_via(sandbox, server.0.id(), direct, via, &cookie).await;
        compare(rows, name, seen, true);
    }
    let port = app(stack, &id).await;
    let direct = format!("http://127.0.0.1:{port}/small");
    let via = format!("{gw}/sandbox/{id}/preview/{port}/small");
    // The app runs in this process, which also runs the clients: its CPU is not shown.
    let seen = direct_and_via(sandbox, std::process::id(), direct, via, &cookie).await;
    compare(rows, "do-nothing app", seen, false);

    let ws_base = gw.replacen("http", "ws", 1);
    let mut echo = ws(
        &format!("{ws_base}/sandbox/{id}/preview/{port}/ws"),
        &cookie,
    )
    .await;
    let echo_p50 = round_trips(&mut echo, false).await;
    let mut term = ws(&format!("{ws_base}/sandbox/{id}/terminal/ws"), &cookie).await;
    // Let the shell print its prompt first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while tokio::time::timeout(Duration::from_millis(100), term.next())
        .await
        .is_ok()
    {}
    let key_p50 = round_trips(&mut term, true).await;
    rows.push(Row {
        name: "terminal keystroke echo p50".into(),
        value: key_p50,
        baseline_name: "WebSocket echo via the gateway",
        baseline: echo_p50,
        unit: "ms",
        target: "< 2 ms".into(),
        ok: key_p50 < 2.0,
    });
}
