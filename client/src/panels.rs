//! The panel area beside the conversation: VS Code, Browser (VNC) and Terminal tabs. A tab whose
//! panel the sandbox does not offer says so, and why, instead of showing an empty frame.

use leptos::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PanelKind {
    Vscode,
    Browser,
    Terminal,
}

impl PanelKind {
    const ALL: [PanelKind; 3] = [PanelKind::Vscode, PanelKind::Browser, PanelKind::Terminal];

    fn label(self) -> &'static str {
        match self {
            Self::Vscode => "VS Code",
            Self::Browser => "Browser",
            Self::Terminal => "Terminal",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Self::Vscode => "vscode",
            Self::Browser => "browser",
            Self::Terminal => "terminal",
        }
    }
}

const NO_GATEWAY: &str =
    "Sandboxes on this platform do not run the panel gateway yet, so there is \
     nothing to connect to. The agent keeps working; its progress streams in the conversation.";

#[component]
pub fn Panels() -> impl IntoView {
    let active = RwSignal::new(PanelKind::Terminal);
    view! {
        <aside class="panels">
            <div class="tabs" role="tablist">
                {PanelKind::ALL.into_iter().map(|k| view! {
                    <button role="tab" class="tab" data-panel=k.slug()
                        class:active=move || active.get() == k
                        on:click=move |_| active.set(k)>{k.label()}</button>
                }).collect_view()}
            </div>
            <div class="panel-body" data-test="panel-body">
                {move || {
                    let k = active.get();
                    view! {
                        <div class="unavailable" data-panel=k.slug()>
                            <h3>{format!("{} is not available", k.label())}</h3>
                            <p>{NO_GATEWAY}</p>
                        </div>
                    }
                }}
            </div>
        </aside>
    }
}
