//! The REST API, one module per resource. Each handler reads its route's typed body and answers
//! with its route's typed answer (`agent_ops_protocol::routes::endpoint`), and fails through `?`.

pub mod accounts;
pub mod audit;
pub mod credentials;
mod grant;
pub mod invites;
pub mod keys;
pub mod members;
pub mod panels;
pub mod prompts;
pub mod sessions;
pub mod share_links;
pub mod streams;
