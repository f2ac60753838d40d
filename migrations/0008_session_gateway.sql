-- Where a session's sandbox gateway answers (never shown to users: the worker proxies to it) and
-- which panels the sandbox offers, as the provider reported them.
ALTER TABLE sessions ADD COLUMN gateway_url TEXT;
ALTER TABLE sessions ADD COLUMN panels TEXT;
