//! Credentials at rest. AES-256-GCM under a key derived with HKDF-SHA256 from a master key for
//! each purpose; a random nonce per record; associated data binding the ciphertext to its owner
//! and kind (a row copied to another user or kind does not decrypt); and the id of the master key
//! it was sealed with, so master keys can be rotated and old records re-sealed.
//!
//! Pure: the caller supplies the nonce and does the storage, so every rule is tested natively.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

pub const NONCE_LEN: usize = 12;

/// The purpose people's and the organisation's stored credentials are sealed for.
pub const CREDENTIALS: &str = "credentials";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultError {
    /// The key ring configuration is not `id:64-hex-chars[,id:...]`.
    BadKeyRing,
    /// The record names a master key the ring does not hold.
    UnknownKey,
    /// Tampered, or not this owner's or kind's: authentication failed.
    Rejected,
}

/// The master keys, newest first: records are sealed with the first and opened with any.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "KeyRing({ids:?})")
    }
}

impl KeyRing {
    pub fn parse(spec: &str) -> Result<KeyRing, VaultError> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, hex_key) = entry.split_once(':').ok_or(VaultError::BadKeyRing)?;
            let bytes = hex::decode(hex_key).map_err(|_| VaultError::BadKeyRing)?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| VaultError::BadKeyRing)?;
            if id.is_empty() || keys.iter().any(|(k, _)| k == id) {
                return Err(VaultError::BadKeyRing);
            }
            keys.push((id.to_owned(), key));
        }
        if keys.is_empty() {
            return Err(VaultError::BadKeyRing);
        }
        Ok(KeyRing { keys })
    }

    pub fn current_id(&self) -> &str {
        &self.keys[0].0
    }

    fn cipher(&self, key_id: &str, purpose: &str) -> Result<Aes256Gcm, VaultError> {
        let (_, master) = self
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .ok_or(VaultError::UnknownKey)?;
        let mut derived = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"agent-ops/vault/v1"), master)
            .expand(purpose.as_bytes(), &mut derived)
            .map_err(|_| VaultError::BadKeyRing)?;
        Aes256Gcm::new_from_slice(&derived).map_err(|_| VaultError::BadKeyRing)
    }
}

/// Who a secret belongs to and what it is; both are authenticated, neither is secret.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub purpose: &'a str,
    pub owner: &'a str,
    pub kind: &'a str,
}

impl Binding<'_> {
    fn aad(&self) -> Vec<u8> {
        // Length-prefixed so no two different bindings share associated data.
        let mut aad = Vec::new();
        for part in [self.purpose, self.owner, self.kind] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

pub fn seal(
    ring: &KeyRing,
    binding: Binding<'_>,
    secret: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Result<Sealed, VaultError> {
    let key_id = ring.current_id().to_owned();
    let aad = binding.aad();
    let ciphertext = ring
        .cipher(&key_id, binding.purpose)?
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Rejected)?;
    Ok(Sealed {
        key_id,
        nonce,
        ciphertext,
    })
}

pub fn open(ring: &KeyRing, binding: Binding<'_>, sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
    let aad = binding.aad();
    ring.cipher(&sealed.key_id, binding.purpose)?
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Rejected)
}

/// Re-seals a record under the current master key; `None` when it already is.
pub fn reseal(
    ring: &KeyRing,
    binding: Binding<'_>,
    sealed: &Sealed,
    nonce: [u8; NONCE_LEN],
) -> Result<Option<Sealed>, VaultError> {
    if sealed.key_id == ring.current_id() {
        return Ok(None);
    }
    let secret = open(ring, binding, sealed)?;
    seal(ring, binding, &secret, nonce).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:0101010101010101010101010101010101010101010101010101010101010101";
    const K2: &str = "k2:0202020202020202020202020202020202020202020202020202020202020202";

    fn b<'a>(owner: &'a str, kind: &'a str) -> Binding<'a> {
        Binding {
            purpose: "credentials",
            owner,
            kind,
        }
    }

    #[test]
    fn round_trip() {
        let ring = KeyRing::parse(K1).unwrap();
        let sealed = seal(&ring, b("u1", "github_token"), b"ghp_secret", [7; 12]).unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.ciphertext.windows(10).any(|w| w == b"ghp_secret"));
        assert_eq!(
            open(&ring, b("u1", "github_token"), &sealed).unwrap(),
            b"ghp_secret"
        );
    }

    #[test]
    fn tampering_or_rebinding_is_rejected() {
        let ring = KeyRing::parse(K1).unwrap();
        let sealed = seal(&ring, b("u1", "github_token"), b"ghp_secret", [7; 12]).unwrap();
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(
            open(&ring, b("u1", "github_token"), &tampered),
            Err(VaultError::Rejected)
        );
        let mut renonced = sealed.clone();
        renonced.nonce[0] ^= 1;
        assert_eq!(
            open(&ring, b("u1", "github_token"), &renonced),
            Err(VaultError::Rejected)
        );
        assert_eq!(
            open(&ring, b("u2", "github_token"), &sealed),
            Err(VaultError::Rejected),
            "wrong owner"
        );
        assert_eq!(
            open(&ring, b("u1", "openai_api_key"), &sealed),
            Err(VaultError::Rejected),
            "wrong kind"
        );
        let other_purpose = Binding {
            purpose: "slack",
            owner: "u1",
            kind: "github_token",
        };
        assert_eq!(
            open(&ring, other_purpose, &sealed),
            Err(VaultError::Rejected),
            "keys differ per purpose"
        );
    }

    #[test]
    fn rotation_reseals_under_the_new_key() {
        let old = KeyRing::parse(K1).unwrap();
        let sealed = seal(&old, b("u1", "github_token"), b"ghp_secret", [7; 12]).unwrap();
        let rotated = KeyRing::parse(&format!("{K2},{K1}")).unwrap();
        assert_eq!(
            open(&rotated, b("u1", "github_token"), &sealed).unwrap(),
            b"ghp_secret",
            "old records still open"
        );
        let resealed = reseal(&rotated, b("u1", "github_token"), &sealed, [9; 12])
            .unwrap()
            .expect("re-sealed");
        assert_eq!(resealed.key_id, "k2");
        assert_eq!(
            open(&rotated, b("u1", "github_token"), &resealed).unwrap(),
            b"ghp_secret"
        );
        assert_eq!(
            reseal(&rotated, b("u1", "github_token"), &resealed, [9; 12]).unwrap(),
            None
        );
        let only_new = KeyRing::parse(K2).unwrap();
        assert_eq!(
            open(&only_new, b("u1", "github_token"), &sealed),
            Err(VaultError::UnknownKey)
        );
        assert_eq!(
            open(&only_new, b("u1", "github_token"), &resealed).unwrap(),
            b"ghp_secret"
        );
    }

    #[test]
    fn key_ring_parsing() {
        for bad in [
            "",
            "k1",
            "k1:abcd",
            ":0101010101010101010101010101010101010101010101010101010101010101",
            &format!("{K1},{K1}"),
        ] {
            assert_eq!(
                KeyRing::parse(bad).err(),
                Some(VaultError::BadKeyRing),
                "{bad}"
            );
        }
        assert!(
            !format!("{:?}", KeyRing::parse(K1).unwrap()).contains("0101"),
            "Debug never prints key material"
        );
    }
}
