//! Slack's request signatures (v0): `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256, under
//! the app's signing secret, of `v0:{X-Slack-Request-Timestamp}:{raw body}`. Checked in constant
//! time, and only within [`MAX_SKEW_SECS`] of now either way, so a captured request cannot be
//! replayed later.

use crate::signing::{ct_eq, hmac_hex};
use crate::{ApiError, ErrorCode};

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Slack's own window.
pub const MAX_SKEW_SECS: u64 = 300;

/// The signature Slack sends for `body` at `timestamp` (what the stand-in signs with, too).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    format!("v0={}", hmac_hex(secret.as_bytes(), &base))
}

/// Whether a request with these headers and `body` was signed by Slack with `secret` within the
/// window around `now_secs`. Every refusal is a 401 with a code that says which check failed.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
) -> Result<(), ApiError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(ApiError::new(
            ErrorCode::MissingSignature,
            "Slack requests carry X-Slack-Signature and X-Slack-Request-Timestamp",
        ));
    };
    let at: u64 = timestamp.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::MissingSignature,
            "X-Slack-Request-Timestamp must be whole seconds since the epoch",
        )
    })?;
    if !signature.starts_with("v0=") {
        return Err(ApiError::new(
            ErrorCode::MissingSignature,
            "X-Slack-Signature must be a v0 signature",
        ));
    }
    if at.abs_diff(now_secs) > MAX_SKEW_SECS {
        return Err(ApiError::new(
            ErrorCode::StaleSignature,
            format!("the request was signed {MAX_SKEW_SECS} s or more from now"),
        ));
    }
    if !ct_eq(
        sign(secret, timestamp, body).as_bytes(),
        signature.as_bytes(),
    ) {
        return Err(ApiError::new(
            ErrorCode::InvalidSignature,
            "the request's Slack signature does not match",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's worked example ("Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn check(ts: Option<&str>, sig: Option<&str>, body: &str, now: u64) -> Option<ErrorCode> {
        verify(SECRET, ts, sig, body.as_bytes(), now)
            .err()
            .map(|e| e.code)
    }

    #[test]
    fn slacks_published_example_verifies() {
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIGNATURE);
        assert_eq!(check(Some(TS), Some(SIGNATURE), BODY, 1531420618), None);
        assert_eq!(
            check(Some(TS), Some(SIGNATURE), BODY, 1531420618 + 300),
            None
        );
    }

    #[test]
    fn each_failed_check_has_its_code() {
        let now = 1531420618;
        let altered = BODY.replace("text=", "text=rm");
        assert_eq!(
            check(Some(TS), Some(SIGNATURE), &altered, now),
            Some(ErrorCode::InvalidSignature)
        );
        let wrong = verify(
            "another secret",
            Some(TS),
            Some(SIGNATURE),
            BODY.as_bytes(),
            now,
        );
        assert_eq!(wrong.unwrap_err().code, ErrorCode::InvalidSignature);
        assert_eq!(
            check(Some(TS), Some(SIGNATURE), BODY, now + 301),
            Some(ErrorCode::StaleSignature),
            "stale"
        );
        assert_eq!(
            check(Some(TS), Some(SIGNATURE), BODY, now - 301),
            Some(ErrorCode::StaleSignature),
            "from the future"
        );
        for (ts, sig) in [
            (None, Some(SIGNATURE)),
            (Some(TS), None),
            (Some("soon"), Some(SIGNATURE)),
            (Some(TS), Some("v1=abc")),
        ] {
            assert_eq!(
                check(ts, sig, BODY, now),
                Some(ErrorCode::MissingSignature),
                "{ts:?} {sig:?}"
            );
        }
    }
}
