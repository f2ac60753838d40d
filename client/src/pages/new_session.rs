//! New session: repository and branch, agent, model and the task.

use agent_ops_protocol::api::{AgentKind, CreateSession};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::{optional, run, ErrorBanner};

#[component]
pub fn NewSession() -> impl IntoView {
    let repo = RwSignal::new(String::new());
    let branch = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let task = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let prompt = optional(task.get_untracked());
        let body = CreateSession {
            title: prompt
                .as_deref()
                .map(|p| p.lines().next().unwrap_or(p).chars().take(80).collect()),
            repo: optional(repo.get_untracked()),
            branch: optional(branch.get_untracked()),
            prompt,
            agent: Some(AgentKind::Opencode),
            model: optional(model.get_untracked()),
        };
        let navigate = navigate.clone();
        busy.set(true);
        run(error, async move {
            let created = api::call::<endpoint::CreateSession>(&[], &body).await;
            busy.set(false);
            navigate(&format!("/sessions/{}", created?.id), Default::default());
            Ok(())
        });
    };
    view! {
        <main class="page narrow">
            <h1>"New session"</h1>
            <form class="card form" on:submit=submit>
                <label for="task">"Task"</label>
                <textarea id="task" name="task" rows="6" required=true
                    placeholder="What should the agent do? e.g. Add a --json flag to the CLI and test it."
                    bind:value=task></textarea>
                <div class="grid2">
                    <div>
                        <label for="repo">"Repository"</label>
                        <input id="repo" name="repo" placeholder="owner/name or a git URL (optional)" bind:value=repo/>
                    </div>
                    <div>
                        <label for="branch">"Branch"</label>
                        <input id="branch" name="branch" placeholder="default branch" bind:value=branch/>
                    </div>
                    <div>
                        <label for="agent">"Agent"</label>
                        <select id="agent" name="agent">
                            <option value="opencode" selected=true>"OpenCode"</option>
                            <option value="codex" disabled=true>"Codex (not available yet)"</option>
                            <option value="claude_code" disabled=true>"Claude Code (not available yet)"</option>
                        </select>
                    </div>
                    <div>
                        <label for="model">"Model"</label>
                        <input id="model" name="model" placeholder="platform default (provider/model)" bind:value=model/>
                    </div>
                </div>
                <ErrorBanner error=error/>
                <div class="actions">
                    <button class="primary" type="submit" disabled=move || busy.get()>
                        {move || if busy.get() { "Starting…" } else { "Start session" }}
                    </button>
                </div>
            </form>
        </main>
    }
}
