-- Events: one row per accepted request. seq is the position in the durable
-- log (commit order), the cursor of the replayable stream; AUTOINCREMENT
-- keeps it from ever being reused after retention deletes rows.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    source       TEXT    NOT NULL,
    external_id  TEXT,
    -- dedupe_key is external_id while the dedupe window is open; a later
    -- event with the same id after the window clears it on the old row.
    dedupe_key   TEXT,
    type         TEXT,
    key          TEXT,
    occurred_at  INTEGER,          -- unix microseconds, NULL when absent
    received_at  INTEGER NOT NULL, -- unix microseconds
    stale        INTEGER NOT NULL DEFAULT 0,
    content_type TEXT,
    headers      TEXT,             -- JSON object of header lists
    body         BLOB    NOT NULL
);

-- Dedupe of the provider's id per source (only rows that have one).
CREATE UNIQUE INDEX events_dedupe ON events (source, dedupe_key) WHERE dedupe_key IS NOT NULL;
-- The per-source FIFO stream and source-filtered listings.
CREATE INDEX events_source ON events (source, seq);
-- Out-of-order detection: the newest timestamp per entity key.
CREATE INDEX events_key ON events (source, key, occurred_at) WHERE key IS NOT NULL;

-- Requests that were duplicates of a stored event; the request that created
-- an event shares its ULID and needs no row here.
CREATE TABLE duplicate_requests (
    request_id  TEXT    PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Settings hookd keeps for itself, such as the generated admin token.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
