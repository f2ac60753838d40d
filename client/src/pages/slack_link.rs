//! Linking a Slack identity: `/link/slack#<token>`, the link the app offered in Slack. The token
//! travels in the fragment (never sent to servers or in Referer headers) and nothing is linked
//! until the person confirms: a link someone else asked for would let their Slack account act as
//! yours.

use agent_ops_protocol::api::{LinkSlack, SlackIdentity};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::components::{run, take_fragment, ErrorBanner};
use crate::Auth;

#[component]
pub fn SlackLink() -> impl IntoView {
    let Auth(me) = expect_context::<Auth>();
    let error = RwSignal::new(None::<ApiError>);
    let linked = RwSignal::new(None::<SlackIdentity>);
    let token = take_fragment("/link/slack");
    let confirm = move |_| {
        let body = LinkSlack {
            token: token.clone(),
        };
        run(error, async move {
            linked.set(Some(api::call::<endpoint::LinkSlack>(&[], &body).await?));
            Ok(())
        });
    };
    view! {
        <main class="page narrow">
            <h1>"Link Slack"</h1>
            <ErrorBanner error=error/>
            {move || match linked.get() {
                Some(identity) => view! {
                    <p data-test="slack-linked">
                        "Linked: Slack user "<code>{identity.slack_user_id}</code>" of workspace "
                        <code>{identity.team_id}</code>" now acts as you. "
                        <A href="/settings">"Settings"</A>" lists your links and removes them."
                    </p>
                }.into_any(),
                None => view! {
                    <p>
                        "The Slack account that asked for this link will act as "
                        <strong>{move || me.get().map(|m| m.login)}</strong>
                        ", with your role on every session. Continue only if you asked the app for it in Slack just now."
                    </p>
                    <button class="primary" data-test="slack-link-confirm" on:click=confirm.clone()>"Link my Slack account"</button>
                }.into_any(),
            }}
        </main>
    }
}
