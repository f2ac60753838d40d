-- The scheduler's sweep looks for runs still open (queued, or running without a session) every
-- minute: an index of the open ones alone keeps that read the size of what is open, not of the
-- whole history.
CREATE INDEX workflow_executions_open ON workflow_executions (status, created_at)
  WHERE status IN ('queued', 'running');
