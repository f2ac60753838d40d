//! Settings: profile, API keys (created, shown once, revoked), stored provider credentials
//! (write-only: the API never returns a secret, so neither does this page), the Slack
//! identities that act as you, and (administrators) the rules every workflow follows.

use agent_ops_protocol::access::{OrgRole, Scope};
use agent_ops_protocol::api::{
    CredentialList, KeyInfo, NewKey, PutCredential, SlackIdentities, SlackWorkspace,
    WorkflowSettings, CREDENTIAL_KINDS,
};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::ApiError;
use leptos::prelude::*;

use crate::api;
use crate::components::{ago, run, CopyField, ErrorBanner};
use crate::Auth;

#[component]
pub fn Settings() -> impl IntoView {
    let Auth(me) = expect_context::<Auth>();
    view! {
        <main class="page narrow">
            <h1>"Settings"</h1>
            <section class="card">
                <h2>"Profile"</h2>
                {move || me.get().map(|m| view! {
                    <dl class="profile">
                        <dt>"Login"</dt><dd data-test="profile-login">{m.login}</dd>
                        <dt>"Role"</dt><dd>{m.role.as_str()}</dd>
                        <dt>"User id"</dt><dd><code>{m.id}</code></dd>
                    </dl>
                })}
            </section>
            <ApiKeys/>
            <Credentials/>
            <Slack/>
            <Show when=move || me.get().is_some_and(|m| m.role == OrgRole::Admin)>
                <WorkflowRules/>
            </Show>
        </main>
    }
}

/// The shortest interval a schedule may run at: checked when a schedule is saved.
#[component]
fn WorkflowRules() -> impl IntoView {
    let minutes = RwSignal::new(String::new());
    let saved = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    run(error, async move {
        let rules = api::fetch::<endpoint::GetWorkflowSettings>(&[]).await?;
        minutes.set(rules.min_interval_minutes.to_string());
        Ok(())
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        run(error, async move {
            let asked = WorkflowSettings {
                min_interval_minutes: minutes.get_untracked().trim().parse().unwrap_or(0),
            };
            api::call::<endpoint::PutWorkflowSettings>(&[], &asked).await?;
            saved.set(true);
            Ok(())
        })
    };
    view! {
        <section class="card" data-test="workflow-rules">
            <h2>"Workflows"</h2>
            <ErrorBanner error=error/>
            <form class="row" on:submit=save>
                <label>"Shortest schedule interval (minutes) "
                    <input type="number" min="1" max="1440" bind:value=minutes data-test="min-interval"/>
                </label>
                <button class="primary" type="submit">"Save"</button>
                <Show when=move || saved.get()><span class="muted">" Saved."</span></Show>
            </form>
            <p class="muted">"A schedule that runs more often is refused when it is saved; schedules saved before keep running."</p>
        </section>
    }
}

#[component]
fn ApiKeys() -> impl IntoView {
    let keys = RwSignal::new(Vec::<KeyInfo>::new());
    let error = RwSignal::new(None::<ApiError>);
    let fresh = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let write = RwSignal::new(true);
    let load = move || {
        run(error, async move {
            keys.set(api::fetch::<endpoint::ListKeys>(&[]).await?.keys);
            Ok(())
        })
    };
    load();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut scopes = vec![Scope::SessionsRead];
        if write.get_untracked() {
            scopes.push(Scope::SessionsWrite);
        }
        let body = NewKey {
            name: name.get_untracked().trim().to_owned(),
            scopes,
            expires_at: None,
        };
        run(error, async move {
            let created = api::call::<endpoint::CreateKey>(&[], &body).await?;
            fresh.set(Some(created.key));
            name.set(String::new());
            load();
            Ok(())
        });
    };
    let revoke = move |id: String| {
        run(error, async move {
            api::fetch::<endpoint::RevokeKey>(&[&id]).await?;
            load();
            Ok(())
        })
    };
    view! {
        <section class="card" data-test="api-keys">
            <h2>"API keys"</h2>
            <p class="muted">"For scripts and CI: send it as "<code>"Authorization: Bearer <key>"</code>". A key never carries more than you have."</p>
            <form class="row" on:submit=create>
                <input data-test="key-name" placeholder="Key name, e.g. ci" required=true bind:value=name/>
                <label class="check"><input type="checkbox" bind:checked=write/>" can start and steer sessions"</label>
                <button class="primary" type="submit" data-test="create-key">"Create key"</button>
            </form>
            {move || fresh.get().map(|key| view! {
                <div class="fresh-key">
                    <strong>"Copy this key now: it is shown only once."</strong>
                    <CopyField value=key test="new-key"/>
                    <button class="ghost" on:click=move |_| fresh.set(None)>"Done"</button>
                </div>
            })}
            <ErrorBanner error=error/>
            <table class="keys">
                <thead><tr><th>"Name"</th><th>"Key"</th><th>"Scopes"</th><th>"Last used"</th><th></th></tr></thead>
                <tbody>
                    <For each=move || keys.get() key=|k| (k.id.clone(), k.revoked_at) let:k>
                        <tr data-key=k.id.clone() data-name=k.name.clone() class:revoked=k.revoked_at.is_some()>
                            <td>{k.name.clone()}</td>
                            <td><code>{format!("{}…", k.prefix)}</code></td>
                            <td>{k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}</td>
                            <td>{k.last_used_at.map(ago).unwrap_or_else(|| format!("never (created {})", ago(k.created_at)))}</td>
                            <td>
                                {match k.revoked_at {
                                    Some(_) => view! { <span class="badge status-terminated">"revoked"</span> }.into_any(),
                                    None => {
                                        let id = k.id.clone();
                                        view! { <button class="danger small" data-test="revoke-key"
                                            on:click=move |_| revoke(id.clone())>"Revoke"</button> }.into_any()
                                    }
                                }}
                            </td>
                        </tr>
                    </For>
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn Credentials() -> impl IntoView {
    let stored = RwSignal::new(CredentialList {
        credentials: Vec::new(),
    });
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        run(error, async move {
            stored.set(api::fetch::<endpoint::ListCredentials>(&[]).await?);
            Ok(())
        })
    };
    load();
    view! {
        <section class="card" data-test="credentials">
            <h2>"Provider credentials"</h2>
            <p class="muted">"Sealed with AES-256-GCM at rest and never shown again: you can replace or delete one, not read it."</p>
            <ErrorBanner error=error/>
            {CREDENTIAL_KINDS.into_iter().map(|kind| {
                let secret = RwSignal::new(String::new());
                let save = move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    let body = PutCredential {
                        secret: secret.get_untracked(),
                    };
                    run(error, async move {
                        api::call::<endpoint::PutCredential>(&[kind], &body).await?;
                        secret.set(String::new());
                        load();
                        Ok(())
                    });
                };
                let remove = move |_| run(error, async move {
                    api::fetch::<endpoint::DeleteCredential>(&[kind]).await?;
                    load();
                    Ok(())
                });
                let info = move || stored.with(|s| s.credentials.iter().find(|c| c.kind == kind).cloned());
                view! {
                    <form class="credential row" on:submit=save data-kind=kind>
                        <span class="kind">{kind}</span>
                        <span class="muted state">{move || match info() {
                            Some(c) => format!("stored {}", ago(c.updated_at)),
                            None => "not set".into(),
                        }}</span>
                        <input type="password" autocomplete="off" placeholder="paste to set or replace" bind:value=secret/>
                        <button class="primary small" type="submit">"Save"</button>
                        <Show when=move || info().is_some()>
                            <button class="ghost small" type="button" on:click=remove>"Delete"</button>
                        </Show>
                    </form>
                }
            }).collect_view()}
        </section>
    }
}

#[component]
fn Slack() -> impl IntoView {
    let Auth(me) = expect_context::<Auth>();
    let is_admin = move || me.get().is_some_and(|m| m.role == OrgRole::Admin);
    let slack = RwSignal::new(None::<SlackIdentities>);
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        run(error, async move {
            slack.set(Some(api::fetch::<endpoint::SlackIdentities>(&[]).await?));
            Ok(())
        })
    };
    load();
    let unlink = move |team: String, user: String| {
        run(error, async move {
            api::fetch::<endpoint::UnlinkSlack>(&[&team, &user]).await?;
            load();
            Ok(())
        })
    };
    view! {
        <section class="card" data-test="slack">
            <h2>"Slack"</h2>
            <ErrorBanner error=error/>
            {move || slack.get().map(|s| match s.configured {
                false => view! { <p class="muted">"Slack is not set up on this deployment (see the README)."</p> }.into_any(),
                true => view! {
                    <Show when=move || is_admin()>
                        <Workspaces/>
                    </Show>
                    <p class="muted">"In Slack, type "<code>"/agent-ops list"</code>" or mention the app: it offers you a link that makes your Slack account act as this one."</p>
                    <ul class="slack-identities">
                        {s.identities.into_iter().map(|i| {
                            let (team, user) = (i.team_id.clone(), i.slack_user_id.clone());
                            view! {
                                <li data-test="slack-identity">
                                    <code>{format!("{}:{}", i.team_id, i.slack_user_id)}</code>
                                    <span class="muted">{format!(" linked {}", ago(i.linked_at))}</span>
                                    <button class="ghost small" on:click=move |_| unlink(team.clone(), user.clone())>"Unlink"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            })}
        </section>
    }
}

/// The workspaces the app is installed in, and the way to install it in another (administrators).
#[component]
fn Workspaces() -> impl IntoView {
    let installed = RwSignal::new(Vec::<SlackWorkspace>::new());
    let error = RwSignal::new(None::<ApiError>);
    run(error, async move {
        installed.set(
            api::fetch::<endpoint::SlackWorkspaces>(&[])
                .await?
                .workspaces,
        );
        Ok(())
    });
    view! {
        <ErrorBanner error=error/>
        <ul class="slack-workspaces">
            <For each=move || installed.get() key=|w| w.team_id.clone() let:w>
                <li data-test="slack-workspace">
                    <strong>{w.team_name.clone()}</strong>" "<code>{w.team_id.clone()}</code>
                    <span class="muted">{format!(" installed {}", ago(w.installed_at))}</span>
                </li>
            </For>
        </ul>
        <a class="button primary" href="/slack/install" rel="external" data-test="add-to-slack">"Add to Slack"</a>
    }
}
