//! The gateway's overhead, each figure beside the same thing done without it in the same run:
//! HTTP through the gateway to an app in the sandbox vs straight to the app, and a keystroke's
//! echo through the terminal's PTY vs a WebSocket echo through the same gateway.
//!
//! The apps listen in the sandbox's own network, so "straight to the app" is measured from inside
//! it; "through the gateway" from the host, where the Worker reaches it. Each side runs on a
//! client thread of its own, so both are measured alike. A third side, a bare TCP relay (bytes
//! copied, no HTTP, no door), shows what one more process on the path costs before the gateway
//! does anything: the floor for any proxy.
//!
//! Three apps: two real development servers (Node's http serving a file, as static middleware
//! does, and Python's `http.server`), and an in-process one that answers "ok" and does nothing
//! else, the worst case for any proxy: the app costs less than the extra hop.

use std::time::{Duration, Instant};

use e2e::panels::{gateway_listening, token_url, trade, type_keys, Socket};
use e2e::Stack;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{pct, Row};

/// Each side's sequential requests, timed one by one, taken `BATCH` at a time from each side in
/// turn: a burst of noise on this shared machine then falls on every side alike. (Measured one
/// side after the other, whichever side went first paid alone for a cold app, Node's JIT, and
/// whichever went second for the first's sockets in TIME_WAIT.)
const SEQUENTIAL: usize = 1000;
const BATCH: usize = 20;
/// Each side's requests with `CONCURRENT` in flight, in `BURSTS` bursts taken in turn likewise.
const BURSTS: usize = 8;
const BURST: usize = 200;
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

/// Waits (at most a minute) until the sandbox of session `id` is quiet: its processes together
/// use under 2% of a core. The agent boots when its session starts and, until it has, takes
/// CPU from whichever side is measured: most from the side with more processes to schedule.
async fn settle(stack: &Stack, id: &str) {
    const EVERY: Duration = Duration::from_millis(500);
    let busy = || -> u64 { stack.sandbox_procs(id).iter().map(|p| cpu_ns(p.pid)).sum() };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut before = busy();
    while Instant::now() < deadline {
        tokio::time::sleep(EVERY).await;
        let now = busy();
        if now.saturating_sub(before) < EVERY.as_nanos() as u64 / 50 {
            return;
        }
        before = now;
    }
    eprintln!("the sandbox of {id} never went quiet: measuring anyway");
}

/// What a side is asked to measure.
enum Job {
    /// Requests one after the other: each one's latency (ms).
    Sequential(usize),
    /// Requests with `CONCURRENT` in flight: the seconds they took, all together.
    Concurrent(usize),
}

/// A client of one URL on a thread and a runtime of its own, in the network of the sandbox whose
/// process is given, or else in the host's. Its connections stay open from one job to the next,
/// as a browser's do. The thread ends when the side is dropped.
struct Side {
    jobs: tokio::sync::mpsc::UnboundedSender<(Job, Done)>,
}

type Done = tokio::sync::oneshot::Sender<Vec<f64>>;

impl Side {
    fn new(netns: Option<u32>, url: String, cookie: String) -> Side {
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<(Job, Done)>();
        let serve = move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = reqwest::Client::new();
                while let Some((job, done)) = queue.recv().await {
                    let seen = match job {
                        Job::Sequential(n) => sequential(&client, &url, &cookie, n).await,
                        Job::Concurrent(n) => vec![concurrent(&client, &url, &cookie, n).await],
                    };
                    done.send(seen).ok();
                }
            })
        };
        std::thread::spawn(move || match netns {
            Some(pid) => e2e::procs::in_netns_of(pid, serve),
            None => serve(),
        });
        Side { jobs }
    }

    async fn run(&self, job: Job) -> Vec<f64> {
        let (done, seen) = tokio::sync::oneshot::channel();
        self.jobs.send((job, done)).expect("the side's thread runs");
        seen.await.expect("the side's thread answers")
    }
}

/// The order the sides take their turn `n` in: it changes every turn (A B C, C B A, B C A ...).
fn turn(n: usize) -> [usize; 3] {
    let mut order = [0, 1, 2];
    order.rotate_left(n % 3);
    if n % 2 == 1 {
        order.reverse();
    }
    order
}

/// Nanoseconds a thread has run on a CPU, from its `schedstat`.
fn schedstat_ns(path: std::path::PathBuf) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds `pid` has run on a CPU, all its threads together.
fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    tasks
        .flatten()
        .map(|t| schedstat_ns(t.path().join("schedstat")))
        .sum()
}

/// CPU microseconds per request.
struct CpuPerRequest {
    gateway: f64,
    relay: f64,
    app: f64,
}

/// What each side saw: p50 (ms) and requests per second.
struct Compared {
    direct: (f64, f64),
    relay: (f64, f64),
    via: (f64, f64),
    cpu: CpuPerRequest,
}

/// Set in the environment of the bench binary run as a bare relay: `<sandbox pid>:<port>`.
pub const RELAY_TO: &str = "BENCH_RELAY_TO";

/// A bare TCP relay from the host's loopback to `port` in the network of the sandbox whose
/// process is `sandbox`: bytes copied both ways, no HTTP and no door. It is a process of its
/// own (this binary again, see `serve_relay`) on one thread, as the gateway is: a relay thread
/// in the bench's own process would share its address space with the clients, and switching
/// between them costs less than switching between processes. What any proxy costs at least.
/// Killed when dropped. Its port, and its pid.
fn bare_relay(sandbox: u32, port: u16) -> (KillOnDrop, u16, u32) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(RELAY_TO, format!("{sandbox}:{port}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the relay starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let at = line.trim().parse().expect("the relay tells its port");
    let pid = child.id();
    (KillOnDrop(child), at, pid)
}

/// The relay's process (see `bare_relay`): prints the port it listens on, and serves until its
/// standard input closes, when the bench that started it ends however it ends.
pub fn serve_relay(to: &str) {
    let (sandbox, port) = to.split_once(':').expect("<sandbox pid>:<port>");
    let (sandbox, port): (u32, u16) = (sandbox.parse().unwrap(), port.parse().unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    listener.set_nonblocking(true).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let serve = async {
            while let Ok((mut down, _)) = listener.accept().await {
                // A socket belongs to the network it was made in; it connects from here.
                let socket = e2e::procs::in_netns_of(sandbox, tokio::net::TcpSocket::new_v4);
                tokio::spawn(async move {
                    let Ok(mut up) = socket?.connect(([127, 0, 0, 1], port).into()).await else {
                        return Ok(());
                    };
                    for s in [&down, &up] {
                        s.set_nodelay(true)?;
                    }
                    // Buffers that hold a whole page, as the gateway's do: no response is
                    // split into more writes than the app made.
                    const BUF: usize = 64 << 10;
                    tokio::io::copy_bidirectional_with_sizes(&mut down, &mut up, BUF, BUF)
                        .await
                        .map(drop)
                });
            }
        };
        let (mut stdin, mut sink) = (tokio::io::stdin(), tokio::io::sink());
        let orphaned = tokio::io::copy(&mut stdin, &mut sink);
        tokio::select! {
            _ = serve => {}
            _ = orphaned => {}
        }
    });
}

/// `path` on the app at `port`: straight from inside the sandbox, through a bare relay and
/// through the gateway's `previews` from the host, after a warm-up of each, in turns (see
/// `SEQUENTIAL`). `sandbox` is the runner's pid; `app` the app's.
async fn compared(
    sandbox: u32,
    app: u32,
    port: u16,
    path: &str,
    previews: &str,
    cookie: &str,
) -> Compared {
    let (_relay, relay, relay_pid) = bare_relay(sandbox, port);
    let relay_cpu = || cpu_ns(relay_pid);
    let sides = [
        Side::new(
            Some(sandbox),
            format!("http://127.0.0.1:{port}/{path}"),
            String::new(),
        ),
        Side::new(
            None,
            format!("http://127.0.0.1:{relay}/{path}"),
            String::new(),
        ),
        Side::new(None, format!("{previews}/{port}/{path}"), cookie.to_owned()),
    ];
    for side in &sides {
        side.run(Job::Sequential(BATCH * 5)).await;
        side.run(Job::Concurrent(BURST)).await;
    }
    let mut latencies: [Vec<f64>; 3] = Default::default();
    let mut secs = [0.0; 3];
    let (mut runner_ns, mut relay_ns, mut app_ns) = (0, 0, 0);
    let jobs = (0..SEQUENTIAL / BATCH).map(|_| (true, BATCH));
    let jobs = jobs.chain((0..BURSTS).map(|_| (false, BURST)));
    for (n, (one_by_one, requests)) in jobs.enumerate() {
        for side in turn(n) {
            let cpu = (cpu_ns(sandbox), relay_cpu(), cpu_ns(app));
            let job = if one_by_one {
                Job::Sequential(requests)
            } else {
                Job::Concurrent(requests)
            };
            let seen = sides[side].run(job).await;
            match side {
                1 => relay_ns += relay_cpu() - cpu.1,
                2 => {
                    runner_ns += cpu_ns(sandbox) - cpu.0;
                    app_ns += cpu_ns(app) - cpu.2;
                }
                _ => {}
            }
            match one_by_one {
                true => latencies[side].extend(seen),
                false => secs[side] += seen[0],
            }
        }
    }
    let [direct, relay, via] = [0, 1, 2].map(|side| {
        latencies[side].sort_by(f64::total_cmp);
        let rate = (BURSTS * BURST) as f64 / secs[side];
        (pct(&latencies[side], 0.5), rate)
    });
    let per_request = |ns: u64| ns as f64 / 1000.0 / (SEQUENTIAL + BURSTS * BURST) as f64;
    Compared {
        direct,
        relay,
        via,
        cpu: CpuPerRequest {
            gateway: per_request(runner_ns),
            relay: per_request(relay_ns),
            app: per_request(app_ns),
        },
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
        relay,
        via,
        cpu,
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
    // The same hop with nothing done on it: how much of the above is the gateway's own, and
    // what one more process on the path costs on this machine before any proxy does anything.
    rows.push(Row::reported(
        &format!("bare relay HTTP p50, {app}"),
        relay.0,
        "straight to the app",
        direct.0,
        "ms",
    ));
    rows.push(Row::reported(
        &format!("gateway HTTP p50 vs a bare relay, {app}"),
        via.0,
        "a bare TCP relay",
        relay.0,
        "ms",
    ));
    rows.push(Row::reported(
        &format!("gateway HTTP req/s vs a bare relay, {app}"),
        via.1,
        "a bare TCP relay",
        relay.1,
        "/s",
    ));
    rows.push(Row::reported(
        &format!("gateway CPU per request, {app}"),
        cpu.gateway,
        "a bare TCP relay's",
        cpu.relay,
        "us",
    ));
    if judged {
        rows.push(Row::reported(
            &format!("gateway CPU per request, {app}"),
            cpu.gateway,
            "the app's",
            cpu.app,
            "us",
        ));
    }
}

async fn get(client: &reqwest::Client, url: &str, cookie: &str) {
    let r = client
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
}

async fn sequential(client: &reqwest::Client, url: &str, cookie: &str, n: usize) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get(client, url, cookie).await;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    latencies
}

async fn concurrent(client: &reqwest::Client, url: &str, cookie: &str, n: usize) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (client, url, cookie) = (client.clone(), url.to_owned(), cookie.to_owned());
            tokio::spawn(async move {
                for _ in 0..n / CONCURRENT {
                    get(&client, &url, &cookie).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed().as_secs_f64()
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
    let (_, cookie, body) = trade(&format!("{gw}{}", e2e::panels::path_of(&url)), None, None).await;
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
    settle(stack, &id).await;
    let previews = format!("{gw}/sandbox/{id}/preview");
    for (program, args, name) in servers {
        let (server, dev_port) = dev_server(sandbox, &stack.dir, program, &args);
        let app = server.0.id();
        let seen = compared(sandbox, app, dev_port, "index.html", &previews, &cookie).await;
        compare(rows, name, seen, true);
    }
    let port = app(stack, &id).await;
    // The app runs in this process, which also runs the clients: its CPU is not shown.
    let seen = compared(
        sandbox,
        std::process::id(),
        port,
        "small",
        &previews,
        &cookie,
    )
    .await;
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
