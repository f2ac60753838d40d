//! The agent inside the sandbox: the session's repository is cloned for it, an unsupported agent
//! is refused plainly, and a dead agent is restarted without losing the session.

use std::process::Command;
use std::time::Duration;

use agent_ops_protocol::events::AgentState;
use agent_ops_protocol::{EventBody, ToolStatus, TurnOutcome};
use e2e::client::text_of;
use e2e::{Stack, StackOptions, TURN_TIMEOUT};
use reqwest::Method;

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_is_cloned_into_the_workspace() {
    let stack = Stack::start(StackOptions::default()).await;
    let repo = stack.git_root().join("widgets");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(repo.join("README.md"), "widgets: the finest in the land\n").unwrap();
    git(&repo, &["add", "README.md"]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    git(&repo, &["checkout", "--quiet", "-b", "feature/next"]);
    std::fs::write(repo.join("NEXT.md"), "only on the branch\n").unwrap();
    git(&repo, &["add", "NEXT.md"]);
    git(&repo, &["commit", "--quiet", "-m", "next"]);
    git(&repo, &["checkout", "--quiet", "main"]);

    let body = serde_json::json!({
        "repo": format!("file://{}", repo.display()),
        "branch": "feature/next",
        "prompt": "@bash cat README.md NEXT.md && git branch --show-current\n@say I read it.",
    });
    let (status, v) = stack.call(Method::POST, "/api/sessions", Some(body)).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let mut c = stack.client(&id, 0).await;
    let end = c
        .until(TURN_TIMEOUT, |e| matches!(e, EventBody::TurnEnded { .. }))
        .await;
    assert!(matches!(
        end.body,
        EventBody::TurnEnded {
            outcome: TurnOutcome::Completed,
            ..
        }
    ));
    let cloned = c.events.iter().any(|e| {
        matches!(&e.body, EventBody::AgentStatus { state: AgentState::Starting, detail: Some(d) } if d.starts_with("cloned "))
    });
    let statuses: Vec<_> = c
        .events
        .iter()
        .filter(|e| matches!(e.body, EventBody::AgentStatus { .. }))
        .collect();
    assert!(cloned, "the clone was reported: {statuses:#?}");
    let out = c
        .events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ToolUpdated {
                tool,
                status: ToolStatus::Completed,
                output: Some(o),
                ..
            } if tool == "bash" => Some(o.clone()),
            _ => None,
        })
        .expect("the agent ran its command");
    assert!(out.contains("widgets: the finest in the land"), "{out}");
    assert!(
        out.contains("only on the branch") && out.contains("feature/next"),
        "the requested branch is checked out: {out}"
    );
    let info = stack.session(&id).await;
    assert_eq!(info.branch.as_deref(), Some("feature/next"));
    assert!(stack.workspace(&id).join(".git").is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_agents_and_repos_are_refused_plainly() {
    let stack = Stack::start(StackOptions::default()).await;
    for body in [
        serde_json::json!({"agent": "codex"}),
        serde_json::json!({"repo": "not a repo"}),
        serde_json::json!({"repo": "../../etc"}),
    ] {
        let (status, v) = stack
            .call(Method::POST, "/api/sessions", Some(body.clone()))
            .await;
        assert_eq!(
            (status, v["code"].as_str()),
            (400, Some("invalid_body")),
            "{body}: {v}"
        );
    }
    let (_, v) = stack.call(Method::GET, "/api/sessions", None).await;
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(0));
}

/// The `opencode serve` processes working in `dir`.
fn agents(dir: &std::path::Path) -> Vec<e2e::procs::Proc> {
    e2e::procs::all()
        .into_iter()
        .filter(|p| {
            p.program_is("opencode")
                && p.argv.iter().any(|a| a == "serve")
                && p.cwd.as_deref() == Some(dir)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_agent_fails_its_turn_and_is_restarted() {
    let stack = Stack::start(StackOptions::default()).await;
    let info = stack
        .create_session(Some(
            "@say slowly now. \n@repeat 40\n@chunk 4\n@delay_ms 40",
        ))
        .await;
    let mut c = stack.client(&info.id, 0).await;
    c.until(TURN_TIMEOUT, |e| matches!(e, EventBody::TextDelta { .. }))
        .await;
    let running = agents(&stack.workspace(&info.id));
    assert!(!running.is_empty(), "the agent is running");
    running.iter().for_each(e2e::procs::Proc::kill);
    let end = c
        .until(TURN_TIMEOUT, |e| matches!(e, EventBody::TurnEnded { .. }))
        .await;
    let EventBody::TurnEnded {
        outcome, reason, ..
    } = end.body
    else {
        unreachable!()
    };
    assert_eq!(outcome, TurnOutcome::Failed);
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("agent process died")),
        "{reason:?}"
    );
    c.until(TURN_TIMEOUT, |e| {
        matches!(
            e,
            EventBody::AgentStatus {
                state: AgentState::Restarting,
                ..
            }
        )
    })
    .await;
    let seen = c.events.len();
    let (status, v) = stack.prompt(&info.id, "still there?", "after-crash").await;
    assert_eq!(status, 202, "{v}");
    let prompt_id = v["prompt_id"].as_str().unwrap().to_owned();
    let end = c
        .until(
            TURN_TIMEOUT,
            |e| matches!(e, EventBody::TurnEnded { prompt_id: p, .. } if *p == prompt_id),
        )
        .await;
    assert!(matches!(
        end.body,
        EventBody::TurnEnded {
            outcome: TurnOutcome::Completed,
            ..
        }
    ));
    assert!(text_of(&c.events[seen..]).contains("You said: still there?"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        agents(&stack.workspace(&info.id)).len(),
        1,
        "exactly one agent again"
    );
}
