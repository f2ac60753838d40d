-- Stored credentials (model provider keys, GitHub tokens), sealed by worker/src/vault.rs:
-- AES-256-GCM, associated data binding each row to its owner and kind, and the master key id.
CREATE TABLE credentials (
  owner_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  key_id TEXT NOT NULL,
  nonce TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (owner_id, kind)
);
