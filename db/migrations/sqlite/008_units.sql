-- Throughput (issue 9): the render stage fans out into one queued unit per clip; learned
-- rates are kept per machine; workers record how many tasks they run at once.

CREATE TABLE render_units (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    clip_id       TEXT NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
    status        TEXT NOT NULL DEFAULT 'queued',  -- queued | running | done | failed | cancelled
    priority      INTEGER NOT NULL,
    clip_seconds  REAL NOT NULL,                   -- the clip's length: its share of the job's render
    progress      REAL NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    worker_id     TEXT,                            -- host:pid of the consumer rendering it
    huey_task_id  TEXT,
    error         TEXT,
    error_kind    TEXT,
    created_at    REAL NOT NULL,
    started_at    REAL,
    heartbeat_at  REAL,
    finished_at   REAL
);
CREATE INDEX render_units_job_idx ON render_units(job_id, status);
CREATE INDEX render_units_status_idx ON render_units(status);

ALTER TABLE job_events ADD COLUMN host TEXT;        -- the machine a stage ran on (learned rates are per machine)
ALTER TABLE job_events ADD COLUMN cpu_share REAL;  -- the share of that machine's cores the stage had (NULL = all)
ALTER TABLE workers ADD COLUMN threads INTEGER NOT NULL DEFAULT 1;   -- huey_consumer -w
