//! One module per screen.

pub mod join;
pub mod new_session;
pub mod session;
pub mod sessions;
pub mod settings;
pub mod sign_in;
pub mod slack_link;
pub mod workflow;
pub mod workflows;
