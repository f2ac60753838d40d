//! The API's contract, checked by real clients: the committed OpenAPI document is the one the
//! route table and the body types write, the Worker serves it, a standard validator accepts it,
//! and schemathesis fuzzes the running Worker from it: no 5xx, every answer (errors included)
//! matches its declared schema and status, every error is `{code, message}` with a documented code.

use std::process::Command;

use agent_ops_protocol::openapi::document_text;
use e2e::{repo_root, Stack, StackOptions};

const COMMITTED: &str = "worker/openapi.json";

fn committed() -> String {
    std::fs::read_to_string(repo_root().join(COMMITTED)).expect("the committed document")
}

#[test]
fn the_committed_document_is_the_one_the_code_writes() {
    let written = document_text(env!("CARGO_PKG_VERSION"));
    assert!(
        committed() == written,
        "{COMMITTED} is not what the route table and the body types write: run `make openapi` and commit it"
    );
}

fn tool(name: &str) -> Command {
    Command::new(repo_root().join(".tools/contract/bin").join(name))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standard_validator_and_a_schema_driven_fuzzer_accept_the_api() {
    let stack = Stack::start(StackOptions {
        // What the fuzzer's valid creates start: two sandboxes, then `limit_exceeded`.
        max_active_sessions: 2,
        ..Default::default()
    })
    .await;
    let served = stack
        .http()
        .get(stack.url("/api/openapi.json"))
        .send()
        .await
        .expect("the document is served");
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.text().await.unwrap(),
        committed(),
        "served as committed"
    );

    let path = repo_root().join(COMMITTED);
    let (ok, out) = run(tool("openapi-spec-validator").arg(&path));
    assert!(ok, "openapi-spec-validator refuses the document:\n{out}");

    // A session of the admin's, which the fuzzer's session routes name (see its config).
    let session = stack.create_session(None).await;
    let report = stack.dir.join("schemathesis");
    let mut fuzz = tool("st");
    fuzz.arg("--config-file")
        .arg(repo_root().join("e2e/contract/schemathesis.toml"))
        .arg("run")
        .arg(&path)
        .args(["--url", &stack.url("")])
        .args(["--header", &format!("Authorization: Bearer {}", stack.admin_key)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: hypothesis describes its filters by parsing source with `ast`, which this
        // machine's CPython 3.11.7 gets wrong from two threads at once ("AST constructor
        // recursion depth mismatch", a crash of the tool, not a finding).
        .args(["--max-examples", "40", "--seed", "20261201", "--workers", "1"])
        .args(["--request-timeout", "20", "--no-color"])
        // Sockets are not HTTP exchanges a fuzzer can judge.
        .args(["--exclude-operation-id", "ClientSocket"])
        .args(["--exclude-operation-id", "RunnerSocket"])
        .arg("--report-dir")
        .arg(&report)
        .args(["--report", "junit"])
        .env("AGENT_OPS_SESSION", &session.id);
    let (ok, out) = run(&mut fuzz);
    println!("{out}");
    assert!(
        ok,
        "schemathesis found the API breaking its contract:\n{out}"
    );
}
