-- Ingestion and automation (issue 8): URL metadata, duplicate detection, feeds, watch folder, webhooks.

ALTER TABLE episodes ADD COLUMN metadata_json TEXT;   -- from yt-dlp: title, uploader, upload_date, description...
ALTER TABLE episodes ADD COLUMN source_key TEXT;      -- normalised URL: the same video pasted twice is found
ALTER TABLE episodes ADD COLUMN download_json TEXT;   -- last download progress: bytes, total, speed, eta
CREATE INDEX episodes_source_key_idx ON episodes(source_key);

-- A followed channel, playlist or podcast feed, checked every interval_minutes.
CREATE TABLE feeds (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    url              TEXT NOT NULL,
    source_key       TEXT NOT NULL UNIQUE,        -- normalised url: a feed is followed once
    title            TEXT NOT NULL DEFAULT '',
    kind             TEXT NOT NULL DEFAULT '',    -- rss | atom | the yt-dlp extractor (youtube:tab...)
    options_json     TEXT NOT NULL DEFAULT '{}',  -- job options for its episodes
    interval_minutes INTEGER NOT NULL DEFAULT 15,
    created_at       REAL NOT NULL,
    last_checked_at  REAL,
    next_check_at    REAL NOT NULL,
    last_error       TEXT,
    failures         INTEGER NOT NULL DEFAULT 0   -- consecutive; the back-off doubles with each
);
CREATE INDEX feeds_due_idx ON feeds(next_check_at);

-- Every entry a feed has shown us. The row is claimed before the job is created, so an entry
-- is enqueued at most once even if two checks race.
CREATE TABLE feed_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    feed_id     INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    entry_id    TEXT NOT NULL,                    -- guid / video id / url
    url         TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    published_at REAL,
    episode_id  TEXT,                             -- NULL: seen when the feed was added (not enqueued)
    job_id      INTEGER,
    note        TEXT,                             -- e.g. why it was not enqueued
    seen_at     REAL NOT NULL,
    UNIQUE (feed_id, entry_id)
);

-- Watch folder: what each file looked like at the last scan, to tell when it stopped growing.
CREATE TABLE inbox_files (
    name          TEXT PRIMARY KEY,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    stable_since  REAL NOT NULL
);

-- One delivery per (job, url, event); attempts are logged in webhook_attempts.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          INTEGER NOT NULL,
    url             TEXT NOT NULL,
    event           TEXT NOT NULL,               -- job.succeeded | job.failed
    body            BLOB NOT NULL,               -- the exact bytes signed and sent on every attempt
    status          TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    delivered_at    REAL
);
CREATE INDEX webhook_deliveries_job_idx ON webhook_deliveries(job_id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries(status, next_attempt_at);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    http_status  INTEGER,
    error        TEXT,
    seconds      REAL,
    created_at   REAL NOT NULL
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts(delivery_id, id);
