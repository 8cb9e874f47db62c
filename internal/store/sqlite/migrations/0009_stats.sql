-- Per-minute stats (docs/STATS.md). event_minutes: the events stored per
-- source and minute (unix seconds of the start of the minute of their
-- received_at), written by the indexer in the transaction that indexes
-- them, so that an event is counted once, also when a replay of the log
-- indexes it after a crash; pruned with retention.
CREATE TABLE event_minutes (
    source TEXT NOT NULL,
    minute INTEGER NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, minute)
) WITHOUT ROWID;

-- Listing every source's minutes in a time range, and pruning by age.
CREATE INDEX event_minutes_minute ON event_minutes (minute);

-- The attempts of each destination and minute by duration: l0 … l11 are
-- the buckets of store.LatencyHistogram (up to 5 ms, 10 ms, 25 ms, 50 ms,
-- 100 ms, 250 ms, 500 ms, 1 s, 2.5 s, 5 s, 10 s, longer).
ALTER TABLE attempt_minutes ADD COLUMN l0 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l1 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l2 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l3 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l4 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l5 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l6 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l7 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l8 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l9 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l10 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempt_minutes ADD COLUMN l11 INTEGER NOT NULL DEFAULT 0;
