//! Sign-in: GitHub, and the development sign-in when the deployment offers it (`make dev`).

use agent_ops_protocol::api::{DevLogin, SignInProviders};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;

use crate::api;
use crate::components::{run, ErrorBanner};

#[component]
pub fn SignIn() -> impl IntoView {
    let providers = RwSignal::new(None::<SignInProviders>);
    let error = RwSignal::new(None::<ApiError>);
    run(error, async move {
        providers.set(Some(api::fetch::<endpoint::AuthProviders>(&[]).await?));
        Ok(())
    });
    let login = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = DevLogin {
            login: login.get_untracked().trim().to_owned(),
        };
        run(error, async move {
            api::call::<endpoint::DevLogin>(&[], &body).await?;
            window().location().reload().ok();
            Ok(())
        });
    };
    view! {
        <main class="sign-in">
            <div class="card narrow">
                <h1 class="brand-big">"Agent Ops"</h1>
                <p class="muted">"Hand a coding task to an agent, watch it work, step in when you want."</p>
                <ErrorBanner error=error/>
                {move || providers.get().map(|p| view! {
                    <Show when=move || p.github>
                        <a class="button primary wide" href="/auth/github">"Sign in with GitHub"</a>
                    </Show>
                    <Show when=move || p.development>
                        <form class="dev-login" on:submit=submit>
                            <label for="dev-login">"Development sign-in"</label>
                            <div class="row">
                                <input id="dev-login" name="login" placeholder="your-name" autocomplete="username"
                                    bind:value=login/>
                                <button class="primary" type="submit">"Sign in"</button>
                            </div>
                            <p class="hint">"Offered only when the platform runs with ENVIRONMENT=development."</p>
                        </form>
                    </Show>
                    <Show when=move || !p.github && !p.development>
                        <p>"No sign-in method is configured: set GITHUB_CLIENT_ID (see README)."</p>
                    </Show>
                })}
            </div>
        </main>
    }
}
