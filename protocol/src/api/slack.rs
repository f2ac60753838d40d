//! Slack's side of the REST API: linking a Slack identity to an account, and what the Slack
//! routes answer Slack with.

use serde::{Deserialize, Serialize};

/// `POST /api/slack/link`: the token of the link the app offered in Slack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LinkSlack {
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 128)))]
    pub token: String,
}

/// A Slack identity (`team:user`) that acts as its account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SlackIdentity {
    pub team_id: String,
    pub slack_user_id: String,
    pub linked_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SlackIdentities {
    /// Whether this deployment is set up for Slack (a signing secret and a bot token).
    pub configured: bool,
    pub identities: Vec<SlackIdentity>,
}

/// A slash command's answer, shown to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SlackCommandReply {
    /// Always `ephemeral`: the caller alone sees it.
    pub response_type: String,
    pub text: String,
}

impl SlackCommandReply {
    pub fn ephemeral(text: impl Into<String>) -> Self {
        Self {
            response_type: "ephemeral".into(),
            text: text.into(),
        }
    }
}

/// What the events route answers: the challenge when Slack verifies the URL, else nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SlackEventAck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}
