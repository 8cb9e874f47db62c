-- Per-minute stats (docs/STATS.md). event_minutes: the events stored per
-- source and minute (unix seconds of the start of the minute of their
-- received_at), added in the transaction that inserts them. As for the
-- attempt counts (0003), each transaction adds to the rows of one slot
-- (0-15) and a read sums the slots: replicas and concurrent batches
-- counting events of one source do not queue on one row. Pruned with
-- retention.
CREATE TABLE event_minutes (
    source TEXT COLLATE "C" NOT NULL,
    minute BIGINT NOT NULL,
    slot   SMALLINT NOT NULL,
    events BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (source, minute, slot)
);

-- Listing every source's minutes in a time range, and pruning by age.
CREATE INDEX event_minutes_minute ON event_minutes (minute);

-- The attempts of each destination and minute by duration: l0 … l11 are
-- the buckets of store.LatencyHistogram (up to 5 ms, 10 ms, 25 ms, 50 ms,
-- 100 ms, 250 ms, 500 ms, 1 s, 2.5 s, 5 s, 10 s, longer).
ALTER TABLE attempt_minutes
    ADD COLUMN l0 BIGINT NOT NULL DEFAULT 0, ADD COLUMN l1 BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN l2 BIGINT NOT NULL DEFAULT 0, ADD COLUMN l3 BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN l4 BIGINT NOT NULL DEFAULT 0, ADD COLUMN l5 BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN l6 BIGINT NOT NULL DEFAULT 0, ADD COLUMN l7 BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN l8 BIGINT NOT NULL DEFAULT 0, ADD COLUMN l9 BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN l10 BIGINT NOT NULL DEFAULT 0, ADD COLUMN l11 BIGINT NOT NULL DEFAULT 0;
