-- Clipdesk app database. Huey's queue lives in its own file (queue.db).

CREATE TABLE episodes (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL DEFAULT '',
    source_kind   TEXT NOT NULL,                 -- upload | path | url
    source_uri    TEXT NOT NULL,                 -- what the user gave us
    source_path   TEXT,                          -- source.<ext> under the episode dir, once ingested
    status        TEXT NOT NULL DEFAULT 'new',   -- new | processing | ready | failed
    duration      REAL,
    media_json    TEXT,                          -- MediaInfo from the probe
    language      TEXT,
    enrichment_json TEXT,                        -- title, summary, chapters, keywords, source
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    deleted_at    REAL
);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    episode_id       TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'queued',  -- queued | running | retrying | succeeded | failed | cancelled
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
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    heartbeat_at     REAL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    stage_started_at REAL,
    finished_at      REAL
);
CREATE INDEX jobs_status_idx ON jobs(status, priority DESC, id);
CREATE INDEX jobs_episode_idx ON jobs(episode_id);

CREATE TABLE job_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    stage          TEXT,
    kind           TEXT NOT NULL,     -- queued | started | finished | skipped | failed | cancelled | succeeded
    message        TEXT,
    seconds        REAL,              -- how long the stage ran (finished/failed)
    media_seconds  REAL,              -- media duration the stage worked on, for ETA history
    created_at     REAL NOT NULL
);
CREATE INDEX job_events_job_idx ON job_events(job_id, id);
CREATE INDEX job_events_stage_idx ON job_events(kind, stage);

-- A stage is complete for an episode once its row is here; retries skip it.
CREATE TABLE stage_checkpoints (
    episode_id   TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    stage        TEXT NOT NULL,
    finished_at  REAL NOT NULL,
    PRIMARY KEY (episode_id, stage)
);

CREATE TABLE clips (
    id          TEXT PRIMARY KEY,
    episode_id  TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    start       REAL NOT NULL,
    end         REAL NOT NULL,
    score       REAL NOT NULL,
    title       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'suggested',  -- suggested | rendered | approved | rejected
    created_at  REAL NOT NULL,
    UNIQUE (episode_id, position)
);

CREATE TABLE renders (
    clip_id     TEXT NOT NULL REFERENCES clips(id) ON DELETE CASCADE,
    variant     TEXT NOT NULL,     -- clean_9x16 | subtitled_9x16 | clean_16x9 | subtitled_16x9
    path        TEXT NOT NULL,
    width       INTEGER,
    height      INTEGER,
    duration    REAL,
    size_bytes  INTEGER,
    created_at  REAL NOT NULL,
    PRIMARY KEY (clip_id, variant)
);

-- One row per consumer process; the dashboard shows a worker as alive from heartbeat_at.
CREATE TABLE workers (
    id            TEXT PRIMARY KEY,   -- host:pid
    started_at    REAL NOT NULL,
    heartbeat_at  REAL NOT NULL
);
