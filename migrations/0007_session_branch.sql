-- The branch a session's repository was checked out at (NULL: the repository's default).
ALTER TABLE sessions ADD COLUMN branch TEXT;
