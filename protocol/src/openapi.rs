//! The OpenAPI document, written from the route table and the body types' JSON Schemas, so it
//! cannot drift from what the Worker serves. It is written natively (`make openapi`) and
//! committed as `worker/openapi.json`, which the Worker serves; a test fails when the two differ.

use std::any::TypeId;
use std::collections::BTreeMap;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

use crate::access::Need;
use crate::api::{NoBody, NoContent, NotJson, CREDENTIAL_KINDS};
use crate::errors::{ApiError, ErrorCode};
use crate::routes::{each_endpoint, Endpoint, EndpointVisitor};

fn requirement(need: Need) -> (Value, String) {
    match need {
        Need::Public => (json!([]), "nothing: it is public".into()),
        Need::Runner => (
            json!([{"runnerToken": []}]),
            "the session's runner token".into(),
        ),
        Need::Gateway => (
            json!([{"panelCookie": []}]),
            "the session's own sandbox origin (`SANDBOX_ORIGIN`) and the panel cookie its gateway traded a panel token for".into(),
        ),
        Need::Slack => (
            json!([{"slackSignature": []}]),
            "Slack's signature (`X-Slack-Signature`, `X-Slack-Request-Timestamp`)".into(),
        ),
        Need::Webhook => (
            json!([{"webhookSignature": []}, {"bearer": ["workflows:run"]}]),
            "the trigger's scheme: `X-Signature-256` or GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body under the trigger's secret), Slack's v0 signature, or an API key of the workflow's owner with `workflows:run`".into(),
        ),
        Need::Scope(s) => (
            json!([{"bearer": [s.as_str()]}, {"cookie": [s.as_str()]}]),
            format!("scope `{}`", s.as_str()),
        ),
        Need::Session(s, role) => {
            let role = role.as_str();
            (
                json!([{"bearer": [s.as_str()]}, {"cookie": [s.as_str()]}]),
                format!(
                    "scope `{}` and at least the {role} role on the session",
                    s.as_str()
                ),
            )
        }
    }
}

fn is<T: 'static, U: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<U>()
}

/// The error statuses and, for each, the codes it is answered with.
fn error_statuses() -> BTreeMap<u16, Vec<&'static str>> {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for code in ErrorCode::ALL {
        by_status
            .entry(code.http_status())
            .or_default()
            .push(code.as_str());
    }
    by_status
}

struct Writer {
    generator: SchemaGenerator,
    paths: Map<String, Value>,
}

impl Writer {
    fn body<T: crate::routes::Body>(&mut self) -> Option<Value> {
        if is::<T, NoBody>() || is::<T, NoContent>() {
            return None;
        }
        if is::<T, NotJson>() {
            return Some(json!({"*/*": {}}));
        }
        let schema = self.generator.subschema_for::<T>();
        Some(json!({"application/json": {"schema": schema}}))
    }

    fn query<T: crate::routes::Body>(&mut self) -> Vec<Value> {
        if is::<T, NoBody>() {
            return Vec::new();
        }
        let schema = self.generator.root_schema_for::<T>().to_value();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        schema["properties"]
            .as_object()
            .map(|props| {
                props
                    .iter()
                    .map(|(name, s)| {
                        let mut s = s.clone();
                        let description = s.as_object_mut().and_then(|o| o.remove("description"));
                        let mut parameter = json!({"name": name, "in": "query",
                            "required": required.contains(&name.as_str()), "schema": s});
                        if let Some(d) = description {
                            parameter["description"] = d;
                        }
                        parameter
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl EndpointVisitor for Writer {
    fn visit<E: Endpoint>(&mut self) {
        let id = E::ROUTE;
        let spec = id.spec();
        let (security, needs) = requirement(spec.need);
        let path = spec.doc_path();
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_parameter(name)}))
            .collect();
        parameters.extend(self.query::<E::Query>());
        let mut responses = Map::new();
        let answer = self.body::<E::Resp>();
        for status in spec.statuses {
            let mut response = json!({"description": reason(*status)});
            match (status, &answer) {
                // A redirect and an upgrade carry no body.
                (302, _) => {
                    response["headers"] = json!({"Location": {"schema": {"type": "string"}}})
                }
                (101, _) | (_, None) => {}
                (_, Some(content)) => response["content"] = content.clone(),
            }
            responses.insert(status.to_string(), response);
        }
        for (status, codes) in error_statuses() {
            let codes = codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>();
            responses.insert(
                status.to_string(),
                json!({"description": format!("One of {}.", codes.join(", ")),
                       "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/Error{status}")}}}}),
            );
        }
        let mut operation = json!({
            "operationId": format!("{id:?}"),
            "description": format!("Requires {needs}."),
            "parameters": parameters,
            "security": security,
            "responses": responses,
        });
        if let Some(content) = self.body::<E::Req>() {
            operation["requestBody"] = json!({"required": true, "content": content});
        }
        let entry = self.paths.entry(path).or_insert_with(|| json!({}));
        entry[spec.method.to_ascii_lowercase()] = operation;
    }
}

/// What a path parameter can be: a session's id is 32 hex digits, a credential kind one of the
/// known ones.
fn path_parameter(name: &str) -> Value {
    match name {
        "id" | "prompt_id" | "link_id" => json!({"type": "string", "pattern": "^[0-9a-f]{32}$"}),
        "kind" => json!({"type": "string", "enum": CREDENTIAL_KINDS}),
        "login" => json!({"type": "string", "pattern": "^[A-Za-z0-9-]{1,39}$"}),
        _ => json!({"type": "string"}),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols: the WebSocket is open.",
        200 => "OK.",
        201 => "Created.",
        202 => "Accepted: it happens next, in order.",
        204 => "No Content.",
        302 => "Found: the browser is sent on.",
        _ => "Success.",
    }
}

pub fn document(version: &str) -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut writer = Writer {
        generator: settings.into_generator(),
        paths: Map::new(),
    };
    each_endpoint(&mut writer);
    let error = writer.generator.subschema_for::<ApiError>();
    let mut schemas = writer.generator.take_definitions(true);
    for (status, codes) in error_statuses() {
        schemas.insert(
            format!("Error{status}"),
            json!({"allOf": [error, {"properties": {"code": {"enum": codes}}}]}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Agent Ops",
            "version": version,
            "description": "Every error is `{\"code\", \"message\"}`: a stable code (never renamed) and a sentence."
        },
        "paths": writer.paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A login session (`aos_`), an API key (`aok_`) or the bootstrap admin key."},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "__Host-aops_session",
                           "description": "The web app's sign-in cookie; a state-changing request with it must come from the app's own origin."},
                "runnerToken": {"type": "http", "scheme": "bearer", "description": "A session's runner token."},
                "panelCookie": {"type": "apiKey", "in": "cookie", "name": "__Host-aops_panel",
                                "description": "Set by a sandbox's gateway, on the sandbox's own origin, in exchange for a panel token."},
                "slackSignature": {"type": "apiKey", "in": "header", "name": "X-Slack-Signature",
                                   "description": "`v0=` and the HMAC-SHA256, under the app's signing secret, of `v0:{X-Slack-Request-Timestamp}:{body}`; within 300 s."},
                "webhookSignature": {"type": "apiKey", "in": "header", "name": "X-Signature-256",
                                     "description": "`sha256=` and the hex HMAC-SHA256 of the raw body under the trigger's secret (GitHub's scheme sends it as `X-Hub-Signature-256`)."}
            },
            "schemas": schemas
        }
    })
}

/// The committed document's text, as `make openapi` writes it.
pub fn document_text(version: &str) -> String {
    let mut text = serde_json::to_string_pretty(&document(version)).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteId;

    #[test]
    fn every_route_is_documented_with_its_requirement_and_bodies() {
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
            assert!(
                op["responses"]["404"]["content"].is_object(),
                "{}",
                spec.path
            );
        }
        let post = &doc["paths"]["/api/sessions/{id}/prompts"]["post"];
        assert_eq!(post["parameters"][0]["name"], "id");
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/PostPrompt"
        );
        assert_eq!(
            post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/PromptAccepted"
        );
        let events = &doc["paths"]["/api/sessions/{id}/events"]["get"]["parameters"];
        assert_eq!(events[1]["name"], "after_seq");
        assert!(doc["components"]["schemas"]["SessionInfo"]["properties"]["status"].is_object());
        let conflict = &doc["components"]["schemas"]["Error409"]["allOf"][1];
        assert!(conflict["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("limit_exceeded")));
    }
}
