-- Attempt counts of each destination (store.AttemptCounts), written in the
-- transaction of the outcomes they count: a destination's health survives
-- a restart and a replace, and covers every replica. Each process adds to
-- the rows of one slot of its own (0-15, drawn at its start) and a read
-- sums the slots, so that replicas writing outcomes of one destination at
-- once do not queue on one row. attempt_totals: since the first attempt;
-- attempt_minutes: per minute (unix seconds of its start) with an outcome,
-- pruned with retention.
CREATE TABLE attempt_totals (
    destination TEXT COLLATE "C" NOT NULL,
    slot        SMALLINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    succeeded   BIGINT NOT NULL DEFAULT 0,
    retried     BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (destination, slot)
);

CREATE TABLE attempt_minutes (
    destination TEXT COLLATE "C" NOT NULL,
    minute      BIGINT NOT NULL,
    slot        SMALLINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    succeeded   BIGINT NOT NULL DEFAULT 0,
    retried     BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (destination, minute, slot)
);

-- Listing every destination's minutes in a time range, and pruning by age.
CREATE INDEX attempt_minutes_minute ON attempt_minutes (minute);
