-- Renders of a whole episode (issue 5): today the subtitled 16x9 "full" render.

CREATE TABLE episode_renders (
    episode_id  TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,     -- full_16x9
    path        TEXT NOT NULL,     -- relative to the data dir
    width       INTEGER,
    height      INTEGER,
    duration    REAL,
    size_bytes  INTEGER,
    created_at  REAL NOT NULL,
    PRIMARY KEY (episode_id, kind)
);
