//! Secrets on the wire: request signatures for the sandbox provider API and token hashing.
//! Every comparison of secret material is constant-time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TIMESTAMP_HEADER: &str = "x-agent-ops-timestamp";
pub const SIGNATURE_HEADER: &str = "x-agent-ops-signature";
/// A value the signer makes fresh for each request; the verifier accepts it once.
pub const NONCE_HEADER: &str = "x-agent-ops-nonce";
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

fn canonical(method: &str, path: &str, timestamp: u64, nonce: &str, body: &[u8]) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        timestamp,
        nonce,
        sha256_hex(body)
    )
}

/// HMAC-SHA256 of `msg` under `key`, hex-encoded.
pub fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// HMAC-SHA256 over method, path (with query), timestamp, nonce and the body's hash,
/// hex-encoded.
pub fn sign_request(
    secret: &[u8],
    method: &str,
    path: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> String {
    hmac_hex(
        secret,
        canonical(method, path, timestamp, nonce, body).as_bytes(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Stale,
    Mismatch,
    Replayed,
}

impl SignatureError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "request is not signed",
            Self::Stale => "request timestamp is outside the allowed window",
            Self::Mismatch => "request signature does not match",
            Self::Replayed => "request was seen before (its nonce is used)",
        }
    }
}

/// The signing headers of a request, as they arrived.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signature<'a> {
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks a request's signature and freshness; a nonce must then also be `NonceLedger::admit`ted.
pub fn verify_request(
    secret: &[u8],
    method: &str,
    path: &str,
    presented: Signature<'_>,
    body: &[u8],
    now_secs: u64,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(nonce), Some(sig)) =
        (presented.timestamp, presented.nonce, presented.signature)
    else {
        return Err(SignatureError::Missing);
    };
    let ts: u64 = ts.parse().map_err(|_| SignatureError::Missing)?;
    if ts.abs_diff(now_secs) > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    if !(16..=128).contains(&nonce.len()) {
        return Err(SignatureError::Missing);
    }
    let expected = sign_request(secret, method, path, ts, nonce, body);
    if ct_eq(expected.as_bytes(), sig.as_bytes()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The nonces a verifier has accepted, each kept for as long as a request carrying it could
/// still be fresh: within that window a replayed request is refused; after it, it is stale.
#[derive(Debug, Default)]
pub struct NonceLedger {
    seen: std::collections::HashMap<String, u64>,
}

impl NonceLedger {
    /// Whether `nonce` is new (and now used).
    pub fn admit(&mut self, nonce: &str, now_secs: u64) -> bool {
        self.seen.retain(|_, forget_at| *forget_at > now_secs);
        if self.seen.contains_key(nonce) {
            return false;
        }
        self.seen
            .insert(nonce.to_owned(), now_secs + 2 * MAX_SKEW_SECS + 1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_rejections() {
        let key = b"secret";
        let nonce = "0123456789abcdef";
        let sig = sign_request(key, "post", "/v1/sandboxes", 1000, nonce, b"{}");
        let presented = |ts, n, sig| Signature {
            timestamp: ts,
            nonce: n,
            signature: sig,
        };
        let good = presented(Some("1000"), Some(nonce), Some(sig.as_str()));
        let check =
            |k: &[u8], path, p, body: &[u8], now| verify_request(k, "POST", path, p, body, now);
        assert_eq!(check(key, "/v1/sandboxes", good, b"{}", 1100), Ok(()));
        assert_eq!(
            check(key, "/v1/sandboxes", good, b"{}", 2000),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(key, "/v1/sandboxes", good, b"{ }", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(key, "/v1/sandboxes/x", good, b"{}", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(b"other", "/v1/sandboxes", good, b"{}", 1000),
            Err(SignatureError::Mismatch)
        );
        let other_nonce = presented(Some("1000"), Some("fedcba9876543210"), Some(sig.as_str()));
        assert_eq!(
            check(key, "/v1/sandboxes", other_nonce, b"{}", 1000),
            Err(SignatureError::Mismatch)
        );
        for missing in [
            presented(None, Some(nonce), Some(sig.as_str())),
            presented(Some("1000"), None, Some(sig.as_str())),
            presented(Some("1000"), Some("short"), Some(sig.as_str())),
        ] {
            assert_eq!(
                check(key, "/v1/sandboxes", missing, b"{}", 1000),
                Err(SignatureError::Missing)
            );
        }
    }

    #[test]
    fn a_nonce_is_accepted_once_while_its_request_could_be_fresh() {
        let mut ledger = NonceLedger::default();
        assert!(ledger.admit("n1", 1000));
        assert!(!ledger.admit("n1", 1000));
        assert!(!ledger.admit("n1", 1000 + 2 * MAX_SKEW_SECS));
        assert!(ledger.admit("n2", 1000));
        // Forgotten only once any request carrying it would be stale anyway.
        assert!(ledger.admit("n1", 1001 + 2 * MAX_SKEW_SECS));
        assert_eq!(ledger.seen.len(), 1);
    }

    #[test]
    fn token_hash_matches() {
        let h = hash_token("tok");
        assert!(token_matches("tok", &h));
        assert!(!token_matches("tok2", &h));
    }
}
