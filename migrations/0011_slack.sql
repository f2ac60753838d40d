-- Slack: people's linked identities, the one-time tokens that link them, the threads bound to
-- sessions, and the events already handled (Slack delivers an event again until it is answered).
CREATE TABLE slack_links (
  team_id TEXT NOT NULL,
  slack_user_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  linked_at INTEGER NOT NULL,
  PRIMARY KEY (team_id, slack_user_id)
);
CREATE INDEX slack_links_user ON slack_links (user_id);

CREATE TABLE slack_link_tokens (
  token_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL,
  slack_user_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

CREATE TABLE slack_threads (
  team_id TEXT NOT NULL,
  channel_id TEXT NOT NULL,
  thread_ts TEXT NOT NULL,
  session_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (team_id, channel_id, thread_ts)
);

CREATE TABLE slack_events (
  event_id TEXT PRIMARY KEY,
  claimed_at INTEGER NOT NULL,
  done INTEGER NOT NULL DEFAULT 0
);

-- Workspaces the app is installed in; each one's bot token is sealed in `credentials` (owner
-- `slack:<team_id>`, kind `slack_bot_token`).
CREATE TABLE slack_workspaces (
  team_id TEXT PRIMARY KEY,
  team_name TEXT NOT NULL,
  bot_user_id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  installed_by TEXT NOT NULL,
  installed_at INTEGER NOT NULL
);

-- The channels (and DMs) of a workspace the app serves, when an administrator lists any; a
-- workspace with none listed is served everywhere the app is invited.
CREATE TABLE slack_channels (
  team_id TEXT NOT NULL,
  channel_id TEXT NOT NULL,
  PRIMARY KEY (team_id, channel_id)
);
