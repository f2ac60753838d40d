-- Workflows: saved ways of starting a session, their triggers, and every run (execution).
CREATE TABLE workflows (
  id TEXT PRIMARY KEY,
  owner_id TEXT NOT NULL,
  name TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  -- The session template (JSON: prompt, title, repo, branch, agent, model).
  template TEXT NOT NULL,
  concurrency TEXT NOT NULL,
  max_runs_per_hour INTEGER,
  pause_after_failures INTEGER NOT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  paused_reason TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX workflows_owner ON workflows (owner_id, created_at);

-- A webhook's secret is sealed in `credentials` (owner `trigger:<id>`), never here.
CREATE TABLE workflow_triggers (
  id TEXT PRIMARY KEY,
  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  -- The trigger's spec (JSON), as saved.
  spec TEXT NOT NULL,
  -- A schedule's next run (ms); the scheduler reads only the due ones.
  next_run_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX workflow_triggers_of ON workflow_triggers (workflow_id);
CREATE INDEX workflow_triggers_due ON workflow_triggers (next_run_at) WHERE next_run_at IS NOT NULL;

-- One row per run. The idempotency key is unique per workflow: a delivery, a schedule's minute
-- or a manual run's key makes one row however often it arrives, and only the insert that made
-- it starts anything.
CREATE TABLE workflow_executions (
  id TEXT PRIMARY KEY,
  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  trigger_id TEXT,
  trigger_kind TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  status TEXT NOT NULL,
  session_id TEXT,
  reason TEXT,
  catch_up INTEGER NOT NULL DEFAULT 0,
  scheduled_for INTEGER,
  -- The rendered prompt and title, kept until the run starts (a queued run starts later).
  prompt TEXT,
  title TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  UNIQUE (workflow_id, idempotency_key)
);
CREATE INDEX workflow_executions_of ON workflow_executions (workflow_id, status, created_at);
