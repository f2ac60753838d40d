//! What crosses between the platform and a sandbox: the provider that starts and stops
//! sandboxes, the proxy to a sandbox's gateway, and the agent's model calls.

pub mod gateway_proxy;
pub mod model_proxy;
pub mod model_usage;
pub mod provider;
