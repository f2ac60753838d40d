//! One session: the live conversation, the composer, the sandbox's start-up progress, who else is
//! watching, and the panel area.

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::api::{NewShareLink, PostPrompt, SessionInfo, DEFAULT_GRANT_TTL_SECS};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api;
use crate::components::{run, CopyField, ErrorBanner, StatusBadge};
use crate::conversation::Conversation;
use crate::pages::sessions::title_of;
use crate::panels::Panels;
use crate::stream::{self, Feed, LinkState};

#[component]
pub fn SessionView() -> impl IntoView {
    let params = use_params_map();
    let id = params.with_untracked(|p| p.get("id").unwrap_or_default());
    let info = RwSignal::new(None::<SessionInfo>);
    let error = RwSignal::new(None::<ApiError>);
    {
        let id = id.clone();
        run(error, async move {
            info.set(Some(api::fetch::<endpoint::GetSession>(&[&id]).await?));
            Ok(())
        });
    }
    let feed = stream::subscribe(id.clone());
    let role = Signal::derive(move || info.get().and_then(|i| i.your_role));
    let can_steer = Signal::derive(move || {
        matches!(
            role.get(),
            Some(SessionRole::Owner | SessionRole::Collaborator)
        )
    });
    let cancel = {
        let id = id.clone();
        Callback::new(move |prompt_id: String| {
            let id = id.clone();
            run(error, async move {
                api::fetch::<endpoint::CancelPrompt>(&[&id, &prompt_id])
                    .await
                    .map(drop)
            });
        })
    };
    let status = Signal::derive(move || {
        feed.transcript
            .with(|t| t.status)
            .or_else(|| info.get().map(|i| i.status))
    });
    let scroller = NodeRef::<html::Div>::new();
    // Follow the stream while the reader is at the bottom; leave them be when they scrolled up.
    Effect::new(move |_| {
        feed.transcript.with(|t| t.last_seq);
        if let Some(el) = scroller.get_untracked() {
            let near_bottom = el.scroll_height() - el.scroll_top() - el.client_height() < 160;
            if near_bottom {
                request_animation_frame(move || el.set_scroll_top(el.scroll_height()));
            }
        }
    });
    // On a phone the panels take the whole screen, so they are a toggle away rather than beside.
    let show_panels = RwSignal::new(false);
    view! {
        <main class="session-page" class:show-panels=move || show_panels.get()>
            <button class="panels-toggle" data-test="panels-toggle"
                on:click=move |_| show_panels.update(|s| *s = !*s)>
                {move || if show_panels.get() { "Chat" } else { "Panels" }}
            </button>
            <section class="chat">
                <Header id=id.clone() info=info feed=feed status=status role=role error=error/>
                <ErrorBanner error=error/>
                <ErrorBanner error=feed.error/>
                <Startup feed=feed/>
                <div class="transcript" data-test="transcript" node_ref=scroller>
                    <Show when=move || feed.transcript.with(|t| t.turns.is_empty())>
                        <p class="muted empty-chat">"No prompts yet."</p>
                    </Show>
                    <Conversation feed=feed can_steer=can_steer cancel=cancel/>
                </div>
                <Composer id=id.clone() feed=feed can_steer=can_steer role=role error=error/>
            </section>
            <Panels session_id=id.clone()
                panels=Signal::derive(move || info.get().map(|i| i.panels).unwrap_or_default())
                ports=Signal::derive(move || feed.transcript.with(|t| t.ports.clone()))
                role=role/>
        </main>
    }
}

#[component]
fn Header(
    id: String,
    info: RwSignal<Option<SessionInfo>>,
    feed: Feed,
    status: Signal<Option<agent_ops_protocol::events::SessionStatus>>,
    role: Signal<Option<SessionRole>>,
    error: RwSignal<Option<ApiError>>,
) -> impl IntoView {
    let share_url = RwSignal::new(None::<String>);
    let confirm_stop = RwSignal::new(false);
    let share = {
        let id = id.clone();
        move |role: SessionRole| {
            let id = id.clone();
            let body = NewShareLink {
                role,
                expires_in_secs: DEFAULT_GRANT_TTL_SECS,
                max_uses: 10,
            };
            run(error, async move {
                let link = api::call::<endpoint::CreateShareLink>(&[&id], &body).await?;
                let origin = window().location().origin().unwrap_or_default();
                share_url.set(Some(format!("{origin}/join#{}", link.token)));
                Ok(())
            });
        }
    };
    let share_viewer = {
        let share = share.clone();
        move |_| share(SessionRole::Viewer)
    };
    let share_collab = move |_| share(SessionRole::Collaborator);
    let stop = move |_| {
        if !confirm_stop.get_untracked() {
            confirm_stop.set(true);
            return;
        }
        let id = id.clone();
        run(error, async move {
            api::fetch::<endpoint::DeleteSession>(&[&id]).await?;
            confirm_stop.set(false);
            Ok(())
        });
    };
    let is_owner = move || role.get() == Some(SessionRole::Owner);
    view! {
        <header class="session-head">
            <div class="title-block">
                <h1 data-test="session-title">{move || info.get().map(|i| title_of(&i)).unwrap_or_default()}</h1>
                <span class="meta">
                    {move || info.get().map(|i| format!("{} · {} · {}",
                        i.repo.clone().map(|r| match &i.branch { Some(b) => format!("{r} @ {b}"), None => r })
                            .unwrap_or_else(|| "no repository".into()),
                        i.agent.as_str(), i.model))}
                </span>
            </div>
            <div class="head-right">
                <span class="link-state" data-test="link-state">
                    {move || match feed.link.get() {
                        LinkState::Connecting => "connecting…".to_owned(),
                        LinkState::Live => "live".to_owned(),
                        LinkState::Reconnecting { attempt } => format!("reconnecting (attempt {attempt})…"),
                    }}
                </span>
                <StatusBadge status=status/>
                <ul class="viewers" data-test="viewers" title="Watching now">
                    {move || feed.viewers.get().into_iter().map(|v| view! {
                        <li class="viewer" title=format!("{} ({:?})", v.login, v.role).to_lowercase()>
                            {v.login.chars().next().unwrap_or('?').to_uppercase().to_string()}
                        </li>
                    }).collect_view()}
                </ul>
                <Show when=is_owner>
                    <div class="menu">
                        <button class="ghost" data-test="share-viewer" on:click=share_viewer.clone()>"Share (view)"</button>
                        <button class="ghost" data-test="share-collaborator" on:click=share_collab.clone()>"Share (steer)"</button>
                        <button class="danger" data-test="terminate" on:click=stop.clone()
                            disabled=move || status.get().is_some_and(|s| s.is_terminal())>
                            {move || if confirm_stop.get() { "Confirm: terminate" } else { "Terminate" }}
                        </button>
                    </div>
                </Show>
            </div>
        </header>
        {move || share_url.get().map(|url| view! {
            <div class="share-box">
                <span>"Anyone signed in with this link joins the session (10 uses, for 7 days):"</span>
                <CopyField value=url test="share-url"/>
            </div>
        })}
    }
}

#[component]
fn Startup(feed: Feed) -> impl IntoView {
    view! {
        {move || feed.transcript.with(|t| t.startup().map(|step| {
            let detail = t.agent.as_ref().and_then(|(_, d)| d.clone());
            view! {
                <div class="startup" data-test="startup">
                    <span class="spinner"></span>
                    <strong>{step}</strong>
                    {detail.map(|d| view! { <span class="detail">{d}</span> })}
                    <ol class="steps">
                        {["Provisioning the sandbox", "Starting the agent", "Ready"].into_iter().map(|s| {
                            view! { <li class:current=move || s == step>{s}</li> }
                        }).collect_view()}
                    </ol>
                </div>
            }
        }))}
    }
}

#[component]
fn Composer(
    id: String,
    feed: Feed,
    can_steer: Signal<bool>,
    role: Signal<Option<SessionRole>>,
    error: RwSignal<Option<ApiError>>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let sending = RwSignal::new(false);
    let running = move || feed.transcript.with(|t| t.running().is_some());
    let terminated = move || {
        feed.transcript
            .with(|t| t.status.is_some_and(|s| s.is_terminal()))
    };
    let send = {
        let id = id.clone();
        move || {
            let body = text.get_untracked();
            if body.trim().is_empty() || sending.get_untracked() {
                return;
            }
            // One id per prompt: a retry after a dropped response cannot queue it twice.
            let request = PostPrompt {
                text: body,
                client_request_id: Some(api::request_id()),
            };
            let id = id.clone();
            sending.set(true);
            run(error, async move {
                let result = api::call::<endpoint::PostPrompt>(&[&id], &request).await;
                sending.set(false);
                result?;
                text.set(String::new());
                Ok(())
            });
        }
    };
    let on_key = {
        let send = send.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                ev.prevent_default();
                send();
            }
        }
    };
    let id = StoredValue::new(id);
    let abort = move |_| {
        let id = id.get_value();
        run(error, async move {
            api::fetch::<endpoint::Abort>(&[&id]).await.map(drop)
        });
    };
    view! {
        <Show
            when=move || can_steer.get()
            fallback=move || view! {
                <footer class="composer read-only" data-test="read-only">
                    {move || match role.get() {
                        Some(_) => "You are watching as a viewer: you see everything live, but only the owner and collaborators can prompt.",
                        None => "Loading your access…",
                    }}
                </footer>
            }
        >
            <footer class="composer">
                <textarea data-test="prompt" rows="2" placeholder=move || if terminated() {
                        "This session has been terminated."
                    } else {
                        "Ask the agent… (Enter sends, Shift+Enter for a new line)"
                    }
                    disabled=terminated
                    bind:value=text on:keydown=on_key.clone()></textarea>
                <div class="composer-actions">
                    <Show when=running>
                        <button class="danger" data-test="abort" on:click=abort>"Abort"</button>
                    </Show>
                    <button class="primary" data-test="send" disabled=move || sending.get() || terminated()
                        on:click={
                            let send = send.clone();
                            move |_| send()
                        }>"Send"</button>
                </div>
            </footer>
        </Show>
    }
}
