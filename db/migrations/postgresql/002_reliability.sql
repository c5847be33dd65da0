-- Retries with backoff, per-clip render choices (PostgreSQL twin of sqlite/002_reliability.sql).

ALTER TABLE jobs ADD COLUMN next_attempt_at DOUBLE PRECISION;   -- when a retrying job runs again
ALTER TABLE jobs ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 4;
ALTER TABLE jobs ADD COLUMN worker_id TEXT;                      -- host:pid of the consumer running it

-- NULL means: the job's option, else the config default.
ALTER TABLE clips ADD COLUMN reframe TEXT;
ALTER TABLE clips ADD COLUMN caption_style TEXT;

CREATE INDEX episodes_source_idx ON episodes(source_uri);
