//! The local sandbox provider: signed requests only, one isolated sandbox per session, logs kept,
//! everything killed on terminate. Checked from inside a real sandbox, by the real agent.

use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::Duration;

use agent_ops_protocol::signing::{sign_request, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use agent_ops_protocol::{EventBody, TurnOutcome};
use e2e::turns::{tool_output, turn_events};
use e2e::{panels, Stack, StackOptions};
use reqwest::Method;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// PIDs of every process whose working directory is inside `dir`.
fn processes_in(dir: &Path) -> Vec<u32> {
    e2e::procs::all()
        .into_iter()
        .filter(|p| p.cwd.as_ref().is_some_and(|c| c.starts_with(dir)))
        .map(|p| p.pid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_are_isolated_logged_and_killed_on_terminate() {
    let stack = Stack::start(StackOptions::default()).await;
    let a = stack
        .create_session(Some("@write secret-a.txt top secret\n@say stored"))
        .await;
    turn_events(&stack, &a.id).await;
    assert_eq!(
        std::fs::read_to_string(stack.workspace(&a.id).join("secret-a.txt")).unwrap(),
        "top secret"
    );

    let root = stack.dir.join("sandboxes");
    let model_port = stack
        .model_url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap();
    let probe = format!(
        "@bash ls -a {root}; cat {root}/{a}/workspace/secret-a.txt 2>&1; touch /usr/agent-ops-probe 2>&1; \
         cat {wrangler}/x 2>&1; ls {wrangler} | wc -l; env | grep -c AGENT_OPS_RUNNER_TOKEN; \
         cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' \
         | grep -c -E 'AGENT_OPS_(RUNNER_TOKEN|PANEL_KEY)='; \
         printf '%s%s\\n' {key_head} {key_tail} > /tmp/model-key; \
         cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c -F -f /tmp/model-key; \
         bash -c 'echo > /dev/tcp/127.0.0.1/{model_port}' 2>/dev/null && echo model-reachable || echo model-unreachable; \
         bash -c 'echo > /dev/tcp/127.0.0.1/{worker_port}' 2>/dev/null && echo worker-reachable; \
         echo probe-done\n@say checked",
        // In two halves, so the probe's own command line does not hold the key it looks for.
        key_head = &stack.model_api_key[..8],
        key_tail = &stack.model_api_key[8..],
        model_port = model_port,
        worker_port = stack.port,
        root = root.display(),
        a = a.id,
        wrangler = stack.dir.join("wrangler").display(),
    );
    let b = stack.create_session(Some(&probe)).await;
    let events = turn_events(&stack, &b.id).await;
    let out = tool_output(&events, "bash");
    assert!(out.contains("probe-done"), "the probe ran: {out}");
    let listing: Vec<&str> = out
        .lines()
        .take_while(|l| !l.contains("No such file"))
        .collect();
    let (own, other) = (stack.sandbox_name(&b.id), stack.sandbox_name(&a.id));
    assert!(
        listing.contains(&own.as_str()),
        "a sandbox sees its own directory ({own}): {out}"
    );
    assert!(
        !listing
            .iter()
            .any(|l| l.contains(&a.id) || l.contains(&other)),
        "a sandbox cannot see another session ({other}): {out}"
    );
    assert!(!out.contains("top secret"));
    assert!(
        out.contains("Read-only file system"),
        "the system is read-only: {out}"
    );
    assert!(!Path::new("/usr/agent-ops-probe").exists());
    let counts: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(
        counts,
        vec!["0", "0", "0", "0"],
        "platform state hidden, the runner token not in the agent's environment, no process \
         in the sandbox can read the runner's credentials from another's (not even from the \
         sandbox's first process, bubblewrap's), and none holds the model's key: {out}"
    );
    assert!(
        out.contains("model-unreachable") && out.contains("worker-reachable"),
        "the agent reaches its model only through the Worker: {out}"
    );

    // The model refuses a request without its key, so the turns above prove the Worker added
    // it to the agent's calls.
    let models = format!("{}/models", stack.model_url);
    let http = reqwest::Client::new();
    let keyless = http.get(&models).send().await.unwrap().status();
    let keyed = http
        .get(&models)
        .bearer_auth(&stack.model_api_key)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!((keyless.as_u16(), keyed.as_u16()), (401, 200));

    for id in [&a.id, &b.id] {
        let log = std::fs::read_to_string(root.join(".logs").join(format!("{id}.log")))
            .expect("a log per session");
        assert!(log.contains("runner starting"), "{log}");
    }

    let workspace = stack.workspace(&b.id);
    assert!(!stack.runner_pids(&b.id).is_empty());
    assert!(
        !processes_in(&workspace).is_empty(),
        "the agent runs in the workspace"
    );
    let (status, v) = stack
        .call(Method::DELETE, &format!("/api/sessions/{}", b.id), None)
        .await;
    assert_eq!(status, 200, "{v}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (!stack.runner_pids(&b.id).is_empty() || !processes_in(&workspace).is_empty())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stack.runner_pids(&b.id).is_empty(), "runner killed");
    assert!(
        processes_in(&workspace).is_empty(),
        "agent and its children killed"
    );
    assert!(
        !stack.runner_pids(&a.id).is_empty(),
        "the other session is untouched"
    );
}

/// The default route's gateway in the network namespace of `pid`, from `/proc`.
fn default_gateway(pid: u32) -> Ipv4Addr {
    let routes = std::fs::read_to_string(format!("/proc/{pid}/net/route")).unwrap();
    routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"00000000"))
        .and_then(|f| u32::from_str_radix(f[2], 16).ok())
        .map(|gw| Ipv4Addr::from(gw.to_le_bytes()))
        .unwrap_or_else(|| panic!("no default route in the sandbox:\n{routes}"))
}

/// A sandbox's network is its own: an app it starts on loopback is reached through its gateway
/// and nowhere else (not from the host, not from another sandbox), and a sandbox reaches on the
/// host only the ports it was given URLs for, not the rest of the host's loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_network_is_its_own() {
    let stack = Stack::start(StackOptions::default()).await;
    let admin = stack.admin_key.clone();
    let (a, b) = (
        stack.create_session(None).await.id,
        stack.create_session(None).await.id,
    );
    for id in [&a, &b] {
        panels::gateway_listening(&stack, id).await;
    }
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "inside a" }));
    let port = panels::serve_app(&stack, &a, app).await;

    let cookie = panels::open(&stack, &admin, &a, "terminal").await;
    let via = panels::get(
        &stack,
        &admin,
        &cookie,
        &format!("/sandbox/{a}/preview/{port}/"),
    )
    .await;
    assert_eq!(via.text().await.unwrap(), "inside a", "through the gateway");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the host reaches the app"
    );

    let in_b = stack.runner_pids(&b)[0];
    let gateway = default_gateway(in_b);
    let (worker, provider) = (stack.port, stack.provider_port);
    let reached = e2e::procs::in_netns_of(in_b, move || {
        let reaches = |ip: Ipv4Addr, port: u16| {
            TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2)).is_ok()
        };
        [
            reaches(Ipv4Addr::LOCALHOST, port),
            reaches(Ipv4Addr::LOCALHOST, worker),
            reaches(Ipv4Addr::LOCALHOST, provider),
            reaches(gateway, provider),
        ]
    });
    assert_eq!(
        reached,
        [false, true, false, false],
        "from b: a's app, b's Worker, the provider on loopback, the provider by the gateway address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_accepts_only_fresh_correctly_signed_requests() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(None).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", stack.provider_port);
    let secret = stack.provider_secret.as_bytes();
    let path = format!("/v1/sandboxes/{}", info.id);
    // What a request carries: its timestamp, nonce and signature headers, each if any.
    type Signed = (Option<u64>, Option<String>, Option<String>);
    let send = |method: Method, path: String, (ts, nonce, sig): Signed, body: Vec<u8>| {
        let mut req = http.request(method, format!("{base}{path}")).body(body);
        if let Some(ts) = ts {
            req = req.header(TIMESTAMP_HEADER, ts.to_string());
        }
        if let Some(nonce) = nonce {
            req = req.header(NONCE_HEADER, nonce);
        }
        if let Some(sig) = sig {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        async move {
            let r = req.send().await.expect("provider reachable");
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    // Signed by `key` over `method` and `path` at `ts`, with a fresh nonce.
    let sign = |key: &[u8], method: &str, path: &str, ts: u64| -> Signed {
        let nonce = e2e::random_hex(16);
        let sig = sign_request(key, method, path, ts, &nonce, b"");
        (Some(ts), Some(nonce), Some(sig))
    };
    let now = now_secs();
    let good = sign(secret, "GET", &path, now);
    let (s, v) = send(Method::GET, path.clone(), good.clone(), vec![]).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("running")), "{v}");

    let (ts, _, sig) = sign(secret, "GET", &path, now);
    let cases: [(&str, Signed); 8] = [
        ("unsigned", (None, None, None)),
        ("wrong secret", sign(b"not-the-secret", "GET", &path, now)),
        ("stale", sign(secret, "GET", &path, now - 1_000)),
        ("from the future", sign(secret, "GET", &path, now + 1_000)),
        (
            "other path",
            sign(secret, "GET", "/v1/sandboxes/other", now),
        ),
        ("other method", sign(secret, "DELETE", &path, now)),
        ("without its nonce", (ts, None, sig.clone())),
        ("replayed: the same request again", good),
    ];
    for (name, signed) in cases {
        let (s, v) = send(Method::GET, path.clone(), signed, vec![]).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (401, Some("unauthorized")),
            "{name}: {v}"
        );
    }
    // A signature binds the body: the same headers over another body are refused.
    let body = br#"{"session_id":"x"}"#.to_vec();
    let nonce = e2e::random_hex(16);
    let sig = sign_request(secret, "POST", "/v1/sandboxes", now, &nonce, &body);
    let (s, _) = send(
        Method::POST,
        "/v1/sandboxes".into(),
        (Some(now), Some(nonce), Some(sig)),
        br#"{"session_id":"y"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 401);
    // And nothing was terminated by any of the refused requests.
    let (s, v) = send(
        Method::GET,
        path.clone(),
        sign(secret, "GET", &path, now),
        vec![],
    )
    .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("running")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_calls_the_model_for_the_runner_with_the_key_only_it_holds() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack.create_session(None).await;
    let token = stack.runner_token(&info.id).expect("runner token");
    let refused = stack.call_model(&info.id, "not-the-token").await;
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "invalid_token");

    let before = stack.recorder.requests().len();
    let answered = stack.call_model(&info.id, &token).await;
    assert_eq!(answered.status(), 200, "the model took the Worker's key");
    assert!(answered
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream")));
    let text = answered.text().await.unwrap();
    assert!(
        text.contains("Scripted session") && text.contains("[DONE]"),
        "the model's stream, whole: {text}"
    );
    assert_eq!(stack.recorder.requests().len(), before + 1);

    // The key serves inference only: not the account's files, batches or fine-tunes.
    let (status, body) = stack
        .call_as(
            Some(&token),
            Method::POST,
            &format!("/api/sessions/{}/model/files", info.id),
            Some("{}".into()),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    stack.terminate_session(&info.id).await;
    let ended = stack.call_model(&info.id, &token).await;
    assert_eq!(ended.status(), 409);
    let body: serde_json::Value = ended.json().await.unwrap();
    assert_eq!(body["code"], "session_terminated");
}

/// What the sandbox `id` names (see `Stack::sandbox_name`) holds on the host: the processes that
/// name it (bubblewrap, the runner, pasta) and its cgroups.
fn held_for(id: &str) -> Vec<String> {
    let mut held: Vec<String> = e2e::procs::all()
        .into_iter()
        .filter(|p| p.argv.iter().any(|a| a.contains(id)))
        .map(|p| format!("process {}: {}", p.pid, p.argv.join(" ")))
        .collect();
    let mut dirs = vec![(std::path::PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name() == id {
                held.push(format!("cgroup {}", path.display()));
            } else if depth < 3 {
                dirs.push((path, depth + 1));
            }
        }
    }
    held
}

async fn until_nothing_held(id: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let held = held_for(id);
        if held.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still held {held:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A sandbox whose runner ends on its own (here: killed) gives back its processes and cgroups
/// within seconds, with nobody asking after it; a terminated session's files go too, and its
/// runner's log stays. Before, an exited sandbox kept pasta and its groups until a request
/// named it, and every session's workspace stayed on the host for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exited_and_terminated_sandboxes_are_reaped() {
    let stack = Stack::start(StackOptions::default()).await;
    let exits = stack.create_session(None).await.id;
    let exits_sandbox = stack.sandbox_name(&exits);
    let held = held_for(&exits_sandbox);
    assert!(
        held.iter().any(|h| h.starts_with("process"))
            && held.iter().any(|h| h.starts_with("cgroup")),
        "a running sandbox holds processes and groups: {held:#?}"
    );
    stack.kill_runner(&exits);
    until_nothing_held(&exits_sandbox, "an exited sandbox").await;

    let ends = stack
        .create_session(Some("@write notes.txt kept until the end\n@say written"))
        .await
        .id;
    turn_events(&stack, &ends).await;
    let dir = stack.dir.join("sandboxes").join(&ends);
    assert!(dir.join("workspace/notes.txt").exists());
    stack.terminate_session(&ends).await;
    until_nothing_held(&stack.sandbox_name(&ends), "a terminated sandbox").await;
    for gone in ["workspace", "home", "state"] {
        assert!(!dir.join(gone).exists(), "{gone} is removed");
    }
    let logs = stack.dir.join("sandboxes/.logs");
    let log = std::fs::read_to_string(logs.join(format!("{ends}.log"))).expect("the log stays");
    assert!(log.contains("runner starting"), "{log}");
}

/// A sandbox's processes run as a host uid of their own, not root and not the operator, one per
/// session, with no capabilities; the session's files are that uid's. Before the fix they ran as
/// the host's root in a user namespace: one kernel bug from root on the host, and every file the
/// agent wrote was root's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sandbox_runs_as_a_host_uid_of_its_own() {
    use std::os::unix::fs::MetadataExt;
    let stack = Stack::start(StackOptions::default()).await;
    let probe = "@bash echo uid-$(id -u)-; grep CapEff /proc/self/status; whoami; \
                 touch mine.txt && echo wrote-mine\n@say looked";
    let mut uids = Vec::new();
    for _ in 0..2 {
        let id = stack.create_session(Some(probe)).await.id;
        let out = tool_output(&turn_events(&stack, &id).await, "bash");
        assert!(out.contains("wrote-mine"), "{out}");
        assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
        assert!(
            out.contains("agent"),
            "the uid has a name in the sandbox: {out}"
        );
        let uid: u32 = out
            .split("uid-")
            .nth(1)
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert_ne!(uid, 0, "not root");
        let operator = std::fs::metadata("/proc/self").unwrap().uid();
        assert_ne!(uid, operator, "not the operator");
        let file = std::fs::metadata(stack.workspace(&id).join("mine.txt")).unwrap();
        assert_eq!(file.uid(), uid, "the session's files are its uid's");
        uids.push(uid);
    }
    assert_ne!(uids[0], uids[1], "each session a uid of its own");
}

/// A sandbox fills only its own disk: writing past its bound fails in the sandbox with
/// `ENOSPC`, the host gives it no more than the bound, and the session goes on once the agent
/// deletes what it wrote. Before the fix one agent could fill the host's disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_fills_only_its_own_disk() {
    use std::os::unix::fs::MetadataExt;
    let stack = Stack::start(StackOptions {
        sandbox_disk_mib: Some(64),
        ..StackOptions::default()
    })
    .await;
    let probe = "@bash dd if=/dev/zero of=fill bs=1M count=200 2>&1 | grep -o 'No space left on device' | head -1; \
                 echo size-$(stat -c %s fill)-; rm fill; echo after > after.txt && echo wrote-after\n@say filled";
    let id = stack.create_session(Some(probe)).await.id;
    let out = tool_output(&turn_events(&stack, &id).await, "bash");
    assert!(out.contains("No space left on device"), "{out}");
    let size: u64 = out
        .split("size-")
        .nth(1)
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(size < 64 << 20, "wrote {size} bytes on a 64 MiB disk");
    assert!(out.contains("wrote-after"), "the space came back: {out}");
    let image = stack
        .dir
        .join(format!("sandboxes/.disks/{}.img", stack.sandbox_name(&id)));
    let on_host = std::fs::metadata(&image).expect("the session's disk");
    assert!(
        on_host.blocks() * 512 <= 72 << 20,
        "the host gave it {} bytes",
        on_host.blocks() * 512
    );
    let tail = stack.history_tail_seq(&id).await;
    let (status, v) = stack.prompt(&id, "@say still here", "next").await;
    assert_eq!(status, 202, "{v}");
    let mut c = stack.client(&id, tail).await;
    let end = c
        .until(e2e::TURN_TIMEOUT, |e| {
            matches!(e, EventBody::TurnEnded { .. })
        })
        .await;
    assert!(
        matches!(
            end.body,
            EventBody::TurnEnded {
                outcome: TurnOutcome::Completed,
                ..
            }
        ),
        "{end:?}"
    );
}

/// A provider stopped while its warm sandboxes are still starting removes those too, once they
/// have started: no disk stays mounted, no sandbox directory stays behind. Before the fix a stop
/// removed only the ready ones, and one under way kept its disk mounted on the host.
#[test]
fn a_provider_stopped_mid_start_leaves_no_disk_mounted() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let root = e2e::target_dir()
        .join("e2e-tmp")
        .join(format!("provider-stop-{}", e2e::random_hex(4)));
    std::fs::create_dir_all(&root).expect("root");
    let [port] = e2e::free_ports::<1>();
    let mut provider = Command::new(
        e2e::target_dir()
            .join(e2e::PROFILE)
            .join("sandbox-provider"),
    )
    .args(["--listen", &format!("127.0.0.1:{port}"), "--warm", "2"])
    .arg("--root")
    .arg(&root)
    .arg("--opencode-bin")
    .arg(e2e::repo_root().join("node_modules/.bin/opencode"))
    .env("AGENT_OPS_PROVIDER_SECRET", e2e::random_hex(32))
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the provider starts");
    let mut log = std::io::BufReader::new(provider.stderr.take().expect("its log"));
    let mut read = String::new();
    while !read.contains("listening") {
        let more = log.read_line(&mut read).expect("its log");
        assert!(more > 0, "it listens: {read}");
    }
    // At once: its warm sandboxes' disks take tens of milliseconds to be made and mounted.
    Command::new("kill")
        .args(["-TERM", &provider.id().to_string()])
        .status()
        .expect("kill");
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut log, &mut rest).ok();
        rest
    });
    assert!(provider.wait().expect("it stops").success());
    let rest = rest.join().expect("its log");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let held: Vec<&str> = mounts
        .lines()
        .filter(|m| m.contains(root.to_str().expect("a path")))
        .collect();
    assert!(held.is_empty(), "still mounted: {held:?}\n{rest}");
    let left: Vec<String> = std::fs::read_dir(&root)
        .expect("root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".warm-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{rest}");
    std::fs::remove_dir_all(&root).ok();
}
