//! Workflows: saved ways of starting a session (`api`), what starts them (`triggers`: a signed
//! webhook delivered to `hooks`, a schedule fired by the `scheduler`, or a person), and their
//! runs (`runs`), each of which is a session of the workflow's owner.

pub mod api;
pub mod hooks;
pub mod runs;
pub mod scheduler;
pub mod settings;
pub mod triggers;
