//! The conversation: each turn is the user's prompt, the agent's text (markdown) and its tool
//! calls as cards that fold open, and the turn's state. A turn is redrawn only when it changes.

use agent_ops_protocol::events::ToolStatus;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::markdown;
use crate::stream::Feed;
use crate::transcript::{Item, ToolCard, Turn, TurnState};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = hljs, js_name = highlight)]
    fn hljs_highlight(code: &str, options: &JsValue) -> Result<JsValue, JsValue>;
}

/// highlight.js (shipped from the npm registry with the client) when it knows the language.
fn highlight(code: &str, lang: &str) -> Option<String> {
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"language".into(), &lang.into()).ok()?;
    js_sys::Reflect::set(&options, &"ignoreIllegals".into(), &true.into()).ok()?;
    let result = hljs_highlight(code, &options).ok()?;
    js_sys::Reflect::get(&result, &"value".into())
        .ok()?
        .as_string()
}

fn tool_summary(card: &ToolCard) -> String {
    let pick = [
        "command",
        "filePath",
        "path",
        "pattern",
        "url",
        "description",
    ];
    let arg = pick
        .iter()
        .find_map(|k| card.input.get(*k).and_then(|v| v.as_str()))
        .unwrap_or("");
    let arg: String = arg.chars().take(80).collect();
    arg.lines().next().unwrap_or("").to_owned()
}

fn tool_status(s: ToolStatus) -> &'static str {
    match s {
        ToolStatus::Pending => "pending",
        ToolStatus::Running => "running",
        ToolStatus::Completed => "completed",
        ToolStatus::Error => "error",
    }
}

fn tool_card(card: ToolCard) -> impl IntoView {
    let status = tool_status(card.status);
    let input = serde_json::to_string_pretty(&card.input).unwrap_or_default();
    view! {
        <details class=format!("tool tool-{status}") data-tool=card.tool.clone()>
            <summary>
                <span class="tool-name">{card.tool.clone()}</span>
                <span class="tool-arg">{tool_summary(&card)}</span>
                <span class=format!("tool-status {status}")>{status}</span>
            </summary>
            <div class="tool-body">
                <h4>"Arguments"</h4>
                <pre>{input}</pre>
                {card.output.clone().map(|o| view! { <h4>"Result"</h4><pre class="tool-output">{o}</pre> })}
                {card.error.clone().map(|e| view! { <h4>"Error"</h4><pre class="tool-error">{e}</pre> })}
            </div>
        </details>
    }
}

fn turn_view(turn: Turn, can_steer: bool, cancel: Callback<String>) -> impl IntoView {
    let state = turn.state.clone();
    let label = state.label();
    let class = label.split(' ').next().unwrap_or("").to_owned();
    let prompt_id = turn.prompt_id.clone();
    let items = turn
        .items
        .into_iter()
        .map(|item| match item {
            Item::Text { text, .. } => view! {
                <div class="md" inner_html=markdown::render(&text, highlight)></div>
            }
            .into_any(),
            Item::Tool(card) => tool_card(card).into_any(),
        })
        .collect_view();
    view! {
        <article class=format!("turn turn-{class}") data-prompt=turn.prompt_id.clone() data-state=class.clone()>
            <div class="user-msg"><p>{turn.prompt}</p></div>
            <div class="assistant">{items}</div>
            <div class="turn-foot">
                <span class=format!("turn-state {class}")>
                    {state.is_open().then(|| view! { <span class="spinner"></span> })}
                    {label}
                </span>
                {match &state {
                    TurnState::Failed(reason) => Some(view! { <span class="reason">{reason.clone()}</span> }),
                    _ => None,
                }}
                {(turn.tokens > 0).then(|| view! { <span class="tokens">{format!("{} tokens", turn.tokens)}</span> })}
                {(state == TurnState::Queued && can_steer).then(|| view! {
                    <button class="ghost small" data-test="cancel-prompt"
                        on:click=move |_| cancel.run(prompt_id.clone())>"Cancel"</button>
                })}
            </div>
        </article>
    }
}

#[component]
pub fn Conversation(
    feed: Feed,
    #[prop(into)] can_steer: Signal<bool>,
    cancel: Callback<String>,
) -> impl IntoView {
    // Keyed by revision (and by whether this viewer may steer, which arrives asynchronously), so
    // a delta redraws its own turn and nothing else.
    let keys = move || {
        let steer = can_steer.get();
        feed.transcript.with(|t| {
            t.turns
                .iter()
                .map(|turn| (turn.prompt_id.clone(), turn.rev, steer))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <For each=keys key=|k| k.clone() let:key>
            {
                let turn = feed.transcript.with_untracked(|t| {
                    t.turns.iter().find(|turn| turn.prompt_id == key.0).cloned()
                });
                turn.map(|turn| turn_view(turn, key.2, cancel))
            }
        </For>
    }
}
