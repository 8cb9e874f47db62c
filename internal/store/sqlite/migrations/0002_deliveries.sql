-- Deliveries: one event to one destination. A delivery gets its row when
-- its first attempt ends (or when it is spilled, replayed or recovered):
-- fresh work lives in memory until then (docs/DELIVERY.md).
CREATE TABLE deliveries (
    id               TEXT    PRIMARY KEY,  -- dlv_<event ULID>_<destination>
    event_id         TEXT    NOT NULL,
    event_seq        INTEGER NOT NULL,
    event_key        TEXT,
    destination      TEXT    NOT NULL,
    subscription_id  TEXT,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0, -- every attempt; the fence
    round_attempts   INTEGER NOT NULL DEFAULT 0, -- since creation or replay
    first_attempt_at INTEGER,                    -- unix microseconds
    next_attempt_at  INTEGER,
    lease_until      INTEGER,
    last_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    last_duration_us INTEGER,
    last_excerpt     BLOB,
    reason           TEXT,
    -- generation counts the replays of the delivery: an outcome of an
    -- attempt begun before a replay does not overwrite it (the fence is
    -- attempts and generation).
    generation       INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) WITHOUT ROWID;

-- Claims of due work per destination, and the next due time. Partial:
-- most rows end succeeded, and a row outside every partial index costs no
-- write in it (queries name the status exactly, so that the planner can
-- use them).
CREATE INDEX deliveries_pending ON deliveries (destination, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_retrying ON deliveries (destination, next_attempt_at) WHERE status = 'retrying';
CREATE INDEX deliveries_delivering ON deliveries (destination, lease_until) WHERE status = 'delivering';
-- Ordered destinations load their unfinished work in event order.
CREATE INDEX deliveries_unfinished ON deliveries (destination, event_seq) WHERE status IN ('pending', 'retrying', 'delivering');
-- Listings by status (the failed queue), newest event first.
CREATE INDEX deliveries_status_seq ON deliveries (status, event_seq);
-- Listings of every delivery, newest event first. (An event's deliveries
-- need no index of their own: their ids share the prefix
-- dlv_<event ULID>_, a range of the primary key.)
CREATE INDEX deliveries_seq ON deliveries (event_seq DESC, destination);

-- The attempt log: failed attempts (the last attempt of every delivery is
-- also on its row, so a first-time success costs no row here).
CREATE TABLE delivery_attempts (
    delivery_id      TEXT    NOT NULL,
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_us      INTEGER NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    response_excerpt BLOB,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;

-- Destinations created through the admin API (spec is their JSON
-- definition), and the disabled state of configured ones (spec NULL).
CREATE TABLE destinations (
    name            TEXT PRIMARY KEY,
    spec            TEXT,
    disabled_at     INTEGER,
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- Subscriptions created through the admin API.
CREATE TABLE subscriptions (
    id         TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Events stored before delivery existed are not delivered: the fan-out
-- watermark starts at the newest of them.
INSERT INTO settings (name, value)
    SELECT 'fanout_watermark', CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM events
    WHERE true
    ON CONFLICT (name) DO NOTHING;
