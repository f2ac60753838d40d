//! The HTTP edge: every request comes in through `dispatch`, which matches the route table,
//! rate-limits, authenticates and authorizes before any handler runs.

pub mod auth;
pub mod config;
pub mod dispatch;
pub mod http;
pub mod oauth_state;
pub mod origins;
pub mod rate_limit;
