//! The Worker's calls to a session's Durable Object: one typed request each, with the answer it
//! gets back. The object has no router of its own; it matches a [`Call`] and answers the
//! variant's [`SessionCall::Reply`] (or an `ApiError`), so the two sides cannot disagree on a
//! path, a body or an answer.
//!
//! A call travels as the JSON body of a POST, except the two that open a socket: a WebSocket
//! upgrade has no body, so those travel in [`CALL_HEADER`] of a request the Worker builds
//! itself (nothing of the caller's request reaches the object).

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::access::{Revocation, SessionAccess};
use crate::api::{Aborting, EventPage, NoContent, PromptAccepted, PromptCancelled};
use crate::feed::FeedTarget;

/// Carries a socket-opening call.
pub const CALL_HEADER: &str = "x-agent-ops-session-call";

/// A call, and what it is answered with.
pub trait SessionCall: Serialize + Into<Call> {
    type Reply: Serialize + DeserializeOwned;
}

macro_rules! session_calls {
    ($($(#[$doc:meta])* $name:ident $(=> $reply:ty)?,)*) => {
        /// Every call the session object serves.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "call", rename_all = "snake_case")]
        pub enum Call {
            $($(#[$doc])* $name($name),)*
        }

        $(
            impl From<$name> for Call {
                fn from(call: $name) -> Self {
                    Call::$name(call)
                }
            }
            $(impl SessionCall for $name {
                type Reply = $reply;
            })?
        )*
    };
}

session_calls! {
    /// Sent once, by the Worker creating the session.
    Init => NoContent,
    Prompt => PromptAccepted,
    CancelPrompt => PromptCancelled,
    Abort => Aborting,
    Events => EventPage,
    Terminate => NoContent,
    /// Answered with how many viewers' sockets were closed.
    CloseSockets => usize,
    Follow => NoContent,
    /// What the running turn is doing, as far as a feed has seen.
    Activity => Option<String>,
    /// A runner's call to its model, admitted (or not) and counted against the session's rate.
    ModelCall => ModelAdmission,
    /// Answered with the WebSocket upgrade.
    ClientSocket,
    /// Answered with the WebSocket upgrade.
    RunnerSocket,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Init {
    pub session_id: String,
    pub runner_token_hash: String,
    pub prompt: Option<String>,
    /// What the session's model calls are checked against, and whose keys pay for them.
    pub model: ModelCaller,
}

/// The session's model and its owner, as its model calls need them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCaller {
    pub model: String,
    pub owner_id: String,
}

/// Queue a prompt; its request id makes a retry harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub text: String,
    pub client_request_id: String,
}

/// Withdraw a prompt that has not started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelPrompt {
    pub prompt_id: String,
}

/// Interrupt the running turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {}

/// A page of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Events {
    pub after_seq: u64,
    /// At least 1, at most `MAX_PAGE_EVENTS`.
    pub limit: usize,
}

/// End the session: its turn, its runner, its sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terminate {}

/// Access taken back: close the sockets it covers, and tell the sandbox's gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseSockets {
    pub revoked: Revocation,
}

/// Post the session's progress and answers to `target` from now on (once per target), from the
/// log's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follow {
    pub target: FeedTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {}

/// The runner's call to its model, with the token it presented and how many calls a minute
/// the session may make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCall {
    pub token: String,
    pub per_minute: u32,
}

/// A model call the runner's token and the session's state allow: on its way, or over the
/// session's rate. (A wrong token or an ended session is refused as an error.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ModelAdmission {
    Admitted(ModelCaller),
    Limited { retry_after_secs: u64 },
}

/// A viewer's socket, with the access the Worker vouches for: each message on it is authorized
/// against that access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSocket {
    pub after_seq: u64,
    pub access: SessionAccess,
}

/// The runner's link, with the token it presented (the object holds its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerSocket {
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_names_itself_beside_its_fields() {
        let call: Call = CancelPrompt {
            prompt_id: "p1".into(),
        }
        .into();
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(json, r#"{"call":"cancel_prompt","prompt_id":"p1"}"#);
        assert_eq!(serde_json::from_str::<Call>(&json).unwrap(), call);
        let abort = serde_json::to_string(&Call::from(Abort {})).unwrap();
        assert_eq!(abort, r#"{"call":"abort"}"#);
    }

    #[test]
    fn an_unknown_call_is_refused() {
        assert!(serde_json::from_str::<Call>(r#"{"call":"format_disk"}"#).is_err());
        assert!(serde_json::from_str::<Call>(r#"{"call":"prompt"}"#).is_err());
    }
}
