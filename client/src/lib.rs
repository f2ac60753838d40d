//! The Agent Ops web client: a client-side rendered Leptos app, served by the Worker on its own
//! origin. It shares the wire types with the Worker and the runner (`agent-ops-protocol`), so a
//! change to an event or a frame cannot drift between them.

pub mod api;
mod components;
mod conversation;
pub mod markdown;
mod pages;
mod panels;
mod stream;
pub mod transcript;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

use components::ErrorBanner;

pub use agent_ops_protocol::api::Me;
use agent_ops_protocol::routes::endpoint;

/// Who is signed in; provided to every page.
#[derive(Clone, Copy)]
pub struct Auth(pub RwSignal<Option<Me>>);

#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[derive(Clone, PartialEq)]
enum Boot {
    Loading,
    SignedOut,
    SignedIn,
    Failed(agent_ops_protocol::ApiError),
}

#[component]
fn App() -> impl IntoView {
    let me = RwSignal::new(None::<Me>);
    provide_context(Auth(me));
    let boot = RwSignal::new(Boot::Loading);
    leptos::task::spawn_local(async move {
        match api::fetch::<endpoint::Me>(&[]).await {
            Ok(m) => {
                me.set(Some(m));
                boot.set(Boot::SignedIn);
            }
            Err(e) if e.code == agent_ops_protocol::ErrorCode::Unauthorized => {
                boot.set(Boot::SignedOut)
            }
            Err(e) => boot.set(Boot::Failed(e)),
        }
    });
    view! {
        <Router>
            {move || match boot.get() {
                Boot::Loading => view! { <div class="boot">"Loading…"</div> }.into_any(),
                Boot::SignedOut => view! { <pages::sign_in::SignIn/> }.into_any(),
                Boot::Failed(e) => view! {
                    <main class="page"><ErrorBanner error=Signal::derive(move || Some(e.clone()))/></main>
                }.into_any(),
                Boot::SignedIn => view! { <Shell/> }.into_any(),
            }}
        </Router>
    }
}

#[component]
fn Shell() -> impl IntoView {
    let Auth(me) = expect_context::<Auth>();
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            api::fetch::<endpoint::Logout>(&[]).await.ok();
            window().location().set_href("/").ok();
        })
    };
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">"Agent Ops"</A>
            <nav>
                <A href="/" exact=true>"Sessions"</A>
                <A href="/new">"New session"</A>
                <A href="/workflows">"Workflows"</A>
                <A href="/settings">"Settings"</A>
            </nav>
            <div class="who">
                <span class="login" data-test="me">{move || me.get().map(|m| m.login).unwrap_or_default()}</span>
                <button class="ghost" on:click=sign_out>"Sign out"</button>
            </div>
        </header>
        <Routes fallback=|| view! { <main class="page"><h1>"Not found"</h1><p>"There is no page at this address."</p></main> }>
            <Route path=path!("/") view=pages::sessions::Sessions/>
            <Route path=path!("/new") view=pages::new_session::NewSession/>
            <Route path=path!("/sessions/:id") view=pages::session::SessionView/>
            <Route path=path!("/settings") view=pages::settings::Settings/>
            <Route path=path!("/join") view=pages::join::Join/>
            <Route path=path!("/link/slack") view=pages::slack_link::SlackLink/>
            <Route path=path!("/workflows") view=pages::workflows::Workflows/>
            <Route path=path!("/workflows/:id") view=pages::workflow::WorkflowView/>
        </Routes>
    }
}
