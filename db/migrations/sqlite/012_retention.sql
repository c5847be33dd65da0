-- Retention, cleanup and back-pressure (issue 21): what an operator pinned, what the policy
-- deleted (what, why, when) and per-job summaries of compacted job events.

ALTER TABLE episodes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1));   -- never cleaned
ALTER TABLE episodes ADD COLUMN source_deleted_at REAL;   -- retention removed source.* and audio.wav (ingest redoes them)
ALTER TABLE clips ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1));      -- renders never cleaned

-- One row per deletion the retention policy made. No foreign keys: the record outlives what it names.
CREATE TABLE retention_deletions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,           -- source | audio | rejected_render | deleted_episode | job_events
    episode_id  TEXT,
    clip_id     TEXT,
    path        TEXT,                    -- relative to the data dir (files), NULL for rows
    bytes       INTEGER NOT NULL DEFAULT 0,
    items       INTEGER NOT NULL DEFAULT 1,   -- files, or job events for kind job_events
    reason      TEXT NOT NULL,           -- the rule and the age, e.g. "retention.source_days: last job finished 8.2 days ago"
    deleted_at  REAL NOT NULL
);
CREATE INDEX retention_deletions_at_idx ON retention_deletions(deleted_at);

-- A finished job's events once compacted: what the timeline showed, in one row. The events the
-- learned rates and stage statistics read (the newest finished / clip_finished runs) are kept.
CREATE TABLE job_event_summaries (
    job_id        INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    events        INTEGER NOT NULL,      -- how many events were compacted
    first_at      REAL,
    last_at       REAL,
    stages_json   TEXT NOT NULL,         -- {stage: seconds of its last finished or failed run}
    last_message  TEXT,
    compacted_at  REAL NOT NULL
);

-- Cleanup looks for soft-deleted episodes by deletion time.
CREATE INDEX episodes_deleted_idx ON episodes(deleted_at) WHERE deleted_at IS NOT NULL;
