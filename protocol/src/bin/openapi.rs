//! Writes the OpenAPI document to stdout (`make openapi` commits it as `worker/openapi.json`).

fn main() {
    print!(
        "{}",
        agent_ops_protocol::openapi::document_text(env!("CARGO_PKG_VERSION"))
    );
}
