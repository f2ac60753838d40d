//! `POST /hooks/{trigger}`: a workflow's webhook. The body is read with a cap, the sender is
//! checked by the trigger's scheme before anything of the payload is used, and the delivery is
//! answered `202` once its run is committed (`200` with the same run when it came before); the
//! run starts after the answer, so a sender is never kept waiting for a sandbox.

use agent_ops_protocol::access::{OrgRole, Scope};
use agent_ops_protocol::api::{
    ExecutionAccepted, ExecutionStatus, TriggerKind, TriggerSpec, WebhookScheme,
};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::workflows::hooks::{self, MAX_BODY_BYTES};
use agent_ops_protocol::{ApiError, ErrorCode};
use serde_json::{Map, Value};
use worker::{Context, Env, Request};

use super::runs::{self, Start};
use super::triggers::SECRET_KIND;
use crate::db::{workflow_triggers, workflows, Db};
use crate::edge::auth;
use crate::edge::http::{after_answer, answer_with, now_ms, Handled};
use crate::vault;

fn unknown(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no webhook trigger {id}"))
}

pub async fn deliver(mut req: Request, env: &Env, ctx: &Context, trigger_id: &str) -> Handled {
    let db = Db::of(env)?;
    let (body, found) = futures::join!(req.bytes(), workflow_triggers::webhook(&db, trigger_id));
    let body =
        body.map_err(|_| ApiError::new(ErrorCode::InvalidBody, "the body could not be read"))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("a webhook's body is at most {MAX_BODY_BYTES} bytes"),
        )
        .into());
    }
    let target = found?.ok_or_else(|| unknown(trigger_id))?;
    let Some(TriggerSpec::Webhook {
        scheme,
        filters,
        idempotency,
        headers: readable,
    }) = target.spec
    else {
        return Err(unknown(trigger_id).into());
    };
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let now = now_ms();
    match scheme {
        WebhookScheme::Bearer => check_bearer(&req, env, &target.owner_id).await?,
        scheme => {
            let owner = format!("trigger:{}", target.id);
            let secret = vault::open_stored(env, &owner, SECRET_KIND)
                .await?
                .ok_or_else(|| unknown(trigger_id))?;
            hooks::verify(scheme, &secret, header, &body, now / 1000)?;
        }
    }
    if !target.enabled {
        return Err(ApiError::new(
            ErrorCode::WorkflowDisabled,
            "this trigger's workflow is disabled; nothing was started",
        )
        .into());
    }
    let needs_json = !filters.is_empty()
        || matches!(
            idempotency,
            Some(agent_ops_protocol::api::IdempotencySource::Pointer { .. })
        );
    let payload = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v,
        Err(e) if needs_json => {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("this trigger reads the body as JSON, and it is not: {e}"),
            )
            .into())
        }
        Err(_) if body.is_empty() => Value::Null,
        Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
    };
    let key = hooks::idempotency_key(scheme, idempotency.as_ref(), header, Some(&payload))?;
    let headers: Map<String, Value> = readable
        .iter()
        .filter_map(|name| header(name).map(|v| (name.clone(), Value::String(v))))
        .collect();
    let wf = workflows::by_id(&db, &target.workflow_id)
        .await?
        .ok_or_else(|| unknown(trigger_id))?;
    let start = Start {
        trigger_id: Some(&target.id),
        kind: TriggerKind::Webhook,
        key,
        skipped: hooks::mismatch(&filters, &payload).map(|why| format!("filtered out: {why}")),
        payload,
        headers,
        inputs: Map::new(),
        scheduled_for: None,
        catch_up: false,
    };
    let (run, made) = runs::make(&db, &wf, start, now).await?;
    if made && run.status == ExecutionStatus::Queued {
        let (env, run) = (env.clone(), run.clone());
        after_answer(ctx, async move {
            if let Err(e) = runs::advance(&env, &run).await {
                worker::console_error!("run {}: {e:?}", run.id);
            }
        });
    }
    answer_with::<endpoint::WebhookDelivery>(
        if made { 202 } else { 200 },
        &ExecutionAccepted {
            execution_id: run.id,
            status: run.status,
        },
    )
}

/// A `bearer` delivery carries an API key (never the sign-in cookie, which a browser would
/// attach by itself) of the workflow's owner, or of an administrator, with `workflows:run`.
async fn check_bearer(req: &Request, env: &Env, owner_id: &str) -> Handled<()> {
    if auth::bearer_token(req).is_none() {
        return Err(ApiError::new(
            ErrorCode::BadSignature,
            "this trigger's deliveries carry Authorization: Bearer <API key with workflows:run>",
        )
        .into());
    }
    let who = auth::authenticate(req, env)
        .await
        .map_err(|e| match e.code {
            ErrorCode::Unauthorized => ApiError::new(ErrorCode::BadSignature, e.message),
            _ => e,
        })?
        .ok_or_else(|| ApiError::new(ErrorCode::BadSignature, "the key is not valid"))?;
    if !who.caller.scopes.contains(&Scope::WorkflowsRun) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the key lacks the `workflows:run` scope",
        )
        .into());
    }
    if who.user_id != owner_id && who.caller.role != OrgRole::Admin {
        return Err(
            ApiError::new(ErrorCode::Forbidden, "the key is not the workflow owner's").into(),
        );
    }
    Ok(())
}
