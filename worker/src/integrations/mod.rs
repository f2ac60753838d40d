//! Third parties the platform talks to, each behind a configurable base URL.

pub mod github_sign_in;
pub mod slack;
