-- Renders of a whole episode (issue 5): today the subtitled 16x9 "full" render
-- (PostgreSQL twin of sqlite/005_episode_renders.sql; size_bytes is BIGINT: a full render can pass 2 GiB).

CREATE TABLE episode_renders (
    episode_id  TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,     -- full_16x9
    path        TEXT NOT NULL,     -- relative to the data dir
    width       INTEGER,
    height      INTEGER,
    duration    DOUBLE PRECISION,
    size_bytes  BIGINT,
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (episode_id, kind)
);
