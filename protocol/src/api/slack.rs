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

/// A workspace the app is installed in (its bot token is sealed in the vault).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SlackWorkspace {
    pub team_id: String,
    pub team_name: String,
    pub bot_user_id: String,
    pub installed_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SlackWorkspaces {
    pub workspaces: Vec<SlackWorkspace>,
}

/// The channels of a workspace the app serves; none listed: every channel it is invited to.
/// A direct message with the app is a channel too (its id starts with `D`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SlackChannels {
    #[cfg_attr(
        feature = "schema",
        schemars(length(max = 500), inner(regex(pattern = r"^[A-Z0-9]{1,32}$")))
    )]
    pub channels: Vec<String>,
}

impl SlackChannels {
    /// Slack's channel ids are short runs of capitals and digits.
    pub fn valid(&self) -> bool {
        self.channels.len() <= 500
            && self.channels.iter().all(|c| {
                (1..=32).contains(&c.len())
                    && c.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            })
    }
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
