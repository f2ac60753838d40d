//! The slice of Slack's wire formats the platform reads and writes: a slash command's form, the
//! Events API's envelope, and the Web API calls it makes (each request, and the one answer
//! shape they share). The Slack stand-in in e2e checks requests against these same types.

use serde::{Deserialize, Serialize};

/// A slash command, as Slack posts it (form-encoded). `token` and `user_name` are deprecated and
/// not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashCommandForm {
    pub team_id: String,
    pub channel_id: String,
    pub user_id: String,
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub response_url: String,
    #[serde(default)]
    pub trigger_id: Option<String>,
    #[serde(default)]
    pub api_app_id: Option<String>,
}

/// What Slack posts to the events URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Envelope {
    /// Sent once when the URL is configured: answered with its challenge.
    UrlVerification { challenge: String },
    EventCallback {
        team_id: String,
        #[serde(default)]
        api_app_id: Option<String>,
        /// Unique per event: Slack's retries carry the same one.
        event_id: String,
        event: Box<Event>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    AppMention(Message),
    Message(Message),
    AppUninstalled {},
    TokensRevoked {},
    #[serde(other)]
    Other,
}

/// A message event (a mention is one too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub text: String,
    pub channel: String,
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// `im` for a direct message with the app.
    #[serde(default)]
    pub channel_type: Option<String>,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub app_id: Option<String>,
    /// Edits (`message_changed`), deletions, joins...: never a person's new words.
    #[serde(default)]
    pub subtype: Option<String>,
    /// What the app attached to a message it posted (read back with `include_all_metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// A message's metadata: the app marks each message it posts with the key of the post, so a
/// post whose answer was lost can be found instead of sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub event_type: String,
    pub event_payload: PostKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostKey {
    pub key: String,
}

impl Metadata {
    pub const EVENT_TYPE: &'static str = "agent_ops_post";

    pub fn post(key: &str) -> Self {
        Self {
            event_type: Self::EVENT_TYPE.into(),
            event_payload: PostKey { key: key.into() },
        }
    }
}

/// `chat.postMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessage {
    pub channel: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    /// Links to the app stay links; no previews fill the thread.
    #[serde(default)]
    pub unfurl_links: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `chat.update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateMessage {
    pub channel: String,
    pub ts: String,
    pub text: String,
}

/// `chat.postEphemeral`: seen by `user` alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostEphemeral {
    pub channel: String,
    pub user: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
}

/// `conversations.replies`: a thread's messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replies {
    pub channel: String,
    pub ts: String,
    pub limit: u32,
    #[serde(default)]
    pub include_all_metadata: bool,
}

/// `conversations.history`: a channel's latest messages (a DM's, which has no threads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub channel: String,
    pub limit: u32,
    #[serde(default)]
    pub include_all_metadata: bool,
}

/// `oauth.v2.access`, as the app calls it (form-encoded) with the code Slack sent the browser
/// back with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OauthAccess {
    pub client_id: String,
    pub client_secret: String,
    pub code: String,
    pub redirect_uri: String,
}

/// Its answer: the workspace's bot token and who the bot is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OauthGrant {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub bot_user_id: String,
    #[serde(default)]
    pub app_id: String,
    #[serde(default)]
    pub team: Team,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// Every Web API answer: `ok`, and on failure an `error` code (`ratelimited`, `invalid_auth`,
/// `channel_not_found`, ...); the fields of the call's own answer beside them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAnswer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The message posted (`chat.postMessage`, `chat.update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `conversations.replies`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// `auth.test`: who the token is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
}

impl Message {
    /// Whether a person wrote this, as new words: not a bot (ours or another), not an app, not
    /// an edit, a deletion or a join.
    pub fn is_a_persons(&self) -> bool {
        self.user.is_some()
            && self.bot_id.is_none()
            && self.app_id.is_none()
            && self.subtype.is_none()
    }

    /// The thread this message belongs to (its own, when it starts one).
    pub fn thread(&self) -> &str {
        self.thread_ts.as_deref().unwrap_or(&self.ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_read_as_slack_sends_them() {
        let v: Envelope =
            serde_json::from_str(r#"{"type":"url_verification","challenge":"c1","token":"x"}"#)
                .unwrap();
        assert_eq!(
            v,
            Envelope::UrlVerification {
                challenge: "c1".into()
            }
        );
        let mention = r#"{"type":"event_callback","team_id":"T1","api_app_id":"A1","event_id":"Ev1",
            "event":{"type":"app_mention","user":"U1","text":"<@UBOT> fix it","channel":"C1","ts":"1.1","event_ts":"1.1"},
            "event_time":1}"#;
        let Envelope::EventCallback {
            event_id, event, ..
        } = serde_json::from_str(mention).unwrap()
        else {
            panic!("an event")
        };
        let Event::AppMention(m) = *event else {
            panic!("a mention")
        };
        assert_eq!(event_id, "Ev1");
        assert!(m.is_a_persons());
        assert_eq!(m.thread(), "1.1");
        let other: Envelope =
            serde_json::from_str(r#"{"type":"app_rate_limited","minute_rate_limited":1}"#).unwrap();
        assert_eq!(other, Envelope::Other);
        let reaction = r#"{"type":"event_callback","team_id":"T1","event_id":"Ev2","event":{"type":"reaction_added","user":"U1"}}"#;
        let Envelope::EventCallback { event, .. } = serde_json::from_str(reaction).unwrap() else {
            panic!("an event")
        };
        assert_eq!(*event, Event::Other);
    }

    #[test]
    fn only_a_persons_new_words_count() {
        let person = Message {
            user: Some("U1".into()),
            channel: "C1".into(),
            ts: "2.2".into(),
            thread_ts: Some("1.1".into()),
            ..Default::default()
        };
        assert!(person.is_a_persons());
        assert_eq!(person.thread(), "1.1");
        for not in [
            Message {
                bot_id: Some("B1".into()),
                ..person.clone()
            },
            Message {
                app_id: Some("A1".into()),
                ..person.clone()
            },
            Message {
                subtype: Some("message_changed".into()),
                ..person.clone()
            },
            Message {
                user: None,
                ..person.clone()
            },
        ] {
            assert!(!not.is_a_persons(), "{not:?}");
        }
    }
}
