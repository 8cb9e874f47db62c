-- Attempt counts of each destination (store.AttemptCounts), written in the
-- transaction of the outcomes they count: a destination's health survives
-- a restart and a replace. attempt_totals holds one row per destination
-- since the first attempt; attempt_minutes one per destination and minute
-- (unix seconds of its start) with an outcome, pruned with retention.
CREATE TABLE attempt_totals (
    destination TEXT PRIMARY KEY,
    attempts    INTEGER NOT NULL DEFAULT 0,
    succeeded   INTEGER NOT NULL DEFAULT 0,
    retried     INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE attempt_minutes (
    destination TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    succeeded   INTEGER NOT NULL DEFAULT 0,
    retried     INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (destination, minute)
) WITHOUT ROWID;

-- Listing every destination's minutes in a time range, and pruning by age.
CREATE INDEX attempt_minutes_minute ON attempt_minutes (minute);
