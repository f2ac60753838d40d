-- The session's object admits the agent's model calls now (it holds the runner's token hash, and
-- counts the calls against the session's rate, in one round trip: faster than this column's read
-- beside a rate limiter's). The hash is kept there alone.
ALTER TABLE sessions DROP COLUMN runner_token_hash;
