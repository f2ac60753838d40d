//! Small pieces every page uses: status badges, error banners, times.

use agent_ops_protocol::events::SessionStatus;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;

pub fn status_name(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Provisioning => "provisioning",
        SessionStatus::Starting => "starting",
        SessionStatus::Idle => "idle",
        SessionStatus::Running => "running",
        SessionStatus::Disconnected => "disconnected",
        SessionStatus::Terminated => "terminated",
    }
}

#[component]
pub fn StatusBadge(#[prop(into)] status: Signal<Option<SessionStatus>>) -> impl IntoView {
    view! {
        {move || status.get().map(|s| {
            let name = status_name(s);
            view! { <span class=format!("badge status-{name}") data-status=name>{name}</span> }
        })}
    }
}

/// An error with its stable code and the server's sentence.
#[component]
pub fn ErrorBanner(#[prop(into)] error: Signal<Option<ApiError>>) -> impl IntoView {
    view! {
        {move || error.get().map(|e| view! {
            <div class="error" role="alert" data-code=e.code.as_str()>
                <code>{e.code.as_str()}</code>
                <span>{e.message.clone()}</span>
            </div>
        })}
    }
}

/// A read-only value shown once (a share link, a new key) with a button that copies it.
#[component]
pub fn CopyField(value: String, test: &'static str) -> impl IntoView {
    let copied = value.clone();
    view! {
        <input readonly=true data-test=test value=value/>
        <button class="ghost" on:click=move |_| {
            let _ = window().navigator().clipboard().write_text(&copied);
        }>"Copy"</button>
    }
}

/// A form field's text, trimmed; `None` when it is empty (an optional field left blank).
pub fn optional(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// "3 min ago" from milliseconds since the epoch.
pub fn ago(ms: u64) -> String {
    let now = js_sys::Date::now() as u64;
    let secs = now.saturating_sub(ms) / 1000;
    match secs {
        0..=44 => "just now".into(),
        45..=5399 => format!("{} min ago", (secs + 30) / 60),
        5400..=129_599 => format!("{} h ago", (secs + 1800) / 3600),
        _ => format!("{} d ago", (secs + 43_200) / 86_400),
    }
}

/// Spawns `fut` and puts its error, if any, in `error`.
pub fn run<F>(error: RwSignal<Option<ApiError>>, fut: F)
where
    F: std::future::Future<Output = Result<(), ApiError>> + 'static,
{
    error.set(None);
    leptos::task::spawn_local(async move {
        if let Err(e) = fut.await {
            error.set(Some(e));
        }
    });
}

/// The token in the address's fragment (which browsers send to no server, nor in a Referer),
/// taken off the address bar, which is left at `path`.
pub fn take_fragment(path: &str) -> String {
    let token = window()
        .location()
        .hash()
        .unwrap_or_default()
        .trim_start_matches('#')
        .to_owned();
    if let Ok(history) = window().history() {
        history
            .replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path))
            .ok();
    }
    token
}
