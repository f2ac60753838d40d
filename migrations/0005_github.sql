-- GitHub sign-in: users are linked to their GitHub account; each OAuth state is used once.
ALTER TABLE users ADD COLUMN github_id INTEGER;
CREATE UNIQUE INDEX users_by_github_id ON users (github_id);
CREATE TABLE oauth_states_used (
  jti TEXT PRIMARY KEY,
  used_at INTEGER NOT NULL
);
