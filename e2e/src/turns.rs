//! Reading what a turn did: the tests that have the agent probe its sandbox read its commands'
//! output from the session's events.

use agent_ops_protocol::{EventBody, SessionEvent, ToolStatus};

use crate::{Stack, TURN_TIMEOUT};

/// Every event of session `id` up to the end of its first turn.
pub async fn turn_events(stack: &Stack, id: &str) -> Vec<SessionEvent> {
    let mut c = stack.client(id, 0).await;
    c.until(TURN_TIMEOUT, |e| matches!(e, EventBody::TurnEnded { .. }))
        .await;
    c.events
}

/// The output of the first completed call of `tool_name`; panics with the events if none.
pub fn tool_output(events: &[SessionEvent], tool_name: &str) -> String {
    events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ToolUpdated {
                tool,
                status: ToolStatus::Completed,
                output,
                ..
            } if tool == tool_name => output.clone(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no completed {tool_name} call in {events:#?}"))
}
