//! The panel area beside the conversation: VS Code, Browser (VNC), Preview and Terminal tabs.
//! Opening a tab asks the worker for a short-lived, single-use panel token and loads the panel
//! from the session's own sandbox origin (never the app's); the gateway trades the token for a
//! cookie that lives on that origin alone. A tab the sandbox does not offer, or the person may not open, says so and why
//! instead of showing an empty frame. Preview shows the apps listening in the sandbox (as the
//! runner reports them) and opens the one picked.

use agent_ops_protocol::access::SessionRole;
use agent_ops_protocol::api::{PanelInfo, PanelKind, PanelTokenRequest};
use agent_ops_protocol::events::OpenPort;
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;

use crate::api;
use crate::components::{run, ErrorBanner};

fn label(k: PanelKind) -> &'static str {
    match k {
        PanelKind::Vscode => "VS Code",
        PanelKind::Browser => "Browser",
        PanelKind::Preview => "Preview",
        PanelKind::Terminal => "Terminal",
    }
}

/// What each panel's frame may do (the iframe's `sandbox`). Every panel runs its own script on
/// its session's sandbox origin (`allow-same-origin` keeps that origin, and with it the panel
/// cookie; it is never the app's); none may navigate the app's window away. The editor and an
/// app under preview may also submit forms, open windows (a link, the editor's "open in
/// browser"), ask through dialogs and download files.
fn sandbox_flags(k: PanelKind) -> &'static str {
    match k {
        PanelKind::Terminal | PanelKind::Browser => "allow-scripts allow-same-origin",
        PanelKind::Vscode | PanelKind::Preview => {
            "allow-scripts allow-same-origin allow-forms allow-popups allow-modals allow-downloads"
        }
    }
}

/// What a frame shows: a panel, and for a preview the app's port.
type Target = (PanelKind, Option<u16>);

#[component]
pub fn Panels(
    session_id: String,
    #[prop(into)] panels: Signal<Vec<PanelInfo>>,
    #[prop(into)] ports: Signal<Vec<OpenPort>>,
    #[prop(into)] role: Signal<Option<SessionRole>>,
) -> impl IntoView {
    let active = RwSignal::new(PanelKind::Terminal);
    let picked = RwSignal::new(None::<u16>);
    let src = RwSignal::new(None::<(Target, String)>);
    let error = RwSignal::new(None::<ApiError>);
    let info = move |k: PanelKind| panels.with(|p| p.iter().find(|p| p.kind == k).cloned());
    // Why `k` cannot be opened here, if it cannot.
    let refusal = move |k: PanelKind| -> Option<String> {
        if role.get() == Some(SessionRole::Viewer) && !k.viewers_may_open() {
            return Some("Viewers watch the terminal; the desktop, the editor and app previews need the collaborator role.".into());
        }
        match info(k) {
            Some(p) if p.available => None,
            Some(p) => Some(p.reason.unwrap_or_else(|| "The sandbox does not offer it.".into())),
            None => Some("This session's sandbox offers no panels (it started before they existed, or its provider has none).".into()),
        }
    };
    // The app previewed is the one picked while it listens, else the first that does; a
    // preview open when its app stops is left as it is (it shows the app's last page).
    Effect::new(move |_| {
        let listening: Vec<u16> = ports.with(|p| p.iter().map(|p| p.port).collect());
        let kept = picked.get_untracked().filter(|p| listening.contains(p));
        let next = kept.or_else(|| listening.first().copied());
        if next.is_some() && next != picked.get_untracked() {
            picked.set(next);
        }
    });
    // What the frame should show; the tabs and the app buttons only change this.
    let wanted = Memo::new(move |_| {
        let k = active.get();
        (k, (k == PanelKind::Preview).then(|| picked.get()).flatten())
    });
    // A token is asked for once per thing shown (the terminal's as soon as the session's
    // panels are known), and asked again only after a failure.
    let asked = StoredValue::new(None::<Target>);
    Effect::new(move |_| {
        let target = wanted.get();
        let openable =
            refusal(target.0).is_none() && (target.0 != PanelKind::Preview || target.1.is_some());
        if !openable || asked.get_value() == Some(target) {
            return;
        }
        asked.set_value(Some(target));
        let request = PanelTokenRequest {
            panel: target.0,
            port: target.1,
        };
        let session_id = session_id.clone();
        run(error, async move {
            match api::call::<endpoint::PanelToken>(&[&session_id], &request).await {
                Ok(token) => src.set(Some((target, token.url))),
                Err(e) => {
                    asked.set_value(None);
                    return Err(e);
                }
            }
            Ok(())
        });
    });
    view! {
        <aside class="panels">
            <div class="tabs" role="tablist">
                {PanelKind::ALL.into_iter().map(|k| view! {
                    <button role="tab" class="tab" data-panel=k.as_str()
                        class:active=move || active.get() == k
                        on:click=move |_| active.set(k)>{label(k)}</button>
                }).collect_view()}
            </div>
            <ErrorBanner error=error/>
            {move || (active.get() == PanelKind::Preview && refusal(PanelKind::Preview).is_none()).then(|| {
                view! {
                    <div class="apps" data-test="apps">
                        {move || ports.get().into_iter().map(|app| {
                            let port = app.port;
                            let name = match &app.process {
                                Some(p) => format!("{port} · {p}"),
                                None => port.to_string(),
                            };
                            view! {
                                <button class="app" data-port=port
                                    class:active=move || picked.get() == Some(port)
                                    on:click=move |_| picked.set(Some(port))>{name}</button>
                            }
                        }).collect_view()}
                    </div>
                }
            })}
            <div class="panel-body" data-test="panel-body">
                {move || {
                    let target = wanted.get();
                    let k = target.0;
                    if let Some(why) = refusal(k) {
                        return view! {
                            <div class="unavailable" data-panel=k.as_str()>
                                <h3>{format!("{} is not available", label(k))}</h3>
                                <p>{why}</p>
                            </div>
                        }.into_any();
                    }
                    match src.get() {
                        Some((open, url)) if open == target => view! {
                            <iframe data-panel=k.as_str() data-port=target.1 src=url title=label(k)
                                sandbox=sandbox_flags(k) allow="clipboard-read; clipboard-write"></iframe>
                        }.into_any(),
                        _ if k == PanelKind::Preview && target.1.is_none() => view! {
                            <div class="unavailable" data-panel=k.as_str()>
                                <h3>"No app is listening yet"</h3>
                                <p>"When the agent or you start a server in the sandbox on 127.0.0.1 or 0.0.0.0, it shows here. Pages are served under their preview path (/sandbox/…/preview/<port>/), so a dev server should use relative links or that base path (e.g. Vite's --base)."</p>
                            </div>
                        }.into_any(),
                        _ => view! {
                            <div class="unavailable"><p>{format!("Opening {}…", label(k))}</p></div>
                        }.into_any(),
                    }
                }}
            </div>
        </aside>
    }
}
