//! Workflows' pure rules: what may be saved, how a delivery is checked and named, how a
//! template renders, when a schedule runs, and when a failing workflow pauses itself. The
//! Worker does the I/O around these.

pub mod hooks;
pub mod schedule;
pub mod template;

use crate::api::{Concurrency, IdempotencySource, TriggerSpec, WorkflowSpec};
use crate::{ApiError, ErrorCode};

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, message)
}

/// A workflow as it may be saved: its templates parse. (Its repository and branch go through
/// the same checks as a session's when it runs.)
pub fn check_workflow(spec: &WorkflowSpec) -> Result<(), ApiError> {
    if spec.name.trim().is_empty() || spec.name.chars().count() > 200 {
        return Err(invalid("a workflow has a name of 1-200 characters".into()));
    }
    let t = &spec.template;
    if t.prompt.is_empty() || t.prompt.chars().count() > 65536 {
        return Err(invalid("the prompt template is 1-65536 characters".into()));
    }
    if t.title
        .as_ref()
        .is_some_and(|title| title.chars().count() > 512)
    {
        return Err(invalid(
            "the title template is at most 512 characters".into(),
        ));
    }
    if spec
        .max_runs_per_hour
        .is_some_and(|n| !(1..=10_000).contains(&n))
    {
        return Err(invalid("max_runs_per_hour is 1-10000".into()));
    }
    if !(1..=100).contains(&spec.pause_after_failures) {
        return Err(invalid("pause_after_failures is 1-100".into()));
    }
    template::check(&spec.template.prompt).map_err(|e| invalid(format!("prompt: {e}")))?;
    if let Some(title) = &spec.template.title {
        template::check(title).map_err(|e| invalid(format!("title: {e}")))?;
    }
    Ok(())
}

/// A trigger as it may be saved: its filters and headers well formed, its schedule one that
/// runs, no more often than `min_interval_minutes`.
pub fn check_trigger(
    spec: &TriggerSpec,
    min_interval_minutes: u64,
    now_ms: u64,
) -> Result<(), ApiError> {
    match spec {
        TriggerSpec::Webhook {
            filters,
            headers,
            idempotency,
            ..
        } => {
            for f in filters {
                hooks::check_filter(f).map_err(invalid)?;
            }
            match idempotency {
                Some(IdempotencySource::Header { name }) if name.is_empty() || name.len() > 128 => {
                    return Err(invalid(
                        "an idempotency header's name is 1-128 characters".into(),
                    ))
                }
                Some(IdempotencySource::Pointer { pointer }) if pointer.len() > 512 => {
                    return Err(invalid(
                        "an idempotency pointer is at most 512 characters".into(),
                    ))
                }
                _ => {}
            }
            if let Some(h) = headers.iter().find(|h| {
                h.is_empty()
                    || !h
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit())
            }) {
                return Err(invalid(format!("`{h}` is not a header name in lower case")));
            }
            Ok(())
        }
        TriggerSpec::Schedule { cron, timezone } => {
            schedule::Schedule::checked(cron, timezone, min_interval_minutes, now_ms)
                .map(|_| ())
                .map_err(invalid)
        }
    }
}

/// What a queued run does now, given how many of its workflow's runs are going and how many
/// started in the last hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Start,
    /// Stays queued until the running one ends.
    Wait,
    Skip(String),
}

pub fn admit(
    policy: Concurrency,
    max_runs_per_hour: Option<u32>,
    running: u32,
    last_hour: u32,
) -> Admission {
    if let Some(max) = max_runs_per_hour.filter(|max| last_hour >= *max) {
        return Admission::Skip(format!(
            "the workflow may start {max} runs an hour, and has"
        ));
    }
    match policy {
        _ if running == 0 => Admission::Start,
        Concurrency::Allow => Admission::Start,
        Concurrency::Skip => {
            Admission::Skip("another run of this workflow is still running".into())
        }
        Concurrency::Queue => Admission::Wait,
    }
}

/// Why a workflow pauses itself after `failures` failed runs in a row, if it does.
pub fn pause_reason(failures: u32, pause_after: u32) -> Option<String> {
    (failures >= pause_after)
        .then(|| format!("paused after {failures} failed runs in a row; enable it to run again"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_after_the_last_failure_allowed() {
        assert_eq!(pause_reason(2, 3), None);
        assert!(pause_reason(3, 3).unwrap().contains("3 failed runs"));
    }

    #[test]
    fn admission_by_policy_and_rate() {
        use Concurrency::*;
        assert_eq!(admit(Skip, None, 0, 50), Admission::Start);
        assert!(matches!(admit(Skip, None, 1, 0), Admission::Skip(_)));
        assert_eq!(admit(Queue, None, 1, 0), Admission::Wait);
        assert_eq!(admit(Allow, None, 4, 0), Admission::Start);
        assert!(
            matches!(admit(Allow, Some(5), 0, 5), Admission::Skip(r) if r.contains("5 runs an hour"))
        );
        assert_eq!(admit(Allow, Some(5), 0, 4), Admission::Start);
    }
}
