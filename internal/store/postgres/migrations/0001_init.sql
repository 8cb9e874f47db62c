-- hookd's schema on PostgreSQL: the SQLite driver's migrations 0001-0004 in
-- one step. Times are BIGINT unix microseconds, as there. Every text column
-- is COLLATE "C": ids are compared as byte ranges (the deliveries of one
-- event are the primary-key range dlv_<ULID>_ .. dlv_<ULID>`) and names are
-- listed in byte order, whatever the database's default collation.

-- Events: one row per accepted request. seq is the position in the durable
-- log (commit order: inserts take an advisory lock, see the driver), the
-- cursor of the replayable stream; an identity is never reused.
CREATE TABLE events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT COLLATE "C" NOT NULL UNIQUE,
    source       TEXT COLLATE "C" NOT NULL,
    external_id  TEXT COLLATE "C",
    -- dedupe_key is the external id (or its digest) while the dedupe window
    -- is open; a later event with the same id after the window clears it on
    -- the old row.
    dedupe_key   TEXT COLLATE "C",
    type         TEXT COLLATE "C",
    key          TEXT COLLATE "C",
    occurred_at  BIGINT,           -- unix microseconds, NULL when absent
    received_at  BIGINT NOT NULL,  -- unix microseconds
    stale        BOOLEAN NOT NULL DEFAULT false,
    content_type TEXT COLLATE "C",
    headers      TEXT,             -- JSON object of header lists
    body         BYTEA NOT NULL
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
    request_id  TEXT COLLATE "C" PRIMARY KEY,
    event_id    TEXT COLLATE "C" NOT NULL,
    received_at BIGINT NOT NULL
);

-- Settings hookd keeps for itself: the generated admin token, the fan-out
-- watermark.
CREATE TABLE settings (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

-- Deliveries: one event to one destination (docs/DELIVERY.md).
CREATE TABLE deliveries (
    id               TEXT COLLATE "C" PRIMARY KEY,  -- dlv_<event ULID>_<destination>
    event_id         TEXT COLLATE "C" NOT NULL,
    event_seq        BIGINT  NOT NULL,
    event_key        TEXT COLLATE "C",
    destination      TEXT COLLATE "C" NOT NULL,
    subscription_id  TEXT COLLATE "C",
    status           TEXT COLLATE "C" NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0, -- every attempt; the fence
    round_attempts   INTEGER NOT NULL DEFAULT 0, -- since creation or replay
    first_attempt_at BIGINT,                     -- unix microseconds
    next_attempt_at  BIGINT,
    lease_until      BIGINT,
    last_attempt_at  BIGINT,
    last_status_code INTEGER,
    last_error       TEXT,
    last_duration_us BIGINT,
    last_excerpt     BYTEA,
    reason           TEXT,
    -- generation counts the replays of the delivery: an outcome of an
    -- attempt begun before a replay does not overwrite it (the fence is
    -- attempts and generation).
    generation       INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);

-- Claims of due work per destination, and the next due time. Partial: most
-- rows end succeeded, and a row outside every partial index costs no write
-- in it (queries name the status exactly, so that the planner can use them).
CREATE INDEX deliveries_pending ON deliveries (destination, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_retrying ON deliveries (destination, next_attempt_at) WHERE status = 'retrying';
CREATE INDEX deliveries_delivering ON deliveries (destination, lease_until) WHERE status = 'delivering';
-- Ordered destinations load their unfinished work in event order.
CREATE INDEX deliveries_unfinished ON deliveries (destination, event_seq) WHERE status IN ('pending', 'retrying', 'delivering');
-- Listings by status (the failed queue), newest event first.
CREATE INDEX deliveries_status_seq ON deliveries (status, event_seq);
-- Listings of every delivery, newest event first. (An event's deliveries
-- need no index of their own: their ids share the prefix dlv_<event ULID>_,
-- a range of the primary key.)
CREATE INDEX deliveries_seq ON deliveries (event_seq DESC, destination);

-- The attempt log: failed attempts (the last attempt of every delivery is
-- also on its row, so a first-time success costs no row here).
CREATE TABLE delivery_attempts (
    delivery_id      TEXT COLLATE "C" NOT NULL,
    number           INTEGER NOT NULL,
    started_at       BIGINT  NOT NULL,
    duration_us      BIGINT  NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    response_excerpt BYTEA,
    PRIMARY KEY (delivery_id, number)
);

-- Destinations created through the admin API (spec is their definition, as
-- the engine sealed it), and the state of configured ones (spec NULL):
-- disabled, and since when their current run of failures lasts.
CREATE TABLE destinations (
    name            TEXT COLLATE "C" PRIMARY KEY,
    spec            BYTEA,
    disabled_at     BIGINT,
    disabled_reason TEXT,
    failing_since   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Subscriptions created through the admin API.
CREATE TABLE subscriptions (
    id         TEXT COLLATE "C" PRIMARY KEY,
    spec       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Sources created through the admin API: spec is their definition (with its
-- verification secrets), sealed like a destination's.
CREATE TABLE sources (
    name       TEXT COLLATE "C" PRIMARY KEY,
    spec       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The fan-out watermark starts at 0 (a fresh log has no undelivered
-- history).
INSERT INTO settings (name, value) VALUES ('fanout_watermark', '0');
