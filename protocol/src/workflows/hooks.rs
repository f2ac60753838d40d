//! A webhook delivery, as the trigger decides about it: whether its sender signed it, which
//! delivery it is (its idempotency key), and whether the trigger's filters let it through.
//! Pure: the Worker hands in the headers, the raw body and the time.

use serde_json::Value;

use crate::api::{IdempotencySource, PayloadFilter, WebhookScheme};
use crate::signing::{ct_eq, hmac_hex};
use crate::{ApiError, ErrorCode};

pub const SIGNATURE_HEADER: &str = "x-signature-256";
pub const GITHUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";
pub const GITHUB_EVENT_HEADER: &str = "x-github-event";
pub const GITHUB_DELIVERY_HEADER: &str = "x-github-delivery";
/// The key a caller that cannot be told apart by its body names its delivery with.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The largest body a webhook may carry.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest idempotency key kept.
const MAX_KEY_CHARS: usize = 256;

/// `sha256=<hex>`: what the `hmac-sha256` and `github` schemes send for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret.as_bytes(), body))
}

/// Whether a delivery was signed with `secret` by `scheme`'s rule. `header` reads a request
/// header by its lower-case name. A `bearer` delivery is the Worker's to check (it is an API
/// key, not a signature). Every refusal is `bad_signature`, its message saying what was wrong.
pub fn verify(
    scheme: WebhookScheme,
    secret: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    now_secs: u64,
) -> Result<(), ApiError> {
    let refused = |why: String| ApiError::new(ErrorCode::BadSignature, why);
    let name = match scheme {
        WebhookScheme::HmacSha256 => SIGNATURE_HEADER,
        WebhookScheme::Github => {
            if header(GITHUB_EVENT_HEADER).is_none() || header(GITHUB_DELIVERY_HEADER).is_none() {
                return Err(refused(
                    "a GitHub delivery carries X-GitHub-Event and X-GitHub-Delivery".into(),
                ));
            }
            GITHUB_SIGNATURE_HEADER
        }
        WebhookScheme::Slack => {
            use crate::slack::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
            return signature::verify(
                secret,
                header(TIMESTAMP_HEADER).as_deref(),
                header(SIGNATURE_HEADER).as_deref(),
                body,
                now_secs,
            )
            .map_err(|e| refused(e.message));
        }
        WebhookScheme::Bearer => {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "a bearer trigger is checked by its API key",
            ))
        }
    };
    let Some(sent) = header(name).filter(|s| s.starts_with("sha256=")) else {
        return Err(refused(format!(
            "this trigger's deliveries carry {name}: sha256=<hex HMAC-SHA256 of the body>"
        )));
    };
    if !ct_eq(sign(secret, body).as_bytes(), sent.as_bytes()) {
        return Err(refused(format!("{name} does not match the body")));
    }
    Ok(())
}

/// Which delivery this is: the trigger's source, else GitHub's delivery id (`github`) or the
/// `Idempotency-Key` header. `None`: the delivery names itself in no way, and is new.
pub fn idempotency_key(
    scheme: WebhookScheme,
    source: Option<&IdempotencySource>,
    header: impl Fn(&str) -> Option<String>,
    payload: Option<&Value>,
) -> Result<Option<String>, ApiError> {
    let key = match source {
        Some(IdempotencySource::Header { name }) => header(&name.to_ascii_lowercase()),
        Some(IdempotencySource::Pointer { pointer }) => {
            let at = payload.and_then(|p| p.pointer(pointer)).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("the payload has nothing at {pointer}, this trigger's idempotency key"),
                )
            })?;
            Some(match at {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
        None if scheme == WebhookScheme::Github => header(GITHUB_DELIVERY_HEADER),
        None => header(IDEMPOTENCY_HEADER),
    };
    Ok(key.map(|k| k.chars().take(MAX_KEY_CHARS).collect()))
}

/// Whether a filter is well formed: a JSON Pointer, and exactly one test.
pub fn check_filter(filter: &PayloadFilter) -> Result<(), String> {
    if filter.pointer.len() > 512 {
        return Err("a filter's pointer is at most 512 characters".into());
    }
    if !(filter.pointer.is_empty() || filter.pointer.starts_with('/')) {
        return Err(format!(
            "`{}` is not a JSON Pointer (it starts with /)",
            filter.pointer
        ));
    }
    match (&filter.equals, &filter.contains) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        _ => Err(format!(
            "the filter on `{}` says `equals` or `contains`, one of them",
            filter.pointer
        )),
    }
}

/// The first filter `payload` fails, said as a reason; `None` when all of them hold.
pub fn mismatch(filters: &[PayloadFilter], payload: &Value) -> Option<String> {
    filters.iter().find_map(|f| {
        let at = payload.pointer(&f.pointer);
        let holds = match (&f.equals, &f.contains, at) {
            (Some(want), _, Some(got)) => want == got,
            (_, Some(Value::String(part)), Some(Value::String(text))) => text.contains(part),
            (_, Some(item), Some(Value::Array(items))) => items.contains(item),
            _ => false,
        };
        (!holds).then(|| match (&f.equals, at) {
            (Some(want), Some(got)) => format!("{} is {got}, not {want}", f.pointer),
            (Some(want), None) => format!("{} is absent, not {want}", f.pointer),
            (_, _) => format!(
                "{} does not contain {}",
                f.pointer,
                f.contains
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default()
            ),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// Why a delivery was refused, each refusal being `bad_signature`.
    fn refusal(r: Result<(), ApiError>) -> Option<String> {
        r.err().map(|e| {
            assert_eq!(e.code, ErrorCode::BadSignature, "{}", e.message);
            e.message
        })
    }

    const MISSING: Option<&str> = Some("carr");
    const WRONG: Option<&str> = Some("does not match");

    fn why(r: Option<String>, expected: Option<&str>) {
        match (r, expected) {
            (None, None) => {}
            (Some(got), Some(part)) => assert!(got.contains(part), "{got}"),
            (got, expected) => panic!("refused with {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn hmac_and_github_signatures() {
        let body = br#"{"a":1}"#;
        let good = sign("s3cret", body);
        let hmac = |h: &[(&str, &str)]| {
            refusal(verify(
                WebhookScheme::HmacSha256,
                "s3cret",
                headers(h),
                body,
                0,
            ))
        };
        why(hmac(&[(SIGNATURE_HEADER, &good)]), None);
        why(hmac(&[]), MISSING);
        why(hmac(&[(SIGNATURE_HEADER, &good[7..])]), MISSING);
        let other = sign("other", body);
        why(hmac(&[(SIGNATURE_HEADER, &other)]), WRONG);
        // GitHub's header, not ours, and its event and delivery ids with it.
        why(hmac(&[(GITHUB_SIGNATURE_HEADER, &good)]), MISSING);
        let gh = |h: &[(&str, &str)]| {
            refusal(verify(WebhookScheme::Github, "s3cret", headers(h), body, 0))
        };
        let full = [
            (GITHUB_SIGNATURE_HEADER, good.as_str()),
            (GITHUB_EVENT_HEADER, "push"),
            (GITHUB_DELIVERY_HEADER, "d-1"),
        ];
        why(gh(&full), None);
        why(gh(&full[..2]), MISSING);
        let tampered = sign("s3cret", br#"{"a":2}"#);
        why(
            gh(&[
                (GITHUB_SIGNATURE_HEADER, &tampered),
                (GITHUB_EVENT_HEADER, "push"),
                (GITHUB_DELIVERY_HEADER, "d-1"),
            ]),
            WRONG,
        );
        // Slack's scheme: its own refusals, under the webhook's one code.
        let slack = |h: &[(&str, &str)]| {
            refusal(verify(
                WebhookScheme::Slack,
                "s3cret",
                headers(h),
                body,
                1_000,
            ))
        };
        use crate::slack::signature::{
            self as slack_sig, SIGNATURE_HEADER as SL, TIMESTAMP_HEADER as TS,
        };
        let signed = slack_sig::sign("s3cret", "1000", body);
        why(slack(&[(TS, "1000"), (SL, &signed)]), None);
        why(slack(&[(TS, "1000")]), Some("X-Slack-Signature"));
        why(
            slack(&[(TS, "1000"), (SL, &slack_sig::sign("x", "1000", body))]),
            Some("does not match"),
        );
        why(
            slack(&[(TS, "100"), (SL, &slack_sig::sign("s3cret", "100", body))]),
            Some("from now"),
        );
    }

    #[test]
    fn keys_by_source_and_default() {
        let payload = json!({"id": 42, "ref": "main"});
        let h = headers(&[
            (GITHUB_DELIVERY_HEADER, "gh-1"),
            (IDEMPOTENCY_HEADER, "ik-1"),
            ("x-request", "r-1"),
        ]);
        let key = |scheme, source: Option<IdempotencySource>| {
            idempotency_key(scheme, source.as_ref(), &h, Some(&payload)).map_err(|e| e.code)
        };
        assert_eq!(key(WebhookScheme::Github, None), Ok(Some("gh-1".into())));
        assert_eq!(
            key(WebhookScheme::HmacSha256, None),
            Ok(Some("ik-1".into()))
        );
        let pointer = |p: &str| Some(IdempotencySource::Pointer { pointer: p.into() });
        assert_eq!(
            key(WebhookScheme::HmacSha256, pointer("/id")),
            Ok(Some("42".into()))
        );
        assert_eq!(
            key(WebhookScheme::HmacSha256, pointer("/nope")),
            Err(ErrorCode::InvalidBody)
        );
        let header = Some(IdempotencySource::Header {
            name: "X-Request".into(),
        });
        assert_eq!(key(WebhookScheme::Bearer, header), Ok(Some("r-1".into())));
        assert_eq!(
            idempotency_key(WebhookScheme::Bearer, None, headers(&[]), None).unwrap(),
            None
        );
    }

    #[test]
    fn filters() {
        let payload =
            json!({"action": "opened", "labels": ["agent", "bug"], "title": "Fix the build"});
        let f = |pointer: &str, equals: Option<Value>, contains: Option<Value>| PayloadFilter {
            pointer: pointer.into(),
            equals,
            contains,
        };
        assert_eq!(
            mismatch(
                &[
                    f("/action", Some(json!("opened")), None),
                    f("/labels", None, Some(json!("agent"))),
                    f("/title", None, Some(json!("build"))),
                ],
                &payload
            ),
            None
        );
        assert_eq!(
            mismatch(&[f("/action", Some(json!("closed")), None)], &payload).unwrap(),
            "/action is \"opened\", not \"closed\""
        );
        assert!(mismatch(&[f("/labels", None, Some(json!("docs")))], &payload).is_some());
        assert!(mismatch(&[f("/missing", Some(json!(1)), None)], &payload).is_some());
        assert!(check_filter(&f("action", Some(json!(1)), None)).is_err());
        assert!(check_filter(&f("/a", None, None)).is_err());
        assert!(check_filter(&f("/a", Some(json!(1)), Some(json!(1)))).is_err());
        assert!(check_filter(&f("/a", Some(json!(1)), None)).is_ok());
    }
}
