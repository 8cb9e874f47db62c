-- Several replicas on one schema (docs/DEPLOYMENT.md).

-- A claim of a delivery: the replica that holds it (NULL: none) and how many
-- claims were made of it. An outcome carries the epoch of its claim and is
-- refused once another claim moved it on (fencing). Old processes ignore
-- both columns.
ALTER TABLE deliveries ADD COLUMN owner TEXT COLLATE "C";
ALTER TABLE deliveries ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;

-- Live replicas: each renews its row (and the leases of the deliveries it
-- is attempting) on a heartbeat; a row whose alive_until has passed is a
-- replica that died, stalled or lost the database. Times are the
-- database's clock (unix microseconds), so that replicas' clocks need not
-- agree.
CREATE TABLE replicas (
    id          TEXT COLLATE "C" PRIMARY KEY,
    host        TEXT,
    started_at  BIGINT NOT NULL,
    beat_at     BIGINT NOT NULL,
    alive_until BIGINT NOT NULL
);

-- Named leases: the maintenance leader ("leader") and the owner of each
-- ordered destination ("destination:<name>"). epoch grows each time a lease
-- changes hands: it is the fencing token of what the holder writes.
CREATE TABLE leases (
    name   TEXT COLLATE "C" PRIMARY KEY,
    owner  TEXT COLLATE "C" NOT NULL,
    epoch  BIGINT NOT NULL,
    until  BIGINT NOT NULL
);

-- Events stored so far were routed after their commit by the one process
-- of earlier versions; later ones are stored with their deliveries. The
-- leader routes the former once (those after the fan-out watermark).
INSERT INTO settings (name, value)
SELECT 'routed_after_seq', coalesce(max(seq), 0)::text FROM events
ON CONFLICT (name) DO NOTHING;

-- Bulk replays, so that every replica shows their progress and the leader
-- resumes one whose replica died: job is the engine's record (JSON, with
-- where the replay has got to), owner the replica running it.
CREATE TABLE replay_jobs (
    id         TEXT COLLATE "C" PRIMARY KEY,
    owner      TEXT COLLATE "C",
    running    BOOLEAN NOT NULL,
    job        BYTEA NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX replay_jobs_running ON replay_jobs (updated_at) WHERE running;
