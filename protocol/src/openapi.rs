//! The OpenAPI document, generated from the route table, so it cannot drift from what the worker
//! serves: every route with its method, path parameters and what it requires.

use serde_json::{json, Map, Value};

use crate::access::{Need, Scope, SessionRole};
use crate::routes::RouteId;

fn scope_name(s: Scope) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn requirement(need: Need) -> (Value, String) {
    match need {
        Need::Public => (json!([]), "public".into()),
        Need::Runner => (
            json!([{"runnerToken": []}]),
            "the session's runner token".into(),
        ),
        Need::Gateway => (
            json!([{"panelCookie": []}]),
            "the session's own sandbox origin (`SANDBOX_ORIGIN`) and the panel cookie its gateway traded a panel token for".into(),
        ),
        Need::Scope(s) => (
            json!([{"bearer": [scope_name(s)]}]),
            format!("scope `{}`", scope_name(s)),
        ),
        Need::Session(s, role) => {
            let role = match role {
                SessionRole::Viewer => "viewer",
                SessionRole::Collaborator => "collaborator",
                SessionRole::Owner => "owner",
            };
            (
                json!([{"bearer": [scope_name(s)]}]),
                format!(
                    "scope `{}` and at least the {role} role on the session",
                    scope_name(s)
                ),
            )
        }
    }
}

pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for id in RouteId::ALL {
        let spec = id.spec();
        let (security, needs) = requirement(spec.need);
        let path = spec.doc_path();
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let operation = json!({
            "operationId": format!("{id:?}"),
            "description": format!("Requires {needs}."),
            "parameters": parameters,
            "security": security,
            "responses": {
                "default": {"description": "On error: `{\"code\", \"message\"}` with a stable code.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[spec.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Agent Ops", "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A login session (`aos_`), an API key (`aok_`) or the bootstrap admin key."},
                "runnerToken": {"type": "http", "scheme": "bearer", "description": "A session's runner token."},
                "panelCookie": {"type": "apiKey", "in": "cookie", "name": "__Host-aops_panel",
                                "description": "Set by a sandbox's gateway, on the sandbox's own origin, in exchange for a panel token."}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"],
                          "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_requirement() {
        let doc = document("test");
        for id in RouteId::ALL {
            let spec = id.spec();
            let op = &doc["paths"][spec.doc_path()][spec.method.to_ascii_lowercase()];
            assert_eq!(op["operationId"], format!("{id:?}"), "{}", spec.path);
            let public = matches!(spec.need, Need::Public);
            assert_eq!(
                op["security"].as_array().unwrap().is_empty(),
                public,
                "{}",
                spec.path
            );
        }
        let params = &doc["paths"]["/api/sessions/{id}/prompts"]["post"]["parameters"];
        assert_eq!(params[0]["name"], "id");
    }
}
