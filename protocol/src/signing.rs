//! Secrets on the wire: request signatures for the sandbox provider API and token hashing.
//! Every comparison of secret material is constant-time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TIMESTAMP_HEADER: &str = "x-agent-ops-timestamp";
pub const SIGNATURE_HEADER: &str = "x-agent-ops-signature";
/// How far a signed request's timestamp may be from the verifier's clock.
pub const MAX_SKEW_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Tokens are stored only as this hash.
pub fn hash_token(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Checks `token` against a stored hash without leaking where they differ.
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    ct_eq(hash_token(token).as_bytes(), stored_hash.as_bytes())
}

fn canonical(method: &str, path: &str, timestamp: u64, body: &[u8]) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        timestamp,
        sha256_hex(body)
    )
}

/// HMAC-SHA256 of `msg` under `key`, hex-encoded.
pub fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// HMAC-SHA256 over method, path (with query), timestamp and the body's hash, hex-encoded.
pub fn sign_request(
    secret: &[u8],
    method: &str,
    path: &str,
    timestamp: u64,
    body: &[u8],
) -> String {
    hmac_hex(secret, canonical(method, path, timestamp, body).as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Stale,
    Mismatch,
}

impl SignatureError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "request is not signed",
            Self::Stale => "request timestamp is outside the allowed window",
            Self::Mismatch => "request signature does not match",
        }
    }
}

pub fn verify_request(
    secret: &[u8],
    method: &str,
    path: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let ts: u64 = ts.parse().map_err(|_| SignatureError::Missing)?;
    if ts.abs_diff(now_secs) > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = sign_request(secret, method, path, ts, body);
    if ct_eq(expected.as_bytes(), sig.as_bytes()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_rejections() {
        let key = b"secret";
        let sig = sign_request(key, "post", "/v1/sandboxes", 1000, b"{}");
        let ok = verify_request(
            key,
            "POST",
            "/v1/sandboxes",
            Some("1000"),
            Some(&sig),
            b"{}",
            1100,
        );
        assert_eq!(ok, Ok(()));
        let stale = verify_request(
            key,
            "POST",
            "/v1/sandboxes",
            Some("1000"),
            Some(&sig),
            b"{}",
            2000,
        );
        assert_eq!(stale, Err(SignatureError::Stale));
        let body = verify_request(
            key,
            "POST",
            "/v1/sandboxes",
            Some("1000"),
            Some(&sig),
            b"{ }",
            1000,
        );
        assert_eq!(body, Err(SignatureError::Mismatch));
        let path = verify_request(
            key,
            "POST",
            "/v1/sandboxes/x",
            Some("1000"),
            Some(&sig),
            b"{}",
            1000,
        );
        assert_eq!(path, Err(SignatureError::Mismatch));
        let other = verify_request(
            b"other",
            "POST",
            "/v1/sandboxes",
            Some("1000"),
            Some(&sig),
            b"{}",
            1000,
        );
        assert_eq!(other, Err(SignatureError::Mismatch));
        let none = verify_request(key, "POST", "/v1/sandboxes", None, Some(&sig), b"{}", 1000);
        assert_eq!(none, Err(SignatureError::Missing));
    }

    #[test]
    fn token_hash_matches() {
        let h = hash_token("tok");
        assert!(token_matches("tok", &h));
        assert!(!token_matches("tok2", &h));
    }
}
