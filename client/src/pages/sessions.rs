//! The sessions list. Status badges stay current by polling the index every few seconds while
//! the page is open (cheap: one D1 query), so nobody reloads to see a session finish.

use std::time::Duration;

use agent_ops_protocol::api::SessionInfo;
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::components::{ago, run, ErrorBanner, StatusBadge};

const REFRESH: Duration = Duration::from_secs(3);

pub fn title_of(s: &SessionInfo) -> String {
    s.title
        .clone()
        .or_else(|| s.repo.clone())
        .unwrap_or_else(|| format!("Session {}", &s.id[..8]))
}

#[component]
pub fn Sessions() -> impl IntoView {
    let sessions = RwSignal::new(None::<Vec<SessionInfo>>);
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        run(error, async move {
            let list = api::fetch::<endpoint::ListSessions>(&[]).await?;
            sessions.set(Some(list.sessions));
            Ok(())
        })
    };
    load();
    if let Ok(handle) = set_interval_with_handle(load, REFRESH) {
        on_cleanup(move || handle.clear());
    }
    view! {
        <main class="page">
            <div class="page-head">
                <h1>"Sessions"</h1>
                <A href="/new" attr:class="button primary">"New session"</A>
            </div>
            <ErrorBanner error=error/>
            {move || match sessions.get() {
                None => view! { <p class="muted">"Loading sessions…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! {
                    <div class="empty">
                        <h2>"No sessions yet"</h2>
                        <p>"Describe a task and an agent starts on it in its own sandbox."</p>
                        <A href="/new" attr:class="button primary">"Start a session"</A>
                    </div>
                }.into_any(),
                Some(list) => view! {
                    <ul class="session-list" data-test="sessions">
                        {list.into_iter().map(|s| {
                            let status = s.status;
                            let href = format!("/sessions/{}", s.id);
                            let title = title_of(&s);
                            let sid = s.id.clone();
                            view! {
                                <li>
                                    <A href=href attr:class="session-row" attr:data-session=sid>
                                        <div class="main">
                                            <span class="title">{title}</span>
                                            <span class="meta">
                                                {s.repo.clone().unwrap_or_else(|| "no repository".into())}
                                                {s.branch.clone().map(|b| format!(" @ {b}"))}
                                                " · " {s.agent.as_str()} " · " {s.model.clone()}
                                            </span>
                                        </div>
                                        <span class="when">{ago(s.updated_at)}</span>
                                        <StatusBadge status=Signal::derive(move || Some(status))/>
                                    </A>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </main>
    }
}
