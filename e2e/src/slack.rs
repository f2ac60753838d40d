//! A local stand-in for Slack: the Web API methods the platform calls, checking what Slack
//! checks (the bot token, each call's payload shape, that an updated message exists), keeping a
//! workspace's messages, recording every call, and able to answer 429 with `Retry-After` or to
//! fail for a while; and the `response_url` receiver. It also signs requests to the platform as
//! Slack does, so tests send what Slack would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_ops_protocol::slack::signature::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use agent_ops_protocol::slack::wire::{
    History, Message, PostEphemeral, PostMessage, Replies, UpdateMessage, WebAnswer,
};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const TEAM: &str = "T0AGENTOPS";
pub const BOT_USER: &str = "U0AGENTBOT";
pub const BOT_ID: &str = "B0AGENTBOT";

/// One Web API call as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    pub at: Instant,
    /// What it answered (`ok: false` calls and 429s included).
    pub status: u16,
    /// The workspace whose bot token it carried.
    pub team: Option<String>,
}

#[derive(Clone)]
pub struct SlackStandIn {
    pub base: String,
    /// `TEAM`'s bot token, which the deployment is configured with (`SLACK_BOT_TOKEN`).
    pub bot_token: String,
    pub signing_secret: String,
    /// The app's OAuth credentials, for installing it in other workspaces.
    pub client_id: String,
    pub client_secret: String,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// Every message, by channel, oldest first.
    messages: HashMap<String, Vec<Message>>,
    /// What each `response_url` (by its id) was sent, oldest first.
    responses: HashMap<String, Vec<Value>>,
    next_ts: u64,
    /// The next this many calls of a method are refused with 429 and this `Retry-After`.
    throttled: HashMap<String, (u32, u64)>,
    /// Until then, every call fails as if Slack were down.
    down_until: Option<Instant>,
    /// The next this many calls of a method are carried out, but their answers lost.
    lost: HashMap<String, u32>,
    /// Bot tokens, and the workspace each is of.
    tokens: HashMap<String, String>,
    /// OAuth codes not yet traded: their redirect URI and workspace.
    codes: HashMap<String, (String, String)>,
    /// The workspace (id, name) whose administrator approves the next installation.
    installing: (String, String),
}

fn answer(status: StatusCode, body: WebAnswer) -> Response {
    (status, Json(body)).into_response()
}

fn refused(error: &str) -> WebAnswer {
    WebAnswer {
        ok: false,
        error: Some(error.into()),
        ..Default::default()
    }
}

impl SlackStandIn {
    pub async fn spawn() -> SlackStandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let bot_token = format!("xoxb-{}", crate::random_hex(12));
        let me = SlackStandIn {
            base,
            bot_token: bot_token.clone(),
            signing_secret: crate::random_hex(16),
            client_id: format!("{}.{}", crate::random_hex(4), crate::random_hex(4)),
            client_secret: crate::random_hex(16),
            inner: Arc::new(Mutex::new(Inner {
                next_ts: 1_700_000_000_000_100,
                tokens: HashMap::from([(bot_token, TEAM.to_owned())]),
                installing: ("T0OTHER".into(), "Other Co".into()),
                ..Default::default()
            })),
        };
        let app = Router::new()
            .route("/oauth/v2/authorize", get(authorize))
            .route("/api/oauth.v2.access", post(oauth_access))
            .route("/api/{method}", post(web_api))
            .route("/api/conversations.replies", get(replies))
            .route("/api/conversations.history", get(history))
            .route("/hooks/{id}", post(hook))
            .with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        me
    }

    /// Where a slash command's later answers go.
    pub fn response_url(&self) -> String {
        format!("{}/hooks/{}", self.base, crate::random_hex(8))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().expect("lock").calls.clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.status == 200 && c.body["__ok"] != false)
            .collect()
    }

    /// What the `response_url` `url` was sent, oldest first.
    pub fn responses_to(&self, url: &str) -> Vec<Value> {
        let id = url.rsplit('/').next().unwrap_or_default();
        let inner = self.inner.lock().expect("lock");
        inner.responses.get(id).cloned().unwrap_or_default()
    }

    /// The messages of `channel` for which `pred` holds, oldest first.
    fn messages_where(&self, channel: &str, pred: impl Fn(&Message) -> bool) -> Vec<Message> {
        let inner = self.inner.lock().expect("lock");
        let all = inner.messages.get(channel).into_iter().flatten();
        all.filter(|m| pred(m)).cloned().collect()
    }

    /// The messages of a thread (its root first), as the workspace holds them now.
    pub fn thread(&self, channel: &str, thread_ts: &str) -> Vec<Message> {
        self.messages_where(channel, |m| {
            m.ts == thread_ts || m.thread_ts.as_deref() == Some(thread_ts)
        })
    }

    /// A person's message, now in the workspace: what Slack sends the app about it follows.
    pub fn say(&self, user: &str, channel: &str, text: &str, thread_ts: Option<&str>) -> Message {
        let mut inner = self.inner.lock().expect("lock");
        let message = Message {
            user: Some(user.into()),
            text: text.into(),
            channel: channel.into(),
            ts: inner.ts(),
            thread_ts: thread_ts.map(str::to_owned),
            ..Default::default()
        };
        inner
            .messages
            .entry(channel.into())
            .or_default()
            .push(message.clone());
        message
    }

    /// Refuses the next `count` calls of `method` with 429 and `Retry-After: retry_after_secs`.
    pub fn throttle(&self, method: &str, count: u32, retry_after_secs: u64) {
        let mut inner = self.inner.lock().expect("lock");
        inner
            .throttled
            .insert(method.into(), (count, retry_after_secs));
    }

    /// Carries out the next `count` calls of `method` but loses their answers (a 500 after the
    /// work is done), as a network failing at the wrong moment would.
    pub fn lose_answers(&self, method: &str, count: u32) {
        self.inner
            .lock()
            .expect("lock")
            .lost
            .insert(method.into(), count);
    }

    /// Fails every call for `how_long`, as an outage would.
    pub fn go_down(&self, how_long: Duration) {
        self.inner.lock().expect("lock").down_until = Some(Instant::now() + how_long);
    }

    /// The headers Slack signs `body` with, at `timestamp` (seconds).
    pub fn signed(&self, body: &str, timestamp: u64) -> [(&'static str, String); 2] {
        Self::sign_with(&self.signing_secret, body, timestamp)
    }

    /// The headers of `body` signed with `secret`: Slack's scheme, any secret.
    pub fn sign_with(secret: &str, body: &str, timestamp: u64) -> [(&'static str, String); 2] {
        let ts = timestamp.to_string();
        [
            (SIGNATURE_HEADER, sign(secret, &ts, body.as_bytes())),
            (TIMESTAMP_HEADER, ts),
        ]
    }

    /// The messages that start a thread (or stand alone) in `channel`, oldest first.
    pub fn roots(&self, channel: &str) -> Vec<Message> {
        self.messages_where(channel, |m| m.thread_ts.is_none())
    }
}

impl Inner {
    fn ts(&mut self) -> String {
        self.next_ts += 100;
        format!(
            "{}.{:06}",
            self.next_ts / 1_000_000,
            self.next_ts % 1_000_000
        )
    }

    fn record(&mut self, method: &str, body: Value, status: u16, headers: &HeaderMap) {
        let team = bearer(headers).and_then(|t| self.tokens.get(t).cloned());
        self.calls.push(Call {
            method: method.into(),
            body,
            at: Instant::now(),
            status,
            team,
        });
    }

    /// Records a read method's call with its arguments: its refusal, if Slack would give one.
    fn admit_read<T: serde::Serialize>(
        &mut self,
        method: &str,
        args: &T,
        headers: &HeaderMap,
    ) -> Option<Response> {
        let recorded = serde_json::to_value(args).unwrap_or_default();
        let refusal = self.gate(method, headers);
        let status = refusal.as_ref().map_or(200, |r| r.status().as_u16());
        self.record(method, recorded, status, headers);
        refusal
    }

    /// A refusal Slack would give before looking at the call, if any.
    fn gate(&mut self, method: &str, headers: &HeaderMap) -> Option<Response> {
        if self.down_until.is_some_and(|t| Instant::now() < t) {
            return Some((StatusCode::SERVICE_UNAVAILABLE, "slack is down").into_response());
        }
        if let Some((left, retry_after)) = self.throttled.get_mut(method) {
            if *left > 0 {
                *left -= 1;
                let mut resp = answer(StatusCode::TOO_MANY_REQUESTS, refused("ratelimited"));
                resp.headers_mut()
                    .insert("retry-after", retry_after.to_string().parse().unwrap());
                return Some(resp);
            }
        }
        match bearer(headers) {
            None => Some(answer(StatusCode::OK, refused("not_authed"))),
            Some(t) if !self.tokens.contains_key(t) => {
                Some(answer(StatusCode::OK, refused("invalid_auth")))
            }
            Some(_) => None,
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Slack's consent page, approved at once by the workspace set with `installing`.
async fn authorize(
    State(slack): State<SlackStandIn>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("client_id") != Some(&slack.client_id) {
        return (StatusCode::BAD_REQUEST, "invalid_client_id").into_response();
    }
    let scopes = q.get("scope").cloned().unwrap_or_default();
    if !["chat:write", "commands", "app_mentions:read"]
        .iter()
        .all(|s| scopes.split(',').any(|x| x == *s))
    {
        return (StatusCode::BAD_REQUEST, "invalid_scope").into_response();
    }
    let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (StatusCode::BAD_REQUEST, "bad_redirect_uri").into_response();
    };
    let code = crate::random_hex(12);
    let mut inner = slack.inner.lock().expect("lock");
    let team = inner.installing.0.clone();
    inner.codes.insert(code.clone(), (redirect.clone(), team));
    let location = format!(
        "{redirect}?{}",
        serde_urlencoded::to_string([("code", code.as_str()), ("state", state.as_str())])
            .expect("query")
    );
    axum::response::Redirect::to(&location).into_response()
}

/// `oauth.v2.access`: a code, once, for the redirect it was issued to, by the app's credentials.
async fn oauth_access(
    State(slack): State<SlackStandIn>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut inner = slack.inner.lock().expect("lock");
    inner.record(
        "oauth.v2.access",
        json!({"client_id": form.get("client_id"), "redirect_uri": form.get("redirect_uri")}),
        200,
        &headers,
    );
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("client_id") != slack.client_id || field("client_secret") != slack.client_secret {
        return answer(StatusCode::OK, refused("invalid_client_id"));
    }
    match inner.codes.remove(field("code")) {
        Some((redirect, team)) if redirect == field("redirect_uri") => {
            let token = format!("xoxb-{}", crate::random_hex(12));
            inner.tokens.insert(token.clone(), team.clone());
            let name = inner.installing.1.clone();
            let grant = agent_ops_protocol::slack::wire::OauthGrant {
                ok: true,
                error: None,
                access_token: token,
                bot_user_id: BOT_USER.into(),
                app_id: "A0AGENTOPS".into(),
                team: agent_ops_protocol::slack::wire::Team { id: team, name },
            };
            (StatusCode::OK, Json(grant)).into_response()
        }
        Some(_) => answer(StatusCode::OK, refused("bad_redirect_uri")),
        None => answer(StatusCode::OK, refused("invalid_code")),
    }
}

async fn web_api(
    State(slack): State<SlackStandIn>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = slack.inner.lock().expect("lock");
    if let Some(refusal) = inner.gate(&method, &headers) {
        let status = refusal.status().as_u16();
        inner.record(&method, value, status, &headers);
        return refusal;
    }
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let result = if !json_body {
        Err("invalid_arguments")
    } else {
        match method.as_str() {
            "chat.postMessage" => post_message(&mut inner, &value),
            "chat.update" => update_message(&mut inner, &value),
            "chat.postEphemeral" => serde_json::from_value::<PostEphemeral>(value.clone())
                .map_err(|_| "invalid_arguments")
                .map(|_| WebAnswer {
                    ok: true,
                    ..Default::default()
                }),
            "auth.test" => Ok(WebAnswer {
                ok: true,
                user_id: Some(BOT_USER.into()),
                team_id: Some(TEAM.into()),
                bot_id: Some(BOT_ID.into()),
                ..Default::default()
            }),
            _ => Err("unknown_method"),
        }
    };
    let mut recorded = value;
    if result.is_err() {
        recorded["__ok"] = json!(false);
    }
    let lost = inner
        .lost
        .get_mut(&method)
        .filter(|n| **n > 0)
        .map(|n| *n -= 1);
    let status = if lost.is_some() { 500 } else { 200 };
    inner.record(&method, recorded, status, &headers);
    if lost.is_some() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream connect error").into_response();
    }
    match result {
        Ok(a) => answer(StatusCode::OK, a),
        Err(e) => answer(StatusCode::OK, refused(e)),
    }
}

/// Slack's limits on a message: text present and at most 40,000 characters.
fn checked_text(text: &str) -> Result<(), &'static str> {
    match text.chars().count() {
        0 => Err("no_text"),
        n if n > 40_000 => Err("msg_too_long"),
        _ => Ok(()),
    }
}

fn post_message(inner: &mut Inner, body: &Value) -> Result<WebAnswer, &'static str> {
    let post: PostMessage =
        serde_json::from_value(body.clone()).map_err(|_| "invalid_arguments")?;
    checked_text(&post.text)?;
    if post.channel.is_empty() {
        return Err("channel_not_found");
    }
    let ts = inner.ts();
    let message = Message {
        text: post.text,
        channel: post.channel.clone(),
        ts: ts.clone(),
        thread_ts: post.thread_ts,
        bot_id: Some(BOT_ID.into()),
        user: Some(BOT_USER.into()),
        metadata: post.metadata,
        ..Default::default()
    };
    inner
        .messages
        .entry(post.channel.clone())
        .or_default()
        .push(message);
    Ok(WebAnswer {
        ok: true,
        ts: Some(ts),
        channel: Some(post.channel),
        ..Default::default()
    })
}

fn update_message(inner: &mut Inner, body: &Value) -> Result<WebAnswer, &'static str> {
    let update: UpdateMessage =
        serde_json::from_value(body.clone()).map_err(|_| "invalid_arguments")?;
    checked_text(&update.text)?;
    let message = inner
        .messages
        .get_mut(&update.channel)
        .and_then(|all| all.iter_mut().find(|m| m.ts == update.ts))
        .ok_or("message_not_found")?;
    if message.bot_id.as_deref() != Some(BOT_ID) {
        return Err("cant_update_message");
    }
    message.text = update.text;
    Ok(WebAnswer {
        ok: true,
        ts: Some(update.ts),
        channel: Some(update.channel),
        ..Default::default()
    })
}

/// `conversations.replies`, which (like Slack's other read methods) takes its arguments in the
/// query.
async fn replies(
    State(slack): State<SlackStandIn>,
    headers: HeaderMap,
    Query(args): Query<Replies>,
) -> Response {
    let mut inner = slack.inner.lock().expect("lock");
    if let Some(refusal) = inner.admit_read("conversations.replies", &args, &headers) {
        return refusal;
    }
    let thread = |m: &&Message| m.ts == args.ts || m.thread_ts.as_deref() == Some(&args.ts);
    let messages: Vec<Message> = inner
        .messages
        .get(&args.channel)
        .into_iter()
        .flatten()
        .filter(thread)
        .take(args.limit as usize)
        .cloned()
        .collect();
    read_answer(messages, args.include_all_metadata)
}

/// Messages as Slack's read methods give them: metadata only when asked for.
fn read_answer(mut messages: Vec<Message>, with_metadata: bool) -> Response {
    if !with_metadata {
        messages.iter_mut().for_each(|m| m.metadata = None);
    }
    answer(
        StatusCode::OK,
        WebAnswer {
            ok: true,
            messages,
            ..Default::default()
        },
    )
}

/// `conversations.history`: the channel's latest messages, newest first, threads' replies left
/// out (as Slack does).
async fn history(
    State(slack): State<SlackStandIn>,
    headers: HeaderMap,
    Query(args): Query<History>,
) -> Response {
    let mut inner = slack.inner.lock().expect("lock");
    if let Some(refusal) = inner.admit_read("conversations.history", &args, &headers) {
        return refusal;
    }
    let mut messages: Vec<Message> = inner
        .messages
        .get(&args.channel)
        .into_iter()
        .flatten()
        .filter(|m| m.thread_ts.is_none())
        .cloned()
        .collect();
    messages.reverse();
    messages.truncate(args.limit as usize);
    read_answer(messages, args.include_all_metadata)
}

/// A `response_url`: a message (`text`, and `response_type` `ephemeral` or `in_channel`), at
/// most five to one URL, as Slack takes them.
async fn hook(State(slack): State<SlackStandIn>, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    let shaped = value["text"].as_str().is_some_and(|t| !t.is_empty())
        && matches!(
            value["response_type"].as_str(),
            None | Some("ephemeral" | "in_channel")
        );
    if !shaped {
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    let mut inner = slack.inner.lock().expect("lock");
    let sent = inner.responses.entry(id).or_default();
    if sent.len() >= 5 {
        return (StatusCode::NOT_FOUND, "used_url").into_response();
    }
    sent.push(value);
    StatusCode::OK.into_response()
}

/// Now, in seconds, as Slack stamps its requests.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

impl crate::Stack {
    /// Posts `body` to a Slack route with `headers` (a signature, or not), as Slack would.
    pub async fn slack_post(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        let mut req = self
            .http()
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_owned());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.expect("slack request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `/agent-ops <text>` from `user` in `channel`, signed now: the status and Slack's reply.
    pub async fn slack_command(&self, user: &str, channel: &str, text: &str) -> (u16, Value) {
        self.slack_command_in(TEAM, user, channel, text).await
    }

    /// The same, from a person of workspace `team`.
    pub async fn slack_command_in(
        &self,
        team: &str,
        user: &str,
        channel: &str,
        text: &str,
    ) -> (u16, Value) {
        let body = self.slack_command_body_in(team, user, channel, text);
        self.slack_signed_command(&body).await
    }

    /// Posts a slash command's form, signed now: what the person is answered. That is the
    /// acknowledgement itself for what needs only its text (`help`, the usage), else the
    /// message the platform sends the command's `response_url` after acknowledging it.
    pub async fn slack_signed_command(&self, body: &str) -> (u16, Value) {
        let form: HashMap<String, String> = serde_urlencoded::from_str(body).expect("a form");
        let url = form.get("response_url").cloned().unwrap_or_default();
        let before = self.slack.responses_to(&url).len();
        let ack = self.slack_command_ack(body).await;
        let immediate = matches!(
            agent_ops_protocol::slack::command::parse(&form["text"]),
            Err(_) | Ok(agent_ops_protocol::slack::command::SlashCommand::Help)
        );
        if ack.0 != 200 || immediate {
            return ack;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(answer) = self.slack.responses_to(&url).get(before) {
                return (200, answer.clone());
            }
            assert!(
                Instant::now() < deadline,
                "no answer on the response_url after {}",
                ack.1
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts a slash command's form, signed now: Slack's acknowledgement alone.
    pub async fn slack_command_ack(&self, body: &str) -> (u16, Value) {
        let headers = self.slack.signed(body, now_secs());
        self.slack_post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            body,
            &headers,
        )
        .await
    }

    /// The form Slack posts for `/agent-ops <text>`, with a trigger id of its own as each
    /// invocation has.
    pub fn slack_command_body(&self, user: &str, channel: &str, text: &str) -> String {
        self.slack_command_body_in(TEAM, user, channel, text)
    }

    fn slack_command_body_in(&self, team: &str, user: &str, channel: &str, text: &str) -> String {
        let trigger = format!("{}.{}", now_secs(), crate::random_hex(8));
        serde_urlencoded::to_string([
            ("team_id", team),
            ("team_domain", "agentops"),
            ("channel_id", channel),
            ("channel_name", "general"),
            ("user_id", user),
            ("user_name", "someone"),
            ("command", "/agent-ops"),
            ("text", text),
            ("response_url", &self.slack.response_url()),
            ("trigger_id", &trigger),
            ("api_app_id", "A0AGENTOPS"),
        ])
        .expect("form")
    }

    /// Links Slack user `user` to the account `token` signs in, through the link the app
    /// offers; the link's token, used once.
    pub async fn slack_link(&self, token: &str, user: &str) -> String {
        let (_, offer) = self.slack_command(user, "C0GENERAL", "list").await;
        let offer = offer["text"].as_str().unwrap_or_default().to_owned();
        let link = offer
            .split("/link/slack#")
            .nth(1)
            .and_then(|rest| rest.split('|').next())
            .unwrap_or_else(|| panic!("a link is offered: {offer}"))
            .to_owned();
        let body = agent_ops_protocol::api::LinkSlack {
            token: link.clone(),
        };
        let linked = self
            .api::<agent_ops_protocol::routes::endpoint::LinkSlack>(token, &[], &body)
            .await
            .expect("the link works");
        assert_eq!(linked.slack_user_id, user);
        link
    }

    /// Delivers `event` as Slack's Events API does, with `event_id`, signed now.
    pub async fn slack_event(&self, event_id: &str, event: Value) -> (u16, Value) {
        self.slack_event_in(TEAM, event_id, event).await
    }

    /// An event of workspace `team`.
    pub async fn slack_event_in(&self, team: &str, event_id: &str, event: Value) -> (u16, Value) {
        let envelope = json!({
            "token": "deprecated",
            "team_id": team,
            "api_app_id": "A0AGENTOPS",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": now_secs(),
        });
        let body = envelope.to_string();
        let headers = self.slack.signed(&body, now_secs());
        self.slack_post("/slack/events", "application/json", &body, &headers)
            .await
    }
}

/// Slack's event for `message`: a mention of the app, or a plain message.
pub fn message_event(message: &Message, mention: bool) -> Value {
    let mut event = serde_json::to_value(message).expect("message");
    event["type"] = json!(if mention { "app_mention" } else { "message" });
    event["event_ts"] = json!(message.ts);
    event
}

/// The session a thread's messages link to (the app's "On it" or its announcement).
pub fn session_named(messages: &[Message]) -> Option<String> {
    messages.iter().find_map(|m| {
        let rest = m.text.split("/sessions/").nth(1)?;
        rest.split('|').next().map(str::to_owned)
    })
}
