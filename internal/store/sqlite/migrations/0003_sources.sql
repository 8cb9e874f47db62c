-- Sources created through the admin API: spec is their definition (with
-- its verification secrets), sealed like a destination's.
CREATE TABLE sources (
    name       TEXT    PRIMARY KEY,
    spec       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
