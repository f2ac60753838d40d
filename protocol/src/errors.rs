//! Stable error codes. The string form is part of the API: clients match on it, so a code is
//! never renamed, only added.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    InvalidBody,
    PayloadTooLarge,
    MalformedFrame,
    UnknownFrameType,
    InvalidToken,
    SessionTerminated,
    NothingToAbort,
    Conflict,
    /// A per-user limit (e.g. active sessions) is reached; the message says which and how to
    /// get under it.
    LimitExceeded,
    /// Too many requests for this token or address; `Retry-After` says when to come back.
    RateLimited,
    /// A sign-in callback whose OAuth state is forged, expired, replayed or from another browser.
    InvalidOauthState,
    /// The identity provider (GitHub) refused or failed the sign-in.
    SignInFailed,
    /// A session's `repo` names something this deployment does not clone from: a path or port
    /// of the host, a scheme an operator has not enabled.
    RepoNotAllowed,
    ProviderError,
    /// The session's model could not be reached (its own errors pass through as it sent them).
    ModelUnreachable,
    ProtocolViolation,
    /// A request that must be signed (by Slack) lacks the signature or its timestamp, or
    /// carries one that is malformed.
    MissingSignature,
    /// The signature does not match the request.
    InvalidSignature,
    /// The signature's timestamp is too far from now (a replay, or a clock far off).
    StaleSignature,
    /// A workflow's webhook delivery is not its sender's: its signature is missing, malformed,
    /// wrong or stale, or its bearer key is not valid. The message says which.
    BadSignature,
    /// The feature is not set up on this deployment (say, no Slack signing secret).
    NotConfigured,
    /// The workflow is disabled (or paused itself): it starts nothing until it is enabled.
    WorkflowDisabled,
    Internal,
}

impl ErrorCode {
    /// Every code, in the order declared: the OpenAPI document lists them by HTTP status.
    pub const ALL: [ErrorCode; 26] = [
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::InvalidBody,
        Self::PayloadTooLarge,
        Self::MalformedFrame,
        Self::UnknownFrameType,
        Self::InvalidToken,
        Self::SessionTerminated,
        Self::NothingToAbort,
        Self::Conflict,
        Self::LimitExceeded,
        Self::RateLimited,
        Self::InvalidOauthState,
        Self::SignInFailed,
        Self::RepoNotAllowed,
        Self::ProviderError,
        Self::ModelUnreachable,
        Self::ProtocolViolation,
        Self::MissingSignature,
        Self::InvalidSignature,
        Self::StaleSignature,
        Self::BadSignature,
        Self::NotConfigured,
        Self::WorkflowDisabled,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::InvalidBody => "invalid_body",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MalformedFrame => "malformed_frame",
            Self::UnknownFrameType => "unknown_frame_type",
            Self::InvalidToken => "invalid_token",
            Self::SessionTerminated => "session_terminated",
            Self::NothingToAbort => "nothing_to_abort",
            Self::Conflict => "conflict",
            Self::LimitExceeded => "limit_exceeded",
            Self::RateLimited => "rate_limited",
            Self::InvalidOauthState => "invalid_oauth_state",
            Self::SignInFailed => "sign_in_failed",
            Self::RepoNotAllowed => "repo_not_allowed",
            Self::ProviderError => "provider_error",
            Self::ModelUnreachable => "model_unreachable",
            Self::ProtocolViolation => "protocol_violation",
            Self::MissingSignature => "missing_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::StaleSignature => "stale_signature",
            Self::BadSignature => "bad_signature",
            Self::NotConfigured => "not_configured",
            Self::WorkflowDisabled => "workflow_disabled",
            Self::Internal => "internal",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::Unauthorized
            | Self::InvalidToken
            | Self::MissingSignature
            | Self::InvalidSignature
            | Self::StaleSignature
            | Self::BadSignature => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::InvalidBody
            | Self::MalformedFrame
            | Self::UnknownFrameType
            | Self::ProtocolViolation
            | Self::InvalidOauthState
            | Self::RepoNotAllowed => 400,
            Self::PayloadTooLarge => 413,
            Self::SessionTerminated
            | Self::NothingToAbort
            | Self::Conflict
            | Self::LimitExceeded
            | Self::WorkflowDisabled => 409,
            Self::RateLimited => 429,
            Self::ProviderError | Self::SignInFailed | Self::ModelUnreachable => 502,
            Self::NotConfigured => 503,
            Self::Internal => 500,
        }
    }
}

/// The body of every error response and every `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl ApiError {
    /// Every refusal of a terminated session says the same.
    pub fn session_terminated() -> Self {
        Self::new(
            ErrorCode::SessionTerminated,
            "the session has been terminated",
        )
    }

    pub fn session_not_found(id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("session {id} not found"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        let names: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn serialized_code_matches_as_str() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
