//! `/agent-ops <subcommand>`: what a person typed after the command, read into what to do. A
//! new session is a `CreateSession`, exactly as `POST /api/sessions` takes it, so both ways in
//! share one path and one set of limits.

use crate::api::{AgentKind, CreateSession};

#[derive(Debug, Clone, PartialEq)]
pub enum SlashCommand {
    New(CreateSession),
    List,
    Status {
        session: String,
    },
    /// Interrupt the running turn.
    Stop {
        session: String,
    },
    /// Terminate the session.
    End {
        session: String,
    },
    Help,
}

pub const USAGE: &str =
    "*Usage:* `/agent-ops new [repo:owner/name] [agent:NAME] <task>` starts a session; \
`/agent-ops list` shows your active sessions; `/agent-ops status <id>`, `/agent-ops stop <id>` \
(interrupts the running turn) and `/agent-ops end <id>` (terminates it) act on one; \
`/agent-ops help` shows this.";

/// The longest title a session gets from its task's first line.
const TITLE_CHARS: usize = 80;

/// Reads a command's text; an `Err` is the sentence to show (with the usage).
pub fn parse(text: &str) -> Result<SlashCommand, String> {
    let text = text.trim();
    let (verb, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let rest = rest.trim();
    let one_id = |verb: &str| match rest.split_whitespace().collect::<Vec<_>>()[..] {
        [id] => Ok(id.to_owned()),
        _ => Err(format!("`{verb}` takes one session id. {USAGE}")),
    };
    match verb.to_ascii_lowercase().as_str() {
        "" | "help" => Ok(SlashCommand::Help),
        "list" if rest.is_empty() => Ok(SlashCommand::List),
        "new" => new_session(rest).map(SlashCommand::New),
        "status" => one_id("status").map(|session| SlashCommand::Status { session }),
        "stop" => one_id("stop").map(|session| SlashCommand::Stop { session }),
        "end" => one_id("end").map(|session| SlashCommand::End { session }),
        _ => Err(format!("I don't know `{text}`. {USAGE}")),
    }
}

/// `[repo:owner/name] [agent:NAME] <task>`: options first, then the task, which must not be empty.
fn new_session(rest: &str) -> Result<CreateSession, String> {
    let mut new = CreateSession::default();
    let mut task = rest;
    loop {
        let (word, after) = task.split_once(char::is_whitespace).unwrap_or((task, ""));
        if let Some(repo) = word.strip_prefix("repo:") {
            new.repo = Some(repo.to_owned());
        } else if let Some(agent) = word.strip_prefix("agent:") {
            new.agent = Some(agent_named(agent)?);
        } else {
            break;
        }
        task = after.trim_start();
    }
    if task.is_empty() {
        return Err(format!("`new` needs a task to work on. {USAGE}"));
    }
    let first_line = task.lines().next().unwrap_or_default();
    new.title = Some(first_line.chars().take(TITLE_CHARS).collect());
    new.prompt = Some(task.to_owned());
    Ok(new)
}

fn agent_named(name: &str) -> Result<AgentKind, String> {
    let kinds = [AgentKind::Opencode, AgentKind::Codex, AgentKind::ClaudeCode];
    kinds
        .into_iter()
        .find(|k| k.as_str() == name.to_ascii_lowercase().replace('-', "_"))
        .ok_or_else(|| {
            let names: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
            format!(
                "there is no agent `{name}`; the agents are {}",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_takes_options_then_the_task() {
        let SlashCommand::New(new) =
            parse("new repo:acme/web agent:opencode Fix the login page\nIt 500s.").unwrap()
        else {
            panic!("new")
        };
        assert_eq!(new.repo.as_deref(), Some("acme/web"));
        assert_eq!(new.agent, Some(AgentKind::Opencode));
        assert_eq!(new.prompt.as_deref(), Some("Fix the login page\nIt 500s."));
        assert_eq!(new.title.as_deref(), Some("Fix the login page"));
        let SlashCommand::New(plain) = parse("  NEW   write a haiku about repo:x ").unwrap() else {
            panic!("new")
        };
        assert_eq!(plain.repo, None, "an option after the task is the task's");
        assert_eq!(plain.prompt.as_deref(), Some("write a haiku about repo:x"));
        assert_eq!(
            parse("new agent:claude-code hi").unwrap(),
            SlashCommand::New(CreateSession {
                agent: Some(AgentKind::ClaudeCode),
                prompt: Some("hi".into()),
                title: Some("hi".into()),
                ..Default::default()
            })
        );
    }

    #[test]
    fn every_subcommand_and_its_refusals() {
        assert_eq!(parse(""), Ok(SlashCommand::Help));
        assert_eq!(parse("help"), Ok(SlashCommand::Help));
        assert_eq!(parse("list"), Ok(SlashCommand::List));
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse(&format!("status {id}")),
            Ok(SlashCommand::Status { session: id.into() })
        );
        assert_eq!(
            parse(&format!("stop {id}")),
            Ok(SlashCommand::Stop { session: id.into() })
        );
        assert_eq!(
            parse(&format!("end {id}")),
            Ok(SlashCommand::End { session: id.into() })
        );
        for bad in [
            "new",
            "new repo:a/b",
            "stop",
            "end a b",
            "list all",
            "deploy prod",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("*Usage:*"), "{bad}: {err}");
        }
        assert!(parse("new agent:gpt hi")
            .unwrap_err()
            .contains("no agent `gpt`"));
    }
}
