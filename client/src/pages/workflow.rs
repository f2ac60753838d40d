//! One workflow: run it, enable or disable it, set up its triggers (a webhook's URL, its secret
//! shown this once and a `curl` that delivers a signed sample; a schedule with its next five
//! runs in its time zone), and its executions with their sessions and reasons, kept current.

use std::time::Duration;

use agent_ops_protocol::api::{
    Execution, ExecutionStatus, PreviewRequest, RunWorkflow, Trigger, TriggerCreated, TriggerSpec,
    WebhookScheme, Workflow,
};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use wasm_bindgen::JsCast;

use crate::api;
use crate::components::{ago, run, CopyField, ErrorBanner};

const REFRESH: Duration = Duration::from_secs(3);
const SAMPLE: &str = r#"{"issue": {"number": 7, "title": "Crash on start"}}"#;

/// A time as the browser writes it in `timezone` (a schedule's runs, in the schedule's zone).
fn time_in(ms: u64, timezone: &str) -> String {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"timeZone".into(), &timezone.into());
    let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into());
    let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    // Called so that a zone the browser does not know is an error here, not a thrown one.
    js_sys::Reflect::get(&date, &"toLocaleString".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call2(&date, &"en-GB".into(), &options).ok())
        .and_then(|v| v.as_string())
        .map(|t| format!("{t} ({timezone})"))
        .unwrap_or_else(|| String::from(date.to_iso_string()))
}

/// A shell command that delivers `SAMPLE` to the new trigger as its sender would.
fn curl(created: &TriggerCreated) -> Option<String> {
    let url = created.trigger.url.clone()?;
    let TriggerSpec::Webhook { scheme, .. } = &created.trigger.spec else {
        return None;
    };
    let sign = |header: &str, secret: &str| {
        format!(
            "-H \"{header}: sha256=$(printf '%s' \"$body\" | openssl dgst -sha256 -hmac '{secret}' | sed 's/^.* //')\""
        )
    };
    let auth = match (scheme, &created.secret) {
        (WebhookScheme::HmacSha256, Some(s)) => sign("X-Signature-256", s),
        (WebhookScheme::Github, Some(s)) => format!(
            "{} -H 'X-GitHub-Event: issues' -H \"X-GitHub-Delivery: $(date +%s%N)\"",
            sign("X-Hub-Signature-256", s)
        ),
        (WebhookScheme::Bearer, _) => {
            "-H 'Authorization: Bearer <an API key with workflows:run>'".into()
        }
        _ => return None,
    };
    Some(format!(
        "body='{SAMPLE}'; curl -sS -X POST '{url}' {auth} -H \"Idempotency-Key: $(date +%s%N)\" -d \"$body\""
    ))
}

fn status_class(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Succeeded => "badge ok",
        ExecutionStatus::Failed => "badge bad",
        ExecutionStatus::Running | ExecutionStatus::Queued => "badge live",
        ExecutionStatus::Skipped | ExecutionStatus::Cancelled => "badge",
    }
}

#[component]
pub fn WorkflowView() -> impl IntoView {
    let params = use_params_map();
    let id = params.with_untracked(|p| p.get("id").unwrap_or_default());
    let workflow = RwSignal::new(None::<Workflow>);
    let triggers = RwSignal::new(Vec::<Trigger>::new());
    let executions = RwSignal::new(Vec::<Execution>::new());
    let error = RwSignal::new(None::<ApiError>);
    let load = {
        let id = id.clone();
        move || {
            let id = id.clone();
            run(error, async move {
                let params = [id.as_str()];
                let (w, t, e) = futures::join!(
                    api::fetch::<endpoint::GetWorkflow>(&params),
                    api::fetch::<endpoint::ListTriggers>(&params),
                    api::fetch::<endpoint::ListExecutions>(&params),
                );
                workflow.set(Some(w?));
                triggers.set(t?.triggers);
                executions.set(e?.executions);
                Ok(())
            })
        }
    };
    load();
    if let Ok(handle) = set_interval_with_handle(load.clone(), REFRESH) {
        on_cleanup(move || handle.clear());
    }
    let run_now = {
        let (id, load) = (id.clone(), load.clone());
        move |_| {
            let (id, load) = (id.clone(), load.clone());
            run(error, async move {
                api::call::<endpoint::RunWorkflow>(&[&id], &RunWorkflow::default()).await?;
                load();
                Ok(())
            })
        }
    };
    let toggle = {
        let (id, load) = (id.clone(), load.clone());
        move |_| {
            let Some(mut spec) = workflow.get_untracked().map(|w| w.spec) else {
                return;
            };
            spec.enabled = !spec.enabled;
            let (id, load) = (id.clone(), load.clone());
            run(error, async move {
                api::call::<endpoint::UpdateWorkflow>(&[&id], &spec).await?;
                load();
                Ok(())
            })
        }
    };
    view! {
        <main class="page">
            <ErrorBanner error=error/>
            {move || workflow.get().map(|w| view! {
                <div class="page-head">
                    <h1 data-test="workflow-name">{w.spec.name.clone()}</h1>
                </div>
                <section class="card">
                    <pre class="preview">{w.spec.template.prompt.clone()}</pre>
                    <p class="muted">
                        {w.spec.concurrency.as_str()} " · "
                        {if w.spec.enabled { "enabled" } else { "disabled" }}
                        {w.paused_reason.clone().map(|r| format!(" · {r}"))}
                    </p>
                </section>
            })}
            <div class="actions">
                <button class="primary" on:click=run_now data-test="workflow-run">"Run now"</button>
                <button class="ghost" on:click=toggle data-test="workflow-toggle">
                    {move || if workflow.get().is_some_and(|w| w.spec.enabled) { "Disable" } else { "Enable" }}
                </button>
            </div>
            <Triggers id=id.clone() triggers=triggers on_change=load.clone()/>
            <section class="card">
                <h2>"Executions"</h2>
                <ul class="session-list" data-test="executions">
                    {move || executions.get().into_iter().map(|e| view! {
                        <li class="session-row" data-execution=e.id.clone() data-status=e.status.as_str()>
                            <div class="main">
                                <span class="title">{e.trigger_kind.as_str()} {e.catch_up.then_some(" (catch-up)")}</span>
                                <span class="meta">{e.reason.clone().unwrap_or_default()}</span>
                            </div>
                            {e.session_id.clone().map(|s| view! {
                                <A href=format!("/sessions/{s}") attr:data-test="execution-session">"session"</A>
                            })}
                            <span class="when">{ago(e.created_at)}</span>
                            <span class=status_class(e.status)>{e.status.as_str()}</span>
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        </main>
    }
}

#[component]
fn Triggers(
    id: String,
    triggers: RwSignal<Vec<Trigger>>,
    on_change: impl Fn() + Clone + 'static,
) -> impl IntoView {
    let error = RwSignal::new(None::<ApiError>);
    let created = RwSignal::new(None::<TriggerCreated>);
    let scheme = RwSignal::new("hmac-sha256".to_owned());
    let cron = RwSignal::new("0 9 * * 1-5".to_owned());
    let timezone = RwSignal::new("UTC".to_owned());
    let next = RwSignal::new(Vec::<u64>::new());
    let cron_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let body = PreviewRequest {
            cron: Some(cron.get()),
            timezone: Some(timezone.get()),
            ..PreviewRequest::default()
        };
        run(error, async move {
            let p = api::call::<endpoint::PreviewWorkflow>(&[], &body).await?;
            next.set(p.next_runs);
            cron_error.set(p.error);
            Ok(())
        });
    });
    let add = {
        let (id, on_change) = (id.clone(), on_change.clone());
        move |spec: TriggerSpec| {
            let (id, on_change) = (id.clone(), on_change.clone());
            run(error, async move {
                let made = api::call::<endpoint::CreateTrigger>(&[&id], &spec).await?;
                created.set(Some(made));
                on_change();
                Ok(())
            })
        }
    };
    let add_hook = {
        let add = add.clone();
        move |_| {
            let scheme = match scheme.get_untracked().as_str() {
                "github" => WebhookScheme::Github,
                "bearer" => WebhookScheme::Bearer,
                _ => WebhookScheme::HmacSha256,
            };
            add(TriggerSpec::Webhook {
                scheme,
                filters: Vec::new(),
                idempotency: None,
                headers: Vec::new(),
            })
        }
    };
    let add_schedule = move |_| {
        add(TriggerSpec::Schedule {
            cron: cron.get_untracked(),
            timezone: timezone.get_untracked(),
        })
    };
    view! {
        <section class="card">
            <h2>"Triggers"</h2>
            <ul class="session-list">
                {move || triggers.get().into_iter().map(|t| {
                    let what = match &t.spec {
                        TriggerSpec::Webhook { scheme, .. } => format!("webhook ({})", scheme.as_str()),
                        TriggerSpec::Schedule { cron, timezone } => format!("schedule {cron} ({timezone})"),
                    };
                    let zone = match &t.spec {
                        TriggerSpec::Schedule { timezone, .. } => timezone.clone(),
                        TriggerSpec::Webhook { .. } => "UTC".into(),
                    };
                    view! {
                        <li class="session-row">
                            <div class="main">
                                <span class="title">{what}</span>
                                <span class="meta">{t.url.clone().unwrap_or_else(|| t.next_runs.first().map(|n| format!("next: {}", time_in(*n, &zone))).unwrap_or_default())}</span>
                            </div>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {move || created.get().map(|c| view! {
                <div class="notice" data-test="trigger-created">
                    {c.trigger.url.clone().map(|u| view! { <p>"Deliver to:"</p><CopyField value=u test="trigger-url"/> })}
                    {c.secret.clone().map(|s| view! { <p>"Its secret, shown this once:"</p><CopyField value=s test="trigger-secret"/> })}
                    {curl(&c).map(|cmd| view! { <p>"Try it:"</p><pre class="preview" data-test="trigger-curl">{cmd}</pre> })}
                    <button class="ghost" on:click=move |_| created.set(None)>"Done"</button>
                </div>
            })}
            <div class="grid2">
                <div>
                    <label for="hook-scheme">"Webhook, signed by"</label>
                    <select id="hook-scheme" on:change=move |ev| scheme.set(event_target_value(&ev))>
                        <option value="hmac-sha256" selected=true>"X-Signature-256 (HMAC-SHA256)"</option>
                        <option value="github">"GitHub"</option>
                        <option value="bearer">"an API key (bearer)"</option>
                    </select>
                    <button class="primary" type="button" on:click=add_hook data-test="add-webhook">"Add webhook"</button>
                </div>
                <div>
                    <label for="cron">"Schedule (cron, time zone)"</label>
                    <input id="cron" bind:value=cron/>
                    <input id="timezone" bind:value=timezone/>
                    <p class="muted" data-test="next-runs">
                        {move || cron_error.get().unwrap_or_else(|| {
                            let zone = timezone.get();
                            next.get().into_iter().map(|n| time_in(n, &zone)).collect::<Vec<_>>().join(", ")
                        })}
                    </p>
                    <button class="primary" type="button" on:click=add_schedule>"Add schedule"</button>
                </div>
            </div>
            <ErrorBanner error=error/>
        </section>
    }
}
