-- The HTTP API (issue 15): API keys (only their SHA-256 is stored) and Idempotency-Key answers.

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,                  -- the key's first characters, to tell keys apart in a list
    key_hash     TEXT NOT NULL UNIQUE,           -- hex SHA-256 of the whole key
    created_at   REAL NOT NULL,
    revoked_at   REAL
);

-- A submit with an Idempotency-Key: the first answer, returned again for a repeat of the same request.
CREATE TABLE idempotency_keys (
    client        TEXT NOT NULL,                 -- the API key's id, or 'open' on a loopback API without keys
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,                 -- SHA-256 of the request, so the key cannot be reused for another
    status_code   INTEGER,                       -- NULL while the first request is still being handled
    response_json TEXT,
    location      TEXT,
    created_at    REAL NOT NULL,
    PRIMARY KEY (client, key)
);
