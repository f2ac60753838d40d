-- The runner's token, as a SHA-256 hash, so the stateless Worker can authorize the agent's model
-- calls (see worker/src/model_proxy.rs) without a round trip to the session's object.
ALTER TABLE sessions ADD COLUMN runner_token_hash TEXT;
