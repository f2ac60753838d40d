//! Workflows: the list, and a new one's editor. The prompt template is previewed against a
//! sample payload as it is typed (the Worker renders it, with the same engine its runs use), and
//! the variables it may read are listed beside it.

use agent_ops_protocol::api::{
    Concurrency, Preview, PreviewRequest, SessionTemplate, Workflow, WorkflowSpec,
};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::{ago, optional, run, ErrorBanner};

#[component]
pub fn Workflows() -> impl IntoView {
    let workflows = RwSignal::new(None::<Vec<Workflow>>);
    let error = RwSignal::new(None::<ApiError>);
    run(error, async move {
        let list = api::fetch::<endpoint::ListWorkflows>(&[]).await?;
        workflows.set(Some(list.workflows));
        Ok(())
    });
    view! {
        <main class="page">
            <div class="page-head">
                <h1>"Workflows"</h1>
            </div>
            <ErrorBanner error=error/>
            {move || match workflows.get() {
                None => view! { <p class="muted">"Loading workflows…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! {
                    <p class="muted">"No workflows yet: a workflow starts a session when a webhook arrives, on a schedule, or when you run it."</p>
                }.into_any(),
                Some(list) => view! {
                    <ul class="session-list" data-test="workflows">
                        {list.into_iter().map(|w| {
                            let href = format!("/workflows/{}", w.id);
                            let state = match (&w.paused_reason, w.spec.enabled) {
                                (Some(_), _) => "paused",
                                (None, true) => "enabled",
                                (None, false) => "disabled",
                            };
                            view! {
                                <li>
                                    <A href=href attr:class="session-row" attr:data-workflow=w.id.clone()>
                                        <div class="main">
                                            <span class="title">{w.spec.name.clone()}</span>
                                            <span class="meta">{w.spec.concurrency.as_str()} " · " {state}</span>
                                        </div>
                                        <span class="when">{ago(w.updated_at)}</span>
                                    </A>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
            <NewWorkflow/>
        </main>
    }
}

#[component]
fn NewWorkflow() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let prompt = RwSignal::new(
        "Triage issue #{{ payload.issue.number }}: {{ payload.issue.title }}".to_owned(),
    );
    let repo = RwSignal::new(String::new());
    let sample = RwSignal::new(r#"{"issue": {"number": 7, "title": "Crash on start"}}"#.to_owned());
    let concurrency = RwSignal::new("skip".to_owned());
    let preview = RwSignal::new(None::<Preview>);
    let error = RwSignal::new(None::<ApiError>);
    let preview_error = RwSignal::new(None::<ApiError>);
    let navigate = use_navigate();
    Effect::new(move |_| {
        let template = prompt.get();
        let payload = serde_json::from_str(&sample.get()).unwrap_or_default();
        run(preview_error, async move {
            let body = PreviewRequest {
                template: Some(template),
                payload,
                cron: None,
                timezone: None,
            };
            preview.set(Some(
                api::call::<endpoint::PreviewWorkflow>(&[], &body).await?,
            ));
            Ok(())
        });
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let spec = WorkflowSpec {
            name: name.get_untracked(),
            enabled: true,
            template: SessionTemplate {
                prompt: prompt.get_untracked(),
                title: None,
                repo: optional(repo.get_untracked()),
                branch: None,
                agent: None,
                model: None,
            },
            concurrency: match concurrency.get_untracked().as_str() {
                "allow" => Concurrency::Allow,
                "queue" => Concurrency::Queue,
                _ => Concurrency::Skip,
            },
            max_runs_per_hour: None,
            pause_after_failures: 3,
        };
        let navigate = navigate.clone();
        run(error, async move {
            let made = api::call::<endpoint::CreateWorkflow>(&[], &spec).await?;
            navigate(&format!("/workflows/{}", made.id), Default::default());
            Ok(())
        });
    };
    view! {
        <form class="card form" on:submit=submit data-test="new-workflow">
            <h2>"New workflow"</h2>
            <div class="grid2">
                <div>
                    <label for="wf-name">"Name"</label>
                    <input id="wf-name" required=true bind:value=name/>
                </div>
                <div>
                    <label for="wf-repo">"Repository"</label>
                    <input id="wf-repo" placeholder="owner/name (optional)" bind:value=repo/>
                </div>
            </div>
            <label for="wf-prompt">"Prompt template"</label>
            <textarea id="wf-prompt" rows="5" bind:value=prompt></textarea>
            <p class="muted">
                "It may read: "
                {move || preview.get().map(|p| p.variables.join(", ")).unwrap_or_default()}
            </p>
            <label for="wf-sample">"Sample payload (JSON)"</label>
            <textarea id="wf-sample" rows="3" bind:value=sample></textarea>
            <label>"The agent would get"</label>
            <pre class="preview" data-test="wf-preview">
                {move || preview.get().map(|p| p.rendered.or(p.error).unwrap_or_default())}
            </pre>
            <ErrorBanner error=preview_error/>
            <label for="wf-concurrency">"While a run goes"</label>
            <select id="wf-concurrency" on:change=move |ev| concurrency.set(event_target_value(&ev))>
                <option value="skip" selected=true>"skip new ones"</option>
                <option value="queue">"queue them"</option>
                <option value="allow">"run them too"</option>
            </select>
            <ErrorBanner error=error/>
            <div class="actions">
                <button class="primary" type="submit" data-test="wf-create">"Create workflow"</button>
            </div>
        </form>
    }
}
