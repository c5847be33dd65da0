-- The database refuses a job or render-unit status that pipeline/jobs/states.py does not list.
-- SQLite cannot add a CHECK to an existing table: each table is rebuilt and its rows copied
-- (the migration runner turns foreign keys off around this and checks them before committing).

CREATE TABLE jobs_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    episode_id       TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
    stage            TEXT,
    stage_progress   REAL NOT NULL DEFAULT 0,
    progress         REAL NOT NULL DEFAULT 0,
    eta_seconds      REAL,
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    error_kind       TEXT,                              -- bad_input | transient | internal | cancelled
    options_json     TEXT NOT NULL DEFAULT '{}',
    huey_task_id     TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    heartbeat_at     REAL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    stage_started_at REAL,
    finished_at      REAL,
    next_attempt_at  REAL,
    max_attempts     INTEGER NOT NULL DEFAULT 4,
    worker_id        TEXT
);
INSERT INTO jobs_new (id, episode_id, status, stage, stage_progress, progress, eta_seconds, priority, attempts, error,
                      error_kind, options_json, huey_task_id, cancel_requested, heartbeat_at, created_at, started_at,
                      stage_started_at, finished_at, next_attempt_at, max_attempts, worker_id)
    SELECT id, episode_id, status, stage, stage_progress, progress, eta_seconds, priority, attempts, error,
           error_kind, options_json, huey_task_id, cancel_requested, heartbeat_at, created_at, started_at,
           stage_started_at, finished_at, next_attempt_at, max_attempts, worker_id FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_status_idx ON jobs(status, priority DESC, id);
CREATE INDEX jobs_episode_idx ON jobs(episode_id);
CREATE INDEX jobs_finished_idx ON jobs(status, finished_at, episode_id);

CREATE TABLE render_units_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    clip_id       TEXT NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
    status        TEXT NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
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
INSERT INTO render_units_new SELECT id, job_id, clip_id, status, priority, clip_seconds, progress, attempts, worker_id,
                                    huey_task_id, error, error_kind, created_at, started_at, heartbeat_at, finished_at
                             FROM render_units;
DROP TABLE render_units;
ALTER TABLE render_units_new RENAME TO render_units;
CREATE INDEX render_units_job_idx ON render_units(job_id, status);
CREATE INDEX render_units_status_idx ON render_units(status);
