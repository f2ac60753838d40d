//! The Agent Ops wire protocol: every type that crosses a process boundary between the worker,
//! the session Durable Object, the sandbox runner and the client is defined here, once.
//!
//! Pure decision logic that both ends must agree on (the session lifecycle, the reliable-delivery
//! bookkeeping, request signing) lives here too, free of I/O, so it is unit-tested natively.

pub mod access;
pub mod api;
pub mod bounds;
pub mod cookies;
pub mod delivery;
pub mod errors;
pub mod events;
pub mod feed;
pub mod frames;
pub mod lifecycle;
pub mod log_rows;
#[cfg(feature = "schema")]
pub mod openapi;
pub mod origins;
#[cfg(feature = "panel-tokens")]
pub mod panel;
pub mod repo;
pub mod routes;
pub mod session_calls;
pub mod signing;
pub mod slack;
#[cfg(feature = "vault")]
pub mod vault;
#[cfg(feature = "workflows")]
pub mod workflows;

pub use errors::{ApiError, ErrorCode};
pub use events::{EventBody, SessionEvent, SessionStatus, ToolStatus, TurnOutcome};

/// Bumped whenever a frame changes incompatibly; runners announce it in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame a client may send over its WebSocket.
pub const MAX_CLIENT_FRAME_BYTES: usize = 256 * 1024;
/// Largest frame a runner may send (a batch of events, tool output included).
pub const MAX_RUNNER_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// Largest prompt text accepted, over HTTP or WebSocket.
pub const MAX_PROMPT_BYTES: usize = 128 * 1024;
/// Largest page of history returned at once, and the batch size of a replay.
pub const MAX_PAGE_EVENTS: usize = 1000;
