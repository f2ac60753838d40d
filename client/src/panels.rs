//! The panel area beside the conversation: VS Code, Browser (VNC) and Terminal tabs. Opening a
//! tab asks the worker for a short-lived, single-use panel token and loads the panel through the
//! worker's own origin; the gateway trades the token for a cookie scoped to this session. A tab
//! the sandbox does not offer says so, and why, instead of showing an empty frame.

use agent_ops_protocol::api::{PanelInfo, PanelKind, PanelToken, PanelTokenRequest};
use agent_ops_protocol::ApiError;
use leptos::prelude::*;

use crate::api;
use crate::components::{run, ErrorBanner};

fn label(k: PanelKind) -> &'static str {
    match k {
        PanelKind::Vscode => "VS Code",
        PanelKind::Browser => "Browser",
        PanelKind::Terminal => "Terminal",
    }
}

#[component]
pub fn Panels(session_id: String, #[prop(into)] panels: Signal<Vec<PanelInfo>>) -> impl IntoView {
    let active = RwSignal::new(PanelKind::Terminal);
    let src = RwSignal::new(None::<(PanelKind, String)>);
    let error = RwSignal::new(None::<ApiError>);
    let info = move |k: PanelKind| panels.with(|p| p.iter().find(|p| p.kind == k).cloned());
    let open = move |k: PanelKind| {
        active.set(k);
        if src.with_untracked(|s| s.as_ref().is_some_and(|(open, _)| *open == k)) {
            return;
        }
        if !info(k).is_some_and(|p| p.available) {
            return;
        }
        let path = format!("/api/sessions/{session_id}/panel-token");
        run(error, async move {
            let token: PanelToken = api::post(&path, &PanelTokenRequest { panel: k }).await?;
            src.set(Some((k, token.url)));
            Ok(())
        });
    };
    // The terminal opens by itself once the session's panels are known.
    let open_first = open.clone();
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        let ready = info(PanelKind::Terminal).is_some_and(|p| p.available);
        if ready {
            open_first(PanelKind::Terminal);
        }
        ready
    });
    view! {
        <aside class="panels">
            <div class="tabs" role="tablist">
                {PanelKind::ALL.into_iter().map(|k| {
                    let open = open.clone();
                    view! {
                        <button role="tab" class="tab" data-panel=k.as_str()
                            class:active=move || active.get() == k
                            on:click=move |_| open(k)>{label(k)}</button>
                    }
                }).collect_view()}
            </div>
            <ErrorBanner error=error/>
            <div class="panel-body" data-test="panel-body">
                {move || {
                    let k = active.get();
                    match (info(k), src.get()) {
                        (Some(p), Some((open, url))) if p.available && open == k => view! {
                            <iframe data-panel=k.as_str() src=url title=label(k)
                                allow="clipboard-read; clipboard-write"></iframe>
                        }.into_any(),
                        (Some(p), _) if p.available => view! {
                            <div class="unavailable"><p>{format!("Opening {}…", label(k))}</p></div>
                        }.into_any(),
                        (p, _) => {
                            let why = p.and_then(|p| p.reason).unwrap_or_else(|| {
                                "This session's sandbox offers no panels (it started before they existed, or its provider has none).".into()
                            });
                            view! {
                                <div class="unavailable" data-panel=k.as_str()>
                                    <h3>{format!("{} is not available", label(k))}</h3>
                                    <p>{why}</p>
                                </div>
                            }.into_any()
                        }
                    }
                }}
            </div>
        </aside>
    }
}
