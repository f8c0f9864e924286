-- The `workflows` table that batch_processing_pipeline reads and cleans, with sample rows.
-- Load it into the warehouse database once:  psql "$DAGRUN_CONN_WAREHOUSE" -f dags/sql/workflows.sql
CREATE TABLE IF NOT EXISTS workflows (
  id           BIGSERIAL PRIMARY KEY,
  config       JSONB NOT NULL DEFAULT '{}',
  status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  completed_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS workflows_status_created ON workflows (status, created_at);

INSERT INTO workflows (config, status, created_at, completed_at) VALUES
  ('{"agent": "planner"}',    'pending',   now() - interval '1 hour',  NULL),
  ('{"agent": "researcher"}', 'pending',   now() - interval '10 minutes', NULL),
  ('{"agent": "writer"}',     'pending',   now() - interval '1 minute', NULL),
  ('{"agent": "planner"}',    'completed', now() - interval '40 days', now() - interval '39 days'),
  ('{"agent": "critic"}',     'failed',    now() - interval '35 days', now() - interval '34 days'),
  ('{"agent": "writer"}',     'completed', now() - interval '2 days',  now() - interval '1 day');
