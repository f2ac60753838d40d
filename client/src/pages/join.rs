//! Joining by share link: `/join#<token>`. The token travels in the fragment, which browsers do
//! not send to servers or in Referer headers, and is taken off the address bar before redeeming.

use agent_ops_protocol::api::GrantToken;
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::{run, take_fragment, ErrorBanner};

#[component]
pub fn Join() -> impl IntoView {
    let error = RwSignal::new(None::<ApiError>);
    let navigate = use_navigate();
    let token = take_fragment("/join");
    run(error, async move {
        let joined = api::call::<endpoint::RedeemShareLink>(&[], &GrantToken { token }).await?;
        navigate(
            &format!("/sessions/{}", joined.session_id),
            Default::default(),
        );
        Ok(())
    });
    view! {
        <main class="page narrow">
            <h1>"Joining the session…"</h1>
            <ErrorBanner error=error/>
        </main>
    }
}
